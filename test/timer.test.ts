// Generic timer: counter, CVAL/TVAL/CTL semantics (Arm ARM D11 "The Generic Timer"), PPI levels in the
// GIC, deterministic counter, EL0 access control through CNTKCTL_EL1. System register encodings come
// from the cross assembler (objdump of `mrs x0, CNTVCT_EL0` etc.).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';
import type { Arm64Cpu } from '../src/cpu/arm64/cpu.js';
import { sysregKey } from '../src/cpu/arm64/sysregs.js';
import { GenericTimer, NEAR_DEADLINE_SLICE, SystemCounter } from '../src/cpu/arm64/timer.js';
import { GicV3 } from '../src/devices/gicv3.js';

const REGS: Record<string, [number, number, number, number, number]> = {
  CNTFRQ_EL0: [3, 3, 14, 0, 0],
  CNTPCT_EL0: [3, 3, 14, 0, 1],
  CNTVCT_EL0: [3, 3, 14, 0, 2],
  CNTP_TVAL_EL0: [3, 3, 14, 2, 0],
  CNTP_CTL_EL0: [3, 3, 14, 2, 1],
  CNTP_CVAL_EL0: [3, 3, 14, 2, 2],
  CNTV_TVAL_EL0: [3, 3, 14, 3, 0],
  CNTV_CTL_EL0: [3, 3, 14, 3, 1],
  CNTV_CVAL_EL0: [3, 3, 14, 3, 2],
  CNTKCTL_EL1: [3, 0, 14, 1, 0],
};
const M64 = (1n << 64n) - 1n;

function mrs(cpu: Arm64Cpu, name: string): bigint {
  const r = cpu.sys.extra.get(sysregKey(...REGS[name]));
  assert.ok(r?.read, name);
  return r.read(cpu);
}
function msr(cpu: Arm64Cpu, name: string, v: bigint | number): void {
  const r = cpu.sys.extra.get(sysregKey(...REGS[name]));
  assert.ok(r?.write, name);
  r.write(cpu, BigInt(v) & M64);
}

/** A CPU, a GIC with the virtual and physical timer PPIs enabled, and its timer. */
function setup(deterministic: boolean, code: number[] = []) {
  const t = makeCpu(code);
  const gic = new GicV3(1);
  gic.attachCpu(t.cpu);
  const levels = new Map<number, boolean>();
  const timer = new GenericTimer(
    t.cpu,
    (intid, level) => {
      levels.set(intid, level);
      gic.setPpi(0, intid, level);
    },
    deterministic,
  );
  // GIC: distributor group 1 on, PPIs 27 and 30 group 1, enabled, priority 0x80; CPU interface on
  const d = gic.distributor();
  const r = gic.redistributors();
  d.write(0, 4, 0x12);
  r.write(0x1_0080, 4, 0xffffffff);
  r.write(0x1_0100, 4, (1 << 27) | (1 << 30));
  r.write(0x1_0400 + 27, 1, 0x80);
  r.write(0x1_0400 + 30, 1, 0x80);
  t.cpu.sys.extra.get(sysregKey(3, 0, 4, 6, 0))!.write!(t.cpu, 0xf0n); // ICC_PMR_EL1
  t.cpu.sys.extra.get(sysregKey(3, 0, 12, 12, 7))!.write!(t.cpu, 1n); // ICC_IGRPEN1_EL1
  const pending = (): number => r.read(0x1_0200, 4);
  return { ...t, gic, timer, levels, pending };
}

test('register set and CNTFRQ', () => {
  const { cpu } = setup(true);
  for (const [name, e] of Object.entries(REGS)) assert.equal(cpu.sys.extra.get(sysregKey(...e))?.name, name);
  assert.equal(mrs(cpu, 'CNTFRQ_EL0'), 62_500_000n);
  // Writable at EL1 (the highest Exception level here); the counter rate does not change
  msr(cpu, 'CNTFRQ_EL0', 1_000_000);
  assert.equal(mrs(cpu, 'CNTFRQ_EL0'), 1_000_000n);
  msr(cpu, 'CNTFRQ_EL0', 62_500_000);
  // CNTVOFF is 0: the virtual count equals the physical count
  const v = mrs(cpu, 'CNTVCT_EL0');
  const p = mrs(cpu, 'CNTPCT_EL0');
  assert.equal(p, v + 1n, 'deterministic: consecutive reads within a slice differ by one tick');
});

test('deterministic counter follows the instruction count', () => {
  const { cpu } = setup(true);
  cpu.icount = 1000;
  assert.equal(mrs(cpu, 'CNTVCT_EL0'), 1000n);
  assert.equal(mrs(cpu, 'CNTVCT_EL0'), 1001n, 'reads within a slice still increase');
  cpu.icount = 5000;
  assert.equal(mrs(cpu, 'CNTVCT_EL0'), 5000n);
  cpu.icount = 5000;
  assert.equal(mrs(cpu, 'CNTPCT_EL0'), 5001n);
  // A timer compared against a count the guest has already read fires at once
  const seen = mrs(cpu, 'CNTVCT_EL0');
  assert.equal(seen, 5002n);
  msr(cpu, 'CNTV_CVAL_EL0', seen);
  msr(cpu, 'CNTV_CTL_EL0', 1);
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 5n, 'ISTATUS set: count >= CVAL');
});

test('deterministic counter is shared by the vCPUs of a machine', () => {
  const a = makeCpu();
  const b = makeCpu();
  const peers = [a.cpu, b.cpu];
  a.cpu.peers = peers;
  // b is a vCPU of the same machine
  (b.cpu as { peers: Arm64Cpu[] }).peers = peers;
  const ta = new GenericTimer(a.cpu, () => {}, true);
  const tb = new GenericTimer(b.cpu, () => {}, true);
  assert.equal(ta.counter, tb.counter);
  a.cpu.icount = 300;
  b.cpu.icount = 200;
  assert.equal(mrs(a.cpu, 'CNTVCT_EL0'), 500n);
  assert.equal(mrs(b.cpu, 'CNTVCT_EL0'), 501n);
});

test('CVAL, ENABLE, ISTATUS, IMASK and the virtual timer PPI (27)', () => {
  const { cpu, timer, levels, pending } = setup(true);
  cpu.icount = 1000;
  msr(cpu, 'CNTV_CVAL_EL0', 2000);
  assert.equal(mrs(cpu, 'CNTV_CVAL_EL0'), 2000n);
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 0n);
  msr(cpu, 'CNTV_CTL_EL0', 1); // ENABLE
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 1n, 'not yet: ISTATUS = 0');
  assert.equal(cpu.irqLine, false);
  cpu.icount = 1999;
  timer.poll();
  assert.equal(pending() & (1 << 27), 0);
  cpu.icount = 2000;
  timer.poll();
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 5n, 'ENABLE | ISTATUS');
  assert.equal(levels.get(27), true);
  assert.equal(pending() & (1 << 27), 1 << 27, 'PPI 27 pending in the redistributor');
  assert.equal(cpu.irqLine, true);
  // IMASK: output low, ISTATUS still set; ISTATUS is read-only
  msr(cpu, 'CNTV_CTL_EL0', 3 | 4);
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 7n);
  assert.equal(levels.get(27), false);
  assert.equal(pending() & (1 << 27), 0);
  assert.equal(cpu.irqLine, false);
  // Unmask, then move CVAL to the future: condition no longer met
  msr(cpu, 'CNTV_CTL_EL0', 1);
  assert.equal(levels.get(27), true);
  msr(cpu, 'CNTV_CVAL_EL0', 1n << 40n);
  assert.equal(levels.get(27), false);
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 1n);
  // Disabled: ISTATUS reads 0 and the output is low even when the count has passed CVAL
  msr(cpu, 'CNTV_CVAL_EL0', 0);
  assert.equal(levels.get(27), true);
  msr(cpu, 'CNTV_CTL_EL0', 0);
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 0n);
  assert.equal(levels.get(27), false);
  // CVAL compares as an unsigned 64-bit value
  msr(cpu, 'CNTV_CVAL_EL0', M64);
  msr(cpu, 'CNTV_CTL_EL0', 1);
  assert.equal(mrs(cpu, 'CNTV_CVAL_EL0'), M64);
  assert.equal(mrs(cpu, 'CNTV_CTL_EL0'), 1n);
  assert.equal(timer.nextDeadlineMs(), 0, 'deterministic: armed timer');
});

test('TVAL reads CVAL - count (32 bits) and writes CVAL = count + SignExtend(TVAL)', () => {
  const { cpu, levels } = setup(true);
  cpu.icount = 100_000;
  msr(cpu, 'CNTP_TVAL_EL0', 500); // counter read: 100000
  assert.equal(mrs(cpu, 'CNTP_CVAL_EL0'), 100_500n);
  // the next read of the counter is 100001
  assert.equal(mrs(cpu, 'CNTP_TVAL_EL0'), 499n);
  cpu.icount = 100_600;
  // CVAL - count = -100: bits [31:0] of the two's complement, bits [63:32] zero
  assert.equal(mrs(cpu, 'CNTP_TVAL_EL0'), -100n & 0xffffffffn);
  // A negative TVAL (bit 31 set) sets CVAL in the past
  cpu.icount = 200_000;
  msr(cpu, 'CNTP_CTL_EL0', 1);
  msr(cpu, 'CNTP_TVAL_EL0', 0xffff_fff0); // -16
  assert.equal(
    mrs(cpu, 'CNTP_CVAL_EL0'),
    200_000n - 16n,
    'counter read 200000 (CTL accesses do not count as reads)',
  );
  assert.equal(levels.get(30), true, 'physical timer drives PPI 30');
  assert.equal(mrs(cpu, 'CNTP_CTL_EL0'), 5n);
  // Bits [63:32] of a TVAL write are ignored
  msr(cpu, 'CNTP_TVAL_EL0', (0x1234n << 32n) | 10n);
  const now = 200_001n; // second counter read in this slice
  assert.equal(mrs(cpu, 'CNTP_CVAL_EL0'), now + 10n);
  assert.equal(levels.get(30), false);
});

test('deterministic WFI: the counter skips to the next deadline and the interrupt wakes the CPU', () => {
  const { cpu, timer } = setup(true);
  cpu.icount = 10;
  msr(cpu, 'CNTV_TVAL_EL0', 1_000_000);
  msr(cpu, 'CNTV_CTL_EL0', 1);
  cpu.waiting = true;
  assert.equal(timer.nextDeadlineTicks(), 1_000_010);
  timer.poll();
  assert.equal(cpu.waiting, false, 'woken by the timer PPI');
  assert.equal(cpu.irqLine, true);
  assert.equal(mrs(cpu, 'CNTVCT_EL0') >= 1_000_010n, true);
  assert.equal(timer.nextDeadlineMs(), Infinity, 'fired timers are not future deadlines');
  // A running CPU does not skip
  msr(cpu, 'CNTV_TVAL_EL0', 1_000_000);
  const before = mrs(cpu, 'CNTVCT_EL0');
  timer.poll();
  assert.equal(mrs(cpu, 'CNTVCT_EL0'), before + 1n);
  // Masked timers are not deadlines
  msr(cpu, 'CNTV_CTL_EL0', 3);
  cpu.waiting = true;
  timer.poll();
  assert.equal(mrs(cpu, 'CNTVCT_EL0'), before + 2n);
  assert.equal(timer.nextDeadlineMs(), Infinity);
});

test('real-time counter: 62.5 MHz from the host monotonic clock', async () => {
  const { cpu, timer } = setup(false);
  const a = performance.now();
  const c1 = mrs(cpu, 'CNTVCT_EL0');
  const b = performance.now();
  await new Promise((r) => setTimeout(r, 20));
  const c = performance.now();
  const c2 = mrs(cpu, 'CNTVCT_EL0');
  const d = performance.now();
  const ticks = Number(c2 - c1);
  assert.ok(ticks >= Math.floor((c - b) * 62_500) - 1, `${ticks} ticks at least the inner interval`);
  assert.ok(ticks <= Math.ceil((d - a) * 62_500) + 1, `${ticks} ticks at most the outer interval`);
  // A timer one second away: the time left is CVAL minus the counter, bracketed by two reads of it
  // (no assumption on how long the test itself takes).
  msr(cpu, 'CNTV_TVAL_EL0', 62_500_000);
  msr(cpu, 'CNTV_CTL_EL0', 1);
  const cval = mrs(cpu, 'CNTV_CVAL_EL0');
  const before = mrs(cpu, 'CNTVCT_EL0');
  const ms = timer.nextDeadlineMs();
  const after = mrs(cpu, 'CNTVCT_EL0');
  assert.ok(cval - before <= 62_500_000n, 'CVAL = count at the write + TVAL');
  assert.ok(
    ms <= Number(cval - before) / 62_500 && ms >= Number(cval - after) / 62_500,
    `deadline in ${ms} ms`,
  );
  msr(cpu, 'CNTV_CTL_EL0', 3);
  assert.equal(timer.nextDeadlineMs(), Infinity);
  // Already due
  msr(cpu, 'CNTP_TVAL_EL0', 0);
  msr(cpu, 'CNTP_CTL_EL0', 1);
  assert.equal(mrs(cpu, 'CNTP_CTL_EL0'), 5n);
  assert.equal(cpu.irqLine, true);
  // A shared explicit counter
  const counter = new SystemCounter([cpu], false);
  const t2 = new GenericTimer(makeCpu().cpu, () => {}, { counter });
  assert.equal(t2.counter, counter);
});

test('run slices shrink towards a real-time deadline: half the instructions left at the peak rate, at least NEAR_DEADLINE_SLICE', () => {
  const { cpu, timer } = setup(false);
  const rate = 100_000; // instructions per ms
  assert.equal(timer.instructionsToDeadline(rate), Infinity, 'no timer armed');
  msr(cpu, 'CNTV_TVAL_EL0', 62_500_000); // one second
  msr(cpu, 'CNTV_CTL_EL0', 1);
  const cval = Number(mrs(cpu, 'CNTV_CVAL_EL0'));
  const before = Number(mrs(cpu, 'CNTVCT_EL0'));
  const n = timer.instructionsToDeadline(rate);
  const after = Number(mrs(cpu, 'CNTVCT_EL0'));
  const half = (ticks: number): number => Math.floor((ticks / 62_500) * rate * 0.5);
  assert.ok(
    n <= half(cval - before) && n >= half(cval - after),
    `${n} instructions for about 1 s at ${rate}/ms`,
  );
  assert.equal(
    timer.instructionsToDeadline(0),
    NEAR_DEADLINE_SLICE,
    'no rate measured yet: the shortest slice',
  );
  // one second at 1 instruction per ms: 500, fewer than the shortest slice
  msr(cpu, 'CNTV_TVAL_EL0', 62_500_000);
  assert.equal(timer.instructionsToDeadline(1), NEAR_DEADLINE_SLICE);
  msr(cpu, 'CNTV_TVAL_EL0', 0); // fired: the line is raised, nothing left to wait for
  timer.poll();
  assert.equal(cpu.irqLine, true);
  assert.equal(timer.instructionsToDeadline(rate), Infinity);
});

test('EL0 access control (CNTKCTL_EL1): denied accesses trap with EC 0x18', () => {
  // mrs x3, cntvct_el0 ; msr cntv_ctl_el0, x7 ; mrs x1, cntkctl_el1 (objdump)
  const { cpu } = setup(true, [0xd53be043, 0xd51be327, 0xd538e101]);
  cpu.sys.VBAR_EL1 = BigInt(RAM_BASE + 0x800);
  msr(cpu, 'CNTKCTL_EL1', 0);
  cpu.el = 0;
  cpu.pcLo = RAM_BASE;
  assert.throws(() => mrs(cpu, 'CNTVCT_EL0'));
  // ISS: Op0 [21:20], Op2 [19:17], Op1 [16:14], CRn [13:10], Rt [9:5], CRm [4:1], Direction [0] = read
  const iss = (3 << 20) | (2 << 17) | (3 << 14) | (14 << 10) | (3 << 5) | (0 << 1) | 1;
  assert.equal(cpu.sys.ESR_EL1, BigInt(((0x18 << 26) | (1 << 25) | iss) >>> 0));
  assert.equal(cpu.sys.ELR_EL1, BigInt(RAM_BASE));
  assert.equal(cpu.el, 1);
  assert.equal(cpu.pcLo, RAM_BASE + 0x800 + 0x400, 'synchronous, lower EL');
  // A denied write of the virtual timer (MSR: Direction = 0)
  cpu.el = 0;
  cpu.pcLo = RAM_BASE + 4;
  assert.throws(() => msr(cpu, 'CNTV_CTL_EL0', 1));
  const iss2 = (3 << 20) | (1 << 17) | (3 << 14) | (14 << 10) | (7 << 5) | (3 << 1) | 0;
  assert.equal(cpu.sys.ESR_EL1, BigInt(((0x18 << 26) | (1 << 25) | iss2) >>> 0));
  // CNTKCTL_EL1 itself is EL1-only: UNDEF (EC 0) at EL0
  cpu.el = 0;
  cpu.pcLo = RAM_BASE + 8;
  assert.throws(() => mrs(cpu, 'CNTKCTL_EL1'));
  assert.equal(cpu.sys.ESR_EL1 >> 26n, 0n);
  // EL0VCTEN: the virtual count is readable; CNTFRQ readable when either counter is
  msr(cpu, 'CNTKCTL_EL1', 1 << 1);
  assert.equal(mrs(cpu, 'CNTKCTL_EL1'), 2n);
  cpu.el = 0;
  mrs(cpu, 'CNTVCT_EL0');
  assert.equal(mrs(cpu, 'CNTFRQ_EL0'), 62_500_000n);
  assert.throws(() => mrs(cpu, 'CNTPCT_EL0'), 'EL0PCTEN clear');
  cpu.el = 0;
  assert.throws(() => mrs(cpu, 'CNTV_CTL_EL0'), 'EL0VTEN clear');
  cpu.el = 1;
  msr(cpu, 'CNTKCTL_EL1', (1 << 0) | (1 << 8) | (1 << 9));
  cpu.el = 0;
  mrs(cpu, 'CNTPCT_EL0');
  mrs(cpu, 'CNTV_CTL_EL0');
  mrs(cpu, 'CNTP_CVAL_EL0');
  assert.throws(() => mrs(cpu, 'CNTVCT_EL0'), 'EL0VCTEN clear');
});

test('event stream: CNTKCTL_EL1.EVNTEN signals an event when counter bit EVNTI toggles', () => {
  const { cpu, timer } = setup(true);
  cpu.icount = 0;
  // EVNTEN, EVNTDIR = 0 (0 -> 1 transitions), EVNTI = 3: bit 3 rises at 8, 24, 40, ...
  msr(cpu, 'CNTKCTL_EL1', (1 << 2) | (3 << 4));
  const at = (n: number): boolean => {
    cpu.eventRegister = false;
    cpu.icount = n;
    timer.poll();
    return cpu.eventRegister;
  };
  assert.equal(at(5), false);
  assert.equal(at(9), true);
  assert.equal(at(20), false);
  assert.equal(at(24), true);
  assert.equal(at(24), false, 'no time passed');
  // EVNTDIR = 1: 1 -> 0 transitions of bit 3, at multiples of 16
  msr(cpu, 'CNTKCTL_EL1', (1 << 2) | (1 << 3) | (3 << 4));
  assert.equal(at(31), false);
  assert.equal(at(32), true);
  // Disabled: no events
  msr(cpu, 'CNTKCTL_EL1', 3 << 4);
  assert.equal(at(100), false);
  // The machine can take the events
  let got = 0;
  timer.onEvent = () => got++;
  msr(cpu, 'CNTKCTL_EL1', (1 << 2) | (0 << 4)); // bit 0 rises at every odd count
  at(101);
  at(103);
  assert.equal(got, 2);
});

test('event stream ends a WFE wait but leaves a WFI wait alone', () => {
  const ADD = 0x91000400; // add x0, x0, #1
  const WFE = 0xd503205f;
  const WFI = 0xd503207f;
  const code = new Array<number>(0x400).fill(ADD);
  code[1] = WFE;
  code[3] = WFI;
  code[0x3ff] = WFE; // last word of the page
  const { cpu, timer } = setup(true, code);
  msr(cpu, 'CNTKCTL_EL1', (1 << 2) | (0 << 4)); // an event at every odd count
  let n = 1000;
  const tick = (): void => {
    n += 2;
    cpu.icount = n;
    timer.poll();
  };
  // The executor leaves PC after the waiting instruction (here: simulated after running one ADD so
  // that the fetch page is known)
  cpu.run(1);
  cpu.pcLo = RAM_BASE + 8; // after the WFE
  cpu.waiting = true;
  cpu.eventRegister = false;
  tick();
  assert.equal(cpu.waiting, false, 'WFE completes');
  assert.equal(cpu.eventRegister, false, 'and consumes the event');
  cpu.pcLo = RAM_BASE + 16; // after the WFI
  cpu.waiting = true;
  tick();
  assert.equal(cpu.waiting, true, 'WFI keeps waiting');
  assert.equal(cpu.eventRegister, true);
  // WFE in the last word of the page: PC has moved into the next page
  cpu.waiting = false;
  cpu.pcLo = RAM_BASE + 0xff8;
  cpu.run(1);
  cpu.pcLo = RAM_BASE + 0x1000;
  cpu.waiting = true;
  tick();
  assert.equal(cpu.waiting, false);
  // Deterministic idle: a vCPU sleeping in WFE is a deadline at the next event (EVNTI = 4: bit 4
  // rises every 32 counts, at counts = 16 mod 32); poll() skips the counter there and the WFE completes
  msr(cpu, 'CNTKCTL_EL1', (1 << 2) | (4 << 4));
  cpu.icount = 2000; // 2000 mod 32 = 16: the event at 2000 is the one enabling saw
  timer.poll();
  cpu.pcLo = RAM_BASE + 8;
  cpu.waiting = true;
  assert.equal(timer.nextDeadlineTicks(), 2032);
  assert.equal(timer.nextDeadlineMs(), 0);
  timer.poll();
  assert.equal(cpu.waiting, false);
  assert.ok(mrs(cpu, 'CNTVCT_EL0') >= 2032n);
  // WFI: no event deadline
  cpu.pcLo = RAM_BASE + 16;
  cpu.waiting = true;
  assert.equal(timer.nextDeadlineTicks(), Infinity);
});

// A guest program (assembled with the cross assembler): GIC and CPU interface set-up, a virtual timer
// 1000 ticks away, WFI; the IRQ handler acknowledges, masks the timer, reads the running priority
// before and after EOI. Needs the MRS/MSR dispatch of the system instruction group: skipped while
// those encodings still decode as unallocated.
const PROGRAM_MAIN = [
  0xd2a10001, // mov x1, #0x8000000
  0x52800242, // mov w2, #0x12
  0xb9000022, // str w2, [x1]
  0xd2a10141, // mov x1, #0x80a0000
  0xb900143f, // str wzr, [x1, #20]
  0xd2a10161, // mov x1, #0x80b0000
  0x12800002, // mov w2, #0xffffffff
  0xb9008022, // str w2, [x1, #128]
  0x52a10002, // mov w2, #0x8000000
  0xb9010022, // str w2, [x1, #256]
  0xd2801e02, // mov x2, #0xf0
  0xd5184602, // msr icc_pmr_el1, x2
  0xd2800022, // mov x2, #0x1
  0xd518cce2, // msr icc_igrpen1_el1, x2
  0xd53be003, // mrs x3, cntfrq_el0
  0xd2807d05, // mov x5, #0x3e8
  0xd51be305, // msr cntv_tval_el0, x5
  0xd2800025, // mov x5, #0x1
  0xd51be325, // msr cntv_ctl_el0, x5
  0xd50342ff, // msr daifclr, #0x2
  0xd503207f, // wfi
  0x17ffffff, // b 50 <main+0x50>
];
const PROGRAM_IRQ = [
  0xd538cc0a, // mrs x10, icc_iar1_el1
  0xd53be32b, // mrs x11, cntv_ctl_el0
  0xd280006c, // mov x12, #0x3
  0xd51be32c, // msr cntv_ctl_el0, x12
  0xd538cb6d, // mrs x13, icc_rpr_el1
  0xd518cc2a, // msr icc_eoir1_el1, x10
  0xd538cb6e, // mrs x14, icc_rpr_el1
  0xd53be04f, // mrs x15, cntvct_el0
  0xd4000002, // hvc #0x0
];

test('guest program: timer interrupt through the GIC wakes WFI and is acknowledged with MRS', (t) => {
  const code = new Array<number>(0x300).fill(0);
  PROGRAM_MAIN.forEach((w, i) => (code[i] = w));
  PROGRAM_IRQ.forEach((w, i) => (code[(0x800 + 0x280) / 4 + i] = w)); // VBAR + IRQ, current EL, SP_ELx
  let done = false;
  const tc = makeCpu(code, {
    hooks: {
      hvc: (c) => {
        done = true;
        c.off = true;
        return true;
      },
    },
  });
  const { cpu, mem } = tc;
  if (cpu.code.decoder.decode(0xd538cc0a).name === 'UNALLOCATED') {
    t.skip('MRS/MSR dispatch not available');
    return;
  }
  const gic = new GicV3(1);
  mem.addMmio(0x0800_0000, 0x1_0000, 'gicd', gic.distributor());
  mem.addMmio(0x080a_0000, 0x2_0000, 'gicr', gic.redistributors());
  gic.attachCpu(cpu);
  const timer = new GenericTimer(cpu, (intid, level) => gic.setPpi(0, intid, level), true);
  cpu.sys.VBAR_EL1 = BigInt(RAM_BASE + 0x800);
  // The machine loop: poll the timers, wake a waiting CPU with a signalled interrupt, run slices
  for (let i = 0; i < 100 && !done; i++) {
    timer.poll();
    if (cpu.waiting && cpu.irqLine) cpu.waiting = false;
    if (!cpu.waiting) cpu.run(100);
  }
  assert.equal(done, true);
  assert.equal(cpu.xBig(3), 62_500_000n, 'CNTFRQ_EL0');
  assert.equal(cpu.xBig(10), 27n, 'ICC_IAR1_EL1: the virtual timer PPI');
  assert.equal(cpu.xBig(11), 5n, 'CNTV_CTL_EL0: ENABLE | ISTATUS');
  assert.equal(cpu.xBig(13), 0n, 'running priority while active: the PPI priority (reset value 0)');
  assert.equal(cpu.xBig(14), 0xffn, 'idle after EOI');
  assert.ok(cpu.xBig(15) >= 1000n, 'the counter reached the deadline');
});

// GICv3: distributor and redistributor registers through the memory bus, the CPU interface through
// the ICC_* system register accessors defined on real Arm64Cpu objects. Expected values follow the
// Arm GIC architecture specification (GICv3/v4); system register encodings were taken from the cross
// assembler (`mrs x0, ICC_IAR1_EL1` and friends, disassembled with aarch64-linux-gnu-objdump).
// Reset values and the subtler flows (HPPIR under PMR masking, BPR1 = 5 running priority, group
// enables, EOImode 1, ISPENDR on a level interrupt) were cross-checked against a bare-metal probe on
// qemu-system-aarch64 -M virt,gic-version=3.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { Arm64Cpu, CodeCache, type CpuHooks } from '../src/cpu/arm64/cpu.js';
import { sysregKey } from '../src/cpu/arm64/sysregs.js';
import { GicV3 } from '../src/devices/gicv3.js';

const GICD = 0x0800_0000;
const GICR = 0x080a_0000;
const SGI = 0x1_0000; // SGI_base frame within a redistributor

// (op0, op1, CRn, CRm, op2) from objdump of the assembled MRS/MSR instructions.
const ICC: Record<string, [number, number, number, number, number]> = {
  PMR: [3, 0, 4, 6, 0],
  IAR0: [3, 0, 12, 8, 0],
  EOIR0: [3, 0, 12, 8, 1],
  HPPIR0: [3, 0, 12, 8, 2],
  BPR0: [3, 0, 12, 8, 3],
  AP0R0: [3, 0, 12, 8, 4],
  AP1R0: [3, 0, 12, 9, 0],
  DIR: [3, 0, 12, 11, 1],
  RPR: [3, 0, 12, 11, 3],
  SGI1R: [3, 0, 12, 11, 5],
  ASGI1R: [3, 0, 12, 11, 6],
  SGI0R: [3, 0, 12, 11, 7],
  IAR1: [3, 0, 12, 12, 0],
  EOIR1: [3, 0, 12, 12, 1],
  HPPIR1: [3, 0, 12, 12, 2],
  BPR1: [3, 0, 12, 12, 3],
  CTLR: [3, 0, 12, 12, 4],
  SRE: [3, 0, 12, 12, 5],
  IGRPEN0: [3, 0, 12, 12, 6],
  IGRPEN1: [3, 0, 12, 12, 7],
};

function reg(cpu: Arm64Cpu, name: string) {
  const e = ICC[name];
  const r = cpu.sys.extra.get(sysregKey(...e));
  assert.ok(r, `ICC_${name}_EL1 defined`);
  return r;
}
function mrs(cpu: Arm64Cpu, name: string): number {
  const r = reg(cpu, name);
  assert.ok(r.read, `ICC_${name}_EL1 readable`);
  return Number(r.read(cpu));
}
function msr(cpu: Arm64Cpu, name: string, v: number | bigint): void {
  const r = reg(cpu, name);
  assert.ok(r.write, `ICC_${name}_EL1 writable`);
  r.write(cpu, BigInt(v));
}

interface Board {
  gic: GicV3;
  mem: GuestMemory;
  cpus: Arm64Cpu[];
  rd(pa: number, size?: number): number;
  wr(pa: number, v: number, size?: number): void;
}

/** `n` vCPUs sharing one memory, with the GIC mapped at the virt board's addresses. */
function board(n: number, nspis?: number): Board {
  const mem = new GuestMemory(0x4000_0000, 1 << 20);
  const code = new CodeCache(mem);
  const hooks: CpuHooks = { hvc: () => false, smc: () => false };
  const cpus: Arm64Cpu[] = [];
  for (let i = 0; i < n; i++) cpus.push(new Arm64Cpu(i, mem, code, hooks));
  for (const c of cpus) c.peers = cpus;
  const gic = new GicV3(n, nspis);
  mem.addMmio(GICD, 0x1_0000, 'gicd', gic.distributor());
  mem.addMmio(GICR, 0x2_0000 * n, 'gicr', gic.redistributors());
  for (const c of cpus) gic.attachCpu(c);
  return {
    gic,
    mem,
    cpus,
    rd: (pa, size = 4) => mem.readPhys(pa, size),
    wr: (pa, v, size = 4) => mem.writePhys(pa, size, v),
  };
}

/** What Linux's driver does: enable the distributor, all SPIs group 1, CPU interfaces on. */
function linuxInit(b: Board): void {
  b.wr(GICD + 0x0, 0x13); // ARE | EnableGrp1 | EnableGrp0
  for (let w = 1; w < b.gic.nirqs / 32; w++) b.wr(GICD + 0x80 + 4 * w, 0xffffffff);
  b.cpus.forEach((c, i) => {
    const rd = GICR + i * 0x2_0000;
    b.wr(rd + 0x14, 0); // WAKER: clear ProcessorSleep
    b.wr(rd + SGI + 0x80, 0xffffffff); // IGROUPR0
    msr(c, 'PMR', 0xf0);
    msr(c, 'BPR1', 0);
    msr(c, 'IGRPEN1', 1);
  });
}

function enableSpi(b: Board, intid: number, prio: number, target = 0): void {
  b.wr(GICD + 0x400 + intid, prio, 1);
  b.wr(GICD + 0x6000 + 8 * intid, target);
  b.wr(GICD + 0x6000 + 8 * intid + 4, 0);
  b.wr(GICD + 0x100 + 4 * (intid >>> 5), 1 << (intid & 31));
}

const bit = (intid: number): number => (1 << (intid & 31)) >>> 0;

test('system register encodings and fixed CPU interface values', () => {
  const b = board(1);
  const c = b.cpus[0];
  for (const [name, e] of Object.entries(ICC)) {
    const r = c.sys.extra.get(sysregKey(...e));
    assert.equal(r?.name, `ICC_${name}_EL1`, name);
  }
  assert.equal(mrs(c, 'SRE'), 0b111); // SRE, DFB, DIB
  msr(c, 'SRE', 0);
  assert.equal(mrs(c, 'SRE'), 0b111);
  const ctlr = mrs(c, 'CTLR');
  assert.equal((ctlr >>> 8) & 7, 4, 'PRIbits = 4: 5 bits of priority');
  assert.equal((ctlr >>> 11) & 7, 0, 'IDbits = 0: 16-bit INTIDs');
  assert.equal((ctlr >>> 15) & 1, 1, 'A3V');
  assert.equal((ctlr >>> 1) & 1, 0, 'EOImode resets to 0');
  // PMR keeps the 5 implemented bits
  msr(c, 'PMR', 0xff);
  assert.equal(mrs(c, 'PMR'), 0xf8);
  // BPR1 minimum is BPR0's minimum (2 for 5 bits) + 1
  msr(c, 'BPR1', 0);
  assert.equal(mrs(c, 'BPR1'), 3);
  msr(c, 'BPR0', 0);
  assert.equal(mrs(c, 'BPR0'), 2);
  assert.equal(mrs(c, 'RPR'), 0xff, 'idle running priority');
  assert.equal(mrs(c, 'IAR1'), 1023);
  assert.equal(mrs(c, 'IAR0'), 1023);
  assert.equal(mrs(c, 'HPPIR0'), 1023);
  // ICC registers are EL1-only: UNDEF at EL0
  c.el = 0;
  assert.throws(() => mrs(c, 'PMR'));
  assert.equal(c.sys.ESR_EL1 >> 26n, 0n, 'EC = unknown (UNDEF)');
});

test('distributor identification registers', () => {
  const b = board(2);
  assert.equal(b.rd(GICD + 0xffe8) & 0xf0, 0x30, 'GICD_PIDR2.ArchRev = 3');
  assert.equal(b.rd(GICD + 0xfff0), 0x0d);
  assert.equal(b.rd(GICD + 0xfff4), 0xf0);
  assert.equal(b.rd(GICD + 0xfff8), 0x05);
  assert.equal(b.rd(GICD + 0xfffc), 0xb1);
  const typer = b.rd(GICD + 0x4);
  assert.equal(((typer & 0x1f) + 1) * 32, 288, 'ITLinesNumber: 256 SPIs + 32');
  assert.equal((typer >>> 17) & 1, 0, 'no LPIs');
  assert.equal((typer >>> 16) & 1, 0, 'MBIS = 0');
  assert.equal(((typer >>> 19) & 0x1f) + 1, 16, 'IDbits: 16');
  assert.equal(b.rd(GICD + 0x8) & 0xfff, 0x43b, 'IIDR implementer Arm');
  assert.equal(b.rd(GICD + 0xc), 0, 'TYPER2');
  // CTLR: ARE reads 1 whatever is written; RWP = 0
  b.wr(GICD, 0);
  assert.equal(b.rd(GICD) & 0x10, 0x10);
  assert.equal(b.rd(GICD) >>> 31, 0);
  b.wr(GICD, 0x2);
  assert.equal(b.rd(GICD) & 0x3, 0x2);
  // 64 SPIs
  const small = board(1, 64);
  assert.equal(((small.rd(GICD + 0x4) & 0x1f) + 1) * 32, 96);
  // Bad sizes read as zero and writes are ignored; no throw
  assert.equal(b.rd(GICD + 0x4, 1), 0);
  assert.equal(b.rd(GICD + 0x2, 2), 0);
  b.wr(GICD + 0x100 + 4, 0xff, 1);
  assert.equal(b.rd(GICD + 0x104), 0);
  assert.equal(b.rd(GICD + 0x9000), 0);
});

test('redistributor TYPER, Last bit, PIDR2 and the WAKER handshake', () => {
  const b = board(3);
  for (let i = 0; i < 3; i++) {
    const rd = GICR + i * 0x2_0000;
    // A 64-bit read is split by the bus into two 32-bit reads, low half first.
    const lo = b.rd(rd + 0x8);
    const hi = b.rd(rd + 0xc);
    assert.equal(hi, i, 'Affinity_Value = MPIDR affinity (Aff0 = vCPU index)');
    assert.equal((lo >>> 8) & 0xffff, i, 'Processor_Number');
    assert.equal((lo >>> 4) & 1, i === 2 ? 1 : 0, 'Last');
    assert.equal(lo & 1, 0, 'PLPIS = 0');
    assert.equal(b.rd(rd + 0xffe8) & 0xf0, 0x30, 'GICR_PIDR2.ArchRev = 3');
    assert.equal(b.rd(rd + 0x0), 0, 'GICR_CTLR: RWP clear');
  }
  // Beyond the last frame: RAZ
  assert.equal(b.rd(GICR + 3 * 0x2_0000 + 0x8), 0);
  const waker = GICR + 0x2_0000 + 0x14;
  assert.equal(b.rd(waker), 0b110, 'reset: ProcessorSleep and ChildrenAsleep');
  b.wr(waker, 0);
  assert.equal(b.rd(waker), 0, 'ChildrenAsleep follows ProcessorSleep');
  b.wr(waker, 0b10);
  assert.equal(b.rd(waker) & 0b110, 0b110);
  // SGI_base: ICFGR0 reads all SGIs edge-triggered and ignores writes
  const sgi = GICR + SGI;
  assert.equal(b.rd(sgi + 0xc00), 0xaaaaaaaa);
  b.wr(sgi + 0xc00, 0);
  assert.equal(b.rd(sgi + 0xc00), 0xaaaaaaaa);
  b.wr(sgi + 0xc04, 0x0800_0000); // PPI 29 edge
  assert.equal(b.rd(sgi + 0xc04), 0x0800_0000);
  // Priorities are byte accessible, 5 bits kept
  b.wr(sgi + 0x400 + 27, 0xa7, 1);
  assert.equal(b.rd(sgi + 0x400 + 27, 1), 0xa0);
  assert.equal(b.rd(sgi + 0x418), 0xa0000000);
});

test('level-sensitive SPI: enable, pend, acknowledge, EOI', () => {
  const b = board(1);
  linuxInit(b);
  const c = b.cpus[0];
  enableSpi(b, 33, 0xa0);
  assert.equal(b.rd(GICD + 0x104), bit(33), 'ISENABLER1');
  assert.equal(b.rd(GICD + 0x184), bit(33), 'ICENABLER1 reads the enables too');
  assert.equal(c.irqLine, false);
  b.gic.setSpi(33, true);
  assert.equal(c.irqLine, true);
  assert.equal(b.rd(GICD + 0x204), bit(33), 'ISPENDR1');
  assert.equal(mrs(c, 'HPPIR1'), 33);
  assert.equal(mrs(c, 'IAR1'), 33);
  assert.equal(c.irqLine, false, 'active: not signalled again');
  assert.equal(b.rd(GICD + 0x304), bit(33), 'ISACTIVER1');
  assert.equal(b.rd(GICD + 0x204), bit(33), 'level still high: active and pending');
  assert.equal(mrs(c, 'RPR'), 0xa0);
  assert.equal(mrs(c, 'AP1R0'), 1 << (0xa0 >> 3));
  assert.equal(mrs(c, 'IAR1'), 1023, 'nothing else');
  // The device drops its line before EOI
  b.gic.setSpi(33, false);
  assert.equal(b.rd(GICD + 0x204), 0);
  msr(c, 'EOIR1', 33);
  assert.equal(b.rd(GICD + 0x304), 0, 'EOImode 0 deactivates');
  assert.equal(mrs(c, 'RPR'), 0xff);
  assert.equal(c.irqLine, false);
  // Line stays high across EOI: signalled again
  b.gic.setSpi(33, true);
  assert.equal(mrs(c, 'IAR1'), 33);
  msr(c, 'EOIR1', 33);
  assert.equal(c.irqLine, true, 'still asserted after EOI');
  // Disable: no longer signalled, still pending
  b.wr(GICD + 0x184, bit(33));
  assert.equal(c.irqLine, false);
  assert.equal(b.rd(GICD + 0x204), bit(33));
  b.wr(GICD + 0x104, bit(33));
  assert.equal(c.irqLine, true);
  // ICPENDR cannot clear a level that is still asserted
  b.wr(GICD + 0x284, bit(33));
  assert.equal(b.rd(GICD + 0x204), bit(33));
  b.gic.setSpi(33, false);
  assert.equal(c.irqLine, false);
  // ISPENDR latches a level-sensitive interrupt; acknowledging clears the latch
  b.wr(GICD + 0x204, bit(33));
  assert.equal(c.irqLine, true);
  assert.equal(mrs(c, 'IAR1'), 33);
  msr(c, 'EOIR1', 33);
  assert.equal(c.irqLine, false);
  assert.equal(b.rd(GICD + 0x204), 0);
});

test('edge-triggered SPI latches rising edges', () => {
  const b = board(1);
  linuxInit(b);
  const c = b.cpus[0];
  // ICFGR2 covers INTIDs 32..47; INTID 34 is field 2: bits [5:4], edge = bit 5
  b.wr(GICD + 0xc08, 1 << 5);
  assert.equal(b.rd(GICD + 0xc08), 1 << 5);
  enableSpi(b, 34, 0x80);
  b.gic.setSpi(34, true);
  b.gic.setSpi(34, false);
  assert.equal(c.irqLine, true, 'the edge was latched');
  assert.equal(mrs(c, 'IAR1'), 34);
  assert.equal(b.rd(GICD + 0x204), 0, 'acknowledge clears the pending latch');
  b.gic.setSpi(34, true);
  assert.equal(c.irqLine, false, 'active');
  assert.equal(b.rd(GICD + 0x204), bit(34), 'new edge while active: active and pending');
  msr(c, 'EOIR1', 34);
  assert.equal(c.irqLine, true);
  assert.equal(mrs(c, 'IAR1'), 34);
  msr(c, 'EOIR1', 34);
  assert.equal(c.irqLine, false, 'a held line is not a new edge');
  b.gic.setSpi(34, false);
  b.gic.setSpi(34, true);
  assert.equal(c.irqLine, true);
  b.wr(GICD + 0x284, bit(34));
  assert.equal(c.irqLine, false, 'ICPENDR clears an edge latch');
});

test('priority order, PMR masking and group enables', () => {
  const b = board(1);
  linuxInit(b);
  const c = b.cpus[0];
  enableSpi(b, 40, 0x80);
  enableSpi(b, 41, 0x40);
  enableSpi(b, 42, 0x40);
  b.wr(GICD + 0x400 + 43, 0x10, 1); // 43 not enabled
  b.gic.setSpi(40, true);
  b.gic.setSpi(42, true);
  b.gic.setSpi(41, true);
  b.gic.setSpi(43, true);
  // PMR: only priorities strictly higher (numerically lower) than the mask are signalled
  msr(c, 'PMR', 0x40);
  assert.equal(c.irqLine, false);
  assert.equal(mrs(c, 'IAR1'), 1023);
  assert.equal(mrs(c, 'HPPIR1'), 41, 'HPPIR ignores the priority mask');
  msr(c, 'PMR', 0x48);
  assert.equal(c.irqLine, true);
  msr(c, 'PMR', 0xf0);
  // Highest priority first; equal priorities: lowest INTID first
  assert.equal(mrs(c, 'IAR1'), 41);
  msr(c, 'EOIR1', 41);
  b.gic.setSpi(41, false);
  assert.equal(mrs(c, 'IAR1'), 42);
  msr(c, 'EOIR1', 42);
  b.gic.setSpi(42, false);
  // Group enable of the CPU interface
  msr(c, 'IGRPEN1', 0);
  assert.equal(c.irqLine, false);
  assert.equal(mrs(c, 'IAR1'), 1023);
  assert.equal(mrs(c, 'HPPIR1'), 1023, 'group disabled at the CPU interface');
  msr(c, 'IGRPEN1', 1);
  assert.equal(c.irqLine, true);
  // Distributor group 1 enable
  b.wr(GICD, 0x10);
  assert.equal(c.irqLine, false);
  assert.equal(mrs(c, 'HPPIR1'), 1023, 'group disabled at the distributor');
  b.wr(GICD, 0x12);
  assert.equal(c.irqLine, true);
  // Group 0 interrupts are never signalled as IRQs
  b.wr(GICD + 0x84, 0xffffffff & ~bit(40));
  assert.equal(c.irqLine, false);
  assert.equal(mrs(c, 'IAR1'), 1023);
  assert.equal(mrs(c, 'IAR0'), 1023);
});

test('running priority, preemption and binary point', () => {
  const b = board(1);
  linuxInit(b);
  const c = b.cpus[0];
  enableSpi(b, 50, 0x98);
  enableSpi(b, 51, 0x88);
  enableSpi(b, 52, 0x98);
  b.gic.setSpi(50, true);
  assert.equal(mrs(c, 'IAR1'), 50);
  assert.equal(mrs(c, 'RPR'), 0x98);
  // Same priority does not preempt
  b.gic.setSpi(52, true);
  assert.equal(c.irqLine, false);
  assert.equal(mrs(c, 'IAR1'), 1023);
  // Higher priority preempts (BPR1 = 3: all five bits are group priority)
  b.gic.setSpi(51, true);
  assert.equal(c.irqLine, true);
  assert.equal(mrs(c, 'IAR1'), 51);
  assert.equal(mrs(c, 'RPR'), 0x88);
  assert.equal(mrs(c, 'AP1R0'), (1 << (0x98 >> 3)) | (1 << (0x88 >> 3)));
  // Nested EOIs drop priorities in order
  b.gic.setSpi(51, false);
  msr(c, 'EOIR1', 51);
  assert.equal(mrs(c, 'RPR'), 0x98);
  assert.equal(c.irqLine, false, '52 (0x98) does not preempt 50 (0x98)');
  b.gic.setSpi(50, false);
  msr(c, 'EOIR1', 50);
  assert.equal(mrs(c, 'RPR'), 0xff);
  assert.equal(mrs(c, 'IAR1'), 52);
  msr(c, 'EOIR1', 52);
  for (const n of [50, 51, 52]) b.gic.setSpi(n, false);
  // BPR1 = 5: group priority is bits [7:5]; 0x98 runs at group priority 0x80, and 0x88 (group
  // priority 0x80) can no longer preempt it
  msr(c, 'BPR1', 5);
  assert.equal(mrs(c, 'BPR1'), 5);
  b.gic.setSpi(50, true);
  assert.equal(mrs(c, 'IAR1'), 50);
  assert.equal(mrs(c, 'RPR'), 0x80);
  assert.equal(mrs(c, 'AP1R0'), 1 << (0x80 >> 3));
  b.gic.setSpi(51, true);
  assert.equal(c.irqLine, false);
  assert.equal(mrs(c, 'IAR1'), 1023);
  // Priority 0x70 is in group priority 0x60: preempts
  b.wr(GICD + 0x400 + 51, 0x70, 1);
  assert.equal(c.irqLine, true);
  // CBPR: BPR0 (+1) governs group 1; BPR1 reads BPR0 + 1 and ignores writes
  msr(c, 'CTLR', 1);
  msr(c, 'BPR0', 2);
  assert.equal(mrs(c, 'BPR1'), 3);
  msr(c, 'BPR1', 6);
  assert.equal(mrs(c, 'BPR1'), 3);
  // Software can clear the active priorities
  msr(c, 'AP1R0', 0);
  assert.equal(mrs(c, 'RPR'), 0xff);
});

test('EOImode 1: EOIR drops priority, DIR deactivates', () => {
  const b = board(1);
  linuxInit(b);
  const c = b.cpus[0];
  msr(c, 'CTLR', 2);
  assert.equal(mrs(c, 'CTLR') & 2, 2);
  enableSpi(b, 60, 0xa0);
  b.gic.setSpi(60, true);
  assert.equal(mrs(c, 'IAR1'), 60);
  msr(c, 'EOIR1', 60);
  assert.equal(mrs(c, 'RPR'), 0xff, 'priority dropped');
  assert.equal(b.rd(GICD + 0x304), bit(60), 'still active');
  assert.equal(c.irqLine, false, 'active level interrupt is not signalled');
  msr(c, 'DIR', 60);
  assert.equal(b.rd(GICD + 0x304), 0);
  assert.equal(c.irqLine, true, 'line still high');
  // ISACTIVER / ICACTIVER
  b.gic.setSpi(60, false);
  b.wr(GICD + 0x304, bit(60));
  assert.equal(b.rd(GICD + 0x304), bit(60));
  b.wr(GICD + 0x384, bit(60));
  assert.equal(b.rd(GICD + 0x384), 0);
  // Special INTIDs are ignored by EOIR
  msr(c, 'EOIR1', 1023);
});

test('IROUTER targets a second vCPU; IRM=1 lets any vCPU take it', () => {
  const b = board(2);
  linuxInit(b);
  const [c0, c1] = b.cpus;
  enableSpi(b, 35, 0xa0, 1);
  assert.equal(b.rd(GICD + 0x6000 + 8 * 35), 1);
  assert.equal(b.rd(GICD + 0x6000 + 8 * 35 + 4), 0);
  b.gic.setSpi(35, true);
  assert.equal(c0.irqLine, false);
  assert.equal(c1.irqLine, true);
  assert.equal(mrs(c0, 'IAR1'), 1023);
  assert.equal(mrs(c1, 'IAR1'), 35);
  msr(c1, 'EOIR1', 35);
  // Re-route to vCPU 0 while pending
  b.wr(GICD + 0x6000 + 8 * 35, 0);
  assert.equal(c0.irqLine, true);
  assert.equal(c1.irqLine, false);
  // An affinity that matches no vCPU (Aff1 = 1): delivered nowhere
  b.wr(GICD + 0x6000 + 8 * 35, 0x100);
  assert.equal(c0.irqLine || c1.irqLine, false);
  // Aff3 in the high word
  b.wr(GICD + 0x6000 + 8 * 35, 0);
  b.wr(GICD + 0x6000 + 8 * 35 + 4, 1);
  assert.equal(b.rd(GICD + 0x6000 + 8 * 35 + 4), 1);
  assert.equal(c0.irqLine, false);
  b.wr(GICD + 0x6000 + 8 * 35 + 4, 0);
  // 1-of-N
  b.wr(GICD + 0x6000 + 8 * 35, 0x8000_0000);
  assert.equal(b.rd(GICD + 0x6000 + 8 * 35), 0x8000_0000);
  assert.equal(c0.irqLine, true);
  assert.equal(c1.irqLine, true);
  assert.equal(mrs(c1, 'IAR1'), 35);
  assert.equal(c0.irqLine, false, 'taken by vCPU 1');
  assert.equal(mrs(c0, 'IAR1'), 1023);
  // IROUTER of SGIs/PPIs does not exist
  b.wr(GICD + 0x6000 + 8 * 20, 1);
  assert.equal(b.rd(GICD + 0x6000 + 8 * 20), 0);
});

test('SGIs: target list, broadcast excluding self, per-vCPU state', () => {
  const b = board(3);
  linuxInit(b);
  const sgiBase = (i: number): number => GICR + i * 0x2_0000 + SGI;
  for (let i = 0; i < 3; i++) {
    b.wr(sgiBase(i) + 0x400 + 4, 0x60 << 16, 4); // priority of SGI 6 (byte 6)
    b.wr(sgiBase(i) + 0x100, bit(6) | bit(1));
  }
  assert.equal(b.rd(sgiBase(1) + 0x406, 1), 0x60);
  const [c0, c1, c2] = b.cpus;
  // IRM = 1 (bit 40): every vCPU but the sender
  msr(c0, 'SGI1R', (1n << 40n) | (6n << 24n));
  assert.equal(c0.irqLine, false);
  assert.equal(c1.irqLine, true);
  assert.equal(c2.irqLine, true);
  assert.equal(b.rd(sgiBase(1) + 0x200), bit(6));
  assert.equal(mrs(c1, 'IAR1'), 6);
  msr(c1, 'EOIR1', 6);
  assert.equal(mrs(c2, 'IAR1'), 6);
  msr(c2, 'EOIR1', 6);
  // Target list: bit 2 = Aff0 2
  msr(c1, 'SGI1R', (1n << 24n) | 0b100n);
  assert.equal(c0.irqLine || c1.irqLine, false);
  assert.equal(c2.irqLine, true);
  assert.equal(mrs(c2, 'IAR1'), 1);
  msr(c2, 'EOIR1', 1);
  // Aff1 != 0 matches no vCPU; RS = 1 covers Aff0 16..31 (none here)
  msr(c0, 'SGI1R', (1n << 16n) | (6n << 24n) | 0b11n);
  msr(c0, 'SGI1R', (1n << 44n) | (6n << 24n) | 0b11n);
  assert.equal(c0.irqLine || c1.irqLine || c2.irqLine, false);
  // Sending to self
  msr(c0, 'SGI1R', (6n << 24n) | 1n);
  assert.equal(c0.irqLine, true);
  // SGI0R and ASGI1R behave the same way here
  msr(c0, 'SGI0R', (6n << 24n) | 2n);
  msr(c0, 'ASGI1R', (1n << 24n) | 4n);
  assert.equal(c1.irqLine, true);
  assert.equal(c2.irqLine, true);
  // GICD_SGIR is ignored with affinity routing
  b.wr(GICD + 0xf00, 0x00ff_0006);
  assert.equal(b.rd(sgiBase(0) + 0x200) & ~bit(6), 0);
});

test('PPIs from the timers, WFI wake-up, redistributor enables and pending', () => {
  const b = board(2);
  linuxInit(b);
  const [c0, c1] = b.cpus;
  const sgi1 = GICR + 0x2_0000 + SGI;
  b.wr(sgi1 + 0x400 + 27, 0xa0, 1);
  b.wr(sgi1 + 0x100, bit(27));
  assert.equal(b.rd(sgi1 + 0x100), bit(27));
  c1.waiting = true;
  b.gic.setPpi(1, 27, true);
  assert.equal(c1.irqLine, true);
  assert.equal(c1.waiting, false, 'WFI ends when an interrupt is signalled');
  assert.equal(c0.irqLine, false, 'PPIs are private');
  assert.equal(b.rd(sgi1 + 0x200), bit(27));
  assert.equal(mrs(c1, 'IAR1'), 27);
  assert.equal(b.rd(sgi1 + 0x300), bit(27));
  b.gic.setPpi(1, 27, false);
  msr(c1, 'EOIR1', 27);
  assert.equal(b.rd(sgi1 + 0x300), 0);
  assert.equal(c1.irqLine, false);
  // A masked interrupt does not wake
  c1.waiting = true;
  b.wr(sgi1 + 0x180, bit(27));
  b.gic.setPpi(1, 27, true);
  assert.equal(c1.waiting, true);
  assert.equal(b.rd(sgi1 + 0x180), 0);
  b.wr(sgi1 + 0x100, bit(27));
  assert.equal(c1.waiting, false);
  // ISPENDR0 / ICPENDR0 for an SGI
  b.wr(sgi1 + 0x100, bit(3));
  b.wr(sgi1 + 0x200, bit(3));
  assert.equal(b.rd(sgi1 + 0x200) & bit(3), bit(3));
  b.wr(sgi1 + 0x280, bit(3));
  assert.equal(b.rd(sgi1 + 0x200) & bit(3), 0);
  // IGROUPR0 readback; IGRPMODR0 / NSACR are RAZ/WI
  assert.equal(b.rd(sgi1 + 0x80), 0xffffffff);
  b.wr(sgi1 + 0xd00, 0xffffffff);
  assert.equal(b.rd(sgi1 + 0xd00), 0);
  // Out-of-range PPI numbers are ignored
  b.gic.setPpi(1, 40, true);
  b.gic.setPpi(5, 27, true);
  b.gic.setSpi(20, true);
  b.gic.setSpi(5000, true);
});

test('a real CPU takes the IRQ exception and acknowledges through the CPU interface', () => {
  const b = board(1);
  linuxInit(b);
  const c = b.cpus[0];
  // nop at RAM start, vector table at +0x800 (VBAR); IRQ from current EL with SP_ELx at +0x280
  const NOP = 0x91000400; // add x0, x0, #1 (any plain instruction)
  for (let i = 0; i < 0x400; i++) b.mem.dv.setUint32(i * 4, NOP, true);
  c.pcLo = 0x4000_0000;
  c.sys.VBAR_EL1 = 0x4000_0800n;
  c.daif = 0; // unmask
  enableSpi(b, 33, 0x80);
  c.run(2);
  assert.equal(c.pcLo, 0x4000_0008);
  b.gic.setSpi(33, true);
  c.run(1);
  assert.equal(c.sys.ELR_EL1, 0x4000_0008n, 'interrupted before the next instruction');
  assert.equal(c.pcLo, 0x4000_0800 + 0x280 + 4, 'IRQ vector, current EL with SP_ELx');
  assert.equal(mrs(c, 'IAR1'), 33);
});

// Self-hosted debug of the software AArch64 CPU (src/cpu/arm64/debug.ts): breakpoint, watchpoint and
// software step exceptions, their enables (MDSCR_EL1.MDE/KDE, PSTATE.D, the OS lock and double lock),
// BRK, and the host debugger hooks (stops reported to run()'s caller).
//
// Programs are assembled at test time with aarch64-linux-gnu-as. qemu-aarch64 (user mode) has no
// self-hosted debug, so expected values come from the Arm ARM (DDI 0487) pseudocode and syndrome
// layouts, named in each test: AArch64.GenerateDebugExceptionsFrom, AArch64.BreakpointValueMatch,
// AArch64.StateMatch, AArch64.WatchpointByteMatch, DebugExceptionReturnSS, SSAdvance, and the ESR_EL1
// ISS encodings for EC 0x30-0x35 and 0x3c.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noAssembler, assemble, makeCpu, RAM_BASE, type TestCpu } from './helpers/arm64.js';

const VBAR = RAM_BASE + 0x800;
const CUR_SYNC = VBAR + 0x200; // current EL with SP_ELx
const LOWER_SYNC = VBAR + 0x400; // lower EL, AArch64

// MDSCR_EL1 bits
const SS = 1 << 0;
const KDE = 1 << 13;
const MDE = 1 << 15;
// DBGBCR: BAS = 0b1111 [8:5], PMC [2:1] (0b01 EL1, 0b10 EL0), E [0]
const BCR_EL1 = 0x1e3;
const BCR_EL0 = 0x1e5;

const esr = (ec: number, iss: number): bigint => BigInt((((ec << 26) | (1 << 25) | iss) >>> 0) >>> 0);
const DEBUG_FSC = 0x22;

interface Prog {
  t: TestCpu;
  sym: Record<string, number>;
  at: (label: string) => number;
}

/**
 * Assemble and load a program: `el1` runs first at EL1 (VBAR_EL1 already set), `cur`/`lower` are the
 * synchronous exception vectors (current EL with SP_EL1 / lower EL), `user` sits at 0x2000, and 8 KiB
 * of data at 0x10000 (label `data`).
 */
function load(p: { el1: string; cur?: string; lower?: string; user?: string }): Prog {
  const { words, sym } = assemble(`
    .text
_start:
    adr x0, vectors
    msr vbar_el1, x0
    isb
${p.el1}
    .org 0x800
vectors:
    .org 0xa00
cur_sync:
${p.cur ?? '    b .'}
    .org 0xc00
lower_sync:
${p.lower ?? '    b .'}
    .org 0x2000
user:
${p.user ?? '    b .'}
    .ltorg
    .org 0x10000
data:
    .quad 0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444
    .org 0x12000
`);
  const t = makeCpu(words);
  return { t, sym, at: (label) => RAM_BASE + sym[label] };
}

/** Run until the first synchronous exception (or `budget` instructions); true when one was taken. */
function runToException(p: Prog, budget = 500): boolean {
  const cpu = p.t.cpu;
  cpu.stopOnException = true;
  const esr0 = cpu.sys.ESR_EL1;
  cpu.sys.ESR_EL1 = 0xdeadn;
  cpu.run(budget);
  const took = cpu.sys.ESR_EL1 !== 0xdeadn;
  if (!took) cpu.sys.ESR_EL1 = esr0;
  return took;
}

/** EL1 code that sets MDSCR_EL1 and the debug lock/mask state. */
function debugSetup(o: {
  mdscr: number;
  unlock?: boolean;
  dClear?: boolean;
  doubleLock?: boolean;
  corenpdrq?: boolean;
}): string {
  return [
    o.unlock === false ? '' : '    msr oslar_el1, xzr',
    o.doubleLock ? '    mov x0, #1\n    msr osdlr_el1, x0' : '',
    o.corenpdrq ? '    mov x0, #1\n    msr dbgprcr_el1, x0' : '',
    `    ldr x0, =${o.mdscr}`,
    '    msr mdscr_el1, x0',
    o.dClear === false ? '' : '    msr daifclr, #8',
    '    isb',
  ].join('\n');
}

/** EL1 code that returns to `user` at EL0 with SPSR = spsr. */
function toUser(spsr = 0): string {
  return `    adr x0, user\n    msr elr_el1, x0\n    ldr x0, =${spsr}\n    msr spsr_el1, x0\n    eret\n    .ltorg`;
}

// =====================================================================================
// Breakpoints
// =====================================================================================

function el1Breakpoint(o: Parameters<typeof debugSetup>[0] & { bcr?: number }): Prog {
  return load({
    el1: `
    adr x1, target
    msr dbgbvr3_el1, x1
    ldr x2, =${o.bcr ?? BCR_EL1}
    msr dbgbcr3_el1, x2
${debugSetup(o)}
    mov x5, #0
    nop
target:
    mov x5, #1
done:
    b done
    .ltorg`,
  });
}

test(
  'breakpoint at EL1 (MDE, KDE, PSTATE.D = 0): EC 0x31, IL = 1, IFSC 0x22, ELR = the instruction, not executed',
  { skip: noAssembler },
  () => {
    const p = el1Breakpoint({ mdscr: MDE | KDE });
    assert.equal(runToException(p), true);
    const { cpu } = p.t;
    assert.equal(cpu.sys.ESR_EL1, esr(0x31, DEBUG_FSC));
    assert.equal(cpu.sys.ELR_EL1, BigInt(p.at('target')));
    assert.equal(cpu.pcLo, CUR_SYNC);
    assert.equal(cpu.xBig(5), 0n, 'the breakpointed instruction did not execute');
    assert.equal(cpu.sys.SPSR_EL1 & 0x20fn, 0x5n, 'EL1h, D = 0 at the breakpoint');
  },
);

test(
  'EL1 breakpoint disabled: KDE = 0, PSTATE.D = 1, MDE = 0, OS lock, OS double lock, PMC = EL0 only (GenerateDebugExceptionsFrom, StateMatch)',
  { skip: noAssembler },
  () => {
    const cases: [string, Parameters<typeof el1Breakpoint>[0]][] = [
      ['KDE = 0', { mdscr: MDE }],
      ['PSTATE.D = 1', { mdscr: MDE | KDE, dClear: false }],
      ['MDE = 0', { mdscr: KDE }],
      ['OS lock set (reset value)', { mdscr: MDE | KDE, unlock: false }],
      ['OS double lock (OSDLR_EL1.DLK, DBGPRCR_EL1.CORENPDRQ = 0)', { mdscr: MDE | KDE, doubleLock: true }],
      ['PMC = 0b10 (EL0 only)', { mdscr: MDE | KDE, bcr: BCR_EL0 }],
      ['BAS = 0 (no byte selected)', { mdscr: MDE | KDE, bcr: 0x3 }],
      ['E = 0', { mdscr: MDE | KDE, bcr: 0x1e2 }],
    ];
    for (const [why, o] of cases) {
      const p = el1Breakpoint(o);
      assert.equal(runToException(p, 100), false, why);
      assert.equal(p.t.cpu.xBig(5), 1n, `${why}: the instruction ran`);
      assert.equal(p.t.cpu.pcLo, p.at('done'), why);
    }
    // The double lock does not apply while DBGPRCR_EL1.CORENPDRQ = 1 (DoubleLockStatus)
    const p = el1Breakpoint({ mdscr: MDE | KDE, doubleLock: true, corenpdrq: true });
    assert.equal(runToException(p), true);
    assert.equal(p.t.cpu.sys.ESR_EL1, esr(0x31, DEBUG_FSC));
  },
);

test(
  'breakpoint at EL0 with KDE = 0 (MDE is enough from EL0): EC 0x30 at the lower-EL vector, also with SPSR.D = 1',
  { skip: noAssembler },
  () => {
    for (const spsr of [0, 0x3c0]) {
      const p = load({
        el1: `
    adr x1, target
    msr dbgbvr0_el1, x1
    mov x2, #${BCR_EL0}
    msr dbgbcr0_el1, x2
${debugSetup({ mdscr: MDE, dClear: false })}
${toUser(spsr)}`,
        user: `
    mov x5, #0
target:
    mov x5, #1
    b .`,
      });
      assert.equal(runToException(p), true, `SPSR 0x${spsr.toString(16)}`);
      const { cpu } = p.t;
      assert.equal(cpu.sys.ESR_EL1, esr(0x30, DEBUG_FSC));
      assert.equal(cpu.sys.ELR_EL1, BigInt(p.at('target')));
      assert.equal(cpu.pcLo, LOWER_SYNC);
      assert.equal(cpu.xBig(5), 0n);
    }
    // PMC = 0b01 (EL1 only) does not match at EL0
    const p = load({
      el1: `
    adr x1, target
    msr dbgbvr0_el1, x1
    mov x2, #${BCR_EL1}
    msr dbgbcr0_el1, x2
${debugSetup({ mdscr: MDE | KDE, dClear: false })}
${toUser()}`,
      user: `
target:
    mov x5, #1
    b .`,
    });
    assert.equal(runToException(p, 100), false);
    assert.equal(p.t.cpu.xBig(5), 1n);
  },
);

test(
  'context-ID breakpoints: BT 0b0010 on a context-aware breakpoint (4, 5) matches CONTEXTIDR_EL1; BT 0b0001 links an address to BT 0b0011 (BreakpointValueMatch)',
  { skip: noAssembler },
  () => {
    // Unlinked context ID match on breakpoint 5: the first instruction with debug enabled
    let p = load({
      el1: `
    mov x1, #0x42
    msr contextidr_el1, x1
    msr dbgbvr5_el1, x1
    ldr x2, =${(0b0010 << 20) | BCR_EL1}
    msr dbgbcr5_el1, x2
${debugSetup({ mdscr: MDE | KDE })}
first:
    mov x5, #1
    b .
    .ltorg`,
    });
    assert.equal(runToException(p), true);
    assert.equal(
      p.t.cpu.sys.ELR_EL1,
      BigInt(p.at('first') - 4),
      'the first instruction after MSR DAIFClr (the ISB)',
    );
    // Breakpoints 0-3 are not context-aware: the same setup on breakpoint 0 never matches
    p = load({
      el1: `
    mov x1, #0x42
    msr contextidr_el1, x1
    msr dbgbvr0_el1, x1
    ldr x2, =${(0b0010 << 20) | BCR_EL1}
    msr dbgbcr0_el1, x2
${debugSetup({ mdscr: MDE | KDE })}
    mov x5, #1
    b .
    .ltorg`,
    });
    assert.equal(runToException(p, 100), false);
    // Linked address match (breakpoint 1, LBN = 4) fires only while breakpoint 4's context ID matches
    for (const [ctx, fires] of [
      [0x42, true],
      [0x43, false],
    ] as const) {
      p = load({
        el1: `
    mov x1, #${ctx}
    msr contextidr_el1, x1
    mov x1, #0x42
    msr dbgbvr4_el1, x1
    ldr x2, =${(0b0011 << 20) | BCR_EL1}
    msr dbgbcr4_el1, x2
    adr x1, target
    msr dbgbvr1_el1, x1
    ldr x2, =${(0b0001 << 20) | (4 << 16) | BCR_EL1}
    msr dbgbcr1_el1, x2
${debugSetup({ mdscr: MDE | KDE })}
    nop
target:
    mov x5, #1
    b .
    .ltorg`,
      });
      assert.equal(runToException(p, 100), fires, `CONTEXTIDR 0x${ctx.toString(16)}`);
      if (fires) assert.equal(p.t.cpu.sys.ELR_EL1, BigInt(p.at('target')));
    }
  },
);

// =====================================================================================
// Watchpoints
// =====================================================================================

/** DBGWCR: MASK [28:24], BAS [12:5], LSC [4:3] (0b01 load, 0b10 store), PAC [2:1], E. */
const wcr = (o: { bas?: number; lsc: number; pac?: number; mask?: number }): number =>
  ((o.mask ?? 0) << 24) | ((o.bas ?? 0xff) << 5) | (o.lsc << 3) | ((o.pac ?? 1) << 1) | 1;

function watch(o: { wvr: string; wcr: number; body: string; mdscr?: number }): Prog {
  return load({
    el1: `
    adr x10, data
    ${o.wvr}
    msr dbgwvr2_el1, x1
    ldr x2, =${o.wcr}
    msr dbgwcr2_el1, x2
${debugSetup({ mdscr: o.mdscr ?? MDE | KDE })}
${o.body}
done:
    b done
    .ltorg`,
  });
}

function expectWatch(p: Prog, o: { ec?: number; write: boolean; far: number; label?: string }): void {
  assert.equal(runToException(p), true, 'watchpoint taken');
  const { cpu } = p.t;
  assert.equal(cpu.sys.ESR_EL1, esr(o.ec ?? 0x35, DEBUG_FSC | (o.write ? 1 << 6 : 0)), 'ESR: WnR, DFSC 0x22');
  assert.equal(cpu.sys.FAR_EL1, BigInt(o.far), 'FAR = the accessed address');
  assert.equal(cpu.sys.ELR_EL1, BigInt(p.at(o.label ?? 'hit')), 'ELR = the load/store');
}

test(
  'load watchpoint with BAS bytes 2-3 of a doubleword: other bytes, stores and a partial overlap (WatchpointByteMatch, LSC = load)',
  { skip: noAssembler },
  () => {
    const p = watch({
      wvr: 'mov x1, x10',
      wcr: wcr({ bas: 0b1100, lsc: 0b01 }),
      body: `
    ldrb w4, [x10, #1]
    ldrh w4, [x10, #4]
    ldr x4, [x10, #8]
    str w4, [x10]
    sub x11, x10, #2
    ldrh w4, [x11]
hit:
    ldr w4, [x11, #1]`,
    });
    // bytes data-1 .. data+2 overlap watched byte 2
    expectWatch(p, { write: false, far: RAM_BASE + 0x10000 - 1 });
    assert.equal(p.t.mem.dv.getUint32(0x10000, true), 0x2222_2222, 'the store before went through');
  },
);

test(
  'store watchpoint on one byte of a word (DBGWVR[2] = 1): STP whose second register hits reports its address, WnR = 1',
  { skip: noAssembler },
  () => {
    const p = watch({
      wvr: 'add x1, x10, #12',
      wcr: wcr({ bas: 0b0001, lsc: 0b10 }),
      body: `
    ldr w4, [x10, #12]
    strb w4, [x10, #13]
    str w4, [x10, #8]
    str x4, [x10, #16]
    mov x6, #5
hit:
    stp x6, x6, [x10]`,
    });
    expectWatch(p, { write: true, far: RAM_BASE + 0x10008 });
  },
);

test(
  'MASK = 12 watches an aligned 4 KiB range; exclusives, SIMD loads and DC ZVA are checked (WatchpointByteMatch with MASK)',
  { skip: noAssembler },
  () => {
    const range = wcr({ mask: 12, lsc: 0b11 });
    const before = `
    add x11, x10, #4096
    ldr x4, [x11]
    sub x11, x10, #8
    str x4, [x11]
    add x12, x10, #0xff0
    add x13, x10, #0x800`;
    expectWatch(watch({ wvr: 'mov x1, x10', wcr: range, body: `${before}\nhit:\n    ldxr x4, [x12]` }), {
      write: false,
      far: RAM_BASE + 0x10ff0,
    });
    expectWatch(watch({ wvr: 'mov x1, x10', wcr: range, body: `${before}\nhit:\n    ld1 {v0.16b}, [x13]` }), {
      write: false,
      far: RAM_BASE + 0x10800,
    });
    expectWatch(watch({ wvr: 'mov x1, x10', wcr: range, body: `${before}\nhit:\n    stxr w5, x4, [x12]` }), {
      write: true,
      far: RAM_BASE + 0x10ff0,
    });
    // DC ZVA zeroes a 64-byte block: a store of the block (FAR = its address)
    expectWatch(
      watch({
        wvr: 'mov x1, x10',
        wcr: range,
        body: `${before}\n    add x14, x13, #0x13\nhit:\n    dc zva, x14`,
      }),
      {
        write: true,
        far: RAM_BASE + 0x10800,
      },
    );
    // MASK 1 and 2 are reserved: this CPU treats the watchpoint as disabled
    const off = watch({ wvr: 'mov x1, x10', wcr: wcr({ mask: 2, lsc: 0b11 }), body: '    ldr x4, [x10]' });
    assert.equal(runToException(off, 100), false);
  },
);

test(
  'watchpoint privilege (PAC): LDTR at EL1 matches as an EL0 access; EL0 accesses take EC 0x34 with KDE = 0',
  { skip: noAssembler },
  () => {
    const p = watch({
      wvr: 'mov x1, x10',
      wcr: wcr({ lsc: 0b11, pac: 0b10 }),
      body: `
    ldr x4, [x10]
hit:
    ldtr x4, [x10]`,
    });
    expectWatch(p, { write: false, far: RAM_BASE + 0x10000 });

    const u = load({
      el1: `
    adr x1, data
    msr dbgwvr0_el1, x1
    ldr x2, =${wcr({ lsc: 0b10, pac: 0b10, bas: 0b1000_0000 })}
    msr dbgwcr0_el1, x2
${debugSetup({ mdscr: MDE, dClear: false })}
${toUser()}`,
      user: `
    adr x10, data
    ldr x4, [x10]
    str w4, [x10, #3]
hit:
    str w4, [x10, #5]
    b .`,
    });
    expectWatch(u, { ec: 0x34, write: true, far: RAM_BASE + 0x10005 });
    assert.equal(u.t.cpu.pcLo, LOWER_SYNC);
  },
);

// =====================================================================================
// Software step
// =====================================================================================

// The EL1 handler of lower-EL exceptions logs ESR, ELR and SPSR (24 bytes per exception from
// data + 0x100) and re-arms the step (SPSR.SS = 1) only after a Software Step exception, as Linux
// does (user_rewind_single_step); after anything else it returns with SPSR.SS as saved.
const LOGGER = `
    mrs x20, esr_el1
    mrs x21, elr_el1
    mrs x22, spsr_el1
    stp x20, x21, [x19], #16
    str x22, [x19], #8
    lsr x23, x20, #26
    cmp x23, #0x32
    b.ne 1f
    orr x22, x22, #(1 << 21)
    msr spsr_el1, x22
1:  eret`;

function readLog(p: Prog, n: number): { ec: number; iss: number; elr: number; ss: number }[] {
  const out = [];
  const dv = p.t.mem.dv;
  for (let i = 0; i < n; i++) {
    const o = 0x10100 + 24 * i;
    const e = dv.getUint32(o, true);
    out.push({
      ec: e >>> 26,
      iss: e & 0x1ff_ffff,
      elr: dv.getUint32(o + 8, true),
      ss: (dv.getUint32(o + 16, true) >>> 21) & 1,
    });
  }
  return out;
}

test(
  'software step at EL0: one Software Step exception per instruction, over a taken branch, LDXR (EX), SVC (SSAdvance) and back (DebugExceptionReturnSS)',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
    adr x19, data
    add x19, x19, #0x100
${debugSetup({ mdscr: SS, dClear: false })}
${toUser(1 << 21)}`,
      lower: LOGGER,
      user: `
    adr x10, data
s1: mov x0, #1
s2: b s4
s3: mov x0, #99
s4: ldxr x3, [x10]
s5: add x2, x0, x3
s6: svc #7
s7: b s7`,
    });
    p.t.cpu.run(200);
    const log = readLog(p, 9);
    const step = (isv: boolean, ex = false) => ({
      ec: 0x32,
      iss: (isv ? 1 << 24 : 0) | (ex ? 1 << 6 : 0) | DEBUG_FSC,
      ss: 0,
    });
    const expected = [
      { ...step(true), elr: p.at('s1') }, // after ADR
      { ...step(true), elr: p.at('s2') },
      { ...step(true), elr: p.at('s4') }, // the branch was taken
      { ...step(true, true), elr: p.at('s5') }, // the stepped instruction was a load-exclusive
      { ...step(true), elr: p.at('s6') },
      { ec: 0x15, iss: 7, ss: 0, elr: p.at('s7') }, // SVC completes: SPSR.SS = 0
      { ...step(false), elr: p.at('s7') }, // returned with SPSR.SS = 0: pending at once, nothing stepped (ISV = 0)
      { ...step(true), elr: p.at('s7') }, // then B s7 is stepped
      { ...step(true), elr: p.at('s7') },
    ];
    assert.deepEqual(log, expected);
    assert.equal(p.t.cpu.xBig(0), 1n, 'MOV X0, #99 was branched over');
    assert.equal(p.t.cpu.xBig(2), 1n + 0x1111_1111_1111_1111n);
  },
);

test(
  'software step: an exception from the stepped instruction saves SPSR.SS = 1 (it is stepped again); the OS lock disables stepping',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
    adr x19, data
    add x19, x19, #0x100
${debugSetup({ mdscr: SS, dClear: false })}
${toUser(1 << 21)}`,
      lower: LOGGER,
      user: `
s1: .inst 0x00000000
    b s1`,
    });
    p.t.cpu.run(20);
    const [first] = readLog(p, 1);
    assert.deepEqual(
      first,
      { ec: 0x00, iss: 0, elr: p.at('s1'), ss: 1 },
      'UNDEF: the instruction did not complete',
    );

    const locked = load({
      el1: `
    adr x19, data
    add x19, x19, #0x100
${debugSetup({ mdscr: SS, dClear: false, unlock: false })}
${toUser(1 << 21)}`,
      lower: LOGGER,
      user: `
    mov x0, #1
    mov x1, #2
    b .`,
    });
    locked.t.cpu.run(50);
    assert.equal(locked.t.mem.dv.getUint32(0x10100, true), 0, 'no exception logged');
    assert.equal(locked.t.cpu.xBig(1), 2n);
  },
);

test(
  'software step at EL1 (KDE = 1, ERET with SPSR.D = 0, SS = 1): EC 0x33 after one instruction',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
${debugSetup({ mdscr: SS | KDE, dClear: false })}
    adr x0, k1
    msr elr_el1, x0
    ldr x0, =${(1 << 21) | 0x5}
    msr spsr_el1, x0
    eret
    .ltorg
k1: mov x5, #1
k2: mov x5, #2
    b .`,
    });
    assert.equal(runToException(p), true);
    const { cpu } = p.t;
    assert.equal(cpu.sys.ESR_EL1, esr(0x33, (1 << 24) | DEBUG_FSC));
    assert.equal(cpu.sys.ELR_EL1, BigInt(p.at('k2')));
    assert.equal(cpu.pcLo, CUR_SYNC);
    assert.equal(cpu.xBig(5), 1n);
    assert.equal((cpu.sys.SPSR_EL1 >> 21n) & 1n, 0n, 'PSTATE.SS was 0 (active-pending)');
  },
);

// =====================================================================================
// BRK and the OS lock registers
// =====================================================================================

test(
  'BRK: EC 0x3c with the immediate, ELR = the BRK, taken whatever the debug enables',
  { skip: noAssembler },
  () => {
    const p = load({ el1: '    nop\nhit:\n    brk #0x1234' });
    assert.equal(runToException(p), true);
    assert.equal(p.t.cpu.sys.ESR_EL1, esr(0x3c, 0x1234));
    assert.equal(p.t.cpu.sys.ELR_EL1, BigInt(p.at('hit')));
  },
);

test(
  'OSLSR_EL1.OSLK follows OSLAR_EL1 and a relocked OS lock stops breakpoints',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
    mrs x6, oslsr_el1
    msr oslar_el1, xzr
    mrs x7, oslsr_el1
    adr x1, target
    msr dbgbvr0_el1, x1
    mov x2, #${BCR_EL1}
    msr dbgbcr0_el1, x2
    mov x0, #${MDE | KDE}
    msr mdscr_el1, x0
    msr daifclr, #8
    mov x0, #1
    msr oslar_el1, x0
    mrs x8, oslsr_el1
target:
    mov x5, #1
    b .`,
    });
    assert.equal(runToException(p, 100), false);
    const { cpu } = p.t;
    assert.equal(cpu.xBig(6), 0b1010n, 'OSLM = 0b10, OSLK = 1 at reset');
    assert.equal(cpu.xBig(7), 0b1000n);
    assert.equal(cpu.xBig(8), 0b1010n);
    assert.equal(cpu.xBig(5), 1n);
  },
);

// =====================================================================================
// Host debugger hooks and the run loop
// =====================================================================================

test(
  'host stops: breakpoint before its instruction, step after one, watchpoint after the access; resume passes a breakpoint; guest state untouched',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
    adr x10, data
    mov x1, #1
b1: mov x2, #2
    mov x3, #3
w1: str x3, [x10, #16]
    mov x4, #4
    b .`,
    });
    const { cpu, mem } = p.t;
    cpu.debug.addHostBreakpoint(BigInt(p.at('b1')));
    let n = cpu.run(100);
    assert.deepEqual(cpu.debug.takeStop(), { reason: 'breakpoint', pc: BigInt(p.at('b1')) });
    assert.equal(cpu.pcLo, p.at('b1'));
    assert.equal(cpu.xBig(2), 0n);
    assert.equal(cpu.icount, n);
    // Without a resume the breakpoint at PC stops at once; stepping moves past it, one instruction each
    assert.equal(cpu.run(100), 0);
    assert.equal(cpu.debug.takeStop()?.reason, 'breakpoint');
    cpu.debug.hostResume('step');
    n = cpu.run(100);
    assert.equal(n, 1);
    assert.deepEqual(cpu.debug.takeStop(), { reason: 'step', pc: BigInt(p.at('b1') + 4) });
    assert.equal(cpu.xBig(2), 2n);
    cpu.debug.hostResume('step');
    assert.equal(cpu.run(100), 1);
    assert.equal(cpu.xBig(3), 3n);
    cpu.debug.removeHostBreakpoint(BigInt(p.at('b1')));
    // A write watchpoint on data+20..23: the STR to data+16..23 completes, the stop is at the next
    // instruction and names the first watched byte written
    cpu.debug.addHostWatchpoint(BigInt(RAM_BASE + 0x10014), 4, 'write');
    cpu.debug.addHostWatchpoint(BigInt(RAM_BASE + 0x10014), 4, 'write'); // again: no second one
    cpu.debug.hostResume('continue');
    assert.equal(cpu.run(100), 1, 'the STR retired');
    assert.deepEqual(cpu.debug.takeStop(), {
      reason: 'watchpoint',
      pc: BigInt(p.at('w1') + 4),
      addr: BigInt(RAM_BASE + 0x10014),
      kind: 'write',
    });
    assert.equal(mem.dv.getUint32(0x10010, true), 3, 'the store happened');
    assert.equal(cpu.xBig(4), 0n, 'the next instruction has not');
    assert.equal(cpu.debug.removeHostWatchpoint(BigInt(RAM_BASE + 0x10014), 4, 'write'), true);
    assert.equal(cpu.debug.removeHostWatchpoint(BigInt(RAM_BASE + 0x10014), 4, 'write'), false);
    cpu.debug.clearHost();
    assert.equal(cpu.debugArmed, false);
    cpu.code.jitThreshold = 1;
    cpu.code.jitBatch = 1; // each unit compiled when its head gets hot
    cpu.run(5000);
    assert.equal(cpu.debug.takeStop(), undefined);
    assert.equal(cpu.xBig(4), 4n);
    assert.ok(cpu.code.jitStats.insns > 0, 'nothing armed: translated code runs again');
  },
);

test(
  'host resume from a breakpoint runs on; an interrupt stays pending while stepping',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
    msr daifclr, #2
loop:
    add x1, x1, #1
    b loop`,
    });
    const { cpu } = p.t;
    const loop = BigInt(p.at('loop'));
    cpu.debug.addHostBreakpoint(loop);
    cpu.run(100);
    assert.equal(cpu.debug.takeStop()?.reason, 'breakpoint');
    cpu.debug.hostResume('continue');
    cpu.run(100);
    assert.deepEqual(cpu.debug.takeStop(), { reason: 'breakpoint', pc: loop });
    assert.equal(cpu.xBig(1), 1n, 'the loop ran once from the breakpoint back to it');
    cpu.irqLine = true;
    cpu.debug.hostResume('step');
    assert.equal(cpu.run(100), 1);
    assert.deepEqual(cpu.debug.takeStop(), { reason: 'step', pc: loop + 4n });
    assert.equal(cpu.xBig(1), 2n, 'the step ran the ADD, not the IRQ vector');
    cpu.debug.clearHost();
    cpu.run(100);
    assert.equal(cpu.xBig(1), 2n, 'not stepping: the IRQ is taken at once, the loop does not go on');
    assert.notEqual(cpu.pcLo >>> 0, p.at('loop'));
  },
);

test(
  'armed debug bypasses translated blocks: a watchpoint set after a loop was translated still fires in it',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
    adr x10, data
    mov x1, #0
loop:
    add x1, x1, #1
    str x1, [x10, #24]
    b loop`,
    });
    const { cpu } = p.t;
    cpu.code.jitThreshold = 1;
    cpu.code.jitBatch = 1; // each unit compiled when its head gets hot
    cpu.run(5000);
    assert.ok(cpu.code.jitStats.blocks > 0, 'the loop was translated');
    const insnsInBlocks = cpu.code.jitStats.insns;
    assert.ok(insnsInBlocks > 0);
    // Guest watchpoint (as Linux's ptrace/perf would program it), set from outside for brevity
    cpu.sys.osLock = 0;
    cpu.sys.MDSCR_EL1 = BigInt(MDE | KDE);
    cpu.sys.DBGWVR[1] = BigInt(RAM_BASE + 0x10018);
    cpu.sys.DBGWCR[1] = BigInt(wcr({ lsc: 0b10 }));
    cpu.daif = 0;
    cpu.debug.update();
    assert.equal(cpu.debugArmed, true);
    assert.equal(runToException(p, 1000), true);
    assert.equal(cpu.sys.ESR_EL1, esr(0x35, DEBUG_FSC | (1 << 6)));
    assert.equal(cpu.sys.FAR_EL1, BigInt(RAM_BASE + 0x10018));
    assert.equal(cpu.code.jitStats.insns, insnsInBlocks, 'no block ran while armed');
  },
);

test(
  'with KDE = 0 (user-task debugging), EL1 code keeps running translated while EL0 is checked',
  { skip: noAssembler },
  () => {
    const p = load({
      el1: `
    adr x10, data
    mov x1, #0
loop:
    add x1, x1, #1
    str x1, [x10, #24]
    b loop`,
    });
    const { cpu } = p.t;
    cpu.code.jitThreshold = 1;
    cpu.code.jitBatch = 1; // each unit compiled when its head gets hot
    cpu.sys.osLock = 0;
    cpu.sys.MDSCR_EL1 = BigInt(MDE | SS);
    cpu.sys.DBGBVR[0] = BigInt(RAM_BASE + 0x2000);
    cpu.sys.DBGBCR[0] = BigInt(BCR_EL0);
    cpu.debug.update();
    assert.equal(cpu.debugArmed, true);
    assert.equal(cpu.debug.checksAt(0), true);
    assert.equal(cpu.debug.checksAt(1), false);
    cpu.run(5000);
    assert.ok(cpu.code.jitStats.insns > 4000, `${cpu.code.jitStats.insns} instructions ran translated`);
    assert.equal(cpu.sys.ESR_EL1, 0n);
    cpu.sys.MDSCR_EL1 = BigInt(MDE | SS | KDE);
    cpu.debug.update();
    assert.equal(cpu.debug.checksAt(1), true);
  },
);

test(
  'nothing armed after Linux-style debug reset (OS lock cleared, all control registers zero)',
  { skip: noAssembler },
  () => {
    const regs = [];
    for (let n = 0; n < 6; n++) regs.push(`    msr dbgbcr${n}_el1, xzr`, `    msr dbgbvr${n}_el1, xzr`);
    for (let n = 0; n < 4; n++) regs.push(`    msr dbgwcr${n}_el1, xzr`, `    msr dbgwvr${n}_el1, xzr`);
    const p = load({
      el1: `    msr oslar_el1, xzr\n    msr osdlr_el1, xzr\n    msr mdscr_el1, xzr\n${regs.join('\n')}\n    b .`,
    });
    p.t.cpu.run(100);
    assert.equal(p.t.cpu.debugArmed, false);
    assert.equal(p.t.cpu.sys.ESR_EL1, 0n, 'every register was writable at EL1');
  },
);

// Stage-1 translation and the software TLB, with page tables built by hand in guest RAM: both TTBRs,
// blocks at levels 1 and 2, pages at level 3, every fault kind (exact ESR_EL1/FAR_EL1/ELR_EL1 and
// vector), EL0/EL1 permissions including hierarchical ones and WXN, ASID tagging and each flush, AT
// (PAR_EL1), TBI, address-size and external aborts. Expected values follow the Arm ARM's
// descriptor formats and are computed here, never taken from the MMU's own output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTiers, countingHandlers, makeCpu, RAM_BASE, runToWfi, type TestCpu } from './helpers/arm64.js';
import { GUEST_EXCEPTION } from '../src/cpu/arm64/cpu.js';
import { TLB_BITS, TLB_SIZE, tlbOff } from '../src/cpu/arm64/wasm/layout.js';

// words from aarch64-linux-gnu-as + objdump
const ENC = {
  ldr: 0xf9400020, // ldr x0, [x1]
  str: 0xf9000022, // str x2, [x1]
  br: 0xd61f0020, // br x1
  ldtr: 0xf8400820, // ldtr x0, [x1]
  sttr: 0xf8000822, // sttr x2, [x1]
  strw: 0xb9000062, // str w2, [x3]
  add1: 0x91000400, // add x0, x0, #1
  movz7: 0xd28000e0, // movz x0, #7
};

const PT = RAM_BASE + 0x80_0000; // page tables
const VBAR = RAM_BASE + 0x8000;
const P = (n: number): number => RAM_BASE + 0x10_0000 + n * 0x1000; // data pages
const hex = (v: bigint | number): string => '0x' + v.toString(16);

interface Attrs {
  ap?: number;
  uxn?: number;
  pxn?: number;
  ng?: number;
  af?: number;
  attr?: number;
  sh?: number;
}
function leaf(pa: number | bigint, page: boolean, a: Attrs = {}): bigint {
  const { ap = 0, uxn = 0, pxn = 0, ng = 0, af = 1, attr = 0, sh = 3 } = a;
  return (
    BigInt(pa) |
    (page ? 3n : 1n) |
    (BigInt(attr) << 2n) |
    (BigInt(ap) << 6n) |
    (BigInt(sh) << 8n) |
    (BigInt(af) << 10n) |
    (BigInt(ng) << 11n) |
    (BigInt(pxn) << 53n) |
    (BigInt(uxn) << 54n)
  );
}
const page = (pa: number | bigint, a: Attrs = {}): bigint => leaf(pa, true, a);
const block = (pa: number | bigint, a: Attrs = {}): bigint => leaf(pa, false, a);
function table(pa: number, a: { apt?: number; uxnt?: number; pxnt?: number } = {}): bigint {
  return (
    BigInt(pa) |
    3n |
    (BigInt(a.pxnt ?? 0) << 59n) |
    (BigInt(a.uxnt ?? 0) << 60n) |
    (BigInt(a.apt ?? 0) << 61n)
  );
}

const L1_0 = PT;
const L2_0 = PT + 0x1000;
const L3_0 = PT + 0x2000;
const L3_1 = PT + 0x3000;
const L1_1 = PT + 0x4000;
const L2_1 = PT + 0x5000;
const L3_2 = PT + 0x6000;

// VAs (TTBR0, T0SZ = 25: 39-bit, walk starts at level 1)
const VA_PAGES = 0x4020_0000; // L2_0[1] -> L3_0
const vp = (n: number): number => VA_PAGES + n * 0x1000;
const VA_L2BLK = 0x4040_0000; // L2_0[2]: 2 MiB block -> RAM + 2 MiB
const VA_L1BLK = 0x8000_0000; // L1_0[2]: 1 GiB block -> 0x4000_0000
const VA_BADWALK = 0xc000_0000; // L1_0[3]: table outside RAM
const VA_APT0 = 0x4060_0000; // L2_0[3]: APTable = 01 (no EL0)
const VA_APT1 = 0x4080_0000; // L2_0[4]: APTable = 10 (read-only)
const VA_XNT = 0x40a0_0000; // L2_0[5]: UXNTable + PXNTable
// TTBR1 (T1SZ = 25): 0xffff_ff80_0000_0000 and up
const T1_BLK = 0xffff_ffc0_0000_0000n; // L1_1[256]: 1 GiB block -> 0x4000_0000
const T1_PAGE = 0xffff_ffc0_4000_0000n; // L1_1[257] -> L2_1[0] -> L3_2[0] -> P(0)

const SCTLR_ON = 0x30d00800n | 1n | (1n << 2n) | (1n << 12n);
const TCR = 25n | (25n << 16n) | (2n << 30n) | (2n << 32n); // 4K granules, IPS 40 bits
const MAIR = 0xffn | (0x04n << 8n) | (0x44n << 16n);

function w64(t: TestCpu, pa: number, v: bigint): void {
  t.mem.dv.setBigUint64(pa - RAM_BASE, v, true);
}
function r64(t: TestCpu, pa: number): bigint {
  return t.mem.dv.getBigUint64(pa - RAM_BASE, true);
}

/** A CPU at EL1 with the MMU on and the tables above; code at RAM_BASE (identity-mapped, EL1 only). */
function setup(code: number[] = []): TestCpu {
  const t = makeCpu(code);
  w64(t, L1_0 + 1 * 8, table(L2_0));
  w64(t, L1_0 + 2 * 8, block(0x4000_0000, { ap: 0 }));
  w64(t, L1_0 + 3 * 8, table(0x1000));
  w64(t, L2_0 + 0 * 8, block(RAM_BASE, { ap: 0 })); // code, vectors, page tables
  w64(t, L2_0 + 1 * 8, table(L3_0));
  w64(t, L2_0 + 2 * 8, block(RAM_BASE + 0x20_0000, { ap: 1, uxn: 1, pxn: 1 }));
  w64(t, L2_0 + 3 * 8, table(L3_1, { apt: 1 }));
  w64(t, L2_0 + 4 * 8, table(L3_1, { apt: 2 }));
  w64(t, L2_0 + 5 * 8, table(L3_1, { uxnt: 1, pxnt: 1 }));
  w64(t, L3_0 + 0 * 8, page(P(0), { ap: 1, ng: 1, uxn: 1, pxn: 1 })); // EL0 RW data
  w64(t, L3_0 + 1 * 8, page(P(1), { ap: 3, uxn: 1, pxn: 1 })); // RO at both
  w64(t, L3_0 + 2 * 8, page(P(2), { ap: 0, uxn: 1 })); // EL1 RW (executable at EL1)
  w64(t, L3_0 + 3 * 8, page(P(3), { ap: 2, uxn: 1 })); // EL1 RO
  w64(t, L3_0 + 4 * 8, page(P(4), { ap: 1, af: 0 })); // access flag clear
  w64(t, L3_0 + 5 * 8, 0n); // invalid
  w64(t, L3_0 + 6 * 8, page(P(6), { ap: 3, pxn: 1 })); // EL0 code (read-only)
  w64(t, L3_0 + 7 * 8, page(1n << 40n, { ap: 1 })); // beyond the 40-bit PA range
  w64(t, L3_0 + 8 * 8, page(0x1000, { ap: 1 })); // nothing at this PA
  w64(t, L3_0 + 9 * 8, block(P(9), { ap: 1 })); // "01" at level 3: reserved
  w64(t, L3_0 + 10 * 8, page(P(10), { ap: 1 })); // EL0 RW, UXN = PXN = 0 (PXN implied)
  w64(t, L3_1 + 0 * 8, page(P(11), { ap: 1 })); // EL0 RW, executable at EL0
  w64(t, L1_1 + 256 * 8, block(0x4000_0000, { ap: 0 }));
  w64(t, L1_1 + 257 * 8, table(L2_1));
  w64(t, L2_1 + 0, table(L3_2));
  w64(t, L3_2 + 0, page(P(0), { ap: 0, ng: 1 }));
  for (let n = 0; n < 12; n++) w64(t, P(n), 0x1000_0000_0000_0000n + BigInt(n)); // a marker in each page
  const sys = t.cpu.sys;
  sys.MAIR_EL1 = MAIR;
  sys.TCR_EL1 = TCR;
  sys.TTBR0_EL1 = BigInt(L1_0) | (5n << 48n);
  sys.TTBR1_EL1 = BigInt(L1_1);
  sys.VBAR_EL1 = BigInt(VBAR);
  sys.SCTLR_EL1 = SCTLR_ON;
  t.cpu.mmu.onRegsChanged();
  return t;
}

const mark = (n: number): bigint => 0x1000_0000_0000_0000n + BigInt(n);

/** Read 8 bytes at VA through the MMU (current EL). */
function rv(t: TestCpu, va: bigint | number): bigint {
  const v = BigInt(va);
  const lo = t.cpu.mmu.read64(Number(v & 0xffffffffn), Number(v >> 32n));
  return (BigInt(t.cpu.mmu.hi) << 32n) | BigInt(lo >>> 0);
}
function wv(t: TestCpu, va: bigint | number, x: bigint, flags = 0): void {
  const v = BigInt(va);
  t.cpu.mmu.write64(
    Number(v & 0xffffffffn),
    Number(v >> 32n),
    Number(x & 0xffffffffn),
    Number(x >> 32n),
    flags,
  );
}
function fetch(t: TestCpu, va: bigint | number): number {
  const v = BigInt(va);
  return t.cpu.mmu.translateFetch(Number(v & 0xfffff000n), Number(v >> 32n));
}
function at(t: TestCpu, va: bigint | number, el0: boolean, write: boolean): bigint {
  const v = BigInt(va);
  return t.cpu.mmu.at(Number(v & 0xffffffffn), Number(v >> 32n), el0, write);
}

const esrOf = (ec: number, iss: number): bigint => (BigInt(ec) << 26n) | (1n << 25n) | BigInt(iss);

/**
 * Call fn (a direct MMU access standing in for the instruction at `pcAddr`) at EL `el`; expect the
 * exception with `esr` and `far`, ELR = pcAddr and the matching vector.
 */
function expectFault(
  t: TestCpu,
  el: number,
  fn: () => unknown,
  esr: bigint,
  far: bigint | number,
  pcAddr = RAM_BASE + 0x40,
): void {
  const cpu = t.cpu;
  cpu.setElSp(el, el === 0 ? 0 : 1);
  cpu.pcLo = pcAddr >>> 0;
  cpu.pcHi = 0;
  assert.throws(fn, (e) => e === GUEST_EXCEPTION);
  assert.equal(hex(cpu.sys.ESR_EL1), hex(esr), 'ESR_EL1');
  assert.equal(hex(cpu.sys.FAR_EL1), hex(BigInt(far)), 'FAR_EL1');
  assert.equal(cpu.sys.ELR_EL1, BigInt(pcAddr));
  assert.equal(cpu.pc, BigInt(VBAR + (el === 0 ? 0x400 : 0x200)), 'vector');
  assert.equal(cpu.el, 1);
  cpu.setElSp(1, 1);
}

test('translations through TTBR0 and TTBR1: level-3 pages, level-2 and level-1 blocks', () => {
  const t = setup();
  assert.equal(rv(t, vp(0)), mark(0));
  assert.equal(rv(t, vp(1)), mark(1));
  assert.equal(rv(t, vp(3) + 8), r64(t, P(3) + 8));
  // L2 block: VA 0x4040_0000 + x -> RAM + 2 MiB + x
  w64(t, RAM_BASE + 0x20_0000 + 0x1_2348, 0xabcdn);
  assert.equal(rv(t, VA_L2BLK + 0x1_2348), 0xabcdn);
  // L1 block: VA 0x8000_0000 + x -> 0x4000_0000 + x
  assert.equal(rv(t, VA_L1BLK + (P(2) - 0x4000_0000)), mark(2));
  // TTBR1: 1 GiB block and a three-level walk
  assert.equal(rv(t, T1_BLK + BigInt(P(5) - 0x4000_0000)), r64(t, P(5)));
  assert.equal(rv(t, T1_PAGE + 8n), r64(t, P(0) + 8));
  wv(t, T1_PAGE + 16n, 0x77n);
  assert.equal(r64(t, P(0) + 16), 0x77n);
  // MMU off: flat
  t.cpu.sys.SCTLR_EL1 = 0x30d00800n;
  t.cpu.mmu.onRegsChanged();
  assert.equal(rv(t, P(7)), mark(7));
});

test('instructions run with the MMU on: EL1 code, loads through TTBR1, EL0 code', () => {
  const t = setup([ENC.ldr, ENC.str]);
  t.cpu.setXBig(1, T1_PAGE);
  t.cpu.setXBig(2, 0x55n);
  t.step(2);
  assert.equal(t.cpu.xBig(0), mark(0));
  assert.equal(r64(t, P(0)), 0x55n);
  // EL0 code on the read-only executable page; it loads from the EL0 data page.
  t.mem.dv.setUint32(P(6) - RAM_BASE, ENC.ldr, true);
  t.cpu.setElSp(0, 0);
  t.cpu.setPc(BigInt(vp(6)));
  t.cpu.setXBig(1, BigInt(vp(10)));
  t.step(1);
  assert.equal(t.cpu.xBig(0), mark(10));
  assert.equal(t.cpu.pc, BigInt(vp(6) + 4));
  assert.equal(t.cpu.el, 0);
});

test('data aborts from EL1 and EL0: translation, access flag, permission, address size, external', () => {
  const t = setup();
  const DA1 = 0x25;
  const DA0 = 0x24;
  const r = (va: number | bigint) => () => rv(t, va);
  const w = (va: number | bigint) => () => wv(t, va, 1n);
  expectFault(t, 1, r(vp(5) + 0x10), esrOf(DA1, 0x07), vp(5) + 0x10); // translation, level 3
  expectFault(t, 1, w(vp(5)), esrOf(DA1, 0x47), vp(5)); // ... with WnR
  expectFault(t, 1, r(vp(9)), esrOf(DA1, 0x07), vp(9)); // block descriptor at level 3
  expectFault(t, 1, r(0x1_0000_0000), esrOf(DA1, 0x05), 0x1_0000_0000); // translation, level 1
  expectFault(t, 1, r(0x4100_0000), esrOf(DA1, 0x06), 0x4100_0000); // L2_0[8] invalid: level 2
  expectFault(t, 1, r(0x80_0000_0000n), esrOf(DA1, 0x04), 0x80_0000_0000n); // outside both ranges: level 0
  expectFault(t, 1, r(0xff00_0000_0000_0000n), esrOf(DA1, 0x04), 0xff00_0000_0000_0000n);
  expectFault(t, 1, r(vp(4) + 8), esrOf(DA1, 0x0b), vp(4) + 8); // access flag, level 3
  expectFault(t, 1, w(vp(1)), esrOf(DA1, 0x4f), vp(1)); // permission, level 3, WnR
  expectFault(t, 1, w(vp(3)), esrOf(DA1, 0x4f), vp(3));
  expectFault(t, 1, r(vp(7)), esrOf(DA1, 0x03), vp(7)); // address size, level 3
  expectFault(t, 1, r(vp(8) + 4), esrOf(DA1, 0x10), vp(8) + 4); // nothing at the PA: external abort
  expectFault(t, 1, w(vp(8)), esrOf(DA1, 0x50), vp(8));
  expectFault(t, 1, r(VA_BADWALK + 0x20_0000), esrOf(DA1, 0x16), VA_BADWALK + 0x20_0000); // ext. abort on walk, L2
  // EL0: EL1-only pages and read-only pages
  expectFault(t, 0, r(vp(2)), esrOf(DA0, 0x0f), vp(2));
  expectFault(t, 0, r(vp(3)), esrOf(DA0, 0x0f), vp(3));
  expectFault(t, 0, w(vp(1) + 8), esrOf(DA0, 0x4f), vp(1) + 8);
  expectFault(t, 0, r(T1_BLK), esrOf(DA0, 0x0d), T1_BLK); // EL1-only 1 GiB block: permission, level 1
  expectFault(t, 0, r(vp(5)), esrOf(DA0, 0x07), vp(5));
  // ...and what EL0 may do
  t.cpu.setElSp(0, 0);
  assert.equal(rv(t, vp(0)), mark(0));
  assert.equal(rv(t, vp(1)), mark(1));
  wv(t, vp(10), 0x99n);
  assert.equal(r64(t, P(10)), 0x99n);
  t.cpu.setElSp(1, 1);
});

test('a data abort taken from an instruction reports ELR = the instruction, vector by EL', () => {
  const t = setup([ENC.ldr]);
  t.cpu.setXBig(1, BigInt(vp(5) + 0x28));
  t.step(1);
  assert.equal(t.cpu.pc, BigInt(VBAR + 0x200));
  assert.equal(hex(t.cpu.sys.ESR_EL1), hex(esrOf(0x25, 0x07)));
  assert.equal(t.cpu.sys.FAR_EL1, BigInt(vp(5) + 0x28));
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(RAM_BASE));
  // From EL0: ldr on the EL0 code page, target an EL1-only page.
  t.mem.dv.setUint32(P(6) - RAM_BASE, ENC.ldr, true);
  t.cpu.setElSp(0, 0);
  t.cpu.setPc(BigInt(vp(6)));
  t.cpu.setXBig(1, BigInt(vp(2)));
  t.step(1);
  assert.equal(t.cpu.pc, BigInt(VBAR + 0x400));
  assert.equal(hex(t.cpu.sys.ESR_EL1), hex(esrOf(0x24, 0x0f)));
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(vp(6)));
  assert.equal(t.cpu.el, 1);
});

test('instruction aborts: UXN, PXN, implicit PXN of EL0-writable pages, translation, FAR = PC', () => {
  const t = setup([ENC.br]);
  const IA1 = 0x21;
  const IA0 = 0x20;
  expectFault(t, 0, () => fetch(t, vp(0)), esrOf(IA0, 0x0f), vp(0), vp(0)); // UXN
  expectFault(t, 1, () => fetch(t, vp(6)), esrOf(IA1, 0x0f), vp(6), vp(6)); // PXN
  expectFault(t, 1, () => fetch(t, vp(10)), esrOf(IA1, 0x0f), vp(10), vp(10)); // EL0-writable
  expectFault(t, 0, () => fetch(t, vp(2)), esrOf(IA0, 0x0f), vp(2), vp(2)); // EL1-only page, UXN
  expectFault(t, 1, () => fetch(t, vp(5)), esrOf(IA1, 0x07), vp(5) + 0x44, vp(5) + 0x44); // FAR = PC
  expectFault(t, 1, () => fetch(t, vp(4)), esrOf(IA1, 0x0b), vp(4), vp(4));
  // executable: EL0 page 10 at EL0 (UXN = 0), EL1 page 2 at EL1
  t.cpu.setElSp(0, 0);
  assert.equal(fetch(t, vp(10)), P(10));
  t.cpu.setElSp(1, 1);
  assert.equal(fetch(t, vp(2)), P(2));
  // through the executor: BR to an XN page at EL1
  t.cpu.setPc(BigInt(RAM_BASE));
  t.cpu.setXBig(1, BigInt(vp(1) + 8));
  t.step(2);
  assert.equal(t.cpu.pc, BigInt(VBAR + 0x200));
  assert.equal(hex(t.cpu.sys.ESR_EL1), hex(esrOf(IA1, 0x0f)));
  assert.equal(t.cpu.sys.FAR_EL1, BigInt(vp(1) + 8));
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(vp(1) + 8));
});

test('permission matrix of AP[2:1] at EL0/EL1 (AT S1E0R/W, S1E1R/W)', () => {
  const t = setup();
  // ap -> [el1 read, el1 write, el0 read, el0 write]
  const allowed: Record<number, boolean[]> = {
    0: [true, true, false, false],
    1: [true, true, true, true],
    2: [true, false, false, false],
    3: [true, false, true, false],
  };
  for (const ap of [0, 1, 2, 3]) {
    w64(t, L3_0 + 20 * 8, page(P(1), { ap }));
    t.cpu.mmu.flushAll();
    const cases: [boolean, boolean][] = [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ];
    cases.forEach(([el0, write], k) => {
      const par = at(t, vp(20), el0, write);
      if (allowed[ap][k]) assert.equal(par & 1n, 0n, `ap=${ap} el0=${el0} write=${write}`);
      else
        assert.equal(hex(par), hex((1n << 11n) | (0x0fn << 1n) | 1n), `ap=${ap} el0=${el0} write=${write}`);
    });
  }
});

test('hierarchical APTable, UXNTable/PXNTable', () => {
  const t = setup();
  // APTable = 01: no EL0 access below (the leaf says EL0 RW)
  assert.equal(at(t, VA_APT0, false, true) & 1n, 0n);
  assert.equal(hex(at(t, VA_APT0, true, false)), hex(0x81fn));
  // APTable = 10: read-only for both
  assert.equal(at(t, VA_APT1, true, false) & 1n, 0n);
  assert.equal(hex(at(t, VA_APT1, false, true)), hex(0x81fn));
  assert.equal(hex(at(t, VA_APT1, true, true)), hex(0x81fn));
  // XNTable: not executable at EL0 although the leaf allows it; the plain path is executable
  t.cpu.setElSp(0, 0);
  assert.equal(fetch(t, VA_APT1), P(11));
  t.cpu.setElSp(1, 1);
  expectFault(t, 0, () => fetch(t, VA_XNT), esrOf(0x20, 0x0f), VA_XNT, VA_XNT);
  // APTable = 10 also removes the implicit PXN (the page is no longer EL0-writable)
  assert.equal(fetch(t, VA_APT1), P(11));
});

test('SCTLR_EL1.WXN makes writable pages execute-never', () => {
  const t = setup();
  t.cpu.setElSp(0, 0);
  assert.equal(fetch(t, vp(10)), P(10));
  t.cpu.sys.SCTLR_EL1 = SCTLR_ON | (1n << 19n);
  t.cpu.mmu.onRegsChanged();
  expectFault(t, 0, () => fetch(t, vp(10)), esrOf(0x20, 0x0f), vp(10), vp(10));
  expectFault(t, 1, () => fetch(t, vp(2)), esrOf(0x21, 0x0f), vp(2), vp(2));
  t.cpu.setElSp(0, 0);
  assert.equal(fetch(t, vp(6)), P(6), 'read-only code still runs');
});

test('LDTR/STTR at EL1 check EL0 permissions; the abort is taken from EL1', () => {
  const t = setup([ENC.ldtr, ENC.sttr, ENC.ldtr]);
  t.cpu.setXBig(1, BigInt(vp(0)));
  t.cpu.setXBig(2, 0x42n);
  t.step(2);
  assert.equal(t.cpu.xBig(0), mark(0));
  assert.equal(r64(t, P(0)), 0x42n);
  t.cpu.setXBig(1, BigInt(vp(2)));
  t.step(1);
  assert.equal(t.cpu.pc, BigInt(VBAR + 0x200));
  assert.equal(hex(t.cpu.sys.ESR_EL1), hex(esrOf(0x25, 0x0f)));
  assert.equal(t.cpu.sys.FAR_EL1, BigInt(vp(2)));
  // plain LDR of the same page at EL1 works
  assert.equal(rv(t, vp(2)), mark(2));
});

test('translated LDTR/STTR at EL1: EL0 permissions through the TLB, the same fault and count as interpreted', () => {
  // A loop of unprivileged loads and stores of each size on an EL0 page, then LDTR of an EL1-only
  // page: translated code reaches the EL0 page without the handler (wasm/emit.ts: EL0's MMU index)
  // and faults on the other at the same instruction, with the same syndrome, as interpreted.
  const program = [
    0xd2801903, // mov x3, #200
    0xf8400820, // 1: ldtr x0, [x1]
    0x91000400, // add x0, x0, #1
    0xf8000820, // sttr x0, [x1]
    0x78402824, // ldtrh w4, [x1, #2]
    0x38009824, // sttrb w4, [x1, #9]
    0xb8804825, // ldtrsw x5, [x1, #4]
    0xf1000463, // subs x3, x3, #1
    0x54ffff21, // b.ne 1b
    0xf8400840, // ldtr x0, [x2]
    0xd503207f, // wfi
  ];
  const runs = [false, true].map((jit) => {
    const t = setup(program);
    compareTiers(t.cpu, jit);
    t.mem.dv.setUint32(VBAR + 0x200 - RAM_BASE, 0xd503207f, true); // the vector: wfi
    t.cpu.setXBig(1, BigInt(vp(0)));
    t.cpu.setXBig(2, BigInt(vp(2)));
    const { result: n, calls } = countingHandlers(t.cpu, [ENC.ldtr], () => runToWfi(t, 500, 20));
    return { t, n, calls };
  });
  const end = mark(0) + 200n;
  const b9 = (end >> 16n) & 0xffn; // ldtrh [x1, #2] of the stored value, low byte to offset 9
  for (const { t } of runs) {
    assert.equal(hex(t.cpu.xBig(0)), hex(end), 'x0: 200 increments of the word on the EL0 page');
    assert.equal(hex(r64(t, P(0))), hex(end));
    assert.equal(t.mem.u8[P(0) + 9 - RAM_BASE], Number(b9), 'sttrb wrote the byte');
    assert.equal(hex(t.cpu.xBig(5)), hex(BigInt.asIntN(32, end >> 32n) & 0xffff_ffff_ffff_ffffn), 'ldtrsw');
    assert.equal(hex(t.cpu.sys.ESR_EL1), hex(esrOf(0x25, 0x0f)), 'permission fault, level 3, from EL1');
    assert.equal(hex(t.cpu.sys.FAR_EL1), hex(vp(2)));
    assert.equal(hex(t.cpu.sys.ELR_EL1), hex(RAM_BASE + 9 * 4), 'ELR: the last ldtr');
  }
  const [interp, jit] = runs;
  assert.equal(jit.n, interp.n, 'the same instruction count');
  assert.ok(jit.t.cpu.code.jitStats.insns > 1000, 'the loop ran translated');
  assert.ok(interp.calls > 200, `interpreted: the handler ran each LDTR (X) (${interp.calls})`);
  // (the loop runs interpreted until a slice has room for a unit: a few dozen calls)
  assert.ok(jit.calls * 4 < interp.calls, `translated: the handler ran ${jit.calls} times`);
});

test('AT: PAR_EL1 success form (PA, MAIR attribute, SH, NS) and fault form (FST)', () => {
  const t = setup();
  w64(t, L3_0 + 21 * 8, page(P(7), { ap: 1, attr: 0, sh: 3 }));
  w64(t, L3_0 + 22 * 8, page(P(7), { ap: 1, attr: 1, sh: 3 }));
  w64(t, L3_0 + 23 * 8, page(P(7), { ap: 1, attr: 2, sh: 3 }));
  const ok = (pa: number, attr: bigint, sh: bigint): bigint =>
    (attr << 56n) | BigInt(pa) | (1n << 11n) | (1n << 9n) | (sh << 7n);
  assert.equal(hex(at(t, vp(21) + 0x123, false, false)), hex(ok(P(7), 0xffn, 3n)));
  assert.equal(hex(at(t, vp(22), false, false)), hex(ok(P(7), 0x04n, 2n))); // Device: SH reported as 10
  assert.equal(hex(at(t, vp(23), true, true)), hex(ok(P(7), 0x44n, 2n))); // Non-cacheable
  assert.equal(hex(at(t, VA_L1BLK + 0x12_3456, false, false)), hex(ok(0x4012_3000, 0xffn, 3n)));
  const f = (fst: number): bigint => (1n << 11n) | (BigInt(fst) << 1n) | 1n;
  assert.equal(hex(at(t, vp(5), false, false)), hex(f(0x07)));
  assert.equal(hex(at(t, vp(4), false, false)), hex(f(0x0b)));
  assert.equal(hex(at(t, vp(7), false, false)), hex(f(0x03)));
  assert.equal(hex(at(t, 0x1_0000_0000, false, false)), hex(f(0x05)));
  assert.equal(hex(at(t, VA_BADWALK, false, false)), hex(f(0x16)));
  // AT does not fault and does not change ESR/FAR/PC
  assert.equal(t.cpu.sys.ESR_EL1, 0n);
});

test('TBI: top byte ignored per TTBR half when TCR.TBI0/TBI1 are set', () => {
  const t = setup();
  const tagged = (0x5an << 56n) | BigInt(vp(0));
  expectFault(t, 1, () => rv(t, tagged), esrOf(0x25, 0x04), tagged);
  t.cpu.sys.TCR_EL1 = TCR | (1n << 37n);
  t.cpu.mmu.onRegsChanged();
  assert.equal(rv(t, tagged), mark(0));
  assert.equal(rv(t, (0xa5n << 56n) | BigInt(vp(1))), mark(1));
  t.cpu.setElSp(0, 0);
  assert.equal(fetch(t, (0x5an << 56n) | BigInt(vp(10))), P(10));
  t.cpu.setElSp(1, 1);
  // TTBR1 half: tag 0x12 over a TTBR1 address faults until TBI1 is set
  const tagged1 = (T1_PAGE & 0x00ff_ffff_ffff_ffffn) | (0x12n << 56n);
  expectFault(t, 1, () => rv(t, tagged1), esrOf(0x25, 0x04), tagged1);
  t.cpu.sys.TCR_EL1 = TCR | (1n << 37n) | (1n << 38n);
  t.cpu.mmu.onRegsChanged();
  assert.equal(rv(t, tagged1), mark(0));
});

test('EPD0/EPD1, 16K/64K granules, IPS and TTBR beyond the PA range', () => {
  const t = setup();
  t.cpu.sys.TCR_EL1 = TCR | (1n << 7n); // EPD0
  t.cpu.mmu.onRegsChanged();
  expectFault(t, 1, () => rv(t, vp(0)), esrOf(0x25, 0x04), vp(0));
  assert.equal(rv(t, T1_PAGE), mark(0));
  t.cpu.sys.TCR_EL1 = TCR | (1n << 23n); // EPD1
  t.cpu.mmu.onRegsChanged();
  expectFault(t, 1, () => rv(t, T1_PAGE), esrOf(0x25, 0x04), T1_PAGE);
  assert.equal(rv(t, vp(0)), mark(0));
  for (const tg0 of [1n, 2n]) {
    t.cpu.sys.TCR_EL1 = TCR | (tg0 << 14n); // 64K, 16K
    t.cpu.mmu.onRegsChanged();
    expectFault(t, 1, () => rv(t, vp(0)), esrOf(0x25, 0x04), vp(0));
  }
  t.cpu.sys.TCR_EL1 = (TCR & ~(3n << 30n)) | (1n << 30n); // TG1 = 16K
  t.cpu.mmu.onRegsChanged();
  expectFault(t, 1, () => rv(t, T1_PAGE), esrOf(0x25, 0x04), T1_PAGE);
  // IPS = 32 bits: every PA here is below 4 GiB, so translations still work; the 2^40 page faults
  t.cpu.sys.TCR_EL1 = TCR & ~(7n << 32n);
  t.cpu.mmu.onRegsChanged();
  assert.equal(rv(t, vp(0)), mark(0));
  expectFault(t, 1, () => rv(t, vp(7)), esrOf(0x25, 0x03), vp(7));
  // A TTBR0 table address beyond the PA range: address size fault, level 0
  t.cpu.sys.TCR_EL1 = TCR;
  t.cpu.sys.TTBR0_EL1 = 1n << 41n;
  t.cpu.mmu.onRegsChanged();
  t.cpu.mmu.flushAll();
  expectFault(t, 1, () => rv(t, vp(0)), esrOf(0x25, 0x00), vp(0));
});

test('ASID tagging: non-global entries survive an ASID switch, global ones are shared; flushAsid', () => {
  const t = setup();
  assert.equal(rv(t, vp(0)), mark(0)); // nG page, cached under ASID 5
  assert.equal(rv(t, VA_L2BLK), r64(t, RAM_BASE + 0x20_0000)); // global block
  // Remap both without TLB maintenance: the cached entries still answer.
  w64(t, L3_0, page(P(1), { ap: 1, ng: 1 }));
  w64(t, L2_0 + 2 * 8, block(RAM_BASE + 0x40_0000, { ap: 1 }));
  w64(t, RAM_BASE + 0x40_0000, 0x4444n);
  assert.equal(rv(t, vp(0)), mark(0));
  const asid = (n: bigint): void => {
    t.cpu.sys.TTBR0_EL1 = BigInt(L1_0) | (n << 48n);
    t.cpu.mmu.onRegsChanged();
  };
  // ASID 6 shares the global entry; ASID 5's entry survives the switch there and back.
  // Translated code's inline access compares only the read/write fast tags (wasm/runtime.ts hit):
  // they hold ASID 5's page only while ASID 5 is current.
  const tags = (a: 'rTag' | 'wTag'): Int32Array =>
    new Int32Array(t.mem.stateBuffer, t.cpu.st + tlbOff(a), 2 * TLB_SIZE);
  const slot = (1 << TLB_BITS) | ((vp(0) >>> 12) & (TLB_SIZE - 1)); // EL1's MMU index
  assert.equal(tags('rTag')[slot], vp(0) | 0, 'the read fast tag under ASID 5');
  asid(6n);
  assert.notEqual(tags('rTag')[slot], vp(0) | 0, "no read fast tag for ASID 5's page under ASID 6");
  assert.notEqual(tags('wTag')[slot], vp(0) | 0, 'nor a write fast tag');
  assert.equal(rv(t, VA_L2BLK), r64(t, RAM_BASE + 0x20_0000));
  asid(5n);
  assert.equal(tags('rTag')[slot], vp(0) | 0, 'back under ASID 5');
  assert.equal(rv(t, vp(0)), mark(0));
  // Under ASID 6 the nG page needs a walk of its own (the TLB is direct mapped: that walk's entry
  // replaces ASID 5's in the same slot, so ASID 5 walks again afterwards).
  asid(6n);
  assert.equal(rv(t, vp(0)), mark(1));
  asid(5n);
  assert.equal(rv(t, vp(0)), mark(1));
  w64(t, L3_0, page(P(2), { ap: 1, ng: 1 }));
  t.cpu.mmu.flushAsid(7);
  assert.equal(rv(t, vp(0)), mark(1));
  t.cpu.mmu.flushAsid(5);
  assert.equal(rv(t, vp(0)), mark(2));
  assert.equal(rv(t, VA_L2BLK), r64(t, RAM_BASE + 0x20_0000), 'flushAsid keeps global entries');
  t.cpu.mmu.flushAll();
  assert.equal(rv(t, VA_L2BLK), 0x4444n);
});

test('TCR.A1 selects TTBR1 ASID; TCR.AS selects 8 or 16 bits', () => {
  const t = setup();
  assert.equal(t.cpu.mmu.asid, 5);
  t.cpu.sys.TTBR1_EL1 = BigInt(L1_1) | (0x1234n << 48n);
  t.cpu.sys.TCR_EL1 = TCR | (1n << 22n);
  t.cpu.mmu.onRegsChanged();
  assert.equal(t.cpu.mmu.asid, 0x34);
  t.cpu.sys.TCR_EL1 = TCR | (1n << 22n) | (1n << 36n);
  t.cpu.mmu.onRegsChanged();
  assert.equal(t.cpu.mmu.asid, 0x1234);
  // the nG page is walked under the TTBR1 ASID and flushed by it
  assert.equal(rv(t, vp(0)), mark(0));
  w64(t, L3_0, page(P(1), { ap: 1, ng: 1 }));
  t.cpu.mmu.flushAsid(5);
  assert.equal(rv(t, vp(0)), mark(0));
  t.cpu.mmu.flushAsid(0x1234);
  assert.equal(rv(t, vp(0)), mark(1));
});

test('flushVa: by ASID or any ASID, global entries always, every page of a cached block', () => {
  const t = setup();
  assert.equal(rv(t, vp(0)), mark(0));
  w64(t, L3_0, page(P(1), { ap: 1, ng: 1 }));
  t.cpu.mmu.flushVa(vp(0), 0, 9, true); // another ASID: kept
  assert.equal(rv(t, vp(0)), mark(0));
  t.cpu.mmu.flushVa(vp(0) + 0x800, 0, 5, true);
  assert.equal(rv(t, vp(0)), mark(1));
  w64(t, L3_0, page(P(2), { ap: 1, ng: 1 }));
  t.cpu.mmu.flushVa(vp(0), 0xff00_0000, -1, false); // any ASID; top byte of the operand ignored
  assert.equal(rv(t, vp(0)), mark(2));
  // global page, flushed whatever the ASID given
  assert.equal(rv(t, vp(1)), mark(1));
  w64(t, L3_0 + 8, page(P(3), { ap: 3 }));
  t.cpu.mmu.flushVa(vp(1), 0, 9, false);
  assert.equal(rv(t, vp(1)), mark(3));
  // a 2 MiB block: flushing one page of it drops the cached translation of another page
  const a = VA_L2BLK + 0x5_0000;
  assert.equal(rv(t, a), r64(t, RAM_BASE + 0x25_0000));
  w64(t, L2_0 + 2 * 8, block(RAM_BASE + 0x40_0000, { ap: 1 }));
  w64(t, RAM_BASE + 0x45_0000, 0x4545n);
  t.cpu.mmu.flushVa(VA_L2BLK + 0x1_0000, 0, -1, true);
  assert.equal(rv(t, a), 0x4545n);
});

test('TLB entries keep permissions per EL: EL1 use does not grant EL0 access', () => {
  const t = setup();
  assert.equal(rv(t, vp(2)), mark(2)); // cached via EL1
  expectFault(t, 0, () => rv(t, vp(2)), esrOf(0x24, 0x0f), vp(2));
  t.cpu.setElSp(0, 0);
  assert.equal(rv(t, vp(1)), mark(1)); // cached via EL0 (read-only)
  t.cpu.setElSp(1, 1);
  expectFault(t, 1, () => wv(t, vp(1), 0n), esrOf(0x25, 0x4f), vp(1));
});

test('unaligned accesses across pages translate both pages; the fault reports the second page', () => {
  const t = setup();
  w64(t, P(0) + 0xff8, 0x8877665544332211n);
  w64(t, P(1), 0x00000000ccbbaa99n);
  assert.equal(rv(t, vp(0) + 0xffc), 0xccbbaa9988776655n);
  // page 4 has AF = 0: a write crossing from page 3 (read-only at EL1 too) ... use page 0 -> 1 (read-only)
  expectFault(t, 1, () => wv(t, vp(0) + 0xffc, 0n), esrOf(0x25, 0x4f), vp(1));
  assert.equal(r64(t, P(0) + 0xff8), 0x8877665544332211n, 'nothing written');
});

test('a store through an alias mapping invalidates decoded code', () => {
  // add x0,x0,#1 at RAM_BASE+4 is rewritten to movz x0,#7 through the TTBR1 alias of the code
  const t = setup([ENC.strw, ENC.add1, 0xd65f03c0 /* ret */]);
  t.cpu.setXBig(2, BigInt(ENC.movz7));
  t.cpu.setXBig(3, T1_BLK + BigInt(RAM_BASE + 4 - 0x4000_0000));
  t.cpu.setXBig(30, BigInt(RAM_BASE + 4));
  // decode the page first: run the add once from a jump-in point
  t.cpu.setPc(BigInt(RAM_BASE + 4));
  t.step(1);
  assert.equal(t.cpu.xBig(0), 1n);
  t.cpu.setPc(BigInt(RAM_BASE));
  t.step(2);
  assert.equal(t.cpu.xBig(0), 7n);
});

test('cache maintenance helper: faults carry CM and WnR', () => {
  const t = setup();
  assert.equal(t.cpu.mmu.cacheOp(vp(1) + 0x40, 0), P(1) + 0x40);
  expectFault(t, 1, () => t.cpu.mmu.cacheOp(vp(5) + 0x40, 0), esrOf(0x25, 0x100 | 0x40 | 0x07), vp(5) + 0x40);
  expectFault(t, 1, () => t.cpu.mmu.cacheOp(vp(1), 0, true), esrOf(0x25, 0x100 | 0x40 | 0x0f), vp(1));
  t.cpu.mmu.zeroBlock(vp(0) + 0x47, 0, 64);
  assert.equal(r64(t, P(0) + 0x40), 0n);
  assert.equal(r64(t, P(0) + 0x78), 0n);
  assert.equal(r64(t, P(0)), mark(0));
});

test('MMIO through a mapping: 8-byte access as two 4-byte device accesses, low half first', () => {
  const t = setup();
  const log: string[] = [];
  t.mem.addMmio(0x0900_0000, 0x1000, 'fake', {
    read: (off, size) => {
      log.push(`r${size}@${off}`);
      return off === 0x10 ? 0x89abcdef : 0x01234567;
    },
    write: (off, size, v) => log.push(`w${size}@${off}=${v.toString(16)}`),
  });
  w64(t, L3_0 + 12 * 8, page(0x0900_0000, { ap: 0, attr: 1, uxn: 1, pxn: 1 }));
  assert.equal(rv(t, vp(12) + 0x10), 0x0123456789abcdefn);
  wv(t, vp(12) + 0x20, 0xaabbccdd11223344n);
  assert.deepEqual(log, ['r4@16', 'r4@20', 'w4@32=11223344', 'w4@36=aabbccdd']);
  // unaligned access to Device memory: alignment fault
  expectFault(t, 1, () => rv(t, vp(12) + 0x14), esrOf(0x25, 0x21), vp(12) + 0x14);
});

test('TLB maintenance also drops the executor fetch cache (remapped code runs)', () => {
  const t = setup();
  t.mem.dv.setUint32(P(12) - RAM_BASE, ENC.movz7, true);
  t.mem.dv.setUint32(P(13) - RAM_BASE, ENC.add1, true);
  w64(t, L3_0 + 13 * 8, page(P(12), { ap: 0, uxn: 1 }));
  t.cpu.setPc(BigInt(vp(13)));
  t.step(1);
  assert.equal(t.cpu.xBig(0), 7n);
  w64(t, L3_0 + 13 * 8, page(P(13), { ap: 0, uxn: 1 }));
  for (const flush of [() => t.cpu.mmu.flushAll(), () => t.cpu.mmu.flushVa(vp(13), 0, -1, true)]) {
    t.cpu.setXBig(0, 7n);
    w64(t, L3_0 + 13 * 8, page(P(12), { ap: 0, uxn: 1 }));
    t.cpu.mmu.flushAll();
    t.cpu.setPc(BigInt(vp(13)));
    t.step(1); // runs movz from P(12), caching the fetch page
    w64(t, L3_0 + 13 * 8, page(P(13), { ap: 0, uxn: 1 }));
    flush();
    t.cpu.setPc(BigInt(vp(13)));
    t.step(1);
    assert.equal(t.cpu.xBig(0), 8n);
  }
});

test('after TLBI VAE1 translated code calls what the new mapping holds (no stale jump cache entry)', () => {
  // A subroutine calls a function at a VA 200 times; the program calls it, remaps the VA's page to
  // another page with other code (str + TLBI VAE1 + DSB + ISB), and calls it again. Its loop, hot and
  // translated by then, goes to the function through the jump cache (src/cpu/arm64/wasm/dispatch.ts),
  // which the TLBI must clear.
  const program = [
    0x94000008, // bl callN
    0xf90000a6, // str x6, [x5]
    0xd5033a9f, // dsb ishst
    0xd5088724, // tlbi vae1, x4
    0xd5033b9f, // dsb ish
    0xd5033fdf, // isb
    0x94000002, // bl callN
    0xd503207f, // wfi
    0xaa1e03e7, // callN: mov x7, x30
    0xd2801901, // mov x1, #200
    0xd63f0060, // 1: blr x3
    0xf1000421, // subs x1, x1, #1
    0x54ffffc1, // b.ne 1b
    0xd65f00e0, // ret x7
  ];
  const results: number[] = [];
  for (const jit of [false, true]) {
    const t = setup(program);
    compareTiers(t.cpu, jit);
    const fn = 0x100;
    t.mem.dv.setUint32(P(2) + fn - RAM_BASE, ENC.add1, true);
    t.mem.dv.setUint32(P(2) + fn + 4 - RAM_BASE, 0xd65f03c0, true); // ret
    t.mem.dv.setUint32(P(3) + fn - RAM_BASE, 0x91000800, true); // add x0, x0, #2
    t.mem.dv.setUint32(P(3) + fn + 4 - RAM_BASE, 0xd65f03c0, true);
    const set = (n: number, v: bigint): void => t.cpu.setX(n, Number(v & 0xffffffffn), Number(v >> 32n));
    set(0, 0n);
    set(3, BigInt(vp(2) + fn));
    set(4, BigInt(vp(2) >>> 12) | (5n << 48n)); // VA[55:12], ASID 5
    set(5, BigInt(VA_L1BLK + (L3_0 - 0x4000_0000) + 2 * 8)); // the descriptor, through the 1 GiB RW block
    set(6, page(P(3), { ap: 2, uxn: 1 })); // EL1 read-only, executable at EL1
    for (let k = 0; k < 50 && !t.cpu.waiting; k++) t.step(10_000);
    assert.ok(t.cpu.waiting, `the program ran to its WFI (PC ${hex(t.cpu.pcLo)}, ESR ${hex(t.cpu.sys.ESR_EL1)}, FAR ${hex(t.cpu.sys.FAR_EL1)})`);
    if (jit) assert.ok(t.cpu.code.jitStats.insns > 1000, 'the loops ran translated');
    results.push(t.cpu.xlo(0));
  }
  assert.deepEqual(results, [600, 600], 'interpreted, translated: 200 x 1 + 200 x 2');
});

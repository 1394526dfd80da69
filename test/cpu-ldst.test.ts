// A64 loads and stores: every addressing mode with writeback, sign extension, pairs, exclusives
// (including a store by a second CPU sharing memory), alignment faults, MMIO and unbacked addresses,
// SIMD & FP scalar and structure loads/stores, and a store that rewrites decoded code. Expected
// values come from a byte model of memory computed in the test (BigInt), never from the CPU.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu, RAM_BASE, type TestCpu } from './helpers/arm64.js';
import { Arm64Cpu } from '../src/cpu/arm64/cpu.js';

// words from aarch64-linux-gnu-as -march=armv8.4-a + objdump
const ENC: Record<string, number> = {
  'ldr x0, [x1, #8]': 0xf9400420,
  'ldr w2, [x1, #4]': 0xb9400422,
  'ldrb w3, [x1, #7]': 0x39401c23,
  'ldrh w4, [x1, #6]': 0x79400c24,
  'ldrsb x5, [x1, #7]': 0x39801c25,
  'ldrsb w6, [x1, #7]': 0x39c01c26,
  'ldrsh x7, [x1, #6]': 0x79800c27,
  'ldrsh w8, [x1, #6]': 0x79c00c28,
  'ldrsw x9, [x1, #4]': 0xb9800429,
  'ldur x10, [x1, #-8]': 0xf85f802a,
  'ldur w11, [x1, #1]': 0xb840102b,
  'str x0, [x1, #16]': 0xf9000820,
  'str w0, [x1, #24]': 0xb9001820,
  'strh w0, [x1, #28]': 0x79003820,
  'strb w0, [x1, #30]': 0x39007820,
  'stur x0, [x1, #-3]': 0xf81fd020,
  'ldr x2, [x1, #8]!': 0xf8408c22,
  'ldr x2, [x1], #-8': 0xf85f8422,
  'str x2, [x1, #-16]!': 0xf81f0c22,
  'str w2, [x1], #4': 0xb8004422,
  'ldr x3, [x1, x2]': 0xf8626823,
  'ldr x3, [x1, x2, lsl #3]': 0xf8627823,
  'ldr w3, [x1, w2, uxtw #2]': 0xb8625823,
  'ldr w3, [x1, w2, sxtw]': 0xb862c823,
  'ldrsh x3, [x1, x2, sxtx #1]': 0x78a2f823,
  'strb w3, [x1, x2]': 0x38226823,
  'ldr x4, .+16': 0x58000084,
  'ldr w5, .+12': 0x18000065,
  'ldrsw x6, .+8': 0x98000046,
  'prfm pldl1keep, .+8': 0xd8000040,
  'prfm pldl1keep, [x1, #8]': 0xf9800420,
  'prfum pldl1keep, [x1, #-1]': 0xf89ff020,
  'prfm pldl1keep, [x1, x2]': 0xf8a26820,
  'ldp x2, x3, [x1]': 0xa9400c22,
  'ldp x2, x3, [x1, #-16]!': 0xa9ff0c22,
  'ldp x2, x3, [x1], #32': 0xa8c20c22,
  'stp x2, x3, [x1, #16]': 0xa9010c22,
  'stp x2, x3, [sp, #-32]!': 0xa9be0fe2,
  'stp w2, w3, [x1], #-8': 0x28bf0c22,
  'ldp w2, w3, [x1, #4]': 0x29408c22,
  'ldpsw x2, x3, [x1]': 0x69400c22,
  'ldnp x4, x5, [x1, #16]': 0xa8411424,
  'stnp w4, w5, [x1, #8]': 0x28011424,
  'ldr x1, [x1, #8]!': 0xf8408c21,
  'str x1, [x1], #8': 0xf8008421,
  'ldp x1, x2, [x1], #16': 0xa8c10821,
  'ldr xzr, [x1]': 0xf940003f,
  'str xzr, [x1]': 0xf900003f,
  'ldtr x2, [x1, #8]': 0xf8408822,
  'sttr w2, [x1, #-4]': 0xb81fc822,
  'ldtrsb x2, [x1]': 0x38800822,
  'ldxr x2, [x1]': 0xc85f7c22,
  'stxr w3, x4, [x1]': 0xc8037c24,
  'ldxrb w2, [x1]': 0x085f7c22,
  'stxrb w3, w4, [x1]': 0x08037c24,
  'ldaxrh w2, [x1]': 0x485ffc22,
  'stlxrh w3, w4, [x1]': 0x4803fc24,
  'ldxr w2, [x1]': 0x885f7c22,
  'stxr w3, w4, [x1]': 0x88037c24,
  'ldxp x2, x5, [x1]': 0xc87f1422,
  'stxp w3, x4, x6, [x1]': 0xc8231824,
  'ldaxp w2, w5, [x1]': 0x887f9422,
  'stlxp w3, w4, w6, [x1]': 0x88239824,
  'ldar x2, [x1]': 0xc8dffc22,
  'stlr w4, [x1]': 0x889ffc24,
  'ldarb w2, [x1]': 0x08dffc22,
  'stlrh w4, [x1]': 0x489ffc24,
  clrex: 0xd5033f5f,
  'ldr x2, [sp]': 0xf94003e2,
  'ldr x2, [sp, #8]': 0xf94007e2,
  'stxr w1, x4, [x1]': 0xc8017c24,
  'ldxp x2, x2, [x1]': 0xc87f0822,
  'ldadd x0, x1, [x2]': 0xf8200041,
  'cas x0, x1, [x2]': 0xc8a07c41,
  'ldapr x0, [x1]': 0xf8bfc020,
  'ldr b0, [x1]': 0x3d400020,
  'ldr h1, [x1, #2]': 0x7d400421,
  'ldr s2, [x1, #4]': 0xbd400422,
  'ldr d3, [x1, #8]': 0xfd400423,
  'ldr q4, [x1, #16]': 0x3dc00424,
  'str q4, [x1, #32]': 0x3d800824,
  'str d3, [x1, #48]': 0xfd001823,
  'str s2, [x1, #56]': 0xbd003822,
  'str h1, [x1, #60]': 0x7d007821,
  'str b0, [x1, #62]': 0x3d00f820,
  'ldur q5, [x1, #1]': 0x3cc01025,
  'ldr q6, [x1, #16]!': 0x3cc10c26,
  'ldr d7, [x1], #8': 0xfc408427,
  'ldr q8, [x1, x2, lsl #4]': 0x3ce27828,
  'ldr s9, [x1, w2, sxtw #2]': 0xbc62d829,
  'ldr q10, .+16': 0x9c00008a,
  'ldr d11, .+12': 0x5c00006b,
  'ldr s12, .+8': 0x1c00004c,
  'ldp q0, q1, [x1]': 0xad400420,
  'stp d2, d3, [x1, #16]!': 0x6d810c22,
  'ldp s4, s5, [x1], #8': 0x2cc11424,
  'ldnp q6, q7, [x1]': 0xac401c26,
  'ld1 {v0.16b}, [x1]': 0x4c407020,
  'ld1 {v1.8b, v2.8b}, [x1]': 0x0c40a021,
  'ld1 {v3.4s, v4.4s, v5.4s}, [x1], #48': 0x4cdf6823,
  'ld1 {v30.2d, v31.2d, v0.2d, v1.2d}, [x1], x2': 0x4cc22c3e,
  'ld2 {v0.8h, v1.8h}, [x1]': 0x4c408420,
  'ld3 {v0.4s, v1.4s, v2.4s}, [x1]': 0x4c404820,
  'ld4 {v0.8b, v1.8b, v2.8b, v3.8b}, [x1], #32': 0x0cdf0020,
  'st1 {v0.16b, v1.16b}, [x1]': 0x4c00a020,
  'st2 {v0.4s, v1.4s}, [x1], #32': 0x4c9f8820,
  'st3 {v0.8b, v1.8b, v2.8b}, [x1]': 0x0c004020,
  'st4 {v0.2d, v1.2d, v2.2d, v3.2d}, [x1]': 0x4c000c20,
  'ld1 {v0.s}[3], [x1]': 0x4d409020,
  'ld2 {v0.h, v1.h}[5], [x1], #4': 0x4dff4820,
  'ld3 {v0.b, v1.b, v2.b}[15], [x1], x2': 0x4dc23c20,
  'ld4 {v0.d, v1.d, v2.d, v3.d}[1], [x1]': 0x4d60a420,
  'st1 {v0.d}[1], [x1]': 0x4d008420,
  'st3 {v0.s, v1.s, v2.s}[2], [x1], #12': 0x4d9fa020,
  'ld1r {v0.4s}, [x1]': 0x4d40c820,
  'ld2r {v0.8b, v1.8b}, [x1], #2': 0x0dffc020,
  'ld3r {v0.8h, v1.8h, v2.8h}, [x1]': 0x4d40e420,
  'ld4r {v0.2d, v1.2d, v2.2d, v3.2d}, [x1], #32': 0x4dffec20,
  'ld4r {v0.1d, v1.1d, v2.1d, v3.1d}, [x1]': 0x0d60ec20,
  'movz x0, #1': 0xd2800020,
  'add x5, x5, x0': 0x8b0000a5,
  'str w2, [x3]': 0xb9000062,
  'sub x4, x4, #1': 0xd1000484,
  'cbnz x4, .-16': 0xb5ffff84,
  'add x0, x5, #100': 0x910190a0,
  nop: 0xd503201f,
  'stxr w3, w4, [x5]': 0x88037ca4,
  'ldr x0, [x1]': 0xf9400020,
  'str x2, [x1, #8]': 0xf9000422,
  'ldrb w3, [x1, #2]': 0x39400823,
  'strh w2, [x1, #4]': 0x79000822,
  'ldr x0, [x1, #4]': 0xf8404020,
  'ldr x0, [x1, #16]': 0xf9400820,
  'str x0, [x1, #8]': 0xf9000420,
  'ldtr x0, [x1]': 0xf8400820,
  'sttr x0, [x1]': 0xf8000820,
  'ldr x0, [sp]': 0xf94003e0,
  'br x1': 0xd61f0020,
  'svc #0': 0xd4000001,
  'ldr w0, [x1]': 0xb9400020,
};

const VBAR = RAM_BASE + 0x8000;
const SYNC_CUR_SPX = BigInt(VBAR + 0x200);
const D = RAM_BASE + 0x10000; // data area
const M64 = (1n << 64n) - 1n;

/** Byte i of the initial data pattern at D. */
const pat = (i: number): number => (i * 73 + 0x81) & 0xff;

/** Little-endian value of `n` bytes of the pattern at data offset `off`. */
function pv(off: number, n: number): bigint {
  let v = 0n;
  for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(pat(off + k));
  return v;
}
const sext = (v: bigint, bits: number): bigint => BigInt.asIntN(bits, v);
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

function enc(s: string): number {
  const w = ENC[s];
  if (w === undefined) throw new Error(`no encoding for '${s}'`);
  return w;
}

/** A CPU at EL1, MMU off, with the instructions at RAM_BASE, the pattern at D, FP enabled. */
function setup(insns: string[], regs: Record<number, bigint> = {}): TestCpu {
  const t = makeCpu(insns.map(enc));
  for (let i = 0; i < 8192; i++) t.mem.u8[D - RAM_BASE + i] = pat(i);
  t.cpu.sys.VBAR_EL1 = BigInt(VBAR);
  t.cpu.mmu.onRegsChanged();
  for (const [k, v] of Object.entries(regs)) t.cpu.setXBig(Number(k), u64(v));
  return t;
}
const rd = (t: TestCpu, pa: number, n: number): bigint => {
  let v = 0n;
  for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(t.mem.u8[pa - RAM_BASE + k]);
  return v;
};
const X = (t: TestCpu, n: number): bigint => t.cpu.xBig(n);
const pc = (t: TestCpu): bigint => t.cpu.pc;
const esr = (t: TestCpu): bigint => t.cpu.sys.ESR_EL1;
const hex = (v: bigint): string => '0x' + v.toString(16);

function assertUndef(t: TestCpu, at = BigInt(RAM_BASE)): void {
  assert.equal(pc(t), SYNC_CUR_SPX, 'took the synchronous exception');
  assert.equal(hex(esr(t)), hex(0x2000000n), 'EC 0 (unknown), IL');
  assert.equal(t.cpu.sys.ELR_EL1, at);
}

function one(insn: string, regs: Record<number, bigint>): TestCpu {
  const t = setup([insn], regs);
  t.step(1);
  return t;
}

test('unsigned-offset loads: sizes and sign extension to W and X', () => {
  const base = BigInt(D + 0x40);
  const t = setup(
    [
      'ldr x0, [x1, #8]',
      'ldr w2, [x1, #4]',
      'ldrb w3, [x1, #7]',
      'ldrh w4, [x1, #6]',
      'ldrsb x5, [x1, #7]',
      'ldrsb w6, [x1, #7]',
      'ldrsh x7, [x1, #6]',
      'ldrsh w8, [x1, #6]',
      'ldrsw x9, [x1, #4]',
      'ldur x10, [x1, #-8]',
      'ldur w11, [x1, #1]',
    ],
    { 1: base, 2: M64, 3: M64, 4: M64, 6: M64, 8: M64 },
  );
  t.step(11);
  const o = 0x40;
  assert.equal(X(t, 0), pv(o + 8, 8));
  assert.equal(X(t, 2), pv(o + 4, 4));
  assert.equal(X(t, 3), pv(o + 7, 1));
  assert.equal(X(t, 4), pv(o + 6, 2));
  assert.equal(X(t, 5), u64(sext(pv(o + 7, 1), 8)));
  assert.equal(X(t, 6), BigInt.asUintN(32, sext(pv(o + 7, 1), 8)));
  assert.equal(X(t, 7), u64(sext(pv(o + 6, 2), 16)));
  assert.equal(X(t, 8), BigInt.asUintN(32, sext(pv(o + 6, 2), 16)));
  assert.equal(X(t, 9), u64(sext(pv(o + 4, 4), 32)));
  assert.equal(X(t, 10), pv(o - 8, 8));
  assert.equal(X(t, 11), pv(o + 1, 4));
  // The pattern has bytes with the top bit both set and clear; make sure both signs were exercised.
  assert.ok([5, 7, 9].some((r) => X(t, r) >> 63n === 1n));
});

test('stores of each size, unscaled and unaligned', () => {
  const v = 0x1122334455667788n;
  const t = setup(
    [
      'str x0, [x1, #16]',
      'str w0, [x1, #24]',
      'strh w0, [x1, #28]',
      'strb w0, [x1, #30]',
      'stur x0, [x1, #-3]',
    ],
    { 0: v, 1: BigInt(D + 0x100) },
  );
  t.step(5);
  assert.equal(rd(t, D + 0x110, 8), v);
  assert.equal(rd(t, D + 0x118, 4), v & 0xffffffffn);
  assert.equal(rd(t, D + 0x11c, 2), v & 0xffffn);
  assert.equal(rd(t, D + 0x11e, 1), v & 0xffn);
  assert.equal(rd(t, D + 0x11f, 1), BigInt(pat(0x11f)), 'byte after STRB untouched');
  assert.equal(rd(t, D + 0x100 - 3, 8), v);
  assert.equal(rd(t, D + 0x100 - 4, 1), BigInt(pat(0xfc)));
});

test('pre- and post-index writeback', () => {
  const b = BigInt(D + 0x80);
  let t = one('ldr x2, [x1, #8]!', { 1: b });
  assert.equal(X(t, 2), pv(0x88, 8));
  assert.equal(X(t, 1), b + 8n);
  t = one('ldr x2, [x1], #-8', { 1: b });
  assert.equal(X(t, 2), pv(0x80, 8));
  assert.equal(X(t, 1), b - 8n);
  t = one('str x2, [x1, #-16]!', { 1: b, 2: 0xdeadbeefcafef00dn });
  assert.equal(rd(t, D + 0x70, 8), 0xdeadbeefcafef00dn);
  assert.equal(X(t, 1), b - 16n);
  t = one('str w2, [x1], #4', { 1: b, 2: 0xdeadbeefcafef00dn });
  assert.equal(rd(t, D + 0x80, 4), 0xcafef00dn);
  assert.equal(X(t, 1), b + 4n);
  t = one('stp x2, x3, [sp, #-32]!', { 2: 5n, 3: 6n });
  t.cpu.setSpEl(1, b);
  t = setup(['stp x2, x3, [sp, #-32]!'], { 2: 5n, 3: 6n });
  t.cpu.setSpEl(1, b);
  t.step(1);
  assert.equal(t.cpu.getSpEl(1), b - 32n);
  assert.equal(rd(t, D + 0x60, 8), 5n);
  assert.equal(rd(t, D + 0x68, 8), 6n);
});

test('register offset: LSL, UXTW, SXTW, SXTX with scaling', () => {
  const b = BigInt(D + 0x200);
  let t = one('ldr x3, [x1, x2]', { 1: b, 2: 0x18n });
  assert.equal(X(t, 3), pv(0x218, 8));
  t = one('ldr x3, [x1, x2, lsl #3]', { 1: b, 2: M64 - 1n }); // -2 * 8
  assert.equal(X(t, 3), pv(0x1f0, 8));
  t = one('ldr w3, [x1, w2, uxtw #2]', { 1: b, 2: 0xffffffff_00000003n }); // upper half ignored
  assert.equal(X(t, 3), pv(0x20c, 4));
  t = one('ldr w3, [x1, w2, sxtw]', { 1: b, 2: 0x12345678_fffffff0n }); // -16
  assert.equal(X(t, 3), pv(0x1f0, 4));
  t = one('ldrsh x3, [x1, x2, sxtx #1]', { 1: b, 2: M64 - 4n }); // -5 * 2
  assert.equal(X(t, 3), u64(sext(pv(0x200 - 10, 2), 16)));
  t = one('strb w3, [x1, x2]', { 1: b, 2: 0x33n, 3: 0xabn });
  assert.equal(rd(t, D + 0x233, 1), 0xabn);
});

test('literal loads (LDR W/X, LDRSW) and PRFM forms are no-ops', () => {
  const t = setup(['ldr x4, .+16', 'ldr w5, .+12', 'ldrsw x6, .+8', 'nop', 'nop']);
  t.mem.dv.setUint32(16, 0x89abcdef, true);
  t.mem.dv.setUint32(20, 0x01234567, true);
  t.step(3);
  assert.equal(X(t, 4), 0x0123456789abcdefn);
  assert.equal(X(t, 5), 0x89abcdefn);
  assert.equal(X(t, 6), 0xffffffff89abcdefn);
  const p = setup(
    [
      'prfm pldl1keep, .+8',
      'prfm pldl1keep, [x1, #8]',
      'prfum pldl1keep, [x1, #-1]',
      'prfm pldl1keep, [x1, x2]',
    ],
    { 1: 0x1000n, 2: 0x7000000000n }, // nothing there: a real access would abort
  );
  p.step(4);
  assert.equal(pc(p), BigInt(RAM_BASE + 16));
});

test('pairs: LDP/STP X and W, LDPSW, LDNP/STNP, writeback', () => {
  const b = BigInt(D + 0x300);
  let t = one('ldp x2, x3, [x1]', { 1: b });
  assert.deepEqual([X(t, 2), X(t, 3)], [pv(0x300, 8), pv(0x308, 8)]);
  t = one('ldp x2, x3, [x1, #-16]!', { 1: b });
  assert.deepEqual([X(t, 2), X(t, 3), X(t, 1)], [pv(0x2f0, 8), pv(0x2f8, 8), b - 16n]);
  t = one('ldp x2, x3, [x1], #32', { 1: b });
  assert.deepEqual([X(t, 2), X(t, 3), X(t, 1)], [pv(0x300, 8), pv(0x308, 8), b + 32n]);
  t = one('stp x2, x3, [x1, #16]', { 1: b, 2: 0xa1n, 3: 0xb2n });
  assert.deepEqual([rd(t, D + 0x310, 8), rd(t, D + 0x318, 8)], [0xa1n, 0xb2n]);
  t = one('stp w2, w3, [x1], #-8', { 1: b, 2: 0x1_0000_00a1n, 3: 0xb2n });
  assert.deepEqual([rd(t, D + 0x300, 4), rd(t, D + 0x304, 4), X(t, 1)], [0xa1n, 0xb2n, b - 8n]);
  t = one('ldp w2, w3, [x1, #4]', { 1: b });
  assert.deepEqual([X(t, 2), X(t, 3)], [pv(0x304, 4), pv(0x308, 4)]);
  t = one('ldpsw x2, x3, [x1]', { 1: b });
  assert.deepEqual([X(t, 2), X(t, 3)], [u64(sext(pv(0x300, 4), 32)), u64(sext(pv(0x304, 4), 32))]);
  t = one('ldnp x4, x5, [x1, #16]', { 1: b });
  assert.deepEqual([X(t, 4), X(t, 5)], [pv(0x310, 8), pv(0x318, 8)]);
  t = one('stnp w4, w5, [x1, #8]', { 1: b, 4: 7n, 5: 9n });
  assert.deepEqual([rd(t, D + 0x308, 4), rd(t, D + 0x30c, 4)], [7n, 9n]);
});

test('XZR as transfer register; writeback overlap and other CONSTRAINED UNPREDICTABLE forms are UNDEF', () => {
  let t = one('ldr xzr, [x1]', { 1: BigInt(D) });
  assert.equal(pc(t), BigInt(RAM_BASE + 4));
  t = one('str xzr, [x1]', { 1: BigInt(D) });
  assert.equal(rd(t, D, 8), 0n);
  for (const s of [
    'ldr x1, [x1, #8]!',
    'str x1, [x1], #8',
    'ldp x1, x2, [x1], #16',
    'stxr w1, x4, [x1]',
    'ldxp x2, x2, [x1]',
    'ldadd x0, x1, [x2]',
    'cas x0, x1, [x2]',
    'ldapr x0, [x1]',
  ]) {
    t = one(s, { 1: BigInt(D), 2: BigInt(D) });
    assertUndef(t);
  }
});

test('LDTR/STTR at EL1 with the MMU off behave like LDR/STR', () => {
  let t = one('ldtr x2, [x1, #8]', { 1: BigInt(D) });
  assert.equal(X(t, 2), pv(8, 8));
  t = one('sttr w2, [x1, #-4]', { 1: BigInt(D + 8), 2: 0x55667788n });
  assert.equal(rd(t, D + 4, 4), 0x55667788n);
  t = one('ldtrsb x2, [x1]', { 1: BigInt(D + 1) });
  assert.equal(X(t, 2), u64(sext(pv(1, 1), 8)));
});

test('exclusives: LDXR/STXR success, failure without a reservation, B/H/W/X sizes', () => {
  const a = BigInt(D + 0x400);
  let t = setup(['ldxr x2, [x1]', 'stxr w3, x4, [x1]', 'stxr w3, x4, [x1]'], { 1: a, 3: 77n, 4: 0x1234n });
  t.step(2);
  assert.equal(X(t, 2), pv(0x400, 8));
  assert.equal(X(t, 3), 0n, 'STXR succeeds');
  assert.equal(rd(t, D + 0x400, 8), 0x1234n);
  t.cpu.setX(4, 0x9999, 0);
  t.step(1);
  assert.equal(X(t, 3), 1n, 'monitor cleared by the first STXR');
  assert.equal(rd(t, D + 0x400, 8), 0x1234n);
  t = setup(['ldxrb w2, [x1]', 'stxrb w3, w4, [x1]'], { 1: a + 3n, 4: 0x1ffn });
  t.step(2);
  assert.equal(X(t, 2), pv(0x403, 1));
  assert.equal(X(t, 3), 0n);
  assert.equal(rd(t, D + 0x402, 3), (pv(0x404, 1) << 16n) | (0xffn << 8n) | pv(0x402, 1));
  t = setup(['ldaxrh w2, [x1]', 'stlxrh w3, w4, [x1]'], { 1: a + 2n, 4: 0xabcdefn });
  t.step(2);
  assert.equal(X(t, 2), pv(0x402, 2));
  assert.equal(rd(t, D + 0x402, 2), 0xcdefn);
  // Exception entry clears the monitor: an UNDEF word (0) after LDXR, STXR at the vector.
  t = setup(['ldxr w2, [x1]'], { 1: a + 4n, 4: 1n });
  t.mem.dv.setUint32(4, 0, true);
  t.mem.dv.setUint32(VBAR - RAM_BASE + 0x200, enc('stxr w3, w4, [x1]'), true);
  t.step(3);
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(RAM_BASE + 4));
  assert.equal(X(t, 3), 1n, 'exception entry clears the monitor');
  assert.equal(rd(t, D + 0x404, 4), pv(0x404, 4));
  t = setup(['ldxr w2, [x1]', 'clrex', 'stxr w3, w4, [x1]'], { 1: a + 4n, 4: 1n });
  t.step(3);
  assert.equal(pc(t), BigInt(RAM_BASE + 12));
  assert.equal(X(t, 3), 1n, 'CLREX clears the monitor');
  // A reservation for another address fails.
  t = setup(['ldxr w2, [x1]', 'stxr w3, w4, [x5]'], { 1: a + 4n, 5: a + 8n, 4: 1n });
  t.step(2);
  assert.equal(X(t, 3), 1n);
});

test('exclusives: a store by another CPU sharing memory makes STXR fail', () => {
  const a = BigInt(D + 0x400);
  const t = setup(['ldxr x2, [x1]', 'stxr w3, x4, [x1]'], { 1: a, 4: 0x42n });
  // Second CPU: its program at RAM_BASE + 0x100 stores to the same address.
  t.mem.dv.setUint32(0x100, enc('str x0, [x1, #16]'), true);
  const other = new Arm64Cpu(1, t.mem, t.cpu.code, { hvc: () => false, smc: () => false });
  other.setXBig(0, 0x5555n);
  other.setXBig(1, a - 16n);
  other.pcLo = RAM_BASE + 0x100;
  t.step(1);
  other.run(1);
  assert.equal(rd(t, D + 0x400, 8), 0x5555n);
  t.step(1);
  assert.equal(X(t, 3), 1n, 'STXR fails');
  assert.equal(rd(t, D + 0x400, 8), 0x5555n);
});

test('exclusive pairs: LDXP/STXP (X) and LDAXP/STLXP (W)', () => {
  const a = BigInt(D + 0x500);
  let t = setup(['ldxp x2, x5, [x1]', 'stxp w3, x4, x6, [x1]'], { 1: a, 4: 0x11n, 6: 0x22n });
  t.step(2);
  assert.deepEqual([X(t, 2), X(t, 5), X(t, 3)], [pv(0x500, 8), pv(0x508, 8), 0n]);
  assert.deepEqual([rd(t, D + 0x500, 8), rd(t, D + 0x508, 8)], [0x11n, 0x22n]);
  t = setup(['ldaxp w2, w5, [x1]', 'stlxp w3, w4, w6, [x1]'], { 1: a + 8n, 4: 0x11n, 6: 0x22n });
  t.step(2);
  assert.deepEqual([X(t, 2), X(t, 5), X(t, 3)], [pv(0x508, 4), pv(0x50c, 4), 0n]);
  assert.deepEqual([rd(t, D + 0x508, 4), rd(t, D + 0x50c, 4)], [0x11n, 0x22n]);
  // 16-byte alignment for the X pair
  t = one('ldxp x2, x5, [x1]', { 1: a + 8n });
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | 0x21n));
  assert.equal(t.cpu.sys.FAR_EL1, a + 8n);
});

test('LDAR/STLR and exclusives need natural alignment: alignment fault with FAR and WnR', () => {
  let t = one('ldar x2, [x1]', { 1: BigInt(D + 4) });
  assert.equal(pc(t), SYNC_CUR_SPX);
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | 0x21n));
  assert.equal(t.cpu.sys.FAR_EL1, BigInt(D + 4));
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(RAM_BASE));
  t = one('stlr w4, [x1]', { 1: BigInt(D + 2) });
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | (1n << 6n) | 0x21n));
  t = one('stxr w3, x4, [x1]', { 1: BigInt(D + 12) });
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | (1n << 6n) | 0x21n));
  t = one('ldarb w2, [x1]', { 1: BigInt(D + 3) });
  assert.equal(X(t, 2), pv(3, 1));
  t = one('stlrh w4, [x1]', { 1: BigInt(D + 2), 4: 0xbeefn });
  assert.equal(rd(t, D + 2, 2), 0xbeefn);
  t = one('ldar x2, [x1]', { 1: BigInt(D + 8) });
  assert.equal(X(t, 2), pv(8, 8));
  // Plain loads may be unaligned (SCTLR_EL1.A = 0).
  t = one('ldr x0, [x1, #8]', { 1: BigInt(D + 3) });
  assert.equal(X(t, 0), pv(11, 8));
});

test('SCTLR_EL1.A = 1: every unaligned access faults', () => {
  let t = setup(['ldr x0, [x1, #8]']);
  t.cpu.setXBig(1, BigInt(D + 4));
  t.cpu.sys.SCTLR_EL1 |= 1n << 1n;
  t.cpu.mmu.onRegsChanged();
  t.step(1);
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | 0x21n));
  assert.equal(t.cpu.sys.FAR_EL1, BigInt(D + 12));
  t = setup(['ldr w2, [x1, #4]', 'strh w0, [x1, #28]']);
  t.cpu.sys.SCTLR_EL1 |= 1n << 1n;
  t.cpu.mmu.onRegsChanged();
  t.cpu.setXBig(1, BigInt(D));
  t.step(2);
  assert.equal(X(t, 2), pv(4, 4));
  assert.equal(pc(t), BigInt(RAM_BASE + 8));
  t.cpu.setXBig(1, BigInt(D + 1));
  t.cpu.setPc(BigInt(RAM_BASE + 4));
  t.step(1);
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | (1n << 6n) | 0x21n));
});

test('SP alignment check (SCTLR_EL1.SA) raises EC 0x26 for SP-based accesses only', () => {
  let t = setup(['ldr x2, [sp]'], { 1: BigInt(D + 8) });
  t.cpu.setSpEl(1, BigInt(D + 8));
  t.cpu.sys.SCTLR_EL1 |= 1n << 3n;
  t.cpu.mmu.onRegsChanged();
  t.step(1);
  assert.equal(pc(t), SYNC_CUR_SPX);
  assert.equal(hex(esr(t)), hex((0x26n << 26n) | (1n << 25n)));
  // With SA = 0 the access works.
  t = setup(['ldr x2, [sp, #8]']);
  t.cpu.setSpEl(1, BigInt(D + 8));
  t.step(1);
  assert.equal(X(t, 2), pv(16, 8));
  // With SA = 1 and an aligned SP an unaligned offset is fine.
  t = setup(['ldr x2, [sp, #8]']);
  t.cpu.setSpEl(1, BigInt(D));
  t.cpu.sys.SCTLR_EL1 |= 1n << 3n;
  t.cpu.mmu.onRegsChanged();
  t.step(1);
  assert.equal(X(t, 2), pv(8, 8));
});

test('unaligned access across a page boundary', () => {
  const t = setup(['ldr x0, [x1, #8]', 'str x0, [x1, #16]'], { 1: BigInt(D + 0xffc - 8) });
  t.step(1);
  assert.equal(X(t, 0), pv(0xffc, 8));
  t.cpu.setXBig(0, 0x0102030405060708n);
  t.step(1);
  assert.equal(rd(t, D + 0x1004, 8), 0x0102030405060708n);
});

test('MMIO: 1/2/4-byte accesses go to the device, 8-byte ones as two 4-byte accesses (low first)', () => {
  const log: string[] = [];
  const t = setup(['ldr x0, [x1]', 'str x2, [x1, #8]', 'ldrb w3, [x1, #2]', 'strh w2, [x1, #4]'], {
    1: 0x0900_0010n,
    2: 0xaabbccdd11223344n,
  });
  t.mem.addMmio(0x0900_0000, 0x1000, 'fake', {
    read: (off, size) => {
      log.push(`r${size}@${off}`);
      return off === 0x10 ? 0x89abcdef : off === 0x14 ? 0x01234567 : 0x5a;
    },
    write: (off, size, v) => {
      log.push(`w${size}@${off}=${v.toString(16)}`);
    },
  });
  t.step(4);
  assert.equal(X(t, 0), 0x0123456789abcdefn);
  assert.equal(X(t, 3), 0x5an);
  assert.deepEqual(log, ['r4@16', 'r4@20', 'w4@24=11223344', 'w4@28=aabbccdd', 'r1@18', 'w2@20=3344']);
});

test('an address outside RAM and MMIO is a synchronous external abort', () => {
  let t = one('ldr x0, [x1]', { 1: 0x1000n });
  assert.equal(pc(t), SYNC_CUR_SPX);
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | 0x10n));
  assert.equal(t.cpu.sys.FAR_EL1, 0x1000n);
  t = one('strb w0, [x1, #30]', { 1: 0x2000n });
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | (1n << 6n) | 0x10n));
  assert.equal(t.cpu.sys.FAR_EL1, 0x201en);
  // Beyond the 40-bit physical address range with the MMU off: address size fault, level 0.
  t = one('ldr x0, [x1]', { 1: 1n << 41n });
  assert.equal(hex(esr(t)), hex((0x25n << 26n) | (1n << 25n) | 0x00n));
});

test('a store into decoded code is seen by the executor (self-modifying code)', () => {
  const t = setup(['movz x0, #1', 'add x5, x5, x0', 'str w2, [x3]', 'sub x4, x4, #1', 'cbnz x4, .-16'], {
    2: BigInt(enc('add x0, x5, #100')),
    3: BigInt(RAM_BASE),
    4: 2n,
  });
  t.step(10);
  // pass 1: x0 = 1, x5 = 1; pass 2 runs the new first instruction: x0 = 101, x5 = 102
  assert.equal(X(t, 0), 101n);
  assert.equal(X(t, 5), 102n);
  assert.equal(pc(t), BigInt(RAM_BASE + 20));
});

// ---- SIMD & FP ----

const V = (t: TestCpu, n: number): bigint => {
  let v = 0n;
  for (let k = 15; k >= 0; k--) v = (v << 8n) | BigInt(t.cpu.vU8[n * 16 + k]);
  return v;
};
/** Fill V0..V31 with a recognisable pattern (to see zeroing and lane preservation). */
function fillV(t: TestCpu): void {
  for (let i = 0; i < 512; i++) t.cpu.vU8[i] = (i * 29 + 7) & 0xff;
}
const vInit = (n: number): bigint => {
  let v = 0n;
  for (let k = 15; k >= 0; k--) v = (v << 8n) | BigInt(((n * 16 + k) * 29 + 7) & 0xff);
  return v;
};
function oneV(insn: string, regs: Record<number, bigint>): TestCpu {
  const t = setup([insn], regs);
  fillV(t);
  t.step(1);
  assert.notEqual(pc(t), SYNC_CUR_SPX, `${insn} must not fault`);
  return t;
}
/** Element e of `bits` bits from a register value. */
const el = (v: bigint, bits: number, e: number): bigint =>
  (v >> BigInt(e * bits)) & ((1n << BigInt(bits)) - 1n);
/** Build a register value from elements. */
function mk(elems: bigint[], bits: number): bigint {
  let v = 0n;
  elems.forEach((x, i) => (v |= x << BigInt(i * bits)));
  return v;
}
/** Memory pattern as elements of `bytes` bytes from data offset `off`. */
const pe = (off: number, bytes: number, i: number): bigint => pv(off + i * bytes, bytes);

test('SIMD&FP scalar loads zero the rest of the register; stores write the low bytes', () => {
  const b = BigInt(D + 0x600);
  const t = setup(
    [
      'ldr b0, [x1]',
      'ldr h1, [x1, #2]',
      'ldr s2, [x1, #4]',
      'ldr d3, [x1, #8]',
      'ldr q4, [x1, #16]',
      'str q4, [x1, #32]',
      'str d3, [x1, #48]',
      'str s2, [x1, #56]',
      'str h1, [x1, #60]',
      'str b0, [x1, #62]',
    ],
    { 1: b },
  );
  fillV(t);
  t.step(10);
  assert.equal(V(t, 0), pv(0x600, 1));
  assert.equal(V(t, 1), pv(0x602, 2));
  assert.equal(V(t, 2), pv(0x604, 4));
  assert.equal(V(t, 3), pv(0x608, 8));
  assert.equal(V(t, 4), pv(0x610, 16));
  assert.equal(rd(t, D + 0x620, 16), pv(0x610, 16));
  assert.equal(rd(t, D + 0x630, 8), pv(0x608, 8));
  assert.equal(rd(t, D + 0x638, 4), pv(0x604, 4));
  assert.equal(rd(t, D + 0x63c, 2), pv(0x602, 2));
  assert.equal(rd(t, D + 0x63e, 1), pv(0x600, 1));
  assert.equal(rd(t, D + 0x63f, 1), pv(0x63f, 1));
});

test('SIMD&FP addressing modes: unscaled, pre/post-index, register offset, literal', () => {
  const b = BigInt(D + 0x700);
  let t = oneV('ldur q5, [x1, #1]', { 1: b });
  assert.equal(V(t, 5), pv(0x701, 16));
  t = oneV('ldr q6, [x1, #16]!', { 1: b });
  assert.deepEqual([V(t, 6), X(t, 1)], [pv(0x710, 16), b + 16n]);
  t = oneV('ldr d7, [x1], #8', { 1: b });
  assert.deepEqual([V(t, 7), X(t, 1)], [pv(0x700, 8), b + 8n]);
  t = oneV('ldr q8, [x1, x2, lsl #4]', { 1: b, 2: 3n });
  assert.equal(V(t, 8), pv(0x730, 16));
  t = oneV('ldr s9, [x1, w2, sxtw #2]', { 1: b, 2: 0xfffffffen });
  assert.equal(V(t, 9), pv(0x6f8, 4));
  t = setup(['ldr q10, .+16', 'ldr d11, .+12', 'ldr s12, .+8']);
  for (let i = 0; i < 32; i++) t.mem.u8[16 + i] = 0xc0 + i;
  fillV(t);
  t.step(3);
  const lit = (off: number, n: number): bigint => {
    let v = 0n;
    for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(0xc0 + off + k);
    return v;
  };
  assert.equal(V(t, 10), lit(0, 16));
  assert.equal(V(t, 11), lit(0, 8));
  assert.equal(V(t, 12), lit(0, 4));
});

test('SIMD&FP pairs: LDP/STP/LDNP of S, D, Q with writeback', () => {
  const b = BigInt(D + 0x800);
  let t = oneV('ldp q0, q1, [x1]', { 1: b });
  assert.deepEqual([V(t, 0), V(t, 1)], [pv(0x800, 16), pv(0x810, 16)]);
  t = oneV('stp d2, d3, [x1, #16]!', { 1: b });
  assert.equal(X(t, 1), b + 16n);
  assert.equal(rd(t, D + 0x810, 8), vInit(2) & M64);
  assert.equal(rd(t, D + 0x818, 8), vInit(3) & M64);
  t = oneV('ldp s4, s5, [x1], #8', { 1: b });
  assert.deepEqual([V(t, 4), V(t, 5), X(t, 1)], [pv(0x800, 4), pv(0x804, 4), b + 8n]);
  t = oneV('ldnp q6, q7, [x1]', { 1: b });
  assert.deepEqual([V(t, 6), V(t, 7)], [pv(0x800, 16), pv(0x810, 16)]);
});

test('LD1/ST1 multiple structures, 1-4 registers, register wrap-around, post-index', () => {
  const b = BigInt(D + 0x900);
  let t = oneV('ld1 {v0.16b}, [x1]', { 1: b });
  assert.equal(V(t, 0), pv(0x900, 16));
  t = oneV('ld1 {v1.8b, v2.8b}, [x1]', { 1: b });
  assert.deepEqual([V(t, 1), V(t, 2)], [pv(0x900, 8), pv(0x908, 8)]);
  t = oneV('ld1 {v3.4s, v4.4s, v5.4s}, [x1], #48', { 1: b });
  assert.deepEqual(
    [V(t, 3), V(t, 4), V(t, 5), X(t, 1)],
    [pv(0x900, 16), pv(0x910, 16), pv(0x920, 16), b + 48n],
  );
  t = oneV('ld1 {v30.2d, v31.2d, v0.2d, v1.2d}, [x1], x2', { 1: b, 2: 0x1234n });
  assert.deepEqual(
    [V(t, 30), V(t, 31), V(t, 0), V(t, 1), X(t, 1)],
    [pv(0x900, 16), pv(0x910, 16), pv(0x920, 16), pv(0x930, 16), b + 0x1234n],
  );
  t = oneV('st1 {v0.16b, v1.16b}, [x1]', { 1: b });
  assert.deepEqual([rd(t, D + 0x900, 16), rd(t, D + 0x910, 16)], [vInit(0), vInit(1)]);
});

test('LD2/LD3/LD4 de-interleave, ST2/ST3/ST4 interleave', () => {
  const b = BigInt(D + 0xa00);
  let t = oneV('ld2 {v0.8h, v1.8h}, [x1]', { 1: b });
  for (let s = 0; s < 2; s++) {
    const want = mk(
      [0, 1, 2, 3, 4, 5, 6, 7].map((e) => pe(0xa00, 2, 2 * e + s)),
      16,
    );
    assert.equal(hex(V(t, s)), hex(want), `ld2 v${s}`);
  }
  t = oneV('ld3 {v0.4s, v1.4s, v2.4s}, [x1]', { 1: b });
  for (let s = 0; s < 3; s++) {
    assert.equal(
      hex(V(t, s)),
      hex(
        mk(
          [0, 1, 2, 3].map((e) => pe(0xa00, 4, 3 * e + s)),
          32,
        ),
      ),
      `ld3 v${s}`,
    );
  }
  t = oneV('ld4 {v0.8b, v1.8b, v2.8b, v3.8b}, [x1], #32', { 1: b });
  for (let s = 0; s < 4; s++) {
    const want = mk(
      [0, 1, 2, 3, 4, 5, 6, 7].map((e) => pe(0xa00, 1, 4 * e + s)),
      8,
    );
    assert.equal(hex(V(t, s)), hex(want), `ld4 v${s} (upper half zeroed)`);
  }
  assert.equal(X(t, 1), b + 32n);
  t = oneV('st2 {v0.4s, v1.4s}, [x1], #32', { 1: b });
  for (let i = 0; i < 8; i++) assert.equal(rd(t, D + 0xa00 + 4 * i, 4), el(vInit(i & 1), 32, i >> 1));
  assert.equal(X(t, 1), b + 32n);
  t = oneV('st3 {v0.8b, v1.8b, v2.8b}, [x1]', { 1: b });
  for (let i = 0; i < 24; i++) assert.equal(rd(t, D + 0xa00 + i, 1), el(vInit(i % 3), 8, Math.floor(i / 3)));
  assert.equal(rd(t, D + 0xa18, 1), pv(0xa18, 1));
  t = oneV('st4 {v0.2d, v1.2d, v2.2d, v3.2d}, [x1]', { 1: b });
  for (let i = 0; i < 8; i++) assert.equal(rd(t, D + 0xa00 + 8 * i, 8), el(vInit(i & 3), 64, i >> 2));
});

test('single-structure lane loads keep other lanes; lane stores; post-index', () => {
  const b = BigInt(D + 0xb00);
  const setLane = (v: bigint, bits: number, e: number, x: bigint): bigint => {
    const m = ((1n << BigInt(bits)) - 1n) << BigInt(e * bits);
    return (v & ~m) | (x << BigInt(e * bits));
  };
  let t = oneV('ld1 {v0.s}[3], [x1]', { 1: b });
  assert.equal(V(t, 0), setLane(vInit(0), 32, 3, pv(0xb00, 4)));
  t = oneV('ld2 {v0.h, v1.h}[5], [x1], #4', { 1: b });
  assert.equal(V(t, 0), setLane(vInit(0), 16, 5, pv(0xb00, 2)));
  assert.equal(V(t, 1), setLane(vInit(1), 16, 5, pv(0xb02, 2)));
  assert.equal(X(t, 1), b + 4n);
  t = oneV('ld3 {v0.b, v1.b, v2.b}[15], [x1], x2', { 1: b, 2: M64 }); // post-index by -1
  for (let s = 0; s < 3; s++) assert.equal(V(t, s), setLane(vInit(s), 8, 15, pv(0xb00 + s, 1)));
  assert.equal(X(t, 1), b - 1n);
  t = oneV('ld4 {v0.d, v1.d, v2.d, v3.d}[1], [x1]', { 1: b });
  for (let s = 0; s < 4; s++) assert.equal(V(t, s), setLane(vInit(s), 64, 1, pv(0xb00 + 8 * s, 8)));
  t = oneV('st1 {v0.d}[1], [x1]', { 1: b });
  assert.equal(rd(t, D + 0xb00, 8), el(vInit(0), 64, 1));
  assert.equal(rd(t, D + 0xb08, 1), pv(0xb08, 1));
  t = oneV('st3 {v0.s, v1.s, v2.s}[2], [x1], #12', { 1: b });
  for (let s = 0; s < 3; s++) assert.equal(rd(t, D + 0xb00 + 4 * s, 4), el(vInit(s), 32, 2));
  assert.equal(X(t, 1), b + 12n);
});

test('LD1R-LD4R replicate to every lane (64-bit arrangements zero the upper half)', () => {
  const b = BigInt(D + 0xc00);
  const rep = (x: bigint, bits: number, lanes: number): bigint => mk(Array(lanes).fill(x), bits);
  let t = oneV('ld1r {v0.4s}, [x1]', { 1: b });
  assert.equal(V(t, 0), rep(pv(0xc00, 4), 32, 4));
  t = oneV('ld2r {v0.8b, v1.8b}, [x1], #2', { 1: b });
  assert.equal(V(t, 0), rep(pv(0xc00, 1), 8, 8));
  assert.equal(V(t, 1), rep(pv(0xc01, 1), 8, 8));
  assert.equal(X(t, 1), b + 2n);
  t = oneV('ld3r {v0.8h, v1.8h, v2.8h}, [x1]', { 1: b });
  for (let s = 0; s < 3; s++) assert.equal(V(t, s), rep(pv(0xc00 + 2 * s, 2), 16, 8));
  t = oneV('ld4r {v0.2d, v1.2d, v2.2d, v3.2d}, [x1], #32', { 1: b });
  for (let s = 0; s < 4; s++) assert.equal(V(t, s), rep(pv(0xc00 + 8 * s, 8), 64, 2));
  assert.equal(X(t, 1), b + 32n);
  t = oneV('ld4r {v0.1d, v1.1d, v2.1d, v3.1d}, [x1]', { 1: b });
  for (let s = 0; s < 4; s++) assert.equal(V(t, s), pv(0xc00 + 8 * s, 8));
});

test('SIMD&FP loads trap (EC 0x07) when CPACR_EL1.FPEN disables FP at EL1', () => {
  const t = setup(['ld1 {v0.16b}, [x1]'], { 1: BigInt(D) });
  t.cpu.fpEn1 = false;
  t.step(1);
  assert.equal(pc(t), SYNC_CUR_SPX);
  assert.equal(hex(esr(t)), hex((0x07n << 26n) | (1n << 25n)));
});

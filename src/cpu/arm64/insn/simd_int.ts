// AdvSIMD integer data processing (ARMv8.0-A): vector and scalar three-same, three-different, two-register
// misc, across lanes, shift by immediate, by element, copy (DUP/INS/UMOV/SMOV), modified immediate,
// permutes (ZIP/UZP/TRN), EXT and TBL/TBX. See decode.ts for the pattern format.
//
// Hot instructions (logic, MOVI, DUP, INS/UMOV, ADD/SUB, compares, min/max, EXT, TBL, permutes, plain
// shifts, across-lane min/max/add) work on the typed-array views of the register file with int32
// arithmetic. The rarer ones (saturating, rounding, doubling, 64-bit lane multiply-like operations) go
// through a generic element engine that computes in BigInt: exact for every element size.
//
// Register Vn occupies bytes 16n..16n+15 of cpu.vbuf; 64-bit (Q = 0) vector results zero bytes 8..15 and
// scalar results zero everything above the element.

import type { Pattern } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import * as i64 from '../int64.js';

export const RD = (i: number): number => i & 31;
export const RN = (i: number): number => (i >>> 5) & 31;
export const RM = (i: number): number => (i >>> 16) & 31;
export const QF = (i: number): number => (i >>> 30) & 1;
export const SZ = (i: number): number => (i >>> 22) & 3;
export const FPSR_QC = 1 << 27;

/** Register slots for XZR reads / writes (as cpu.ts's rz/wz; kept local to avoid an import cycle). */
const rz = (n: number): number => (n === 31 ? 32 : n);
const wz = (n: number): number => (n === 31 ? 33 : n);

const SCR = 32; // scratch "register" index (bytes 512..527)

export function zeroHi(c: Arm64Cpu, r: number): void {
  c.vU32[(r << 2) + 2] = 0;
  c.vU32[(r << 2) + 3] = 0;
}
/** Zero bytes [from, 16) of Vr. */
function zeroFrom(c: Arm64Cpu, r: number, from: number): void {
  c.vU8.fill(0, (r << 4) + from, (r << 4) + 16);
}

// ---------------------------------------------------------------------------------------------------
// BigInt element engine
// ---------------------------------------------------------------------------------------------------

function gE(c: Arm64Cpu, r: number, e: number, i: number): bigint {
  if (e === 8) return BigInt(c.vU8[(r << 4) + i]);
  if (e === 16) return BigInt(c.vU16[(r << 3) + i]);
  if (e === 32) return BigInt(c.vU32[(r << 2) + i]);
  return c.vU64[(r << 1) + i];
}
function sE(c: Arm64Cpu, r: number, e: number, i: number, v: bigint): void {
  if (e === 8) c.vU8[(r << 4) + i] = Number(v & 0xffn);
  else if (e === 16) c.vU16[(r << 3) + i] = Number(v & 0xffffn);
  else if (e === 32) c.vU32[(r << 2) + i] = Number(v & 0xffffffffn);
  else c.vU64[(r << 1) + i] = BigInt.asUintN(64, v);
}
const SX = (v: bigint, e: number): bigint => BigInt.asIntN(e, v);
const ONES = (e: number): bigint => (1n << BigInt(e)) - 1n;

function satS(c: Arm64Cpu, v: bigint, e: number): bigint {
  const max = (1n << BigInt(e - 1)) - 1n;
  if (v > max) {
    c.fpsr |= FPSR_QC;
    return max;
  }
  if (v < -max - 1n) {
    c.fpsr |= FPSR_QC;
    return -max - 1n;
  }
  return v;
}
function satU(c: Arm64Cpu, v: bigint, e: number): bigint {
  if (v < 0n) {
    c.fpsr |= FPSR_QC;
    return 0n;
  }
  const max = ONES(e);
  if (v > max) {
    c.fpsr |= FPSR_QC;
    return max;
  }
  return v;
}
const bAbs = (v: bigint): bigint => (v < 0n ? -v : v);
/** Arithmetic shift of a mathematical integer: left for sh >= 0, right (floor) for sh < 0. */
const bShift = (v: bigint, sh: number): bigint => (sh >= 0 ? v << BigInt(sh) : v >> BigInt(-sh));

/** The register-shift family (SSHL..UQRSHL): a shifted by SInt(b<7:0>). */
function regShift(
  c: Arm64Cpu,
  a: bigint,
  b: bigint,
  e: number,
  uns: boolean,
  round: boolean,
  sat: boolean,
): bigint {
  let sh = Number(b & 0xffn);
  if (sh >= 128) sh -= 256;
  let v = uns ? a : SX(a, e);
  if (round && sh < 0) v += 1n << BigInt(-sh - 1);
  v = bShift(v, sh);
  if (sat) return uns ? satU(c, v, e) : satS(c, v, e);
  return v;
}

function polyMul8(a: number, b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) if ((b >>> i) & 1) r ^= a << i;
  return r;
}

type Op3 = (c: Arm64Cpu, a: bigint, b: bigint, d: bigint, e: number) => bigint;
type Op1 = (c: Arm64Cpu, a: bigint, d: bigint, e: number) => bigint;
const tmp: bigint[] = new Array<bigint>(16).fill(0n);

/** Elementwise three-operand op over `lanes` lanes; scalar: one lane and zero the rest. */
function ew3(c: Arm64Cpu, d: number, n: number, m: number, e: number, lanes: number, f: Op3): void {
  for (let i = 0; i < lanes; i++) sE(c, d, e, i, f(c, gE(c, n, e, i), gE(c, m, e, i), gE(c, d, e, i), e));
}
function ew1(c: Arm64Cpu, d: number, n: number, e: number, lanes: number, f: Op1): void {
  for (let i = 0; i < lanes; i++) sE(c, d, e, i, f(c, gE(c, n, e, i), gE(c, d, e, i), e));
}
function finish(c: Arm64Cpu, d: number, bytes: number): void {
  if (bytes < 16) zeroFrom(c, d, bytes);
}

// ---------------------------------------------------------------------------------------------------
// Number fast paths (element size <= 32, no products)
// ---------------------------------------------------------------------------------------------------

type NOp = (a: number, b: number, d: number, c: Arm64Cpu) => number;
function arrFor(c: Arm64Cpu, e: number): Uint8Array | Uint16Array | Uint32Array {
  return e === 8 ? c.vU8 : e === 16 ? c.vU16 : c.vU32;
}
const LOG = (e: number): number => (e === 8 ? 4 : e === 16 ? 3 : e === 32 ? 2 : 1);
/** Sign-extend an e-bit unsigned number. */
const sxn = (v: number, e: number): number => (v << (32 - e)) >> (32 - e);
/** Saturate an exact (double) value to signed / unsigned e bits (e <= 32), setting FPSR.QC. */
function satSn(c: Arm64Cpu, v: number, e: number): number {
  const max = 2 ** (e - 1) - 1;
  if (v > max) {
    c.fpsr |= FPSR_QC;
    return max;
  }
  if (v < -max - 1) {
    c.fpsr |= FPSR_QC;
    return -max - 1;
  }
  return v;
}
function satUn(c: Arm64Cpu, v: number, e: number): number {
  if (v < 0) {
    c.fpsr |= FPSR_QC;
    return 0;
  }
  const max = 2 ** e - 1;
  if (v > max) {
    c.fpsr |= FPSR_QC;
    return max;
  }
  return v;
}

const patterns: Pattern[] = [];
const P = (bits: string, name: string, handler: (c: Arm64Cpu, i: number) => void): void => {
  if (bits.includes('hhhh')) {
    // shift-by-immediate: immh == 0000 belongs to another group (modified immediate / unallocated)
    for (const h of ['1hhh', '01hh', '001h', '0001'])
      patterns.push({ bits: bits.replace('hhhh', h), name, handler });
  } else patterns.push({ bits, name, handler });
};
const undef = (c: Arm64Cpu, i: number): never => c.undefinedInstruction(i);

// ---------------------------------------------------------------------------------------------------
// Three same
// ---------------------------------------------------------------------------------------------------

interface Same {
  name: string;
  /** sizes allowed for the vector form (bit mask over size 0..3); size 3 additionally needs Q = 1. */
  vsz: number;
  /** sizes allowed for the scalar form (0 = no scalar form). */
  ssz: number;
  op: Op3;
  /** Optional number fast path for element sizes <= 32 (vector only). Arguments are unsigned lane values. */
  fast?: (e: number) => NOp;
  pairwise?: boolean;
}
const ALL = 0b1111;
const NO64 = 0b0111;
const HS = 0b0110;
const D = 0b1000;

const cmpRes = (t: boolean, e: number): bigint => (t ? ONES(e) : 0n);
/** SQDMULH / SQRDMULH of one 16- or 32-bit lane without BigInt. */
function qdmulh(c: Arm64Cpu, a: number, b: number, e: number, round: boolean): number {
  const x = sxn(a, e);
  const y = sxn(b, e);
  if (e === 16) {
    const p = 2 * x * y + (round ? 32768 : 0);
    return satSn(c, Math.floor(p / 65536), 16);
  }
  if (x === -0x80000000 && y === -0x80000000) {
    c.fpsr |= FPSR_QC;
    return 0x7fffffff;
  }
  // (2*x*y [+ 2^31]) >> 32 == (x*y [+ 2^30]) >> 31, product as a 64-bit (lo, hi) pair
  let lo = i64.smul32(x, y);
  let hi = i64.rhi;
  if (round) {
    lo = i64.add64(lo, hi, 0x40000000, 0);
    hi = i64.rhi;
  }
  return (hi << 1) | (lo >>> 31);
}
function mkSame(): Map<number, Same> {
  const t = new Map<number, Same>();
  const add = (u: number, opc: number, s: Same): void => void t.set((u << 5) | opc, s);
  add(0, 0b00000, {
    name: 'SHADD',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, _d, e) => (SX(a, e) + SX(b, e)) >> 1n,
    fast: (e) => (a, b) => Math.floor((sxn(a, e) + sxn(b, e)) / 2),
  });
  add(1, 0b00000, {
    name: 'UHADD',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b) => (a + b) >> 1n,
    fast: () => (a, b) => Math.floor((a + b) / 2),
  });
  add(0, 0b00010, {
    name: 'SRHADD',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, _d, e) => (SX(a, e) + SX(b, e) + 1n) >> 1n,
    fast: (e) => (a, b) => Math.floor((sxn(a, e) + sxn(b, e) + 1) / 2),
  });
  add(1, 0b00010, {
    name: 'URHADD',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b) => (a + b + 1n) >> 1n,
    fast: () => (a, b) => Math.floor((a + b + 1) / 2),
  });
  add(0, 0b00100, {
    name: 'SHSUB',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, _d, e) => (SX(a, e) - SX(b, e)) >> 1n,
    fast: (e) => (a, b) => Math.floor((sxn(a, e) - sxn(b, e)) / 2),
  });
  add(1, 0b00100, {
    name: 'UHSUB',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b) => (a - b) >> 1n,
    fast: () => (a, b) => Math.floor((a - b) / 2),
  });
  add(0, 0b00001, {
    name: 'SQADD',
    vsz: ALL,
    ssz: ALL,
    op: (c, a, b, _d, e) => satS(c, SX(a, e) + SX(b, e), e),
    fast: (e) => (a, b, _d, c) => satSn(c, sxn(a, e) + sxn(b, e), e),
  });
  add(1, 0b00001, {
    name: 'UQADD',
    vsz: ALL,
    ssz: ALL,
    op: (c, a, b, _d, e) => satU(c, a + b, e),
    fast: (e) => (a, b, _d, c) => satUn(c, a + b, e),
  });
  add(0, 0b00101, {
    name: 'SQSUB',
    vsz: ALL,
    ssz: ALL,
    op: (c, a, b, _d, e) => satS(c, SX(a, e) - SX(b, e), e),
    fast: (e) => (a, b, _d, c) => satSn(c, sxn(a, e) - sxn(b, e), e),
  });
  add(1, 0b00101, {
    name: 'UQSUB',
    vsz: ALL,
    ssz: ALL,
    op: (c, a, b, _d, e) => satU(c, a - b, e),
    fast: (e) => (a, b, _d, c) => satUn(c, a - b, e),
  });
  add(0, 0b00110, {
    name: 'CMGT',
    vsz: ALL,
    ssz: D,
    op: (c, a, b, _d, e) => cmpRes(SX(a, e) > SX(b, e), e),
    fast: (e) => (a, b) => (sxn(a, e) > sxn(b, e) ? -1 : 0),
  });
  add(0, 0b00111, {
    name: 'CMGE',
    vsz: ALL,
    ssz: D,
    op: (c, a, b, _d, e) => cmpRes(SX(a, e) >= SX(b, e), e),
    fast: (e) => (a, b) => (sxn(a, e) >= sxn(b, e) ? -1 : 0),
  });
  add(1, 0b00110, {
    name: 'CMHI',
    vsz: ALL,
    ssz: D,
    op: (c, a, b, _d, e) => cmpRes(a > b, e),
    fast: () => (a, b) => (a > b ? -1 : 0),
  });
  add(1, 0b00111, {
    name: 'CMHS',
    vsz: ALL,
    ssz: D,
    op: (c, a, b, _d, e) => cmpRes(a >= b, e),
    fast: () => (a, b) => (a >= b ? -1 : 0),
  });
  const sh =
    (uns: boolean, round: boolean, sat: boolean): Op3 =>
    (c, a, b, _d, e) =>
      regShift(c, a, b, e, uns, round, sat);
  add(0, 0b01000, { name: 'SSHL', vsz: ALL, ssz: D, op: sh(false, false, false) });
  add(1, 0b01000, { name: 'USHL', vsz: ALL, ssz: D, op: sh(true, false, false) });
  add(0, 0b01001, { name: 'SQSHL', vsz: ALL, ssz: ALL, op: sh(false, false, true) });
  add(1, 0b01001, { name: 'UQSHL', vsz: ALL, ssz: ALL, op: sh(true, false, true) });
  add(0, 0b01010, { name: 'SRSHL', vsz: ALL, ssz: D, op: sh(false, true, false) });
  add(1, 0b01010, { name: 'URSHL', vsz: ALL, ssz: D, op: sh(true, true, false) });
  add(0, 0b01011, { name: 'SQRSHL', vsz: ALL, ssz: ALL, op: sh(false, true, true) });
  add(1, 0b01011, { name: 'UQRSHL', vsz: ALL, ssz: ALL, op: sh(true, true, true) });
  const smax: Op3 = (c, a, b, _d, e) => (SX(a, e) >= SX(b, e) ? a : b);
  const smin: Op3 = (c, a, b, _d, e) => (SX(a, e) <= SX(b, e) ? a : b);
  const umax: Op3 = (c, a, b) => (a >= b ? a : b);
  const umin: Op3 = (c, a, b) => (a <= b ? a : b);
  const fsmax =
    (e: number): NOp =>
    (a, b) =>
      sxn(a, e) >= sxn(b, e) ? a : b;
  const fsmin =
    (e: number): NOp =>
    (a, b) =>
      sxn(a, e) <= sxn(b, e) ? a : b;
  const fumax = (): NOp => (a, b) => (a >= b ? a : b);
  const fumin = (): NOp => (a, b) => (a <= b ? a : b);
  add(0, 0b01100, { name: 'SMAX', vsz: NO64, ssz: 0, op: smax, fast: fsmax });
  add(0, 0b01101, { name: 'SMIN', vsz: NO64, ssz: 0, op: smin, fast: fsmin });
  add(1, 0b01100, { name: 'UMAX', vsz: NO64, ssz: 0, op: umax, fast: fumax });
  add(1, 0b01101, { name: 'UMIN', vsz: NO64, ssz: 0, op: umin, fast: fumin });
  add(0, 0b01110, {
    name: 'SABD',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, _d, e) => bAbs(SX(a, e) - SX(b, e)),
    fast: (e) => (a, b) => Math.abs(sxn(a, e) - sxn(b, e)),
  });
  add(1, 0b01110, {
    name: 'UABD',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b) => bAbs(a - b),
    fast: () => (a, b) => Math.abs(a - b),
  });
  add(0, 0b01111, {
    name: 'SABA',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, d, e) => d + bAbs(SX(a, e) - SX(b, e)),
    fast: (e) => (a, b, d) => d + Math.abs(sxn(a, e) - sxn(b, e)),
  });
  add(1, 0b01111, {
    name: 'UABA',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, d) => d + bAbs(a - b),
    fast: () => (a, b, d) => d + Math.abs(a - b),
  });
  add(0, 0b10000, { name: 'ADD', vsz: ALL, ssz: D, op: (c, a, b) => a + b, fast: () => (a, b) => a + b });
  add(1, 0b10000, { name: 'SUB', vsz: ALL, ssz: D, op: (c, a, b) => a - b, fast: () => (a, b) => a - b });
  add(0, 0b10001, {
    name: 'CMTST',
    vsz: ALL,
    ssz: D,
    op: (c, a, b, _d, e) => cmpRes((a & b) !== 0n, e),
    fast: () => (a, b) => ((a & b) !== 0 ? -1 : 0),
  });
  add(1, 0b10001, {
    name: 'CMEQ',
    vsz: ALL,
    ssz: D,
    op: (c, a, b, _d, e) => cmpRes(a === b, e),
    fast: () => (a, b) => (a === b ? -1 : 0),
  });
  add(0, 0b10010, {
    name: 'MLA',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, d) => d + a * b,
    fast: () => (a, b, d) => d + Math.imul(a, b),
  });
  add(1, 0b10010, {
    name: 'MLS',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b, d) => d - a * b,
    fast: () => (a, b, d) => d - Math.imul(a, b),
  });
  add(0, 0b10011, {
    name: 'MUL',
    vsz: NO64,
    ssz: 0,
    op: (c, a, b) => a * b,
    fast: () => (a, b) => Math.imul(a, b),
  });
  add(1, 0b10011, {
    name: 'PMUL',
    vsz: 0b0001,
    ssz: 0,
    op: (c, a, b) => BigInt(polyMul8(Number(a), Number(b))),
    fast: () => polyMul8,
  });
  add(0, 0b10100, { name: 'SMAXP', vsz: NO64, ssz: 0, op: smax, fast: fsmax, pairwise: true });
  add(0, 0b10101, { name: 'SMINP', vsz: NO64, ssz: 0, op: smin, fast: fsmin, pairwise: true });
  add(1, 0b10100, { name: 'UMAXP', vsz: NO64, ssz: 0, op: umax, fast: fumax, pairwise: true });
  add(1, 0b10101, { name: 'UMINP', vsz: NO64, ssz: 0, op: umin, fast: fumin, pairwise: true });
  add(0, 0b10111, {
    name: 'ADDP',
    vsz: ALL,
    ssz: 0,
    op: (c, a, b) => a + b,
    fast: () => (a, b) => a + b,
    pairwise: true,
  });
  add(0, 0b10110, {
    name: 'SQDMULH',
    vsz: HS,
    ssz: HS,
    op: (c, a, b, _d, e) => satS(c, (2n * SX(a, e) * SX(b, e)) >> BigInt(e), e),
    fast: (e) => (a, b, _d, c) => qdmulh(c, a, b, e, false),
  });
  add(1, 0b10110, {
    name: 'SQRDMULH',
    vsz: HS,
    ssz: HS,
    op: (c, a, b, _d, e) => satS(c, (2n * SX(a, e) * SX(b, e) + (1n << BigInt(e - 1))) >> BigInt(e), e),
    fast: (e) => (a, b, _d, c) => qdmulh(c, a, b, e, true),
  });
  return t;
}
const SAME = mkSame();

function vecSame(s: Same): (c: Arm64Cpu, i: number) => void {
  const fastByE: (NOp | undefined)[] = [s.fast?.(8), s.fast?.(16), s.fast?.(32)];
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    const q = QF(i);
    if (((s.vsz >> size) & 1) === 0 || (size === 3 && q === 0)) undef(c, i);
    const e = 8 << size;
    const d = RD(i);
    const n = RN(i);
    const m = RM(i);
    const lanes = (q ? 128 : 64) / e;
    if (s.pairwise && size === 3 && s.name === 'ADDP') {
      const u = c.vI32;
      const lo0 = i64.add64(u[4 * n], u[4 * n + 1], u[4 * n + 2], u[4 * n + 3]);
      const hi0 = i64.rhi;
      const lo1 = i64.add64(u[4 * m], u[4 * m + 1], u[4 * m + 2], u[4 * m + 3]);
      const hi1 = i64.rhi;
      u[4 * d] = lo0;
      u[4 * d + 1] = hi0;
      u[4 * d + 2] = lo1;
      u[4 * d + 3] = hi1;
      return;
    }
    if (s.pairwise) {
      // concatenation m:n, result lane k = op(x[2k], x[2k+1])
      const half = lanes >> 1;
      const f = size < 3 ? fastByE[size] : undefined;
      if (f) {
        const arr = arrFor(c, e);
        const sh = LOG(e);
        const nb = n << sh;
        const mb = m << sh;
        const sb = SCR << sh;
        for (let k = 0; k < half; k++) {
          arr[sb + k] = f(arr[nb + 2 * k], arr[nb + 2 * k + 1], 0, c);
          arr[sb + half + k] = f(arr[mb + 2 * k], arr[mb + 2 * k + 1], 0, c);
        }
        const db = d << sh;
        for (let k = 0; k < lanes; k++) arr[db + k] = arr[sb + k];
      } else {
        for (let k = 0; k < half; k++) {
          tmp[k] = s.op(c, gE(c, n, e, 2 * k), gE(c, n, e, 2 * k + 1), 0n, e);
          tmp[half + k] = s.op(c, gE(c, m, e, 2 * k), gE(c, m, e, 2 * k + 1), 0n, e);
        }
        for (let k = 0; k < lanes; k++) sE(c, d, e, k, tmp[k]);
      }
    } else if (size < 3 && fastByE[size]) {
      const f = fastByE[size]!;
      const arr = arrFor(c, e);
      const sh = LOG(e);
      const nb = n << sh;
      const mb = m << sh;
      const db = d << sh;
      for (let k = 0; k < lanes; k++) arr[db + k] = f(arr[nb + k], arr[mb + k], arr[db + k], c);
    } else {
      ew3(c, d, n, m, e, lanes, s.op);
    }
    if (!q) zeroHi(c, d);
  };
}
function scalarSame(s: Same): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    if (((s.ssz >> size) & 1) === 0) undef(c, i);
    const e = 8 << size;
    const d = RD(i);
    ew3(c, d, RN(i), RM(i), e, 1, s.op);
    finish(c, d, e >> 3);
  };
}
for (const [key, s] of SAME) {
  const u = key >> 5;
  const opc = (key & 31).toString(2).padStart(5, '0');
  // ADD, SUB and CMEQ have hand-written vector handlers below
  if (s.name !== 'ADD' && s.name !== 'SUB' && s.name !== 'CMEQ')
    P(`0 q ${u} 01110 ss 1 mmmmm ${opc} 1 nnnnn ddddd`, s.name, vecSame(s));
  if (s.ssz) P(`01 ${u} 11110 ss 1 mmmmm ${opc} 1 nnnnn ddddd`, `${s.name}_scalar`, scalarSame(s));
}

// Hand-written fast paths for the hottest three-same forms (the table entries are not registered for
// these). 8- and 16-bit lanes are processed four/two at a time in 32-bit words (SWAR).
const H8 = 0x80808080 | 0;
const L8 = 0x7f7f7f7f;
const H16 = 0x80008000 | 0;
const L16 = 0x7fff7fff;
function fastAdd(sub: boolean): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    const q = QF(i);
    const u = c.vI32;
    const d = RD(i) << 2;
    const n = RN(i) << 2;
    const m = RM(i) << 2;
    const w = q ? 4 : 2;
    if (size === 3) {
      if (!q) undef(c, i);
      for (let k = 0; k < 4; k += 2) {
        const alo = u[n + k] >>> 0;
        const blo = u[m + k] >>> 0;
        const ahi = u[n + k + 1];
        const bhi = u[m + k + 1];
        if (sub) {
          u[d + k] = alo - blo;
          u[d + k + 1] = (ahi - bhi - (alo < blo ? 1 : 0)) | 0;
        } else {
          const lo = (alo + blo) >>> 0;
          u[d + k] = lo;
          u[d + k + 1] = (ahi + bhi + (lo < alo ? 1 : 0)) | 0;
        }
      }
      return;
    }
    const hm = size === 0 ? H8 : H16;
    const lm = size === 0 ? L8 : L16;
    for (let k = 0; k < w; k++) {
      const a = u[n + k];
      const b = u[m + k];
      if (size === 2) u[d + k] = sub ? a - b : a + b;
      else if (sub) u[d + k] = ((a | hm) - (b & lm)) ^ ((a ^ ~b) & hm);
      else u[d + k] = ((a & lm) + (b & lm)) ^ ((a ^ b) & hm);
    }
    if (!q) zeroHi(c, d >> 2);
  };
}
P('0 q 0 01110 ss 1 mmmmm 10000 1 nnnnn ddddd', 'ADD_vec', fastAdd(false));
P('0 q 1 01110 ss 1 mmmmm 10000 1 nnnnn ddddd', 'SUB_vec', fastAdd(true));
/** Per-lane all-ones where x's 8-bit (size 0) / 16-bit (size 1) / 32-bit lane is zero. */
function zeroLanes(x: number, size: number): number {
  if (size === 2) return x === 0 ? -1 : 0;
  const lm = size === 0 ? L8 : L16;
  const hm = size === 0 ? H8 : H16;
  const t = ~(((x & lm) + lm) | x) & hm; // high bit set in each zero lane
  return size === 0 ? (t >>> 7) * 0xff : (t >>> 15) * 0xffff;
}
P('0 q 1 01110 ss 1 mmmmm 10001 1 nnnnn ddddd', 'CMEQ_vec', (c, i) => {
  c.checkFp();
  const size = SZ(i);
  const q = QF(i);
  const u = c.vI32;
  const d = RD(i) << 2;
  const n = RN(i) << 2;
  const m = RM(i) << 2;
  if (size === 3) {
    if (!q) undef(c, i);
    for (let k = 0; k < 4; k += 2) {
      const eq = u[n + k] === u[m + k] && u[n + k + 1] === u[m + k + 1] ? -1 : 0;
      u[d + k] = eq;
      u[d + k + 1] = eq;
    }
    return;
  }
  const w = q ? 4 : 2;
  for (let k = 0; k < w; k++) u[d + k] = zeroLanes(u[n + k] ^ u[m + k], size);
  if (!q) zeroHi(c, d >> 2);
});

// Logical (three same, opcode 00011): AND BIC ORR ORN / EOR BSL BIT BIF
type L3 = (a: number, b: number, x: number) => number;
const LOGIC: L3[] = [
  (a, b) => a & b,
  (a, b) => a & ~b,
  (a, b) => a | b,
  (a, b) => a | ~b,
  (a, b) => a ^ b,
  (a, b, x) => (a & x) | (b & ~x), // BSL
  (a, b, x) => (a & b) | (x & ~b), // BIT
  (a, b, x) => (a & ~b) | (x & b), // BIF
];
function logical(kind: number): (c: Arm64Cpu, i: number) => void {
  const f = LOGIC[kind];
  return (c, i) => {
    c.checkFp();
    const q = QF(i);
    const u = c.vI32;
    const d = RD(i) << 2;
    const n = RN(i) << 2;
    const m = RM(i) << 2;
    u[d] = f(u[n], u[m], u[d]);
    u[d + 1] = f(u[n + 1], u[m + 1], u[d + 1]);
    if (q) {
      u[d + 2] = f(u[n + 2], u[m + 2], u[d + 2]);
      u[d + 3] = f(u[n + 3], u[m + 3], u[d + 3]);
    } else {
      u[d + 2] = 0;
      u[d + 3] = 0;
    }
  };
}
['AND', 'BIC', 'ORR', 'ORN', 'EOR', 'BSL', 'BIT', 'BIF'].forEach((name, k) => {
  const u = k >> 2;
  const sz = (k & 3).toString(2).padStart(2, '0');
  P(`0 q ${u} 01110 ${sz} 1 mmmmm 00011 1 nnnnn ddddd`, name, logical(k));
});

// ---------------------------------------------------------------------------------------------------
// Three different
// ---------------------------------------------------------------------------------------------------

// kinds: L = long (both narrow), W = wide n, HN = narrowing high half
type Diff = { name: string; kind: 'L' | 'W' | 'HN'; sz: number; sgn: boolean; op: Op3; scalar?: boolean };
function mkDiff(): Map<number, Diff> {
  const t = new Map<number, Diff>();
  const add = (u: number, opc: number, s: Diff): void => void t.set((u << 4) | opc, s);
  const sum: Op3 = (c, a, b) => a + b;
  const dif: Op3 = (c, a, b) => a - b;
  add(0, 0b0000, { name: 'SADDL', kind: 'L', sz: NO64, sgn: true, op: sum });
  add(1, 0b0000, { name: 'UADDL', kind: 'L', sz: NO64, sgn: false, op: sum });
  add(0, 0b0001, { name: 'SADDW', kind: 'W', sz: NO64, sgn: true, op: sum });
  add(1, 0b0001, { name: 'UADDW', kind: 'W', sz: NO64, sgn: false, op: sum });
  add(0, 0b0010, { name: 'SSUBL', kind: 'L', sz: NO64, sgn: true, op: dif });
  add(1, 0b0010, { name: 'USUBL', kind: 'L', sz: NO64, sgn: false, op: dif });
  add(0, 0b0011, { name: 'SSUBW', kind: 'W', sz: NO64, sgn: true, op: dif });
  add(1, 0b0011, { name: 'USUBW', kind: 'W', sz: NO64, sgn: false, op: dif });
  // HN: op gets the wide values, e = narrow size
  add(0, 0b0100, {
    name: 'ADDHN',
    kind: 'HN',
    sz: NO64,
    sgn: false,
    op: (c, a, b, _d, e) => (a + b) >> BigInt(e),
  });
  add(1, 0b0100, {
    name: 'RADDHN',
    kind: 'HN',
    sz: NO64,
    sgn: false,
    op: (c, a, b, _d, e) => (a + b + (1n << BigInt(e - 1))) >> BigInt(e),
  });
  add(0, 0b0110, {
    name: 'SUBHN',
    kind: 'HN',
    sz: NO64,
    sgn: false,
    op: (c, a, b, _d, e) => BigInt.asUintN(2 * e, a - b) >> BigInt(e),
  });
  add(1, 0b0110, {
    name: 'RSUBHN',
    kind: 'HN',
    sz: NO64,
    sgn: false,
    op: (c, a, b, _d, e) => BigInt.asUintN(2 * e, a - b + (1n << BigInt(e - 1))) >> BigInt(e),
  });
  add(0, 0b0101, { name: 'SABAL', kind: 'L', sz: NO64, sgn: true, op: (c, a, b, d) => d + bAbs(a - b) });
  add(1, 0b0101, { name: 'UABAL', kind: 'L', sz: NO64, sgn: false, op: (c, a, b, d) => d + bAbs(a - b) });
  add(0, 0b0111, { name: 'SABDL', kind: 'L', sz: NO64, sgn: true, op: (c, a, b) => bAbs(a - b) });
  add(1, 0b0111, { name: 'UABDL', kind: 'L', sz: NO64, sgn: false, op: (c, a, b) => bAbs(a - b) });
  add(0, 0b1000, { name: 'SMLAL', kind: 'L', sz: NO64, sgn: true, op: (c, a, b, d) => d + a * b });
  add(1, 0b1000, { name: 'UMLAL', kind: 'L', sz: NO64, sgn: false, op: (c, a, b, d) => d + a * b });
  add(0, 0b1010, { name: 'SMLSL', kind: 'L', sz: NO64, sgn: true, op: (c, a, b, d) => d - a * b });
  add(1, 0b1010, { name: 'UMLSL', kind: 'L', sz: NO64, sgn: false, op: (c, a, b, d) => d - a * b });
  add(0, 0b1100, { name: 'SMULL', kind: 'L', sz: NO64, sgn: true, op: (c, a, b) => a * b });
  add(1, 0b1100, { name: 'UMULL', kind: 'L', sz: NO64, sgn: false, op: (c, a, b) => a * b });
  // e passed to L ops is the wide size
  add(0, 0b1001, {
    name: 'SQDMLAL',
    kind: 'L',
    sz: HS,
    sgn: true,
    scalar: true,
    op: (c, a, b, d, e) => satS(c, SX(d, e) + satS(c, 2n * a * b, e), e),
  });
  add(0, 0b1011, {
    name: 'SQDMLSL',
    kind: 'L',
    sz: HS,
    sgn: true,
    scalar: true,
    op: (c, a, b, d, e) => satS(c, SX(d, e) - satS(c, 2n * a * b, e), e),
  });
  add(0, 0b1101, {
    name: 'SQDMULL',
    kind: 'L',
    sz: HS,
    sgn: true,
    scalar: true,
    op: (c, a, b, _d, e) => satS(c, 2n * a * b, e),
  });
  add(0, 0b1110, {
    name: 'PMULL',
    kind: 'L',
    sz: 0b0001,
    sgn: false,
    op: (c, a, b) => {
      let r = 0;
      const x = Number(a);
      const y = Number(b);
      for (let k = 0; k < 8; k++) if ((y >>> k) & 1) r ^= x << k;
      return BigInt(r);
    },
  });
  return t;
}
const DIFF = mkDiff();

type N3 = (a: number, b: number, d: number) => number;
const nSum: N3 = (a, b) => a + b;
const nDif: N3 = (a, b) => a - b;
const nAbd: N3 = (a, b) => Math.abs(a - b);
const nAba: N3 = (a, b, d) => d + Math.abs(a - b);
const nMul: N3 = (a, b) => a * b;
const nMla: N3 = (a, b, d) => d + a * b;
const nMls: N3 = (a, b, d) => d - a * b;
/** Number versions of the widening ops (operands already sign- or zero-extended). */
const DIFF_NUM: Record<string, N3 | undefined> = {
  SADDL: nSum,
  UADDL: nSum,
  SADDW: nSum,
  UADDW: nSum,
  SSUBL: nDif,
  USUBL: nDif,
  SSUBW: nDif,
  USUBW: nDif,
  SABDL: nAbd,
  UABDL: nAbd,
  SABAL: nAba,
  UABAL: nAba,
  SMULL: nMul,
  UMULL: nMul,
  SMLAL: nMla,
  UMLAL: nMla,
  SMLSL: nMls,
  UMLSL: nMls,
};
function vecDiff(s: Diff): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    if (((s.sz >> size) & 1) === 0) undef(c, i);
    const q = QF(i);
    const e = 8 << size;
    const e2 = 2 * e;
    const d = RD(i);
    const n = RN(i);
    const m = RM(i);
    const lanes = 64 / e;
    const base = q ? lanes : 0;
    if (s.name === 'PMULL') {
      const u8 = c.vU8;
      const u16 = c.vU16;
      const nb = (n << 4) + (q ? 8 : 0);
      const mb = (m << 4) + (q ? 8 : 0);
      for (let k = 0; k < 8; k++) u16[256 + k] = polyMul8(u8[nb + k], u8[mb + k]);
      for (let k = 0; k < 8; k++) u16[(d << 3) + k] = u16[256 + k];
      return;
    }
    const nop = DIFF_NUM[s.name];
    if (nop && e <= 16) {
      // exact in doubles: narrow operands <= 16 bits, wide results <= 32 bits (computed into scratch)
      const nar = e === 8 ? c.vU8 : c.vU16;
      const wide = e === 8 ? c.vU16 : c.vU32;
      const ln = LOG(e);
      const lw = LOG(e2);
      const sb = SCR << lw;
      const nb = s.kind === 'W' ? n << lw : (n << ln) + base;
      const mb = (m << ln) + base;
      const db = d << lw;
      for (let k = 0; k < lanes; k++) {
        let a = s.kind === 'W' ? wide[nb + k] : nar[nb + k];
        let b = nar[mb + k];
        if (s.sgn) {
          a = s.kind === 'W' ? sxn(a, e2) : sxn(a, e);
          b = sxn(b, e);
        }
        wide[sb + k] = nop(a, b, wide[db + k]);
      }
      for (let k = 0; k < lanes; k++) wide[db + k] = wide[sb + k];
      return;
    }
    const ext = (v: bigint, w: number): bigint => (s.sgn ? SX(v, w) : v);
    if (s.kind === 'HN') {
      for (let k = 0; k < lanes; k++) tmp[k] = s.op(c, gE(c, n, e2, k), gE(c, m, e2, k), 0n, e);
      for (let k = 0; k < lanes; k++) sE(c, d, e, base + k, tmp[k]);
      if (!q) zeroHi(c, d);
      return;
    }
    for (let k = 0; k < lanes; k++) {
      const a = s.kind === 'W' ? ext(gE(c, n, e2, k), e2) : ext(gE(c, n, e, base + k), e);
      const b = ext(gE(c, m, e, base + k), e);
      tmp[k] = s.op(c, a, b, gE(c, d, e2, k), e2);
    }
    for (let k = 0; k < lanes; k++) sE(c, d, e2, k, tmp[k]);
  };
}
for (const [key, s] of DIFF) {
  const u = key >> 4;
  const opc = (key & 15).toString(2).padStart(4, '0');
  P(`0 q ${u} 01110 ss 1 mmmmm ${opc} 00 nnnnn ddddd`, s.name, vecDiff(s));
  if (s.scalar)
    P(`01 ${u} 11110 ss 1 mmmmm ${opc} 00 nnnnn ddddd`, `${s.name}_scalar`, (c, i) => {
      c.checkFp();
      const size = SZ(i);
      if (((s.sz >> size) & 1) === 0) undef(c, i);
      const e = 8 << size;
      const d = RD(i);
      const r = s.op(c, SX(gE(c, RN(i), e, 0), e), SX(gE(c, RM(i), e, 0), e), gE(c, d, 2 * e, 0), 2 * e);
      sE(c, d, 2 * e, 0, r);
      finish(c, d, e >> 2);
    });
}

// ---------------------------------------------------------------------------------------------------
// Two-register misc
// ---------------------------------------------------------------------------------------------------

interface Misc {
  name: string;
  vsz: number;
  ssz: number;
  op: Op1;
}
/** Number versions (lanes <= 32 bits, unsigned input, result stored modulo 2^e). */
const MISC_NUM: Record<string, ((a: number, e: number) => number) | undefined> = {
  CLZ: (a, e) => Math.clz32(a) - (32 - e),
  CLS: (a, e) => {
    const x = sxn(a, e);
    return Math.clz32(x < 0 ? ~x : x) - (32 - e) - 1;
  },
  ABS: (a, e) => Math.abs(sxn(a, e)),
  NEG: (a) => -a,
  CMGT_zero: (a, e) => (sxn(a, e) > 0 ? -1 : 0),
  CMGE_zero: (a, e) => (sxn(a, e) >= 0 ? -1 : 0),
  CMLE_zero: (a, e) => (sxn(a, e) <= 0 ? -1 : 0),
  CMLT_zero: (a, e) => (sxn(a, e) < 0 ? -1 : 0),
};
const bitLen = (v: bigint): number => (v === 0n ? 0 : v.toString(2).length);
function clsb(v: bigint, e: number): bigint {
  const x = SX(v, e);
  const y = x < 0n ? -x - 1n : x;
  return BigInt(e - bitLen(y) - 1);
}
function clzb(v: bigint, e: number): bigint {
  return BigInt(e - bitLen(v));
}
function mkMisc(): Map<number, Misc> {
  const t = new Map<number, Misc>();
  const add = (u: number, opc: number, s: Misc): void => void t.set((u << 5) | opc, s);
  add(0, 0b00011, { name: 'SUQADD', vsz: ALL, ssz: ALL, op: (c, a, d, e) => satS(c, SX(d, e) + a, e) });
  add(1, 0b00011, { name: 'USQADD', vsz: ALL, ssz: ALL, op: (c, a, d, e) => satU(c, d + SX(a, e), e) });
  add(0, 0b00100, { name: 'CLS', vsz: NO64, ssz: 0, op: (c, a, _d, e) => clsb(a, e) });
  add(1, 0b00100, { name: 'CLZ', vsz: NO64, ssz: 0, op: (c, a, _d, e) => clzb(a, e) });
  add(0, 0b00111, { name: 'SQABS', vsz: ALL, ssz: ALL, op: (c, a, _d, e) => satS(c, bAbs(SX(a, e)), e) });
  add(1, 0b00111, { name: 'SQNEG', vsz: ALL, ssz: ALL, op: (c, a, _d, e) => satS(c, -SX(a, e), e) });
  add(0, 0b01000, { name: 'CMGT_zero', vsz: ALL, ssz: D, op: (c, a, _d, e) => cmpRes(SX(a, e) > 0n, e) });
  add(1, 0b01000, { name: 'CMGE_zero', vsz: ALL, ssz: D, op: (c, a, _d, e) => cmpRes(SX(a, e) >= 0n, e) });
  add(0, 0b01001, { name: 'CMEQ_zero', vsz: ALL, ssz: D, op: (c, a, _d, e) => cmpRes(a === 0n, e) });
  add(1, 0b01001, { name: 'CMLE_zero', vsz: ALL, ssz: D, op: (c, a, _d, e) => cmpRes(SX(a, e) <= 0n, e) });
  add(0, 0b01010, { name: 'CMLT_zero', vsz: ALL, ssz: D, op: (c, a, _d, e) => cmpRes(SX(a, e) < 0n, e) });
  add(0, 0b01011, { name: 'ABS', vsz: ALL, ssz: D, op: (c, a, _d, e) => bAbs(SX(a, e)) });
  add(1, 0b01011, { name: 'NEG', vsz: ALL, ssz: D, op: (c, a) => -a });
  return t;
}
const MISC = mkMisc();
for (const [key, s] of MISC) {
  const u = key >> 5;
  const opc = (key & 31).toString(2).padStart(5, '0');
  if (s.name !== 'CMEQ_zero')
    P(`0 q ${u} 01110 ss 10000 ${opc} 10 nnnnn ddddd`, s.name, (c, i) => {
      c.checkFp();
      const size = SZ(i);
      const q = QF(i);
      if (((s.vsz >> size) & 1) === 0 || (size === 3 && !q)) undef(c, i);
      const e = 8 << size;
      const d = RD(i);
      const nf = MISC_NUM[s.name];
      if (nf && e <= 32) {
        const arr = arrFor(c, e);
        const lg = LOG(e);
        const nb = RN(i) << lg;
        const db = d << lg;
        const lanes = (q ? 128 : 64) / e;
        for (let k = 0; k < lanes; k++) arr[db + k] = nf(arr[nb + k], e);
      } else ew1(c, d, RN(i), e, (q ? 128 : 64) / e, s.op);
      if (!q) zeroHi(c, d);
    });
  if (s.ssz)
    P(`01 ${u} 11110 ss 10000 ${opc} 10 nnnnn ddddd`, `${s.name}_scalar`, (c, i) => {
      c.checkFp();
      const size = SZ(i);
      if (((s.ssz >> size) & 1) === 0) undef(c, i);
      const e = 8 << size;
      const d = RD(i);
      ew1(c, d, RN(i), e, 1, s.op);
      finish(c, d, e >> 3);
    });
}

// CMEQ #0 fast path (strlen/memchr-style code)
P('0 q 0 01110 ss 10000 01001 10 nnnnn ddddd', 'CMEQ_zero_vec', (c, i) => {
  c.checkFp();
  const size = SZ(i);
  const q = QF(i);
  const u = c.vI32;
  const d = RD(i) << 2;
  const n = RN(i) << 2;
  if (size === 3) {
    if (!q) undef(c, i);
    for (let k = 0; k < 4; k += 2) {
      const z = u[n + k] === 0 && u[n + k + 1] === 0 ? -1 : 0;
      u[d + k] = z;
      u[d + k + 1] = z;
    }
    return;
  }
  const w = q ? 4 : 2;
  for (let k = 0; k < w; k++) u[d + k] = zeroLanes(u[n + k], size);
  if (!q) zeroHi(c, d >> 2);
});

// REV64 / REV16 / REV32
const bswap = (x: number): number => (x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
const hswap = (x: number): number => (x << 16) | (x >>> 16);
const bswap16 = (x: number): number => ((x & 0x00ff00ff) << 8) | ((x >>> 8) & 0x00ff00ff);
function rev(containerBytes: number): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    if (1 << size >= containerBytes) undef(c, i);
    const q = QF(i);
    const u = c.vI32;
    const n = RN(i) << 2;
    const d = RD(i) << 2;
    const w = q ? 4 : 2;
    if (containerBytes === 8) {
      // swap the words of each doubleword, reversing the elements inside each word
      for (let k = 0; k < w; k += 2) {
        const lo = u[n + k];
        const hi = u[n + k + 1];
        u[d + k] = size === 0 ? bswap(hi) : size === 1 ? hswap(hi) : hi;
        u[d + k + 1] = size === 0 ? bswap(lo) : size === 1 ? hswap(lo) : lo;
      }
    } else if (containerBytes === 4) {
      for (let k = 0; k < w; k++) u[d + k] = size === 0 ? bswap(u[n + k]) : hswap(u[n + k]);
    } else {
      for (let k = 0; k < w; k++) u[d + k] = bswap16(u[n + k]);
    }
    if (!q) zeroHi(c, d >> 2);
  };
}
P('0 q 0 01110 ss 10000 00000 10 nnnnn ddddd', 'REV64', rev(8));
P('0 q 1 01110 ss 10000 00000 10 nnnnn ddddd', 'REV32', rev(4));
P('0 q 0 01110 ss 10000 00001 10 nnnnn ddddd', 'REV16', rev(2));

// CNT, NOT, RBIT (byte-wise)
const POP8 = new Uint8Array(256);
const RBIT8 = new Uint8Array(256);
for (let v = 0; v < 256; v++) {
  let p = 0;
  let r = 0;
  for (let k = 0; k < 8; k++) {
    p += (v >>> k) & 1;
    if ((v >>> k) & 1) r |= 0x80 >>> k;
  }
  POP8[v] = p;
  RBIT8[v] = r;
}
function byteMap(table: Uint8Array | null): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const q = QF(i);
    const u8 = c.vU8;
    const n = RN(i) << 4;
    const d = RD(i) << 4;
    const nb = q ? 16 : 8;
    if (table) for (let b = 0; b < nb; b++) u8[d + b] = table[u8[n + b]];
    else for (let b = 0; b < nb; b++) u8[d + b] = ~u8[n + b];
    if (!q) zeroHi(c, RD(i));
  };
}
P('0 q 0 01110 00 10000 00101 10 nnnnn ddddd', 'CNT', byteMap(POP8));
P('0 q 1 01110 00 10000 00101 10 nnnnn ddddd', 'NOT', byteMap(null));
P('0 q 1 01110 01 10000 00101 10 nnnnn ddddd', 'RBIT', byteMap(RBIT8));

// SADDLP / UADDLP / SADALP / UADALP
function addlp(sgn: boolean, acc: boolean): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    if (size === 3) undef(c, i);
    const q = QF(i);
    const e = 8 << size;
    const d = RD(i);
    const n = RN(i);
    const lanes = (q ? 64 : 32) / e;
    for (let k = 0; k < lanes; k++) {
      let a = gE(c, n, e, 2 * k);
      let b = gE(c, n, e, 2 * k + 1);
      if (sgn) {
        a = SX(a, e);
        b = SX(b, e);
      }
      tmp[k] = a + b + (acc ? gE(c, d, 2 * e, k) : 0n);
    }
    for (let k = 0; k < lanes; k++) sE(c, d, 2 * e, k, tmp[k]);
    if (!q) zeroHi(c, d);
  };
}
P('0 q 0 01110 ss 10000 00010 10 nnnnn ddddd', 'SADDLP', addlp(true, false));
P('0 q 1 01110 ss 10000 00010 10 nnnnn ddddd', 'UADDLP', addlp(false, false));
P('0 q 0 01110 ss 10000 00110 10 nnnnn ddddd', 'SADALP', addlp(true, true));
P('0 q 1 01110 ss 10000 00110 10 nnnnn ddddd', 'UADALP', addlp(false, true));

/**
 * Narrowing without BigInt: narrow lane k of the result (lanes base..base+lanes-1 of Vd) from wide lane k
 * of Vn. kind: 0 = truncate (XTN), 1 = shift right by sh then saturate/truncate per the flags.
 * For e == 32 only the truncating forms (XTN, SHRN) are handled here.
 */
function narrowFast(
  c: Arm64Cpu,
  i: number,
  e: number,
  sh: number,
  sgn: boolean,
  round: boolean,
  sat: boolean,
  uns: boolean,
): void {
  const q = QF(i);
  const d = RD(i);
  const n = RN(i);
  const lanes = 64 / e;
  const base = q ? lanes : 0;
  if (e === 32) {
    const u = c.vI32;
    const r0 = sh === 0 ? u[4 * n] : i64.lsr64(u[4 * n], u[4 * n + 1], sh);
    const r1 = sh === 0 ? u[4 * n + 2] : i64.lsr64(u[4 * n + 2], u[4 * n + 3], sh);
    u[4 * d + base] = r0;
    u[4 * d + base + 1] = r1;
  } else {
    const wide = e === 8 ? c.vU16 : c.vU32;
    const nar = e === 8 ? c.vU8 : c.vU16;
    const lw = LOG(2 * e);
    const ln = LOG(e);
    const sb = SCR << ln;
    const nb = n << lw;
    if (!sgn && !round && !sat) {
      // XTN, SHRN
      for (let k = 0; k < lanes; k++) nar[sb + k] = wide[nb + k] >>> sh;
    } else narrowLoop(c, wide, nar, nb, sb, lanes, e, sh, sgn, round, sat, uns);
    const db = (d << ln) + base;
    for (let k = 0; k < lanes; k++) nar[db + k] = nar[sb + k];
  }
  if (!q) zeroHi(c, d);
}
function narrowLoop(
  c: Arm64Cpu,
  wide: Uint16Array | Uint32Array,
  nar: Uint8Array | Uint16Array,
  nb: number,
  sb: number,
  lanes: number,
  e: number,
  sh: number,
  sgn: boolean,
  round: boolean,
  sat: boolean,
  uns: boolean,
): void {
  {
    const div = 2 ** sh;
    const add = round ? 2 ** (sh - 1) : 0;
    for (let k = 0; k < lanes; k++) {
      let v: number = wide[nb + k];
      if (sgn) v = sxn(v, 2 * e);
      if (sh) v = Math.floor((v + add) / div);
      if (sat) v = uns ? satUn(c, v, e) : satSn(c, v, e);
      nar[sb + k] = v;
    }
  }
}
// Narrowing: XTN, SQXTN, UQXTN, SQXTUN (vector and scalar)
type Narrow = (c: Arm64Cpu, v: bigint, e: number) => bigint; // v: wide unsigned, e: narrow size
const NARROW: [string, number, string, Narrow, boolean][] = [
  ['XTN', 0, '10010', (c, v) => v, false],
  ['SQXTN', 0, '10100', (c, v, e) => satS(c, SX(v, 2 * e), e), true],
  ['UQXTN', 1, '10100', (c, v, e) => satU(c, v, e), true],
  ['SQXTUN', 1, '10010', (c, v, e) => satU(c, SX(v, 2 * e), e), true],
];
for (const [name, u, opc, f, scal] of NARROW) {
  P(`0 q ${u} 01110 ss 10000 ${opc} 10 nnnnn ddddd`, name, (c, i) => {
    c.checkFp();
    const size = SZ(i);
    if (size === 3) undef(c, i);
    const q = QF(i);
    const e = 8 << size;
    if (name === 'XTN') return narrowFast(c, i, e, 0, false, false, false, false);
    if (e < 32) {
      if (name === 'SQXTN') return narrowFast(c, i, e, 0, true, false, true, false);
      if (name === 'UQXTN') return narrowFast(c, i, e, 0, false, false, true, true);
      if (name === 'SQXTUN') return narrowFast(c, i, e, 0, true, false, true, true);
    }
    const d = RD(i);
    const n = RN(i);
    const lanes = 64 / e;
    for (let k = 0; k < lanes; k++) tmp[k] = f(c, gE(c, n, 2 * e, k), e);
    const base = q ? lanes : 0;
    for (let k = 0; k < lanes; k++) sE(c, d, e, base + k, tmp[k]);
    if (!q) zeroHi(c, d);
  });
  if (scal)
    P(`01 ${u} 11110 ss 10000 ${opc} 10 nnnnn ddddd`, `${name}_scalar`, (c, i) => {
      c.checkFp();
      const size = SZ(i);
      if (size === 3) undef(c, i);
      const e = 8 << size;
      const d = RD(i);
      const r = f(c, gE(c, RN(i), 2 * e, 0), e);
      sE(c, d, e, 0, r);
      finish(c, d, e >> 3);
    });
}
// SHLL / SHLL2
P('0 q 1 01110 ss 10000 10011 10 nnnnn ddddd', 'SHLL', (c, i) => {
  c.checkFp();
  const size = SZ(i);
  if (size === 3) undef(c, i);
  const q = QF(i);
  const e = 8 << size;
  const d = RD(i);
  const n = RN(i);
  const lanes = 64 / e;
  for (let k = 0; k < lanes; k++) tmp[k] = gE(c, n, e, (q ? lanes : 0) + k) << BigInt(e);
  for (let k = 0; k < lanes; k++) sE(c, d, 2 * e, k, tmp[k]);
});

// URECPE / URSQRTE (32-bit lanes only)
function recipEst(a: number): number {
  a = a * 2 + 1;
  const b = Math.floor(524288 / a);
  return (b + 1) >> 1;
}
function rsqrtEst(a: number): number {
  if (a < 256) a = a * 2 + 1;
  else {
    a = (a >> 1) << 1;
    a = (a + 1) * 2;
  }
  let b = 512;
  while (a * (b + 1) * (b + 1) < 268435456) b++;
  return (b + 1) >> 1;
}
function uest(rsqrt: boolean): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const q = QF(i);
    const d = RD(i) << 2;
    const n = RN(i) << 2;
    const u = c.vU32;
    for (let k = 0; k < (q ? 4 : 2); k++) {
      const v = u[n + k];
      if (rsqrt) u[d + k] = v >>> 30 === 0 ? 0xffffffff : (rsqrtEst(v >>> 23) << 23) >>> 0;
      else u[d + k] = v >>> 31 === 0 ? 0xffffffff : (recipEst(v >>> 23) << 23) >>> 0;
    }
    if (!q) zeroHi(c, d >> 2);
  };
}
P('0 q 0 01110 10 10000 11100 10 nnnnn ddddd', 'URECPE', uest(false));
P('0 q 1 01110 10 10000 11100 10 nnnnn ddddd', 'URSQRTE', uest(true));

// ---------------------------------------------------------------------------------------------------
// Across lanes
// ---------------------------------------------------------------------------------------------------

function across(
  kind: 'ADDV' | 'SADDLV' | 'UADDLV' | 'SMAXV' | 'SMINV' | 'UMAXV' | 'UMINV',
): (c: Arm64Cpu, i: number) => void {
  const sgn = kind === 'SADDLV' || kind === 'SMAXV' || kind === 'SMINV';
  const long = kind === 'SADDLV' || kind === 'UADDLV';
  const op = kind === 'ADDV' || long ? 0 : kind === 'SMAXV' || kind === 'UMAXV' ? 1 : 2;
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    const q = QF(i);
    if (size === 3 || (size === 2 && !q)) undef(c, i);
    const e = 8 << size;
    const arr = size === 0 ? c.vU8 : size === 1 ? c.vU16 : c.vU32;
    const sh = 4 - size;
    const lanes = (q ? 16 : 8) >> size;
    const nb = RN(i) << sh;
    const end = nb + lanes;
    let acc: number;
    if (sgn) {
      const s = 32 - e;
      acc = (arr[nb] << s) >> s;
      if (op === 0) for (let k = nb + 1; k < end; k++) acc += (arr[k] << s) >> s;
      else if (op === 1)
        for (let k = nb + 1; k < end; k++) {
          const v = (arr[k] << s) >> s;
          if (v > acc) acc = v;
        }
      else
        for (let k = nb + 1; k < end; k++) {
          const v = (arr[k] << s) >> s;
          if (v < acc) acc = v;
        }
    } else {
      acc = arr[nb];
      if (op === 0) for (let k = nb + 1; k < end; k++) acc += arr[k];
      else if (op === 1)
        for (let k = nb + 1; k < end; k++) {
          const v = arr[k];
          if (v > acc) acc = v;
        }
      else
        for (let k = nb + 1; k < end; k++) {
          const v = arr[k];
          if (v < acc) acc = v;
        }
    }
    const d = RD(i);
    const u = c.vU32;
    const db = d << 2;
    u[db] = 0;
    u[db + 1] = 0;
    u[db + 2] = 0;
    u[db + 3] = 0;
    if (long) {
      // result size 2e (up to 64 bits); acc is exact (|acc| < 2^37)
      if (e === 32) {
        u[db] = acc >>> 0;
        u[db + 1] = Math.floor(acc / 4294967296) >>> 0;
      } else if (e === 16) u[db] = acc >>> 0;
      else c.vU16[d << 3] = acc & 0xffff;
    } else {
      arr[d << sh] = acc;
    }
  };
}
P('0 q 0 01110 ss 11000 11011 10 nnnnn ddddd', 'ADDV', across('ADDV'));
P('0 q 0 01110 ss 11000 00011 10 nnnnn ddddd', 'SADDLV', across('SADDLV'));
P('0 q 1 01110 ss 11000 00011 10 nnnnn ddddd', 'UADDLV', across('UADDLV'));
P('0 q 0 01110 ss 11000 01010 10 nnnnn ddddd', 'SMAXV', across('SMAXV'));
P('0 q 0 01110 ss 11000 11010 10 nnnnn ddddd', 'SMINV', across('SMINV'));
P('0 q 1 01110 ss 11000 01010 10 nnnnn ddddd', 'UMAXV', across('UMAXV'));
P('0 q 1 01110 ss 11000 11010 10 nnnnn ddddd', 'UMINV', across('UMINV'));

// Scalar pairwise ADDP (D only)
P('01 0 11110 11 11000 11011 10 nnnnn ddddd', 'ADDP_scalar', (c, i) => {
  c.checkFp();
  const u = c.vI32;
  const n = RN(i) << 2;
  const d = RD(i) << 2;
  u[d] = i64.add64(u[n], u[n + 1], u[n + 2], u[n + 3]);
  u[d + 1] = i64.rhi;
  u[d + 2] = 0;
  u[d + 3] = 0;
});

// ---------------------------------------------------------------------------------------------------
// Copy: DUP, INS, UMOV, SMOV
// ---------------------------------------------------------------------------------------------------

/** size from imm5 (lowest set bit), -1 when imm5<3:0> == 0. */
function imm5Size(imm5: number): number {
  if (imm5 & 1) return 0;
  if (imm5 & 2) return 1;
  if (imm5 & 4) return 2;
  if (imm5 & 8) return 3;
  return -1;
}
const IMM5 = (i: number): number => (i >>> 16) & 31;

function dupElem(c: Arm64Cpu, i: number): void {
  c.checkFp();
  const imm5 = IMM5(i);
  const size = imm5Size(imm5);
  const q = QF(i);
  if (size < 0 || (size === 3 && !q)) undef(c, i);
  const idx = imm5 >>> (size + 1);
  const d = RD(i);
  const n = RN(i);
  const u = c.vU32;
  const db = d << 2;
  if (size === 3) {
    const lo = u[(n << 2) + 2 * idx];
    const hi = u[(n << 2) + 2 * idx + 1];
    u[db] = lo;
    u[db + 1] = hi;
    u[db + 2] = lo;
    u[db + 3] = hi;
    return;
  }
  let w: number;
  if (size === 0) w = c.vU8[(n << 4) + idx] * 0x01010101;
  else if (size === 1) w = c.vU16[(n << 3) + idx] * 0x10001;
  else w = u[(n << 2) + idx];
  fillWords(u, db, w, q);
}
/** Write the 32-bit pattern w to the 2 (q = 0, upper half zeroed) or 4 words of a register at word db. */
function fillWords(u: Uint32Array, db: number, w: number, q: number): void {
  u[db] = w;
  u[db + 1] = w;
  if (q) {
    u[db + 2] = w;
    u[db + 3] = w;
  } else {
    u[db + 2] = 0;
    u[db + 3] = 0;
  }
}
P('0 q 0 01110000 iiiii 0 0000 1 nnnnn ddddd', 'DUP_element', dupElem);
P('0 q 0 01110000 iiiii 0 0001 1 nnnnn ddddd', 'DUP_general', (c, i) => {
  c.checkFp();
  const imm5 = IMM5(i);
  const size = imm5Size(imm5);
  const q = QF(i);
  if (size < 0 || (size === 3 && !q)) undef(c, i);
  const n = RN(i);
  const d = RD(i);
  const lo = c.r[rz(n) << 1];
  const u = c.vU32;
  let w: number;
  if (size === 3) {
    const hi = c.r[(rz(n) << 1) | 1];
    u[d << 2] = lo;
    u[(d << 2) + 1] = hi;
    u[(d << 2) + 2] = lo;
    u[(d << 2) + 3] = hi;
    return;
  }
  if (size === 0) w = (lo & 0xff) * 0x01010101;
  else if (size === 1) w = (lo & 0xffff) * 0x10001;
  else w = lo;
  fillWords(u, d << 2, w, q);
});
P('0 1 0 01110000 iiiii 0 0011 1 nnnnn ddddd', 'INS_general', (c, i) => {
  c.checkFp();
  const imm5 = IMM5(i);
  const size = imm5Size(imm5);
  if (size < 0) undef(c, i);
  const idx = imm5 >>> (size + 1);
  const n = RN(i);
  const d = RD(i);
  const lo = c.r[rz(n) << 1];
  if (size === 0) c.vU8[(d << 4) + idx] = lo;
  else if (size === 1) c.vU16[(d << 3) + idx] = lo;
  else if (size === 2) c.vU32[(d << 2) + idx] = lo;
  else {
    c.vU32[(d << 2) + 2 * idx] = lo;
    c.vU32[(d << 2) + 2 * idx + 1] = c.r[(rz(n) << 1) | 1];
  }
});
P('0 1 1 01110000 iiiii 0 jjjj 1 nnnnn ddddd', 'INS_element', (c, i) => {
  c.checkFp();
  const imm5 = IMM5(i);
  const size = imm5Size(imm5);
  if (size < 0) undef(c, i);
  const di = imm5 >>> (size + 1);
  const si = ((i >>> 11) & 15) >>> size;
  const n = RN(i);
  const d = RD(i);
  if (size === 0) c.vU8[(d << 4) + di] = c.vU8[(n << 4) + si];
  else if (size === 1) c.vU16[(d << 3) + di] = c.vU16[(n << 3) + si];
  else if (size === 2) c.vU32[(d << 2) + di] = c.vU32[(n << 2) + si];
  else {
    const lo = c.vU32[(n << 2) + 2 * si];
    const hi = c.vU32[(n << 2) + 2 * si + 1];
    c.vU32[(d << 2) + 2 * di] = lo;
    c.vU32[(d << 2) + 2 * di + 1] = hi;
  }
});
function movToGen(signed: boolean): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const imm5 = IMM5(i);
    const size = imm5Size(imm5);
    const q = QF(i);
    const ok = signed ? size >= 0 && size < 2 + q : size >= 0 && (q ? size === 3 : size < 3);
    if (!ok) undef(c, i);
    const idx = imm5 >>> (size + 1);
    const n = RN(i);
    const s = wz(RD(i)) << 1;
    let v: number;
    if (size === 3) {
      c.r[s] = c.vU32[(n << 2) + 2 * idx];
      c.r[s + 1] = c.vU32[(n << 2) + 2 * idx + 1];
      return;
    }
    if (size === 0) v = signed ? (c.vU8[(n << 4) + idx] << 24) >> 24 : c.vU8[(n << 4) + idx];
    else if (size === 1) v = signed ? (c.vU16[(n << 3) + idx] << 16) >> 16 : c.vU16[(n << 3) + idx];
    else v = c.vI32[(n << 2) + idx];
    c.r[s] = v;
    c.r[s + 1] = signed && q ? v >> 31 : 0;
  };
}
P('0 q 0 01110000 iiiii 0 0101 1 nnnnn ddddd', 'SMOV', movToGen(true));
P('0 q 0 01110000 iiiii 0 0111 1 nnnnn ddddd', 'UMOV', movToGen(false));
// Scalar DUP (element to scalar, alias MOV)
P('01 0 11110000 iiiii 0 0000 1 nnnnn ddddd', 'DUP_scalar', (c, i) => {
  c.checkFp();
  const imm5 = IMM5(i);
  const size = imm5Size(imm5);
  if (size < 0) undef(c, i);
  const idx = imm5 >>> (size + 1);
  const e = 8 << size;
  const d = RD(i);
  const v = gE(c, RN(i), e, idx);
  sE(c, d, e, 0, v);
  finish(c, d, e >> 3);
});

// ---------------------------------------------------------------------------------------------------
// Modified immediate: MOVI, MVNI, ORR, BIC, FMOV (vector)
// ---------------------------------------------------------------------------------------------------

P('0 q o 0111100000 abc cccc 0 1 defgh ddddd', 'MOVI_family', (c, i) => {
  c.checkFp();
  const q = QF(i);
  const op = (i >>> 29) & 1;
  const cmode = (i >>> 12) & 15;
  const imm8 = (((i >>> 16) & 7) << 5) | ((i >>> 5) & 31);
  const d = RD(i);
  let lo: number; // 64-bit pattern as two 32-bit halves
  let hi: number;
  let kind: 0 | 1 | 2 = 0; // 0 = move, 1 = ORR, 2 = BIC
  let invert = op === 1;
  switch (cmode >>> 1) {
    case 0:
    case 1:
    case 2:
    case 3:
      lo = hi = imm8 << (8 * (cmode >>> 1));
      if (cmode & 1) kind = op ? 2 : 1;
      break;
    case 4:
    case 5:
      lo = hi = (imm8 << (8 * ((cmode >>> 1) & 1))) * 0x10001;
      if (cmode & 1) kind = op ? 2 : 1;
      break;
    case 6:
      lo = hi = cmode & 1 ? (imm8 << 16) | 0xffff : (imm8 << 8) | 0xff;
      break;
    default:
      if ((cmode & 1) === 0) {
        if (op === 0) lo = hi = imm8 * 0x01010101;
        else {
          lo = 0;
          hi = 0;
          for (let b = 0; b < 4; b++) {
            if ((imm8 >>> b) & 1) lo |= 0xff << (8 * b);
            if ((imm8 >>> (b + 4)) & 1) hi |= 0xff << (8 * b);
          }
        }
        invert = false;
      } else if (op === 0) {
        // FMOV single: a:NOT(b):bbbbb:cdefgh:Zeros(19)
        const a = imm8 >>> 7;
        const b = (imm8 >>> 6) & 1;
        lo = hi = (a << 31) | ((b ^ 1) << 30) | ((b ? 0x1f : 0) << 25) | ((imm8 & 0x3f) << 19);
      } else {
        if (!q) undef(c, i);
        const a = imm8 >>> 7;
        const b = (imm8 >>> 6) & 1;
        lo = 0;
        hi = (a << 31) | ((b ^ 1) << 30) | ((b ? 0xff : 0) << 22) | ((imm8 & 0x3f) << 16);
        invert = false;
      }
      if (op === 0 || (cmode & 1) === 0) invert = false;
  }
  if (invert && kind === 0) {
    lo = ~lo;
    hi = ~hi;
  }
  const u = c.vI32;
  const b = d << 2;
  const w = q ? 4 : 2;
  for (let k = 0; k < w; k += 2) {
    if (kind === 0) {
      u[b + k] = lo;
      u[b + k + 1] = hi;
    } else if (kind === 1) {
      u[b + k] |= lo;
      u[b + k + 1] |= hi;
    } else {
      u[b + k] &= ~lo;
      u[b + k + 1] &= ~hi;
    }
  }
  if (!q) zeroHi(c, d);
});

// ---------------------------------------------------------------------------------------------------
// Permutes, EXT, TBL/TBX
// ---------------------------------------------------------------------------------------------------

function permute(op: number): (c: Arm64Cpu, i: number) => void {
  const part = op >>> 2; // 0 = *1, 1 = *2
  const kind = op & 3; // 1 = UZP, 2 = TRN, 3 = ZIP
  return (c, i) => {
    c.checkFp();
    const size = SZ(i);
    const q = QF(i);
    if (size === 3 && !q) undef(c, i);
    // work in units of the element (64-bit elements as pairs of 32-bit words)
    const arr = size === 0 ? c.vU8 : size === 1 ? c.vU16 : c.vU32;
    const w = size === 3 ? 2 : 1;
    const sh = size === 3 ? 2 : 4 - size;
    const lanes = (q ? 16 : 8) >> size;
    const nb = RN(i) << sh;
    const mb = RM(i) << sh;
    const db = RD(i) << sh;
    const sb = SCR << sh;
    for (let k = 0; k < lanes; k++) {
      let src: number; // unit offset of the source element
      if (kind === 1) {
        // UZP: result = even (or odd) elements of m:n
        const x = 2 * k + part;
        src = x < lanes ? nb + x * w : mb + (x - lanes) * w;
      } else if (kind === 2) {
        // TRN: result[2p] = n[2p+part], result[2p+1] = m[2p+part]
        src = (k & 1 ? mb : nb) + ((k & ~1) + part) * w;
      } else {
        // ZIP: result[2p] = n[base+p], result[2p+1] = m[base+p]
        src = (k & 1 ? mb : nb) + ((k >>> 1) + part * (lanes >>> 1)) * w;
      }
      if (w === 1) arr[sb + k] = arr[src];
      else {
        arr[sb + 2 * k] = arr[src];
        arr[sb + 2 * k + 1] = arr[src + 1];
      }
    }
    const units = lanes * w;
    for (let k = 0; k < units; k++) arr[db + k] = arr[sb + k];
    if (!q) zeroHi(c, RD(i));
  };
}
[
  ['UZP1', 0b001],
  ['TRN1', 0b010],
  ['ZIP1', 0b011],
  ['UZP2', 0b101],
  ['TRN2', 0b110],
  ['ZIP2', 0b111],
].forEach(([name, op]) => {
  P(
    `0 q 001110 ss 0 mmmmm 0 ${(op as number).toString(2).padStart(3, '0')} 10 nnnnn ddddd`,
    name as string,
    permute(op as number),
  );
});

P('0 q 101110 00 0 mmmmm 0 iiii 0 nnnnn ddddd', 'EXT', (c, i) => {
  c.checkFp();
  const q = QF(i);
  const pos = (i >>> 11) & 15;
  if (!q && pos >= 8) undef(c, i);
  const bytes = q ? 16 : 8;
  const u8 = c.vU8;
  const n = RN(i) << 4;
  const m = RM(i) << 4;
  const d = RD(i) << 4;
  for (let b = 0; b < bytes; b++) {
    const x = pos + b;
    u8[512 + b] = x < bytes ? u8[n + x] : u8[m + x - bytes];
  }
  for (let b = 0; b < bytes; b++) u8[d + b] = u8[512 + b];
  if (!q) zeroHi(c, d >> 4);
});

P('0 q 001110 00 0 mmmmm 0 ll x 00 nnnnn ddddd', 'TBL_TBX', (c, i) => {
  c.checkFp();
  const q = QF(i);
  const regs = ((i >>> 13) & 3) + 1;
  const tbx = (i >>> 12) & 1;
  const bytes = q ? 16 : 8;
  const u8 = c.vU8;
  const n = RN(i);
  const m = RM(i) << 4;
  const d = RD(i) << 4;
  const limit = regs * 16;
  for (let b = 0; b < bytes; b++) {
    const x = u8[m + b];
    u8[512 + b] = x < limit ? u8ref(u8, n, x) : tbx ? u8[d + b] : 0;
  }
  for (let b = 0; b < bytes; b++) u8[d + b] = u8[512 + b];
  if (!q) zeroHi(c, d >> 4);
});
function u8ref(u8: Uint8Array, n: number, x: number): number {
  return u8[(((n + (x >>> 4)) & 31) << 4) + (x & 15)];
}

// ---------------------------------------------------------------------------------------------------
// Shift by immediate (vector and scalar)
// ---------------------------------------------------------------------------------------------------

const IMMH = (i: number): number => (i >>> 19) & 15;
const IMMHB = (i: number): number => (i >>> 16) & 127;
/** Element size from immh (8..64), 0 if immh == 0. */
function immhSize(immh: number): number {
  if (immh >= 8) return 64;
  if (immh >= 4) return 32;
  if (immh >= 2) return 16;
  if (immh >= 1) return 8;
  return 0;
}

type ShOp = (c: Arm64Cpu, a: bigint, d: bigint, e: number, sh: number) => bigint;
interface ShiftDef {
  name: string;
  u: number;
  opc: string;
  right: boolean;
  scalar: 'D' | 'all' | 'none';
  op: ShOp;
  /** Number version for lanes of <= 32 bits (unsigned a, d; exact in doubles). */
  fast?: (a: number, d: number, e: number, sh: number) => number;
}
const ONESN = (e: number): number => (e === 32 ? 0xffffffff : (1 << e) - 1);
const rshrN =
  (uns: boolean, round: boolean, acc: boolean): ((a: number, d: number, e: number, sh: number) => number) =>
  (a, d, e, sh) => {
    const v = uns ? a : sxn(a, e);
    let r: number;
    if (round) r = Math.floor((v + 2 ** (sh - 1)) / 2 ** sh);
    else if (uns) r = sh >= 32 ? 0 : v >>> sh;
    else r = v >> (sh > 31 ? 31 : sh);
    return acc ? d + r : r;
  };
const rshr =
  (uns: boolean, round: boolean, acc: boolean): ShOp =>
  (c, a, d, e, sh) => {
    let v = uns ? a : SX(a, e);
    if (round) v += 1n << BigInt(sh - 1);
    v >>= BigInt(sh);
    return acc ? d + v : v;
  };
const SHIFTS: ShiftDef[] = [
  {
    name: 'SSHR',
    u: 0,
    opc: '00000',
    right: true,
    scalar: 'D',
    op: rshr(false, false, false),
    fast: rshrN(false, false, false),
  },
  {
    name: 'USHR',
    u: 1,
    opc: '00000',
    right: true,
    scalar: 'D',
    op: rshr(true, false, false),
    fast: rshrN(true, false, false),
  },
  {
    name: 'SSRA',
    u: 0,
    opc: '00010',
    right: true,
    scalar: 'D',
    op: rshr(false, false, true),
    fast: rshrN(false, false, true),
  },
  {
    name: 'USRA',
    u: 1,
    opc: '00010',
    right: true,
    scalar: 'D',
    op: rshr(true, false, true),
    fast: rshrN(true, false, true),
  },
  {
    name: 'SRSHR',
    u: 0,
    opc: '00100',
    right: true,
    scalar: 'D',
    op: rshr(false, true, false),
    fast: rshrN(false, true, false),
  },
  {
    name: 'URSHR',
    u: 1,
    opc: '00100',
    right: true,
    scalar: 'D',
    op: rshr(true, true, false),
    fast: rshrN(true, true, false),
  },
  {
    name: 'SRSRA',
    u: 0,
    opc: '00110',
    right: true,
    scalar: 'D',
    op: rshr(false, true, true),
    fast: rshrN(false, true, true),
  },
  {
    name: 'URSRA',
    u: 1,
    opc: '00110',
    right: true,
    scalar: 'D',
    op: rshr(true, true, true),
    fast: rshrN(true, true, true),
  },
  {
    name: 'SRI',
    u: 1,
    opc: '01000',
    right: true,
    scalar: 'D',
    op: (c, a, d, e, sh) => {
      const mask = sh >= e ? 0n : ONES(e) >> BigInt(sh);
      return (d & ~mask) | ((a >> BigInt(sh)) & mask);
    },
    fast: (a, d, e, sh) => {
      if (sh >= e) return d;
      const mask = ONESN(e) >>> sh;
      return (d & ~mask) | ((a >>> sh) & mask);
    },
  },
  {
    name: 'SHL',
    u: 0,
    opc: '01010',
    right: false,
    scalar: 'D',
    op: (c, a, d, e, sh) => a << BigInt(sh),
    fast: (a, d, e, sh) => a << sh,
  },
  {
    name: 'SLI',
    u: 1,
    opc: '01010',
    right: false,
    scalar: 'D',
    op: (c, a, d, e, sh) => {
      const mask = (ONES(e) << BigInt(sh)) & ONES(e);
      return (d & ~mask) | ((a << BigInt(sh)) & mask);
    },
    fast: (a, d, e, sh) => {
      const mask = ONESN(e) << sh;
      return (d & ~mask) | ((a << sh) & mask);
    },
  },
  {
    name: 'SQSHL_imm',
    u: 0,
    opc: '01110',
    right: false,
    scalar: 'all',
    op: (c, a, d, e, sh) => satS(c, SX(a, e) << BigInt(sh), e),
  },
  {
    name: 'UQSHL_imm',
    u: 1,
    opc: '01110',
    right: false,
    scalar: 'all',
    op: (c, a, d, e, sh) => satU(c, a << BigInt(sh), e),
  },
  {
    name: 'SQSHLU',
    u: 1,
    opc: '01100',
    right: false,
    scalar: 'all',
    op: (c, a, d, e, sh) => satU(c, SX(a, e) << BigInt(sh), e),
  },
];
/** 64-bit lane versions of the common shifts (int32 halves, no BigInt). */
function shift64(
  name: string,
): ((c: Arm64Cpu, d: number, n: number, sh: number, lane: number) => void) | undefined {
  const kind = ['SHL', 'USHR', 'SSHR', 'USRA', 'SSRA'].indexOf(name);
  if (kind < 0) return undefined;
  return (c, d, n, sh, lane) => {
    const u = c.vI32;
    const nb = (n << 2) + 2 * lane;
    const db = (d << 2) + 2 * lane;
    const lo = u[nb];
    const hi = u[nb + 1];
    let rlo: number;
    let rhi: number;
    if (kind === 0) {
      rlo = i64.shl64(lo, hi, sh);
      rhi = i64.rhi;
    } else if (kind === 1 || kind === 3) {
      if (sh >= 64) rlo = rhi = 0;
      else {
        rlo = i64.lsr64(lo, hi, sh);
        rhi = i64.rhi;
      }
    } else {
      rlo = i64.asr64(lo, hi, sh >= 64 ? 63 : sh);
      rhi = i64.rhi;
    }
    if (kind >= 3) {
      rlo = i64.add64(u[db], u[db + 1], rlo, rhi);
      rhi = i64.rhi;
    }
    u[db] = rlo;
    u[db + 1] = rhi;
  };
}

for (const s of SHIFTS) {
  const f64 = shift64(s.name);
  const vec = (c: Arm64Cpu, i: number): void => {
    c.checkFp();
    const immh = IMMH(i);
    const q = QF(i);
    const e = immhSize(immh);
    if (e === 64 && !q) undef(c, i);
    const sh = s.right ? 2 * e - IMMHB(i) : IMMHB(i) - e;
    const d = RD(i);
    const n = RN(i);
    const lanes = (q ? 128 : 64) / e;
    if (e <= 32 && s.fast) {
      const f = s.fast;
      const arr = arrFor(c, e);
      const lg = LOG(e);
      const nb = n << lg;
      const db = d << lg;
      for (let k = 0; k < lanes; k++) arr[db + k] = f(arr[nb + k], arr[db + k], e, sh);
    } else if (e === 64 && f64) {
      f64(c, d, n, sh, 0);
      f64(c, d, n, sh, 1);
    } else {
      for (let k = 0; k < lanes; k++) sE(c, d, e, k, s.op(c, gE(c, n, e, k), gE(c, d, e, k), e, sh));
    }
    if (!q) zeroHi(c, d);
  };
  P(`0 q ${s.u} 011110 hhhh bbb ${s.opc} 1 nnnnn ddddd`, s.name, vec);
  // immh == 0 is the modified-immediate group: make those UNDEF-free by excluding with a more specific pattern below
  if (s.scalar !== 'none')
    P(`01 ${s.u} 111110 hhhh bbb ${s.opc} 1 nnnnn ddddd`, `${s.name}_scalar`, (c, i) => {
      c.checkFp();
      const immh = IMMH(i);
      const e = immhSize(immh);
      if (e === 0 || (s.scalar === 'D' && e !== 64)) undef(c, i);
      const sh = s.right ? 2 * e - IMMHB(i) : IMMHB(i) - e;
      const d = RD(i);
      if (e === 64 && f64) {
        f64(c, d, RN(i), sh, 0);
        zeroHi(c, d);
        return;
      }
      sE(c, d, e, 0, s.op(c, gE(c, RN(i), e, 0), gE(c, d, e, 0), e, sh));
      finish(c, d, e >> 3);
    });
}

// Narrowing shifts: SHRN, RSHRN, SQSHRN, SQRSHRN, UQSHRN, UQRSHRN, SQSHRUN, SQRSHRUN
const NSHIFTS: [string, number, string, boolean, boolean, boolean, boolean][] = [
  // name, U, opcode, source signed, round, saturate, unsigned result
  ['SHRN', 0, '10000', false, false, false, false],
  ['RSHRN', 0, '10001', false, true, false, false],
  ['SQSHRN', 0, '10010', true, false, true, false],
  ['SQRSHRN', 0, '10011', true, true, true, false],
  ['SQSHRUN', 1, '10000', true, false, true, true],
  ['SQRSHRUN', 1, '10001', true, true, true, true],
  ['UQSHRN', 1, '10010', false, false, true, true],
  ['UQRSHRN', 1, '10011', false, true, true, true],
];
for (const [name, u, opc, sgn, round, sat, uns] of NSHIFTS) {
  const f = (c: Arm64Cpu, a: bigint, e: number, sh: number): bigint => {
    let v = sgn ? SX(a, 2 * e) : a;
    if (round) v += 1n << BigInt(sh - 1);
    v >>= BigInt(sh);
    if (!sat) return v;
    return uns ? satU(c, v, e) : satS(c, v, e);
  };
  P(`0 q ${u} 011110 hhhh bbb ${opc} 1 nnnnn ddddd`, name, (c, i) => {
    c.checkFp();
    const immh = IMMH(i);
    const e = immhSize(immh);
    if (e === 64) undef(c, i);
    const q = QF(i);
    const sh = 2 * e - IMMHB(i);
    if (name === 'SHRN' || e < 32) return narrowFast(c, i, e, sh, sgn, round, sat, uns);
    const d = RD(i);
    const n = RN(i);
    const lanes = 64 / e;
    for (let k = 0; k < lanes; k++) tmp[k] = f(c, gE(c, n, 2 * e, k), e, sh);
    for (let k = 0; k < lanes; k++) sE(c, d, e, (q ? lanes : 0) + k, tmp[k]);
    if (!q) zeroHi(c, d);
  });
  if (sat)
    P(`01 ${u} 111110 hhhh bbb ${opc} 1 nnnnn ddddd`, `${name}_scalar`, (c, i) => {
      c.checkFp();
      const e = immhSize(IMMH(i));
      if (e === 64 || e === 0) undef(c, i);
      const sh = 2 * e - IMMHB(i);
      const d = RD(i);
      sE(c, d, e, 0, f(c, gE(c, RN(i), 2 * e, 0), e, sh));
      finish(c, d, e >> 3);
    });
}
// SSHLL / USHLL
for (const u of [0, 1]) {
  P(`0 q ${u} 011110 hhhh bbb 10100 1 nnnnn ddddd`, u ? 'USHLL' : 'SSHLL', (c, i) => {
    c.checkFp();
    const e = immhSize(IMMH(i));
    if (e === 64) undef(c, i);
    const q = QF(i);
    const sh = IMMHB(i) - e;
    const d = RD(i);
    const n = RN(i);
    const lanes = 64 / e;
    // source half to scratch first (the destination may overlap it)
    const uu = c.vI32;
    uu[128] = uu[4 * n + 2 * q];
    uu[129] = uu[4 * n + 2 * q + 1];
    if (e === 32) {
      for (let k = 0; k < 2; k++) {
        const v = uu[128 + k];
        const lo = i64.shl64(v, u ? 0 : v >> 31, sh);
        uu[4 * d + 2 * k] = lo;
        uu[4 * d + 2 * k + 1] = i64.rhi;
      }
      return;
    }
    const nar = e === 8 ? c.vU8 : c.vU16;
    const wide = e === 8 ? c.vU16 : c.vU32;
    const sb = SCR << LOG(e);
    const db = d << LOG(2 * e);
    for (let k = 0; k < lanes; k++) {
      const a = nar[sb + k];
      wide[db + k] = (u ? a : sxn(a, e)) << sh;
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Vector x indexed element (integer)
// ---------------------------------------------------------------------------------------------------

/** Index and Rm of a by-element form for integer sizes 1 (H) and 2 (S). */
function elemIndex(i: number, size: number): [number, number] {
  const h = (i >>> 11) & 1;
  const l = (i >>> 21) & 1;
  const mbit = (i >>> 20) & 1;
  if (size === 1) return [(h << 2) | (l << 1) | mbit, (i >>> 16) & 15];
  return [(h << 1) | l, (i >>> 16) & 31];
}
type ElemDef = [string, number, string, 'same' | 'long', boolean, Op3, boolean];
// name, U, opcode, shape, signed (long), op, scalar form exists
const ELEMS: ElemDef[] = [
  ['MUL_elem', 0, '1000', 'same', false, (c, a, b) => a * b, false],
  ['MLA_elem', 1, '0000', 'same', false, (c, a, b, d) => d + a * b, false],
  ['MLS_elem', 1, '0100', 'same', false, (c, a, b, d) => d - a * b, false],
  ['SQDMULH_elem', 0, '1100', 'same', false, SAME.get(0b10110)!.op, true],
  ['SQRDMULH_elem', 0, '1101', 'same', false, SAME.get(0b110110)!.op, true],
  ['SMULL_elem', 0, '1010', 'long', true, (c, a, b) => a * b, false],
  ['UMULL_elem', 1, '1010', 'long', false, (c, a, b) => a * b, false],
  ['SMLAL_elem', 0, '0010', 'long', true, (c, a, b, d) => d + a * b, false],
  ['UMLAL_elem', 1, '0010', 'long', false, (c, a, b, d) => d + a * b, false],
  ['SMLSL_elem', 0, '0110', 'long', true, (c, a, b, d) => d - a * b, false],
  ['UMLSL_elem', 1, '0110', 'long', false, (c, a, b, d) => d - a * b, false],
  ['SQDMULL_elem', 0, '1011', 'long', true, DIFF.get(0b1101)!.op, true],
  ['SQDMLAL_elem', 0, '0011', 'long', true, DIFF.get(0b1001)!.op, true],
  ['SQDMLSL_elem', 0, '0111', 'long', true, DIFF.get(0b1011)!.op, true],
];
const ELEM_NUM: Record<string, N3 | undefined> = {
  MUL_elem: (a, b) => Math.imul(a, b),
  MLA_elem: (a, b, d) => d + Math.imul(a, b),
  MLS_elem: (a, b, d) => d - Math.imul(a, b),
  SMULL_elem: nMul,
  UMULL_elem: nMul,
  SMLAL_elem: nMla,
  UMLAL_elem: nMla,
  SMLSL_elem: nMls,
  UMLSL_elem: nMls,
};
for (const [name, u, opc, shape, sgn, op, scal] of ELEMS) {
  P(`0 q ${u} 01111 ss l M mmmm ${opc} h 0 nnnnn ddddd`, name, (c, i) => {
    c.checkFp();
    const size = SZ(i);
    if (size !== 1 && size !== 2) undef(c, i);
    const q = QF(i);
    const e = 8 << size;
    const [idx, m] = elemIndex(i, size);
    const d = RD(i);
    const n = RN(i);
    const nm = ELEM_NUM[name];
    if (nm && (shape === 'same' || e === 16)) {
      if (shape === 'same') {
        const arr = e === 16 ? c.vU16 : c.vU32;
        const lg = LOG(e);
        const bv = arr[(m << lg) + idx];
        const nb = n << lg;
        const db = d << lg;
        const lanes = (q ? 128 : 64) / e;
        for (let k = 0; k < lanes; k++) arr[db + k] = nm(arr[nb + k], bv, arr[db + k]);
        if (!q) zeroHi(c, d);
      } else {
        const u16 = c.vU16;
        const u32 = c.vU32;
        let bv = u16[(m << 3) + idx];
        if (sgn) bv = sxn(bv, 16);
        const nb = (n << 3) + (q ? 4 : 0);
        for (let k = 0; k < 4; k++) {
          let a = u16[nb + k];
          if (sgn) a = sxn(a, 16);
          u32[128 + k] = nm(a, bv, u32[(d << 2) + k]);
        }
        for (let k = 0; k < 4; k++) u32[(d << 2) + k] = u32[128 + k];
      }
      return;
    }
    let b = gE(c, m, e, idx);
    if (shape === 'same') {
      const lanes = (q ? 128 : 64) / e;
      for (let k = 0; k < lanes; k++) sE(c, d, e, k, op(c, gE(c, n, e, k), b, gE(c, d, e, k), e));
      if (!q) zeroHi(c, d);
    } else {
      const lanes = 64 / e;
      if (sgn) b = SX(b, e);
      for (let k = 0; k < lanes; k++) {
        let a = gE(c, n, e, (q ? lanes : 0) + k);
        if (sgn) a = SX(a, e);
        tmp[k] = op(c, a, b, gE(c, d, 2 * e, k), 2 * e);
      }
      for (let k = 0; k < lanes; k++) sE(c, d, 2 * e, k, tmp[k]);
    }
  });
  if (scal)
    P(`01 ${u} 11111 ss l M mmmm ${opc} h 0 nnnnn ddddd`, `${name}_scalar`, (c, i) => {
      c.checkFp();
      const size = SZ(i);
      if (size !== 1 && size !== 2) undef(c, i);
      const e = 8 << size;
      const [idx, m] = elemIndex(i, size);
      const d = RD(i);
      const a = gE(c, RN(i), e, 0);
      const b = gE(c, m, e, idx);
      if (shape === 'same') {
        sE(c, d, e, 0, op(c, a, b, 0n, e));
        finish(c, d, e >> 3);
      } else {
        sE(c, d, 2 * e, 0, op(c, SX(a, e), SX(b, e), gE(c, d, 2 * e, 0), 2 * e));
        finish(c, d, e >> 2);
      }
    });
}

export { patterns, imm5Size, elemIndex, immhSize, IMMH, IMMHB, tmp };

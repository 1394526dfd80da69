// Floating-point arithmetic of the software CPU (scalar FP in insn/fp.ts and AdvSIMD in insn/simd.ts).
//
// Every operation follows the Arm ARM pseudocode (FPAdd, FPMul, FPMulAdd, FPDiv, FPSqrt, FPRoundInt,
// FPToFixed, FixedToFP, FPConvert, FPCompare, FPMax/Min/MaxNum/MinNum, FPProcessNaNs, FPRound): it honours
// FPCR (RMode, FZ, DN, AHP) and sets the FPSR cumulative flags (IOC, DZC, OFC, UFC, IXC, IDC).
//
// Operands and results live in the CPU's vector register file and are named by ELEMENT INDEX, so that NaN
// payloads survive bit-exactly (V8 may quiet a signalling NaN held in a JS number):
//   - double operations use indices into cpu.vF64 / pairs of cpu.vU32: V<n>.D[lane] is index 2*n + lane;
//   - single operations use indices into cpu.vF32 / cpu.vU32: V<n>.S[lane] is index 4*n + lane;
//   - half precision (conversions only) uses indices into cpu.vU16: V<n>.H[lane] is index 8*n + lane.
// The 16 scratch bytes at offset 512 are f64 indices 64..65, f32 indices 128..131, f16 indices 256..263:
// use them for temporaries (e.g. when a destination lane overlaps a source still needed).
// The destination may equal a source. These functions only write the destination element: zeroing the
// rest of a scalar destination register is the caller's job.
//
// Rounding modes are the FPRounding values below; RMode from FPCR is `(cpu.fpcr >>> 22) & 3`.

import type { Arm64Cpu } from './cpu.js';

// ---- FPCR / FPSR bits ----
export const FPCR_AHP = 1 << 26;
export const FPCR_DN = 1 << 25;
export const FPCR_FZ = 1 << 24;
export const FPCR_RMODE_SHIFT = 22;
export const FPSR_IOC = 1 << 0;
export const FPSR_DZC = 1 << 1;
export const FPSR_OFC = 1 << 2;
export const FPSR_UFC = 1 << 3;
export const FPSR_IXC = 1 << 4;
export const FPSR_IDC = 1 << 7;

// ---- FPRounding ----
export const RM_TIEEVEN = 0; // RN
export const RM_POSINF = 1; // RP
export const RM_NEGINF = 2; // RM
export const RM_ZERO = 3; // RZ
export const RM_TIEAWAY = 4; // FRINTA, FCVTA*
export const RM_ODD = 5; // FCVTXN

/** The rounding mode selected by FPCR.RMode. */
export const fpcrRounding = (cpu: Arm64Cpu): number => (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3;

/** High 32 bits of the last 64-bit integer result of fpToFixed32/fpToFixed64 (the return value is the low half). */
export const fixOut = { hi: 0 };

// =====================================================================================================
// Arithmetic. d, n, m, a: element indices (see above).
// =====================================================================================================

/** V[d] = FPAdd(V[n], V[m]). */
export function fpAdd64(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  addSub64(cpu, d, n, m, false);
}
export function fpAdd32(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  addSub32(cpu, d, n, m, false);
}
/** V[d] = FPSub(V[n], V[m]). */
export function fpSub64(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  addSub64(cpu, d, n, m, true);
}
export function fpSub32(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  addSub32(cpu, d, n, m, true);
}
/** V[d] = FPMul(V[n], V[m]); negate: FNMUL = FPNeg(FPMul()) (the result is negated, a NaN result included). */
export function fpMul64(cpu: Arm64Cpu, d: number, n: number, m: number, negate = false): void {
  mul64(cpu, d, n, m, negate, false);
}
export function fpMul32(cpu: Arm64Cpu, d: number, n: number, m: number, negate = false): void {
  mul32(cpu, d, n, m, negate, false);
}
/** V[d] = FPMulX(V[n], V[m]) (AdvSIMD FMULX: 0 * inf = 2.0 with the XOR sign). */
export function fpMulX64(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  mul64(cpu, d, n, m, false, true);
}
export function fpMulX32(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  mul32(cpu, d, n, m, false, true);
}
/** V[d] = FPDiv(V[n], V[m]). */
export function fpDiv64(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  div64(cpu, d, n, m);
}
export function fpDiv32(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  div32(cpu, d, n, m);
}
/**
 * V[d] = FPMulAdd(addend = ±V[a], op1 = ±V[n], op2 = V[m]): a fused multiply-add, rounded once.
 * negA / negN negate the operand first (sign bit flip, also of NaNs), as FMSUB/FNMADD/FNMSUB/FMLS do:
 * FMADD: (a, n, m); FMSUB: negN; FNMADD: negA + negN; FNMSUB: negA.
 */
export function fpMulAdd64(
  cpu: Arm64Cpu,
  d: number,
  a: number,
  n: number,
  m: number,
  negA = false,
  negN = false,
): void {
  mulAdd64(cpu, d, a, n, m, negA, negN);
}
export function fpMulAdd32(
  cpu: Arm64Cpu,
  d: number,
  a: number,
  n: number,
  m: number,
  negA = false,
  negN = false,
): void {
  mulAdd32(cpu, d, a, n, m, negA, negN);
}
/** V[d] = FPSqrt(V[n]). */
export function fpSqrt64(cpu: Arm64Cpu, d: number, n: number): void {
  sqrt64(cpu, d, n);
}
export function fpSqrt32(cpu: Arm64Cpu, d: number, n: number): void {
  sqrt32(cpu, d, n);
}
/** FPMax / FPMin / FPMaxNum / FPMinNum. op: 0 = max, 1 = min, 2 = maxnum, 3 = minnum. */
export function fpMinMax64(cpu: Arm64Cpu, d: number, n: number, m: number, op: number): void {
  minMax64(cpu, d, n, m, op);
}
export function fpMinMax32(cpu: Arm64Cpu, d: number, n: number, m: number, op: number): void {
  minMax32(cpu, d, n, m, op);
}
/** V[d] = FPRoundInt(V[n], rounding, exact) (FRINT*: exact = FRINTX, which signals Inexact). */
export function fpRoundInt64(cpu: Arm64Cpu, d: number, n: number, rounding: number, exact: boolean): void {
  roundInt64(cpu, d, n, rounding, exact);
}
export function fpRoundInt32(cpu: Arm64Cpu, d: number, n: number, rounding: number, exact: boolean): void {
  roundInt32(cpu, d, n, rounding, exact);
}

/** V[d] = FPRecipStepFused(V[n], V[m]) = 2 - n*m, fused (FRECPS). */
export function fpRecipStep64(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  stepFused64(cpu, d, n, m, false);
}
export function fpRecipStep32(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  stepFused32(cpu, d, n, m, false);
}
/** V[d] = FPRSqrtStepFused(V[n], V[m]) = (3 - n*m) / 2, fused (FRSQRTS). */
export function fpRSqrtStep64(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  stepFused64(cpu, d, n, m, true);
}
export function fpRSqrtStep32(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  stepFused32(cpu, d, n, m, true);
}
/** V[d] = FPRecipEstimate(V[n]) (FRECPE). */
export function fpRecipEstimate64(cpu: Arm64Cpu, d: number, n: number): void {
  recipEstimate(cpu, d, n, 64);
}
export function fpRecipEstimate32(cpu: Arm64Cpu, d: number, n: number): void {
  recipEstimate(cpu, d, n, 32);
}
/** V[d] = FPRSqrtEstimate(V[n]) (FRSQRTE). */
export function fpRSqrtEstimate64(cpu: Arm64Cpu, d: number, n: number): void {
  rsqrtEstimate(cpu, d, n, 64);
}
export function fpRSqrtEstimate32(cpu: Arm64Cpu, d: number, n: number): void {
  rsqrtEstimate(cpu, d, n, 32);
}
/** V[d] = FPRecpX(V[n]) (FRECPX). */
export function fpRecpX64(cpu: Arm64Cpu, d: number, n: number): void {
  recpX(cpu, d, n, 64);
}
export function fpRecpX32(cpu: Arm64Cpu, d: number, n: number): void {
  recpX(cpu, d, n, 32);
}

// =====================================================================================================
// Comparisons
// =====================================================================================================

/** FPCompare(V[n], V[m], signalAllNaNs): returns NZCV as a 4-bit value (unordered = 0b0011). */
export function fpCompare64(cpu: Arm64Cpu, n: number, m: number, signalAll: boolean): number {
  return compare64(cpu, n, m, signalAll);
}
export function fpCompare32(cpu: Arm64Cpu, n: number, m: number, signalAll: boolean): number {
  return compare32(cpu, n, m, signalAll);
}
/** FPCompareEQ / GE / GT for AdvSIMD FCMEQ/FCMGE/FCMGT/FACGE/FACGT. kind: 0 = EQ, 1 = GE, 2 = GT. */
export function fpCompareCond64(cpu: Arm64Cpu, n: number, m: number, kind: number): boolean {
  return compareCond64(cpu, n, m, kind);
}
export function fpCompareCond32(cpu: Arm64Cpu, n: number, m: number, kind: number): boolean {
  return compareCond32(cpu, n, m, kind);
}

// =====================================================================================================
// Conversions
// =====================================================================================================

/**
 * FPToFixed(V[n], fbits, unsigned, rounding) to a 32-bit (size 32) or 64-bit (size 64) integer, saturating
 * with IOC. Returns the low 32 bits (as int32); for size 64 the high half is in fixOut.hi.
 */
export function fpToFixed64(
  cpu: Arm64Cpu,
  n: number,
  fbits: number,
  unsigned: boolean,
  rounding: number,
  size: number,
): number {
  return toFixed(cpu, readF64(cpu, n), fbits, unsigned, rounding, size);
}
export function fpToFixed32(
  cpu: Arm64Cpu,
  n: number,
  fbits: number,
  unsigned: boolean,
  rounding: number,
  size: number,
): number {
  return toFixed(cpu, readF32(cpu, n), fbits, unsigned, rounding, size);
}
/**
 * V[d] = FixedToFP(integer, fbits, unsigned, FPCR rounding). The integer is lo/hi halves of a 64-bit value;
 * for a 32-bit source pass hi = lo >> 31 (signed) or 0 (unsigned).
 */
export function fixedToFp64(
  cpu: Arm64Cpu,
  d: number,
  lo: number,
  hi: number,
  fbits: number,
  unsigned: boolean,
): void {
  fromFixed64(cpu, d, lo, hi, fbits, unsigned);
}
export function fixedToFp32(
  cpu: Arm64Cpu,
  d: number,
  lo: number,
  hi: number,
  fbits: number,
  unsigned: boolean,
): void {
  fromFixed32(cpu, d, lo, hi, fbits, unsigned);
}
/** FPConvert single V[n] (f32 index) to double V[d] (f64 index). */
export function fpCvtSD(cpu: Arm64Cpu, d: number, n: number): void {
  cvtSD(cpu, d, n);
}
/** FPConvert double V[n] to single V[d]; rounding defaults to FPCR (pass RM_ODD for FCVTXN). */
export function fpCvtDS(cpu: Arm64Cpu, d: number, n: number, rounding = -1): void {
  cvtDS(cpu, d, n, rounding);
}
/** FPConvert half V[n] (f16 index) to single (f32 index) / double (f64 index), honouring FPCR.AHP. */
export function fpCvtHS(cpu: Arm64Cpu, d: number, n: number): void {
  cvtHalfTo(cpu, d, n, 32);
}
export function fpCvtHD(cpu: Arm64Cpu, d: number, n: number): void {
  cvtHalfTo(cpu, d, n, 64);
}
/** FPConvert single / double V[n] to half V[d] (f16 index), honouring FPCR.AHP. */
export function fpCvtSH(cpu: Arm64Cpu, d: number, n: number): void {
  cvtToHalf(cpu, d, readF32(cpu, n), n, 32);
}
export function fpCvtDH(cpu: Arm64Cpu, d: number, n: number): void {
  cvtToHalf(cpu, d, readF64(cpu, n), n, 64);
}

// =====================================================================================================
// Implementation
// =====================================================================================================
//
// Results are computed with JS doubles (which round to nearest-even) together with the sign of the exact
// rounding error (TwoSum / Dekker TwoProduct, or a residual for division and square root). From a double
// d = RN(x) and sign(x - d) every rounding mode, Inexact, Underflow and Overflow follow exactly:
//   - single (and half) results: every single-precision value and midpoint is a double, so rounding x to
//     single is decided by d and the error sign (roundSmall, the FPRound pseudocode on doubles);
//   - double results: when d is a normal number it is adjusted by one ulp in the directed modes
//     (finish64); the rare other cases (overflow, tiny results, operands whose product error is not
//     representable) go through an exact BigInt path (roundBig64).

const scF = new Float64Array(1);
const scU = new Uint32Array(scF.buffer);

const P2O = 1100;
const P2 = new Float64Array(2200);
{
  let v = 1;
  for (let k = 0; k <= 1023; k++, v *= 2) P2[k + P2O] = v;
  v = 1;
  for (let k = 0; k >= -1074; k--, v /= 2) P2[k + P2O] = v;
}
/** 2^k for k in [-1074, 1023]. */
const pow2 = (k: number): number => P2[k + P2O];

const MIN64 = pow2(-1022);
const MIN32 = pow2(-126);
const LO_OK = pow2(-968); // products at least this large have a representable TwoProduct error
const HI_OK = pow2(995); // operands below this split without overflow
const SPLIT = 134217729; // 2^27 + 1
const TWO32 = 4294967296;

const isInf = (v: number): boolean => v === Infinity || v === -Infinity;
/** Sign of a number, zeros included (true = negative). */
const negative = (v: number): boolean => v < 0 || (v === 0 && 1 / v < 0);

/** Error of the product: a*b = p + result exactly (no overflow, |p| >= LO_OK, |a|,|b| < HI_OK). */
function twoProdErr(a: number, b: number, p: number): number {
  let c = SPLIT * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = SPLIT * b;
  const bh = c - (c - b);
  const bl = b - bh;
  return ah * bh - p + ah * bl + al * bh + al * bl;
}

function flush64(cpu: Arm64Cpu, v: number): number {
  if (v !== 0 && v > -MIN64 && v < MIN64) {
    cpu.fpsr |= FPSR_IDC;
    return v < 0 ? -0 : 0;
  }
  return v;
}
function flush32(cpu: Arm64Cpu, v: number): number {
  if (v !== 0 && v > -MIN32 && v < MIN32) {
    cpu.fpsr |= FPSR_IDC;
    return v < 0 ? -0 : 0;
  }
  return v;
}
function readF64(cpu: Arm64Cpu, n: number): number {
  const v = cpu.vF64[n];
  return cpu.fpcr & FPCR_FZ ? flush64(cpu, v) : v;
}
function readF32(cpu: Arm64Cpu, n: number): number {
  const v = cpu.vF32[n];
  return cpu.fpcr & FPCR_FZ ? flush32(cpu, v) : v;
}

// ---- NaNs ----

const QUIET64 = 0x00080000; // in the high word
const QUIET32 = 0x00400000;
const SIGN = 0x80000000;

function defaultNaN64(cpu: Arm64Cpu, d: number): void {
  cpu.vU32[2 * d] = 0;
  cpu.vU32[2 * d + 1] = 0x7ff80000;
}
function defaultNaN32(cpu: Arm64Cpu, d: number): void {
  cpu.vU32[d] = 0x7fc00000;
}
const isSNaN64 = (cpu: Arm64Cpu, i: number, v: number): boolean =>
  v !== v && (cpu.vU32[2 * i + 1] & QUIET64) === 0;
const isSNaN32 = (cpu: Arm64Cpu, i: number, v: number): boolean => v !== v && (cpu.vU32[i] & QUIET32) === 0;

/** FPProcessNaN of element src (a NaN; flip = SIGN negates it first) into d. */
function nanOut64(cpu: Arm64Cpu, d: number, src: number, flip: number): void {
  const u = cpu.vU32;
  let lo = u[2 * src];
  let hi = (u[2 * src + 1] ^ flip) >>> 0;
  if ((hi & QUIET64) === 0) cpu.fpsr |= FPSR_IOC;
  if (cpu.fpcr & FPCR_DN) {
    lo = 0;
    hi = 0x7ff80000;
  } else hi |= QUIET64;
  u[2 * d] = lo;
  u[2 * d + 1] = hi;
}
function nanOut32(cpu: Arm64Cpu, d: number, src: number, flip: number): void {
  const u = cpu.vU32;
  let b = (u[src] ^ flip) >>> 0;
  if ((b & QUIET32) === 0) cpu.fpsr |= FPSR_IOC;
  if (cpu.fpcr & FPCR_DN) b = 0x7fc00000;
  else b |= QUIET32;
  u[d] = b;
}
/** FPProcessNaNs(op1 = V[n] (value a), op2 = V[m] (value b)); at least one is a NaN. */
function nan2_64(cpu: Arm64Cpu, d: number, n: number, a: number, m: number, b: number): void {
  if (isSNaN64(cpu, n, a)) nanOut64(cpu, d, n, 0);
  else if (isSNaN64(cpu, m, b)) nanOut64(cpu, d, m, 0);
  else if (a !== a) nanOut64(cpu, d, n, 0);
  else nanOut64(cpu, d, m, 0);
}
function nan2_32(cpu: Arm64Cpu, d: number, n: number, a: number, m: number, b: number): void {
  if (isSNaN32(cpu, n, a)) nanOut32(cpu, d, n, 0);
  else if (isSNaN32(cpu, m, b)) nanOut32(cpu, d, m, 0);
  else if (a !== a) nanOut32(cpu, d, n, 0);
  else nanOut32(cpu, d, m, 0);
}

// ---- rounding ----

/** Magnitude of a finite nonzero double moved by one ulp (dir = +1 away from zero, -1 toward zero). */
function bumpMag(x: number, dir: number): number {
  scF[0] = x;
  let lo = scU[0];
  let hi = scU[1];
  if (dir > 0) {
    lo = (lo + 1) >>> 0;
    if (lo === 0) hi = (hi + 1) >>> 0;
  } else {
    if (lo === 0) hi = (hi - 1) >>> 0;
    lo = (lo - 1) >>> 0;
  }
  scU[0] = lo;
  scU[1] = hi;
  return scF[0];
}

/**
 * Store the double result whose exact value is x + (tiny error of sign `err`) with x = RN(exact).
 * Returns false when the fast path cannot decide (overflow, tiny results): use roundBig64 then.
 */
function finish64(cpu: Arm64Cpu, d: number, x: number, err: number): boolean {
  if (isInf(x)) return false;
  const ax = x < 0 ? -x : x;
  if (err === 0) {
    if (ax < MIN64 && ax !== 0 && cpu.fpcr & FPCR_FZ) {
      cpu.fpsr |= FPSR_UFC;
      x = x < 0 ? -0 : 0;
    }
    cpu.vF64[d] = x;
    return true;
  }
  const errMag = err > 0 === x > 0 ? 1 : -1;
  if (ax < MIN64 || (ax === MIN64 && errMag < 0)) return false;
  cpu.fpsr |= FPSR_IXC;
  const rm = (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3;
  if (rm !== RM_TIEEVEN) {
    const away = rm === RM_POSINF ? x > 0 : rm === RM_NEGINF ? x < 0 : false;
    if (errMag > 0 && away) x = bumpMag(x, 1);
    else if (errMag < 0 && !away) x = bumpMag(x, -1);
    if (isInf(x)) cpu.fpsr |= FPSR_OFC;
  }
  cpu.vF64[d] = x;
  return true;
}

/**
 * The tail of FPRound: int_mant / biased_exp / error class (0 exact, 1 below half, 2 half, 3 above half)
 * to result bits for N = 16 or 32. Sets flags.
 */
function roundTail(
  cpu: Arm64Cpu,
  neg: boolean,
  biased: number,
  intMant: number,
  cls: number,
  N: number,
  rm: number,
  ahp: boolean,
): number {
  const F = N === 32 ? 23 : 10;
  const E = N === 32 ? 8 : 5;
  let error = cls !== 0;
  if (biased === 0 && error) cpu.fpsr |= FPSR_UFC;
  let up = false;
  let toInf = false;
  switch (rm) {
    case RM_TIEEVEN:
      up = cls === 3 || (cls === 2 && (intMant & 1) === 1);
      toInf = true;
      break;
    case RM_POSINF:
      up = error && !neg;
      toInf = !neg;
      break;
    case RM_NEGINF:
      up = error && neg;
      toInf = neg;
      break;
    case RM_TIEAWAY:
      up = cls >= 2;
      toInf = true;
      break;
  }
  if (up) {
    intMant++;
    if (intMant === 1 << F) biased = 1;
    if (intMant === 1 << (F + 1)) {
      biased++;
      intMant >>>= 1;
    }
  }
  if (error && rm === RM_ODD) intMant |= 1;
  const emax = (1 << E) - 1;
  let bits: number;
  if (!(N === 16 && ahp)) {
    if (biased >= emax) {
      bits = toInf ? emax << F : ((emax - 1) << F) | ((1 << F) - 1);
      cpu.fpsr |= FPSR_OFC;
      error = true;
    } else bits = (biased << F) | (intMant & ((1 << F) - 1));
  } else if (biased > emax) {
    bits = 0x7fff;
    cpu.fpsr |= FPSR_IOC;
    error = false;
  } else bits = (biased << F) | (intMant & ((1 << F) - 1));
  if (error) cpu.fpsr |= FPSR_IXC;
  if (neg) bits |= N === 32 ? SIGN : 0x8000;
  return bits >>> 0;
}

/**
 * FPRound to single (N = 32) or half (N = 16) of the exact value x + (tiny error of sign errSign), where x is
 * a finite nonzero double with x = RN(exact). Returns the result bits.
 */
function roundSmall(cpu: Arm64Cpu, x: number, errSign: number, N: number, rm: number): number {
  const F = N === 32 ? 23 : 10;
  const minExp = N === 32 ? -126 : -14;
  const neg = x < 0;
  let m = neg ? -x : x;
  if (neg) errSign = -errSign; // from here on: the error's direction relative to the magnitude
  if (m < 1e-90) {
    m = 1e-90; // far below half the smallest subnormal: rounds the same, and is a normal double
    errSign = 0;
  }
  scF[0] = m;
  let exponent = ((scU[1] >>> 20) & 0x7ff) - 1023;
  if (errSign < 0 && (scU[1] & 0xfffff) === 0 && scU[0] === 0) exponent--; // just below a power of two
  if (N === 32 && cpu.fpcr & FPCR_FZ && exponent < minExp) {
    cpu.fpsr |= FPSR_UFC;
    return neg ? SIGN : 0;
  }
  const biased = exponent - minExp + 1 > 0 ? exponent - minExp + 1 : 0;
  const unit = (biased === 0 ? minExp : exponent) - F;
  const y = m * pow2(-unit);
  let intMant = Math.floor(y);
  const frac = y - intMant;
  let cls: number;
  if (frac === 0) {
    if (errSign < 0) {
      intMant--;
      cls = 3;
    } else cls = errSign > 0 ? 1 : 0;
  } else if (frac < 0.5) cls = 1;
  else if (frac > 0.5) cls = 3;
  else cls = errSign > 0 ? 3 : errSign < 0 ? 1 : 2;
  return roundTail(cpu, neg, biased, intMant, cls, N, rm, (cpu.fpcr & FPCR_AHP) !== 0);
}

/** Store a single result: exact value x + (tiny error of sign errSign), x = RN53(exact) nonzero. */
function finish32(cpu: Arm64Cpu, d: number, x: number, errSign: number): void {
  const r = Math.fround(x);
  const ar = r < 0 ? -r : r;
  if (ar > MIN32 && ar !== Infinity) {
    const rn = (cpu.fpcr & (3 << FPCR_RMODE_SHIFT)) === 0;
    if (r === x) {
      if (errSign === 0 || rn) {
        if (errSign !== 0) cpu.fpsr |= FPSR_IXC;
        cpu.vF32[d] = r;
        return;
      }
    } else if (rn) {
      // Math.fround rounds x once more; that differs from rounding the exact value only when x is a
      // midpoint between two singles, i.e. when 2x - r is the other neighbour.
      const t = x + (x - r);
      if (Math.fround(t) !== t) {
        cpu.fpsr |= FPSR_IXC;
        cpu.vF32[d] = r;
        return;
      }
    }
  }
  cpu.vU32[d] = roundSmall(cpu, x, errSign, 32, (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3);
}

// ---- exact (BigInt) slow path for double results ----

/** A finite double as M * 2^E with M a signed BigInt. */
function dec64(v: number): [bigint, number] {
  scF[0] = v;
  const hi = scU[1];
  const e = (hi >>> 20) & 0x7ff;
  let M = (BigInt(hi & 0xfffff) << 32n) | BigInt(scU[0]);
  if (e !== 0) M |= 1n << 52n;
  if (hi & SIGN) M = -M;
  return [M, (e === 0 ? 1 : e) - 1075];
}
const bitLen = (M: bigint): number => M.toString(2).length;

/** FPRound of the exact value M * 2^E (M != 0; an odd last bit may stand for a sticky remainder) to V[d]. */
function roundBig64(cpu: Arm64Cpu, d: number, M: bigint, E: number, rm: number): void {
  const neg = M < 0n;
  if (neg) M = -M;
  const F = 52;
  const minExp = -1022;
  const exponent = E + bitLen(M) - 1;
  if (cpu.fpcr & FPCR_FZ && exponent < minExp) {
    cpu.fpsr |= FPSR_UFC;
    cpu.vF64[d] = neg ? -0 : 0;
    return;
  }
  let biased = exponent - minExp + 1 > 0 ? exponent - minExp + 1 : 0;
  const unit = (biased === 0 ? minExp : exponent) - F;
  const sh = unit - E;
  let intMant: number;
  let cls = 0;
  if (sh <= 0) intMant = Number(M << BigInt(-sh));
  else {
    const q = M >> BigInt(sh);
    const r = M - (q << BigInt(sh));
    const half = 1n << BigInt(sh - 1);
    intMant = Number(q);
    cls = r === 0n ? 0 : r < half ? 1 : r === half ? 2 : 3;
  }
  let error = cls !== 0;
  if (biased === 0 && error) cpu.fpsr |= FPSR_UFC;
  let up = false;
  let toInf = false;
  switch (rm) {
    case RM_TIEEVEN:
      up = cls === 3 || (cls === 2 && intMant % 2 === 1);
      toInf = true;
      break;
    case RM_POSINF:
      up = error && !neg;
      toInf = !neg;
      break;
    case RM_NEGINF:
      up = error && neg;
      toInf = neg;
      break;
    case RM_TIEAWAY:
      up = cls >= 2;
      toInf = true;
      break;
  }
  if (up) {
    intMant++;
    if (intMant === 2 ** F) biased = 1;
    if (intMant === 2 ** (F + 1)) {
      biased++;
      intMant /= 2;
    }
  }
  if (error && rm === RM_ODD && intMant % 2 === 0) intMant++;
  let r: number;
  if (biased >= 2047) {
    r = toInf ? Infinity : Number.MAX_VALUE;
    cpu.fpsr |= FPSR_OFC;
    error = true;
  } else r = biased === 0 ? intMant * pow2(-1074) : intMant * pow2(biased - 1023 - F);
  if (error) cpu.fpsr |= FPSR_IXC;
  cpu.vF64[d] = neg ? -r : r;
}

/** Exact a + b (finite, nonzero sum) rounded to V[d]. */
function slowAdd64(cpu: Arm64Cpu, d: number, a: number, b: number): void {
  const [Ma, Ea] = dec64(a);
  const [Mb, Eb] = dec64(b);
  const E = Ea < Eb ? Ea : Eb;
  const M = (Ma << BigInt(Ea - E)) + (Mb << BigInt(Eb - E));
  if (M === 0n) cpu.vF64[d] = ((cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3) === RM_NEGINF ? -0 : 0;
  else roundBig64(cpu, d, M, E, (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  x += (x >> 40n) + 2n;
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

// ---- operations ----

function addCore64(cpu: Arm64Cpu, d: number, a: number, b: number): void {
  const f = cpu.vF64;
  const ia = isInf(a);
  const ib = isInf(b);
  if (ia || ib) {
    if (ia && ib && a !== b) {
      cpu.fpsr |= FPSR_IOC;
      defaultNaN64(cpu, d);
    } else f[d] = ia ? a : b;
    return;
  }
  const rmNeg = ((cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3) === RM_NEGINF;
  if (a === 0 && b === 0) {
    f[d] = negative(a) === negative(b) ? a : rmNeg ? -0 : 0;
    return;
  }
  const s = a + b;
  if (s === 0) {
    f[d] = rmNeg ? -0 : 0;
    return;
  }
  if (!isInf(s)) {
    const bb = s - a;
    const err = a - (s - bb) + (b - bb);
    if (finish64(cpu, d, s, err)) return;
  }
  slowAdd64(cpu, d, a, b);
}

function addSub64(cpu: Arm64Cpu, d: number, n: number, m: number, sub: boolean): void {
  const f = cpu.vF64;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush64(cpu, a);
    b = flush64(cpu, b);
  }
  if (a !== a || b !== b) return nan2_64(cpu, d, n, a, m, b);
  addCore64(cpu, d, a, sub ? -b : b);
}

function addCore32(cpu: Arm64Cpu, d: number, a: number, b: number): void {
  const ia = isInf(a);
  const ib = isInf(b);
  if (ia || ib) {
    if (ia && ib && a !== b) {
      cpu.fpsr |= FPSR_IOC;
      defaultNaN32(cpu, d);
    } else cpu.vF32[d] = ia ? a : b;
    return;
  }
  const rmNeg = ((cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3) === RM_NEGINF;
  if (a === 0 && b === 0) {
    cpu.vF32[d] = negative(a) === negative(b) ? a : rmNeg ? -0 : 0;
    return;
  }
  const s = a + b;
  if (s === 0) {
    cpu.vF32[d] = rmNeg ? -0 : 0;
    return;
  }
  const bb = s - a;
  const err = a - (s - bb) + (b - bb);
  finish32(cpu, d, s, err);
}

function addSub32(cpu: Arm64Cpu, d: number, n: number, m: number, sub: boolean): void {
  const f = cpu.vF32;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush32(cpu, a);
    b = flush32(cpu, b);
  }
  if (a !== a || b !== b) return nan2_32(cpu, d, n, a, m, b);
  addCore32(cpu, d, a, sub ? -b : b);
}

function mul64(cpu: Arm64Cpu, d: number, n: number, m: number, negate: boolean, mulx: boolean): void {
  const f = cpu.vF64;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush64(cpu, a);
    b = flush64(cpu, b);
  }
  if (a !== a || b !== b) nan2_64(cpu, d, n, a, m, b);
  else {
    const ia = isInf(a);
    const ib = isInf(b);
    const sgn = negative(a) !== negative(b);
    if ((ia && b === 0) || (a === 0 && ib)) {
      if (mulx) f[d] = sgn ? -2 : 2;
      else {
        cpu.fpsr |= FPSR_IOC;
        defaultNaN64(cpu, d);
      }
    } else if (ia || ib) f[d] = sgn ? -Infinity : Infinity;
    else if (a === 0 || b === 0) f[d] = sgn ? -0 : 0;
    else {
      const p = a * b;
      const ap = p < 0 ? -p : p;
      if (!(
        ap >= LO_OK &&
        ap < HI_OK &&
        a < HI_OK &&
        a > -HI_OK &&
        b < HI_OK &&
        b > -HI_OK &&
        finish64(cpu, d, p, twoProdErr(a, b, p))
      )) {
        const [Ma, Ea] = dec64(a);
        const [Mb, Eb] = dec64(b);
        roundBig64(cpu, d, Ma * Mb, Ea + Eb, (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3);
      }
    }
  }
  if (negate) cpu.vU32[2 * d + 1] ^= SIGN;
}

function mul32(cpu: Arm64Cpu, d: number, n: number, m: number, negate: boolean, mulx: boolean): void {
  const f = cpu.vF32;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush32(cpu, a);
    b = flush32(cpu, b);
  }
  if (a !== a || b !== b) nan2_32(cpu, d, n, a, m, b);
  else {
    const ia = isInf(a);
    const ib = isInf(b);
    const sgn = negative(a) !== negative(b);
    if ((ia && b === 0) || (a === 0 && ib)) {
      if (mulx) f[d] = sgn ? -2 : 2;
      else {
        cpu.fpsr |= FPSR_IOC;
        defaultNaN32(cpu, d);
      }
    } else if (ia || ib) f[d] = sgn ? -Infinity : Infinity;
    else if (a === 0 || b === 0) f[d] = sgn ? -0 : 0;
    else finish32(cpu, d, a * b, 0); // exact in double
  }
  if (negate) cpu.vU32[d] ^= SIGN;
}

function div64(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  const f = cpu.vF64;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush64(cpu, a);
    b = flush64(cpu, b);
  }
  if (a !== a || b !== b) return nan2_64(cpu, d, n, a, m, b);
  const ia = isInf(a);
  const ib = isInf(b);
  const sgn = negative(a) !== negative(b);
  if ((ia && ib) || (a === 0 && b === 0)) {
    cpu.fpsr |= FPSR_IOC;
    defaultNaN64(cpu, d);
  } else if (ia || b === 0) {
    f[d] = sgn ? -Infinity : Infinity;
    if (!ia) cpu.fpsr |= FPSR_DZC;
  } else if (a === 0 || ib) f[d] = sgn ? -0 : 0;
  else {
    const q = a / b;
    const aa = a < 0 ? -a : a;
    const ab = b < 0 ? -b : b;
    const aq = q < 0 ? -q : q;
    if (aa >= LO_OK && aa < HI_OK && ab < HI_OK && aq >= MIN64 && aq < HI_OK) {
      const ph = q * b;
      const r = a - ph - twoProdErr(q, b, ph);
      if (finish64(cpu, d, q, r === 0 ? 0 : r > 0 === b > 0 ? 1 : -1)) return;
    }
    const [Ma0, Ea] = dec64(aa);
    const [Mb, Eb] = dec64(ab);
    const k = Math.max(0, 64 + bitLen(Mb) - bitLen(Ma0));
    const N = Ma0 << BigInt(k);
    const qq = N / Mb;
    let M = (qq << 1n) | (N % Mb === 0n ? 0n : 1n);
    if (sgn) M = -M;
    roundBig64(cpu, d, M, Ea - k - Eb - 1, (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3);
  }
}

function div32(cpu: Arm64Cpu, d: number, n: number, m: number): void {
  const f = cpu.vF32;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush32(cpu, a);
    b = flush32(cpu, b);
  }
  if (a !== a || b !== b) return nan2_32(cpu, d, n, a, m, b);
  const ia = isInf(a);
  const ib = isInf(b);
  const sgn = negative(a) !== negative(b);
  if ((ia && ib) || (a === 0 && b === 0)) {
    cpu.fpsr |= FPSR_IOC;
    defaultNaN32(cpu, d);
  } else if (ia || b === 0) {
    f[d] = sgn ? -Infinity : Infinity;
    if (!ia) cpu.fpsr |= FPSR_DZC;
  } else if (a === 0 || ib) f[d] = sgn ? -0 : 0;
  else {
    const q = a / b;
    const ph = q * b;
    const r = a - ph - twoProdErr(q, b, ph);
    finish32(cpu, d, q, r === 0 ? 0 : r > 0 === b > 0 ? 1 : -1);
  }
}

function sqrt64(cpu: Arm64Cpu, d: number, n: number): void {
  const f = cpu.vF64;
  const a = readF64(cpu, n);
  if (a !== a) return nanOut64(cpu, d, n, 0);
  if (a === 0 || a === Infinity) f[d] = a;
  else if (a < 0) {
    cpu.fpsr |= FPSR_IOC;
    defaultNaN64(cpu, d);
  } else {
    const s = Math.sqrt(a);
    if (a >= LO_OK && a < HI_OK) {
      const ps = s * s;
      const r = a - ps - twoProdErr(s, s, ps);
      if (finish64(cpu, d, s, r === 0 ? 0 : r > 0 ? 1 : -1)) return;
    }
    const [Ma, Ea] = dec64(a);
    let k = Math.max(0, 120 - bitLen(Ma));
    if ((Ea - k) & 1) k++;
    const N = Ma << BigInt(k);
    const root = isqrt(N);
    const M = (root << 1n) | (root * root === N ? 0n : 1n);
    roundBig64(cpu, d, M, (Ea - k) / 2 - 1, (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3);
  }
}

function sqrt32(cpu: Arm64Cpu, d: number, n: number): void {
  const a = readF32(cpu, n);
  if (a !== a) return nanOut32(cpu, d, n, 0);
  if (a === 0 || a === Infinity) cpu.vF32[d] = a;
  else if (a < 0) {
    cpu.fpsr |= FPSR_IOC;
    defaultNaN32(cpu, d);
  } else {
    const s = Math.sqrt(a);
    const ps = s * s;
    const r = a - ps - twoProdErr(s, s, ps);
    finish32(cpu, d, s, r === 0 ? 0 : r > 0 ? 1 : -1);
  }
}

function mulAdd64(
  cpu: Arm64Cpu,
  d: number,
  ai: number,
  n: number,
  m: number,
  negA: boolean,
  negN: boolean,
): void {
  const f = cpu.vF64;
  let c = f[ai];
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    c = flush64(cpu, c);
    a = flush64(cpu, a);
    b = flush64(cpu, b);
  }
  if (negA) c = -c;
  if (negN) a = -a;
  const ia = isInf(a);
  const ib = isInf(b);
  if (c !== c || a !== a || b !== b) {
    const fa = negA ? SIGN : 0;
    const fn = negN ? SIGN : 0;
    if (isSNaN64(cpu, ai, c)) nanOut64(cpu, d, ai, fa);
    else if (isSNaN64(cpu, n, a)) nanOut64(cpu, d, n, fn);
    else if (isSNaN64(cpu, m, b)) nanOut64(cpu, d, m, 0);
    else if (c !== c) {
      const invalid = (ia && b === 0) || (a === 0 && ib);
      nanOut64(cpu, d, ai, fa);
      if (invalid) {
        cpu.fpsr |= FPSR_IOC;
        defaultNaN64(cpu, d);
      }
    } else if (a !== a) nanOut64(cpu, d, n, fn);
    else nanOut64(cpu, d, m, 0);
    return;
  }
  const ic = isInf(c);
  const sp = negative(a) !== negative(b);
  const ip = ia || ib;
  if ((ia && b === 0) || (a === 0 && ib) || (ic && ip && negative(c) !== sp)) {
    cpu.fpsr |= FPSR_IOC;
    defaultNaN64(cpu, d);
    return;
  }
  if (ic) {
    f[d] = c;
    return;
  }
  if (ip) {
    f[d] = sp ? -Infinity : Infinity;
    return;
  }
  const rm = (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3;
  const zp = a === 0 || b === 0;
  if (zp) {
    if (c === 0) f[d] = negative(c) === sp ? c : rm === RM_NEGINF ? -0 : 0;
    else f[d] = c;
    return;
  }
  const p = a * b;
  const ap = p < 0 ? -p : p;
  if (ap >= LO_OK && ap < HI_OK && a < HI_OK && a > -HI_OK && b < HI_OK && b > -HI_OK) {
    const pl = twoProdErr(a, b, p);
    if (c === 0) {
      if (finish64(cpu, d, p, pl)) return;
    } else if (pl === 0) {
      const s = c + p;
      if (s === 0) {
        f[d] = rm === RM_NEGINF ? -0 : 0;
        return;
      }
      if (!isInf(s)) {
        const bb = s - c;
        if (finish64(cpu, d, s, c - (s - bb) + (p - bb))) return;
      }
    } else if (fma3(cpu, d, c, p, pl)) return;
  }
  const [Ma, Ea] = dec64(a);
  const [Mb, Eb] = dec64(b);
  const Mp = Ma * Mb;
  const Ep = Ea + Eb;
  let M = Mp;
  let E = Ep;
  if (c !== 0) {
    const [Mc, Ec] = dec64(c);
    E = Ep < Ec ? Ep : Ec;
    M = (Mp << BigInt(Ep - E)) + (Mc << BigInt(Ec - E));
  }
  if (M === 0n) f[d] = rm === RM_NEGINF ? -0 : 0;
  else roundBig64(cpu, d, M, E, rm);
}

/**
 * c + p + pl (p + pl the exact product) rounded once, when a double-double evaluation decides it:
 * s + e1 = c + p, t + e2 = e1 + pl, r + e3 = s + t (TwoSums), so exact = r + e3 + e2. When |e3 + e2| is
 * below half an ulp of r (on either side), r = RN(exact) and sign(e3 + e2) is the error's sign.
 */
function fma3(cpu: Arm64Cpu, d: number, c: number, p: number, pl: number): boolean {
  const s = c + p;
  if (isInf(s)) return false;
  let bb = s - c;
  const e1 = c - (s - bb) + (p - bb);
  const t = e1 + pl;
  bb = t - e1;
  const e2 = e1 - (t - bb) + (pl - bb);
  const r = s + t;
  if (r === 0 || isInf(r)) return false;
  bb = r - s;
  const e3 = s - (r - bb) + (t - bb);
  const e = e3 + e2;
  scF[0] = r;
  const ex = (scU[1] >>> 20) & 0x7ff;
  if (ex <= 1) return false;
  const pow2Mant = (scU[1] & 0xfffff) === 0 && scU[0] === 0;
  const halfLow = pow2(ex - 1075 - (pow2Mant ? 2 : 1));
  if (!(e < halfLow && e > -halfLow)) return false;
  return finish64(cpu, d, r, e);
}

function mulAdd32(
  cpu: Arm64Cpu,
  d: number,
  ai: number,
  n: number,
  m: number,
  negA: boolean,
  negN: boolean,
): void {
  const f = cpu.vF32;
  let c = f[ai];
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    c = flush32(cpu, c);
    a = flush32(cpu, a);
    b = flush32(cpu, b);
  }
  if (negA) c = -c;
  if (negN) a = -a;
  const ia = isInf(a);
  const ib = isInf(b);
  if (c !== c || a !== a || b !== b) {
    const fa = negA ? SIGN : 0;
    const fn = negN ? SIGN : 0;
    if (isSNaN32(cpu, ai, c)) nanOut32(cpu, d, ai, fa);
    else if (isSNaN32(cpu, n, a)) nanOut32(cpu, d, n, fn);
    else if (isSNaN32(cpu, m, b)) nanOut32(cpu, d, m, 0);
    else if (c !== c) {
      const invalid = (ia && b === 0) || (a === 0 && ib);
      nanOut32(cpu, d, ai, fa);
      if (invalid) {
        cpu.fpsr |= FPSR_IOC;
        defaultNaN32(cpu, d);
      }
    } else if (a !== a) nanOut32(cpu, d, n, fn);
    else nanOut32(cpu, d, m, 0);
    return;
  }
  const ic = isInf(c);
  const sp = negative(a) !== negative(b);
  const ip = ia || ib;
  if ((ia && b === 0) || (a === 0 && ib) || (ic && ip && negative(c) !== sp)) {
    cpu.fpsr |= FPSR_IOC;
    defaultNaN32(cpu, d);
    return;
  }
  if (ic) {
    f[d] = c;
    return;
  }
  if (ip) {
    f[d] = sp ? -Infinity : Infinity;
    return;
  }
  const rm = (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3;
  if (a === 0 || b === 0) {
    if (c === 0) f[d] = negative(c) === sp ? c : rm === RM_NEGINF ? -0 : 0;
    else f[d] = c;
    return;
  }
  const p = a * b; // exact
  const s = c + p;
  if (s === 0) {
    f[d] = rm === RM_NEGINF ? -0 : 0;
    return;
  }
  const bb = s - c;
  finish32(cpu, d, s, c - (s - bb) + (p - bb));
}

function minMax64(cpu: Arm64Cpu, d: number, n: number, m: number, op: number): void {
  const f = cpu.vF64;
  let a = f[n];
  let b = f[m];
  if (op >= 2) {
    const aq = a !== a && !isSNaN64(cpu, n, a);
    const bq = b !== b && !isSNaN64(cpu, m, b);
    if (aq && !bq) a = op === 2 ? -Infinity : Infinity;
    else if (bq && !aq) b = op === 2 ? -Infinity : Infinity;
  }
  if (cpu.fpcr & FPCR_FZ) {
    a = flush64(cpu, a);
    b = flush64(cpu, b);
  }
  if (a !== a || b !== b) return nan2_64(cpu, d, n, a, m, b);
  const max = (op & 1) === 0;
  if (a === 0 && b === 0) f[d] = negative(a) === negative(b) ? a : max ? 0 : -0;
  else f[d] = max ? (a > b ? a : b) : a < b ? a : b;
}

function minMax32(cpu: Arm64Cpu, d: number, n: number, m: number, op: number): void {
  const f = cpu.vF32;
  let a = f[n];
  let b = f[m];
  if (op >= 2) {
    const aq = a !== a && !isSNaN32(cpu, n, a);
    const bq = b !== b && !isSNaN32(cpu, m, b);
    if (aq && !bq) a = op === 2 ? -Infinity : Infinity;
    else if (bq && !aq) b = op === 2 ? -Infinity : Infinity;
  }
  if (cpu.fpcr & FPCR_FZ) {
    a = flush32(cpu, a);
    b = flush32(cpu, b);
  }
  if (a !== a || b !== b) return nan2_32(cpu, d, n, a, m, b);
  const max = (op & 1) === 0;
  if (a === 0 && b === 0) f[d] = negative(a) === negative(b) ? a : max ? 0 : -0;
  else f[d] = max ? (a > b ? a : b) : a < b ? a : b;
}

/** Round a finite value to an integral value (FPRoundInt / FPToFixed core). Sets rdErr = value - floor. */
let rdErr = 0;
function roundToIntegral(v: number, rounding: number): number {
  const fl = Math.floor(v);
  const err = v - fl;
  rdErr = err;
  let up = false;
  switch (rounding) {
    case RM_TIEEVEN:
      up = err > 0.5 || (err === 0.5 && fl % 2 !== 0);
      break;
    case RM_POSINF:
      up = err !== 0;
      break;
    case RM_ZERO:
      up = err !== 0 && fl < 0;
      break;
    case RM_TIEAWAY:
      up = err > 0.5 || (err === 0.5 && fl >= 0);
      break;
  }
  return up ? fl + 1 : fl;
}

function roundInt64(cpu: Arm64Cpu, d: number, n: number, rounding: number, exact: boolean): void {
  const a = readF64(cpu, n);
  if (a !== a) return nanOut64(cpu, d, n, 0);
  if (a === 0 || isInf(a)) {
    cpu.vF64[d] = a;
    return;
  }
  let r = roundToIntegral(a, rounding);
  if (r === 0) r = a < 0 ? -0 : 0;
  if (exact && rdErr !== 0) cpu.fpsr |= FPSR_IXC;
  cpu.vF64[d] = r;
}

function roundInt32(cpu: Arm64Cpu, d: number, n: number, rounding: number, exact: boolean): void {
  const a = readF32(cpu, n);
  if (a !== a) return nanOut32(cpu, d, n, 0);
  if (a === 0 || isInf(a)) {
    cpu.vF32[d] = a;
    return;
  }
  let r = roundToIntegral(a, rounding);
  if (r === 0) r = a < 0 ? -0 : 0;
  if (exact && rdErr !== 0) cpu.fpsr |= FPSR_IXC;
  cpu.vF32[d] = r;
}

function compare64(cpu: Arm64Cpu, n: number, m: number, signalAll: boolean): number {
  const a = readF64(cpu, n);
  const b = readF64(cpu, m);
  if (a !== a || b !== b) {
    if (signalAll || isSNaN64(cpu, n, a) || isSNaN64(cpu, m, b)) cpu.fpsr |= FPSR_IOC;
    return 0b0011;
  }
  return a === b ? 0b0110 : a < b ? 0b1000 : 0b0010;
}
function compare32(cpu: Arm64Cpu, n: number, m: number, signalAll: boolean): number {
  const a = readF32(cpu, n);
  const b = readF32(cpu, m);
  if (a !== a || b !== b) {
    if (signalAll || isSNaN32(cpu, n, a) || isSNaN32(cpu, m, b)) cpu.fpsr |= FPSR_IOC;
    return 0b0011;
  }
  return a === b ? 0b0110 : a < b ? 0b1000 : 0b0010;
}
function compareCond64(cpu: Arm64Cpu, n: number, m: number, kind: number): boolean {
  const a = readF64(cpu, n);
  const b = readF64(cpu, m);
  if (a !== a || b !== b) {
    if (kind !== 0 || isSNaN64(cpu, n, a) || isSNaN64(cpu, m, b)) cpu.fpsr |= FPSR_IOC;
    return false;
  }
  return kind === 0 ? a === b : kind === 1 ? a >= b : a > b;
}
function compareCond32(cpu: Arm64Cpu, n: number, m: number, kind: number): boolean {
  const a = readF32(cpu, n);
  const b = readF32(cpu, m);
  if (a !== a || b !== b) {
    if (kind !== 0 || isSNaN32(cpu, n, a) || isSNaN32(cpu, m, b)) cpu.fpsr |= FPSR_IOC;
    return false;
  }
  return kind === 0 ? a === b : kind === 1 ? a >= b : a > b;
}

function toFixed(
  cpu: Arm64Cpu,
  v: number,
  fbits: number,
  unsigned: boolean,
  rounding: number,
  size: number,
): number {
  fixOut.hi = 0;
  if (v !== v) {
    cpu.fpsr |= FPSR_IOC;
    return 0;
  }
  let r: number;
  let err = 0;
  if (isInf(v)) r = v;
  else {
    r = roundToIntegral(v * pow2(fbits), rounding);
    err = rdErr;
  }
  const max = unsigned ? (size === 64 ? 2 ** 64 : 2 ** 32) : size === 64 ? 2 ** 63 : 2 ** 31; // exclusive
  const min = unsigned ? 0 : -max;
  if (r >= max) {
    cpu.fpsr |= FPSR_IOC;
    if (size === 32) return unsigned ? -1 : 0x7fffffff;
    fixOut.hi = unsigned ? -1 : 0x7fffffff;
    return -1;
  }
  if (r < min) {
    cpu.fpsr |= FPSR_IOC;
    if (size === 32) return unsigned ? 0 : -0x80000000;
    fixOut.hi = unsigned ? 0 : -0x80000000;
    return 0;
  }
  if (err !== 0) cpu.fpsr |= FPSR_IXC;
  if (size === 32) return r | 0;
  const hi = Math.floor(r / TWO32);
  fixOut.hi = hi | 0;
  return (r - hi * TWO32) | 0;
}

/** The integer lo/hi as a double RN(x) plus the sign of the rounding error (in fixErr). */
let fixErr = 0;
function fixedValue(lo: number, hi: number, unsigned: boolean): number {
  const A = (unsigned ? hi >>> 0 : hi | 0) * TWO32;
  const B = lo >>> 0;
  const s = A + B;
  const bb = s - A;
  fixErr = A - (s - bb) + (B - bb);
  return s;
}
function fromFixed64(
  cpu: Arm64Cpu,
  d: number,
  lo: number,
  hi: number,
  fbits: number,
  unsigned: boolean,
): void {
  const s = fixedValue(lo, hi, unsigned);
  if (s === 0) cpu.vF64[d] = 0;
  else if (!finish64(cpu, d, s * pow2(-fbits), fixErr)) {
    // not reached (|result| >= 2^-64 is always a normal double); exact fallback
    const M = (BigInt(unsigned ? hi >>> 0 : hi | 0) << 32n) | BigInt(lo >>> 0);
    roundBig64(cpu, d, M, -fbits, (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3);
  }
}
function fromFixed32(
  cpu: Arm64Cpu,
  d: number,
  lo: number,
  hi: number,
  fbits: number,
  unsigned: boolean,
): void {
  const s = fixedValue(lo, hi, unsigned);
  if (s === 0) cpu.vF32[d] = 0;
  else finish32(cpu, d, s * pow2(-fbits), fixErr);
}

function cvtSD(cpu: Arm64Cpu, d: number, n: number): void {
  const u = cpu.vU32;
  const bits = u[n];
  const v = readF32(cpu, n);
  if (v !== v) {
    if ((bits & QUIET32) === 0) cpu.fpsr |= FPSR_IOC;
    if (cpu.fpcr & FPCR_DN) defaultNaN64(cpu, d);
    else {
      u[2 * d + 1] = ((bits & SIGN) | 0x7ff80000 | ((bits & 0x3fffff) >>> 3)) >>> 0;
      u[2 * d] = (bits & 7) << 29;
    }
  } else cpu.vF64[d] = v;
}

function cvtDS(cpu: Arm64Cpu, d: number, n: number, rounding: number): void {
  const u = cpu.vU32;
  const lo = u[2 * n];
  const hi = u[2 * n + 1];
  const v = readF64(cpu, n);
  if (v !== v) {
    if ((hi & QUIET64) === 0) cpu.fpsr |= FPSR_IOC;
    u[d] =
      cpu.fpcr & FPCR_DN
        ? 0x7fc00000
        : ((hi & SIGN) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29)) >>> 0;
  } else if (v === 0 || isInf(v)) cpu.vF32[d] = v;
  else {
    if (rounding < 0) finish32(cpu, d, v, 0);
    else u[d] = roundSmall(cpu, v, 0, 32, rounding);
  }
}

function cvtHalfTo(cpu: Arm64Cpu, d: number, n: number, size: number): void {
  const h = cpu.vU16[n];
  const sign = h & 0x8000;
  const exp = (h >>> 10) & 31;
  const frac = h & 0x3ff;
  const ahp = (cpu.fpcr & FPCR_AHP) !== 0;
  let v: number;
  if (exp === 31 && !ahp) {
    if (frac === 0) v = sign ? -Infinity : Infinity;
    else {
      if ((frac & 0x200) === 0) cpu.fpsr |= FPSR_IOC;
      const u = cpu.vU32;
      const dn = (cpu.fpcr & FPCR_DN) !== 0;
      if (size === 32) u[d] = dn ? 0x7fc00000 : ((sign << 16) | 0x7fc00000 | ((frac & 0x1ff) << 13)) >>> 0;
      else if (dn) defaultNaN64(cpu, d);
      else {
        u[2 * d + 1] = ((sign << 16) | 0x7ff80000 | ((frac & 0x1ff) << 10)) >>> 0;
        u[2 * d] = 0;
      }
      return;
    }
  } else {
    v = exp === 0 ? frac * pow2(-24) : (1024 + frac) * pow2(exp - 25);
    if (sign) v = -v;
  }
  if (size === 32) cpu.vF32[d] = v;
  else cpu.vF64[d] = v;
}

function cvtToHalf(cpu: Arm64Cpu, d: number, v: number, n: number, size: number): void {
  const ahp = (cpu.fpcr & FPCR_AHP) !== 0;
  const u = cpu.vU32;
  let r: number;
  if (v !== v) {
    const top = size === 32 ? u[n] : u[2 * n + 1];
    const sign = (top >>> 16) & 0x8000;
    const snan = (top & (size === 32 ? QUIET32 : QUIET64)) === 0;
    if (snan || ahp) cpu.fpsr |= FPSR_IOC;
    if (ahp) r = sign;
    else if (cpu.fpcr & FPCR_DN) r = 0x7e00;
    else r = sign | 0x7e00 | (size === 32 ? (top >>> 13) & 0x1ff : (top >>> 10) & 0x1ff);
  } else if (isInf(v)) {
    if (ahp) {
      r = v < 0 ? 0xffff : 0x7fff;
      cpu.fpsr |= FPSR_IOC;
    } else r = v < 0 ? 0xfc00 : 0x7c00;
  } else if (v === 0) r = negative(v) ? 0x8000 : 0;
  else r = roundSmall(cpu, v, 0, 16, (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3);
  cpu.vU16[d] = r;
}

// ---- reciprocal steps and estimates (AdvSIMD) ----

function stepFused64(cpu: Arm64Cpu, d: number, n: number, m: number, rsqrt: boolean): void {
  const f = cpu.vF64;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush64(cpu, a);
    b = flush64(cpu, b);
  }
  if (a !== a || b !== b) {
    // FPProcessNaNs(FPNeg(op1), op2)
    if (isSNaN64(cpu, n, a)) nanOut64(cpu, d, n, SIGN);
    else if (isSNaN64(cpu, m, b)) nanOut64(cpu, d, m, 0);
    else if (a !== a) nanOut64(cpu, d, n, SIGN);
    else nanOut64(cpu, d, m, 0);
    return;
  }
  a = -a;
  const ia = isInf(a);
  const ib = isInf(b);
  if ((ia && b === 0) || (a === 0 && ib)) f[d] = rsqrt ? 1.5 : 2;
  else if (ia || ib) f[d] = negative(a) !== negative(b) ? -Infinity : Infinity;
  else {
    const rm = (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3;
    // exact k + a*b (k = 3 or 2), halved for FRSQRTS, then rounded once
    let M: bigint;
    let E: number;
    if (a === 0 || b === 0) {
      M = rsqrt ? 3n : 2n;
      E = 0;
    } else {
      const [Ma, Ea] = dec64(a);
      const [Mb, Eb] = dec64(b);
      const Ep = Ea + Eb;
      const Mp = Ma * Mb;
      const K = rsqrt ? 3n : 2n;
      E = Ep < 0 ? Ep : 0;
      M = (Mp << BigInt(Ep - E)) + (K << BigInt(-E));
    }
    if (rsqrt) E -= 1;
    if (M === 0n) f[d] = rm === RM_NEGINF ? -0 : 0;
    else roundBig64(cpu, d, M, E, rm);
  }
}

function stepFused32(cpu: Arm64Cpu, d: number, n: number, m: number, rsqrt: boolean): void {
  const f = cpu.vF32;
  let a = f[n];
  let b = f[m];
  if (cpu.fpcr & FPCR_FZ) {
    a = flush32(cpu, a);
    b = flush32(cpu, b);
  }
  if (a !== a || b !== b) {
    if (isSNaN32(cpu, n, a)) nanOut32(cpu, d, n, SIGN);
    else if (isSNaN32(cpu, m, b)) nanOut32(cpu, d, m, 0);
    else if (a !== a) nanOut32(cpu, d, n, SIGN);
    else nanOut32(cpu, d, m, 0);
    return;
  }
  a = -a;
  const ia = isInf(a);
  const ib = isInf(b);
  if ((ia && b === 0) || (a === 0 && ib)) f[d] = rsqrt ? 1.5 : 2;
  else if (ia || ib) f[d] = negative(a) !== negative(b) ? -Infinity : Infinity;
  else {
    const k = rsqrt ? 3 : 2;
    const p = a * b; // exact
    const s = k + p;
    if (s === 0) {
      f[d] = ((cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3) === RM_NEGINF ? -0 : 0;
      return;
    }
    const bb = s - k;
    const err = k - (s - bb) + (p - bb);
    finish32(cpu, d, rsqrt ? s / 2 : s, err);
  }
}

/** RecipEstimate(a), a in [256, 511]: an 8-bit-accurate 1/a (result in [256, 511]). */
function recipEst(a: number): number {
  a = a * 2 + 1;
  const b = Math.floor(524288 / a);
  return (b + 1) >>> 1;
}
/** RecipSqrtEstimate(a), a in [128, 511]. */
function rsqrtEst(a: number): number {
  if (a < 256) a = a * 2 + 1;
  else {
    a = (a >>> 1) << 1;
    a = (a + 1) * 2;
  }
  let b = 512;
  while (a * (b + 1) * (b + 1) < 268435456) b++;
  return (b + 1) >>> 1;
}

/** The operand as sign, biased exponent and a 52-bit fraction (single fractions shifted up by 29). */
let eSign = 0;
let eExp = 0;
let eFracHi = 0; // fraction bits 51..32 (20 bits)
let eFracLo = 0; // fraction bits 31..0
function splitOperand(cpu: Arm64Cpu, n: number, N: number): void {
  const u = cpu.vU32;
  if (N === 64) {
    const hi = u[2 * n + 1];
    eSign = hi >>> 31;
    eExp = (hi >>> 20) & 0x7ff;
    eFracHi = hi & 0xfffff;
    eFracLo = u[2 * n];
  } else {
    const b = u[n];
    eSign = b >>> 31;
    eExp = (b >>> 23) & 0xff;
    eFracHi = (b & 0x7fffff) >>> 3;
    eFracLo = (b << 29) >>> 0;
  }
}
/** Shift the 52-bit fraction left by one. */
function fracShl1(): void {
  eFracHi = ((eFracHi << 1) | (eFracLo >>> 31)) & 0xfffff;
  eFracLo = (eFracLo << 1) >>> 0;
}
function storeEstimate(
  cpu: Arm64Cpu,
  d: number,
  N: number,
  sign: number,
  exp: number,
  fracHi: number,
  fracLo: number,
): void {
  if (N === 64) {
    cpu.vU32[2 * d + 1] = ((sign << 31) | ((exp & 0x7ff) << 20) | fracHi) >>> 0;
    cpu.vU32[2 * d] = fracLo;
  } else cpu.vU32[d] = ((sign << 31) | ((exp & 0xff) << 23) | (fracHi << 3) | (fracLo >>> 29)) >>> 0;
}
function storeSpecial(cpu: Arm64Cpu, d: number, N: number, v: number): void {
  if (N === 64) cpu.vF64[d] = v;
  else cpu.vF32[d] = v;
}

function recipEstimate(cpu: Arm64Cpu, d: number, n: number, N: number): void {
  const v = N === 64 ? readF64(cpu, n) : readF32(cpu, n);
  if (v !== v) {
    if (N === 64) nanOut64(cpu, d, n, 0);
    else nanOut32(cpu, d, n, 0);
    return;
  }
  const neg = negative(v);
  const av = neg ? -v : v;
  if (av === Infinity) return storeSpecial(cpu, d, N, neg ? -0 : 0);
  if (av === 0) {
    cpu.fpsr |= FPSR_DZC;
    return storeSpecial(cpu, d, N, neg ? -Infinity : Infinity);
  }
  if (av < (N === 32 ? pow2(-128) : pow2(-1024))) {
    const rm = (cpu.fpcr >>> FPCR_RMODE_SHIFT) & 3;
    const toInf = rm === RM_TIEEVEN || (rm === RM_POSINF && !neg) || (rm === RM_NEGINF && neg);
    const max = N === 32 ? 3.4028234663852886e38 : Number.MAX_VALUE;
    cpu.fpsr |= FPSR_OFC | FPSR_IXC;
    return storeSpecial(cpu, d, N, (toInf ? Infinity : max) * (neg ? -1 : 1));
  }
  if (cpu.fpcr & FPCR_FZ && av >= (N === 32 ? pow2(126) : pow2(1022))) {
    cpu.fpsr |= FPSR_UFC;
    return storeSpecial(cpu, d, N, neg ? -0 : 0);
  }
  splitOperand(cpu, n, N);
  let exp = eExp;
  if (exp === 0) {
    if ((eFracHi & 0x80000) === 0) {
      exp = -1;
      fracShl1();
    }
    fracShl1();
  }
  const scaled = 256 | (eFracHi >>> 12);
  let resExp = (N === 32 ? 253 : 2045) - exp;
  const est = recipEst(scaled);
  let fHi = (est & 0xff) << 12;
  if (resExp === 0) fHi = 0x80000 | (fHi >>> 1);
  else if (resExp === -1) {
    fHi = 0x40000 | (fHi >>> 2);
    resExp = 0;
  }
  storeEstimate(cpu, d, N, eSign, resExp, fHi, 0);
}

function rsqrtEstimate(cpu: Arm64Cpu, d: number, n: number, N: number): void {
  const v = N === 64 ? readF64(cpu, n) : readF32(cpu, n);
  if (v !== v) {
    if (N === 64) nanOut64(cpu, d, n, 0);
    else nanOut32(cpu, d, n, 0);
    return;
  }
  if (v === 0) {
    cpu.fpsr |= FPSR_DZC;
    return storeSpecial(cpu, d, N, negative(v) ? -Infinity : Infinity);
  }
  if (v < 0) {
    cpu.fpsr |= FPSR_IOC;
    if (N === 64) defaultNaN64(cpu, d);
    else defaultNaN32(cpu, d);
    return;
  }
  if (v === Infinity) return storeSpecial(cpu, d, N, 0);
  splitOperand(cpu, n, N);
  let exp = eExp;
  if (exp === 0) {
    while ((eFracHi & 0x80000) === 0) {
      fracShl1();
      exp--;
    }
    fracShl1();
  }
  const scaled = (exp & 1) === 0 ? 256 | (eFracHi >>> 12) : 128 | (eFracHi >>> 13);
  const resExp = Math.floor(((N === 32 ? 380 : 3068) - exp) / 2);
  const est = rsqrtEst(scaled);
  storeEstimate(cpu, d, N, 0, resExp, (est & 0xff) << 12, 0);
}

function recpX(cpu: Arm64Cpu, d: number, n: number, N: number): void {
  const v = N === 64 ? readF64(cpu, n) : readF32(cpu, n);
  if (v !== v) {
    if (N === 64) nanOut64(cpu, d, n, 0);
    else nanOut32(cpu, d, n, 0);
    return;
  }
  splitOperand(cpu, n, N);
  const ones = N === 64 ? 0x7ff : 0xff;
  storeEstimate(cpu, d, N, eSign, eExp === 0 ? ones - 1 : ~eExp & ones, 0, 0);
}

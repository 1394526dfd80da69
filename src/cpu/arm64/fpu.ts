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
export function fpMulAdd64(cpu: Arm64Cpu, d: number, a: number, n: number, m: number, negA = false, negN = false): void {
  mulAdd64(cpu, d, a, n, m, negA, negN);
}
export function fpMulAdd32(cpu: Arm64Cpu, d: number, a: number, n: number, m: number, negA = false, negN = false): void {
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
export function fpToFixed64(cpu: Arm64Cpu, n: number, fbits: number, unsigned: boolean, rounding: number, size: number): number {
  return toFixed(cpu, readF64(cpu, n), fbits, unsigned, rounding, size);
}
export function fpToFixed32(cpu: Arm64Cpu, n: number, fbits: number, unsigned: boolean, rounding: number, size: number): number {
  return toFixed(cpu, readF32(cpu, n), fbits, unsigned, rounding, size);
}
/**
 * V[d] = FixedToFP(integer, fbits, unsigned, FPCR rounding). The integer is lo/hi halves of a 64-bit value;
 * for a 32-bit source pass hi = lo >> 31 (signed) or 0 (unsigned).
 */
export function fixedToFp64(cpu: Arm64Cpu, d: number, lo: number, hi: number, fbits: number, unsigned: boolean): void {
  fromFixed64(cpu, d, lo, hi, fbits, unsigned);
}
export function fixedToFp32(cpu: Arm64Cpu, d: number, lo: number, hi: number, fbits: number, unsigned: boolean): void {
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
// (API first; the implementation follows in the next commit.)
const todo = (): never => {
  throw new Error('fpu: not implemented yet');
};
function addSub64(_c: Arm64Cpu, _d: number, _n: number, _m: number, _s: boolean): void { todo(); }
function addSub32(_c: Arm64Cpu, _d: number, _n: number, _m: number, _s: boolean): void { todo(); }
function mul64(_c: Arm64Cpu, _d: number, _n: number, _m: number, _g: boolean, _x: boolean): void { todo(); }
function mul32(_c: Arm64Cpu, _d: number, _n: number, _m: number, _g: boolean, _x: boolean): void { todo(); }
function div64(_c: Arm64Cpu, _d: number, _n: number, _m: number): void { todo(); }
function div32(_c: Arm64Cpu, _d: number, _n: number, _m: number): void { todo(); }
function mulAdd64(_c: Arm64Cpu, _d: number, _a: number, _n: number, _m: number, _x: boolean, _y: boolean): void { todo(); }
function mulAdd32(_c: Arm64Cpu, _d: number, _a: number, _n: number, _m: number, _x: boolean, _y: boolean): void { todo(); }
function sqrt64(_c: Arm64Cpu, _d: number, _n: number): void { todo(); }
function sqrt32(_c: Arm64Cpu, _d: number, _n: number): void { todo(); }
function minMax64(_c: Arm64Cpu, _d: number, _n: number, _m: number, _o: number): void { todo(); }
function minMax32(_c: Arm64Cpu, _d: number, _n: number, _m: number, _o: number): void { todo(); }
function roundInt64(_c: Arm64Cpu, _d: number, _n: number, _r: number, _e: boolean): void { todo(); }
function roundInt32(_c: Arm64Cpu, _d: number, _n: number, _r: number, _e: boolean): void { todo(); }
function compare64(_c: Arm64Cpu, _n: number, _m: number, _s: boolean): number { return todo(); }
function compare32(_c: Arm64Cpu, _n: number, _m: number, _s: boolean): number { return todo(); }
function compareCond64(_c: Arm64Cpu, _n: number, _m: number, _k: number): boolean { return todo(); }
function compareCond32(_c: Arm64Cpu, _n: number, _m: number, _k: number): boolean { return todo(); }
function readF64(_c: Arm64Cpu, _n: number): number { return todo(); }
function readF32(_c: Arm64Cpu, _n: number): number { return todo(); }
function toFixed(_c: Arm64Cpu, _v: number, _f: number, _u: boolean, _r: number, _s: number): number { return todo(); }
function fromFixed64(_c: Arm64Cpu, _d: number, _l: number, _h: number, _f: number, _u: boolean): void { todo(); }
function fromFixed32(_c: Arm64Cpu, _d: number, _l: number, _h: number, _f: number, _u: boolean): void { todo(); }
function cvtSD(_c: Arm64Cpu, _d: number, _n: number): void { todo(); }
function cvtDS(_c: Arm64Cpu, _d: number, _n: number, _r: number): void { todo(); }
function cvtHalfTo(_c: Arm64Cpu, _d: number, _n: number, _s: number): void { todo(); }
function cvtToHalf(_c: Arm64Cpu, _d: number, _v: number, _n: number, _s: number): void { todo(); }

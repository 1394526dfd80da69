// Shared helpers of the load/store instruction groups: address generation into module-level
// scratch (no allocation), SP alignment checking, base register writeback.

import type { Arm64Cpu } from '../cpu.js';

const TWO32 = 4294967296;
const EC_SP_ALIGN = 0x26;

/** The address computed by the last addr*() call (halves stored as int32: they stay small integers). */
export const A = { lo: 0, hi: 0 };

/** SP alignment check (SCTLR_EL1.SA at EL1, SA0 at EL0) when the base register is SP (n = 31). */
export function spCheck(cpu: Arm64Cpu, n: number): void {
  if (n === 31 && (cpu.r[62] & 15) !== 0 && (cpu.mmu.sctlr & (cpu.el === 0 ? 16 : 8)) !== 0) {
    cpu.raise(EC_SP_ALIGN, 0);
  }
}

/** A = X[n] (n = 31: SP) + off, off a signed number with |off| < 2^31. */
export function addrImm(cpu: Arm64Cpu, n: number, off: number): void {
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + off;
  A.lo = s | 0;
  A.hi = (r[(n << 1) | 1] + (s >= TWO32 ? 1 : s < 0 ? -1 : 0)) | 0;
}

/** A = (lo, hi) + off (|off| < 2^31). */
export function addrAdd(lo: number, hi: number, off: number): void {
  const s = (lo >>> 0) + off;
  A.lo = s | 0;
  A.hi = (hi + (s >= TWO32 ? 1 : s < 0 ? -1 : 0)) | 0;
}

/**
 * A = X[n] (SP for 31) + ExtendReg(Rm, option) << shift, the register-offset addressing form.
 * option: 010 UXTW, 011 LSL/UXTX, 110 SXTW, 111 SXTX.
 */
export function addrReg(cpu: Arm64Cpu, n: number, m: number, option: number, shift: number): void {
  const r = cpu.r;
  let mlo = m === 31 ? 0 : r[m << 1];
  let mhi = m === 31 ? 0 : (option & 1) !== 0 ? r[(m << 1) | 1] : (option & 4) !== 0 ? mlo >> 31 : 0;
  if (shift !== 0) {
    mhi = (mhi << shift) | (mlo >>> (32 - shift));
    mlo <<= shift;
  }
  const s = (r[n << 1] >>> 0) + (mlo >>> 0);
  A.lo = s | 0;
  A.hi = (r[(n << 1) | 1] + mhi + (s >= TWO32 ? 1 : 0)) | 0;
}

/** X[n] (SP for 31) = X[n] + off. */
export function writeback(cpu: Arm64Cpu, n: number, off: number): void {
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + off;
  r[(n << 1) | 1] = r[(n << 1) | 1] + (s >= TWO32 ? 1 : s < 0 ? -1 : 0);
  r[n << 1] = s | 0;
}

/** X[n] (SP for 31) = X[n] + X[m] (post-index register form of the SIMD structure instructions). */
export function writebackReg(cpu: Arm64Cpu, n: number, m: number): void {
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + (r[m << 1] >>> 0);
  r[(n << 1) | 1] = r[(n << 1) | 1] + r[(m << 1) | 1] + (s >= TWO32 ? 1 : 0);
  r[n << 1] = s | 0;
}

/** PC + off (literal loads). */
export function addrPc(cpu: Arm64Cpu, off: number): void {
  addrAdd(cpu.pcLo, cpu.pcHi, off);
}

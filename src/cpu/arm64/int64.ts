// 64-bit integer helpers on pairs of 32-bit halves (int32 arithmetic only, no BigInt, no allocation).
//
// A function that produces a 64-bit value returns the low half and leaves the high half in the
// live-bound module variable `rhi` (read it right after the call: `const lo = shl64(a, b, n); const hi = rhi;`).
// Halves are returned as int32 (`| 0`); use `>>> 0` where an unsigned view is needed.
//
// Flag-setting helpers (addFlags64, addFlags32) write N, Z, C, V into the CPU.

import type { Arm64Cpu } from './cpu.js';

/** High half of the last 64-bit result produced by a helper in this module. */
export let rhi = 0;

const TWO32 = 4294967296;

/** ones(k) for 0 <= k <= 32, as int32. */
export function ones32(k: number): number {
  return k >= 32 ? -1 : (1 << k) - 1;
}

/** (lo, hi) << n, 0 <= n <= 63. */
export function shl64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    rhi = hi | 0;
    return lo | 0;
  }
  if (n < 32) {
    rhi = (hi << n) | (lo >>> (32 - n));
    return lo << n;
  }
  rhi = lo << (n - 32);
  return 0;
}

/** (lo, hi) >>> n (logical), 0 <= n <= 63. */
export function lsr64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    rhi = hi | 0;
    return lo | 0;
  }
  if (n < 32) {
    rhi = (hi >>> n) | 0;
    return (lo >>> n) | (hi << (32 - n));
  }
  rhi = 0;
  return (hi >>> (n - 32)) | 0;
}

/** (lo, hi) >> n (arithmetic), 0 <= n <= 63. */
export function asr64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    rhi = hi | 0;
    return lo | 0;
  }
  if (n < 32) {
    rhi = hi >> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  rhi = hi >> 31;
  return hi >> (n - 32);
}

/** Rotate (lo, hi) right by n, 0 <= n <= 63. */
export function ror64(lo: number, hi: number, n: number): number {
  if (n >= 32) {
    const t = lo;
    lo = hi;
    hi = t;
    n -= 32;
  }
  if (n === 0) {
    rhi = hi | 0;
    return lo | 0;
  }
  rhi = (hi >>> n) | (lo << (32 - n));
  return (lo >>> n) | (hi << (32 - n));
}

/** Rotate a 32-bit value right by n, 0 <= n <= 31. */
export function ror32(x: number, n: number): number {
  return n === 0 ? x | 0 : (x >>> n) | (x << (32 - n));
}

/** a + b (+ cin) modulo 2^64. */
export function add64(alo: number, ahi: number, blo: number, bhi: number, cin = 0): number {
  const s = (alo >>> 0) + (blo >>> 0) + cin;
  rhi = (ahi + bhi + (s >= TWO32 ? 1 : 0)) | 0;
  return s | 0;
}

/** a - b modulo 2^64. */
export function sub64(alo: number, ahi: number, blo: number, bhi: number): number {
  const d = (alo >>> 0) - (blo >>> 0);
  rhi = (ahi - bhi - (d < 0 ? 1 : 0)) | 0;
  return d | 0;
}

/** -a modulo 2^64. */
export function neg64(lo: number, hi: number): number {
  rhi = lo === 0 ? -hi | 0 : ~hi;
  return -lo | 0;
}

/**
 * a + b + cin with NZCV written to the CPU (AddWithCarry, 64-bit). For subtraction pass ~b and cin = 1
 * (SUBS) or cin = C (SBCS).
 */
export function addFlags64(
  cpu: Arm64Cpu,
  alo: number,
  ahi: number,
  blo: number,
  bhi: number,
  cin: number,
): number {
  const s = (alo >>> 0) + (blo >>> 0) + cin;
  const h = (ahi >>> 0) + (bhi >>> 0) + (s >= TWO32 ? 1 : 0);
  const lo = s | 0;
  const hi = h | 0;
  cpu.n = hi >>> 31;
  cpu.z = (lo | hi) === 0 ? 1 : 0;
  cpu.c = h >= TWO32 ? 1 : 0;
  cpu.v = ((ahi ^ hi) & (bhi ^ hi)) >>> 31;
  rhi = hi;
  return lo;
}

/** a + b + cin (32-bit) with NZCV written to the CPU. */
export function addFlags32(cpu: Arm64Cpu, a: number, b: number, cin: number): number {
  const s = (a >>> 0) + (b >>> 0) + cin;
  const r = s | 0;
  cpu.n = r >>> 31;
  cpu.z = r === 0 ? 1 : 0;
  cpu.c = s >= TWO32 ? 1 : 0;
  cpu.v = ((a ^ r) & (b ^ r)) >>> 31;
  return r;
}

/**
 * Unsigned 32x32 -> 64 multiply. The low half is exact from Math.imul. The double product rounds to
 * within 2^10 of the exact one, and never below hi * 2^32 (that is representable and rounding is
 * monotonic), so its high half is either right or one too big: too big exactly when the double's
 * low part is far (more than 2^31) below the exact low half.
 */
export function umul32(a: number, b: number): number {
  const lo = Math.imul(a, b);
  const p = (a >>> 0) * (b >>> 0);
  let hi = Math.floor(p / TWO32);
  if ((lo >>> 0) - (p - hi * TWO32) > 2147483648) hi--;
  rhi = hi | 0;
  return lo;
}

/** Signed 32x32 -> 64 multiply. */
export function smul32(a: number, b: number): number {
  const lo = umul32(a, b);
  let hi = rhi;
  if (a < 0) hi = (hi - b) | 0;
  if (b < 0) hi = (hi - a) | 0;
  rhi = hi;
  return lo;
}

/** Low 64 bits of a 64x64 multiply. */
export function mul64(alo: number, ahi: number, blo: number, bhi: number): number {
  const lo = umul32(alo, blo);
  rhi = (rhi + Math.imul(alo, bhi) + Math.imul(ahi, blo)) | 0;
  return lo;
}

/** High 64 bits of the unsigned 128-bit product (UMULH). */
export function umulh64(alo: number, ahi: number, blo: number, bhi: number): number {
  const p0lo = umul32(alo, blo);
  const p0hi = rhi >>> 0;
  const p1lo = umul32(alo, bhi) >>> 0;
  const p1hi = rhi >>> 0;
  const p2lo = umul32(ahi, blo) >>> 0;
  const p2hi = rhi >>> 0;
  const p3lo = umul32(ahi, bhi) >>> 0;
  const p3hi = rhi >>> 0;
  void p0lo;
  const mid = p0hi + p1lo + p2lo; // < 3 * 2^32
  const x = p3lo + p1hi + p2hi + Math.floor(mid / TWO32); // < 4 * 2^32
  rhi = (p3hi + Math.floor(x / TWO32)) | 0;
  return x | 0;
}

/** High 64 bits of the signed 128-bit product (SMULH). */
export function smulh64(alo: number, ahi: number, blo: number, bhi: number): number {
  let lo = umulh64(alo, ahi, blo, bhi);
  let hi = rhi;
  if (ahi < 0) {
    lo = sub64(lo, hi, blo, bhi);
    hi = rhi;
  }
  if (bhi < 0) {
    lo = sub64(lo, hi, alo, ahi);
    hi = rhi;
  }
  rhi = hi;
  return lo;
}

/** Count leading zeros of a 64-bit value (0..64). */
export function clz64(lo: number, hi: number): number {
  return hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
}

/** Reverse the bits of a 32-bit value. */
export function rbit32(x: number): number {
  x = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  x = ((x >>> 2) & 0x33333333) | ((x & 0x33333333) << 2);
  x = ((x >>> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
  x = ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
  return (x >>> 16) | (x << 16);
}

/** Byte-reverse a 32-bit value. */
export function bswap32(x: number): number {
  return (x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24) | 0;
}

/** Swap the bytes within each 16-bit halfword of a 32-bit value. */
export function rev16x32(x: number): number {
  return ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
}

/** Sign-extend the low `bits` bits (1..32) of x. */
export function sext32(x: number, bits: number): number {
  return bits >= 32 ? x | 0 : (x << (32 - bits)) >> (32 - bits);
}

/** True when the 4-bit A64 condition code holds for the CPU's current NZCV. */
export function conditionHolds(cpu: Arm64Cpu, cond: number): boolean {
  let r: boolean;
  switch (cond >>> 1) {
    case 0:
      r = cpu.z === 1; // EQ / NE
      break;
    case 1:
      r = cpu.c === 1; // CS / CC
      break;
    case 2:
      r = cpu.n === 1; // MI / PL
      break;
    case 3:
      r = cpu.v === 1; // VS / VC
      break;
    case 4:
      r = cpu.c === 1 && cpu.z === 0; // HI / LS
      break;
    case 5:
      r = cpu.n === cpu.v; // GE / LT
      break;
    case 6:
      r = cpu.z === 0 && cpu.n === cpu.v; // GT / LE
      break;
    default:
      return true; // AL, NV
  }
  return (cond & 1) !== 0 ? !r : r;
}

// ---- bitmask immediates (DecodeBitMasks) ----

/**
 * Precomputed DecodeBitMasks(N, imms, immr, immediate = TRUE) for the 13-bit field N:immr:imms
 * (index = N << 12 | immr << 6 | imms): BITMASK_LO/HI hold the 64-bit wmask, BITMASK_OK is 1 where
 * the combination is valid. A 32-bit operation additionally needs N = 0; a valid N = 0 entry is a
 * pattern of element size <= 32 replicated over 64 bits, so its low half is the 32-bit mask.
 */
export const BITMASK_LO = new Int32Array(8192);
export const BITMASK_HI = new Int32Array(8192);
export const BITMASK_OK = new Uint8Array(8192);

function buildBitmasks(): void {
  for (let idx = 0; idx < 8192; idx++) {
    const n = idx >>> 12;
    const immr = (idx >>> 6) & 63;
    const imms = idx & 63;
    const combined = (n << 6) | (~imms & 63);
    if (combined === 0) continue;
    const len = 31 - Math.clz32(combined);
    if (len < 1) continue;
    const levels = (1 << len) - 1;
    if ((imms & levels) === levels) continue;
    const s = imms & levels;
    const r = immr & levels;
    const esize = 1 << len;
    // element: s+1 ones rotated right by r within esize bits
    let elo: number;
    let ehi: number;
    if (esize === 64) {
      let lo = s + 1 >= 32 ? -1 : (1 << (s + 1)) - 1;
      let hi = s + 1 > 32 ? ones32(s + 1 - 32) : 0;
      lo = ror64(lo, hi, r);
      hi = rhi;
      elo = lo;
      ehi = hi;
    } else {
      const w = s + 1 >= 32 ? -1 : (1 << (s + 1)) - 1; // s + 1 < esize <= 32
      const m = esize === 32 ? -1 : (1 << esize) - 1;
      let e = r === 0 ? w : ((w >>> r) | (w << (esize - r))) & m;
      for (let sz = esize; sz < 32; sz *= 2) e = e | (e << sz);
      elo = e | 0;
      ehi = e | 0;
    }
    BITMASK_LO[idx] = elo;
    BITMASK_HI[idx] = ehi;
    BITMASK_OK[idx] = 1;
  }
}
buildBitmasks();

// A64 instruction group: data processing (register). See decode.ts for the pattern format.
//
// Logical (shifted register), add/subtract (shifted and extended register), add/subtract with carry,
// conditional compare (register and immediate), conditional select, data processing with one source
// (RBIT, REV16, REV32, REV, CLZ, CLS), two sources (UDIV, SDIV, LSLV, LSRV, ASRV, RORV) and three
// sources (MADD, MSUB, SMADDL, SMSUBL, UMADDL, UMSUBL, SMULH, UMULH).
//
// ARMv8.0 only: CRC32*, pointer authentication, RMIF/SETF, MTE (SUBP, IRG, GMI...), CSSC (ABS, CNT,
// CTZ, SMAX...) are deliberately not matched (UNDEF).

import type { Pattern } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import {
  addFlags32,
  addFlags64,
  asr64,
  bswap32,
  clz64,
  conditionHolds,
  lsr64,
  mul64,
  rbit32,
  rev16x32,
  rhi,
  ror32,
  ror64,
  shl64,
  smul32,
  smulh64,
  umul32,
  umulh64,
} from '../int64.js';

const TWO32 = 4294967296;

/** Slot for reading Rn where 31 means XZR. */
const rzs = (n: number): number => (n === 31 ? 32 : n);
/** Slot for writing Rd where 31 means XZR. */
const wzs = (n: number): number => (n === 31 ? 33 : n);

/** High half of the operand produced by op2Shift64 / op2Ext64. */
let ohi = 0;

/** Second operand of a shifted-register form, 64-bit: Rm shifted by type (bits 23:22) and imm6. */
function op2Shift64(r: Int32Array, insn: number): number {
  const m = rzs((insn >>> 16) & 31) << 1;
  const lo = r[m];
  const hi = r[m + 1];
  const amt = (insn >>> 10) & 63;
  if (amt === 0) {
    ohi = hi;
    return lo;
  }
  let v: number;
  switch ((insn >>> 22) & 3) {
    case 0:
      v = shl64(lo, hi, amt);
      break;
    case 1:
      v = lsr64(lo, hi, amt);
      break;
    case 2:
      v = asr64(lo, hi, amt);
      break;
    default:
      v = ror64(lo, hi, amt);
      break;
  }
  ohi = rhi;
  return v;
}

/** Second operand of a shifted-register form, 32-bit (imm6 < 32 is guaranteed by the patterns). */
function op2Shift32(r: Int32Array, insn: number): number {
  const x = r[rzs((insn >>> 16) & 31) << 1];
  const amt = (insn >>> 10) & 31;
  switch ((insn >>> 22) & 3) {
    case 0:
      return x << amt;
    case 1:
      return (x >>> amt) | 0;
    case 2:
      return x >> amt;
    default:
      return ror32(x, amt);
  }
}

/** Second operand of an extended-register form, 64-bit: extend Rm by option (15:13), shift by imm3. */
function op2Ext64(r: Int32Array, insn: number): number {
  const m = rzs((insn >>> 16) & 31) << 1;
  let lo = r[m];
  let hi: number;
  switch ((insn >>> 13) & 7) {
    case 0:
      lo &= 0xff;
      hi = 0;
      break;
    case 1:
      lo &= 0xffff;
      hi = 0;
      break;
    case 2:
      hi = 0;
      break;
    case 4:
      lo = (lo << 24) >> 24;
      hi = lo >> 31;
      break;
    case 5:
      lo = (lo << 16) >> 16;
      hi = lo >> 31;
      break;
    case 6:
      hi = lo >> 31;
      break;
    default: // UXTX, SXTX
      hi = r[m + 1];
      break;
  }
  const sh = (insn >>> 10) & 7;
  if (sh !== 0) {
    lo = shl64(lo, hi, sh);
    hi = rhi;
  }
  ohi = hi;
  return lo;
}

function op2Ext32(r: Int32Array, insn: number): number {
  let x = r[rzs((insn >>> 16) & 31) << 1];
  switch ((insn >>> 13) & 7) {
    case 0:
      x &= 0xff;
      break;
    case 1:
      x &= 0xffff;
      break;
    case 4:
      x = (x << 24) >> 24;
      break;
    case 5:
      x = (x << 16) >> 16;
      break;
    default: // UXTW, UXTX, SXTW, SXTX: the whole 32-bit value
      break;
  }
  return x << ((insn >>> 10) & 7);
}

// ---- logical (shifted register) ----

function logReg64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  let blo = op2Shift64(r, insn);
  let bhi = ohi;
  if ((insn & 0x200000) !== 0) {
    blo = ~blo;
    bhi = ~bhi;
  }
  const n = rzs((insn >>> 5) & 31) << 1;
  const alo = r[n];
  const ahi = r[n + 1];
  const d = wzs(insn & 31) << 1;
  switch ((insn >>> 29) & 3) {
    case 0:
      r[d] = alo & blo;
      r[d + 1] = ahi & bhi;
      break;
    case 1:
      r[d] = alo | blo;
      r[d + 1] = ahi | bhi;
      break;
    case 2:
      r[d] = alo ^ blo;
      r[d + 1] = ahi ^ bhi;
      break;
    default: {
      const lo = alo & blo;
      const hi = ahi & bhi;
      cpu.n = hi >>> 31;
      cpu.z = (lo | hi) === 0 ? 1 : 0;
      cpu.c = 0;
      cpu.v = 0;
      r[d] = lo;
      r[d + 1] = hi;
    }
  }
}

function logReg32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  let b = op2Shift32(r, insn);
  if ((insn & 0x200000) !== 0) b = ~b;
  const a = r[rzs((insn >>> 5) & 31) << 1];
  const d = wzs(insn & 31) << 1;
  let v: number;
  switch ((insn >>> 29) & 3) {
    case 0:
      v = a & b;
      break;
    case 1:
      v = a | b;
      break;
    case 2:
      v = a ^ b;
      break;
    default:
      v = a & b;
      cpu.n = v >>> 31;
      cpu.z = v === 0 ? 1 : 0;
      cpu.c = 0;
      cpu.v = 0;
  }
  r[d] = v;
  r[d + 1] = 0;
}

/** MOV Xd, Xm (ORR Xd, XZR, Xm). */
function movReg64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const m = rzs((insn >>> 16) & 31) << 1;
  const d = wzs(insn & 31) << 1;
  r[d] = r[m];
  r[d + 1] = r[m + 1];
}

/** MOV Wd, Wm (ORR Wd, WZR, Wm). */
function movReg32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const d = wzs(insn & 31) << 1;
  r[d] = r[rzs((insn >>> 16) & 31) << 1];
  r[d + 1] = 0;
}

// ---- add/subtract (shifted register) ----

function addShift64(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const blo = op2Shift64(r, insn);
  const bhi = ohi;
  const n = rzs((insn >>> 5) & 31) << 1;
  const s = (r[n] >>> 0) + (blo >>> 0);
  const hi = r[n + 1] + bhi + (s >= TWO32 ? 1 : 0);
  const d = wzs(insn & 31) << 1;
  r[d] = s | 0;
  r[d + 1] = hi | 0;
}

function subShift64(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const blo = op2Shift64(r, insn);
  const bhi = ohi;
  const n = rzs((insn >>> 5) & 31) << 1;
  const s = (r[n] >>> 0) - (blo >>> 0);
  const hi = r[n + 1] - bhi - (s < 0 ? 1 : 0);
  const d = wzs(insn & 31) << 1;
  r[d] = s | 0;
  r[d + 1] = hi | 0;
}

function addsShift64(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const blo = op2Shift64(r, insn);
  const bhi = ohi;
  const n = rzs((insn >>> 5) & 31) << 1;
  const lo = addFlags64(cpu, r[n], r[n + 1], blo, bhi, 0);
  const d = wzs(insn & 31) << 1;
  r[d] = lo;
  r[d + 1] = rhi;
}

function subsShift64(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const blo = op2Shift64(r, insn);
  const bhi = ohi;
  const n = rzs((insn >>> 5) & 31) << 1;
  const lo = addFlags64(cpu, r[n], r[n + 1], ~blo, ~bhi, 1);
  const d = wzs(insn & 31) << 1;
  r[d] = lo;
  r[d + 1] = rhi;
}

function addShift32(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const d = wzs(insn & 31) << 1;
  r[d] = r[rzs((insn >>> 5) & 31) << 1] + op2Shift32(r, insn);
  r[d + 1] = 0;
}

function subShift32(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const d = wzs(insn & 31) << 1;
  r[d] = r[rzs((insn >>> 5) & 31) << 1] - op2Shift32(r, insn);
  r[d + 1] = 0;
}

function addsShift32(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const d = wzs(insn & 31) << 1;
  r[d] = addFlags32(cpu, r[rzs((insn >>> 5) & 31) << 1], op2Shift32(r, insn), 0);
  r[d + 1] = 0;
}

function subsShift32(cpu: Arm64Cpu, insn: number): void {
  if ((insn & 0xc00000) === 0xc00000) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const d = wzs(insn & 31) << 1;
  r[d] = addFlags32(cpu, r[rzs((insn >>> 5) & 31) << 1], ~op2Shift32(r, insn), 1);
  r[d + 1] = 0;
}

// ---- add/subtract (extended register): Rn and (non-flag-setting) Rd may be SP ----

function addSubExt64(cpu: Arm64Cpu, insn: number): void {
  if (((insn >>> 10) & 7) > 4) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  let blo = op2Ext64(r, insn);
  let bhi = ohi;
  const n = ((insn >>> 5) & 31) << 1; // SP
  const sub = (insn & 0x40000000) !== 0;
  if ((insn & 0x20000000) !== 0) {
    const lo = sub
      ? addFlags64(cpu, r[n], r[n + 1], ~blo, ~bhi, 1)
      : addFlags64(cpu, r[n], r[n + 1], blo, bhi, 0);
    const d = wzs(insn & 31) << 1;
    r[d] = lo;
    r[d + 1] = rhi;
    return;
  }
  let cin = 0;
  if (sub) {
    blo = ~blo;
    bhi = ~bhi;
    cin = 1;
  }
  const s = (r[n] >>> 0) + (blo >>> 0) + cin;
  const hi = r[n + 1] + bhi + (s >= TWO32 ? 1 : 0);
  const d = (insn & 31) << 1; // SP
  r[d] = s | 0;
  r[d + 1] = hi | 0;
}

function addSubExt32(cpu: Arm64Cpu, insn: number): void {
  if (((insn >>> 10) & 7) > 4) cpu.undefinedInstruction(insn);
  const r = cpu.r;
  const b = op2Ext32(r, insn);
  const a = r[((insn >>> 5) & 31) << 1]; // WSP
  const sub = (insn & 0x40000000) !== 0;
  if ((insn & 0x20000000) !== 0) {
    const d = wzs(insn & 31) << 1;
    r[d] = sub ? addFlags32(cpu, a, ~b, 1) : addFlags32(cpu, a, b, 0);
    r[d + 1] = 0;
    return;
  }
  const d = (insn & 31) << 1; // WSP
  r[d] = sub ? a - b : a + b;
  r[d + 1] = 0;
}

// ---- add/subtract with carry ----

function adcSbc64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const m = rzs((insn >>> 16) & 31) << 1;
  const n = rzs((insn >>> 5) & 31) << 1;
  const d = wzs(insn & 31) << 1;
  let blo = r[m];
  let bhi = r[m + 1];
  if ((insn & 0x40000000) !== 0) {
    blo = ~blo;
    bhi = ~bhi;
  }
  if ((insn & 0x20000000) !== 0) {
    const lo = addFlags64(cpu, r[n], r[n + 1], blo, bhi, cpu.c);
    r[d] = lo;
    r[d + 1] = rhi;
  } else {
    const s = (r[n] >>> 0) + (blo >>> 0) + cpu.c;
    const hi = r[n + 1] + bhi + (s >= TWO32 ? 1 : 0);
    r[d] = s | 0;
    r[d + 1] = hi | 0;
  }
}

function adcSbc32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  let b = r[rzs((insn >>> 16) & 31) << 1];
  const a = r[rzs((insn >>> 5) & 31) << 1];
  const d = wzs(insn & 31) << 1;
  if ((insn & 0x40000000) !== 0) b = ~b;
  r[d] = (insn & 0x20000000) !== 0 ? addFlags32(cpu, a, b, cpu.c) : a + b + cpu.c;
  r[d + 1] = 0;
}

// ---- conditional compare ----

function ccmp(cpu: Arm64Cpu, insn: number): void {
  if (!conditionHolds(cpu, (insn >>> 12) & 15)) {
    cpu.nzcv = insn & 15;
    return;
  }
  const r = cpu.r;
  let blo: number;
  let bhi: number;
  if ((insn & 0x800) !== 0) {
    blo = (insn >>> 16) & 31; // imm5
    bhi = 0;
  } else {
    const m = rzs((insn >>> 16) & 31) << 1;
    blo = r[m];
    bhi = r[m + 1];
  }
  const n = rzs((insn >>> 5) & 31) << 1;
  const sub = (insn & 0x40000000) !== 0; // CCMP; CCMN adds
  if ((insn & 0x80000000) !== 0) {
    if (sub) addFlags64(cpu, r[n], r[n + 1], ~blo, ~bhi, 1);
    else addFlags64(cpu, r[n], r[n + 1], blo, bhi, 0);
  } else {
    if (sub) addFlags32(cpu, r[n], ~blo, 1);
    else addFlags32(cpu, r[n], blo, 0);
  }
}

// ---- conditional select ----

function csel64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const d = wzs(insn & 31) << 1;
  if (conditionHolds(cpu, (insn >>> 12) & 15)) {
    const n = rzs((insn >>> 5) & 31) << 1;
    r[d] = r[n];
    r[d + 1] = r[n + 1];
    return;
  }
  const m = rzs((insn >>> 16) & 31) << 1;
  let lo = r[m];
  let hi = r[m + 1];
  const inv = (insn & 0x40000000) !== 0;
  const inc = (insn & 0x400) !== 0;
  if (inv) {
    lo = ~lo;
    hi = ~hi;
  }
  if (inc) {
    // CSINC: +1; CSNEG: ~x + 1
    lo = (lo + 1) | 0;
    if (lo === 0) hi = (hi + 1) | 0;
  }
  r[d] = lo;
  r[d + 1] = hi;
}

function csel32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const d = wzs(insn & 31) << 1;
  let v: number;
  if (conditionHolds(cpu, (insn >>> 12) & 15)) {
    v = r[rzs((insn >>> 5) & 31) << 1];
  } else {
    v = r[rzs((insn >>> 16) & 31) << 1];
    if ((insn & 0x40000000) !== 0) v = ~v;
    if ((insn & 0x400) !== 0) v = v + 1;
  }
  r[d] = v;
  r[d + 1] = 0;
}

// ---- data processing (1 source) ----

function dp1_64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  const a = r[n];
  const b = r[n + 1];
  let lo: number;
  let hi: number;
  switch ((insn >>> 10) & 7) {
    case 0: // RBIT
      lo = rbit32(b);
      hi = rbit32(a);
      break;
    case 1: // REV16
      lo = rev16x32(a);
      hi = rev16x32(b);
      break;
    case 2: // REV32
      lo = bswap32(a);
      hi = bswap32(b);
      break;
    case 3: // REV
      lo = bswap32(b);
      hi = bswap32(a);
      break;
    case 4: // CLZ
      lo = clz64(a, b);
      hi = 0;
      break;
    default: {
      // CLS: leading zeros of x<63:1> EOR x<62:0>
      const tlo = (a ^ (a << 1)) | 1;
      const thi = b ^ ((b << 1) | (a >>> 31));
      lo = clz64(tlo, thi);
      hi = 0;
    }
  }
  const d = wzs(insn & 31) << 1;
  r[d] = lo;
  r[d + 1] = hi;
}

function dp1_32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const a = r[rzs((insn >>> 5) & 31) << 1];
  let v: number;
  switch ((insn >>> 10) & 7) {
    case 0:
      v = rbit32(a);
      break;
    case 1:
      v = rev16x32(a);
      break;
    case 2:
      v = bswap32(a);
      break;
    case 4:
      v = Math.clz32(a);
      break;
    default: // 5: CLS (3 is unallocated for 32-bit: not matched)
      v = Math.clz32((a ^ (a << 1)) | 1);
  }
  const d = wzs(insn & 31) << 1;
  r[d] = v;
  r[d + 1] = 0;
}

// ---- data processing (2 source) ----

function udiv64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  const m = rzs((insn >>> 16) & 31) << 1;
  const d = wzs(insn & 31) << 1;
  const alo = r[n];
  const ahi = r[n + 1];
  const blo = r[m];
  const bhi = r[m + 1];
  if (ahi === 0 && bhi === 0) {
    r[d] = blo === 0 ? 0 : Math.floor((alo >>> 0) / (blo >>> 0)) | 0;
    r[d + 1] = 0;
    return;
  }
  if ((blo | bhi) === 0) {
    r[d] = 0;
    r[d + 1] = 0;
    return;
  }
  const a = (BigInt(ahi >>> 0) << 32n) | BigInt(alo >>> 0);
  const b = (BigInt(bhi >>> 0) << 32n) | BigInt(blo >>> 0);
  const q = a / b;
  r[d] = Number(q & 0xffffffffn) | 0;
  r[d + 1] = Number(q >> 32n) | 0;
}

function sdiv64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  const m = rzs((insn >>> 16) & 31) << 1;
  const d = wzs(insn & 31) << 1;
  const alo = r[n];
  const ahi = r[n + 1];
  const blo = r[m];
  const bhi = r[m + 1];
  if ((blo | bhi) === 0) {
    r[d] = 0;
    r[d + 1] = 0;
    return;
  }
  if (ahi === alo >> 31 && bhi === blo >> 31) {
    // both fit in int32: the quotient fits in 33 bits (only INT32_MIN / -1 exceeds int32)
    const q = Math.trunc(alo / blo);
    r[d] = q | 0;
    r[d + 1] = q < 0 ? -1 : 0;
    return;
  }
  const a = BigInt.asIntN(64, (BigInt(ahi) << 32n) | BigInt(alo >>> 0));
  const b = BigInt.asIntN(64, (BigInt(bhi) << 32n) | BigInt(blo >>> 0));
  const q = BigInt.asUintN(64, a / b); // INT64_MIN / -1 wraps to INT64_MIN
  r[d] = Number(q & 0xffffffffn) | 0;
  r[d + 1] = Number(q >> 32n) | 0;
}

function udiv32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const a = r[rzs((insn >>> 5) & 31) << 1] >>> 0;
  const b = r[rzs((insn >>> 16) & 31) << 1] >>> 0;
  const d = wzs(insn & 31) << 1;
  r[d] = b === 0 ? 0 : Math.floor(a / b) | 0;
  r[d + 1] = 0;
}

function sdiv32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const a = r[rzs((insn >>> 5) & 31) << 1];
  const b = r[rzs((insn >>> 16) & 31) << 1];
  const d = wzs(insn & 31) << 1;
  r[d] = b === 0 ? 0 : (a / b) | 0; // ToInt32 truncates toward zero; INT_MIN / -1 wraps to INT_MIN
  r[d + 1] = 0;
}

function shiftV64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  const amt = r[rzs((insn >>> 16) & 31) << 1] & 63;
  const lo = r[n];
  const hi = r[n + 1];
  let v: number;
  switch ((insn >>> 10) & 3) {
    case 0:
      v = shl64(lo, hi, amt);
      break;
    case 1:
      v = lsr64(lo, hi, amt);
      break;
    case 2:
      v = asr64(lo, hi, amt);
      break;
    default:
      v = ror64(lo, hi, amt);
  }
  const d = wzs(insn & 31) << 1;
  r[d] = v;
  r[d + 1] = rhi;
}

function shiftV32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const x = r[rzs((insn >>> 5) & 31) << 1];
  const amt = r[rzs((insn >>> 16) & 31) << 1] & 31;
  let v: number;
  switch ((insn >>> 10) & 3) {
    case 0:
      v = x << amt;
      break;
    case 1:
      v = x >>> amt;
      break;
    case 2:
      v = x >> amt;
      break;
    default:
      v = ror32(x, amt);
  }
  const d = wzs(insn & 31) << 1;
  r[d] = v;
  r[d + 1] = 0;
}

// ---- data processing (3 source) ----

function maddsub64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  const m = rzs((insn >>> 16) & 31) << 1;
  const a = rzs((insn >>> 10) & 31) << 1;
  let plo = mul64(r[n], r[n + 1], r[m], r[m + 1]);
  let phi = rhi;
  let cin = 0;
  if ((insn & 0x8000) !== 0) {
    plo = ~plo;
    phi = ~phi;
    cin = 1;
  }
  const s = (r[a] >>> 0) + (plo >>> 0) + cin;
  const hi = r[a + 1] + phi + (s >= TWO32 ? 1 : 0);
  const d = wzs(insn & 31) << 1;
  r[d] = s | 0;
  r[d + 1] = hi | 0;
}

function maddsub32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const p = Math.imul(r[rzs((insn >>> 5) & 31) << 1], r[rzs((insn >>> 16) & 31) << 1]);
  const a = r[rzs((insn >>> 10) & 31) << 1];
  const d = wzs(insn & 31) << 1;
  r[d] = (insn & 0x8000) !== 0 ? a - p : a + p;
  r[d + 1] = 0;
}

/** SMADDL, SMSUBL, UMADDL, UMSUBL: Xd = Xa +/- (W)n * (W)m. */
function maddsubLong(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const x = r[rzs((insn >>> 5) & 31) << 1];
  const y = r[rzs((insn >>> 16) & 31) << 1];
  let plo = (insn & 0x800000) !== 0 ? umul32(x, y) : smul32(x, y);
  let phi = rhi;
  let cin = 0;
  if ((insn & 0x8000) !== 0) {
    plo = ~plo;
    phi = ~phi;
    cin = 1;
  }
  const a = rzs((insn >>> 10) & 31) << 1;
  const s = (r[a] >>> 0) + (plo >>> 0) + cin;
  const hi = r[a + 1] + phi + (s >= TWO32 ? 1 : 0);
  const d = wzs(insn & 31) << 1;
  r[d] = s | 0;
  r[d + 1] = hi | 0;
}

function mulh(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  const m = rzs((insn >>> 16) & 31) << 1;
  const lo =
    (insn & 0x800000) !== 0
      ? umulh64(r[n], r[n + 1], r[m], r[m + 1])
      : smulh64(r[n], r[n + 1], r[m], r[m + 1]);
  const d = wzs(insn & 31) << 1;
  r[d] = lo;
  r[d + 1] = rhi;
}

export const patterns: Pattern[] = [
  // Logical (shifted register): sf opc 01010 shift N Rm imm6 Rn Rd
  { bits: '1xx 01010 xx x xxxxx xxxxxx xxxxx xxxxx', name: 'LOGIC_reg_x', handler: logReg64 },
  { bits: '0xx 01010 xx x xxxxx 0xxxxx xxxxx xxxxx', name: 'LOGIC_reg_w', handler: logReg32 },
  { bits: '101 01010 00 0 xxxxx 000000 11111 xxxxx', name: 'MOV_reg_x', handler: movReg64 },
  { bits: '001 01010 00 0 xxxxx 000000 11111 xxxxx', name: 'MOV_reg_w', handler: movReg32 },

  // Add/subtract (shifted register): sf op S 01011 shift 0 Rm imm6 Rn Rd (shift = 11 UNDEF in handler)
  { bits: '100 01011 xx 0 xxxxx xxxxxx xxxxx xxxxx', name: 'ADD_sreg_x', handler: addShift64 },
  { bits: '101 01011 xx 0 xxxxx xxxxxx xxxxx xxxxx', name: 'ADDS_sreg_x', handler: addsShift64 },
  { bits: '110 01011 xx 0 xxxxx xxxxxx xxxxx xxxxx', name: 'SUB_sreg_x', handler: subShift64 },
  { bits: '111 01011 xx 0 xxxxx xxxxxx xxxxx xxxxx', name: 'SUBS_sreg_x', handler: subsShift64 },
  { bits: '000 01011 xx 0 xxxxx 0xxxxx xxxxx xxxxx', name: 'ADD_sreg_w', handler: addShift32 },
  { bits: '001 01011 xx 0 xxxxx 0xxxxx xxxxx xxxxx', name: 'ADDS_sreg_w', handler: addsShift32 },
  { bits: '010 01011 xx 0 xxxxx 0xxxxx xxxxx xxxxx', name: 'SUB_sreg_w', handler: subShift32 },
  { bits: '011 01011 xx 0 xxxxx 0xxxxx xxxxx xxxxx', name: 'SUBS_sreg_w', handler: subsShift32 },

  // Add/subtract (extended register): sf op S 01011 00 1 Rm option imm3 Rn Rd (imm3 > 4 UNDEF in handler)
  { bits: '1xx 01011 00 1 xxxxx xxx xxx xxxxx xxxxx', name: 'ADDSUB_ext_x', handler: addSubExt64 },
  { bits: '0xx 01011 00 1 xxxxx xxx xxx xxxxx xxxxx', name: 'ADDSUB_ext_w', handler: addSubExt32 },

  // Add/subtract with carry: sf op S 11010000 Rm 000000 Rn Rd
  { bits: '1xx 11010000 xxxxx 000000 xxxxx xxxxx', name: 'ADC_SBC_x', handler: adcSbc64 },
  { bits: '0xx 11010000 xxxxx 000000 xxxxx xxxxx', name: 'ADC_SBC_w', handler: adcSbc32 },

  // Conditional compare: sf op 1 11010010 Rm/imm5 cond x 0 Rn 0 nzcv
  { bits: 'xx1 11010010 xxxxx xxxx x0 xxxxx 0xxxx', name: 'CCMP_CCMN', handler: ccmp },

  // Conditional select: sf op 0 11010100 Rm cond 0 o2 Rn Rd
  { bits: '1x0 11010100 xxxxx xxxx 0x xxxxx xxxxx', name: 'CSEL_x', handler: csel64 },
  { bits: '0x0 11010100 xxxxx xxxx 0x xxxxx xxxxx', name: 'CSEL_w', handler: csel32 },

  // Data processing (1 source): sf 1 0 11010110 00000 opcode Rn Rd
  { bits: '110 11010110 00000 0000xx xxxxx xxxxx', name: 'DP1_x_a', handler: dp1_64 }, // RBIT REV16 REV32 REV
  { bits: '110 11010110 00000 00010x xxxxx xxxxx', name: 'DP1_x_b', handler: dp1_64 }, // CLZ CLS
  { bits: '010 11010110 00000 00000x xxxxx xxxxx', name: 'DP1_w_a', handler: dp1_32 }, // RBIT REV16
  { bits: '010 11010110 00000 000010 xxxxx xxxxx', name: 'DP1_w_b', handler: dp1_32 }, // REV
  { bits: '010 11010110 00000 00010x xxxxx xxxxx', name: 'DP1_w_c', handler: dp1_32 }, // CLZ CLS

  // Data processing (2 source): sf 0 0 11010110 Rm opcode Rn Rd
  { bits: '100 11010110 xxxxx 000010 xxxxx xxxxx', name: 'UDIV_x', handler: udiv64 },
  { bits: '100 11010110 xxxxx 000011 xxxxx xxxxx', name: 'SDIV_x', handler: sdiv64 },
  { bits: '000 11010110 xxxxx 000010 xxxxx xxxxx', name: 'UDIV_w', handler: udiv32 },
  { bits: '000 11010110 xxxxx 000011 xxxxx xxxxx', name: 'SDIV_w', handler: sdiv32 },
  { bits: '100 11010110 xxxxx 0010xx xxxxx xxxxx', name: 'SHIFTV_x', handler: shiftV64 },
  { bits: '000 11010110 xxxxx 0010xx xxxxx xxxxx', name: 'SHIFTV_w', handler: shiftV32 },

  // Data processing (3 source): sf 00 11011 op31 Rm o0 Ra Rn Rd
  { bits: '100 11011 000 xxxxx x xxxxx xxxxx xxxxx', name: 'MADD_MSUB_x', handler: maddsub64 },
  { bits: '000 11011 000 xxxxx x xxxxx xxxxx xxxxx', name: 'MADD_MSUB_w', handler: maddsub32 },
  { bits: '100 11011 001 xxxxx x xxxxx xxxxx xxxxx', name: 'SMADDL_SMSUBL', handler: maddsubLong },
  { bits: '100 11011 101 xxxxx x xxxxx xxxxx xxxxx', name: 'UMADDL_UMSUBL', handler: maddsubLong },
  { bits: '100 11011 010 xxxxx 0 xxxxx xxxxx xxxxx', name: 'SMULH', handler: mulh },
  { bits: '100 11011 110 xxxxx 0 xxxxx xxxxx xxxxx', name: 'UMULH', handler: mulh },
];

// A64 instruction group: data processing (immediate). See decode.ts for the pattern format.
//
// PC-relative addressing (ADR, ADRP), add/subtract immediate, logical immediate, move wide,
// bitfield (SBFM, BFM, UBFM and their aliases) and extract (EXTR). ARMv8.0 only: the v8.5
// add/subtract-with-tags and v8.9 min/max immediate encodings are left unmatched (UNDEF).
//
// Register slots: cpu.r[2n] is the low half of Xn, cpu.r[2n+1] the high half; slot 31 is SP,
// slot 32 reads zero (XZR), slot 33 swallows writes to XZR.

import type { Pattern } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import {
  addFlags32,
  addFlags64,
  BITMASK_HI,
  BITMASK_LO,
  BITMASK_OK,
  lsr64,
  ones32,
  rhi,
  shl64,
  sext32,
} from '../int64.js';

const TWO32 = 4294967296;

/** Slot for reading Rn where 31 means XZR. */
const rzs = (n: number): number => (n === 31 ? 32 : n);
/** Slot for writing Rd where 31 means XZR. */
const wzs = (n: number): number => (n === 31 ? 33 : n);

// ---- PC-relative addressing ----

function adr(cpu: Arm64Cpu, insn: number): void {
  // imm = SignExtend(immhi:immlo), 21 bits
  const imm = (((((insn >>> 5) & 0x7ffff) << 2) | ((insn >>> 29) & 3)) << 11) >> 11;
  const s = (cpu.pcLo >>> 0) + imm;
  const d = wzs(insn & 31) << 1;
  const r = cpu.r;
  r[d] = s | 0;
  r[d + 1] = (cpu.pcHi + (s >= TWO32 ? 1 : s < 0 ? -1 : 0)) | 0;
}

function adrp(cpu: Arm64Cpu, insn: number): void {
  const imm = (((((insn >>> 5) & 0x7ffff) << 2) | ((insn >>> 29) & 3)) << 11) >> 11;
  // offset = imm << 12 as a 64-bit value: low half imm << 12, high half imm >> 20
  const s = ((cpu.pcLo & ~0xfff) >>> 0) + ((imm << 12) >>> 0);
  const d = wzs(insn & 31) << 1;
  const r = cpu.r;
  r[d] = s | 0;
  r[d + 1] = (cpu.pcHi + (imm >> 20) + (s >= TWO32 ? 1 : 0)) | 0;
}

// ---- add/subtract (immediate) ----

function addImm64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const n = ((insn >>> 5) & 31) << 1;
  const d = (insn & 31) << 1;
  const s = (r[n] >>> 0) + imm;
  const hi = r[n + 1] + (s >= TWO32 ? 1 : 0);
  r[d] = s | 0;
  r[d + 1] = hi | 0;
}

function subImm64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const n = ((insn >>> 5) & 31) << 1;
  const d = (insn & 31) << 1;
  const s = (r[n] >>> 0) - imm;
  const hi = r[n + 1] - (s < 0 ? 1 : 0);
  r[d] = s | 0;
  r[d + 1] = hi | 0;
}

function addsImm64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const n = ((insn >>> 5) & 31) << 1;
  const d = wzs(insn & 31) << 1;
  const lo = addFlags64(cpu, r[n], r[n + 1], imm, 0, 0);
  r[d] = lo;
  r[d + 1] = rhi;
}

function subsImm64(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const n = ((insn >>> 5) & 31) << 1;
  const d = wzs(insn & 31) << 1;
  // a - imm = a + ~imm + 1
  const lo = addFlags64(cpu, r[n], r[n + 1], ~imm, -1, 1);
  r[d] = lo;
  r[d + 1] = rhi;
}

function addImm32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const d = (insn & 31) << 1;
  r[d] = r[((insn >>> 5) & 31) << 1] + imm;
  r[d + 1] = 0;
}

function subImm32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const d = (insn & 31) << 1;
  r[d] = r[((insn >>> 5) & 31) << 1] - imm;
  r[d + 1] = 0;
}

function addsImm32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const d = wzs(insn & 31) << 1;
  r[d] = addFlags32(cpu, r[((insn >>> 5) & 31) << 1], imm, 0);
  r[d + 1] = 0;
}

function subsImm32(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  const imm = (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;
  const d = wzs(insn & 31) << 1;
  r[d] = addFlags32(cpu, r[((insn >>> 5) & 31) << 1], ~imm, 1);
  r[d + 1] = 0;
}

// ---- logical (immediate) ----

function logImm64(cpu: Arm64Cpu, insn: number): void {
  const idx = (insn >>> 10) & 0x1fff;
  if (BITMASK_OK[idx] === 0) cpu.undefinedInstruction(insn);
  const mlo = BITMASK_LO[idx];
  const mhi = BITMASK_HI[idx];
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  const a = r[n];
  const b = r[n + 1];
  const opc = (insn >>> 29) & 3;
  let lo: number;
  let hi: number;
  let d: number;
  if (opc === 1) {
    lo = a | mlo;
    hi = b | mhi;
    d = (insn & 31) << 1; // SP
  } else if (opc === 0) {
    lo = a & mlo;
    hi = b & mhi;
    d = (insn & 31) << 1;
  } else if (opc === 2) {
    lo = a ^ mlo;
    hi = b ^ mhi;
    d = (insn & 31) << 1;
  } else {
    lo = a & mlo;
    hi = b & mhi;
    d = wzs(insn & 31) << 1;
    cpu.n = hi >>> 31;
    cpu.z = (lo | hi) === 0 ? 1 : 0;
    cpu.c = 0;
    cpu.v = 0;
  }
  r[d] = lo;
  r[d + 1] = hi;
}

function logImm32(cpu: Arm64Cpu, insn: number): void {
  const idx = (insn >>> 10) & 0x1fff; // N is 0 here (pattern)
  if (BITMASK_OK[idx] === 0) cpu.undefinedInstruction(insn);
  const m = BITMASK_LO[idx];
  const r = cpu.r;
  const a = r[rzs((insn >>> 5) & 31) << 1];
  const opc = (insn >>> 29) & 3;
  let v: number;
  let d: number;
  if (opc === 1) {
    v = a | m;
    d = (insn & 31) << 1;
  } else if (opc === 0) {
    v = a & m;
    d = (insn & 31) << 1;
  } else if (opc === 2) {
    v = a ^ m;
    d = (insn & 31) << 1;
  } else {
    v = a & m;
    d = wzs(insn & 31) << 1;
    cpu.n = v >>> 31;
    cpu.z = v === 0 ? 1 : 0;
    cpu.c = 0;
    cpu.v = 0;
  }
  r[d] = v;
  r[d + 1] = 0;
}

// ---- move wide (immediate) ----

function movz64(cpu: Arm64Cpu, insn: number): void {
  const imm = (insn >>> 5) & 0xffff;
  const hw = (insn >>> 21) & 3;
  const d = wzs(insn & 31) << 1;
  const r = cpu.r;
  r[d] = hw === 0 ? imm : hw === 1 ? imm << 16 : 0;
  r[d + 1] = hw === 2 ? imm : hw === 3 ? imm << 16 : 0;
}

function movn64(cpu: Arm64Cpu, insn: number): void {
  const imm = (insn >>> 5) & 0xffff;
  const hw = (insn >>> 21) & 3;
  const d = wzs(insn & 31) << 1;
  const r = cpu.r;
  r[d] = ~(hw === 0 ? imm : hw === 1 ? imm << 16 : 0);
  r[d + 1] = ~(hw === 2 ? imm : hw === 3 ? imm << 16 : 0);
}

function movk64(cpu: Arm64Cpu, insn: number): void {
  const imm = (insn >>> 5) & 0xffff;
  const hw = (insn >>> 21) & 3;
  const d = wzs(insn & 31) << 1;
  const r = cpu.r;
  const slot = d + (hw >>> 1);
  const sh = (hw & 1) << 4;
  r[slot] = (r[slot] & ~(0xffff << sh)) | (imm << sh);
}

function movz32(cpu: Arm64Cpu, insn: number): void {
  const imm = (insn >>> 5) & 0xffff;
  const d = wzs(insn & 31) << 1;
  cpu.r[d] = (insn & 0x200000) !== 0 ? imm << 16 : imm;
  cpu.r[d + 1] = 0;
}

function movn32(cpu: Arm64Cpu, insn: number): void {
  const imm = (insn >>> 5) & 0xffff;
  const d = wzs(insn & 31) << 1;
  cpu.r[d] = ~((insn & 0x200000) !== 0 ? imm << 16 : imm);
  cpu.r[d + 1] = 0;
}

function movk32(cpu: Arm64Cpu, insn: number): void {
  const imm = (insn >>> 5) & 0xffff;
  const d = wzs(insn & 31) << 1;
  const sh = (insn & 0x200000) !== 0 ? 16 : 0;
  const r = cpu.r;
  r[d] = (r[d] & ~(0xffff << sh)) | (imm << sh);
  r[d + 1] = 0;
}

// ---- bitfield ----
// With R = immr, S = imms: if S >= R the field src<S:R> goes to bit 0 (width S-R+1);
// otherwise src<S:0> goes to bit datasize-R (width S+1).

function ubfm32(cpu: Arm64Cpu, insn: number): void {
  const immr = (insn >>> 16) & 31;
  const imms = (insn >>> 10) & 31;
  const r = cpu.r;
  const x = r[rzs((insn >>> 5) & 31) << 1];
  let v: number;
  if (imms >= immr) v = (x >>> immr) & ones32(imms - immr + 1);
  else v = (x & ones32(imms + 1)) << (32 - immr);
  const d = wzs(insn & 31) << 1;
  r[d] = v;
  r[d + 1] = 0;
}

function sbfm32(cpu: Arm64Cpu, insn: number): void {
  const immr = (insn >>> 16) & 31;
  const imms = (insn >>> 10) & 31;
  const r = cpu.r;
  const x = r[rzs((insn >>> 5) & 31) << 1];
  let v: number;
  if (imms >= immr) v = sext32(x >>> immr, imms - immr + 1);
  else v = sext32(x, imms + 1) << (32 - immr);
  const d = wzs(insn & 31) << 1;
  r[d] = v;
  r[d + 1] = 0;
}

function bfm32(cpu: Arm64Cpu, insn: number): void {
  const immr = (insn >>> 16) & 31;
  const imms = (insn >>> 10) & 31;
  const r = cpu.r;
  const x = r[rzs((insn >>> 5) & 31) << 1];
  const d = wzs(insn & 31) << 1;
  const dst = r[rzs(insn & 31) << 1];
  let v: number;
  let m: number;
  if (imms >= immr) {
    m = ones32(imms - immr + 1);
    v = (x >>> immr) & m;
  } else {
    m = ones32(imms + 1) << (32 - immr);
    v = x << (32 - immr);
  }
  r[d] = (dst & ~m) | (v & m);
  r[d + 1] = 0;
}

function ubfm64(cpu: Arm64Cpu, insn: number): void {
  const immr = (insn >>> 16) & 63;
  const imms = (insn >>> 10) & 63;
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  let lo: number;
  let hi: number;
  if (imms >= immr) {
    const w = imms - immr + 1;
    lo = lsr64(r[n], r[n + 1], immr);
    hi = rhi;
    if (w <= 32) {
      lo &= ones32(w);
      hi = 0;
    } else hi &= ones32(w - 32);
  } else {
    const w = imms + 1;
    lo = r[n];
    hi = r[n + 1];
    if (w <= 32) {
      lo &= ones32(w);
      hi = 0;
    } else hi &= ones32(w - 32);
    lo = shl64(lo, hi, 64 - immr);
    hi = rhi;
  }
  const d = wzs(insn & 31) << 1;
  r[d] = lo;
  r[d + 1] = hi;
}

function sbfm64(cpu: Arm64Cpu, insn: number): void {
  const immr = (insn >>> 16) & 63;
  const imms = (insn >>> 10) & 63;
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  let lo: number;
  let hi: number;
  let w: number;
  if (imms >= immr) {
    w = imms - immr + 1;
    lo = lsr64(r[n], r[n + 1], immr);
    hi = rhi;
  } else {
    w = imms + 1;
    lo = r[n];
    hi = r[n + 1];
  }
  if (w <= 32) {
    lo = sext32(lo, w);
    hi = lo >> 31;
  } else hi = sext32(hi, w - 32);
  if (imms < immr) {
    lo = shl64(lo, hi, 64 - immr);
    hi = rhi;
  }
  const d = wzs(insn & 31) << 1;
  r[d] = lo;
  r[d + 1] = hi;
}

function bfm64(cpu: Arm64Cpu, insn: number): void {
  const immr = (insn >>> 16) & 63;
  const imms = (insn >>> 10) & 63;
  const r = cpu.r;
  const n = rzs((insn >>> 5) & 31) << 1;
  let lo: number;
  let hi: number;
  let w: number;
  if (imms >= immr) {
    w = imms - immr + 1;
    lo = lsr64(r[n], r[n + 1], immr);
    hi = rhi;
  } else {
    w = imms + 1;
    lo = r[n];
    hi = r[n + 1];
  }
  let mlo = w >= 32 ? -1 : (1 << w) - 1;
  let mhi = w > 32 ? ones32(w - 32) : 0;
  if (imms < immr) {
    lo = shl64(lo, hi, 64 - immr);
    hi = rhi;
    mlo = shl64(mlo, mhi, 64 - immr);
    mhi = rhi;
  }
  const ds = rzs(insn & 31) << 1;
  const d = wzs(insn & 31) << 1;
  const dlo = r[ds];
  const dhi = r[ds + 1];
  r[d] = (dlo & ~mlo) | (lo & mlo);
  r[d + 1] = (dhi & ~mhi) | (hi & mhi);
}

// ---- extract ----

function extr64(cpu: Arm64Cpu, insn: number): void {
  const lsb = (insn >>> 10) & 63;
  const r = cpu.r;
  const m = rzs((insn >>> 16) & 31) << 1;
  const n = rzs((insn >>> 5) & 31) << 1;
  // 128-bit Xn:Xm shifted right by lsb; words w0..w3 = m.lo, m.hi, n.lo, n.hi
  const w0 = r[m];
  const w1 = r[m + 1];
  const w2 = r[n];
  const w3 = r[n + 1];
  let lo: number;
  let hi: number;
  const s = lsb & 31;
  if (lsb < 32) {
    lo = s === 0 ? w0 : (w0 >>> s) | (w1 << (32 - s));
    hi = s === 0 ? w1 : (w1 >>> s) | (w2 << (32 - s));
  } else {
    lo = s === 0 ? w1 : (w1 >>> s) | (w2 << (32 - s));
    hi = s === 0 ? w2 : (w2 >>> s) | (w3 << (32 - s));
  }
  const d = wzs(insn & 31) << 1;
  r[d] = lo;
  r[d + 1] = hi;
}

function extr32(cpu: Arm64Cpu, insn: number): void {
  const lsb = (insn >>> 10) & 31;
  const r = cpu.r;
  const m = r[rzs((insn >>> 16) & 31) << 1];
  const n = r[rzs((insn >>> 5) & 31) << 1];
  const d = wzs(insn & 31) << 1;
  r[d] = lsb === 0 ? m : (m >>> lsb) | (n << (32 - lsb));
  r[d + 1] = 0;
}

export const patterns: Pattern[] = [
  { bits: '0xx10000 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'ADR', handler: adr },
  { bits: '1xx10000 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'ADRP', handler: adrp },

  // sf op S 100010 sh imm12 Rn Rd
  { bits: '100 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'ADD_imm_x', handler: addImm64 },
  { bits: '101 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'ADDS_imm_x', handler: addsImm64 },
  { bits: '110 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'SUB_imm_x', handler: subImm64 },
  { bits: '111 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'SUBS_imm_x', handler: subsImm64 },
  { bits: '000 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'ADD_imm_w', handler: addImm32 },
  { bits: '001 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'ADDS_imm_w', handler: addsImm32 },
  { bits: '010 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'SUB_imm_w', handler: subImm32 },
  { bits: '011 100010 x xxxxxxxxxxxx xxxxx xxxxx', name: 'SUBS_imm_w', handler: subsImm32 },

  // sf opc 100100 N immr imms Rn Rd (32-bit forms need N = 0)
  { bits: '1xx 100100 x xxxxxx xxxxxx xxxxx xxxxx', name: 'LOGIC_imm_x', handler: logImm64 },
  { bits: '0xx 100100 0 xxxxxx xxxxxx xxxxx xxxxx', name: 'LOGIC_imm_w', handler: logImm32 },

  // sf opc 100101 hw imm16 Rd (opc = 01 unallocated; 32-bit forms need hw < 2)
  { bits: '100 100101 xx xxxxxxxxxxxxxxxx xxxxx', name: 'MOVN_x', handler: movn64 },
  { bits: '110 100101 xx xxxxxxxxxxxxxxxx xxxxx', name: 'MOVZ_x', handler: movz64 },
  { bits: '111 100101 xx xxxxxxxxxxxxxxxx xxxxx', name: 'MOVK_x', handler: movk64 },
  { bits: '000 100101 0x xxxxxxxxxxxxxxxx xxxxx', name: 'MOVN_w', handler: movn32 },
  { bits: '010 100101 0x xxxxxxxxxxxxxxxx xxxxx', name: 'MOVZ_w', handler: movz32 },
  { bits: '011 100101 0x xxxxxxxxxxxxxxxx xxxxx', name: 'MOVK_w', handler: movk32 },

  // sf opc 100110 N immr imms Rn Rd (N must equal sf; 32-bit: immr, imms < 32)
  { bits: '100 100110 1 xxxxxx xxxxxx xxxxx xxxxx', name: 'SBFM_x', handler: sbfm64 },
  { bits: '101 100110 1 xxxxxx xxxxxx xxxxx xxxxx', name: 'BFM_x', handler: bfm64 },
  { bits: '110 100110 1 xxxxxx xxxxxx xxxxx xxxxx', name: 'UBFM_x', handler: ubfm64 },
  { bits: '000 100110 0 0xxxxx 0xxxxx xxxxx xxxxx', name: 'SBFM_w', handler: sbfm32 },
  { bits: '001 100110 0 0xxxxx 0xxxxx xxxxx xxxxx', name: 'BFM_w', handler: bfm32 },
  { bits: '010 100110 0 0xxxxx 0xxxxx xxxxx xxxxx', name: 'UBFM_w', handler: ubfm32 },

  // sf op21 100111 N o0 Rm imms Rn Rd (only op21 = 00, o0 = 0; N = sf)
  { bits: '100 100111 1 0 xxxxx xxxxxx xxxxx xxxxx', name: 'EXTR_x', handler: extr64 },
  { bits: '000 100111 0 0 xxxxx 0xxxxx xxxxx xxxxx', name: 'EXTR_w', handler: extr32 },
];

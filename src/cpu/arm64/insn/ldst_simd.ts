// A64 loads and stores of SIMD & FP registers (ARMv8.0): LDR/STR B/H/S/D/Q in the unsigned-offset,
// unscaled, pre-index, post-index, register-offset and literal (S/D/Q) forms; LDP/STP/LDNP/STNP of
// S/D/Q; LD1-LD4/ST1-ST4 (multiple structures), LD1-LD4/ST1-ST4 (single structure, one lane) and
// LD1R-LD4R, each with the post-index immediate and register forms.
//
// Every handler calls cpu.checkFp() first. A load that writes less than 128 bits zeroes the rest of
// the register, except the lane loads, which keep the other lanes. Load pair with Rt == Rt2 is UNDEF
// (the CONSTRAINED UNPREDICTABLE choice made for the general-register pairs too).

import type { Pattern } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import { A, addrImm, addrAdd, addrPc, addrReg, spCheck, writeback, writebackReg } from './ldst_common.js';

/** Load a scalar of 2^scale bytes (scale 0..4) at A into V[t], zeroing the rest of the register. */
function vLoad(cpu: Arm64Cpu, t: number, scale: number): void {
  const mmu = cpu.mmu;
  const u = cpu.vU32;
  const b = t << 2;
  const lo = A.lo;
  const hi = A.hi;
  let w0 = 0;
  let w1 = 0;
  let w2 = 0;
  let w3 = 0;
  switch (scale) {
    case 0:
      w0 = mmu.read8(lo, hi);
      break;
    case 1:
      w0 = mmu.read16(lo, hi);
      break;
    case 2:
      w0 = mmu.read32(lo, hi);
      break;
    case 3:
      w0 = mmu.read64(lo, hi);
      w1 = mmu.hi;
      break;
    default:
      w0 = mmu.read64(lo, hi);
      w1 = mmu.hi;
      addrAdd(lo, hi, 8);
      w2 = mmu.read64(A.lo, A.hi);
      w3 = mmu.hi;
  }
  u[b] = w0;
  u[b + 1] = w1;
  u[b + 2] = w2;
  u[b + 3] = w3;
}

/** Store the low 2^scale bytes of V[t] at A. */
function vStore(cpu: Arm64Cpu, t: number, scale: number): void {
  const mmu = cpu.mmu;
  const u = cpu.vU32;
  const b = t << 2;
  const lo = A.lo;
  const hi = A.hi;
  switch (scale) {
    case 0:
      mmu.write8(lo, hi, u[b] & 0xff);
      break;
    case 1:
      mmu.write16(lo, hi, u[b] & 0xffff);
      break;
    case 2:
      mmu.write32(lo, hi, u[b]);
      break;
    case 3:
      mmu.write64(lo, hi, u[b], u[b + 1]);
      break;
    default: {
      const c = u[b + 2];
      const d = u[b + 3];
      mmu.write64(lo, hi, u[b], u[b + 1]);
      addrAdd(lo, hi, 8);
      mmu.write64(A.lo, A.hi, c, d);
    }
  }
}

/** size:opc of the single-register forms -> scale (0..4), or -1 when unallocated (also wasm/emit.ts). */
export function scaleOf(insn: number): number {
  const size = insn >>> 30;
  const opc = (insn >>> 22) & 3;
  if ((opc & 2) === 0) return size;
  return size === 0 ? 4 : -1;
}

function vUimm(cpu: Arm64Cpu, insn: number): void {
  const scale = scaleOf(insn);
  if (scale < 0) cpu.undefinedInstruction(insn);
  cpu.checkFp();
  const n = (insn >>> 5) & 31;
  spCheck(cpu, n);
  addrImm(cpu, n, ((insn >>> 10) & 0xfff) << scale);
  if ((insn & 0x400000) !== 0) vLoad(cpu, insn & 31, scale);
  else vStore(cpu, insn & 31, scale);
}

function vImm9(cpu: Arm64Cpu, insn: number): void {
  const scale = scaleOf(insn);
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 3 pre (2, unprivileged, is unallocated for V = 1)
  if (scale < 0 || mode === 2) cpu.undefinedInstruction(insn);
  cpu.checkFp();
  const n = (insn >>> 5) & 31;
  const imm = (insn << 11) >> 23;
  spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  if ((insn & 0x400000) !== 0) vLoad(cpu, insn & 31, scale);
  else vStore(cpu, insn & 31, scale);
  if (mode !== 0) writeback(cpu, n, imm);
}

function vReg(cpu: Arm64Cpu, insn: number): void {
  const scale = scaleOf(insn);
  const option = (insn >>> 13) & 7;
  if (scale < 0 || (option & 2) === 0) cpu.undefinedInstruction(insn);
  cpu.checkFp();
  const n = (insn >>> 5) & 31;
  spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? scale : 0);
  if ((insn & 0x400000) !== 0) vLoad(cpu, insn & 31, scale);
  else vStore(cpu, insn & 31, scale);
}

function vLit(cpu: Arm64Cpu, insn: number): void {
  const opc = insn >>> 30;
  if (opc === 3) cpu.undefinedInstruction(insn);
  cpu.checkFp();
  addrPc(cpu, ((insn << 8) >> 11) & ~3);
  vLoad(cpu, insn & 31, opc + 2);
}

/** LDP/STP/LDNP/STNP of S/D/Q registers. */
function vPair(cpu: Arm64Cpu, insn: number): void {
  const opc = insn >>> 30;
  if (opc === 3) cpu.undefinedInstruction(insn);
  const load = (insn >>> 22) & 1;
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  if (load && t === t2) cpu.undefinedInstruction(insn);
  cpu.checkFp();
  const mode = (insn >>> 23) & 3; // 0 no-allocate, 1 post, 2 offset, 3 pre
  const scale = opc + 2;
  const imm = ((insn << 10) >> 25) << scale;
  const n = (insn >>> 5) & 31;
  spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const lo = A.lo;
  const hi = A.hi;
  if (load) {
    // Read both before writing either register (a fault on the second leaves both unchanged).
    vLoad(cpu, 32, scale); // the scratch slot at byte 512
    addrAdd(lo, hi, 1 << scale);
    vLoad(cpu, t2, scale);
    cpu.vU32.copyWithin(t << 2, 128, 132);
  } else {
    vStore(cpu, t, scale);
    addrAdd(lo, hi, 1 << scale);
    vStore(cpu, t2, scale);
  }
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

// ---- structures ----

/** Load one element of 2^esz bytes at A into lane `e` of V[t] (other lanes kept). */
function loadLane(cpu: Arm64Cpu, t: number, esz: number, e: number): void {
  const mmu = cpu.mmu;
  switch (esz) {
    case 0:
      cpu.vU8[(t << 4) + e] = mmu.read8(A.lo, A.hi);
      break;
    case 1:
      cpu.vU16[(t << 3) + e] = mmu.read16(A.lo, A.hi);
      break;
    case 2:
      cpu.vU32[(t << 2) + e] = mmu.read32(A.lo, A.hi);
      break;
    default: {
      const v = mmu.read64(A.lo, A.hi);
      cpu.vU32[(t << 2) + 2 * e] = v;
      cpu.vU32[(t << 2) + 2 * e + 1] = mmu.hi;
    }
  }
}

function storeLane(cpu: Arm64Cpu, t: number, esz: number, e: number): void {
  const mmu = cpu.mmu;
  switch (esz) {
    case 0:
      mmu.write8(A.lo, A.hi, cpu.vU8[(t << 4) + e]);
      break;
    case 1:
      mmu.write16(A.lo, A.hi, cpu.vU16[(t << 3) + e]);
      break;
    case 2:
      mmu.write32(A.lo, A.hi, cpu.vU32[(t << 2) + e]);
      break;
    default:
      mmu.write64(A.lo, A.hi, cpu.vU32[(t << 2) + 2 * e], cpu.vU32[(t << 2) + 2 * e + 1]);
  }
}

const REP8 = new Uint8Array(32);
const REP16 = new Uint16Array(REP8.buffer);
const REP32 = new Uint32Array(REP8.buffer);

function zeroUpper(cpu: Arm64Cpu, t: number): void {
  cpu.vU32[(t << 2) + 2] = 0;
  cpu.vU32[(t << 2) + 3] = 0;
}

/** LD1-LD4 / ST1-ST4 (multiple structures), with or without post-index. */
function vMulti(cpu: Arm64Cpu, insn: number): void {
  const q = (insn >>> 30) & 1;
  const load = (insn >>> 22) & 1;
  const opcode = (insn >>> 12) & 15;
  const size = (insn >>> 10) & 3;
  const post = (insn & 0x800000) !== 0;
  let rpt: number;
  let selem: number;
  switch (opcode) {
    case 0:
      rpt = 1;
      selem = 4;
      break;
    case 2:
      rpt = 4;
      selem = 1;
      break;
    case 4:
      rpt = 1;
      selem = 3;
      break;
    case 6:
      rpt = 3;
      selem = 1;
      break;
    case 7:
      rpt = 1;
      selem = 1;
      break;
    case 8:
      rpt = 1;
      selem = 2;
      break;
    case 10:
      rpt = 2;
      selem = 1;
      break;
    default:
      cpu.undefinedInstruction(insn);
  }
  if (size === 3 && q === 0 && selem !== 1) cpu.undefinedInstruction(insn);
  if (!post && ((insn >>> 16) & 31) !== 0) cpu.undefinedInstruction(insn);
  cpu.checkFp();
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  spCheck(cpu, n);
  const r = cpu.r;
  const baseLo = r[n << 1] >>> 0;
  const baseHi = r[(n << 1) | 1] >>> 0;
  const bytes = q ? 16 : 8;
  const nregs = rpt * selem;
  if (selem === 1) {
    // LD1/ST1: registers are consecutive in memory whatever the element size (little-endian).
    const u = cpu.vU32;
    const mmu = cpu.mmu;
    let off = 0;
    for (let k = 0; k < nregs; k++) {
      const b = ((t + k) & 31) << 2;
      for (let h = 0; h < bytes; h += 8) {
        addrAdd(baseLo, baseHi, off);
        if (load) {
          const v = mmu.read64(A.lo, A.hi);
          u[b + (h >>> 2)] = v;
          u[b + (h >>> 2) + 1] = mmu.hi;
        } else {
          mmu.write64(A.lo, A.hi, u[b + (h >>> 2)], u[b + (h >>> 2) + 1]);
        }
        off += 8;
      }
      if (load && !q) zeroUpper(cpu, (t + k) & 31);
    }
  } else {
    const elements = bytes >>> size;
    const ebytes = 1 << size;
    let off = 0;
    for (let e = 0; e < elements; e++) {
      for (let s = 0; s < selem; s++) {
        addrAdd(baseLo, baseHi, off);
        if (load) loadLane(cpu, (t + s) & 31, size, e);
        else storeLane(cpu, (t + s) & 31, size, e);
        off += ebytes;
      }
    }
    if (load && !q) for (let s = 0; s < selem; s++) zeroUpper(cpu, (t + s) & 31);
  }
  if (post) {
    const m = (insn >>> 16) & 31;
    if (m === 31) writeback(cpu, n, bytes * nregs);
    else writebackReg(cpu, n, m);
  }
}

/** LD1-LD4 / ST1-ST4 (single structure) and LD1R-LD4R, with or without post-index. */
function vSingle(cpu: Arm64Cpu, insn: number): void {
  const q = (insn >>> 30) & 1;
  const load = (insn >>> 22) & 1;
  const rbit = (insn >>> 21) & 1;
  const opcode = (insn >>> 13) & 7;
  const sbit = (insn >>> 12) & 1;
  const size = (insn >>> 10) & 3;
  const post = (insn & 0x800000) !== 0;
  const selem = (((opcode & 1) << 1) | rbit) + 1;
  let scale = opcode >>> 1;
  let index = 0;
  let replicate = false;
  switch (scale) {
    case 3:
      if (!load || sbit) cpu.undefinedInstruction(insn);
      scale = size;
      replicate = true;
      break;
    case 0:
      index = (q << 3) | (sbit << 2) | size;
      break;
    case 1:
      if (size & 1) cpu.undefinedInstruction(insn);
      index = (q << 2) | (sbit << 1) | (size >>> 1);
      break;
    default:
      if (size & 2) cpu.undefinedInstruction(insn);
      if ((size & 1) === 0) index = (q << 1) | sbit;
      else {
        if (sbit) cpu.undefinedInstruction(insn);
        index = q;
        scale = 3;
      }
  }
  if (!post && ((insn >>> 16) & 31) !== 0) cpu.undefinedInstruction(insn);
  cpu.checkFp();
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  spCheck(cpu, n);
  const r = cpu.r;
  const baseLo = r[n << 1] >>> 0;
  const baseHi = r[(n << 1) | 1] >>> 0;
  const ebytes = 1 << scale;
  if (replicate) {
    // Read every element first (a fault leaves the registers unchanged), then replicate.
    const mmu = cpu.mmu;
    for (let s = 0; s < selem; s++) {
      addrAdd(baseLo, baseHi, s * ebytes);
      switch (scale) {
        case 0:
          REP8[s] = mmu.read8(A.lo, A.hi);
          break;
        case 1:
          REP16[s] = mmu.read16(A.lo, A.hi);
          break;
        case 2:
          REP32[s] = mmu.read32(A.lo, A.hi);
          break;
        default:
          REP32[2 * s] = mmu.read64(A.lo, A.hi);
          REP32[2 * s + 1] = mmu.hi;
      }
    }
    const u8 = cpu.vU8;
    const lanes = (q ? 16 : 8) >>> scale;
    for (let s = 0; s < selem; s++) {
      const d = ((t + s) & 31) << 4;
      for (let e = 0; e < lanes; e++) {
        for (let k = 0; k < ebytes; k++) u8[d + e * ebytes + k] = REP8[s * ebytes + k];
      }
      if (!q) zeroUpper(cpu, (t + s) & 31);
    }
  } else {
    for (let s = 0; s < selem; s++) {
      addrAdd(baseLo, baseHi, s * ebytes);
      if (load) loadLane(cpu, (t + s) & 31, scale, index);
      else storeLane(cpu, (t + s) & 31, scale, index);
    }
  }
  if (post) {
    const m = (insn >>> 16) & 31;
    if (m === 31) writeback(cpu, n, selem * ebytes);
    else writebackReg(cpu, n, m);
  }
}

export const patterns: Pattern[] = [
  // literal: opc 011 V=1 00 imm19 Rt
  { bits: 'xx 011 1 00 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'LDR_lit_fp', handler: vLit },
  { bits: 'xx 111 1 01 xx xxxxxxxxxxxx xxxxx xxxxx', name: 'LDST_uimm_fp', handler: vUimm },
  { bits: 'xx 111 1 00 xx 0 xxxxxxxxx xx xxxxx xxxxx', name: 'LDST_imm9_fp', handler: vImm9 },
  { bits: 'xx 111 1 00 xx 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'LDST_reg_fp', handler: vReg },
  { bits: 'xx 101 1 0xx x xxxxxxx xxxxx xxxxx xxxxx', name: 'LDST_pair_fp', handler: vPair },
  // multiple structures: 0 Q 0011000 L 000000 opcode size Rn Rt; post: 0 Q 0011001 L 0 Rm opcode size Rn Rt
  { bits: '0 x 0011000 x 000000 xxxx xx xxxxx xxxxx', name: 'LDST_multi', handler: vMulti },
  { bits: '0 x 0011001 x 0 xxxxx xxxx xx xxxxx xxxxx', name: 'LDST_multi_post', handler: vMulti },
  // single structure: 0 Q 0011010 L R 00000 opcode S size Rn Rt; post: 0 Q 0011011 L R Rm opcode S size Rn Rt
  { bits: '0 x 0011010 x x 00000 xxx x xx xxxxx xxxxx', name: 'LDST_single', handler: vSingle },
  { bits: '0 x 0011011 x x xxxxx xxx x xx xxxxx xxxxx', name: 'LDST_single_post', handler: vSingle },
];

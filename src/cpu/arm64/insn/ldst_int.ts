// A64 loads and stores of general-purpose registers (ARMv8.0): LDR/STR B/H/W/X and the sign-extending
// loads in the unsigned-offset, unscaled (LDUR/STUR), pre-index, post-index, register-offset and
// unprivileged (LDTR/STTR) forms; literal loads (LDR W/X, LDRSW, PRFM); LDP/STP/LDPSW/LDNP/STNP;
// PRFM/PRFUM (no-ops); the exclusives LDXR/STXR (B/H/W/X, acquire/release forms) and LDXP/STXP;
// LDAR/STLR.
//
// Not matched (UNDEF): ARMv8.1 atomics (LDADD, SWP, CAS, CASP), LDLAR/STLLR, v8.3 LDRAA/LDRAB and
// LDAPR, v8.4 LDAPUR/STLUR, v8.5 STGP.
//
// CONSTRAINED UNPREDICTABLE choices (all UNDEF, one rule everywhere): a writeback form whose base
// Rn (not SP) is also a transfer register Rt/Rt2 (loads and stores); a load pair with Rt == Rt2;
// a store-exclusive whose status register Ws is Rt, Rt2 or the base Rn (not SP).
//
// Register slots: cpu.r[2n] low half, cpu.r[2n+1] high half; slot 31 is SP, slot 32 reads zero.

import type { Pattern } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import { ACC_ALIGN, ACC_UNPRIV } from '../mmu.js';
import { A, addrImm, addrAdd, addrPc, addrReg, spCheck, writeback } from './ldst_common.js';

const rzs = (n: number): number => (n === 31 ? 32 : n);
const wzs = (n: number): number => (n === 31 ? 33 : n);

/**
 * Load or store a general register at address A. k = size << 2 | opc:
 * 0 STRB 1 LDRB 2 LDRSB(X) 3 LDRSB(W) | 4 STRH 5 LDRH 6 LDRSH(X) 7 LDRSH(W) |
 * 8 STR(W) 9 LDR(W) 10 LDRSW | 12 STR(X) 13 LDR(X) 14 PRFM.
 */
function gprOp(cpu: Arm64Cpu, k: number, t: number, flags: number): void {
  const mmu = cpu.mmu;
  const r = cpu.r;
  const lo = A.lo;
  const hi = A.hi;
  const ts = rzs(t) << 1;
  const d = wzs(t) << 1;
  let v: number;
  switch (k) {
    case 0:
      mmu.write8(lo, hi, r[ts] & 0xff, flags);
      return;
    case 1:
      v = mmu.read8(lo, hi, flags);
      r[d] = v;
      r[d + 1] = 0;
      return;
    case 2:
      v = (mmu.read8(lo, hi, flags) << 24) >> 24;
      r[d] = v;
      r[d + 1] = v >> 31;
      return;
    case 3:
      r[d] = (mmu.read8(lo, hi, flags) << 24) >> 24;
      r[d + 1] = 0;
      return;
    case 4:
      mmu.write16(lo, hi, r[ts] & 0xffff, flags);
      return;
    case 5:
      v = mmu.read16(lo, hi, flags);
      r[d] = v;
      r[d + 1] = 0;
      return;
    case 6:
      v = (mmu.read16(lo, hi, flags) << 16) >> 16;
      r[d] = v;
      r[d + 1] = v >> 31;
      return;
    case 7:
      r[d] = (mmu.read16(lo, hi, flags) << 16) >> 16;
      r[d + 1] = 0;
      return;
    case 8:
      mmu.write32(lo, hi, r[ts], flags);
      return;
    case 9:
      r[d] = mmu.read32(lo, hi, flags);
      r[d + 1] = 0;
      return;
    case 10:
      v = mmu.read32(lo, hi, flags) | 0;
      r[d] = v;
      r[d + 1] = v >> 31;
      return;
    case 12:
      mmu.write64(lo, hi, r[ts], r[ts + 1], flags);
      return;
    case 13:
      v = mmu.read64(lo, hi, flags);
      r[d] = v;
      r[d + 1] = mmu.hi;
      return;
    default:
      return; // PRFM
  }
}

const kindOf = (insn: number): number => ((insn >>> 28) & 12) | ((insn >>> 22) & 3);

// ---- literal ----

function ldrLit(cpu: Arm64Cpu, insn: number): void {
  const opc = insn >>> 30;
  if (opc === 3) return; // PRFM (literal)
  addrPc(cpu, ((insn << 8) >> 11) & ~3);
  const d = wzs(insn & 31) << 1;
  const r = cpu.r;
  if (opc === 0) {
    r[d] = cpu.mmu.read32(A.lo, A.hi);
    r[d + 1] = 0;
  } else if (opc === 1) {
    const v = cpu.mmu.read64(A.lo, A.hi);
    r[d] = v;
    r[d + 1] = cpu.mmu.hi;
  } else {
    const v = cpu.mmu.read32(A.lo, A.hi) | 0;
    r[d] = v;
    r[d + 1] = v >> 31;
  }
}

// ---- unsigned offset ----

function ldstUimm(cpu: Arm64Cpu, insn: number): void {
  const k = kindOf(insn);
  if (k === 11 || k === 15) cpu.undefinedInstruction(insn);
  if (k === 14) return; // PRFM (immediate)
  const n = (insn >>> 5) & 31;
  spCheck(cpu, n);
  addrImm(cpu, n, ((insn >>> 10) & 0xfff) << (insn >>> 30));
  gprOp(cpu, k, insn & 31, 0);
}

// Specialised hot forms.
function ldrXUimm(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + (((insn >>> 10) & 0xfff) << 3);
  const lo = s | 0;
  const hi = (r[(n << 1) | 1] + (s >= 4294967296 ? 1 : 0)) | 0;
  const mmu = cpu.mmu;
  const v = mmu.read64(lo, hi);
  const d = wzs(insn & 31) << 1;
  r[d] = v;
  r[d + 1] = mmu.hi;
}

function strXUimm(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + (((insn >>> 10) & 0xfff) << 3);
  const lo = s | 0;
  const hi = (r[(n << 1) | 1] + (s >= 4294967296 ? 1 : 0)) | 0;
  const ts = rzs(insn & 31) << 1;
  cpu.mmu.write64(lo, hi, r[ts], r[ts + 1]);
}

function ldrWUimm(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + (((insn >>> 10) & 0xfff) << 2);
  const lo = s | 0;
  const hi = (r[(n << 1) | 1] + (s >= 4294967296 ? 1 : 0)) | 0;
  const d = wzs(insn & 31) << 1;
  r[d] = cpu.mmu.read32(lo, hi);
  r[d + 1] = 0;
}

function strWUimm(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + (((insn >>> 10) & 0xfff) << 2);
  const lo = s | 0;
  const hi = (r[(n << 1) | 1] + (s >= 4294967296 ? 1 : 0)) | 0;
  cpu.mmu.write32(lo, hi, r[rzs(insn & 31) << 1]);
}

function ldrbUimm(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + ((insn >>> 10) & 0xfff);
  const lo = s | 0;
  const hi = (r[(n << 1) | 1] + (s >= 4294967296 ? 1 : 0)) | 0;
  const d = wzs(insn & 31) << 1;
  r[d] = cpu.mmu.read8(lo, hi);
  r[d + 1] = 0;
}

function strbUimm(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  const r = cpu.r;
  const s = (r[n << 1] >>> 0) + ((insn >>> 10) & 0xfff);
  const lo = s | 0;
  const hi = (r[(n << 1) | 1] + (s >= 4294967296 ? 1 : 0)) | 0;
  cpu.mmu.write8(lo, hi, r[rzs(insn & 31) << 1] & 0xff);
}

// ---- 9-bit signed immediate: unscaled, post-index, unprivileged, pre-index ----

function ldstImm9(cpu: Arm64Cpu, insn: number): void {
  const k = kindOf(insn);
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 2 unprivileged, 3 pre
  if (k === 11 || k === 15 || (k === 14 && mode !== 0)) cpu.undefinedInstruction(insn);
  if (k === 14) return; // PRFUM
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const imm = (insn << 11) >> 23;
  if ((mode & 1) !== 0 && n === t && n !== 31) cpu.undefinedInstruction(insn);
  spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  gprOp(cpu, k, t, mode === 2 ? ACC_UNPRIV : 0);
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

// ---- register offset ----

function ldstReg(cpu: Arm64Cpu, insn: number): void {
  const k = kindOf(insn);
  const option = (insn >>> 13) & 7;
  if (k === 11 || k === 15 || (option & 2) === 0) cpu.undefinedInstruction(insn);
  if (k === 14) return; // PRFM (register)
  const n = (insn >>> 5) & 31;
  spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? insn >>> 30 : 0);
  gprOp(cpu, k, insn & 31, 0);
}

// Specialised register-offset and 9-bit-immediate forms of the most frequent loads and stores.

function ldrXReg(cpu: Arm64Cpu, insn: number): void {
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0) cpu.undefinedInstruction(insn);
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if (n === 31) spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? 3 : 0);
  const r = cpu.r;
  const v = cpu.mmu.read64(A.lo, A.hi);
  const d = wzs(t) << 1;
  r[d] = v;
  r[d + 1] = cpu.mmu.hi;
}

function ldrXImm9(cpu: Arm64Cpu, insn: number): void {
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 2 unprivileged, 3 pre
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const imm = (insn << 11) >> 23;
  if ((mode & 1) !== 0 && n === t && n !== 31) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const r = cpu.r;
  const v = cpu.mmu.read64(A.lo, A.hi, mode === 2 ? ACC_UNPRIV : 0);
  const d = wzs(t) << 1;
  r[d] = v;
  r[d + 1] = cpu.mmu.hi;
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

function strXReg(cpu: Arm64Cpu, insn: number): void {
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0) cpu.undefinedInstruction(insn);
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if (n === 31) spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? 3 : 0);
  const r = cpu.r;
  const ts = rzs(t) << 1;
  cpu.mmu.write64(A.lo, A.hi, r[ts], r[ts + 1]);
}

function strXImm9(cpu: Arm64Cpu, insn: number): void {
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 2 unprivileged, 3 pre
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const imm = (insn << 11) >> 23;
  if ((mode & 1) !== 0 && n === t && n !== 31) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const r = cpu.r;
  const ts = rzs(t) << 1;
  cpu.mmu.write64(A.lo, A.hi, r[ts], r[ts + 1], mode === 2 ? ACC_UNPRIV : 0);
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

function ldrWReg(cpu: Arm64Cpu, insn: number): void {
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0) cpu.undefinedInstruction(insn);
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if (n === 31) spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? 2 : 0);
  const r = cpu.r;
  const d = wzs(t) << 1;
  r[d] = cpu.mmu.read32(A.lo, A.hi);
  r[d + 1] = 0;
}

function ldrWImm9(cpu: Arm64Cpu, insn: number): void {
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 2 unprivileged, 3 pre
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const imm = (insn << 11) >> 23;
  if ((mode & 1) !== 0 && n === t && n !== 31) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const r = cpu.r;
  const d = wzs(t) << 1;
  r[d] = cpu.mmu.read32(A.lo, A.hi, mode === 2 ? ACC_UNPRIV : 0);
  r[d + 1] = 0;
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

function strWReg(cpu: Arm64Cpu, insn: number): void {
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0) cpu.undefinedInstruction(insn);
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if (n === 31) spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? 2 : 0);
  const r = cpu.r;
  cpu.mmu.write32(A.lo, A.hi, r[rzs(t) << 1]);
}

function strWImm9(cpu: Arm64Cpu, insn: number): void {
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 2 unprivileged, 3 pre
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const imm = (insn << 11) >> 23;
  if ((mode & 1) !== 0 && n === t && n !== 31) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const r = cpu.r;
  cpu.mmu.write32(A.lo, A.hi, r[rzs(t) << 1], mode === 2 ? ACC_UNPRIV : 0);
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

function ldrbReg(cpu: Arm64Cpu, insn: number): void {
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0) cpu.undefinedInstruction(insn);
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if (n === 31) spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? 0 : 0);
  const r = cpu.r;
  const d = wzs(t) << 1;
  r[d] = cpu.mmu.read8(A.lo, A.hi);
  r[d + 1] = 0;
}

function ldrbImm9(cpu: Arm64Cpu, insn: number): void {
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 2 unprivileged, 3 pre
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const imm = (insn << 11) >> 23;
  if ((mode & 1) !== 0 && n === t && n !== 31) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const r = cpu.r;
  const d = wzs(t) << 1;
  r[d] = cpu.mmu.read8(A.lo, A.hi, mode === 2 ? ACC_UNPRIV : 0);
  r[d + 1] = 0;
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

function strbReg(cpu: Arm64Cpu, insn: number): void {
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0) cpu.undefinedInstruction(insn);
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if (n === 31) spCheck(cpu, n);
  addrReg(cpu, n, (insn >>> 16) & 31, option, (insn & 0x1000) !== 0 ? 0 : 0);
  const r = cpu.r;
  cpu.mmu.write8(A.lo, A.hi, r[rzs(t) << 1] & 0xff);
}

function strbImm9(cpu: Arm64Cpu, insn: number): void {
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post, 2 unprivileged, 3 pre
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  const imm = (insn << 11) >> 23;
  if ((mode & 1) !== 0 && n === t && n !== 31) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const r = cpu.r;
  cpu.mmu.write8(A.lo, A.hi, r[rzs(t) << 1] & 0xff, mode === 2 ? ACC_UNPRIV : 0);
  if ((mode & 1) !== 0) writeback(cpu, n, imm);
}

// ---- pairs ----

/** LDP/STP/LDPSW/LDNP/STNP (general registers). */
function ldstPair(cpu: Arm64Cpu, insn: number): void {
  const opc = insn >>> 30;
  const mode = (insn >>> 23) & 3; // 0 no-allocate, 1 post, 2 offset, 3 pre
  const load = (insn >>> 22) & 1;
  if (opc === 3 || (opc === 1 && (load === 0 || mode === 0))) cpu.undefinedInstruction(insn);
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  const x = opc === 2;
  const imm = ((insn << 10) >> 25) << (x ? 3 : 2);
  if (load && t === t2) cpu.undefinedInstruction(insn);
  const wb = (mode & 1) !== 0;
  if (wb && n !== 31 && (n === t || n === t2)) cpu.undefinedInstruction(insn);
  spCheck(cpu, n);
  addrImm(cpu, n, mode === 1 ? 0 : imm);
  const lo = A.lo;
  const hi = A.hi;
  const mmu = cpu.mmu;
  const r = cpu.r;
  if (x) {
    addrAdd(lo, hi, 8);
    if (load) {
      const a = mmu.read64(lo, hi);
      const ah = mmu.hi;
      const b = mmu.read64(A.lo, A.hi);
      const bh = mmu.hi;
      const d = wzs(t) << 1;
      const d2 = wzs(t2) << 1;
      r[d] = a;
      r[d + 1] = ah;
      r[d2] = b;
      r[d2 + 1] = bh;
    } else {
      const s = rzs(t) << 1;
      const s2 = rzs(t2) << 1;
      const bl = r[s2];
      const bh = r[s2 + 1];
      mmu.write64(lo, hi, r[s], r[s + 1]);
      mmu.write64(A.lo, A.hi, bl, bh);
    }
  } else {
    addrAdd(lo, hi, 4);
    if (load) {
      const a = mmu.read32(lo, hi);
      const b = mmu.read32(A.lo, A.hi);
      const d = wzs(t) << 1;
      const d2 = wzs(t2) << 1;
      if (opc === 1) {
        r[d] = a;
        r[d + 1] = (a | 0) >> 31;
        r[d2] = b;
        r[d2 + 1] = (b | 0) >> 31;
      } else {
        r[d] = a;
        r[d + 1] = 0;
        r[d2] = b;
        r[d2 + 1] = 0;
      }
    } else {
      const b = r[rzs(t2) << 1];
      mmu.write32(lo, hi, r[rzs(t) << 1]);
      mmu.write32(A.lo, A.hi, b);
    }
  }
  if (wb) writeback(cpu, n, imm);
}

/** LDP X (signed offset): the common stack-frame restore. */
function ldpX(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  if (t === t2) cpu.undefinedInstruction(insn);
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, ((insn << 10) >> 25) << 3);
  const lo = A.lo;
  const hi = A.hi;
  const mmu = cpu.mmu;
  const r = cpu.r;
  const a = mmu.read64(lo, hi);
  const ah = mmu.hi;
  addrAdd(lo, hi, 8);
  const b = mmu.read64(A.lo, A.hi);
  const bh = mmu.hi;
  const d = wzs(t) << 1;
  const d2 = wzs(t2) << 1;
  r[d] = a;
  r[d + 1] = ah;
  r[d2] = b;
  r[d2 + 1] = bh;
}

/** STP X (signed offset). */
function stpX(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) spCheck(cpu, n);
  addrImm(cpu, n, ((insn << 10) >> 25) << 3);
  const lo = A.lo;
  const hi = A.hi;
  const r = cpu.r;
  const s = rzs(insn & 31) << 1;
  const s2 = rzs((insn >>> 10) & 31) << 1;
  const mmu = cpu.mmu;
  mmu.write64(lo, hi, r[s], r[s + 1]);
  addrAdd(lo, hi, 8);
  mmu.write64(A.lo, A.hi, r[s2], r[s2 + 1]);
}

/** LDP X with writeback (post-index: mode 1, pre-index: mode 3): the common frame pop. */
function ldpXWb(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  if (t === t2 || (n !== 31 && (n === t || n === t2))) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  const imm = ((insn << 10) >> 25) << 3;
  const post = (insn & 0x1000000) === 0;
  addrImm(cpu, n, post ? 0 : imm);
  const lo = A.lo;
  const hi = A.hi;
  const mmu = cpu.mmu;
  const r = cpu.r;
  const a = mmu.read64(lo, hi);
  const ah = mmu.hi;
  addrAdd(lo, hi, 8);
  const b = mmu.read64(A.lo, A.hi);
  const bh = mmu.hi;
  const d = wzs(t) << 1;
  const d2 = wzs(t2) << 1;
  r[d] = a;
  r[d + 1] = ah;
  r[d2] = b;
  r[d2 + 1] = bh;
  writeback(cpu, n, imm);
}

/** STP X with writeback (post-index / pre-index): the common frame push. */
function stpXWb(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  if (n !== 31 && (n === t || n === t2)) cpu.undefinedInstruction(insn);
  if (n === 31) spCheck(cpu, n);
  const imm = ((insn << 10) >> 25) << 3;
  const post = (insn & 0x1000000) === 0;
  addrImm(cpu, n, post ? 0 : imm);
  const lo = A.lo;
  const hi = A.hi;
  const r = cpu.r;
  const s = rzs(t) << 1;
  const s2 = rzs(t2) << 1;
  const mmu = cpu.mmu;
  mmu.write64(lo, hi, r[s], r[s + 1]);
  addrAdd(lo, hi, 8);
  mmu.write64(A.lo, A.hi, r[s2], r[s2 + 1]);
  writeback(cpu, n, imm);
}

// ---- exclusives and acquire/release ----

/**
 * The load-exclusive of `bytes` (1, 2, 4, 8) at (lo, hi): arms the monitor and returns the low half
 * of the value (the high half in cpu.mmu.hi, 0 below 8 bytes). Also translated code's slow path
 * (wasm/translate.ts, helper lx).
 */
export function loadExclusive(cpu: Arm64Cpu, lo: number, hi: number, bytes: number): number {
  const mmu = cpu.mmu;
  const pa = mmu.translateData(lo, hi, false, bytes, ACC_ALIGN);
  const v = mmu.readPa(pa, bytes, lo, hi);
  const vh = bytes === 8 ? mmu.hi : 0;
  cpu.exclAddr = pa;
  cpu.exclSize = bytes;
  cpu.exclLo = v;
  cpu.exclHi = vh;
  mmu.hi = vh;
  return v;
}

function ldxr(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  spCheck(cpu, n);
  const r = cpu.r;
  const v = loadExclusive(cpu, r[n << 1] >>> 0, r[(n << 1) | 1] >>> 0, 1 << (insn >>> 30));
  const d = wzs(insn & 31) << 1;
  r[d] = v;
  r[d + 1] = cpu.mmu.hi;
}

/** True when the monitor is armed for `pa`/`bytes` and memory still holds the values it recorded. */
function monitorHolds(cpu: Arm64Cpu, pa: number, bytes: number, lo: number, hi: number): boolean {
  if (cpu.exclAddr !== pa || cpu.exclSize !== bytes) return false;
  const mmu = cpu.mmu;
  if (bytes === 16) {
    const a = mmu.readPa(pa, 8, lo, hi);
    const ah = mmu.hi;
    const b = mmu.readPa(pa + 8, 8, lo, hi);
    const bh = mmu.hi;
    return (
      a === cpu.exclLo >>> 0 && ah === cpu.exclHi >>> 0 && b === cpu.exclLo2 >>> 0 && bh === cpu.exclHi2 >>> 0
    );
  }
  const v = mmu.readPa(pa, bytes, lo, hi);
  const vh = bytes === 8 ? mmu.hi : 0;
  return v === cpu.exclLo >>> 0 && vh === cpu.exclHi >>> 0;
}

function stxr(cpu: Arm64Cpu, insn: number): void {
  const size = insn >>> 30;
  const bytes = 1 << size;
  const s = (insn >>> 16) & 31;
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if (s === t || (s === n && n !== 31)) cpu.undefinedInstruction(insn);
  spCheck(cpu, n);
  const r = cpu.r;
  const ts = rzs(t) << 1;
  const st = storeExclusive(cpu, r[n << 1] >>> 0, r[(n << 1) | 1] >>> 0, bytes, r[ts], r[ts + 1]);
  const d = wzs(s) << 1;
  r[d] = st;
  r[d + 1] = 0;
}

/**
 * The store-exclusive of the low `bytes` (1, 2, 4, 8) of (vlo, vhi) at (lo, hi): stores when the
 * monitor holds, clears it; returns the status (0 stored, 1 not). Also translated code's slow path
 * (wasm/translate.ts, helper sx).
 */
export function storeExclusive(
  cpu: Arm64Cpu,
  lo: number,
  hi: number,
  bytes: number,
  vlo: number,
  vhi: number,
): number {
  const mmu = cpu.mmu;
  const pa = mmu.translateData(lo, hi, true, bytes, ACC_ALIGN);
  let ok: boolean;
  if (cpu.mem.isRam(pa, bytes)) {
    ok =
      cpu.exclAddr === pa &&
      cpu.exclSize === bytes &&
      swapIfUnchanged(cpu, pa - cpu.mem.ramBase, bytes, vlo, vhi);
  } else {
    ok = monitorHolds(cpu, pa, bytes, lo, hi);
    if (ok) mmu.writePa(pa, bytes, bytes === 1 ? vlo & 0xff : bytes === 2 ? vlo & 0xffff : vlo, vhi, lo, hi);
  }
  cpu.clearExclusive();
  return ok ? 0 : 1;
}

/**
 * Store (vlo, vhi) at RAM offset `off` if it still holds what the load-exclusive saw, in one
 * compare-and-swap (vCPUs on other threads store meanwhile: threads/), as QEMU's MTTCG does (a
 * value that changed and changed back passes: no guest relies on more).
 */
function swapIfUnchanged(cpu: Arm64Cpu, off: number, bytes: number, vlo: number, vhi: number): boolean {
  const mem = cpu.mem;
  const e = cpu.exclLo;
  let ok: boolean;
  if (bytes === 1) ok = Atomics.compareExchange(mem.u8, off, e & 0xff, vlo & 0xff) === (e & 0xff);
  else if (bytes === 2)
    ok = Atomics.compareExchange(mem.u16, off >>> 1, e & 0xffff, vlo & 0xffff) === (e & 0xffff);
  else if (bytes === 4) ok = Atomics.compareExchange(mem.i32, off >>> 2, e | 0, vlo | 0) === (e | 0);
  else {
    const want = (BigInt(cpu.exclHi | 0) << 32n) | BigInt(e >>> 0);
    const v = (BigInt(vhi | 0) << 32n) | BigInt(vlo >>> 0);
    ok = Atomics.compareExchange(mem.i64, off >>> 3, want, v) === want;
  }
  if (ok) mem.noteWrite(off, bytes);
  return ok;
}

function ldxp(cpu: Arm64Cpu, insn: number): void {
  const x = (insn >>> 30) & 1;
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  if (t === t2) cpu.undefinedInstruction(insn);
  spCheck(cpu, n);
  const r = cpu.r;
  const lo = r[n << 1] >>> 0;
  const hi = r[(n << 1) | 1] >>> 0;
  const mmu = cpu.mmu;
  const d = wzs(t) << 1;
  const d2 = wzs(t2) << 1;
  if (x === 0) {
    const pa = mmu.translateData(lo, hi, false, 8, ACC_ALIGN);
    const v = mmu.readPa(pa, 8, lo, hi);
    const vh = mmu.hi;
    cpu.exclAddr = pa;
    cpu.exclSize = 8;
    cpu.exclLo = v;
    cpu.exclHi = vh;
    r[d] = v;
    r[d + 1] = 0;
    r[d2] = vh;
    r[d2 + 1] = 0;
  } else {
    const pa = mmu.translateData(lo, hi, false, 16, ACC_ALIGN);
    const a = mmu.readPa(pa, 8, lo, hi);
    const ah = mmu.hi;
    const b = mmu.readPa(pa + 8, 8, lo, hi);
    const bh = mmu.hi;
    cpu.exclAddr = pa;
    cpu.exclSize = 16;
    cpu.exclLo = a;
    cpu.exclHi = ah;
    cpu.exclLo2 = b;
    cpu.exclHi2 = bh;
    r[d] = a;
    r[d + 1] = ah;
    r[d2] = b;
    r[d2 + 1] = bh;
  }
}

function stxp(cpu: Arm64Cpu, insn: number): void {
  const x = (insn >>> 30) & 1;
  const s = (insn >>> 16) & 31;
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  if (s === t || s === t2 || (s === n && n !== 31)) cpu.undefinedInstruction(insn);
  spCheck(cpu, n);
  const r = cpu.r;
  const lo = r[n << 1] >>> 0;
  const hi = r[(n << 1) | 1] >>> 0;
  const mmu = cpu.mmu;
  const bytes = x === 0 ? 8 : 16;
  const pa = mmu.translateData(lo, hi, true, bytes, ACC_ALIGN);
  // With vCPUs on several threads, the compare and the two stores hold a lock that every 128-bit
  // store-exclusive takes (other stores to those bytes do not: see the closing note of issue 11).
  const remote = cpu.remote;
  if (remote !== undefined) remote.withPairLock(() => stxpAt(cpu, insn, pa, bytes, lo, hi));
  else stxpAt(cpu, insn, pa, bytes, lo, hi);
}

function stxpAt(cpu: Arm64Cpu, insn: number, pa: number, bytes: number, lo: number, hi: number): void {
  const x = (insn >>> 30) & 1;
  const s = (insn >>> 16) & 31;
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const r = cpu.r;
  const mmu = cpu.mmu;
  const ok = monitorHolds(cpu, pa, bytes, lo, hi);
  if (ok) {
    const ts = rzs(t) << 1;
    const ts2 = rzs(t2) << 1;
    if (x === 0) {
      mmu.writePa(pa, 8, r[ts], r[ts2], lo, hi);
    } else {
      mmu.writePa(pa, 8, r[ts], r[ts + 1], lo, hi);
      mmu.writePa(pa + 8, 8, r[ts2], r[ts2 + 1], lo, hi);
    }
  }
  cpu.clearExclusive();
  const d = wzs(s) << 1;
  r[d] = ok ? 0 : 1;
  r[d + 1] = 0;
}

/**
 * LDAR/STLR (B/H/W/X): accesses that must be aligned; a store-release ends with a full barrier for
 * vCPUs on other threads (see the LDAR_STLR emitter).
 */
function ldarStlr(cpu: Arm64Cpu, insn: number): void {
  const size = insn >>> 30;
  const load = (insn >>> 22) & 1;
  const n = (insn >>> 5) & 31;
  spCheck(cpu, n);
  addrImm(cpu, n, 0);
  gprOp(cpu, (size << 2) | load, insn & 31, ACC_ALIGN);
  if (load === 0) cpu.remote?.fence();
}

export const patterns: Pattern[] = [
  // literal: opc 011 V=0 00 imm19 Rt
  { bits: 'xx 011 0 00 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'LDR_lit', handler: ldrLit },
  // unsigned offset: size 111 V=0 01 opc imm12 Rn Rt
  { bits: 'xx 111 0 01 xx xxxxxxxxxxxx xxxxx xxxxx', name: 'LDST_uimm', handler: ldstUimm },
  { bits: '11 111 0 01 01 xxxxxxxxxxxx xxxxx xxxxx', name: 'LDR_X_uimm', handler: ldrXUimm },
  { bits: '11 111 0 01 00 xxxxxxxxxxxx xxxxx xxxxx', name: 'STR_X_uimm', handler: strXUimm },
  { bits: '10 111 0 01 01 xxxxxxxxxxxx xxxxx xxxxx', name: 'LDR_W_uimm', handler: ldrWUimm },
  { bits: '10 111 0 01 00 xxxxxxxxxxxx xxxxx xxxxx', name: 'STR_W_uimm', handler: strWUimm },
  { bits: '00 111 0 01 01 xxxxxxxxxxxx xxxxx xxxxx', name: 'LDRB_uimm', handler: ldrbUimm },
  { bits: '00 111 0 01 00 xxxxxxxxxxxx xxxxx xxxxx', name: 'STRB_uimm', handler: strbUimm },
  // imm9: size 111 V=0 00 opc 0 imm9 mode Rn Rt
  { bits: 'xx 111 0 00 xx 0 xxxxxxxxx xx xxxxx xxxxx', name: 'LDST_imm9', handler: ldstImm9 },
  // register offset: size 111 V=0 00 opc 1 Rm option S 10 Rn Rt
  { bits: 'xx 111 0 00 xx 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'LDST_reg', handler: ldstReg },
  { bits: '11 111 0 00 01 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'LDRX_reg', handler: ldrXReg },
  { bits: '11 111 0 00 01 0 xxxxxxxxx xx xxxxx xxxxx', name: 'LDRX_imm9', handler: ldrXImm9 },
  { bits: '11 111 0 00 00 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'STRX_reg', handler: strXReg },
  { bits: '11 111 0 00 00 0 xxxxxxxxx xx xxxxx xxxxx', name: 'STRX_imm9', handler: strXImm9 },
  { bits: '10 111 0 00 01 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'LDRW_reg', handler: ldrWReg },
  { bits: '10 111 0 00 01 0 xxxxxxxxx xx xxxxx xxxxx', name: 'LDRW_imm9', handler: ldrWImm9 },
  { bits: '10 111 0 00 00 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'STRW_reg', handler: strWReg },
  { bits: '10 111 0 00 00 0 xxxxxxxxx xx xxxxx xxxxx', name: 'STRW_imm9', handler: strWImm9 },
  { bits: '00 111 0 00 01 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'LDRB_reg', handler: ldrbReg },
  { bits: '00 111 0 00 01 0 xxxxxxxxx xx xxxxx xxxxx', name: 'LDRB_imm9', handler: ldrbImm9 },
  { bits: '00 111 0 00 00 1 xxxxx xxx x 10 xxxxx xxxxx', name: 'STRB_reg', handler: strbReg },
  { bits: '00 111 0 00 00 0 xxxxxxxxx xx xxxxx xxxxx', name: 'STRB_imm9', handler: strbImm9 },
  // pairs: opc 101 V=0 mode(000 NP, 001 post, 010 offset, 011 pre) L imm7 Rt2 Rn Rt
  { bits: 'xx 101 0 0xx x xxxxxxx xxxxx xxxxx xxxxx', name: 'LDST_pair', handler: ldstPair },
  { bits: '10 101 0 010 1 xxxxxxx xxxxx xxxxx xxxxx', name: 'LDP_X', handler: ldpX },
  { bits: '10 101 0 010 0 xxxxxxx xxxxx xxxxx xxxxx', name: 'STP_X', handler: stpX },
  { bits: '10 101 0 0x1 1 xxxxxxx xxxxx xxxxx xxxxx', name: 'LDP_X_wb', handler: ldpXWb },
  { bits: '10 101 0 0x1 0 xxxxxxx xxxxx xxxxx xxxxx', name: 'STP_X_wb', handler: stpXWb },
  // exclusives: size 001000 o2 L o1 Rs o0 Rt2 Rn Rt
  { bits: 'xx 001000 0 1 0 xxxxx x xxxxx xxxxx xxxxx', name: 'LDXR', handler: ldxr },
  { bits: 'xx 001000 0 0 0 xxxxx x xxxxx xxxxx xxxxx', name: 'STXR', handler: stxr },
  { bits: '1x 001000 0 1 1 xxxxx x xxxxx xxxxx xxxxx', name: 'LDXP', handler: ldxp },
  { bits: '1x 001000 0 0 1 xxxxx x xxxxx xxxxx xxxxx', name: 'STXP', handler: stxp },
  { bits: 'xx 001000 1 x 0 xxxxx 1 xxxxx xxxxx xxxxx', name: 'LDAR_STLR', handler: ldarStlr },
];

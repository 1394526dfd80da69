// A64 instruction group: branches, exception generation and system instructions (Arm ARM C4.1.2):
// SVC/HVC/SMC/BRK, ERET, hints (NOP, YIELD, WFE, WFI, SEV, SEVL; every other hint, e.g. the pointer
// authentication and BTI hints, is a NOP because those features are not implemented), barriers, MSR
// (immediate) to PSTATE fields, SYS (cache, TLB and address translation maintenance) and MRS/MSR.
// See decode.ts for the pattern format.
//
// MRS/MSR dispatch: the hot registers (TPIDR_EL0, TPIDRRO_EL0, TPIDR_EL1, NZCV, DAIF, SP_EL0) have
// their own patterns and int32 handlers; every other encoding goes through sysRegTable (sysregs.ts,
// an array indexed by the instruction's bits [20:5]) and then SysRegs.extra (registers of the GIC CPU
// interface and of the generic timer). Unknown encodings are UNDEF.
//
// WFE and the exclusive monitor: a WFE wakes up when the global monitor of its PE is cleared (another
// PE stores to the monitored address). Stores do not signal here, so a WFE executed while the local
// monitor is armed (the LDXR; CMP; WFE idiom of smp_cond_load and qspinlock) completes at once, as a
// spurious wake-up, which the architecture permits; the guest re-reads the location and loops. A WFE
// with the monitor open waits for SEV/SEVL, an interrupt, or any event set before it.

import type { Pattern, Handler } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import {
  EL0_OK,
  EL0_TRAP,
  EL0_UNDEF,
  SCTLR_DZE,
  SCTLR_NTWE,
  SCTLR_NTWI,
  SCTLR_UCI,
  SCTLR_UMA,
  DC_ZVA_BYTES,
  sysRegTable,
  type SysRegDef,
} from '../sysregs.js';

// Exception classes (kept local: cpu.ts imports this module through a64.ts).
const EC_WFX = 0x01;
const EC_SVC64 = 0x15;
const EC_SYSREG = 0x18;
const EC_BRK64 = 0x3c;
/** ISS of a trapped WFI/WFE from AArch64: CV = 1, COND = 0b1110; TI (bit 0) = 1 for WFE. */
const WFX_ISS = (1 << 24) | (0xe << 20);

// =====================================================================================
// Helpers
// =====================================================================================

/** ISS of a trapped MSR/MRS/SYS (EC 0x18): Op0, Op2, Op1, CRn, Rt, CRm, Direction (1 = read). */
export function sysIss(insn: number): number {
  const op0 = (insn >>> 19) & 3;
  const op1 = (insn >>> 16) & 7;
  const crn = (insn >>> 12) & 15;
  const crm = (insn >>> 8) & 15;
  const op2 = (insn >>> 5) & 7;
  const rt = insn & 31;
  const dir = (insn >>> 21) & 1;
  return (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | dir;
}

/** Trap an EL0 access to EL1 with EC 0x18. */
function trapSys(cpu: Arm64Cpu, insn: number): never {
  cpu.raise(EC_SYSREG, sysIss(insn));
}

function el0Check(cpu: Arm64Cpu, insn: number, d: SysRegDef, read: boolean): void {
  const r = d.el0 === undefined ? EL0_UNDEF : d.el0(cpu, read);
  if (r === EL0_OK) return;
  if (r === EL0_TRAP) trapSys(cpu, insn);
  cpu.undefinedInstruction(insn);
}

const bin = (v: number, w: number): string => v.toString(2).padStart(w, '0');
/** Pattern bits of a system instruction: L, op0, op1, CRn, CRm, op2 (numbers or bit strings), Rt. */
function sysBits(
  l: number,
  op0: number,
  op1: number | string,
  crn: number | string,
  crm: number | string,
  op2: number | string,
  rt = 'xxxxx',
): string {
  const f = (v: number | string, w: number): string => (typeof v === 'number' ? bin(v, w) : v);
  return `1101010100 ${l} ${bin(op0, 2)} ${f(op1, 3)} ${f(crn, 4)} ${f(crm, 4)} ${f(op2, 3)} ${rt}`;
}

// =====================================================================================
// Exception generation and return
// =====================================================================================

function svc(cpu: Arm64Cpu, insn: number): void {
  cpu.raiseAfter(EC_SVC64, (insn >>> 5) & 0xffff);
}

/** HVC: no EL2; from EL1 the VMM may handle the call (PSCI), execution then continues after it. */
function hvc(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 || !cpu.hooks.hvc(cpu, (insn >>> 5) & 0xffff)) cpu.undefinedInstruction(insn);
}

/** SMC: no EL3; same contract as HVC. */
function smc(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 || !cpu.hooks.smc(cpu, (insn >>> 5) & 0xffff)) cpu.undefinedInstruction(insn);
}

function brk(cpu: Arm64Cpu, insn: number): void {
  cpu.raise(EC_BRK64, (insn >>> 5) & 0xffff);
}

function eret(cpu: Arm64Cpu): void {
  cpu.eret();
  // An exception return sets the Event Register (and has cleared the local exclusive monitor).
  cpu.eventRegister = true;
}

// =====================================================================================
// Hints
// =====================================================================================

const nop: Handler = () => {};

/** CPUs waiting in WFE (rather than WFI): only those are woken by SEV. */
const inWfe = new WeakSet<Arm64Cpu>();

function wfi(cpu: Arm64Cpu): void {
  // Wake-up events: an interrupt, masked or not.
  if (cpu.irqLine || cpu.fiqLine) return;
  // At EL0 with SCTLR_EL1.nTWI = 0, a WFI that would wait traps to EL1 instead.
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_NTWI) === 0) cpu.raise(EC_WFX, WFX_ISS);
  inWfe.delete(cpu);
  cpu.waiting = true;
}

function wfe(cpu: Arm64Cpu): void {
  if (cpu.eventRegister) {
    cpu.eventRegister = false;
    return;
  }
  // A pending interrupt: complete at once.
  if (cpu.irqLine || cpu.fiqLine) return;
  if (cpu.exclAddr !== -1) {
    // An armed monitor (see the header comment): complete at once. The guest spins on a location
    // another vCPU will write; when that vCPU shares this thread (round-robin), it cannot write it
    // before this one's slice ends: end it now (QEMU's round-robin TCG also ends a vCPU's turn at
    // WFE). Default guest's boot on --cpus 4, one thread: 2.98M WFE calls before, most of them here.
    yieldHint(cpu);
    return;
  }
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_NTWE) === 0) cpu.raise(EC_WFX, WFX_ISS | 1);
  inWfe.add(cpu);
  cpu.waiting = true;
}

function sev(cpu: Arm64Cpu): void {
  const peers = cpu.peers;
  for (let i = 0; i < peers.length; i++) signalEvent(peers[i]);
  cpu.remote?.sev();
}

/** An event for vCPU p (SEV, also from another thread): ends its WFE wait, else sets its event register. */
export function signalEvent(p: Arm64Cpu): void {
  if (p.waiting && inWfe.has(p)) {
    // The sleeping WFE consumes the event and completes.
    inWfe.delete(p);
    p.waiting = false;
  } else {
    p.eventRegister = true;
  }
}

/** DMB, DSB: order this vCPU's accesses for vCPUs on other threads (nothing to do on one thread). */
function barrier(cpu: Arm64Cpu): void {
  cpu.remote?.fence();
}

/**
 * YIELD (Linux's cpu_relax(), in spin loops): a vCPU that shares its thread with others (round-robin)
 * gives them the rest of its slice, since what it waits for is theirs to do; QEMU's round-robin TCG
 * does the same. Alone on its thread, a hint that does nothing. Default guest's boot on --cpus 4, one
 * thread: 1.3M YIELDs (12 on one vCPU).
 */
function yieldHint(cpu: Arm64Cpu): void {
  if (cpu.peers.length > 1) cpu.yielded = true;
}

function sevl(cpu: Arm64Cpu): void {
  cpu.eventRegister = true;
}

// =====================================================================================
// Barriers and PSTATE
// =====================================================================================

function isb(cpu: Arm64Cpu): void {
  cpu.invalidateFetch();
}

function clrex(cpu: Arm64Cpu): void {
  cpu.clearExclusive();
}

function msrSpSelImm(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0) cpu.undefinedInstruction(insn);
  cpu.setElSp(cpu.el, (insn >>> 8) & 1);
}

function msrDaifSet(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_UMA) === 0) trapSys(cpu, insn);
  cpu.daif |= (insn >>> 8) & 0xf;
}

function msrDaifClr(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_UMA) === 0) trapSys(cpu, insn);
  cpu.daif &= ~((insn >>> 8) & 0xf);
}

// =====================================================================================
// MRS / MSR
// =====================================================================================

function mrs(cpu: Arm64Cpu, insn: number): void {
  const key = (insn >>> 5) & 0xffff;
  const d = sysRegTable.get(key);
  let v: bigint;
  if (d !== undefined) {
    if (cpu.el === 0) el0Check(cpu, insn, d, true);
    if (d.read === undefined) cpu.undefinedInstruction(insn);
    v = d.read(cpu);
  } else {
    const e = cpu.sys.extra.get(key);
    if (e === undefined || e.read === undefined) cpu.undefinedInstruction(insn);
    v = e.read(cpu);
  }
  cpu.setXBig(insn & 31, v);
}

/**
 * MRS of CTR_EL0 and of DCZID_EL0: what mrs does, under patterns of their own, so that a translated
 * block runs through them (jit.ts's block enders are keyed by handler, and mrs is one) with the value
 * inline (wasm/emit.ts). Linux reads them in its cache maintenance and clear_page: about 160,000
 * times in a boot.
 */
const mrsStraight: Handler = (cpu, insn) => mrs(cpu, insn);

function msr(cpu: Arm64Cpu, insn: number): void {
  const key = (insn >>> 5) & 0xffff;
  const d = sysRegTable.get(key);
  const v = cpu.xBig(insn & 31);
  if (d !== undefined) {
    if (cpu.el === 0) el0Check(cpu, insn, d, false);
    if (d.write === undefined) cpu.undefinedInstruction(insn);
    d.write(cpu, v);
  } else {
    const e = cpu.sys.extra.get(key);
    if (e === undefined || e.write === undefined) cpu.undefinedInstruction(insn);
    e.write(cpu, v);
  }
}

// ---- hot registers ----

function mrsTpidrEl0(cpu: Arm64Cpu, insn: number): void {
  const tp = cpu.sys.tp;
  cpu.setX(insn & 31, tp[0], tp[1]);
}
function msrTpidrEl0(cpu: Arm64Cpu, insn: number): void {
  const tp = cpu.sys.tp;
  const rt = insn & 31;
  tp[0] = cpu.xlo(rt);
  tp[1] = cpu.xhi(rt);
}
function mrsTpidrroEl0(cpu: Arm64Cpu, insn: number): void {
  const tp = cpu.sys.tp;
  cpu.setX(insn & 31, tp[2], tp[3]);
}
function msrTpidrroEl0(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0) cpu.undefinedInstruction(insn);
  const tp = cpu.sys.tp;
  const rt = insn & 31;
  tp[2] = cpu.xlo(rt);
  tp[3] = cpu.xhi(rt);
}
function mrsTpidrEl1(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0) cpu.undefinedInstruction(insn);
  const tp = cpu.sys.tp;
  cpu.setX(insn & 31, tp[4], tp[5]);
}
function msrTpidrEl1(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0) cpu.undefinedInstruction(insn);
  const tp = cpu.sys.tp;
  const rt = insn & 31;
  tp[4] = cpu.xlo(rt);
  tp[5] = cpu.xhi(rt);
}
function mrsNzcv(cpu: Arm64Cpu, insn: number): void {
  cpu.setX(insn & 31, (cpu.n << 31) | (cpu.z << 30) | (cpu.c << 29) | (cpu.v << 28), 0);
}
function msrNzcv(cpu: Arm64Cpu, insn: number): void {
  const v = cpu.xlo(insn & 31);
  cpu.n = (v >>> 31) & 1;
  cpu.z = (v >>> 30) & 1;
  cpu.c = (v >>> 29) & 1;
  cpu.v = (v >>> 28) & 1;
}
function mrsDaif(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_UMA) === 0) trapSys(cpu, insn);
  cpu.setX(insn & 31, cpu.daif << 6, 0);
}
function msrDaif(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_UMA) === 0) trapSys(cpu, insn);
  cpu.daif = (cpu.xlo(insn & 31) >>> 6) & 0xf;
}
/** SP_EL0 from EL1 with PSTATE.SP = 1 (with SP = 0 it is UNDEF; at EL0 too): the banked copy. */
function mrsSpEl0(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 || cpu.spsel === 0) cpu.undefinedInstruction(insn);
  cpu.setX(insn & 31, cpu.spEl0Lo, cpu.spEl0Hi);
}
function msrSpEl0(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 || cpu.spsel === 0) cpu.undefinedInstruction(insn);
  const rt = insn & 31;
  cpu.spEl0Lo = cpu.xlo(rt);
  cpu.spEl0Hi = cpu.xhi(rt);
}

// =====================================================================================
// SYS: cache maintenance, address translation, TLB maintenance
// =====================================================================================

/** EL0 use of DC CVAC/CVAU/CIVAC/CVAP and IC IVAU: allowed with SCTLR_EL1.UCI, trapped otherwise. */
function uciCheck(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_UCI) === 0) trapSys(cpu, insn);
}
function el1Only(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0) cpu.undefinedInstruction(insn);
}

function dcZva(cpu: Arm64Cpu, insn: number): void {
  if (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_DZE) === 0) trapSys(cpu, insn);
  const rt = insn & 31;
  cpu.mmu.zeroBlock(cpu.xlo(rt) >>> 0, cpu.xhi(rt) >>> 0, DC_ZVA_BYTES);
}

/** DC CVAC/CVAU/CIVAC/CVAP: no data cache to clean; translation (and EL0 read permission) is checked. */
function dcCleanVa(cpu: Arm64Cpu, insn: number): void {
  uciCheck(cpu, insn);
  const rt = insn & 31;
  cpu.mmu.cacheOp(cpu.xlo(rt) >>> 0, cpu.xhi(rt) >>> 0);
}

/** DC IVAC: EL1 only; needs write permission. */
function dcIvac(cpu: Arm64Cpu, insn: number): void {
  el1Only(cpu, insn);
  const rt = insn & 31;
  cpu.mmu.cacheOp(cpu.xlo(rt) >>> 0, cpu.xhi(rt) >>> 0, true);
}

/** DC ISW/CSW/CISW: EL1 only, nothing to do. */
const dcSetWay: Handler = el1Only;

/** IC IVAU: drop the decoded instructions of the page. */
function icIvau(cpu: Arm64Cpu, insn: number): void {
  uciCheck(cpu, insn);
  const rt = insn & 31;
  const pa = cpu.mmu.cacheOp(cpu.xlo(rt) >>> 0, cpu.xhi(rt) >>> 0);
  const mem = cpu.mem;
  if (!mem.isRam(pa, 1)) return;
  const rp = Math.floor((pa - mem.ramBase) / 4096);
  cpu.code.invalidateRamPage(rp);
  cpu.remote?.icPage(rp);
}

/** IC IALLU / IC IALLUIS: the decoded-code cache is shared by all vCPUs of a machine. */
function icIallu(cpu: Arm64Cpu, insn: number): void {
  el1Only(cpu, insn);
  cpu.code.invalidateAll();
  const peers = cpu.peers;
  for (let i = 0; i < peers.length; i++) peers[i].invalidateFetch();
  cpu.remote?.icAll();
}

function atS1(el0: boolean, write: boolean): Handler {
  return (cpu, insn) => {
    el1Only(cpu, insn);
    const rt = insn & 31;
    cpu.sys.PAR_EL1 = cpu.mmu.at(cpu.xlo(rt) >>> 0, cpu.xhi(rt) >>> 0, el0, write);
  };
}

/** The ASID of a TLBI operand (Xt[63:48]), reduced to 8 bits when TCR_EL1.AS = 0. */
function tlbiAsid(cpu: Arm64Cpu, xhi: number): number {
  const asid = xhi >>> 16;
  return (cpu.sys.TCR_EL1 & (1n << 36n)) !== 0n ? asid : asid & 0xff;
}

const TLBI_VMALL = 0;
const TLBI_VA = 1; // VAE1 / VALE1: by VA and ASID
const TLBI_ASID = 2;
const TLBI_VAA = 3; // VAAE1 / VAALE1: by VA, any ASID

function tlbi(kind: number, last: boolean, broadcast: boolean): Handler {
  return (cpu, insn) => {
    el1Only(cpu, insn);
    const rt = insn & 31;
    const xlo = cpu.xlo(rt);
    const xhi = cpu.xhi(rt);
    // VA[55:12] = Xt[43:0]; bits 63:56 follow bit 55 (the MMU ignores them).
    const lo = (xlo << 12) >>> 0;
    let hi = ((xlo >>> 20) | (xhi << 12)) & 0x00ff_ffff;
    if ((hi & 0x0080_0000) !== 0) hi |= 0xff00_0000;
    hi >>>= 0;
    const asid = kind === TLBI_VA || kind === TLBI_ASID ? tlbiAsid(cpu, xhi) : -1;
    const peers = cpu.peers;
    const n = broadcast ? peers.length : 1;
    for (let i = 0; i < n; i++) tlbiOn(broadcast ? peers[i] : cpu, kind, lo, hi, asid, last);
    if (broadcast) cpu.remote?.tlbi(kind, lo, hi, asid, last);
  };
}

/** Carry out a TLBI of `kind` (TLBI_*) on one vCPU's TLB; also for one posted by another thread. */
export function tlbiOn(
  cpu: Arm64Cpu,
  kind: number,
  lo: number,
  hi: number,
  asid: number,
  last: boolean,
): void {
  const mmu = cpu.mmu;
  if (kind === TLBI_VMALL) mmu.flushAll();
  else if (kind === TLBI_ASID) mmu.flushAsid(asid);
  else mmu.flushVa(lo, hi, asid, last);
}

// =====================================================================================
// Patterns
// =====================================================================================

const X16 = 'xxxxxxxxxxxxxxxx';

export const patterns: Pattern[] = [
  // ---- exception generation ----
  { bits: `11010100 000 ${X16} 000 01`, name: 'SVC', handler: svc },
  { bits: `11010100 000 ${X16} 000 10`, name: 'HVC', handler: hvc },
  { bits: `11010100 000 ${X16} 000 11`, name: 'SMC', handler: smc },
  { bits: `11010100 001 ${X16} 000 00`, name: 'BRK', handler: brk },
  // HLT, TCANCEL, DCPS1-3 and the rest: unallocated here (UNDEF)
  { bits: '1101011 0100 11111 000000 11111 00000', name: 'ERET', handler: eret },

  // ---- hints (every hint not listed is a NOP) ----
  { bits: sysBits(0, 0, 3, 2, 'xxxx', 'xxx', '11111'), name: 'HINT', handler: nop },
  { bits: sysBits(0, 0, 3, 2, 0, 0, '11111'), name: 'NOP', handler: nop },
  { bits: sysBits(0, 0, 3, 2, 0, 1, '11111'), name: 'YIELD', handler: yieldHint },
  { bits: sysBits(0, 0, 3, 2, 0, 2, '11111'), name: 'WFE', handler: wfe },
  { bits: sysBits(0, 0, 3, 2, 0, 3, '11111'), name: 'WFI', handler: wfi },
  { bits: sysBits(0, 0, 3, 2, 0, 4, '11111'), name: 'SEV', handler: sev },
  { bits: sysBits(0, 0, 3, 2, 0, 5, '11111'), name: 'SEVL', handler: sevl },

  // ---- barriers (SSBB/PSSBB are DSB encodings; SB, DSB nXS and TCOMMIT are not ARMv8.0: UNDEF) ----
  { bits: sysBits(0, 0, 3, 3, 'xxxx', 2, '11111'), name: 'CLREX', handler: clrex },
  { bits: sysBits(0, 0, 3, 3, 'xxxx', 4, '11111'), name: 'DSB', handler: barrier },
  { bits: sysBits(0, 0, 3, 3, 'xxxx', 5, '11111'), name: 'DMB', handler: barrier },
  { bits: sysBits(0, 0, 3, 3, 'xxxx', 6, '11111'), name: 'ISB', handler: isb },

  // ---- MSR (immediate): SPSel, DAIFSet, DAIFClr (PAN, UAO, DIT, SSBS, TCO, CFINV...: UNDEF) ----
  { bits: sysBits(0, 0, 0, 4, 'xxxx', 5, '11111'), name: 'MSR_SPSel_imm', handler: msrSpSelImm },
  { bits: sysBits(0, 0, 3, 4, 'xxxx', 6, '11111'), name: 'MSR_DAIFSet', handler: msrDaifSet },
  { bits: sysBits(0, 0, 3, 4, 'xxxx', 7, '11111'), name: 'MSR_DAIFClr', handler: msrDaifClr },

  // ---- SYS ----
  { bits: sysBits(0, 1, 0, 7, 1, 0), name: 'IC_IALLUIS', handler: icIallu },
  { bits: sysBits(0, 1, 0, 7, 5, 0), name: 'IC_IALLU', handler: icIallu },
  { bits: sysBits(0, 1, 3, 7, 5, 1), name: 'IC_IVAU', handler: icIvau },
  { bits: sysBits(0, 1, 0, 7, 6, 1), name: 'DC_IVAC', handler: dcIvac },
  { bits: sysBits(0, 1, 0, 7, 6, 2), name: 'DC_ISW', handler: dcSetWay },
  { bits: sysBits(0, 1, 0, 7, 10, 2), name: 'DC_CSW', handler: dcSetWay },
  { bits: sysBits(0, 1, 0, 7, 14, 2), name: 'DC_CISW', handler: dcSetWay },
  { bits: sysBits(0, 1, 3, 7, 4, 1), name: 'DC_ZVA', handler: dcZva },
  { bits: sysBits(0, 1, 3, 7, 10, 1), name: 'DC_CVAC', handler: dcCleanVa },
  { bits: sysBits(0, 1, 3, 7, 11, 1), name: 'DC_CVAU', handler: dcCleanVa },
  { bits: sysBits(0, 1, 3, 7, 12, 1), name: 'DC_CVAP', handler: dcCleanVa },
  { bits: sysBits(0, 1, 3, 7, 14, 1), name: 'DC_CIVAC', handler: dcCleanVa },
  { bits: sysBits(0, 1, 0, 7, 8, 0), name: 'AT_S1E1R', handler: atS1(false, false) },
  { bits: sysBits(0, 1, 0, 7, 8, 1), name: 'AT_S1E1W', handler: atS1(false, true) },
  { bits: sysBits(0, 1, 0, 7, 8, 2), name: 'AT_S1E0R', handler: atS1(true, false) },
  { bits: sysBits(0, 1, 0, 7, 8, 3), name: 'AT_S1E0W', handler: atS1(true, true) },
  ...(
    [
      ['VMALLE1', 0, TLBI_VMALL, false],
      ['VAE1', 1, TLBI_VA, false],
      ['ASIDE1', 2, TLBI_ASID, false],
      ['VAAE1', 3, TLBI_VAA, false],
      ['VALE1', 5, TLBI_VA, true],
      ['VAALE1', 7, TLBI_VAA, true],
    ] as const
  ).flatMap(([name, op2, kind, last]) => [
    { bits: sysBits(0, 1, 0, 8, 3, op2), name: `TLBI_${name}IS`, handler: tlbi(kind, last, true) },
    { bits: sysBits(0, 1, 0, 8, 7, op2), name: `TLBI_${name}`, handler: tlbi(kind, last, false) },
  ]),

  // ---- MRS / MSR (register) ----
  { bits: sysBits(1, 2, 'xxx', 'xxxx', 'xxxx', 'xxx'), name: 'MRS', handler: mrs },
  { bits: sysBits(1, 3, 'xxx', 'xxxx', 'xxxx', 'xxx'), name: 'MRS', handler: mrs },
  { bits: sysBits(0, 2, 'xxx', 'xxxx', 'xxxx', 'xxx'), name: 'MSR', handler: msr },
  { bits: sysBits(0, 3, 'xxx', 'xxxx', 'xxxx', 'xxx'), name: 'MSR', handler: msr },
  { bits: sysBits(1, 3, 3, 13, 0, 2), name: 'MRS_TPIDR_EL0', handler: mrsTpidrEl0 },
  { bits: sysBits(0, 3, 3, 13, 0, 2), name: 'MSR_TPIDR_EL0', handler: msrTpidrEl0 },
  { bits: sysBits(1, 3, 3, 13, 0, 3), name: 'MRS_TPIDRRO_EL0', handler: mrsTpidrroEl0 },
  { bits: sysBits(0, 3, 3, 13, 0, 3), name: 'MSR_TPIDRRO_EL0', handler: msrTpidrroEl0 },
  { bits: sysBits(1, 3, 0, 13, 0, 4), name: 'MRS_TPIDR_EL1', handler: mrsTpidrEl1 },
  { bits: sysBits(0, 3, 0, 13, 0, 4), name: 'MSR_TPIDR_EL1', handler: msrTpidrEl1 },
  { bits: sysBits(1, 3, 3, 0, 0, 1), name: 'MRS_CTR_EL0', handler: mrsStraight },
  { bits: sysBits(1, 3, 3, 0, 0, 7), name: 'MRS_DCZID_EL0', handler: mrsStraight },
  { bits: sysBits(1, 3, 3, 4, 2, 0), name: 'MRS_NZCV', handler: mrsNzcv },
  { bits: sysBits(0, 3, 3, 4, 2, 0), name: 'MSR_NZCV', handler: msrNzcv },
  { bits: sysBits(1, 3, 3, 4, 2, 1), name: 'MRS_DAIF', handler: mrsDaif },
  { bits: sysBits(0, 3, 3, 4, 2, 1), name: 'MSR_DAIF', handler: msrDaif },
  { bits: sysBits(1, 3, 0, 4, 1, 0), name: 'MRS_SP_EL0', handler: mrsSpEl0 },
  { bits: sysBits(0, 3, 0, 4, 1, 0), name: 'MSR_SP_EL0', handler: msrSpEl0 },
];

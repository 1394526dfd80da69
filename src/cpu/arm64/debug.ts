// Self-hosted debug of the software CPU (Arm ARM D2, "AArch64 Self-hosted Debug"), and the host
// debugger's breakpoints, watchpoints, step and hold (the gdb stub's), at the same check points.
//
// Guest debug (EL1 is the debug target; no EL2/EL3, Non-secure):
// - Breakpoint exceptions (EC 0x30 from EL0 / 0x31 at EL1, IFSC 0x22) from DBGBCR<n>/DBGBVR<n>:
//   address match (BT 0b0000 unlinked, 0b0001 linked to a context-ID breakpoint) and, on the
//   context-aware breakpoints (the last NUM_CTX_CMPS), context-ID match against CONTEXTIDR_EL1 (BT
//   0b0010; 0b0011 only as a link target). Taken before the instruction executes; ELR = its address.
//   FAR is UNKNOWN for a breakpoint: it is left unchanged.
// - Watchpoint exceptions (EC 0x34 / 0x35, DFSC 0x22, WnR) from DBGWCR<n>/DBGWVR<n> on every data
//   access that goes through the MMU's checked path: BAS byte select within the word/doubleword of
//   DBGWVR, MASK ranges (2^MASK bytes, 3..31; MASK 1-2 are reserved and disable the watchpoint; with
//   MASK the BAS field is ignored), LSC load/store, PAC/SSC/HMC state match (LDTR/STTR at EL1 match
//   as EL0 accesses), WT link to a context-ID breakpoint. FAR = the virtual address of the access.
//   Checked after alignment and translation faults (an access that would fault reports that fault).
// - Software step (EC 0x32 / 0x33, ISS.ISV, ISS.EX for a stepped load-exclusive, IFSC 0x22) from
//   MDSCR_EL1.SS and PSTATE.SS (SPSR bit 21): active-not-pending (PSTATE.SS = 1) runs one
//   instruction, then active-pending (PSTATE.SS = 0) takes the exception before the next one. An
//   exception taken from the stepped instruction saves SPSR.SS = 1 (not stepped) except for SVC/HVC/SMC
//   (SSAdvance: 0); ERET sets PSTATE.SS from SPSR.SS only when stepping is disabled at the source and
//   enabled at the destination (DebugExceptionReturnSS).
// - "Debug exceptions enabled" (AArch64.GenerateDebugExceptionsFrom): never while the OS lock
//   (OSLSR_EL1.OSLK) or the OS double lock (OSDLR_EL1.DLK with DBGPRCR_EL1.CORENPDRQ = 0) is set;
//   from EL0 always; from EL1 only with MDSCR_EL1.KDE = 1 and PSTATE.D = 0. Breakpoints and
//   watchpoints also need MDSCR_EL1.MDE = 1; software step does not.
// - BRK (EC 0x3c) lives in insn/system.ts: it is not gated by any of this.
//
// Cost: nothing while no breakpoint, watchpoint or step is set up. `cpu.debugArmed` is recomputed by
// update() on writes to MDSCR_EL1, DBG{B,W}{C,V}R<n>_EL1, OSLAR_EL1, OSDLR_EL1, DBGPRCR_EL1 and on
// host debugger changes. While it is set and checksAt(EL) (EL1 only with MDSCR_EL1.KDE, so a kernel
// debugging a user task still runs translated), the run loop interprets the EL's instructions (no
// translated blocks) and calls beforeFetch()/afterFetch()/afterInsn() around each one; while a
// watchpoint is set, the MMU keeps its fast paths off (Mmu.setWatchArmed) and calls watch() from its
// slow paths.
//
// Host debugger API (for the gdb stub, src/api/gdb.ts; addresses are guest virtual addresses):
//   cpu.debug.addHostBreakpoint(va) / removeHostBreakpoint(va)
//   cpu.debug.addHostWatchpoint(va, len, kind) / removeHostWatchpoint(va, len, kind)
//       kind: 'write' | 'read' | 'access'; len 1..2^31; adding one already set changes nothing
//   cpu.debug.hostResume('continue' | 'step' | 'hold')   before the vCPU runs again after a stop
//   cpu.debug.clearHost()
//   cpu.run(budget) then returns early with cpu.debug.stop set (a HostStop); read it and clear it
//   with cpu.debug.takeStop(). A breakpoint stops *before* its instruction executes (not counted as
//   retired). A watchpoint stops *after* the accessing instruction, before the next one (as QEMU's
//   gdbstub reports it: PC at the next instruction, the access done), with addr = the first watched
//   byte the access touched. A step stops after exactly one instruction (or one exception entry);
//   interrupts stay pending while stepping (as QEMU's gdbstub steps by default). Host breakpoints
//   and watchpoints apply at every EL and regardless of the guest's debug state, and are checked
//   before the guest's. A breakpoint at the PC where run() starts stops at once, except on the first
//   instruction after hostResume() (so resuming from a breakpoint moves on). 'hold': the vCPU stays
//   stopped (`held`; the machine's run loop does not run it) while others run (vCont's t).

import type { Arm64Cpu } from './cpu.js';
import { NUM_BRPS, NUM_CTX_CMPS, NUM_WRPS } from './sysregs.js';

// Exception classes (kept local: cpu.ts imports this module).
const EC_BKPT_LOWER = 0x30;
const EC_BKPT_CUR = 0x31;
const EC_SSTEP_LOWER = 0x32;
const EC_SSTEP_CUR = 0x33;
const EC_WPT_LOWER = 0x34;
const EC_WPT_CUR = 0x35;
/** IFSC/DFSC of a debug exception. */
const FSC_DEBUG = 0x22;

// MDSCR_EL1 bits.
const MDSCR_SS = 1 << 0;
const MDSCR_KDE = 1 << 13;
const MDSCR_MDE = 1 << 15;

/** Thrown (instead of GUEST_EXCEPTION) to end run() for the host debugger; `debug.stop` says why. */
export class DebugStopSignal {
  readonly tag = 'DebugStopSignal';
}
export const DEBUG_STOP = new DebugStopSignal();

/** Why run() returned early for the host debugger. */
export type HostStop =
  | { reason: 'breakpoint'; pc: bigint }
  | { reason: 'watchpoint'; pc: bigint; addr: bigint; kind: HostWatchKind }
  | { reason: 'step'; pc: bigint };

export type HostWatchKind = 'write' | 'read' | 'access';
/** What a vCPU does when the host debugger resumes it. */
export type HostResume = 'continue' | 'step' | 'hold';

interface HostWatch {
  lo: number;
  hi: number;
  len: number;
  kind: HostWatchKind;
}

const big = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
const lo32 = (v: bigint): number => Number(v & 0xffff_ffffn) >>> 0;
const hi32 = (v: bigint): number => Number((v >> 32n) & 0xffff_ffffn) >>> 0;

/**
 * Where access [a, a+aLen) lies against region [b, b+bLen) (64-bit addresses as uint32 halves, the
 * high halves compared under hiMask; lengths below 2^32): -1 when they do not overlap, else the
 * region's bytes it covers as a bit mask of the region's first 31 bytes (bit k: byte b+k; regions
 * of 31 bytes or more give a non-zero mask whenever they overlap).
 */
function overlap(
  aLo: number,
  aHi: number,
  aLen: number,
  bLo: number,
  bHi: number,
  bLen: number,
  hiMask: number,
): number {
  // d = a - b (mod 2^64): the access starts d bytes into the region, or -d bytes before it.
  const dLo = (aLo - bLo) >>> 0;
  const borrow = aLo >>> 0 < bLo >>> 0 ? 1 : 0;
  const dHi = ((aHi - bHi - borrow) & hiMask) >>> 0;
  if (dHi === 0 && dLo < bLen) {
    if (dLo >= 31) return 0x7fff_ffff;
    let end = dLo + aLen < bLen ? dLo + aLen : bLen;
    if (end > 31) end = 31;
    return ((1 << end) - 1) & ~((1 << dLo) - 1);
  }
  const nLo = (0 - dLo) >>> 0;
  const nHi = ((dLo === 0 ? 0 - dHi : ~dHi) & hiMask) >>> 0;
  if (nHi === 0 && nLo !== 0 && nLo < aLen) {
    const end = aLen - nLo < bLen ? aLen - nLo : bLen;
    return end >= 31 ? 0x7fff_ffff : (1 << end) - 1;
  }
  return -1;
}

export class DebugUnit {
  /** PSTATE.SS. */
  ss = 0;
  /** The last instruction executed was stepped (ESR.ISV of the next step exception); EX: it was a load-exclusive. */
  private stepped = false;
  private steppedEx = false;
  /** Software step was active-not-pending when the current instruction started. */
  private stepping = false;

  // ---- decoded guest registers (update()) ----
  private mdscr = 0;
  private locked = true;
  private readonly bvrLo = new Int32Array(NUM_BRPS);
  private readonly bvrHi = new Int32Array(NUM_BRPS);
  private readonly bcr = new Int32Array(NUM_BRPS);
  private readonly wvrLo = new Int32Array(NUM_WRPS);
  private readonly wvrHi = new Int32Array(NUM_WRPS);
  private readonly wcr = new Int32Array(NUM_WRPS);
  /** Enabled (E = 1) breakpoints and watchpoints, by number. */
  private bps: number[] = [];
  private wps: number[] = [];
  /** Instructions at EL0 / EL1 are checked (see checksAt). */
  private armedEl0 = false;
  private armedEl1 = false;

  // ---- host debugger ----
  private readonly hostBps = new Set<bigint>();
  /** Low halves of hostBps, to reject most PCs without a BigInt. */
  private readonly hostBpLo = new Set<number>();
  private readonly hostWps: HostWatch[] = [];
  private step = false;
  /** Instructions begun since hostResume('step'). */
  private stepCount = 0;
  /** The vCPU stays stopped (hostResume('hold')): the machine's run loop skips it. */
  held = false;
  /** The PC of the last hostResume() (a breakpoint there does not stop the first instruction). */
  private resumeLo = 0;
  private resumeHi = 0;
  private resumed = false;
  /** A host watchpoint hit by the current instruction: stops before the next one. */
  private watchHit: { addr: bigint; kind: HostWatchKind } | undefined;
  /** Set when run() returned early for the host debugger (see the header); takeStop() clears it. */
  stop: HostStop | undefined;

  constructor(private readonly cpu: Arm64Cpu) {}

  /** Recompute the decoded registers and cpu.debugArmed (after a debug register or host change). */
  update(): void {
    const cpu = this.cpu;
    const sys = cpu.sys;
    this.mdscr = Number(sys.MDSCR_EL1 & 0xffff_ffffn);
    const doubleLock = (sys.OSDLR_EL1 & 1n) !== 0n && (sys.DBGPRCR_EL1 & 1n) === 0n;
    this.locked = sys.osLock !== 0 || doubleLock;
    this.bps = [];
    this.wps = [];
    for (let n = 0; n < NUM_BRPS; n++) {
      this.bvrLo[n] = lo32(sys.DBGBVR[n]);
      this.bvrHi[n] = hi32(sys.DBGBVR[n]);
      this.bcr[n] = lo32(sys.DBGBCR[n]);
      if ((this.bcr[n] & 1) !== 0) this.bps.push(n);
    }
    for (let n = 0; n < NUM_WRPS; n++) {
      this.wvrLo[n] = lo32(sys.DBGWVR[n]);
      this.wvrHi[n] = hi32(sys.DBGWVR[n]);
      this.wcr[n] = lo32(sys.DBGWCR[n]);
      if ((this.wcr[n] & 1) !== 0) this.wps.push(n);
    }
    const mde = !this.locked && (this.mdscr & MDSCR_MDE) !== 0;
    const guestWatch = mde && this.wps.length > 0;
    const guestArmed =
      guestWatch || (mde && this.bps.length > 0) || (!this.locked && (this.mdscr & MDSCR_SS) !== 0);
    const hostWatch = this.hostWps.length > 0;
    const host = hostWatch || this.hostBps.size > 0 || this.step;
    // EL1 code needs checks only with KDE (PSTATE.D is left to the checks: MSR DAIFClr does not come
    // back through the fetch path), so the kernel runs translated while a user task is debugged.
    this.armedEl0 = guestArmed || host;
    this.armedEl1 = (guestArmed && (this.mdscr & MDSCR_KDE) !== 0) || host;
    cpu.debugArmed = this.armedEl0 || this.armedEl1;
    cpu.mmu.setWatchArmed(guestWatch || hostWatch);
    // The run loop checks only on a fetch-page change: make the next instruction one.
    cpu.invalidateFetch();
  }

  /** Instructions at `el` need the checks (while cpu.debugArmed; an EL change re-enters the fetch path). */
  checksAt(el: number): boolean {
    return el === 0 ? this.armedEl0 : this.armedEl1;
  }

  /** Debug exceptions are enabled from `el` with PSTATE.D = `d` (AArch64.GenerateDebugExceptionsFrom). */
  private enabledFrom(el: number, d: boolean): boolean {
    if (this.locked) return false;
    if (el === 0) return true;
    return (this.mdscr & MDSCR_KDE) !== 0 && !d;
  }

  private enabledHere(): boolean {
    return this.enabledFrom(this.cpu.el, (this.cpu.daif & 8) !== 0);
  }

  // =====================================================================================
  // Run-loop hooks (only while cpu.debugArmed)
  // =====================================================================================

  /**
   * Before the fetch of the instruction at PC: host breakpoint and step stops, then a pending
   * software step exception (it has priority over PC alignment and instruction aborts).
   */
  beforeFetch(): void {
    const cpu = this.cpu;
    if (this.watchHit !== undefined) {
      const { addr, kind } = this.watchHit;
      this.watchHit = undefined;
      this.hostStop({ reason: 'watchpoint', pc: cpu.pc, addr, kind });
    }
    // The first instruction after a resume ignores a host breakpoint at the resume PC (so resuming
    // from a breakpoint moves on).
    let passOver = false;
    if (this.resumed) {
      this.resumed = false;
      passOver = cpu.pcLo >>> 0 === this.resumeLo && cpu.pcHi >>> 0 === this.resumeHi;
    }
    if (this.step && this.stepCount++ >= 1) this.hostStop({ reason: 'step', pc: cpu.pc });
    if (
      !passOver &&
      this.hostBpLo.size > 0 &&
      this.hostBpLo.has(cpu.pcLo >>> 0) &&
      this.hostBps.has(cpu.pc)
    ) {
      this.hostStop({ reason: 'breakpoint', pc: cpu.pc });
    }
    this.stepping = false;
    if ((this.mdscr & MDSCR_SS) !== 0 && this.enabledHere()) {
      if (this.ss === 0) {
        // Active-pending: the Software Step exception, before anything of this instruction.
        let iss = FSC_DEBUG;
        if (this.stepped) iss |= (1 << 24) | (this.steppedEx ? 1 << 6 : 0);
        this.stepped = false;
        cpu.raise(cpu.el === 0 ? EC_SSTEP_LOWER : EC_SSTEP_CUR, iss);
      }
      this.stepping = true;
    }
  }

  /** After the fetch translated (no instruction abort): breakpoints. Keeps the fetch page uncached. */
  afterFetch(): void {
    const cpu = this.cpu;
    cpu.invalidateFetch();
    if (this.bps.length === 0 || (this.mdscr & MDSCR_MDE) === 0 || !this.enabledHere()) return;
    const pcLo = cpu.pcLo | 0;
    const pcHi = cpu.pcHi | 0;
    const hiMask = cpu.mmu.topIgnored(pcHi) ? 0x00ff_ffff : -1;
    for (const n of this.bps) {
      const ctl = this.bcr[n];
      const bt = (ctl >>> 20) & 0xf;
      let match: boolean;
      if (bt === 0 || bt === 1) {
        // Address match; A64 instructions are word aligned, so only BAS bit 0 selects.
        match =
          (ctl & (1 << 5)) !== 0 &&
          ((this.bvrLo[n] ^ pcLo) & ~3) === 0 &&
          ((this.bvrHi[n] ^ pcHi) & hiMask) === 0;
      } else if (bt === 2) {
        match = this.contextMatch(n);
      } else {
        match = false; // linked context ID (a link target only) and reserved types
      }
      if (match && this.stateMatch(ctl, bt === 1, true)) {
        cpu.raise(cpu.el === 0 ? EC_BKPT_LOWER : EC_BKPT_CUR, FSC_DEBUG);
      }
    }
  }

  /** After the instruction completed without an exception: a stepped instruction ends the step. */
  afterInsn(insn: number): void {
    if (this.stepping) {
      this.stepping = false;
      this.ss = 0;
      this.stepped = true;
      // LDXR, LDAXR, LDXP, LDAXP (load/store exclusive with o2 = 0, L = 1)
      this.steppedEx = (insn & 0x3f40_0000) === 0x0840_0000;
    } else {
      this.stepped = false;
    }
  }

  // =====================================================================================
  // Exception entry and return
  // =====================================================================================

  /** SVC, HVC, SMC: the instruction completes before its exception is taken (SSAdvance). */
  ssAdvance(): void {
    if ((this.mdscr & MDSCR_SS) !== 0 && this.ss === 1) this.ss = 0;
  }

  /**
   * PSTATE.SS after an ERET to `spsr` (DebugExceptionReturnSS): SPSR.SS when software step is
   * disabled at the source (the current EL and PSTATE.D) and enabled at the destination, else 0.
   * Call before PSTATE changes.
   */
  returnSS(spsr: number): number {
    this.stepped = false;
    if ((this.mdscr & MDSCR_SS) === 0) return 0;
    const cpu = this.cpu;
    const atSource = this.enabledFrom(cpu.el, (cpu.daif & 8) !== 0);
    const atDest = this.enabledFrom((spsr >>> 2) & 3, (spsr & (1 << 9)) !== 0);
    return !atSource && atDest ? (spsr >>> 21) & 1 : 0;
  }

  // =====================================================================================
  // Watchpoints (from the MMU's checked path, while Mmu.setWatchArmed(true))
  // =====================================================================================

  /**
   * A data access of `size` bytes at (lo, hi) by the current instruction: raise the Watchpoint
   * exception, or stop for the host debugger. `unpriv`: LDTR/STTR (matches as an EL0 access).
   */
  watch(lo: number, hi: number, size: number, write: boolean, unpriv: boolean): void {
    const cpu = this.cpu;
    const hiMask = cpu.mmu.topIgnored(hi) ? 0x00ff_ffff : -1;
    for (const w of this.hostWps) {
      if (this.watchHit !== undefined) break;
      if (w.kind === 'write' ? !write : w.kind === 'read' ? write : false) continue;
      if (overlap(lo, hi, size, w.lo, w.hi, w.len, hiMask) === -1) continue;
      // The first watched byte accessed: the access's start, or the watch's start when it begins inside.
      const inside = overlap(lo, hi, 1, w.lo, w.hi, w.len, hiMask) !== -1;
      const addr = inside ? big(lo, hi) : big(w.lo, w.hi);
      this.watchHit = { addr, kind: w.kind };
    }
    if (this.wps.length === 0 || (this.mdscr & MDSCR_MDE) === 0 || !this.enabledHere()) return;
    for (const n of this.wps) {
      const ctl = this.wcr[n];
      if ((ctl & (write ? 1 << 4 : 1 << 3)) === 0) continue; // LSC
      if (
        !this.stateMatch(ctl, (ctl & (1 << 20)) !== 0, !unpriv) ||
        !this.watchMatch(n, lo, hi, size, hiMask)
      ) {
        continue;
      }
      let iss = FSC_DEBUG;
      if (write) iss |= 1 << 6; // WnR
      cpu.raise(cpu.el === 0 ? EC_WPT_LOWER : EC_WPT_CUR, iss, big(lo, hi));
    }
  }

  /** Watchpoint n's address comparison (AArch64.WatchpointByteMatch over the access's bytes). */
  private watchMatch(n: number, lo: number, hi: number, size: number, hiMask: number): boolean {
    const ctl = this.wcr[n];
    const mask = (ctl >>> 24) & 31;
    if (mask === 1 || mask === 2) return false; // reserved MASK values: the watchpoint is disabled
    if (mask !== 0) {
      // 2^MASK bytes aligned; BAS is ignored (BAS other than all ones is CONSTRAINED UNPREDICTABLE)
      const len = 2 ** mask;
      const base = this.wvrLo[n] & ~(len - 1);
      return overlap(lo, hi, size, base, this.wvrHi[n], len, hiMask) !== -1;
    }
    // BAS selects bytes of the doubleword (DBGWVR[2] = 0) or of the word (DBGWVR[2] = 1) at DBGWVR.
    const bas = (ctl >>> 5) & 0xff;
    const wvrLo = this.wvrLo[n];
    const bytes = (wvrLo & 4) !== 0 ? (bas & 0xf) << 4 : bas;
    const covered = overlap(lo, hi, size, wvrLo & ~7, this.wvrHi[n], 8, hiMask);
    return covered !== -1 && (covered & bytes) !== 0;
  }

  // =====================================================================================
  // Shared by breakpoints and watchpoints
  // =====================================================================================

  /**
   * AArch64.StateMatch for a Non-secure EL1&0 PE without EL2: PxC (DBGBCR.PMC / DBGWCR.PAC, bits
   * [2:1]) selects EL1 (bit 1) and EL0 (bit 2); SSC/HMC (bits [15:13]) select the security state
   * (Non-secure matches SSC 0b00/0b01, and 0b11 with HMC); a linked comparator also needs its
   * context-ID breakpoint (LBN, bits [19:16]) to match.
   */
  private stateMatch(ctl: number, linked: boolean, priv: boolean): boolean {
    const pxc = (ctl >>> 1) & 3;
    const privMatch = priv && this.cpu.el === 1 ? (pxc & 1) !== 0 : (pxc & 2) !== 0;
    const ssc = (ctl >>> 14) & 3;
    const hmc = (ctl >>> 13) & 1;
    const secMatch = ssc === 0 || ssc === 1 || (ssc === 3 && hmc === 1);
    if (!privMatch || !secMatch) return false;
    if (!linked) return true;
    const lbn = (ctl >>> 16) & 0xf;
    // The link target must be an enabled context-aware breakpoint of type "linked context ID match"
    // (anything else is CONSTRAINED UNPREDICTABLE: no match).
    if (lbn < NUM_BRPS - NUM_CTX_CMPS || lbn >= NUM_BRPS) return false;
    const t = this.bcr[lbn];
    return (t & 1) !== 0 && ((t >>> 20) & 0xf) === 3 && this.contextMatch(lbn);
  }

  /** Context-ID comparison of breakpoint n: CONTEXTIDR_EL1 against DBGBVR<n>[31:0] (context-aware only). */
  private contextMatch(n: number): boolean {
    if (n < NUM_BRPS - NUM_CTX_CMPS) return false;
    return this.bvrLo[n] >>> 0 === Number(this.cpu.sys.CONTEXTIDR_EL1 & 0xffff_ffffn);
  }

  // =====================================================================================
  // Host debugger API (see the header)
  // =====================================================================================

  addHostBreakpoint(va: bigint): void {
    this.hostBps.add(BigInt.asUintN(64, va));
    this.rebuildHostBpLo();
    this.update();
  }

  removeHostBreakpoint(va: bigint): boolean {
    const had = this.hostBps.delete(BigInt.asUintN(64, va));
    this.rebuildHostBpLo();
    this.update();
    return had;
  }

  addHostWatchpoint(va: bigint, len: number, kind: HostWatchKind): void {
    if (!Number.isInteger(len) || len < 1 || len > 0x8000_0000) {
      throw new RangeError(`watchpoint length: expected 1 to 2^31 bytes, got ${len}`);
    }
    if (this.findHostWatchpoint(va, len, kind) < 0) {
      const v = BigInt.asUintN(64, va);
      this.hostWps.push({ lo: lo32(v) | 0, hi: hi32(v) | 0, len, kind });
    }
    this.update();
  }

  removeHostWatchpoint(va: bigint, len: number, kind: HostWatchKind): boolean {
    const i = this.findHostWatchpoint(va, len, kind);
    if (i >= 0) this.hostWps.splice(i, 1);
    this.update();
    return i >= 0;
  }

  private findHostWatchpoint(va: bigint, len: number, kind: HostWatchKind): number {
    const v = BigInt.asUintN(64, va);
    const lo = lo32(v) | 0;
    const hi = hi32(v) | 0;
    return this.hostWps.findIndex((w) => w.lo === lo && w.hi === hi && w.len === len && w.kind === kind);
  }

  /** Interrupts stay pending while the host debugger steps this vCPU (the run loop asks, while armed). */
  get hostStepping(): boolean {
    return this.step;
  }

  /** Resume after a stop: run on, step one instruction, or stay stopped; clears the last stop. */
  hostResume(action: HostResume): void {
    const cpu = this.cpu;
    this.step = action === 'step';
    this.held = action === 'hold';
    this.stepCount = 0;
    this.stop = undefined;
    this.watchHit = undefined;
    this.resumed = true;
    this.resumeLo = cpu.pcLo >>> 0;
    this.resumeHi = cpu.pcHi >>> 0;
    this.update();
  }

  clearHost(): void {
    this.hostBps.clear();
    this.hostBpLo.clear();
    this.hostWps.length = 0;
    this.step = false;
    this.held = false;
    this.resumed = false;
    this.stop = undefined;
    this.watchHit = undefined;
    this.update();
  }

  /** The reason run() stopped for the host debugger, cleared. */
  takeStop(): HostStop | undefined {
    const s = this.stop;
    this.stop = undefined;
    return s;
  }

  private rebuildHostBpLo(): void {
    this.hostBpLo.clear();
    for (const v of this.hostBps) this.hostBpLo.add(lo32(v));
  }

  private hostStop(s: HostStop): never {
    this.stop = s;
    this.stepCount = 0;
    throw DEBUG_STOP;
  }
}

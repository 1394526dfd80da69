// Host-side debugging of the software CPU, for a debugger outside the guest (the gdb stub,
// src/api/gdb.ts): breakpoints matched on the PC before an instruction runs, watchpoints checked on
// data accesses, single step, and vCPUs held stopped while others run. Nothing here is visible to
// the guest (that is the self-hosted debug architecture: DBGBCR/DBGWCR, MDSCR_EL1.SS) and no guest
// memory is written: a breakpoint is not a BRK patched into the code, so translated and cached code
// stay valid.
//
// While a HostDebug is attached (cpu.hostDebug), Arm64Cpu.run() does not enter translated blocks and
// calls stopHere() before each instruction; the MMU calls access() from its slow paths, and keeps the
// pages holding a watched address off its fast path (watchesPage()). Detached, none of this costs
// anything. A stop ends run() with cpu.hostStop set; the machine then pauses and tells the debugger.

import type { Arm64Cpu } from './cpu.js';

export type WatchKind = 'write' | 'read' | 'access';
export type BreakKind = 'sw' | 'hw';
/** What a vCPU does on resume: continue, single step, or stay stopped. */
export type ResumeAction = 'c' | 's' | 't';

export interface HostStop {
  reason: 'break' | 'step' | 'watch';
  /** For a watchpoint: its kind and the address hit (inside the watched range). */
  watch?: { kind: WatchKind; addr: bigint };
}

interface Watch {
  lo: number;
  hi: number;
  len: number;
  kind: WatchKind;
}

const M32 = 0xffffffffn;

/** (a - b) mod 2^64 when that is below 2^32, else -1; a and b as uint32 halves. */
function distance(aLo: number, aHi: number, bLo: number, bHi: number): number {
  let lo = (aLo >>> 0) - (bLo >>> 0);
  let borrow = 0;
  if (lo < 0) {
    lo += 4294967296;
    borrow = 1;
  }
  return (aHi - bHi - borrow) >>> 0 === 0 ? lo : -1;
}

/** Where [lo:hi, +size) first meets watch w: the address's offset from lo:hi, or -1 if they do not meet. */
function overlap(w: Watch, lo: number, hi: number, size: number): number {
  const d = distance(w.lo, w.hi, lo, hi); // watch start inside the access
  if (d >= 0 && d < size) return d;
  const e = distance(lo, hi, w.lo, w.hi); // access start inside the watch
  return e >= 0 && e < w.len ? 0 : -1;
}

export class HostDebug {
  /** Breakpoints by kind and address (gdb's Z0 and Z1 are kept apart, as it inserts and removes them apart). */
  private readonly breakSet = new Set<string>();
  /** The breakpoints for the per-instruction check: PC low half -> high halves. */
  private breaks = new Map<number, number[]>();
  /** Non-zero where a breakpoint's PC bits [17:2] index: most instructions skip the map lookup. */
  private breakFilter = new Uint8Array(1 << 16);
  /** Per vCPU: 1 while it steps, is held or has a watchpoint hit to report (the slower checks). */
  private readonly special: Uint8Array;
  private readonly watches: Watch[] = [];
  /** True while a watchpoint is set: the MMU reports data accesses (see access()). */
  watching = false;

  // Per vCPU, by index.
  private readonly step: boolean[];
  private readonly hold: boolean[];
  private readonly resumeIcount: number[];
  private readonly resumeLo: number[];
  private readonly resumeHi: number[];
  private readonly watchHit: (HostStop | undefined)[];

  constructor(readonly cpus: Arm64Cpu[]) {
    const n = cpus.length;
    this.step = new Array<boolean>(n).fill(false);
    this.hold = new Array<boolean>(n).fill(false);
    this.resumeIcount = new Array<number>(n).fill(0);
    this.resumeLo = new Array<number>(n).fill(0);
    this.resumeHi = new Array<number>(n).fill(0);
    this.watchHit = new Array<HostStop | undefined>(n).fill(undefined);
    this.special = new Uint8Array(n);
  }

  // ---- breakpoints and watchpoints (the debugger's side) ----

  setBreak(kind: BreakKind, addr: bigint, on: boolean): void {
    const key = `${kind}:${addr & 0xffffffffffffffffn}`;
    if (on) this.breakSet.add(key);
    else this.breakSet.delete(key);
    const m = new Map<number, number[]>();
    for (const k of this.breakSet) {
      const a = BigInt(k.slice(k.indexOf(':') + 1));
      const lo = Number(a & M32);
      const list = m.get(lo) ?? [];
      list.push(Number(a >> 32n));
      m.set(lo, list);
    }
    this.breaks = m;
    this.breakFilter.fill(0);
    for (const lo of m.keys()) this.breakFilter[(lo >>> 2) & 0xffff] = 1;
  }

  /** Add or remove a watchpoint on [addr, addr+len); len from 1 to 2^31. Returns false for a bad length. */
  setWatch(kind: WatchKind, addr: bigint, len: number, on: boolean): boolean {
    if (!Number.isInteger(len) || len < 1 || len > 0x8000_0000) return false;
    const lo = Number(addr & M32);
    const hi = Number((addr >> 32n) & M32);
    const i = this.watches.findIndex((w) => w.lo === lo && w.hi === hi && w.len === len && w.kind === kind);
    if (on && i < 0) this.watches.push({ lo, hi, len, kind });
    if (!on && i >= 0) this.watches.splice(i, 1);
    // TLB entries were filled with or without the fast path for these pages: refill them.
    for (const c of this.cpus) c.mmu.flushAll();
    this.watching = this.watches.length > 0;
    return true;
  }

  /** Remove every breakpoint and watchpoint. */
  clearAll(): void {
    this.breakSet.clear();
    this.breaks = new Map();
    this.breakFilter.fill(0);
    if (this.watches.length > 0) {
      this.watches.length = 0;
      for (const c of this.cpus) c.mmu.flushAll();
    }
    this.watching = false;
  }

  /** Copy the breakpoints and watchpoints of another HostDebug (the machine was rebuilt by a reboot). */
  copyFrom(o: HostDebug): void {
    for (const k of o.breakSet) this.breakSet.add(k);
    this.breaks = o.breaks;
    this.breakFilter.set(o.breakFilter);
    this.watches.push(...o.watches);
    this.watching = this.watches.length > 0;
  }

  /**
   * Resume the vCPUs with an action each (by index), clearing the last stop. Attaches this to the
   * vCPUs while anything must be checked, and detaches it otherwise (the CPU then runs at full speed).
   */
  resume(actions: ResumeAction[]): void {
    let needed = this.breaks.size > 0 || this.watching;
    for (const c of this.cpus) {
      const a = actions[c.id] ?? 't';
      this.step[c.id] = a === 's';
      this.hold[c.id] = a === 't';
      if (a !== 'c') needed = true;
      this.resumeIcount[c.id] = c.icount;
      this.resumeLo[c.id] = c.pcLo >>> 0;
      this.resumeHi[c.id] = c.pcHi >>> 0;
      this.watchHit[c.id] = undefined;
      this.special[c.id] = a !== 'c' ? 1 : 0;
      c.hostStop = undefined;
    }
    for (const c of this.cpus) c.hostDebug = needed ? this : undefined;
  }

  /** Stop checking (the debugger detached): the vCPUs run at full speed again. */
  detach(): void {
    this.clearAll();
    for (const c of this.cpus) {
      c.hostDebug = undefined;
      c.hostStop = undefined;
    }
  }

  // ---- the CPU's side ----

  /** Interrupts stay pending while a vCPU single-steps (as QEMU's gdbstub steps by default) or is held. */
  masksIrq(cpu: Arm64Cpu): boolean {
    return this.step[cpu.id] || this.hold[cpu.id];
  }

  /**
   * Before each instruction (and when run() ends; `done` = instructions retired so far in this run):
   * true when the vCPU must not go on, with cpu.hostStop set unless it is only held.
   */
  stopHere(cpu: Arm64Cpu, done: number): boolean {
    const id = cpu.id;
    if (this.special[id] === 0 && this.breakFilter[(cpu.pcLo >>> 2) & 0xffff] === 0) return false;
    if (this.hold[id]) return true;
    const hit = this.watchHit[id];
    if (hit !== undefined) {
      this.watchHit[id] = undefined;
      this.special[id] = this.step[id] ? 1 : 0;
      cpu.hostStop = hit;
      return true;
    }
    const retired = cpu.icount + done - this.resumeIcount[id];
    if (retired > 0 && this.step[id]) {
      cpu.hostStop = { reason: 'step' };
      return true;
    }
    const his = this.breaks.size > 0 ? this.breaks.get(cpu.pcLo >>> 0) : undefined;
    if (his !== undefined && his.includes(cpu.pcHi >>> 0)) {
      // The instruction the vCPU resumes at runs: the debugger resumes from a breakpoint it stopped at.
      if (retired === 0 && cpu.pcLo >>> 0 === this.resumeLo[id] && cpu.pcHi >>> 0 === this.resumeHi[id]) {
        return false;
      }
      cpu.hostStop = { reason: 'break' };
      return true;
    }
    return false;
  }

  /** A data access of `size` bytes at lo:hi by `cpu` (called by the MMU while `watching`). */
  access(cpu: Arm64Cpu, lo: number, hi: number, size: number, write: boolean): void {
    if (this.watchHit[cpu.id] !== undefined) return;
    for (const w of this.watches) {
      if (w.kind === (write ? 'read' : 'write')) continue;
      const off = overlap(w, lo, hi, size);
      if (off < 0) continue;
      const addr = ((BigInt(hi >>> 0) << 32n) + BigInt((lo >>> 0) + off)) & 0xffffffffffffffffn;
      this.watchHit[cpu.id] = { reason: 'watch', watch: { kind: w.kind, addr } };
      this.special[cpu.id] = 1;
      return;
    }
  }

  /** True when the 4 KiB page at pageLo:hi holds a watched byte (its accesses must take the slow path). */
  watchesPage(pageLo: number, hi: number): boolean {
    for (const w of this.watches) if (overlap(w, pageLo, hi, 4096) >= 0) return true;
    return false;
  }
}

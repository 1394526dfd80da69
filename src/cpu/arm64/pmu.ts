// Performance monitors: PMUv3 as ARMv8.0 defines it (ID_AA64DFR0_EL1.PMUVer = 1), with the PMCR
// reset value QEMU gives its Cortex-A53 (IMP 0x41, IDCODE 3, N = 6 event counters) plus the 64-bit
// cycle counter, and its overflow interrupt on PPI 7 (INTID 23).
//
// Events counted (PMCEID0_EL0 lists exactly these): SW_INCR (0x00, PMSWINC writes), INST_RETIRED
// (0x08), CPU_CYCLES (0x11) and INST_SPEC (0x1b). This core retires one instruction per cycle and
// speculates nothing, so the last three all count retired instructions, and PMCCNTR_EL0 counts them
// too (every 64th with PMCR.D). An instruction that takes a synchronous exception is not retired
// (its ELR points at it), except SVC/HVC/SMC, which complete; interrupts are taken between
// instructions.
//
// Counting is lazy: nothing happens per instruction. The counters hold their values at `synced`, a
// count of the vCPU's retired instructions, and advance() adds what was retired since. The CPU calls
// it at the end of each run slice, and, when an active counter counts at one of EL0/EL1 only
// (elSplit), at every change of EL (exception entry, ERET), so each stretch is credited to the EL it
// ran at. Register accesses first bring the counters up to the instruction before them
// (Arm64Cpu.exactRetired), so a read inside a translated block sees every instruction retired
// before it. While a counter is active the CPU ends its run slice where the first one could
// overflow (clampBudget), so the overflow flag and interrupt come at the overflowing instruction.
// With PMCR.E = 0 or no counter enabled, the CPU does no PMU work at all.
//
// EL0 access follows PMUSERENR_EL0 (EN, SW, CR, ER); a denied access traps to EL1 with EC 0x18.
// PMINTENSET/CLR_EL1 are UNDEFINED at EL0. No EL2/EL3: PMEVTYPER.NSK/NSU/NSH/M and the same bits of
// PMCCFILTR are kept but have no effect.

import type { Arm64Cpu } from './cpu.js';
import { defineSysReg, EL0_OK, EL0_TRAP, EL0_UNDEF } from './sysregs.js';

/** INTID of the PMU overflow interrupt (PPI 7), as on QEMU's virt board. */
export const PPI_PMU = 23;
/** Event counters (PMCR_EL0.N). */
export const PMU_COUNTERS = 6;
/** PMCR_EL0 read-only part: IMP = 0x41 (Arm), IDCODE = 3 (Cortex-A53), N. */
export const PMCR_ID = 0x4103_0000 | (PMU_COUNTERS << 11);

export const EV_SW_INCR = 0x00;
export const EV_INST_RETIRED = 0x08;
export const EV_CPU_CYCLES = 0x11;
export const EV_INST_SPEC = 0x1b;
/** Events that count retired instructions. */
const INSN_EVENTS = [EV_INST_RETIRED, EV_CPU_CYCLES, EV_INST_SPEC];
/** PMCEID0_EL0: the events above. */
export const PMCEID0_VALUE = [EV_SW_INCR, ...INSN_EVENTS].reduce((m, e) => m | (1 << e), 0) >>> 0;

// PMCR_EL0 bits
const PMCR_E = 1 << 0;
const PMCR_P = 1 << 1;
const PMCR_C = 1 << 2;
const PMCR_D = 1 << 3;
const PMCR_LC = 1 << 6;
/** E, D, X, DP, LC are kept; P and C act on write and read as 0. */
const PMCR_RW = 0x79;

// PMUSERENR_EL0 bits
const USR_EN = 1 << 0;
const USR_SW = 1 << 1;
const USR_CR = 1 << 2;
const USR_ER = 1 << 3;

// PMEVTYPER / PMCCFILTR: P (no EL1), U (no EL0), NSK, NSU, NSH, M; evtCount[9:0] (ARMv8.0).
const FILT_P = 1 << 31;
const FILT_U = 1 << 30;
const FILTER_BITS = 0xfc00_0000;
const EVTYPER_RW = (FILTER_BITS | 0x3ff) >>> 0;
/** Bit 31 of the enable/overflow masks: the cycle counter. */
const CYCLE = 31;
const CNT_MASK = ((1 << PMU_COUNTERS) - 1) | (1 << CYCLE);

const TWO32 = 4294967296;
const M64 = (1n << 64n) - 1n;

/** Pmu as saved in a snapshot. */
export interface PmuState {
  pmcr: number;
  cnten: number;
  inten: number;
  ovs: number;
  selr: number;
  userenr: number;
  evtyper: number[];
  evcnt: number[];
  ccfiltr: number;
  cc: string;
  ccPre: number;
  synced: number;
  irq: boolean;
}

export class Pmu {
  pmcr = 0;
  cnten = 0;
  inten = 0;
  ovs = 0;
  selr = 0;
  userenr = 0;
  readonly evtyper = new Array<number>(PMU_COUNTERS).fill(0);
  /** Event counter values (uint32) at `synced`. */
  readonly evcnt = new Array<number>(PMU_COUNTERS).fill(0);
  ccfiltr = 0;
  /** PMCCNTR_EL0 at `synced`, and the cycles counted towards its next step with PMCR.D (0..63). */
  cc = 0n;
  ccPre = 0;
  /** The vCPU's retired-instruction count the counters are up to. */
  synced = 0;
  /** A counter counts retired instructions: the CPU reports them (see the header). */
  active = false;
  /** An active counter counts at EL0 or EL1 only: the CPU reports every change of EL. */
  elSplit = false;
  /** Drives the overflow interrupt (PPI 23); the machine connects it to the GIC. */
  setIrq: (level: boolean) => void = () => {};
  private irqLevel = false;

  constructor(readonly cpu: Arm64Cpu) {
    this.synced = TWO32 - 1; // a count past 2^30: keep the field a double (see Arm64Cpu)
    this.synced = 0;
  }

  /** The registers and counts for a snapshot (plain JSON). */
  saveState(): PmuState {
    return {
      pmcr: this.pmcr,
      cnten: this.cnten,
      inten: this.inten,
      ovs: this.ovs,
      selr: this.selr,
      userenr: this.userenr,
      evtyper: [...this.evtyper],
      evcnt: [...this.evcnt],
      ccfiltr: this.ccfiltr,
      cc: this.cc.toString(16),
      ccPre: this.ccPre,
      synced: this.synced,
      irq: this.irqLevel,
    };
  }

  /** Load saved registers (the interrupt line's level is the GIC's, saved with it). */
  loadState(s: PmuState): void {
    if (s.evtyper.length !== PMU_COUNTERS || s.evcnt.length !== PMU_COUNTERS)
      throw new Error(`PMU: expected ${PMU_COUNTERS} event counters, got ${s.evcnt.length}`);
    this.pmcr = s.pmcr >>> 0;
    this.cnten = s.cnten >>> 0;
    this.inten = s.inten >>> 0;
    this.ovs = s.ovs >>> 0;
    this.selr = s.selr >>> 0;
    this.userenr = s.userenr >>> 0;
    s.evtyper.forEach((v, i) => (this.evtyper[i] = v >>> 0));
    s.evcnt.forEach((v, i) => (this.evcnt[i] = v >>> 0));
    this.ccfiltr = s.ccfiltr >>> 0;
    this.cc = BigInt('0x' + s.cc) & M64;
    this.ccPre = s.ccPre;
    this.synced = s.synced;
    this.irqLevel = !!s.irq;
    this.reconfigure();
  }

  /** Counter `i` (0..5, or CYCLE) counts retired instructions at `el`. */
  private counts(i: number, el: number): boolean {
    if ((this.cnten & (1 << i)) === 0) return false;
    const f = i === CYCLE ? this.ccfiltr : this.evtyper[i];
    if (i !== CYCLE && !INSN_EVENTS.includes(f & 0x3ff)) return false;
    return (f & (el === 0 ? FILT_U : FILT_P)) === 0;
  }

  /** Recompute `active` and `elSplit` after a change of PMCR.E, the enables or the filters. */
  private reconfigure(): void {
    let active = false;
    let split = false;
    if (this.pmcr & PMCR_E) {
      for (const i of [...Array(PMU_COUNTERS).keys(), CYCLE]) {
        const c0 = this.counts(i, 0);
        const c1 = this.counts(i, 1);
        if (c0 || c1) active = true;
        if (c0 !== c1) split = true;
      }
    }
    this.active = active;
    this.elSplit = split;
  }

  /** Credit the instructions retired since `synced`, up to `now`, to the counters counting at `el`. */
  advance(now: number, el: number): void {
    const k = now - this.synced;
    if (k <= 0) return;
    this.synced = now;
    if (!this.active) return;
    for (let i = 0; i < PMU_COUNTERS; i++) {
      if (!this.counts(i, el)) continue;
      const v = this.evcnt[i] + k;
      if (v >= TWO32) this.ovs |= 1 << i;
      this.evcnt[i] = v % TWO32;
    }
    if (this.counts(CYCLE, el)) {
      let inc = k;
      if (this.pmcr & PMCR_D) {
        const t = this.ccPre + k;
        inc = Math.floor(t / 64);
        this.ccPre = t % 64;
      }
      if (inc > 0) {
        const old = this.cc;
        const v = old + BigInt(inc);
        const wrapped = this.pmcr & PMCR_LC ? v > M64 : (old & 0xffff_ffffn) + BigInt(inc) >= BigInt(TWO32);
        if (wrapped) this.ovs |= 1 << CYCLE;
        this.cc = v & M64;
      }
    }
    this.updateIrq();
  }

  /**
   * A synchronous exception was entered from `el` with `now` instructions counted, the one that raised
   * included; `retired`: that instruction completed (SVC, HVC, SMC).
   */
  exceptionTaken(now: number, el: number, retired: boolean): void {
    if (retired) {
      if (this.elSplit) this.advance(now, el);
      return;
    }
    this.advance(now - 1, el);
    if (this.synced < now) this.synced = now; // skip the instruction that did not retire
  }

  /** At most this many instructions can retire before a counter overflows (at least 1). */
  clampBudget(budget: number): number {
    let b = budget;
    for (let i = 0; i < PMU_COUNTERS; i++) {
      if (this.counts(i, 0) || this.counts(i, 1)) b = Math.min(b, TWO32 - this.evcnt[i]);
    }
    if (this.counts(CYCLE, 0) || this.counts(CYCLE, 1)) {
      const left = this.pmcr & PMCR_LC ? Number(M64 - this.cc) + 1 : TWO32 - Number(this.cc & 0xffff_ffffn);
      b = Math.min(b, this.pmcr & PMCR_D ? left * 64 - this.ccPre : left);
    }
    return Math.max(1, b);
  }

  private updateIrq(): void {
    const level = (this.pmcr & PMCR_E) !== 0 && (this.ovs & this.inten) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  /** Bring the counters up to the current instruction, for a read (before any other effect of it). */
  private sync(): void {
    this.advance(this.cpu.exactRetired(), this.cpu.el);
  }

  /**
   * For a write: the counters up to and including the writing instruction (which counts under the
   * configuration it replaces), so what it writes takes effect from the next instruction.
   */
  private syncWrite(): void {
    const cpu = this.cpu;
    const before = cpu.exactRetired();
    this.advance(cpu.running ? before + 1 : before, cpu.el);
  }

  /** Apply a change of configuration: counters up to date first, then the new state. */
  private change(f: () => void): void {
    this.syncWrite();
    f();
    this.reconfigure();
    this.updateIrq();
  }

  private swInc(mask: number): void {
    if ((this.pmcr & PMCR_E) === 0) return;
    for (let i = 0; i < PMU_COUNTERS; i++) {
      if ((mask & this.cnten & (1 << i)) === 0 || (this.evtyper[i] & 0x3ff) !== EV_SW_INCR) continue;
      const f = this.evtyper[i];
      if ((f & (this.cpu.el === 0 ? FILT_U : FILT_P)) !== 0) continue;
      if (this.evcnt[i] === TWO32 - 1) this.ovs |= 1 << i;
      this.evcnt[i] = (this.evcnt[i] + 1) % TWO32;
    }
    this.updateIrq();
  }

  private readTyper(n: number): bigint {
    return BigInt(n === CYCLE ? this.ccfiltr >>> 0 : n < PMU_COUNTERS ? this.evtyper[n] >>> 0 : 0);
  }
  private writeTyper(n: number, v: bigint): void {
    if (n === CYCLE) this.change(() => (this.ccfiltr = Number(v & BigInt(FILTER_BITS)) >>> 0));
    else if (n < PMU_COUNTERS) this.change(() => (this.evtyper[n] = Number(v & BigInt(EVTYPER_RW)) >>> 0));
  }
  private readCounter(n: number): bigint {
    if (n >= PMU_COUNTERS) return 0n;
    this.sync();
    return BigInt(this.evcnt[n]);
  }
  private writeCounter(n: number, v: bigint): void {
    if (n >= PMU_COUNTERS) return;
    this.syncWrite();
    this.evcnt[n] = Number(v & 0xffff_ffffn);
  }

  // ---- register definitions (system register table; each accessor gets the vCPU) ----

  static {
    const el0 =
      (bits: number) =>
      (cpu: Arm64Cpu): number =>
        (cpu.pmu.userenr & bits) !== 0 ? EL0_OK : EL0_TRAP;
    const en = el0(USR_EN);
    const rw = (
      crn: number,
      crm: number,
      op2: number,
      name: string,
      access: (cpu: Arm64Cpu, read: boolean) => number,
      read: ((p: Pmu) => bigint) | undefined,
      write: ((p: Pmu, v: bigint) => void) | undefined,
      op1 = 3,
    ): void =>
      defineSysReg(3, op1, crn, crm, op2, {
        name,
        el0: access,
        read: read && ((cpu) => read(cpu.pmu)),
        write: write && ((cpu, v) => write(cpu.pmu, v)),
      });
    const mask = (v: bigint): number => Number(v & BigInt(CNT_MASK)) >>> 0;
    rw(
      9,
      12,
      0,
      'PMCR_EL0',
      en,
      (p) => BigInt((PMCR_ID | p.pmcr) >>> 0),
      (p, v) =>
        p.change(() => {
          const w = Number(v & 0xffn);
          p.pmcr = w & PMCR_RW;
          if (w & PMCR_P) p.evcnt.fill(0);
          if (w & PMCR_C) {
            p.cc = 0n;
            p.ccPre = 0;
          }
        }),
    );
    rw(9, 12, 1, 'PMCNTENSET_EL0', en, (p) => BigInt(p.cnten >>> 0), (p, v) => p.change(() => (p.cnten |= mask(v))));
    rw(9, 12, 2, 'PMCNTENCLR_EL0', en, (p) => BigInt(p.cnten >>> 0), (p, v) => p.change(() => (p.cnten &= ~mask(v))));
    rw(9, 12, 3, 'PMOVSCLR_EL0', en, (p) => (p.sync(), BigInt(p.ovs >>> 0)), (p, v) => p.change(() => (p.ovs &= ~mask(v))));
    rw(9, 14, 3, 'PMOVSSET_EL0', en, (p) => (p.sync(), BigInt(p.ovs >>> 0)), (p, v) => p.change(() => (p.ovs |= mask(v))));
    rw(
      9,
      12,
      4,
      'PMSWINC_EL0',
      el0(USR_EN | USR_SW),
      undefined,
      (p, v) => {
        p.syncWrite();
        p.swInc(Number(v & 0xffff_ffffn));
      },
    );
    rw(9, 12, 5, 'PMSELR_EL0', el0(USR_EN | USR_ER), (p) => BigInt(p.selr), (p, v) => (p.selr = Number(v & 31n)));
    rw(9, 12, 6, 'PMCEID0_EL0', en, () => BigInt(PMCEID0_VALUE), undefined);
    rw(9, 12, 7, 'PMCEID1_EL0', en, () => 0n, undefined);
    rw(
      9,
      13,
      0,
      'PMCCNTR_EL0',
      (cpu, read) => ((cpu.pmu.userenr & (read ? USR_EN | USR_CR : USR_EN)) !== 0 ? EL0_OK : EL0_TRAP),
      (p) => (p.sync(), p.cc),
      (p, v) => {
        p.syncWrite();
        p.cc = v & M64;
      },
    );
    rw(
      9,
      13,
      1,
      'PMXEVTYPER_EL0',
      en,
      (p) => p.readTyper(p.selr),
      (p, v) => p.writeTyper(p.selr, v),
    );
    const counterAccess = (cpu: Arm64Cpu, read: boolean): number =>
      (cpu.pmu.userenr & (read ? USR_EN | USR_ER : USR_EN)) !== 0 ? EL0_OK : EL0_TRAP;
    rw(
      9,
      13,
      2,
      'PMXEVCNTR_EL0',
      counterAccess,
      (p) => p.readCounter(p.selr),
      (p, v) => p.writeCounter(p.selr, v),
    );
    // PMUSERENR_EL0: read-only at EL0, always readable there.
    rw(
      9,
      14,
      0,
      'PMUSERENR_EL0',
      (_cpu, read) => (read ? EL0_OK : EL0_UNDEF),
      (p) => BigInt(p.userenr),
      (p, v) => (p.userenr = Number(v & 0xfn)),
    );
    const undef0 = (): number => EL0_UNDEF;
    rw(9, 14, 1, 'PMINTENSET_EL1', undef0, (p) => BigInt(p.inten >>> 0), (p, v) => p.change(() => (p.inten |= mask(v))), 0);
    rw(9, 14, 2, 'PMINTENCLR_EL1', undef0, (p) => BigInt(p.inten >>> 0), (p, v) => p.change(() => (p.inten &= ~mask(v))), 0);
    for (let n = 0; n < PMU_COUNTERS; n++) {
      rw(
        14,
        8 + (n >>> 3),
        n & 7,
        `PMEVCNTR${n}_EL0`,
        counterAccess,
        (p) => p.readCounter(n),
        (p, v) => p.writeCounter(n, v),
      );
      rw(
        14,
        12 + (n >>> 3),
        n & 7,
        `PMEVTYPER${n}_EL0`,
        en,
        (p) => p.readTyper(n),
        (p, v) => p.writeTyper(n, v),
      );
    }
    rw(
      14,
      15,
      7,
      'PMCCFILTR_EL0',
      en,
      (p) => p.readTyper(CYCLE),
      (p, v) => p.writeTyper(CYCLE, v),
    );
  }
}

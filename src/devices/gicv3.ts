// GICv3 interrupt controller of the arm64-virt board: distributor (GICD), one redistributor per vCPU
// (GICR: RD_base + SGI_base frames) and the CPU interface system registers (ICC_*_EL1).
//
// Model (what a guest sees):
// - A GIC with a single Security state, like QEMU's `virt` board without EL3: GICD_CTLR.DS reads 1,
//   affinity routing is always on (GICD_CTLR.ARE reads 1, in the bit position of ARE_NS), bit 1 is
//   EnableGrp1 (the position of EnableGrp1A in the non-secure view), bit 0 is EnableGrp0 (stored).
//   IGRPMODR and NSACR are RAZ/WI, as the architecture specifies for DS=1.
// - Group 1 interrupts are signalled as IRQ. Group 0 interrupts are never signalled (Linux configures
//   every interrupt as group 1): ICC_IAR0/HPPIR0 read 1023, ICC_EOIR0 is ignored.
// - 5 bits of priority (ICC_CTLR_EL1.PRIbits = 4): priority bytes keep bits [7:3]; 32 preemption
//   levels in ICC_AP1R0_EL1. 16-bit INTIDs, no LPIs, no ITS, no extended SPI/PPI ranges.
// - SPIs: `nspis` (a multiple of 32, default 256: INTIDs 32..287). IROUTER routes to one vCPU by
//   affinity (Aff0 = vCPU index, Aff1..3 = 0) or, with IRM = 1, to every vCPU (the first to
//   acknowledge takes it: 1-of-N).
// - GICR_WAKER: ProcessorSleep is stored and ChildrenAsleep follows it at once; sleeping
//   redistributors still forward interrupts.
//
// State is kept as 32-bit masks (one bit per INTID) so that finding the highest-priority pending
// interrupt of a vCPU costs a few word operations: `update()` runs on every acknowledge, EOI and
// device line change.

import type { MmioDevice } from '../memory/guest-memory.js';
import { EC, type Arm64Cpu } from '../cpu/arm64/cpu.js';
import { sysregKey } from '../cpu/arm64/sysregs.js';

export const GICD_SIZE = 0x1_0000;
/** Size of one redistributor (RD_base + SGI_base frames). */
export const GICR_STRIDE = 0x2_0000;

const SPURIOUS = 1023;
const PRIO_MASK = 0xf8; // 5 implemented priority bits
const MIN_BPR0 = 2;
const MIN_BPR1 = 3;
const IIDR = 0x0000_043b; // implementer Arm (JEP106 0x43B), product 0, revision 0

// CoreSight-style ID registers at 0xFFD0..0xFFFC (PIDR4..7, PIDR0..3, CIDR0..3).
const ID_REGS: Record<number, number> = {
  0xffd0: 0x44, // PIDR4
  0xffe0: 0x92, // PIDR0
  0xffe4: 0xb4, // PIDR1
  0xffe8: 0x3b, // PIDR2: ArchRev = 3 (GICv3), JEDEC used
  0xffec: 0x00, // PIDR3
  0xfff0: 0x0d, // CIDR0
  0xfff4: 0xf0, // CIDR1
  0xfff8: 0x05, // CIDR2
  0xfffc: 0xb1, // CIDR3
};

/** Index of the lowest set bit of a non-zero 32-bit mask. */
const lowBit = (m: number): number => 31 - Math.clz32(m & -m);

/** The number fields of GicCpu that a snapshot carries, in order. */
const GIC_CPU_FIELDS = [
  'enabled',
  'latch',
  'line',
  'active',
  'group',
  'edge',
  'pmr',
  'bpr0',
  'bpr1',
  'cbpr',
  'eoimode',
  'igrpen0',
  'igrpen1',
  'ap0',
  'ap1',
  'sleep',
] as const;

/** GicV3 as saved in a snapshot. */
export interface GicV3State {
  ncpus: number;
  nspis: number;
  ctlr: [number, number];
  spi: {
    enabled: number[];
    latch: number[];
    line: number[];
    active: number[];
    group: number[];
    edge: number[];
    prio: string;
    routerLo: number[];
    routerHi: number[];
  };
  cpus: { regs: number[]; prio: string }[];
}

/** What the GIC drives of a vCPU: its IRQ line, and the wait that a rising line ends. */
export interface GicTarget {
  irqLine: boolean;
  waiting: boolean;
}

/** One ICC_*_EL1 register of a vCPU's CPU interface. */
interface IccReg {
  key: number;
  name: string;
  read: (() => bigint) | undefined;
  write: ((v: bigint) => void) | undefined;
}

/** Define an ICC register on a vCPU: UNDEFINED at EL0, like every ICC_*_EL1 register. */
export function defineEl1Sysreg(
  cpu: Arm64Cpu,
  key: number,
  name: string,
  read: (() => bigint) | undefined,
  write: ((v: bigint) => void) | undefined,
): void {
  const el1 = (k: Arm64Cpu): void => {
    if (k.el === 0) k.raise(EC.UNKNOWN, 0);
  };
  cpu.sys.define(key, {
    name,
    read: read
      ? (k) => {
          el1(k);
          return read();
        }
      : undefined,
    write: write
      ? (k, v) => {
          el1(k);
          write(v);
        }
      : undefined,
  });
}

/** CPU interface + redistributor state of one vCPU. */
class GicCpu {
  cpu: GicTarget | undefined;
  // Private interrupts (SGIs 0-15, PPIs 16-31), one bit per INTID.
  enabled = 0;
  latch = 0; // pending latch: edges, ISPENDR writes, SGIs
  line = 0; // input levels of PPIs
  active = 0;
  group = 0;
  edge = 0x0000_ffff; // SGIs are edge-triggered; PPIs default to level
  readonly prio = new Uint8Array(32);
  // CPU interface
  pmr = 0;
  bpr0 = MIN_BPR0;
  bpr1 = MIN_BPR1;
  cbpr = 0;
  eoimode = 0;
  igrpen0 = 0;
  igrpen1 = 0;
  ap0 = 0;
  ap1 = 0;
  // Redistributor
  sleep = 1;
  /** SPIs routed to this vCPU, one word per 32 INTIDs (word 0 unused). */
  readonly route: Uint32Array;
  /** Last computed highest-priority pending candidate and its priority. */
  best = SPURIOUS;
  bestPrio = 0xff;

  constructor(words: number) {
    this.route = new Uint32Array(words);
  }

  /** Group-priority mask for group 1 interrupts (from BPR1, or BPR0 + 1 when CBPR is set). */
  groupMask(): number {
    const bp = this.cbpr ? this.bpr0 + 1 : this.bpr1;
    return (0xff << bp) & 0xff;
  }

  /** Running priority: the group priority of the highest active priority level, or 0xff. */
  runningPriority(): number {
    const m = this.ap0 | this.ap1;
    return m === 0 ? 0xff : lowBit(m) << 3;
  }
}

export class GicV3 {
  readonly nspis: number;
  /** INTIDs 0..nirqs-1 exist (SGIs, PPIs, SPIs). */
  readonly nirqs: number;
  private readonly words: number;
  private readonly cpus: GicCpu[] = [];

  // Distributor
  private ctlrEn0 = 0;
  private ctlrEn1 = 0;
  // SPIs, one bit per INTID in words indexed by intid >> 5 (word 0 unused).
  private readonly sEnabled: Uint32Array;
  private readonly sLatch: Uint32Array;
  private readonly sLine: Uint32Array;
  private readonly sActive: Uint32Array;
  private readonly sGroup: Uint32Array;
  private readonly sEdge: Uint32Array;
  private readonly sPrio: Uint8Array;
  /** IROUTER low word (Aff0, Aff1, Aff2, IRM in bit 31) and high word (Aff3). */
  private readonly routerLo: Uint32Array;
  private readonly routerHi: Uint32Array;

  private readonly dist: MmioDevice;
  private readonly redist: MmioDevice;

  constructor(
    readonly ncpus: number,
    nspis = 256,
  ) {
    if (!Number.isInteger(ncpus) || ncpus < 1 || ncpus > 16)
      throw new Error(`gicv3: 1 to 16 vCPUs, got ${ncpus}`);
    this.nspis = Math.min(960, Math.max(32, Math.ceil(nspis / 32) * 32));
    this.nirqs = 32 + this.nspis;
    this.words = this.nirqs >>> 5;
    const w = this.words;
    this.sEnabled = new Uint32Array(w);
    this.sLatch = new Uint32Array(w);
    this.sLine = new Uint32Array(w);
    this.sActive = new Uint32Array(w);
    this.sGroup = new Uint32Array(w);
    this.sEdge = new Uint32Array(w);
    this.sPrio = new Uint8Array(this.nirqs);
    this.routerLo = new Uint32Array(this.nirqs);
    this.routerHi = new Uint32Array(this.nirqs);
    for (let i = 0; i < ncpus; i++) this.cpus.push(new GicCpu(w));
    // IROUTER resets to 0: every SPI targets Aff0 = 0.
    for (let n = 32; n < this.nirqs; n++) this.recomputeRoute(n);
    this.dist = { read: (o, s) => this.distRead(o, s), write: (o, s, v) => this.distWrite(o, s, v) };
    this.redist = { read: (o, s) => this.redistRead(o, s), write: (o, s, v) => this.redistWrite(o, s, v) };
  }

  distributor(): MmioDevice {
    return this.dist;
  }

  /** All redistributors: one GICR_STRIDE (128 KiB) frame pair per vCPU. */
  redistributors(): MmioDevice {
    return this.redist;
  }

  /** Define the ICC_* system registers on `cpu` (its id is its vCPU index) and connect its IRQ line. */
  attachCpu(cpu: Arm64Cpu): void {
    const idx = cpu.id;
    this.attachLines(idx, cpu);
    this.defineSysregs(cpu, idx);
    this.updateCpu(idx);
  }

  /**
   * Drive the IRQ line of vCPU `idx` that runs on another thread (its CPU interface registers then
   * come through iccRead/iccWrite): `lines.irqLine` is set, and `waiting` cleared when it rises.
   */
  attachRemote(idx: number, lines: GicTarget): void {
    this.attachLines(idx, lines);
    this.updateCpu(idx);
  }

  private attachLines(idx: number, target: GicTarget): void {
    if (!(idx >= 0 && idx < this.ncpus))
      throw new Error(`gicv3: vCPU id ${idx} out of range (0..${this.ncpus - 1})`);
    this.cpus[idx].cpu = target;
  }

  /** The CPU interface registers of vCPU i (ICC_*_EL1), by sysregKey: one definition for both uses. */
  private iccRegs(i: number): Map<number, IccReg> {
    let m = this.icc[i];
    if (!m) {
      m = new Map();
      for (const r of this.cpuInterface(i)) m.set(r.key, r);
      this.icc[i] = m;
    }
    return m;
  }
  private readonly icc: Map<number, IccReg>[] = [];

  /** The ICC registers a vCPU on another thread forwards here: key, name, readable, writable. */
  iccList(): { key: number; name: string; read: boolean; write: boolean }[] {
    return this.cpuInterface(0).map((r) => ({ key: r.key, name: r.name, read: !!r.read, write: !!r.write }));
  }

  /** A read of vCPU i's CPU interface register `key` (from its thread; EL checked there). */
  iccRead(i: number, key: number): bigint {
    const r = this.iccRegs(i).get(key);
    if (!r?.read) throw new Error(`gicv3: no readable CPU interface register 0x${key.toString(16)}`);
    return r.read();
  }

  iccWrite(i: number, key: number, v: bigint): void {
    const r = this.iccRegs(i).get(key);
    if (!r?.write) throw new Error(`gicv3: no writable CPU interface register 0x${key.toString(16)}`);
    r.write(v);
  }

  // ---------------------------------------------------------------- snapshots

  /** Distributor, redistributors and CPU interfaces for a snapshot (plain JSON; input levels included). */
  saveState(): GicV3State {
    const words = (a: Uint32Array): number[] => Array.from(a);
    return {
      ncpus: this.ncpus,
      nspis: this.nspis,
      ctlr: [this.ctlrEn0, this.ctlrEn1],
      spi: {
        enabled: words(this.sEnabled),
        latch: words(this.sLatch),
        line: words(this.sLine),
        active: words(this.sActive),
        group: words(this.sGroup),
        edge: words(this.sEdge),
        prio: Buffer.from(this.sPrio).toString('base64'),
        routerLo: words(this.routerLo),
        routerHi: words(this.routerHi),
      },
      cpus: this.cpus.map((c) => ({
        regs: GIC_CPU_FIELDS.map((f) => c[f]),
        prio: Buffer.from(c.prio).toString('base64'),
      })),
    };
  }

  /** Load a saved state into a GIC of the same size (after the vCPUs are loaded: it drives their IRQ lines). */
  restoreState(s: GicV3State): void {
    if (s.ncpus !== this.ncpus || s.nspis !== this.nspis)
      throw new Error(
        `gicv3: snapshot has ${s.ncpus} vCPUs and ${s.nspis} SPIs, this GIC ${this.ncpus} and ${this.nspis}`,
      );
    const set = (dst: Uint32Array | Uint8Array, src: number[] | string, what: string): void => {
      const v = typeof src === 'string' ? Buffer.from(src, 'base64') : src;
      if (!v || v.length !== dst.length)
        throw new Error(`gicv3: ${what} has ${v?.length} entries, expected ${dst.length}`);
      dst.set(v);
    };
    this.ctlrEn0 = s.ctlr[0] & 1;
    this.ctlrEn1 = s.ctlr[1] & 1;
    set(this.sEnabled, s.spi.enabled, 'enabled');
    set(this.sLatch, s.spi.latch, 'pending');
    set(this.sLine, s.spi.line, 'line');
    set(this.sActive, s.spi.active, 'active');
    set(this.sGroup, s.spi.group, 'group');
    set(this.sEdge, s.spi.edge, 'edge');
    set(this.sPrio, s.spi.prio, 'priority');
    set(this.routerLo, s.spi.routerLo, 'IROUTER');
    set(this.routerHi, s.spi.routerHi, 'IROUTER');
    s.cpus.forEach((cs, i) => {
      const c = this.cpus[i];
      if (cs.regs.length !== GIC_CPU_FIELDS.length) throw new Error(`gicv3: vCPU ${i}: bad state`);
      GIC_CPU_FIELDS.forEach((f, k) => (c[f] = Number(cs.regs[k]) | 0));
      set(c.prio, cs.prio, `vCPU ${i} priority`);
    });
    for (let n = 32; n < this.nirqs; n++) this.recomputeRoute(n);
    this.updateAll();
  }

  // ---------------------------------------------------------------- inputs

  /** Drive the input line of SPI `intid` (32..nirqs-1). Edge-configured SPIs latch on a rising edge. */
  setSpi(intid: number, level: boolean): void {
    if (!(intid >= 32 && intid < this.nirqs)) return;
    const w = intid >>> 5;
    const bit = 1 << (intid & 31);
    const old = this.sLine[w] & bit;
    if (level) {
      if (old) return;
      this.sLine[w] |= bit;
      if (this.sEdge[w] & bit) this.sLatch[w] |= bit;
    } else {
      if (!old) return;
      this.sLine[w] &= ~bit;
    }
    if (this.sEnabled[w] & bit) this.updateSpi(intid);
  }

  /** The input levels of vCPU i's PPIs (INTIDs 16-31 as bits 0-15). */
  ppiLevels(cpuIndex: number): number {
    return (this.cpus[cpuIndex].line >>> 16) & 0xffff;
  }

  /** Drive PPI `intid` (16..31) of vCPU `cpuIndex` (the timers). */
  setPpi(cpuIndex: number, intid: number, level: boolean): void {
    const c = this.cpus[cpuIndex];
    if (!c || !(intid >= 16 && intid < 32)) return;
    const bit = 1 << intid;
    const old = c.line & bit;
    if (level) {
      if (old) return;
      c.line |= bit;
      if (c.edge & bit) c.latch |= bit;
    } else {
      if (!old) return;
      c.line &= ~bit;
    }
    if (c.enabled & bit) this.updateCpu(cpuIndex);
  }

  // ---------------------------------------------------------------- signalling

  /** Highest-priority pending, enabled, inactive group-1 interrupt for vCPU i (sets c.best/bestPrio). */
  private computeBest(i: number): number {
    const c = this.cpus[i];
    let best = SPURIOUS;
    let bestPrio = 0x100;
    if (this.ctlrEn1) {
      let m = (c.latch | (c.line & ~c.edge)) & c.enabled & ~c.active & c.group;
      while (m !== 0) {
        const b = lowBit(m);
        m &= m - 1;
        const p = c.prio[b];
        if (p < bestPrio) {
          bestPrio = p;
          best = b;
        }
      }
      const route = c.route;
      for (let w = 1; w < this.words; w++) {
        let s = (this.sLatch[w] | (this.sLine[w] & ~this.sEdge[w])) & this.sEnabled[w] & ~this.sActive[w];
        if (s === 0) continue;
        s &= this.sGroup[w] & route[w];
        while (s !== 0) {
          const b = lowBit(s);
          s &= s - 1;
          const id = (w << 5) | b;
          const p = this.sPrio[id];
          if (p < bestPrio) {
            bestPrio = p;
            best = id;
          }
        }
      }
    }
    c.best = best;
    c.bestPrio = bestPrio & 0xff;
    return best;
  }

  /** True when vCPU i's best candidate can be signalled (PMR, running priority, group enable). */
  private canSignal(c: GicCpu): boolean {
    return (
      c.best !== SPURIOUS &&
      c.igrpen1 !== 0 &&
      c.bestPrio < c.pmr &&
      (c.bestPrio & c.groupMask()) < c.runningPriority()
    );
  }

  /** Recompute vCPU i's IRQ line. */
  private updateCpu(i: number): void {
    const c = this.cpus[i];
    this.computeBest(i);
    const irq = this.canSignal(c);
    const cpu = c.cpu;
    if (cpu) {
      cpu.irqLine = irq;
      if (irq && cpu.waiting) cpu.waiting = false;
    }
  }

  private updateAll(): void {
    for (let i = 0; i < this.ncpus; i++) this.updateCpu(i);
  }

  /** An SPI changed: update the vCPUs it can reach. */
  private updateSpi(intid: number): void {
    if (this.routerLo[intid] & 0x8000_0000) {
      this.updateAll();
      return;
    }
    const w = intid >>> 5;
    const bit = 1 << (intid & 31);
    for (let i = 0; i < this.ncpus; i++) if (this.cpus[i].route[w] & bit) this.updateCpu(i);
  }

  /** IROUTER of `intid` changed: rebuild its bit in every vCPU's route mask. */
  private recomputeRoute(intid: number): void {
    const w = intid >>> 5;
    const bit = 1 << (intid & 31);
    const lo = this.routerLo[intid];
    const any = (lo & 0x8000_0000) !== 0;
    const aff0 = lo & 0xff;
    const upper = (lo & 0x00ff_ff00) | (this.routerHi[intid] & 0xff);
    for (let i = 0; i < this.ncpus; i++) {
      const hit = any || (upper === 0 && aff0 === i);
      if (hit) this.cpus[i].route[w] |= bit;
      else this.cpus[i].route[w] &= ~bit;
    }
  }

  // ---------------------------------------------------------------- CPU interface operations

  /** ICC_IAR1_EL1: acknowledge the highest-priority signalled group-1 interrupt of vCPU i. */
  acknowledge(i: number): number {
    const c = this.cpus[i];
    const id = this.computeBest(i);
    if (!this.canSignal(c)) return SPURIOUS;
    const gp = c.bestPrio & c.groupMask();
    c.ap1 |= 1 << (gp >>> 3);
    if (id < 32) {
      const bit = 1 << id;
      c.active |= bit;
      c.latch &= ~bit;
      this.updateCpu(i);
    } else {
      const w = id >>> 5;
      const bit = 1 << (id & 31);
      this.sActive[w] |= bit;
      this.sLatch[w] &= ~bit;
      if (this.routerLo[id] & 0x8000_0000) this.updateAll();
      else this.updateCpu(i);
    }
    return id;
  }

  /** ICC_EOIR1_EL1: priority drop, and deactivation when EOImode is 0. */
  endOfInterrupt(i: number, intid: number): void {
    const c = this.cpus[i];
    if (intid >= 1020 && intid <= 1023) return;
    if (c.ap1 !== 0) c.ap1 &= c.ap1 - 1; // clear the highest active priority (lowest set bit)
    if (c.eoimode === 0) this.deactivate(i, intid);
    else this.updateCpu(i);
  }

  /** ICC_DIR_EL1 (and EOI with EOImode 0): clear the active state of `intid` as seen from vCPU i. */
  deactivate(i: number, intid: number): void {
    if (intid < 32) {
      this.cpus[i].active &= ~(1 << intid);
      this.updateCpu(i);
    } else if (intid < this.nirqs) {
      this.sActive[intid >>> 5] &= ~(1 << (intid & 31));
      this.updateAll();
    } else {
      this.updateCpu(i);
    }
  }

  /** ICC_SGI1R_EL1 (and SGI0R/ASGI1R) write from vCPU `self`. */
  sendSgi(self: number, v: bigint): void {
    const lo = Number(v & 0xffff_ffffn);
    const hi = Number((v >> 32n) & 0xffff_ffffn);
    const targets = lo & 0xffff;
    const aff1 = (lo >>> 16) & 0xff;
    const intid = (lo >>> 24) & 0xf;
    const aff2 = hi & 0xff;
    const irm = (hi >>> 8) & 1;
    const rs = (hi >>> 12) & 0xf;
    const aff3 = (hi >>> 16) & 0xff;
    for (let t = 0; t < this.ncpus; t++) {
      let hit: boolean;
      if (irm) hit = t !== self;
      else
        hit = aff1 === 0 && aff2 === 0 && aff3 === 0 && t >>> 4 === rs && ((targets >>> (t & 15)) & 1) === 1;
      if (!hit) continue;
      this.cpus[t].latch |= 1 << intid;
      this.updateCpu(t);
    }
  }

  private defineSysregs(cpu: Arm64Cpu, i: number): void {
    for (const r of this.iccRegs(i).values()) defineEl1Sysreg(cpu, r.key, r.name, r.read, r.write);
  }

  private cpuInterface(i: number): IccReg[] {
    const c = this.cpus[i];
    const regs: IccReg[] = [];
    const def = (
      crn: number,
      crm: number,
      op2: number,
      name: string,
      read: (() => bigint) | undefined,
      write: ((v: bigint) => void) | undefined,
    ): void => {
      regs.push({
        key: sysregKey(3, 0, crn, crm, op2),
        name,
        read,
        write,
      });
    };
    const lo8 = (v: bigint): number => Number(v & 0xffn);
    def(
      4,
      6,
      0,
      'ICC_PMR_EL1',
      () => BigInt(c.pmr),
      (v) => {
        c.pmr = lo8(v) & PRIO_MASK;
        this.updateCpu(i);
      },
    );
    // Group 0: nothing is group 0 in this model.
    def(12, 8, 0, 'ICC_IAR0_EL1', () => BigInt(SPURIOUS), undefined);
    def(12, 8, 1, 'ICC_EOIR0_EL1', undefined, () => {});
    def(12, 8, 2, 'ICC_HPPIR0_EL1', () => BigInt(SPURIOUS), undefined);
    def(
      12,
      8,
      3,
      'ICC_BPR0_EL1',
      () => BigInt(c.bpr0),
      (v) => {
        c.bpr0 = Math.max(MIN_BPR0, Number(v & 7n));
        this.updateCpu(i);
      },
    );
    def(
      12,
      8,
      4,
      'ICC_AP0R0_EL1',
      () => BigInt(c.ap0 >>> 0),
      (v) => {
        c.ap0 = Number(v & 0xffff_ffffn) | 0;
        this.updateCpu(i);
      },
    );
    def(
      12,
      9,
      0,
      'ICC_AP1R0_EL1',
      () => BigInt(c.ap1 >>> 0),
      (v) => {
        c.ap1 = Number(v & 0xffff_ffffn) | 0;
        this.updateCpu(i);
      },
    );
    def(12, 11, 1, 'ICC_DIR_EL1', undefined, (v) => this.deactivate(i, Number(v & 0xff_ffffn)));
    def(12, 11, 3, 'ICC_RPR_EL1', () => BigInt(c.runningPriority()), undefined);
    def(12, 11, 5, 'ICC_SGI1R_EL1', undefined, (v) => this.sendSgi(i, v));
    def(12, 11, 6, 'ICC_ASGI1R_EL1', undefined, (v) => this.sendSgi(i, v));
    def(12, 11, 7, 'ICC_SGI0R_EL1', undefined, (v) => this.sendSgi(i, v));
    def(12, 12, 0, 'ICC_IAR1_EL1', () => BigInt(this.acknowledge(i)), undefined);
    def(12, 12, 1, 'ICC_EOIR1_EL1', undefined, (v) => this.endOfInterrupt(i, Number(v & 0xff_ffffn)));
    def(12, 12, 2, 'ICC_HPPIR1_EL1', () => BigInt(c.igrpen1 ? this.computeBest(i) : SPURIOUS), undefined);
    def(
      12,
      12,
      3,
      'ICC_BPR1_EL1',
      () => BigInt(c.cbpr ? Math.min(7, c.bpr0 + 1) : c.bpr1),
      (v) => {
        if (c.cbpr) return;
        c.bpr1 = Math.max(MIN_BPR1, Number(v & 7n));
        this.updateCpu(i);
      },
    );
    def(
      12,
      12,
      4,
      'ICC_CTLR_EL1',
      // CBPR, EOImode, PRIbits = 4 (5 bits), IDbits = 0 (16 bits), SEIS = 0, A3V = 1, RSS = 0
      () => BigInt(c.cbpr | (c.eoimode << 1) | (4 << 8) | (1 << 15)),
      (v) => {
        const n = Number(v & 0xffn);
        c.cbpr = n & 1;
        c.eoimode = (n >>> 1) & 1;
        this.updateCpu(i);
      },
    );
    // SRE = 1, DFB = 1, DIB = 1, read-only: the system register interface is always on.
    def(
      12,
      12,
      5,
      'ICC_SRE_EL1',
      () => 7n,
      () => {},
    );
    def(
      12,
      12,
      6,
      'ICC_IGRPEN0_EL1',
      () => BigInt(c.igrpen0),
      (v) => {
        c.igrpen0 = Number(v & 1n);
      },
    );
    def(
      12,
      12,
      7,
      'ICC_IGRPEN1_EL1',
      () => BigInt(c.igrpen1),
      (v) => {
        c.igrpen1 = Number(v & 1n);
        this.updateCpu(i);
      },
    );
    return regs;
  }

  // ---------------------------------------------------------------- distributor MMIO

  private distRead(off: number, size: number): number {
    if (off >= 0x400 && off < 0x800) return this.readPrioBytes(this.sPrio, off - 0x400, size, 32, this.nirqs);
    if (size !== 4 || (off & 3) !== 0) return 0;
    if (off >= 0x6000 && off < 0x8000) {
      const n = (off - 0x6000) >>> 3;
      if (n < 32 || n >= this.nirqs) return 0;
      return (off & 4 ? this.routerHi[n] : this.routerLo[n]) >>> 0;
    }
    switch (off) {
      case 0x0000: // GICD_CTLR: EnableGrp0, EnableGrp1, ARE (RAO), DS (RAO), RWP = 0
        return this.ctlrEn0 | (this.ctlrEn1 << 1) | (1 << 4) | (1 << 6);
      case 0x0004: // GICD_TYPER: ITLinesNumber, IDbits = 15 (16 bits), A3V; no LPIs, no MBIS, 1-of-N supported
        return ((this.words - 1) | (15 << 19) | (1 << 24)) >>> 0;
      case 0x0008:
        return IIDR;
      case 0x000c: // GICD_TYPER2
      case 0x0010: // GICD_STATUSR
        return 0;
    }
    const id = ID_REGS[off];
    if (id !== undefined) return id;
    const w = (off & 0x7f) >>> 2;
    const inRange = w >= 1 && w < this.words;
    switch (off & ~0x7f) {
      case 0x0080:
        return inRange ? this.sGroup[w] >>> 0 : 0;
      case 0x0100:
      case 0x0180:
        return inRange ? this.sEnabled[w] >>> 0 : 0;
      case 0x0200:
      case 0x0280:
        return inRange ? (this.sLatch[w] | (this.sLine[w] & ~this.sEdge[w])) >>> 0 : 0;
      case 0x0300:
      case 0x0380:
        return inRange ? this.sActive[w] >>> 0 : 0;
    }
    if (off >= 0x0c00 && off < 0x0d00) {
      const k = (off - 0x0c00) >>> 2; // 16 INTIDs per word
      if (k < 2 || k >= this.words * 2) return 0;
      return this.cfgRead(this.sEdge[k >>> 1], k & 1);
    }
    return 0; // ITARGETSR, IGRPMODR, NSACR, SGIR, CPENDSGIR, SPENDSGIR: RAZ with ARE/DS
  }

  private distWrite(off: number, size: number, value: number): void {
    if (off >= 0x400 && off < 0x800) {
      this.writePrioBytes(this.sPrio, off - 0x400, size, value, 32, this.nirqs);
      this.updateAll();
      return;
    }
    if (size !== 4 || (off & 3) !== 0) return;
    const v = value >>> 0;
    if (off >= 0x6000 && off < 0x8000) {
      const n = (off - 0x6000) >>> 3;
      if (n < 32 || n >= this.nirqs) return;
      if (off & 4) this.routerHi[n] = v & 0xff;
      else this.routerLo[n] = v & 0x80ff_ffff;
      this.recomputeRoute(n);
      this.updateAll();
      return;
    }
    if (off === 0) {
      this.ctlrEn0 = v & 1;
      this.ctlrEn1 = (v >>> 1) & 1;
      this.updateAll();
      return;
    }
    const w = (off & 0x7f) >>> 2;
    const inRange = w >= 1 && w < this.words;
    switch (off & ~0x7f) {
      case 0x0080:
        if (inRange) this.sGroup[w] = v;
        break;
      case 0x0100:
        if (inRange) this.sEnabled[w] |= v;
        break;
      case 0x0180:
        if (inRange) this.sEnabled[w] &= ~v;
        break;
      case 0x0200:
        if (inRange) this.sLatch[w] |= v;
        break;
      case 0x0280:
        if (inRange) this.sLatch[w] &= ~v;
        break;
      case 0x0300:
        if (inRange) this.sActive[w] |= v;
        break;
      case 0x0380:
        if (inRange) this.sActive[w] &= ~v;
        break;
      default:
        if (off >= 0x0c00 && off < 0x0d00) {
          const k = (off - 0x0c00) >>> 2;
          if (k < 2 || k >= this.words * 2) return;
          this.sEdge[k >>> 1] = this.cfgWrite(this.sEdge[k >>> 1], k & 1, v);
          break;
        }
        return; // RAZ/WI registers
    }
    this.updateAll();
  }

  /** ICFGR word for 16 INTIDs (half = which half of the 32-bit edge mask): bit 2n+1 = edge. */
  private cfgRead(edgeWord: number, half: number): number {
    const e = (edgeWord >>> (half * 16)) & 0xffff;
    let r = 0;
    for (let b = 0; b < 16; b++) if (e & (1 << b)) r |= 2 << (2 * b);
    return r >>> 0;
  }

  private cfgWrite(edgeWord: number, half: number, v: number): number {
    let e = 0;
    for (let b = 0; b < 16; b++) if (v & (2 << (2 * b))) e |= 1 << b;
    const sh = half * 16;
    return ((edgeWord & ~(0xffff << sh)) | (e << sh)) >>> 0;
  }

  private readPrioBytes(prio: Uint8Array, byteOff: number, size: number, first: number, end: number): number {
    if (size !== 1 && size !== 2 && size !== 4) return 0;
    if (byteOff & (size - 1)) return 0;
    let r = 0;
    for (let k = 0; k < size; k++) {
      const n = byteOff + k;
      if (n >= first && n < end) r |= prio[n] << (8 * k);
    }
    return r >>> 0;
  }

  private writePrioBytes(
    prio: Uint8Array,
    byteOff: number,
    size: number,
    v: number,
    first: number,
    end: number,
  ): void {
    if (size !== 1 && size !== 2 && size !== 4) return;
    if (byteOff & (size - 1)) return;
    for (let k = 0; k < size; k++) {
      const n = byteOff + k;
      if (n >= first && n < end) prio[n] = (v >>> (8 * k)) & PRIO_MASK;
    }
  }

  // ---------------------------------------------------------------- redistributor MMIO

  private redistRead(off: number, size: number): number {
    const i = Math.floor(off / GICR_STRIDE);
    if (!(i >= 0 && i < this.ncpus)) return 0;
    const c = this.cpus[i];
    const r = off - i * GICR_STRIDE;
    if (r >= 0x1_0000) {
      const s = r - 0x1_0000;
      if (s >= 0x400 && s < 0x420) return this.readPrioBytes(c.prio, s - 0x400, size, 0, 32);
      if (size !== 4 || (s & 3) !== 0) return 0;
      switch (s) {
        case 0x0080:
          return c.group >>> 0;
        case 0x0100:
        case 0x0180:
          return c.enabled >>> 0;
        case 0x0200:
        case 0x0280:
          return (c.latch | (c.line & ~c.edge)) >>> 0;
        case 0x0300:
        case 0x0380:
          return c.active >>> 0;
        case 0x0c00:
          return this.cfgRead(c.edge, 0);
        case 0x0c04:
          return this.cfgRead(c.edge, 1);
        default:
          return ID_REGS[s] ?? 0; // IGRPMODR0, NSACR: RAZ (DS = 1)
      }
    }
    if (size !== 4 || (r & 3) !== 0) return 0;
    switch (r) {
      case 0x0000: // GICR_CTLR: no LPIs, RWP = 0
        return 0;
      case 0x0004:
        return IIDR;
      case 0x0008: // GICR_TYPER[31:0]: Processor_Number, Last
        return ((i << 8) | (i === this.ncpus - 1 ? 1 << 4 : 0)) >>> 0;
      case 0x000c: // GICR_TYPER[63:32]: Aff3.Aff2.Aff1.Aff0 of the vCPU (Aff0 = index)
        return i;
      case 0x0010: // GICR_STATUSR
        return 0;
      case 0x0014: // GICR_WAKER: ProcessorSleep, ChildrenAsleep follows it
        return (c.sleep << 1) | (c.sleep << 2);
    }
    return ID_REGS[r] ?? 0;
  }

  private redistWrite(off: number, size: number, value: number): void {
    const i = Math.floor(off / GICR_STRIDE);
    if (!(i >= 0 && i < this.ncpus)) return;
    const c = this.cpus[i];
    const r = off - i * GICR_STRIDE;
    const v = value >>> 0;
    if (r >= 0x1_0000) {
      const s = r - 0x1_0000;
      if (s >= 0x400 && s < 0x420) {
        this.writePrioBytes(c.prio, s - 0x400, size, v, 0, 32);
        this.updateCpu(i);
        return;
      }
      if (size !== 4 || (s & 3) !== 0) return;
      switch (s) {
        case 0x0080:
          c.group = v | 0;
          break;
        case 0x0100:
          c.enabled |= v;
          break;
        case 0x0180:
          c.enabled &= ~v;
          break;
        case 0x0200:
          c.latch |= v;
          break;
        case 0x0280:
          c.latch &= ~v;
          break;
        case 0x0300:
          c.active |= v;
          break;
        case 0x0380:
          c.active &= ~v;
          break;
        case 0x0c04: // ICFGR1 (PPIs); ICFGR0 (SGIs) is read-only
          c.edge = this.cfgWrite(c.edge, 1, v) | 0;
          break;
        default:
          return;
      }
      this.updateCpu(i);
      return;
    }
    if (size !== 4 || (r & 3) !== 0) return;
    if (r === 0x0014) c.sleep = (v >>> 1) & 1;
  }
}

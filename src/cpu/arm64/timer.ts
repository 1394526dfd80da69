// The Arm generic timer of one vCPU: the system counter (CNTPCT/CNTVCT, CNTVOFF = 0 so both read the
// same), the EL1 physical timer (CNTP_*) and the virtual timer (CNTV_*), CNTFRQ and CNTKCTL_EL1.
// Timer outputs are level-sensitive PPIs: virtual = INTID 27, non-secure physical = INTID 30.
//
// The counter runs at 62.5 MHz (16 ns per tick) and is shared by all vCPUs of a machine (one counter
// per `peers` array). Two sources:
// - real time (default): ticks = floor((monotonicMs() - start) ms * 62_500), i.e. the host's
//   monotonic clock in nanoseconds divided by 16, counted from the moment the first timer of the
//   machine was created.
// - deterministic: ticks = base + idle, where base = the sum of `icount` (retired instructions) over
//   all vCPUs of the machine and idle = ticks skipped while every running vCPU waited in WFI/WFE
//   (poll() then advances the counter straight to the earliest armed timer deadline, or event-stream
//   event for a vCPU in WFE, so idle time costs nothing and depends only on guest state). `icount` only advances at the end of a run slice, so
//   within a slice successive reads return at least the previous value + 1: the value read is
//   max(base + idle, last + 1). Each read is an instruction, so this never runs ahead of the
//   instruction count. One instruction = one tick: a 62.5 MIPS nominal clock. Timers compare against
//   max(base + idle, last value read).
//
// Timer outputs are evaluated when a timer register is written, when CTL or TVAL is read, when the
// counter is read,
// and when the machine calls poll() (between run slices; in deterministic mode a vCPU's slice ends
// at its next timer deadline, instructionsToDeadline()). So a guest that sees ISTATUS set, or a
// counter value past CVAL, takes the interrupt before its next instruction (when unmasked). The
// CNTKCTL_EL1 event stream is evaluated by poll(). The event
// stream ends a WFE wait or sets the vCPU's event register, through `onEvent` (at most one event per
// poll).
// EL0 accesses denied by CNTKCTL_EL1 trap to EL1 with EC 0x18 (ISS: Op0, Op2, Op1, CRn, Rt, CRm,
// direction); CNTKCTL_EL1 itself is UNDEFINED at EL0.

import { EC, type Arm64Cpu } from './cpu.js';
import { sysregKey } from './sysregs.js';
import { monotonicMs } from '../../host/clock.js';

export const CNTFRQ_HZ = 62_500_000;
/** Counter ticks per millisecond. */
export const TICKS_PER_MS = CNTFRQ_HZ / 1000;

/** The shortest run slice near a real-time timer deadline (see GenericTimer.instructionsToDeadline). */
export const NEAR_DEADLINE_SLICE = 512;

/**
 * A vCPU's peak rate in instructions per millisecond (what instructionsToDeadline wants) after a
 * slice of `ran` instructions in `ms`: it follows a faster slice at once and decays slowly after a
 * slower one; slices too short to time are left out.
 */
export function peakRate(rate: number, ran: number, ms: number): number {
  return ran >= NEAR_DEADLINE_SLICE && ms > 0 ? Math.max(ran / ms, rate * 0.99) : rate;
}

export const PPI_VIRT_TIMER = 27;
export const PPI_PHYS_TIMER = 30;

// CNTKCTL_EL1 bits
const EL0PCTEN = 1 << 0;
const EL0VCTEN = 1 << 1;
const EVNTEN = 1 << 2;
const EVNTDIR = 1 << 3;
const EL0VTEN = 1 << 8;
const EL0PTEN = 1 << 9;

// CNTx_CTL bits
const CTL_ENABLE = 1;
const CTL_IMASK = 2;
const CTL_ISTATUS = 4;

/** The system counter shared by the vCPUs of one machine. */
export class SystemCounter {
  /** monotonicMs() at count 0 (real-time mode): vCPU threads of one machine start from the same. */
  get startMs(): number {
    return this.start;
  }
  private start: number;
  /** Deterministic mode: ticks skipped while every vCPU waited. */
  private idle = 0;
  private last = -1;
  readonly timers: GenericTimer[] = [];

  constructor(
    readonly cpus: Arm64Cpu[],
    readonly deterministic: boolean,
    startMs = monotonicMs(),
  ) {
    this.start = startMs;
  }

  /** Current counter value (an integer below 2^53). */
  now(): number {
    if (!this.deterministic) return Math.floor((monotonicMs() - this.start) * TICKS_PER_MS);
    let base = this.idle;
    const cpus = this.cpus;
    for (let i = 0; i < cpus.length; i++) base += cpus[i].icount;
    return base;
  }

  /**
   * The count the timers compare against: now(), or in deterministic mode the last value a guest read
   * when that is ahead (so ISTATUS never lags behind a count the guest has seen).
   */
  current(): number {
    const t = this.now();
    return this.deterministic && this.last > t ? this.last : t;
  }

  /** A guest read of the counter (deterministic: strictly increasing within a run slice). */
  read(): number {
    const t = this.now();
    if (!this.deterministic) return t;
    const v = t > this.last ? t : this.last + 1;
    this.last = v;
    return v;
  }

  /** The count for a snapshot: the value the guest last could see (plain JSON). */
  saveState(): SystemCounterState {
    return { ticks: this.current(), idle: this.idle, last: this.last, deterministic: this.deterministic };
  }

  /**
   * Carry on from a saved count: the counter never goes back, and the time the snapshot spent on
   * disk does not pass for the guest (as on a VM resumed after a pause). Call after the vCPUs'
   * states are loaded (deterministic mode counts their instructions).
   */
  loadState(s: SystemCounterState): void {
    if (!Number.isFinite(s.ticks) || s.ticks < 0) throw new Error(`system counter: bad value ${s.ticks}`);
    if (this.deterministic) {
      let base = 0;
      for (const c of this.cpus) base += c.icount;
      this.idle = Math.max(0, s.ticks - base);
      this.last = s.last;
    } else {
      this.start = monotonicMs() - s.ticks / TICKS_PER_MS;
      // The count now must not read below the saved one (rounding of the division above).
      while (this.now() < s.ticks) this.start -= 1 / TICKS_PER_MS;
    }
  }

  /** Deterministic mode: when every running vCPU waits, jump to the earliest armed deadline. */
  skipIdle(): void {
    if (!this.deterministic) return;
    let anyWaiting = false;
    for (const c of this.cpus) {
      if (c.off) continue;
      if (!c.waiting) return;
      anyWaiting = true;
    }
    if (!anyWaiting) return;
    let deadline = Infinity;
    for (const t of this.timers) if (!t.cpu.off) deadline = Math.min(deadline, t.nextDeadlineTicks());
    if (deadline === Infinity) return;
    const now = this.current();
    if (deadline > now) this.idle += deadline - now;
  }
}

/** SystemCounter as saved in a snapshot. */
export interface SystemCounterState {
  ticks: number;
  idle: number;
  last: number;
  deterministic: boolean;
}

/** GenericTimer as saved in a snapshot (CVALs as hex strings). */
export interface GenericTimerState {
  cntkctl: number;
  cntfrq: number;
  /** [ctl, cval, output] of the virtual and the physical timer. */
  virt: [number, string, boolean];
  phys: [number, string, boolean];
  lastEventCheck: number;
}

const WFE = 0xd503205f;

/**
 * Whether a waiting vCPU stopped in WFE (not WFI). The executor has moved PC past the waiting
 * instruction and has not fetched since, so that instruction is the word before PC in the current
 * fetch page (the last word of that page when PC has moved into the next one).
 */
function waitsInWfe(cpu: Arm64Cpu): boolean {
  const pa = cpu.fetchPagePa + ((cpu.pcLo - 4) & 0xffc);
  return cpu.mem.isRam(pa, 4) && cpu.mem.readPhys(pa, 4) === WFE;
}

const counters = new WeakMap<Arm64Cpu[], SystemCounter>();

/** The shared counter of the machine `cpu` belongs to (keyed by its `peers` array). */
export function systemCounterOf(cpu: Arm64Cpu, deterministic: boolean): SystemCounter {
  let c = counters.get(cpu.peers);
  if (!c) {
    c = new SystemCounter(cpu.peers, deterministic);
    counters.set(cpu.peers, c);
  }
  return c;
}

/** One timer (physical or virtual) of a vCPU. */
class TimerChannel {
  ctl = 0; // ENABLE and IMASK as written
  cval = 0n;
  /** cval as a double: exact below 2^53, and always compares correctly against counter values. */
  cvalNum = 0;
  output = false;

  constructor(readonly ppi: number) {}

  fired(now: number): boolean {
    return (this.ctl & CTL_ENABLE) !== 0 && now >= this.cvalNum;
  }

  setCval(v: bigint): void {
    this.cval = v & 0xffff_ffff_ffff_ffffn;
    this.cvalNum = Number(this.cval);
  }
}

export interface GenericTimerOptions {
  deterministic?: boolean;
  /** Use this counter instead of the machine's shared one. */
  counter?: SystemCounter;
}

export class GenericTimer {
  readonly counter: SystemCounter;
  private readonly virt = new TimerChannel(PPI_VIRT_TIMER);
  private readonly phys = new TimerChannel(PPI_PHYS_TIMER);
  cntkctl = 0;
  cntfrq = CNTFRQ_HZ;

  /**
   * `setPpi(intid, level)` drives the vCPU's PPIs in the interrupt controller. The counter is shared
   * with the other vCPUs of cpu.peers (set `peers` before creating the timers).
   */
  constructor(
    readonly cpu: Arm64Cpu,
    private readonly setPpi: (intid: number, level: boolean) => void,
    opts: boolean | GenericTimerOptions = false,
  ) {
    const o: GenericTimerOptions = typeof opts === 'boolean' ? { deterministic: opts } : opts;
    this.counter = o.counter ?? systemCounterOf(cpu, !!o.deterministic);
    this.counter.timers.push(this);
    this.defineSysregs();
  }

  /**
   * Called when the event stream (CNTKCTL_EL1.EVNTEN) generates an event for this vCPU. The default
   * ends a WFE wait (Linux's udelay() sleeps in WFE between event-stream ticks, even in hard-IRQ
   * context where no interrupt can wake it) and otherwise sets the event register. A vCPU that
   * waits in WFI is left alone: waking idle vCPUs at the event-stream rate would cost a trip through
   * the guest's idle loop each time.
   */
  onEvent: (cpu: Arm64Cpu) => void = (cpu) => {
    if (cpu.waiting && waitsInWfe(cpu))
      cpu.waiting = false; // the WFE consumes the event
    else cpu.eventRegister = true;
  };
  private lastEventCheck = -1;

  /** The timer registers for a snapshot (the shared counter is saved once, by its machine). */
  saveState(): GenericTimerState {
    const ch = (t: TimerChannel): [number, string, boolean] => [t.ctl, t.cval.toString(16), t.output];
    return {
      cntkctl: this.cntkctl,
      cntfrq: this.cntfrq,
      virt: ch(this.virt),
      phys: ch(this.phys),
      lastEventCheck: this.lastEventCheck,
    };
  }

  /** Load saved registers; the PPI levels are the GIC's (saved with it), so none is driven here. */
  loadState(s: GenericTimerState): void {
    const ch = (t: TimerChannel, v: [number, string, boolean], what: string): void => {
      if (!Array.isArray(v) || v.length !== 3 || !/^[0-9a-f]{1,16}$/.test(String(v[1])))
        throw new Error(`timer ${what}: bad state`);
      t.ctl = Number(v[0]) & 3;
      t.setCval(BigInt('0x' + v[1]));
      t.output = !!v[2];
    };
    ch(this.virt, s.virt, 'CNTV');
    ch(this.phys, s.phys, 'CNTP');
    this.cntkctl = Number(s.cntkctl) & 0x3ff;
    this.cntfrq = Number(s.cntfrq) >>> 0;
    this.lastEventCheck = Number(s.lastEventCheck);
  }

  /** Re-evaluate both timer outputs now, and the event stream (the machine calls this between run slices). */
  poll(): void {
    this.counter.skipIdle();
    const now = this.counter.current();
    this.evaluate(this.virt, now);
    this.evaluate(this.phys, now);
    if (this.cntkctl & EVNTEN) this.eventStream(now);
  }

  /**
   * Event stream: an event each time bit EVNTI of the counter goes 0 -> 1 (EVNTDIR = 0) or 1 -> 0
   * (EVNTDIR = 1). Between two polls at most one event is signalled (events do not queue).
   */
  private eventStream(now: number): void {
    const last = this.lastEventCheck;
    this.lastEventCheck = now;
    if (last < 0 || now <= last) return;
    const n = (this.cntkctl >>> 4) & 0xf;
    const period = 2 ** (n + 1);
    const shift = this.cntkctl & EVNTDIR ? 0 : 2 ** n;
    if (Math.floor((now - shift) / period) !== Math.floor((last - shift) / period)) this.onEvent(this.cpu);
  }

  /**
   * Counter value at which the earliest enabled, unmasked timer that has not fired yet fires, or the
   * next event-stream event when the vCPU sleeps in WFE (Infinity if none).
   */
  nextDeadlineTicks(): number {
    const now = this.counter.current();
    let d = Infinity;
    for (const t of [this.virt, this.phys]) {
      if ((t.ctl & (CTL_ENABLE | CTL_IMASK)) !== CTL_ENABLE) continue;
      if (t.cvalNum > now && t.cvalNum < d) d = t.cvalNum;
    }
    // A vCPU sleeping in WFE also wakes at the next event-stream event.
    if (
      (this.cntkctl & EVNTEN) !== 0 &&
      this.cpu.waiting &&
      this.lastEventCheck >= 0 &&
      waitsInWfe(this.cpu)
    ) {
      const n = (this.cntkctl >>> 4) & 0xf;
      const period = 2 ** (n + 1);
      const shift = this.cntkctl & EVNTDIR ? 0 : 2 ** n;
      const next = (Math.floor((this.lastEventCheck - shift) / period) + 1) * period + shift;
      if (next < d) d = Math.max(next, now + 1);
    }
    return d;
  }

  /**
   * Milliseconds until the earliest enabled, unmasked timer fires (Infinity if none; 0 when one is
   * armed in deterministic mode: the next poll() skips the idle time).
   */
  nextDeadlineMs(): number {
    const d = this.nextDeadlineTicks();
    if (d === Infinity) return Infinity;
    if (this.counter.deterministic) return 0;
    return Math.max(0, (d - this.counter.current()) / TICKS_PER_MS);
  }

  private evaluate(t: TimerChannel, now: number): void {
    const level = (t.ctl & (CTL_ENABLE | CTL_IMASK)) === CTL_ENABLE && now >= t.cvalNum;
    if (level !== t.output) {
      t.output = level;
      this.setPpi(t.ppi, level);
    }
  }

  private readCtl(t: TimerChannel): bigint {
    const now = this.counter.current();
    this.evaluate(t, now);
    return BigInt(t.ctl | (t.fired(now) ? CTL_ISTATUS : 0));
  }

  /** A guest read of the counter: both outputs follow the value it sees. */
  private readCount(): number {
    const v = this.counter.read();
    this.evaluate(this.virt, v);
    this.evaluate(this.phys, v);
    return v;
  }

  /**
   * How many instructions the vCPU may run before the run loop polls this timer again (Infinity with
   * no timer armed). Deterministic mode: exactly the instructions (of any vCPU) until the earliest
   * armed timer fires, at least 1. Real-time mode: half of what the host would run until the deadline
   * at `insnsPerMs` (the vCPU's measured peak rate), so slices shrink towards the deadline, and never
   * fewer than NEAR_DEADLINE_SLICE: a deadline the guest does not observe is taken at most
   * NEAR_DEADLINE_SLICE instructions (plus the rest of a translated block) after it passes, as long as
   * the host runs no faster than twice the measured peak rate.
   */
  instructionsToDeadline(insnsPerMs = 0): number {
    const d = this.nextDeadlineTicks();
    if (d === Infinity) return d;
    const ticks = d - this.counter.current();
    if (this.counter.deterministic) return Math.max(1, ticks);
    return Math.max(NEAR_DEADLINE_SLICE, Math.floor((ticks / TICKS_PER_MS) * insnsPerMs * 0.5));
  }

  private writeCtl(t: TimerChannel, v: bigint): void {
    t.ctl = Number(v & 3n);
    this.evaluate(t, this.counter.current());
  }

  private writeCval(t: TimerChannel, v: bigint): void {
    t.setCval(v);
    this.evaluate(t, this.counter.current());
  }

  /** TVAL reads (CVAL - counter)[31:0]; bits [63:32] are RES0. */
  private readTval(t: TimerChannel): bigint {
    const diff = t.cval - BigInt(this.readCount());
    return diff & 0xffff_ffffn;
  }

  /** TVAL writes set CVAL = counter + SignExtend(value[31:0]). */
  private writeTval(t: TimerChannel, v: bigint): void {
    const tv = BigInt.asIntN(32, v);
    const now = this.counter.read();
    t.setCval(BigInt(now) + tv);
    this.evaluate(t, now);
  }

  /** An EL0 access denied by CNTKCTL_EL1: trap to EL1 with EC 0x18 and the MRS/MSR syndrome. */
  private trap(cpu: Arm64Cpu, crm: number, op2: number, isRead: boolean): never {
    // Rt comes from the trapped instruction: fetch it again (it was just fetched from this page).
    let rt = 0;
    const pa = cpu.mmu.translateFetch(cpu.pcLo, cpu.pcHi);
    if (cpu.mem.isRam(pa, 4)) rt = cpu.mem.readPhys(pa, 4) & 0x1f;
    const iss = (3 << 20) | (op2 << 17) | (3 << 14) | (14 << 10) | (rt << 5) | (crm << 1) | (isRead ? 1 : 0);
    cpu.raise(EC.SYSREG, iss);
  }

  private defineSysregs(): void {
    const cpu = this.cpu;
    const def = (
      crm: number,
      op2: number,
      name: string,
      allowed: (k: number) => boolean,
      read: () => bigint,
      write: ((v: bigint) => void) | undefined,
    ): void => {
      cpu.sys.define(sysregKey(3, 3, 14, crm, op2), {
        name,
        read: (k) => {
          if (k.el === 0 && !allowed(this.cntkctl)) this.trap(k, crm, op2, true);
          return read();
        },
        write: write
          ? (k, v) => {
              if (k.el === 0 && !allowed(this.cntkctl)) this.trap(k, crm, op2, false);
              write(v);
            }
          : undefined,
      });
    };
    const pct = (k: number): boolean => (k & EL0PCTEN) !== 0;
    const vct = (k: number): boolean => (k & EL0VCTEN) !== 0;
    const frq = (k: number): boolean => (k & (EL0PCTEN | EL0VCTEN)) !== 0;
    const vten = (k: number): boolean => (k & EL0VTEN) !== 0;
    const pten = (k: number): boolean => (k & EL0PTEN) !== 0;
    const readCounter = (): bigint => BigInt(this.readCount());
    // CNTFRQ_EL0 is writable at the highest implemented Exception level (EL1 here), UNDEFINED at EL0.
    // It only informs software: the counter always runs at CNTFRQ_HZ.
    cpu.sys.define(sysregKey(3, 3, 14, 0, 0), {
      name: 'CNTFRQ_EL0',
      read: (k) => {
        if (k.el === 0 && !frq(this.cntkctl)) this.trap(k, 0, 0, true);
        return BigInt(this.cntfrq);
      },
      write: (k, v) => {
        if (k.el === 0) k.raise(EC.UNKNOWN, 0);
        this.cntfrq = Number(v & 0xffff_ffffn);
      },
    });
    def(0, 1, 'CNTPCT_EL0', pct, readCounter, undefined);
    def(0, 2, 'CNTVCT_EL0', vct, readCounter, undefined);
    const p = this.phys;
    const vt = this.virt;
    def(
      2,
      0,
      'CNTP_TVAL_EL0',
      pten,
      () => this.readTval(p),
      (v) => this.writeTval(p, v),
    );
    def(
      2,
      1,
      'CNTP_CTL_EL0',
      pten,
      () => this.readCtl(p),
      (v) => this.writeCtl(p, v),
    );
    def(
      2,
      2,
      'CNTP_CVAL_EL0',
      pten,
      () => p.cval,
      (v) => this.writeCval(p, v),
    );
    def(
      3,
      0,
      'CNTV_TVAL_EL0',
      vten,
      () => this.readTval(vt),
      (v) => this.writeTval(vt, v),
    );
    def(
      3,
      1,
      'CNTV_CTL_EL0',
      vten,
      () => this.readCtl(vt),
      (v) => this.writeCtl(vt, v),
    );
    def(
      3,
      2,
      'CNTV_CVAL_EL0',
      vten,
      () => vt.cval,
      (v) => this.writeCval(vt, v),
    );
    cpu.sys.define(sysregKey(3, 0, 14, 1, 0), {
      name: 'CNTKCTL_EL1',
      read: (k) => {
        if (k.el === 0) k.raise(EC.UNKNOWN, 0);
        return BigInt(this.cntkctl);
      },
      write: (k, v) => {
        if (k.el === 0) k.raise(EC.UNKNOWN, 0);
        // EL0PCTEN, EL0VCTEN, EVNTEN, EVNTDIR, EVNTI, EL0VTEN, EL0PTEN
        const old = this.cntkctl;
        this.cntkctl = Number(v & 0x3ffn);
        if ((this.cntkctl & ~old & EVNTEN) !== 0) this.lastEventCheck = this.counter.current();
      },
    });
  }
}

// The tcg engine with one host thread per vCPU: vCPU 0 runs on the VMM's thread (with the device
// models, the GIC and the event loop, as TcgEngine runs it), vCPUs 1..N-1 each on a worker_thread
// (threads/worker.ts) over the same shared WebAssembly memory.
//
// Why vCPU 0 stays here: a request from a worker reaches this thread within microseconds while vCPU 0
// runs (the worker sets its ATTN word: it leaves run() at the next block head), but about 80 us when
// this thread sleeps in the event loop (Atomics.waitAsync, measured with Node 20); Linux does most of
// its device I/O and console output on CPU 0, which then needs no request at all.

import { Worker } from 'node:worker_threads';
import type { StopReason, VcpuEngine } from '../../engine.js';
import type { Arm64Cpu } from '../cpu.js';
import type { GenericTimer } from '../timer.js';
import { TcgEngine, type SliceHost } from '../engine.js';
import type { GuestMemory } from '../../../memory/guest-memory.js';
import type { GicTarget } from '../../../devices/gicv3.js';
import type { PsciCaller, PsciTarget } from '../../../machine/psci.js';
import { ATTN_OFF } from '../wasm/layout.js';
import {
  CTRL_PAUSE,
  CTRL_RUN,
  CTRL_STOP,
  G_DOORBELL,
  IDLE,
  Req,
  RUNNING,
  V_CTRL,
  V_LINES,
  V_PARKED,
  V_PPI,
  V_REQ_A,
  V_REQ_ACK,
  V_REQ_OP,
  V_REQ_R,
  V_REQ_SEQ,
  V_STATE,
  VcpuLink,
  waitAsync,
} from './link.js';
import { ThreadPeers, applyInbox } from './peers.js';
import { UnitExchange, unitPorts } from './units.js';
import type { VcpuThreadState, VcpuWorkerData } from './worker.js';

/** What the machine does for a vCPU on another thread. */
export interface VcpuServices {
  iccList(): VcpuWorkerData['icc'];
  iccRead(id: number, key: number): bigint;
  iccWrite(id: number, key: number, v: bigint): void;
  setPpi(id: number, intid: number, level: boolean): void;
  /** The PPI input levels the GIC has for vCPU id (INTIDs 16-31 as bits 0-15). */
  ppiLevels(id: number): number;
  /** A PSCI call by a vCPU (function and arguments in its X0..X3). */
  psci(caller: PsciCaller): void;
}

/** A vCPU on another thread as the VMM's thread sees it: PSCI's view and the GIC's IRQ line. */
export class RemoteVcpu implements PsciTarget, GicTarget {
  off = true;
  private line = false;

  constructor(
    readonly id: number,
    private readonly link: VcpuLink,
    private readonly peers: ThreadPeers,
  ) {}

  get irqLine(): boolean {
    return this.line;
  }
  set irqLine(v: boolean) {
    if (v === this.line) return;
    this.line = v;
    this.link.set(this.id, V_LINES, v ? 1 : 0);
    this.peers.nudge(this.id);
  }
  /** The vCPU's own thread ends its wait when it sees the line (the nudge above wakes it). */
  get waiting(): boolean {
    return false;
  }
  set waiting(_v: boolean) {}
}

export interface ThreadedEngineOptions {
  logUnimplemented: boolean;
}

export class ThreadedTcgEngine implements VcpuEngine, SliceHost {
  readonly kind = 'tcg';
  readonly link: VcpuLink;
  readonly remotes: RemoteVcpu[] = [];
  private readonly inner: TcgEngine;
  private readonly peers: ThreadPeers;
  private readonly attn0: Int32Array;
  private workers: Worker[] = [];
  private exited: Promise<void>[] = [];
  private failure: string | undefined;
  /** Each worker's vCPU state, posted when it last held at a pause (by id). */
  private readonly parkedStates = new Map<number, VcpuThreadState>();
  /** The states the workers start from (a restored snapshot), by id. */
  private readonly initial = new Map<number, VcpuThreadState>();
  /** The PPI levels of each vCPU on another thread the GIC has (by id; see link.ts V_PPI). */
  private readonly ppiSeen: number[] = [];
  /** Translated code to and from the workers' code caches, while they run (units.ts). */
  private units: UnitExchange | undefined;

  constructor(
    private readonly cpu0: Arm64Cpu,
    private readonly timer0: GenericTimer,
    readonly ncpus: number,
    private readonly mem: GuestMemory,
    private readonly services: VcpuServices,
    private readonly opts: ThreadedEngineOptions,
  ) {
    this.link = VcpuLink.create(ncpus);
    this.inner = new TcgEngine([cpu0], [timer0]);
    this.inner.host = this;
    this.peers = new ThreadPeers(
      this.link,
      0,
      mem.stateBuffer,
      (k) => mem.cpuBlock(k),
      mem.codePages,
      () => this.serveAll(),
    );
    cpu0.remote = this.peers;
    this.peers.watchCodeWrites(mem, cpu0.code);
    this.attn0 = new Int32Array(mem.stateBuffer, mem.cpuBlock(0) + ATTN_OFF, 1);
    for (let id = 1; id < ncpus; id++) this.remotes.push(new RemoteVcpu(id, this.link, this.peers));
  }

  /** The state of vCPU id >= 1 for a snapshot: taken when it held at the pause (see held()). */
  savedState(id: number): VcpuThreadState {
    const st = this.workers.length === 0 ? this.initial.get(id) : this.parkedStates.get(id);
    if (!st) throw new Error(`vCPU ${id} has no state to save: pause the guest first`);
    return st;
  }

  /** Start vCPU id >= 1 from this state (before run()). */
  loadState(id: number, st: VcpuThreadState): void {
    if (this.workers.length !== 0) throw new Error(`vCPU ${id} runs already: its state cannot be loaded`);
    this.initial.set(id, st);
    this.remotes[id - 1].off = st.cpu.off;
  }

  /** PSCI CPU_ON of vCPU id >= 1. */
  cpuOn(id: number, entry: bigint, ctx: bigint): void {
    this.remotes[id - 1].off = false;
    this.peers.cpuOn(id, entry, ctx);
  }

  get instructions(): number {
    let n = this.cpu0.icount;
    for (let id = 1; id < this.ncpus; id++) n += this.link.icount(id);
    return n;
  }

  get idle(): boolean {
    return this.inner.idle && this.remotes.every((r) => this.link.get(r.id, V_STATE) !== RUNNING);
  }

  get stats(): { idleMs: number; idleSleeps: number } {
    return this.inner.stats;
  }
  get onSlice(): () => void {
    return this.inner.onSlice;
  }
  set onSlice(f: () => void) {
    this.inner.onSlice = f;
  }
  get onDebugStop(): ((cpu: Arm64Cpu) => void) | undefined {
    return this.inner.onDebugStop;
  }
  set onDebugStop(f: ((cpu: Arm64Cpu) => void) | undefined) {
    this.inner.onDebugStop = f;
  }

  private control(ctrl: number): void {
    for (const r of this.remotes) {
      this.link.set(r.id, V_CTRL, ctrl);
      this.peers.nudge(r.id);
    }
  }

  stop(reason: StopReason): void {
    this.control(CTRL_STOP);
    this.inner.stop(reason);
  }

  pause(): void {
    if (!this.inner.isPaused) this.parkedStates.clear();
    this.control(CTRL_PAUSE);
    this.inner.pause();
  }

  /**
   * Resolves once every worker holds at its pause and has posted its state (they ring the doorbell
   * when they do).
   */
  async held(): Promise<void> {
    await this.inner.held();
    const parked = (): boolean =>
      this.workers.length === 0 ||
      this.remotes.every(
        (r) =>
          (this.link.get(r.id, V_PARKED) !== 0 && this.parkedStates.has(r.id)) ||
          this.link.get(r.id, V_CTRL) !== CTRL_PAUSE,
      );
    while (!parked() && this.failure === undefined) {
      this.serveAll();
      const seen = Atomics.load(this.link.i32, G_DOORBELL);
      await waitAsync(this.link.i32, G_DOORBELL, seen, 5);
    }
  }

  resume(): void {
    this.control(CTRL_RUN);
    this.inner.resume();
  }

  get isPaused(): boolean {
    return this.inner.isPaused;
  }

  kick(): void {
    this.inner.kick();
  }

  /** Start the workers (at the first run: every device is registered by then), run vCPU 0 here. */
  async run(): Promise<StopReason> {
    if (this.workers.length === 0) this.start();
    let reason: StopReason;
    try {
      reason = await this.inner.run();
    } finally {
      await this.shutdown();
    }
    if (this.failure !== undefined) throw new Error(this.failure);
    return reason;
  }

  private start(): void {
    const mem = this.mem;
    const url = new URL('./worker.js', import.meta.url);
    const ports = unitPorts(this.ncpus);
    this.units = new UnitExchange(this.link, 0, ports[0]);
    this.units.attach(this.cpu0.code);
    for (const r of this.remotes) {
      // The PPI word starts where the GIC is (a restored guest's timer may hold its line high).
      const levels = this.services.ppiLevels(r.id);
      this.link.set(r.id, V_PPI, levels);
      this.ppiSeen[r.id] = levels;
      const data: VcpuWorkerData = {
        id: r.id,
        memory: mem.wasm!,
        ramBase: mem.ramBase,
        ramSize: mem.ramSize,
        link: this.link.sab,
        ncpus: this.ncpus,
        counterStartMs: this.timer0.counter.startMs,
        mmio: mem.mmioRegions(),
        icc: this.services.iccList(),
        logUnimplemented: this.opts.logUnimplemented,
        jit: this.cpu0.code.jit,
        jitThreshold: this.cpu0.code.jitThreshold,
        entryHeat: this.cpu0.code.entryHeat,
        jitBatch: this.cpu0.code.jitBatch,
        stats: !!process.env.TYPEVISOR_STATS,
        initial: this.initial.get(r.id),
        unitPorts: ports[r.id],
      };
      const w = new Worker(url, {
        workerData: data,
        transferList: ports[r.id].filter((p) => p !== undefined),
        stdout: false,
        stderr: false,
      });
      w.on('message', (m: { error?: string; stats?: string; parked?: VcpuThreadState }) => {
        if (m.error !== undefined) this.fail(m.error);
        if (m.parked !== undefined) this.parkedStates.set(r.id, m.parked);
        if (m.stats !== undefined) process.stderr.write(`typevisor: stats: ${m.stats}\n`);
      });
      w.on('error', (e) => this.fail(`vCPU ${r.id}: ${e.stack ?? e.message}`));
      this.exited.push(new Promise((resolve) => w.once('exit', () => resolve())));
      this.workers.push(w);
    }
  }

  private fail(msg: string): void {
    if (this.failure !== undefined) return;
    this.failure = `typevisor: a vCPU thread failed: ${msg}`;
    this.stop('stopped');
  }

  private async shutdown(): Promise<void> {
    this.control(CTRL_STOP);
    // A worker waiting for a request leaves at the STOP; serve what is asked meanwhile all the same.
    const all = Promise.all(this.exited);
    let done = false;
    void all.then(() => (done = true));
    const deadline = Date.now() + 2000;
    while (!done && Date.now() < deadline) {
      this.serveAll();
      await new Promise((r) => setTimeout(r, 1));
    }
    if (!done) await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
    this.exited = [];
    this.cpu0.code.share = undefined;
    this.units?.close();
    this.units = undefined;
  }

  // ---- SliceHost: around vCPU 0's slices ----

  enter(cpu: Arm64Cpu): boolean {
    // ATTN is cleared before the requests are looked at: one posted after this look sets it again
    // and ends the slice; one posted before would otherwise wait for the whole slice (measured: the
    // 10% slowest requests waited 378 us or more).
    Atomics.store(this.attn0, 0, 0);
    this.serveAll();
    this.units?.take(cpu.code);
    this.link.set(0, V_STATE, RUNNING);
    if (applyInbox(this.link, cpu)) {
      this.link.set(0, V_STATE, IDLE);
      return false;
    }
    return true;
  }

  leave(): void {
    this.link.set(0, V_STATE, IDLE);
    this.serveAll();
  }

  serve(): void {
    this.serveAll();
  }

  async wait(ms: number, wake: Promise<void>): Promise<void> {
    const i32 = this.link.i32;
    const seen = Atomics.load(i32, G_DOORBELL);
    applyInbox(this.link, this.cpu0);
    if (this.serveAll()) return;
    if (this.remotes.some((r) => this.link.get(r.id, V_STATE) === RUNNING)) {
      // Workers run: answer their requests within microseconds (a blocking wait of at most 1 ms,
      // then the event loop gets its turn).
      Atomics.wait(i32, G_DOORBELL, seen, Math.min(1, Math.max(0, ms)));
      this.serveAll();
      await new Promise((r) => setImmediate(r));
      return;
    }
    await Promise.race([wake, waitAsync(i32, G_DOORBELL, seen, Math.max(1, ms))]);
    this.serveAll();
  }

  /** Answer every worker's pending request; true when there was one. */
  private serveAll(): boolean {
    let any = false;
    for (const r of this.remotes) if (this.serveOne(r.id)) any = true;
    return any;
  }

  private serveOne(id: number): boolean {
    const link = this.link;
    const i32 = link.i32;
    const ppi = link.get(id, V_PPI);
    const seen = this.ppiSeen[id] ?? 0;
    if (ppi !== seen) {
      this.ppiSeen[id] = ppi;
      for (let bit = 0; bit < 16; bit++) {
        const m = 1 << bit;
        if (((ppi ^ seen) & m) !== 0) this.services.setPpi(id, 16 + bit, (ppi & m) !== 0);
      }
    }
    const seq = Atomics.load(i32, link.at(id, V_REQ_SEQ));
    if (seq === Atomics.load(i32, link.at(id, V_REQ_ACK))) return false;
    const a = (k: number): number => i32[link.at(id, V_REQ_A + k)];
    const setR = (k: number, v: number): void => void (i32[link.at(id, V_REQ_R + k)] = v);
    const big = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    try {
      switch (i32[link.at(id, V_REQ_OP)] as Req) {
        case Req.MMIO_READ:
          setR(0, this.mem.readPhys(a(0) >>> 0, a(2)));
          break;
        case Req.MMIO_WRITE:
          this.mem.writePhys(a(0) >>> 0, a(2), a(3));
          break;
        case Req.SYSREG_READ:
          link.setWide(id, V_REQ_R, this.services.iccRead(id, a(0)));
          break;
        case Req.SYSREG_WRITE:
          this.services.iccWrite(id, a(0), link.getWide(id, V_REQ_A + 1));
          break;
        case Req.PSCI: {
          const x = [0, 1, 2, 3].map((n) => [a(2 * n), a(2 * n + 1)]);
          const remote = this.remotes[id - 1];
          let flags = 0;
          const caller: PsciCaller = {
            xlo: (n) => x[n][0],
            xhi: (n) => x[n][1],
            xBig: (n) => big(x[n][0], x[n][1]),
            setX: (n, lo, hi) => void (x[n] = [lo, hi]),
            get waiting() {
              return (flags & 1) !== 0;
            },
            set waiting(v: boolean) {
              flags = v ? flags | 1 : flags & ~1;
            },
            get off() {
              return remote.off;
            },
            set off(v: boolean) {
              remote.off = v;
              flags = v ? flags | 2 : flags & ~2;
            },
          };
          this.services.psci(caller);
          setR(0, x[0][0]);
          setR(1, x[0][1]);
          setR(2, flags);
          break;
        }
        default:
          throw new Error(`unknown request ${i32[link.at(id, V_REQ_OP)]}`);
      }
    } catch (e) {
      this.fail(`vCPU ${id}: ${e instanceof Error ? e.message : String(e)}`);
    }
    Atomics.store(i32, link.at(id, V_REQ_ACK), seq);
    Atomics.notify(i32, link.at(id, V_REQ_ACK));
    return true;
  }
}

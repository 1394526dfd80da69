// The kvm engine: a machine's vCPUs in KVM_RUN. With one vCPU and mode 'sync', KVM_RUN is called on
// this thread (the fastest exit path, for small test guests; it holds the event loop). Otherwise
// each vCPU's KVM_RUN runs on a libuv pool thread (koffi async calls) and its exits are handled on
// this thread, so device models need no locking and the event loop (console, control API) runs.

import type { StopReason as EngineStop, VcpuEngine } from '../engine.js';
import { GuestError, runLoopAsync, runLoopSync, type RunLoopOptions, type StopReason } from './exits.js';
import { RUN, type KvmVcpu } from './kvm.js';
import { kickThreads } from '../../host/sys.js';

export type KvmStop = StopReason;

/** Device polling between exits runs at most this often (ms); a timer covers a guest that makes none. */
const POLL_MS = 2;

export class KvmEngine implements VcpuEngine {
  readonly kind = 'kvm';
  /** Why the VM stopped, in the engine's words (exit status, KVM's reason). */
  stopped: KvmStop | undefined;
  onSlice: () => void = () => {};
  private paused = false;
  private resumed: Promise<void> | undefined;
  private release: (() => void) | undefined;
  /** vCPUs that stopped on their own (a test guest's 'vcpu-done' port): their loop ends without stopping the VM. */
  private readonly parked = new Set<number>();
  private lastPoll = 0;
  /** vCPU loops running (runDetailed), and how many of them wait at the pause gate. */
  private loopsRunning = 0;
  private atGate = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  /** The vCPUs' kvm_run mappings are gone (the machine closed): nothing may touch them. */
  private detached = false;
  readonly exitStats: Record<string, number> = {};

  constructor(
    readonly vcpus: KvmVcpu[],
    /** How exits reach the devices (ports, MMIO) and when to stop. */
    private readonly loop: Pick<RunLoopOptions, 'ports' | 'mem' | 'maxExits'>,
    readonly mode: 'sync' | 'async',
    /** A HLT that leaves KVM (no in-kernel irqchip) stops the VM. */
    private readonly hltStops: boolean,
  ) {
    if (mode === 'sync' && vcpus.length !== 1) throw new Error('sync mode runs one vCPU');
  }

  get instructions(): undefined {
    return undefined;
  }
  /** KVM keeps halted vCPUs inside the kernel: idleness cannot be seen from here. */
  get idle(): boolean {
    return false;
  }
  get isPaused(): boolean {
    return this.paused;
  }

  /** Mark a vCPU as finished (its loop ends after the current exit; the VM goes on). */
  park(id: number): void {
    this.parked.add(id);
  }

  /** Record why the VM stops (the first reason wins); the loops end after their current exit. */
  requestStop(r: KvmStop): void {
    this.stopped ??= r;
  }

  /** Stop from outside the vCPUs: record the reason and interrupt every vCPU thread in KVM_RUN. */
  stop(reason: EngineStop | KvmStop, why = 'stopped by the VMM'): void {
    this.requestStop(
      typeof reason === 'string' ? (reason === 'stopped' ? { reason: 'stopped', why } : { reason }) : reason,
    );
    this.interrupt();
    this.release?.();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.resumed = new Promise((r) => (this.release = r));
    this.interrupt();
  }

  /** Wait (bounded) until every running vCPU loop has left KVM_RUN and waits at the pause gate. */
  async held(): Promise<void> {
    if (!this.paused) throw new Error('held(): the engine is not paused');
    for (let tries = 0; this.atGate < this.loopsRunning; tries++) {
      if (tries > 2000) throw new Error('a vCPU did not leave KVM_RUN within 10 s of the pause');
      this.interrupt();
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.allowEntry();
    this.release?.();
    this.release = undefined;
    this.resumed = undefined;
  }

  /** Device work is done on this thread between exits and on a timer: run it now. */
  kick(): void {
    setImmediate(() => this.poll());
  }

  private poll(): void {
    this.lastPoll = Date.now();
    this.onSlice();
  }

  /** The machine is closing its vCPUs: from now on the engine only records requests. */
  detach(): void {
    this.detached = true;
    clearInterval(this.pollTimer);
  }

  /** Make every vCPU leave KVM_RUN (and not re-enter it while immediate_exit stays set). */
  private interrupt(): void {
    if (this.detached) return;
    for (const v of this.vcpus) v.run.setUint8(RUN.immediateExit, 1);
    if (this.mode === 'async') kickThreads();
  }

  /** Let the vCPUs enter KVM_RUN again (undo interrupt()). */
  private allowEntry(): void {
    if (this.detached) return;
    for (const v of this.vcpus) v.run.setUint8(RUN.immediateExit, 0);
  }

  private loopOptions(id: number): RunLoopOptions {
    return {
      ...this.loop,
      stats: this.exitStats,
      stopRequested: () => {
        if (this.stopped) return this.stopped;
        if (this.parked.has(id)) return { reason: 'stopped', why: 'parked' };
        return undefined;
      },
      gate: () => {
        const r = this.resumed;
        if (!r) return undefined;
        this.atGate++;
        return r.then(() => {
          this.atGate--;
        });
      },
      afterExit: () => {
        if (Date.now() - this.lastPoll >= POLL_MS) this.poll();
      },
    };
  }

  /** Run as VcpuEngine: the VM's stop in the interface's terms (its details stay in `stopped`). */
  async run(): Promise<EngineStop> {
    const r = await this.runDetailed();
    return r.reason === 'poweroff' || r.reason === 'exit' ? 'poweroff' : r.reason === 'reboot' ? 'reboot' : 'stopped';
  }

  /**
   * Run all vCPUs until the VM stops. Resolves with the stop reason; rejects with a GuestError or
   * KvmError (triple fault, emulation failure, too many exits...).
   */
  async runDetailed(): Promise<KvmStop> {
    if (this.detached) throw new Error('the machine is closed');
    if (this.mode === 'sync') {
      const r = runLoopSync(this.vcpus[0], this.loopOptions(0));
      return this.stopped ?? r;
    }
    this.pollTimer = setInterval(() => this.poll(), 10);
    try {
      return await this.runAsync();
    } finally {
      clearInterval(this.pollTimer);
    }
  }

  private async runAsync(): Promise<KvmStop> {
    const loops = this.vcpus.map((v, i) => {
      this.loopsRunning++;
      return runLoopAsync(v, this.loopOptions(i))
        .finally(() => this.loopsRunning--)
        .then((r) => {
          if (r.reason === 'hlt' && this.hltStops) this.requestStop(r);
          return r;
        });
    });
    // The VM stops when any vCPU stops it (or fails); parked vCPUs just end their loop.
    const first = await Promise.race(
      loops.map((p, i) =>
        p.then(async (r) => {
          if (this.parked.has(i) && !this.stopped) {
            // Wait for a vCPU that is not parked to finish instead.
            await new Promise<never>(() => {});
          }
          return r;
        }),
      ),
    ).catch((e: unknown) => {
      this.requestStop({ reason: 'stopped', why: String(e) });
      return e instanceof Error ? e : new Error(String(e));
    });
    // Bring every other vCPU out of KVM_RUN (it may sit in an in-kernel HLT forever): ask it not to
    // re-enter, then interrupt its thread until its loop has ended. A paused loop is released.
    this.release?.();
    const settled = loops.map(() => false);
    loops.forEach((p, i) =>
      p.then(
        () => (settled[i] = true),
        () => (settled[i] = true),
      ),
    );
    for (let tries = 0; settled.some((s) => !s); tries++) {
      this.interrupt();
      await new Promise((r) => setTimeout(r, Math.min(50, 1 + tries)));
      if (tries > 2000)
        throw new GuestError('a vCPU did not leave KVM_RUN after being interrupted for 100 s', 'KVM_RUN');
    }
    this.allowEntry();
    if (first instanceof Error) throw first;
    return this.stopped ?? first;
  }
}

// The tcg engine: the software AArch64 vCPUs of a machine with their generic timers, scheduled
// round-robin in slices on this thread. The loop yields to Node's event loop regularly so that
// console input, timers and control requests are served.

import type { StopReason, VcpuEngine } from '../engine.js';
import type { Arm64Cpu } from './cpu.js';
import { peakRate, type GenericTimer } from './timer.js';
import { monotonicMs } from '../../host/clock.js';

/**
 * What an engine whose other vCPUs run on their own threads (threads/engine.ts) does around the
 * slices of the vCPUs on this thread.
 */
export interface SliceHost {
  /** Before a vCPU's slice: false when it must not run now (it had work from other threads first). */
  enter(cpu: Arm64Cpu): boolean;
  /** After a vCPU's slice. */
  leave(cpu: Arm64Cpu): void;
  /** Between rounds of slices: serve the other threads. */
  serve(): void;
  /** Every vCPU of this thread waits: wait at most `ms`, or until `wake` (a kick) or the other threads ask. */
  wait(ms: number, wake: Promise<void>): Promise<void>;
}

export class TcgEngine implements VcpuEngine {
  readonly kind = 'tcg';
  private stopReason: StopReason | undefined;
  private paused = false;
  private wake: (() => void) | undefined;
  /** Instructions per millisecond each vCPU ran at its fastest lately (slices end near timer deadlines). */
  private readonly insnsPerMs: number[];
  /** Run-loop statistics: wall time slept with every vCPU idle, and how often. */
  readonly stats = { idleMs: 0, idleSleeps: 0 };
  onSlice: () => void = () => {};
  /** Called when a vCPU stops for the host debugger (cpu.debug.stop says why); the engine is paused then. */
  onDebugStop: ((cpu: Arm64Cpu) => void) | undefined;
  /** Set when other vCPUs run on other threads (threads/engine.ts). */
  host: SliceHost | undefined;

  constructor(
    readonly cpus: Arm64Cpu[],
    readonly timers: GenericTimer[],
  ) {
    this.insnsPerMs = cpus.map(() => 0);
  }

  /** Instructions retired by all vCPUs. */
  get instructions(): number {
    return this.cpus.reduce((s, c) => s + c.icount, 0);
  }

  get idle(): boolean {
    return this.cpus.every((c) => c.off || c.waiting);
  }

  stop(reason: StopReason): void {
    this.stopReason ??= reason;
    for (const c of this.cpus) c.off = true;
    this.kick();
  }

  pause(): void {
    this.paused = true;
  }

  /** vCPUs run only inside run()'s slices on this thread: when anyone else runs, none is mid-instruction. */
  held(): Promise<void> {
    return Promise.resolve();
  }

  resume(): void {
    this.paused = false;
    this.kick();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  kick(): void {
    const w = this.wake;
    this.wake = undefined;
    if (w) w();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /**
   * Run until the guest powers off or resets, or stop() is called. Timers are polled between slices
   * (at most SLICE instructions apart; near a deadline slices shrink, see
   * GenericTimer.instructionsToDeadline: in deterministic mode a slice ends at the vCPU's next timer
   * deadline, so the interrupt comes at the exact count; in real-time mode at most NEAR_DEADLINE_SLICE
   * instructions after it); interrupts raised while a vCPU runs are taken within its run (see
   * Arm64Cpu.run).
   */
  async run(): Promise<StopReason> {
    // The longest slice a vCPU runs before the next one's turn. Switching vCPUs costs more than the
    // slice bookkeeping (each has its own state block, TLB and jump cache to bring back into the
    // host's caches): default guest to init, run side by side, 80,000 against 20,000 took 38.1/33.0 s
    // against 41.5/38.5 s with 4 vCPUs and 31.3/34.0 s against 32.9/35.0 s with one; 4,000 was 11%
    // slower. Timer deadlines still end slices early (instructionsToDeadline).
    const SLICE = 80_000;
    // How long the vCPUs run before the event loop gets a turn (devices' I/O, the console, frames a
    // backend's poll() leaves for it: net-backend.ts POLL_MIN_BYTES). `bench net`, bridge, guest to
    // host (16 MiB, the guest's first transfer, which waits for ACKs that come this way): 8 ms gave
    // 21-43 MB/s in ten runs (mean 34), 4 ms 36-49 (mean 43); the other directions and the
    // default guest's boot unchanged.
    const yieldEveryMs = 4;
    while (this.stopReason === undefined) {
      if (this.paused) {
        await this.sleep(1000);
        continue;
      }
      const t0 = Date.now();
      let anyRan = false;
      do {
        anyRan = false;
        for (const c of this.cpus) {
          if (c.off) continue;
          // Polled right before the vCPU's turn (earlier vCPUs' slices took time): may raise its PPI
          // or end a WFE wait.
          const timer = this.timers[c.id];
          timer.poll();
          if (c.waiting && (c.irqLine || c.fiqLine)) c.waiting = false;
          if (c.waiting || c.debug.held) continue; // held: stopped by the host debugger while others run
          const host = this.host;
          if (host !== undefined && !host.enter(c)) {
            anyRan = true;
            continue;
          }
          const t1 = monotonicMs();
          const ran = c.run(Math.min(SLICE, timer.instructionsToDeadline(this.insnsPerMs[c.id])));
          this.insnsPerMs[c.id] = peakRate(this.insnsPerMs[c.id], ran, monotonicMs() - t1);
          host?.leave(c);
          anyRan = true;
          if (c.debug.stop !== undefined) {
            this.paused = true;
            this.onDebugStop?.(c);
            break;
          }
        }
        this.host?.serve();
        this.onSlice();
      } while (anyRan && this.stopReason === undefined && !this.paused && Date.now() - t0 < yieldEveryMs);
      if (this.stopReason !== undefined) break;
      if (!anyRan) {
        // Every vCPU waits (WFI) or is off: sleep until the earliest timer deadline or a kick.
        let ms = 50;
        for (const t of this.timers) ms = Math.min(ms, t.nextDeadlineMs());
        if (this.host !== undefined) {
          const t1 = Date.now();
          await this.host.wait(ms, this.sleep(Math.max(1, Math.ceil(ms))));
          this.kick();
          this.stats.idleMs += Date.now() - t1;
          this.stats.idleSleeps++;
        } else if (ms > 0) {
          const t1 = Date.now();
          await this.sleep(Math.max(1, Math.ceil(ms)));
          this.stats.idleMs += Date.now() - t1;
          this.stats.idleSleeps++;
        } else await new Promise((r) => setImmediate(r));
      } else {
        await new Promise((r) => setImmediate(r));
      }
    }
    return this.stopReason ?? 'stopped';
  }
}

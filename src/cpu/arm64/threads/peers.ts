// How a vCPU reaches the vCPUs on other threads (Arm64Cpu.remote): broadcast TLB and instruction-cache
// maintenance through their inboxes, complete at the issuer's next DSB (it waits until each running
// vCPU has done it), events, stores to code other threads hold, and the barriers. Used on every
// thread, the VMM's (vCPU 0) and each worker's.

import type { Arm64Cpu, CodeCache, CpuBroadcast } from '../cpu.js';
import type { GuestMemory } from '../../../memory/guest-memory.js';
import { signalEvent, tlbiOn } from '../insn/system.js';
import { resetToEntry } from '../../../machine/psci.js';
import { monotonicMs } from '../../../host/clock.js';
import { ATTN_OFF, IRQ_OFF, CPU_BLOCK, SYNC_OFF } from '../wasm/layout.js';
import { INBOX_WORDS, Msg, RUNNING, V_INBOX_DONE, V_ON, V_ON_ARGS, V_STATE, type VcpuLink } from './link.js';

const ATTN_W = ATTN_OFF >> 2;
const IRQ_W = IRQ_OFF >> 2;
const SYNC_W = SYNC_OFF >> 2;

/** The bit of vCPU id's code cache in GuestMemory.codePages (vCPUs 7 and up share bit 7). */
export function codeBitOf(id: number): number {
  return 1 << Math.min(id, 7);
}

export class ThreadPeers implements CpuBroadcast {
  /** What this vCPU sent (TYPEVISOR_STATS): completions waited for, code-page notes, and the ms it waited. */
  readonly stats = { broadcasts: 0, codeNotes: 0, waitMs: 0 };
  /** Each vCPU's state block as int32 words (ATTN and IRQ words are set to get it out of run()). */
  private readonly states: Int32Array[];
  /** By vCPU: the inbox generation a posted TLBI or IC must reach before the next DSB completes (0: none). */
  private readonly pending: number[];
  private deferred = false;

  constructor(
    private readonly link: VcpuLink,
    private readonly self: number,
    stateBuffer: ArrayBufferLike,
    cpuBlock: (id: number) => number,
    /** GuestMemory.codePages: which vCPUs' code caches hold code of each RAM page (codeBitOf). */
    private readonly codePages: Uint8Array,
    /** Called while waiting for another vCPU: serve what that vCPU may be waiting for in turn. */
    private readonly whileWaiting: () => void,
  ) {
    this.states = Array.from(
      { length: link.ncpus },
      (_, id) => new Int32Array(stateBuffer, cpuBlock(id), CPU_BLOCK >> 2),
    );
    this.pending = new Array<number>(link.ncpus).fill(0);
  }

  /** Get vCPU id out of run() at its next block head and out of Atomics.wait. */
  nudge(id: number): void {
    const s = this.states[id];
    Atomics.store(s, ATTN_W, 1);
    Atomics.store(s, IRQ_W, 1);
    this.link.wake(id);
    if (id === 0) this.link.ringDoorbell();
  }

  /**
   * Post TLB or cache maintenance to the vCPUs `to` accepts; it completes at this vCPU's next DSB
   * (complete()), as the architecture has it, so that a run of TLBIs costs one wait.
   */
  private defer(op: Msg, to: (id: number) => boolean, a = 0, b = 0, c = 0, d = 0): void {
    for (let id = 0; id < this.link.ncpus; id++) {
      if (id === this.self || !to(id)) continue;
      this.pending[id] = this.link.post(id, op, a, b, c, d);
      this.deferred = true;
    }
    if (this.deferred) Atomics.store(this.states[this.self], SYNC_W, 1);
  }

  /** Wait until every running vCPU has done what this one posted to it (a vCPU that is not running reads its inbox before it runs again). */
  private complete(): void {
    const link = this.link;
    this.stats.broadcasts++;
    const t0 = monotonicMs();
    for (let id = 0; id < link.ncpus; id++) if (this.pending[id] !== 0) this.nudge(id);
    for (let id = 0; id < link.ncpus; id++) {
      const gen = this.pending[id];
      if (gen === 0) continue;
      this.pending[id] = 0;
      const k = link.at(id, V_INBOX_DONE);
      for (;;) {
        const done = Atomics.load(link.i32, k);
        if (((done - gen) | 0) >= 0 || link.get(id, V_STATE) !== RUNNING) break;
        this.whileWaiting();
        Atomics.wait(link.i32, k, done, 0.2);
      }
    }
    this.deferred = false;
    Atomics.store(this.states[this.self], SYNC_W, 0);
    this.stats.waitMs += monotonicMs() - t0;
  }

  private readonly everyone = (): boolean => true;

  tlbi(kind: number, lo: number, hi: number, asid: number, last: boolean): void {
    this.defer(Msg.TLBI, this.everyone, kind | (last ? 0x100 : 0), lo, hi, asid);
  }

  icAll(): void {
    this.defer(Msg.IC_ALL, this.everyone);
  }

  /** Only vCPUs whose code cache holds code of the page have anything to drop. */
  icPage(ramPage: number): void {
    const bits = this.codePages[ramPage];
    if (bits === 0) return;
    this.defer(Msg.IC_PAGE, (id) => (bits & codeBitOf(id)) !== 0, ramPage);
  }

  sev(): void {
    for (let id = 0; id < this.link.ncpus; id++) {
      if (id === this.self) continue;
      this.link.post(id, Msg.SEV);
      this.nudge(id);
    }
  }

  /** DMB, DSB: a full barrier, and maintenance posted since the last one completes. */
  fence(): void {
    this.link.fence();
    if (this.deferred) this.complete();
  }

  withPairLock<T>(f: () => T): T {
    return this.link.withPairLock(f);
  }

  /**
   * Stores of this thread (its vCPU's, or a device model's on the VMM's thread) to a RAM page that
   * some code cache holds code of: this thread's cache `code` drops the page, and the other vCPUs
   * holding it are told (codeWritten).
   */
  watchCodeWrites(mem: GuestMemory, code: CodeCache): void {
    code.codeBit = codeBitOf(this.self);
    mem.onCodeWrite = (rp) => {
      const bits = mem.codePages[rp];
      if ((bits & code.codeBit) !== 0) code.invalidateRamPage(rp);
      this.codeWritten(rp, bits);
    };
  }

  /**
   * This thread wrote RAM page `rp`, where the code caches with `bits` (codeBitOf) hold code: tell
   * the other vCPUs whose bit is set to drop it (they do before they next run; an instruction fetch
   * of another PE sees a write after IC IVAU, which waits for them).
   */
  private codeWritten(rp: number, bits: number): void {
    const link = this.link;
    for (let id = 0; id < link.ncpus; id++) {
      if (id === this.self || (bits & codeBitOf(id)) === 0) continue;
      this.stats.codeNotes++;
      link.post(id, Msg.IC_PAGE, rp);
      this.nudge(id);
    }
  }

  /** Ask vCPU id (off) to start at entry with X0 = ctx (PSCI CPU_ON; see applyInbox). */
  cpuOn(id: number, entry: bigint, ctx: bigint): void {
    this.link.setWide(id, V_ON_ARGS, entry);
    this.link.setWide(id, V_ON_ARGS + 2, ctx);
    this.link.set(id, V_ON, 1);
    this.nudge(id);
  }
}

/**
 * Carry out what other threads posted to this vCPU (on its own thread, between run slices): a pending
 * CPU_ON, TLB and code invalidations, events. Returns whether anything was there.
 */
export function applyInbox(link: VcpuLink, cpu: Arm64Cpu): boolean {
  const id = cpu.id;
  let any = false;
  if (link.get(id, V_ON) !== 0) {
    resetToEntry(cpu, link.getWide(id, V_ON_ARGS), link.getWide(id, V_ON_ARGS + 2));
    link.set(id, V_ON, 0);
    any = true;
  }
  if (!link.hasMail(id)) return any;
  const { entries, full, gen } = link.take(id);
  if (full) {
    // Some were lost: do everything any of them could have asked.
    cpu.mmu.flushAll();
    cpu.code.invalidateAll();
    signalEvent(cpu);
  }
  for (let e = 0; e < entries.length; e += INBOX_WORDS) {
    const a = entries[e + 1];
    switch (entries[e] as Msg) {
      case Msg.TLBI:
        tlbiOn(cpu, a & 0xff, entries[e + 2] >>> 0, entries[e + 3] >>> 0, entries[e + 4], (a & 0x100) !== 0);
        break;
      case Msg.IC_ALL:
        cpu.code.invalidateAll();
        break;
      case Msg.IC_PAGE:
        cpu.code.invalidateRamPage(a);
        break;
      case Msg.SEV:
        signalEvent(cpu);
        break;
      default:
        break;
    }
  }
  cpu.invalidateFetch();
  link.done(id, gen);
  return true;
}

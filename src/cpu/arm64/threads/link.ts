// What the VMM's thread and the vCPU worker threads share besides guest memory: one SharedArrayBuffer
// of int32 words, a block per vCPU, read and written with Atomics on both sides.
//
// Per vCPU (V_* word offsets in its block):
//   STATE    RUNNING while the vCPU executes guest instructions, else IDLE (waits, off, parked or
//            between slices): a broadcast (TLBI ...IS, IC IALLUIS) waits only for RUNNING vCPUs,
//            since the others read their inbox before they run again (see postAndWait)
//   WAKE     bumped and notified to wake the vCPU's thread from Atomics.wait
//   CTRL     what the VMM asks of a worker: CTRL_RUN, CTRL_PAUSE, CTRL_STOP
//   PARKED   1 while a worker holds at CTRL_PAUSE (the VMM's held() waits for it)
//   LINES    the vCPU's IRQ (bit 0) and FIQ (bit 1) inputs, written by the interrupt controller
//   ICOUNT   instructions retired (float64 at words ICOUNT, ICOUNT+1), published after each slice
//   INBOX_*  operations other vCPUs posted to this one (TLB and code-cache invalidations, events,
//            CPU_ON): LOCK (0 free, 1 held), N entries of INBOX_WORDS words, FULL (more came than
//            fit: the owner then flushes everything), GEN (operations posted), DONE (GEN the owner
//            had read when it last emptied the inbox)
//   REQ_*    one synchronous request of the worker to the VMM's thread (an MMIO access, a GIC CPU
//            interface register, PSCI, a PPI level): SEQ (the worker bumps it to post), ACK (the
//            VMM sets it to SEQ when done), OP, A0..A7 arguments, R0..R2 the result
//   PPI      the levels of the vCPU's PPIs (its timers, its PMU), which its thread sets without a
//            request: the VMM's thread applies them before it serves a request of that vCPU and
//            whenever the vCPU asks for attention (so a later ICC_IAR1_EL1 read sees them)
//   ON       a PSCI CPU_ON for this vCPU: pending flag, then entry and context (never lost, unlike
//            an inbox entry when the inbox overflows)
//   UNITS    bumped by another thread after it posts translated code to this vCPU's thread (units.ts)
// Global words: DOORBELL (bumped and notified on every request: the VMM's thread waits on it when
// its own vCPU is idle), PAIR_LOCK (128-bit store-exclusives), FENCE (a word for Atomics' barrier).

export const V_STATE = 0;
export const V_WAKE = 1;
export const V_CTRL = 2;
export const V_PARKED = 3;
export const V_LINES = 4;
export const V_ICOUNT = 6; // float64: words 6 and 7
export const V_INBOX_LOCK = 8;
export const V_INBOX_N = 9;
export const V_INBOX_FULL = 10;
export const V_INBOX_GEN = 11;
export const V_INBOX_DONE = 12;
export const V_REQ_SEQ = 13;
export const V_REQ_ACK = 14;
export const V_REQ_OP = 15;
export const V_REQ_A = 16; // A0..A7: words 16..23
export const V_REQ_R = 24; // R0..R2
/** CPU_ON for this vCPU: 1 while pending (the VMM sets it), then entry lo/hi and context lo/hi. */
export const V_ON = 27;
export const V_ON_ARGS = 28;
/** The vCPU's PPI inputs (INTIDs 16-31: bit INTID - 16), as its thread last set them. */
export const V_PPI = 32;
/** Modules of translated units posted to this vCPU's thread (threads/units.ts). */
export const V_UNITS = 33;
export const V_INBOX = 34;
export const INBOX_WORDS = 5;
export const INBOX_ENTRIES = 32;
export const VCPU_WORDS = V_INBOX + INBOX_WORDS * INBOX_ENTRIES;

export const G_DOORBELL = 0;
export const G_PAIR_LOCK = 1;
export const G_FENCE = 2;
const GLOBAL_WORDS = 8;

export const RUNNING = 1;
export const IDLE = 0;
export const CTRL_RUN = 0;
export const CTRL_PAUSE = 1;
export const CTRL_STOP = 2;

/** Inbox operations (word 0 of an entry; words 1-4 its arguments). */
export const enum Msg {
  TLBI = 1, // kind (system.ts's TLBI_*) | last-level << 8, VA lo, VA hi, ASID
  IC_ALL = 2,
  IC_PAGE = 3, // RAM page number
  SEV = 4,
}

/** Requests of a worker to the VMM's thread (REQ_OP). */
export const enum Req {
  MMIO_READ = 1, // A0 address lo, A1 address hi, A2 size -> R0
  MMIO_WRITE = 2, // A0, A1 address, A2 size, A3 value
  SYSREG_READ = 3, // A0 sysreg key -> R0 lo, R1 hi
  SYSREG_WRITE = 4, // A0 key, A1 value lo, A2 value hi
  PSCI = 6, // A0..A7 X0..X3 (lo, hi), R0/R1 X0 after, R2 bit 0 waiting, bit 1 off
  FAILED = 7, // the worker's vCPU stopped with an error (its message was posted)
}

export class VcpuLink {
  readonly i32: Int32Array;
  readonly f64: Float64Array;

  constructor(
    readonly sab: SharedArrayBuffer,
    readonly ncpus: number,
  ) {
    this.i32 = new Int32Array(sab);
    this.f64 = new Float64Array(sab);
  }

  static create(ncpus: number): VcpuLink {
    return new VcpuLink(new SharedArrayBuffer((GLOBAL_WORDS + ncpus * VCPU_WORDS) * 4), ncpus);
  }

  /** Word index of word `w` of vCPU `id`'s block. */
  at(id: number, w: number): number {
    return GLOBAL_WORDS + id * VCPU_WORDS + w;
  }

  get(id: number, w: number): number {
    return Atomics.load(this.i32, this.at(id, w));
  }

  set(id: number, w: number, v: number): void {
    Atomics.store(this.i32, this.at(id, w), v);
  }

  /** Wake vCPU `id`'s thread if it sleeps in Atomics.wait on its WAKE word. */
  wake(id: number): void {
    const k = this.at(id, V_WAKE);
    Atomics.add(this.i32, k, 1);
    Atomics.notify(this.i32, k);
  }

  ringDoorbell(): void {
    Atomics.add(this.i32, G_DOORBELL, 1);
    Atomics.notify(this.i32, G_DOORBELL);
  }

  /** A 64-bit value in words w (low half) and w + 1 of vCPU id's block. */
  getWide(id: number, w: number): bigint {
    return (BigInt(this.get(id, w + 1) >>> 0) << 32n) | BigInt(this.get(id, w) >>> 0);
  }

  setWide(id: number, w: number, v: bigint): void {
    this.set(id, w, Number(v & 0xffff_ffffn) | 0);
    this.set(id, w + 1, Number((v >> 32n) & 0xffff_ffffn) | 0);
  }

  icount(id: number): number {
    return this.f64[this.at(id, V_ICOUNT) >> 1];
  }

  setIcount(id: number, n: number): void {
    this.f64[this.at(id, V_ICOUNT) >> 1] = n;
  }

  /** A full memory barrier (a locked read-modify-write). */
  fence(): void {
    Atomics.add(this.i32, G_FENCE, 0);
  }

  private lock(k: number): void {
    while (Atomics.compareExchange(this.i32, k, 0, 1) !== 0) {
      // Held for a few word copies only.
    }
  }

  private unlock(k: number): void {
    Atomics.store(this.i32, k, 0);
  }

  /** Run `f` holding the lock for 128-bit store-exclusives. */
  withPairLock<T>(f: () => T): T {
    this.lock(G_PAIR_LOCK);
    try {
      return f();
    } finally {
      this.unlock(G_PAIR_LOCK);
    }
  }

  /** Post an operation to vCPU `id`'s inbox; returns the inbox generation it is part of. */
  post(id: number, op: Msg, a = 0, b = 0, c = 0, d = 0): number {
    const lk = this.at(id, V_INBOX_LOCK);
    this.lock(lk);
    const nk = this.at(id, V_INBOX_N);
    const n = this.i32[nk];
    if (n < INBOX_ENTRIES) {
      const e = this.at(id, V_INBOX + n * INBOX_WORDS);
      this.i32[e] = op;
      this.i32[e + 1] = a;
      this.i32[e + 2] = b;
      this.i32[e + 3] = c;
      this.i32[e + 4] = d;
      this.i32[nk] = n + 1;
    } else this.i32[this.at(id, V_INBOX_FULL)] = 1;
    const gen = this.i32[this.at(id, V_INBOX_GEN)] + 1;
    this.i32[this.at(id, V_INBOX_GEN)] = gen;
    this.unlock(lk);
    return gen;
  }

  /** True when vCPU id's inbox holds operations its thread has not taken yet. */
  hasMail(id: number): boolean {
    return this.get(id, V_INBOX_GEN) !== this.get(id, V_INBOX_DONE);
  }

  /**
   * Take vCPU id's inbox (its own thread): the entries (op and 4 arguments each) and whether some
   * were lost to a full inbox; call done() with the returned generation once they are applied.
   */
  take(id: number): { entries: Int32Array; full: boolean; gen: number } {
    const lk = this.at(id, V_INBOX_LOCK);
    this.lock(lk);
    const nk = this.at(id, V_INBOX_N);
    const n = this.i32[nk];
    const e = this.at(id, V_INBOX);
    const entries = this.i32.slice(e, e + n * INBOX_WORDS);
    const full = this.i32[this.at(id, V_INBOX_FULL)] !== 0;
    this.i32[nk] = 0;
    this.i32[this.at(id, V_INBOX_FULL)] = 0;
    const gen = this.i32[this.at(id, V_INBOX_GEN)];
    this.unlock(lk);
    return { entries, full, gen };
  }

  done(id: number, gen: number): void {
    const k = this.at(id, V_INBOX_DONE);
    Atomics.store(this.i32, k, gen);
    Atomics.notify(this.i32, k);
  }
}

type WaitAsync = (
  a: Int32Array,
  i: number,
  v: number,
  ms: number,
) => { async: boolean; value: Promise<string> | string };

/** Atomics.waitAsync (Node 16 and later; not in this project's TypeScript library). */
export function waitAsync(i32: Int32Array, index: number, value: number, ms: number): Promise<unknown> {
  const r = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(i32, index, value, ms);
  return r.async ? (r.value as Promise<string>) : Promise.resolve(r.value);
}

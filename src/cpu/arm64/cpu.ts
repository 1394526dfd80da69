// The software AArch64 CPU: architectural state, the fetch/decode/execute loop, exception entry and
// return. Instruction semantics live in insn/*.ts, address translation in mmu.ts, system registers in
// sysregs.ts.
//
// 64-bit values are kept as pairs of 32-bit halves (V8's BigInt arithmetic allocates and is far
// slower than int32 arithmetic): general register n has its low half in r[2n] and its high half in
// r[2n+1], stored as int32. Slot 31 holds the *active* stack pointer, slot 32 always reads zero (XZR)
// and slot 33 is a sink for writes to XZR. Use rz()/wz() to map a register number to a slot.

import type { GuestMemory } from '../../memory/guest-memory.js';
import { Decoder, type Handler } from './decode.js';
import { Mmu } from './mmu.js';
import { SysRegs, type SysRegsState } from './sysregs.js';
import { DebugUnit, DEBUG_STOP } from './debug.js';
import { a64Groups } from './a64.js';
import { patterns as branchPatterns } from './insn/branch.js';
import { patterns as systemPatterns } from './insn/system.js';
import { MAX_BLOCK, setBlockEnders } from './jit.js';
import { monotonicMs } from '../../host/clock.js';
import { Pmu, type PmuState } from './pmu.js';
import {
  emitUnitBody,
  instantiateModule,
  instantiateUnits,
  releaseBodies,
  runUnits,
  unitLinks,
  unitModule,
  type UnitBody,
  type UnitLinks,
  type WasmUnit,
} from './wasm/translate.js';
import { UnitTable, clearJumpCache, clearJumpCachePage } from './wasm/dispatch.js';
import {
  C_OFF,
  CPU_BLOCK,
  FETCH_OFF,
  ATTN_OFF,
  IPC_OFF,
  NO_FETCH_PAGE,
  N_OFF,
  R_OFF,
  SPEL0_OFF,
  SPSEL_OFF,
  FPEN_OFF,
  EXCL_OFF,
  DAIF_OFF,
  LINES_OFF,
  VREG_OFF,
  VREG_BYTES,
  TLB_OFF,
  V_OFF,
  Z_OFF,
} from './wasm/layout.js';

const TWO32 = 4294967296;

// int32 slots of the state block (wasm/layout.ts IPC_OFF)
const PC_LO = IPC_OFF >> 2;
const PC_HI = PC_LO + 1;
const NEXT_LO = PC_LO + 2;
const NEXT_HI = PC_LO + 3;
const FETCH_LO = FETCH_OFF >> 2;
const ATTN_W = ATTN_OFF >> 2;
const FETCH_HI = FETCH_LO + 1;
const SPEL0 = SPEL0_OFF >> 2;
const SPSEL = SPSEL_OFF >> 2;
const FPEN = FPEN_OFF >> 2;
const EXA = EXCL_OFF >> 2;
const DAIF_W = DAIF_OFF >> 2;
const LINES_W = LINES_OFF >> 2;

/** Thrown (after the exception has been entered) to abandon the current instruction. */
export class GuestException {
  readonly tag = 'GuestException';
}
export const GUEST_EXCEPTION = new GuestException();

/** Thrown by Arm64Cpu.exactRetired() to have run() work out the exact instruction count (see there). */
export class CountSync {
  readonly tag = 'CountSync';
}
export const COUNT_SYNC = new CountSync();

/** Slot of register n when it reads as XZR (n = 31). */
export const rz = (n: number): number => (n === 31 ? 32 : n);
/** Slot of register n when a write to it is discarded (n = 31 is XZR). */
export const wz = (n: number): number => (n === 31 ? 33 : n);
// For SP-form operands register 31 is slot 31 itself: use n directly.

/** Exception classes (ESR_ELx.EC) used across the CPU. */
export const EC = {
  UNKNOWN: 0x00,
  WFX: 0x01,
  FP_ACCESS: 0x07,
  ILLEGAL_STATE: 0x0e,
  SVC64: 0x15,
  HVC64: 0x16,
  SMC64: 0x17,
  SYSREG: 0x18,
  IABT_LOWER: 0x20,
  IABT_CUR: 0x21,
  PC_ALIGN: 0x22,
  DABT_LOWER: 0x24,
  DABT_CUR: 0x25,
  SP_ALIGN: 0x26,
  FP_EXC64: 0x2c,
  SERROR: 0x2f,
  BRK64: 0x3c,
} as const;

export type ExceptionType = 'sync' | 'irq' | 'fiq' | 'serror';
const VECTOR_OFFSET: Record<ExceptionType, number> = { sync: 0x000, irq: 0x080, fiq: 0x100, serror: 0x180 };

// DAIF bits as kept in `daif` (same positions as PSTATE/SPSR bits 9..6, shifted down by 6).
export const DAIF_D = 8;
export const DAIF_A = 4;
export const DAIF_I = 2;
export const DAIF_F = 1;

/** Hooks the machine provides to the CPU. */
/**
 * What a vCPU must tell the vCPUs that run on other threads (threads/peers.ts), and the barriers it
 * then needs; undefined while all vCPUs of the machine share one thread (cpu.peers reach them all).
 */
export interface CpuBroadcast {
  /** TLBI ...IS (system.ts's kinds) for every other vCPU: complete at this vCPU's next fence(). */
  tlbi(kind: number, lo: number, hi: number, asid: number, last: boolean): void;
  /** IC IALLUIS: the others drop their decoded and translated code (complete at the next fence()). */
  icAll(): void;
  /** IC IVAU (inner shareable broadcast): the others drop their code of that RAM page (likewise). */
  icPage(ramPage: number): void;
  /** SEV: an event for every other vCPU. */
  sev(): void;
  /** A full memory barrier (DMB, DSB), which also completes the maintenance posted since the last one. */
  fence(): void;
  /** Run `f` holding the machine-wide lock of 128-bit store-exclusives. */
  withPairLock<T>(f: () => T): T;
}

export interface CpuHooks {
  /** HVC from EL1 (no EL2 here: the VMM handles it, like KVM does for PSCI). Return false for UNDEF. */
  hvc(cpu: Arm64Cpu, imm16: number): boolean;
  /** SMC: same contract as hvc. */
  smc(cpu: Arm64Cpu, imm16: number): boolean;
}

let sharedDecoder: Decoder | undefined;
function decoder(): Decoder {
  if (!sharedDecoder) {
    sharedDecoder = new Decoder(a64Groups(), {
      name: 'UNALLOCATED',
      handler: (cpu, insn) => cpu.undefinedInstruction(insn),
    });
    setBlockEnders({ branch: branchPatterns, system: systemPatterns });
  }
  return sharedDecoder;
}

/** Words per chunk of decoded handler indexes (CodePage.chunks): 1 << CHUNK_SHIFT. */
const CHUNK_SHIFT = 6;
export const CHUNK_WORDS = 1 << CHUNK_SHIFT;

/** Decoded handlers and translated blocks of one physical code page. */
export class CodePage {
  /**
   * Where the page's decoded words are in CodeCache.decoded, per chunk of CHUNK_WORDS words: the
   * offset of the chunk there, or 0 (the shared chunk of zeros) while none of its words is decoded.
   * A 4 KiB page of Linux code has about a third of its 64-word chunks executed.
   */
  readonly chunks: number[] = Array.from({ length: 1024 >>> CHUNK_SHIFT }, () => 0); // packed small integers
  /**
   * Translated units: `blockAt[word]` is 1 + the unit's position in `blocks`, 0 = none; `blocks`
   * holds their indexes in the unit table (wasm/dispatch.ts). Both are allocated with the page's
   * first unit (1 KiB plus the list, where a 1024-slot array took 8 KiB); a page holds at most 255.
   */
  blockAt: Uint8Array | undefined;
  blocks: number[] = [];
  /** Word indexes of units V8 refused to compile (a translator bug, reported once): interpreted. */
  failed: Set<number> | undefined;
  /** CodeCache.epoch when a vCPU last entered the page (see CodeCache.sweep). */
  used: number;
  /** Where the page's words count in CodeCache.heat. */
  readonly heatBase: number;
  constructor(
    /** Index of the page's first word in the RAM word array. */
    readonly ramWord: number,
    ppn: number,
    epoch: number,
  ) {
    this.heatBase = Math.imul(ppn, 0x9e3779b1) >>> 16;
    this.used = epoch;
  }
}

/** Slots of CodeCache.heat: the heat of block heads, all pages hashed (a collision only makes a block translate early). */
const HEAT_SLOTS = 1 << 16;

/** TYPEVISOR_JIT_THRESHOLD's default (see JIT_THRESHOLD). */
const DEFAULT_JIT_THRESHOLD = 8000;

/**
 * A block head is translated once its heat gets here: the instructions the interpreter ran from it
 * (counted from the head to the next branch taken), plus ENTRY_HEAT for each time it was entered
 * (environment: TYPEVISOR_JIT_THRESHOLD, at most 65535).
 * Counted by entries (3000) until stop 21, the boot's interpreted instructions were mostly under heads
 * that never got there: 65% of them under heads entered 3000 times or more over the whole boot, but
 * too slowly for the heat's decay. On the default guest's boot (1.24e9 instructions), with units
 * compiled in batches (JIT_BATCH), five interleaved pairs: 24000 translated about 1080 units in 230
 * modules, 90% of the instructions, boot 20.6-23.9 s (median 21.3), VMM memory beyond RAM 74-77 MiB;
 * 8000 about 2330 units in 380 modules, 94%, 19.3-21.1 s (median 19.6), 87-90 MiB. On an earlier
 * version of the batching, 6000 and 3000 (95-96%) took 18.8-21.1 s, no less, for 92-100 MiB.
 */
export const JIT_THRESHOLD = intFromEnv('TYPEVISOR_JIT_THRESHOLD', DEFAULT_JIT_THRESHOLD, 1, 65535);

/**
 * Heat an interpreted entry of a block head adds beyond its instructions (CodeCache.entryHeat). Each
 * entry costs the executor more than the instructions it interprets: a translated unit left for it,
 * the fetch and heat bookkeeping, a unit entered again after it. Counting instructions alone, a head
 * that runs one or two instructions between translated units was entered about 4000 times before
 * it was translated, or never when its entries were spread out (the heat halves at each sweep): on
 * the default guest's boot, 38714 entries of one instruction at one head, 9293 of six at another.
 * Measured on that boot (1.23e9 instructions, three interleaved runs each, 2-core host):
 * 0: 5.6-5.7 s, 1610 units, 52M instructions interpreted, VMM memory beyond the guest 93-94 MiB;
 * 4: 5.2-5.4 s, 2100 units, 98.5-99.3 MiB; 8: 5.3-5.5 s, 2500 units, 101-102 MiB; 16: no faster
 * than 8 (31M interpreted, 3250 units, 107-112 MiB).
 */
export const ENTRY_HEAT = 4;

/** An integer setting from the environment: `dflt` when unset, and when out of range (with a warning). */
function intFromEnv(name: string, dflt: number, min: number, max: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (Number.isInteger(n) && n >= min && n <= max) return n;
  process.stderr.write(
    `typevisor: ${name}: expected an integer from ${min} to ${max}, got '${v}'; using ${dflt}\n`,
  );
  return dflt;
}

/**
 * Units compiled to one module (at most), and the instructions the oldest head of an incomplete batch
 * waits at most (CodeCache.flushDue). On the default guest's boot at threshold 6000, translating
 * (emitting, compiling, instantiating) cost 0.8 ms a unit one to a module, 0.39 ms in batches
 * (about 2900 units in 440 modules); VMM memory 1-4 MiB less.
 */
export const JIT_BATCH = 16;
export const JIT_BATCH_WAIT = 4_000_000;

/**
 * Instructions retired (all vCPUs) between two sweeps of the code cache: about a second of guest time
 * in the software CPU.
 */
export const SWEEP_INSNS = 32 * 1024 * 1024;

/**
 * Translated units a code cache holds before its sweeps drop cold pages that have units (UNIT_BUDGET
 * env: TYPEVISOR_UNIT_BUDGET). Below it a sweep drops only cold pages without units (decoded words
 * alone, cheap to decode again). Until stop 27 every sweep dropped every cold page: a Linux boot then
 * translated 2290 units where it needs 1610, interpreting what came back until it was hot again.
 * Default guest's boot (about 1610 units when none is dropped), runs interleaved: budget 0 (every
 * cold page dropped, as before), five runs, 6.7-8.9 s, 87.5-88.5 MiB of VMM memory beyond the guest,
 * 2300 units translated; 1024, five runs, 6.1-7.0 s, 90-91 MiB, 1640 units; 2048, three runs,
 * 6.3-6.8 s, 92-93 MiB, 1610 units.
 */
export const UNIT_BUDGET = intFromEnv('TYPEVISOR_UNIT_BUDGET', 2048, 0, Number.MAX_SAFE_INTEGER);

/**
 * Units one code cache compiled, handed to the code caches of the vCPUs on other threads
 * (threads/units.ts), which take a unit only while the guest's code is still what it was made from.
 */
export interface SharedUnits {
  module: WebAssembly.Module;
  /** Function `r<k>` of the module is units[k]. */
  units: SharedUnit[];
}

/** A unit offered to a code cache: unit k of s. */
interface Offer {
  s: SharedUnits;
  k: number;
}

/** One unit of SharedUnits: where its head is, and the words it was translated from. */
export interface SharedUnit {
  /** RAM page number and word index of its head. */
  rp: number;
  idx: number;
  /** Its blocks on that page (UnitBody.ranges: first word, count), and their words then, in order. */
  ranges: number[];
  words: Uint32Array;
}

/**
 * Units offered by other threads (CodeCache.offer) that wait at most for their heads to be entered;
 * an offer also waits at most until the second sweep after it. An offer holds its module's compiled
 * code alive after the thread that compiled it dropped it: default guest's boot, 2 vCPUs on threads,
 * VMM memory 127-129 MiB with 16384 offers and no sweep of them, against 107-116 without offers.
 */
const MAX_OFFERS = 4096;

/** Dropped units whose table slots wait for the jump caches to be cleared before reuse. */
const RECYCLE_SLOTS = 4096;

/**
 * Decoded handlers and translated blocks per physical code page, shared by all vCPUs of a machine.
 *
 * Pages no vCPU has entered for a whole sweep interval (SWEEP_INSNS) are dropped with their
 * decoded words, and with their translated units once the cache holds more than UNIT_BUDGET of
 * them; the garbage collector then reclaims those: a Linux boot runs most of its code a few times
 * (initcalls, probes) and never again. Code that comes back is decoded and, once hot again,
 * translated again.
 */
export class CodeCache {
  /**
   * The cached pages by RAM page number (code runs from RAM only), and how many there are. An array
   * where a Map keyed by page number cost a hash lookup on every fetch page change (1.7% of a boot).
   */
  private readonly pages: (CodePage | undefined)[];
  private cached = 0;
  readonly decoder = decoder();
  /** Translate hot blocks (false: interpret every instruction, for tests that compare the two). */
  jit = process.env.TYPEVISOR_JIT !== '0';
  /** A block head's heat when it is translated (JIT_THRESHOLD; the difftest uses 1). */
  jitThreshold = JIT_THRESHOLD;
  /** Heat an interpreted entry adds beyond its instructions (ENTRY_HEAT). */
  entryHeat = ENTRY_HEAT;
  /**
   * Instructions a unit may take in beyond its first basic block (wasm/translate.ts). Measured on the
   * default guest's boot: 512 with the threshold at 10000 took less CPU time than 64 or 128 with
   * 1000-3000 (more, smaller units cost more to emit and compile than they save).
   */
  wasmRegion = 512;
  private compileErrorShown = false;

  /** Each block head's heat (see heatUp), by (page.heatBase + word) mod HEAT_SLOTS. */
  readonly heat = new Uint16Array(HEAT_SLOTS);

  /**
   * An interpreted run of `insns` instructions from the block head of heat slot `slot` ended (at
   * the next branch taken, or with the run slice): its heat grows by them and by entryHeat
   * (saturating).
   */
  heatUp(slot: number, insns: number): void {
    const w = this.heat[slot] + insns + this.entryHeat;
    this.heat[slot] = w > 0xffff ? 0xffff : w;
  }

  /**
   * Decoded words of all cached pages: per word, the index of its handler in Decoder.handlerTable,
   * 0 = not decoded. Allocated in chunks of CHUNK_WORDS (see CodePage.chunks); chunk 0 stays all
   * zeros. One pool, where a 2 KiB array per page held three times as much and cost a malloc'd
   * backing store each. It grows by doubling (and is replaced then: read it after decodeInto()).
   */
  decoded = new Uint16Array(256 * CHUNK_WORDS);
  /** Chunks in use or freed so far (chunk 0 included); freed ones are listed in freeChunks. */
  private chunkTop = 1;
  private readonly freeChunks: number[] = [];

  /** Sweep interval count; a page records the epoch in which a vCPU last entered it. */
  epoch = 1;
  /** Instructions retired since the last sweep (vCPUs add theirs after each run slice). */
  retired = 0;
  /** Instructions between sweeps (0: never sweep). */
  sweepInsns = SWEEP_INSNS;
  /** Live units above which a sweep drops cold pages that have units too (UNIT_BUDGET). */
  unitBudget = UNIT_BUDGET;
  /** The vCPUs that fetch through this cache (their current page is never dropped). */
  readonly cpus: Arm64Cpu[] = [];
  /**
   * Called after a sweep that dropped translated units or offers of them (the machine collects
   * garbage then: only a full collection frees their code). Not after one that dropped decoded words
   * alone: those go back to this cache's pool, and a full collection at each sweep cost 3% of a boot's
   * main-thread time.
   */
  onSweep: ((droppedUnits: number) => void) | undefined;

  /** The translated units' table and dispatcher (none for RAM outside a WebAssembly memory). */
  readonly units: UnitTable | undefined;
  /** What units link to (the memory, the runtime's functions). */
  private readonly links: UnitLinks | undefined;

  constructor(readonly mem: GuestMemory) {
    this.pages = new Array<CodePage | undefined>(Math.ceil(mem.ramSize / 4096)).fill(undefined);
    this.offeredPages = new Uint8Array(this.pages.length);
    mem.onCodeWrite = (ramPage) => this.invalidateRamPage(ramPage);
    this.units = mem.wasm ? new UnitTable(mem.wasm) : undefined;
    this.links = mem.wasm ? unitLinks(mem.wasm, mem.ramOffset, mem.ramBase) : undefined;
    // Counts that pass 2^30 in a boot start as doubles (see the Arm64Cpu constructor).
    const j = this.jitStats;
    this.retired = j.insns = j.ms = j.entries = j.calls = j.slow = TWO32 - 1;
    this.retired = j.insns = j.ms = j.entries = j.calls = j.slow = 0;
  }

  /** The code page of RAM address `pa`. */
  page(pa: number): CodePage {
    const rp = Math.floor((pa - this.mem.ramBase) / 4096);
    let p = this.pages[rp];
    if (p === undefined) {
      p = new CodePage(rp << 10, Math.floor(pa / 4096), this.epoch);
      this.pages[rp] = p;
      this.cached++;
      this.markCode(rp);
    } else p.used = this.epoch;
    return p;
  }

  /** Code pages cached now. */
  get pageCount(): number {
    return this.cached;
  }

  /**
   * Regions translated so far, the wall time spent translating them, instructions run in them,
   * pages dropped by sweeps, and how often the executor entered translated code (the dispatcher
   * goes from unit to unit without it: wasm/dispatch.ts).
   */
  readonly jitStats = {
    blocks: 0,
    modules: 0,
    ms: 0,
    insns: 0,
    evicted: 0,
    entries: 0,
    /** Calls of instruction handlers from translated code (instructions without an emitter). */
    calls: 0,
    /** Loads and stores of translated code that took the MMU's JavaScript path (TLB miss, MMIO, fault...). */
    slow: 0,
    /** Units installed from other threads' code caches (adopt), counted in `blocks` too. */
    adopted: 0,
  };

  /** Units compiled to one module (1: each at once, when its head gets hot). */
  jitBatch = JIT_BATCH;
  /**
   * Hands each module of units this cache compiles to the vCPUs on other threads (threads/units.ts);
   * unset while all vCPUs share this cache. Its units are then translated from a copy of their
   * pages' words, which goes with them.
   */
  share: ((units: SharedUnits) => void) | undefined;
  /** Units offered by other threads (offer), by the RAM word index of their head: since the last sweep, and before. */
  private offered = new Map<number, Offer>();
  private offeredBefore = new Map<number, Offer>();
  /** Per RAM page: 1 when a unit is offered on it (kept at sweeps). */
  private readonly offeredPages: Uint8Array;
  /** An offered module's instance on this thread, once one of its units is adopted. */
  private readonly instances = new WeakMap<SharedUnits, WasmUnit[]>();
  /** Block heads waiting for the next batch, and their keys (RAM word index). */
  private pending: { p: CodePage; idx: number; slot: number }[] = [];
  private readonly pendingKeys = new Set<number>();
  /** Instructions retired since the oldest pending head was queued (see JIT_BATCH_WAIT). */
  pendingAge = 0;

  /**
   * Translate the unit entered at word `idx` of `p`: now when units are compiled one at a time
   * (jitBatch 1), else with the next batch (flushPending). Returns the unit's index in the unit
   * table, or 0 while there is none (pending, the page is full, or V8 refused the unit).
   */
  translate(p: CodePage, idx: number): number {
    const key = p.ramWord + idx;
    if (!this.pendingKeys.has(key)) {
      // Queued with its heat at 0: the heat then says how long it has waited (flushDue).
      const slot = (p.heatBase + idx) & (HEAT_SLOTS - 1);
      this.heat[slot] = 0;
      if (p.blocks.length >= 255 || p.failed?.has(idx) || !this.links) return 0;
      this.pending.push({ p, idx, slot });
      this.pendingKeys.add(key);
      if (this.pending.length < this.jitBatch) return 0;
    }
    // The batch is full, or this head has been interpreted for another threshold's worth of
    // instructions while it waited: that wait has cost as much as the first.
    this.flushPending();
    const at = p.blockAt?.[idx] ?? 0;
    return at !== 0 ? p.blocks[at - 1] : 0;
  }

  /** Block heads waiting to be translated with the next batch. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * Whether the pending heads should be translated now, before their batch is full: once they have
   * gathered another threshold's worth of heat in the interpreter (their heat since they were
   * queued: the wait costs at most that), or the oldest has waited JIT_BATCH_WAIT instructions.
   */
  flushDue(): boolean {
    if (this.pendingAge >= JIT_BATCH_WAIT) return true;
    let heat = 0;
    for (const h of this.pending) heat += this.heat[h.slot];
    return heat >= this.jitThreshold;
  }

  /**
   * Translate the pending block heads into one module and install their units. A head is skipped
   * when its page was dropped meanwhile (sweep) or already has a unit there; the words are read
   * now, so code written while a head waited is translated as it is now.
   */
  flushPending(): void {
    const heads = this.pending;
    this.pending = [];
    this.pendingKeys.clear();
    this.pendingAge = 0;
    const links = this.links;
    if (!links || heads.length === 0) return;
    const t0 = monotonicMs();
    const u32 = this.mem.u32;
    const dec = this.decoder;
    const todo: { p: CodePage; idx: number }[] = [];
    const bodies: UnitBody[] = [];
    // With `share`: each page's words as the units were translated from them (see SharedUnits).
    const copies = this.share ? new Map<CodePage, Uint32Array>() : undefined;
    for (const h of heads) {
      const p = h.p;
      if (this.pages[p.ramWord >>> 10] !== p || (p.blockAt?.[h.idx] ?? 0) !== 0) continue;
      if (p.blocks.length + todo.filter((t) => t.p === p).length >= 255) continue;
      todo.push(h);
      let copy = copies?.get(p);
      if (copies && !copy) {
        copy = u32.slice(p.ramWord, p.ramWord + 1024);
        copies.set(p, copy);
      }
      const from = copy ?? u32;
      const at = copy ? 0 : p.ramWord;
      bodies.push(
        emitUnitBody(
          h.idx,
          {
            word: (i) => from[at + i],
            executed: (i) => {
              const base = p.chunks[i >>> CHUNK_SHIFT];
              return base !== 0 && this.decoded[base + (i & (CHUNK_WORDS - 1))] !== 0;
            },
            decode: (insn) => dec.decode(insn),
            undefinedHandler: dec.undefinedHandler,
            ramOffset: this.mem.ramOffset,
          },
          this.wasmRegion,
        ),
      );
    }
    if (todo.length === 0) return;
    // Emitted and compiled here, on this thread (V8 compiles each function lazily, at its first call).
    // Tried at stop 23: a translator worker_thread that read the words from the shared memory, emitted
    // and compiled each batch and posted the module back (drained between run slices, heads checked
    // against a per-page clear count before install). On the default guest's boot, three concurrent
    // pairs: 1-7% less main-thread CPU (0.86 s of translation moved off it), 3% less wall time, but
    // the worker's isolate held 10 MiB of heap and about 10 MiB of malloc: VMM memory beyond the
    // guest 108-117 MiB against 89-90. With it, threshold 3000 saved 5% of main-thread CPU for 131-134
    // MiB. Not worth that memory.
    let units: WasmUnit[] | undefined;
    let module: WebAssembly.Module | undefined;
    try {
      module = new WebAssembly.Module(unitModule(bodies.map((b) => b.body)).bytes);
      units = instantiateModule(module, bodies.length, links);
    } catch {
      // One of them is refused: compile each alone, so that only that one stays interpreted.
    }
    todo.forEach((h, k) => {
      let unit = units?.[k];
      if (unit === undefined) {
        try {
          unit = instantiateUnits(unitModule([bodies[k].body]), links)[0];
        } catch (e) {
          // A module the translator emitted that V8 rejects is a translator bug: say so, keep interpreting.
          (h.p.failed ??= new Set()).add(h.idx);
          if (!this.compileErrorShown) {
            this.compileErrorShown = true;
            process.stderr.write(
              `typevisor: translator: a unit failed to compile (interpreting it): ${String(e)}\n`,
            );
          }
          return;
        }
      }
      this.install(h.p, h.idx, unit);
    });
    releaseBodies(bodies);
    this.jitStats.modules++;
    this.jitStats.ms += monotonicMs() - t0;
    if (module && units && copies && this.share) {
      this.share({
        module,
        units: todo.map((h, k) => {
          const copy = copies.get(h.p)!;
          const ranges = bodies[k].ranges;
          const words = new Uint32Array(bodies[k].insns);
          for (let r = 0, at = 0; r < ranges.length; at += ranges[r + 1], r += 2)
            words.set(copy.subarray(ranges[r], ranges[r] + ranges[r + 1]), at);
          return { rp: h.p.ramWord >>> 10, idx: h.idx, ranges, words };
        }),
      });
    }
  }

  /**
   * Units another thread's code cache compiled (`share`), offered to this one: each is installed if
   * and when this cache's vCPU enters its head (adopt), so a thread instantiates only what its vCPU
   * runs. Offers wait at most until MAX_OFFERS heads wait (then all are dropped).
   */
  offer(s: SharedUnits): void {
    if (!this.jit || !this.links) return;
    if (this.offered.size + this.offeredBefore.size + s.units.length > MAX_OFFERS) this.dropOffers(true);
    s.units.forEach((u, k) => {
      this.offered.set(u.rp * 1024 + u.idx, { s, k });
      this.offeredPages[u.rp] = 1;
    });
  }

  /** Drop the offers made before the last sweep (all: also those since). */
  private dropOffers(all: boolean): void {
    this.offeredBefore = all ? new Map() : this.offered;
    this.offered = new Map();
    this.offeredPages.fill(0);
    for (const key of this.offeredBefore.keys()) this.offeredPages[key >>> 10] = 1;
  }

  /** Whether a unit is offered on RAM page `rp` (a hint: adopt() says whether at a given head). */
  offeredOn(rp: number): boolean {
    return this.offeredPages[rp] !== 0;
  }

  /**
   * Install the unit offered for word `idx` of `p` if the page holds the words it was translated from.
   * Returns its index in the unit table, or 0.
   */
  adopt(p: CodePage, idx: number): number {
    const key = p.ramWord + idx;
    const o = this.offered.get(key) ?? this.offeredBefore.get(key);
    if (o === undefined) return 0;
    this.offered.delete(key);
    this.offeredBefore.delete(key);
    const links = this.links!;
    if ((p.blockAt?.[idx] ?? 0) !== 0 || p.blocks.length >= 255 || p.failed?.has(idx)) return 0;
    const s = o.s;
    const { ranges, words } = s.units[o.k];
    // The page is marked as this cache's code before its words are compared (an invalidation
    // unmarks it): another thread's store after the mark tells this cache, and one before it,
    // made visible by that thread's DSB before its IC IVAU looked at the marks, is seen below.
    this.markCode(p.ramWord >>> 10);
    const u32 = this.mem.u32;
    for (let r = 0, k = 0; r < ranges.length; r += 2) {
      for (let i = p.ramWord + ranges[r], end = i + ranges[r + 1]; i < end; i++, k++) {
        if (u32[i] !== words[k]) return 0;
      }
    }
    let units = this.instances.get(s);
    if (units === undefined) {
      units = instantiateModule(s.module, s.units.length, links);
      this.instances.set(s, units);
    }
    this.jitStats.adopted++;
    return this.install(p, idx, units[o.k]);
  }

  private install(p: CodePage, idx: number, unit: WasmUnit): number {
    const f = this.units!.add(unit.run);
    p.blockAt ??= new Uint8Array(1024);
    p.blocks.push(f);
    p.blockAt[idx] = p.blocks.length;
    this.markCode(p.ramWord >>> 10);
    this.jitStats.blocks++;
    return f;
  }

  /** Run unit `f` (an index translate() returned) on `cpu`, and the units it chains to. */
  enter(cpu: Arm64Cpu, f: number, limit: number): number {
    this.jitStats.entries++;
    return runUnits(this.units!, this.decoder.handlerTable, cpu, f, limit);
  }

  /** A page's units are dropped: the jump caches may still name them (see wasm/dispatch.ts). */
  private retireUnits(p: CodePage): void {
    const units = this.units;
    if (!units) return;
    for (const f of p.blocks) units.retire(f);
    // Reuse the slots once every vCPU's jump cache is empty (a few microseconds per vCPU).
    if (units.retiredCount >= RECYCLE_SLOTS) this.clearJumpCaches();
  }

  /**
   * Counts drops of translations and jump cache entries: a unit goes on after a system instruction
   * only if none happened in it (wasm/translate.ts, helper hs).
   */
  changes = 0;

  /** Empty every vCPU's jump cache; the unit table can then reuse the slots of dropped units. */
  clearJumpCaches(): void {
    this.changes++;
    for (const cpu of this.cpus) clearJumpCache(cpu.s32);
    this.units?.recycle();
  }

  /**
   * Decode `insn`, word `idx` of `p`, and record its handler; returns the handler index. The page
   * is then watched for stores (they invalidate it).
   */
  decodeInto(p: CodePage, idx: number, insn: number): number {
    const d = this.decoder.decode(insn);
    const c = idx >>> CHUNK_SHIFT;
    let base = p.chunks[c];
    if (base === 0) {
      base = this.allocChunk();
      p.chunks[c] = base;
    }
    this.decoded[base + (idx & (CHUNK_WORDS - 1))] = d.index;
    this.markCode(p.ramWord >>> 10);
    return d.index;
  }

  private allocChunk(): number {
    const free = this.freeChunks.pop();
    if (free !== undefined) return free;
    const base = this.chunkTop * CHUNK_WORDS;
    if (base + CHUNK_WORDS > this.decoded.length) {
      const grown = new Uint16Array(this.decoded.length * 2);
      grown.set(this.decoded);
      this.decoded = grown;
    }
    this.chunkTop++;
    return base;
  }

  /** Give a page's decoded chunks back (zeroed) to the pool. */
  private releaseChunks(p: CodePage): void {
    const ch = p.chunks;
    for (let c = 0; c < ch.length; c++) {
      const base = ch[c];
      if (base === 0) continue;
      this.decoded.fill(0, base, base + CHUNK_WORDS);
      this.freeChunks.push(base);
      ch[c] = 0;
    }
  }

  /** Chunks of decoded words in use (for tests and statistics). */
  get chunksInUse(): number {
    return this.chunkTop - 1 - this.freeChunks.length;
  }

  /**
   * Drop the pages no vCPU has entered since the previous sweep (those with translated units only while
   * the cache holds more than unitBudget units), and start a new interval.
   */
  sweep(): void {
    for (const cpu of this.cpus) {
      const held = cpu.heldCodePage;
      if (held) held.used = this.epoch;
    }
    let dropped = 0;
    let droppedUnits = 0;
    const pages = this.pages;
    const keepUnits = (this.units?.liveCount ?? 0) <= this.unitBudget;
    for (let rp = 0; rp < pages.length; rp++) {
      const p = pages[rp];
      if (p === undefined || p.used >= this.epoch || (keepUnits && p.blocks.length !== 0)) continue;
      pages[rp] = undefined;
      this.cached--;
      droppedUnits += p.blocks.length;
      this.retireUnits(p);
      this.releaseChunks(p);
      this.unmarkCode(rp);
      dropped++;
    }
    this.jitStats.evicted += dropped;
    // Offers made before the last sweep go now (dropOffers(false)).
    const droppedOffers = this.offeredBefore.size;
    if (this.offered.size + droppedOffers !== 0) this.dropOffers(false);
    // Heat decays: a block head is translated when it is entered often, not after a long enough
    // run of occasional entries (such code gains little and would hold translated code).
    const heat = this.heat;
    for (let i = 0; i < heat.length; i++) heat[i] >>>= 1;
    this.epoch++;
    this.retired = 0;
    if (droppedUnits + droppedOffers > 0) this.onSweep?.(droppedUnits + droppedOffers);
  }

  invalidateRamPage(ramPage: number): void {
    const p = this.pages[ramPage];
    if (p !== undefined) this.clear(p);
    // Until something on this page is decoded again, stores to it need not call back.
    this.unmarkCode(ramPage);
  }

  /**
   * This cache's bit in GuestMemory.codePages. One cache per thread when vCPUs run on several
   * (threads/): a store to a page with another cache's bit set tells that cache (mem.onCodeWrite).
   */
  codeBit = 1;

  private markCode(rp: number): void {
    Atomics.or(this.mem.codePages, rp, this.codeBit);
  }

  private unmarkCode(rp: number): void {
    // Bit 7 is shared by the caches of vCPUs 7 and up (threads/): it stays set.
    if (this.codeBit !== 0x80) Atomics.and(this.mem.codePages, rp, ~this.codeBit & 0xff);
  }

  invalidateAll(): void {
    for (const p of this.pages) if (p !== undefined) this.clear(p);
    this.clearJumpCaches();
  }

  private clear(p: CodePage): void {
    this.changes++;
    this.retireUnits(p);
    p.failed = undefined;
    this.releaseChunks(p);
    p.blockAt = undefined;
    p.blocks = [];
  }
}

export class Arm64Cpu {
  // ---- general-purpose state (in the state block that translated code shares: wasm/layout.ts) ----
  /** Byte offset of this vCPU's state block in mem.stateBuffer. */
  readonly st: number;
  /** The state block as int32 words. */
  readonly s32: Int32Array;
  readonly r: Int32Array;
  // The interpreter's PC, next PC and fetch page live in the state block (IPC_OFF) as int32: as object
  // fields these uint32 halves were boxed numbers in V8 (a load or store through a heap number each).
  // In a profile of a hot interpreted loop the lines that touched them had about a third of the loop's
  // samples.
  /** Address of the instruction being executed (uint32 halves). */
  get pcLo(): number {
    return this.s32[PC_LO] >>> 0;
  }
  set pcLo(v: number) {
    this.s32[PC_LO] = v;
  }
  get pcHi(): number {
    return this.s32[PC_HI] >>> 0;
  }
  set pcHi(v: number) {
    this.s32[PC_HI] = v;
  }
  /** Address of the next instruction; the executor sets it to pc+4, branches overwrite it. */
  get nextLo(): number {
    return this.s32[NEXT_LO] >>> 0;
  }
  set nextLo(v: number) {
    this.s32[NEXT_LO] = v;
  }
  get nextHi(): number {
    return this.s32[NEXT_HI] >>> 0;
  }
  set nextHi(v: number) {
    this.s32[NEXT_HI] = v;
  }
  // NZCV as 0/1 numbers, kept in the state block.
  get n(): number {
    return this.s32[N_OFF >> 2];
  }
  set n(v: number) {
    this.s32[N_OFF >> 2] = v;
  }
  get z(): number {
    return this.s32[Z_OFF >> 2];
  }
  set z(v: number) {
    this.s32[Z_OFF >> 2] = v;
  }
  get c(): number {
    return this.s32[C_OFF >> 2];
  }
  set c(v: number) {
    this.s32[C_OFF >> 2] = v;
  }
  get v(): number {
    return this.s32[V_OFF >> 2];
  }
  set v(v: number) {
    this.s32[V_OFF >> 2] = v;
  }

  // ---- PSTATE ----
  el = 1;
  /** PSTATE.SP: 1 = SP_ELx at EL1, 0 = SP_EL0 (in the state block: translated code reads it). */
  get spsel(): number {
    return this.s32[SPSEL];
  }
  set spsel(v: number) {
    this.s32[SPSEL] = v;
  }
  /** D, A, I, F mask bits (see DAIF_*), in the state block (DAIF_OFF), where translated code reads and sets them. */
  get daif(): number {
    return this.s32[DAIF_W];
  }
  set daif(v: number) {
    this.s32[DAIF_W] = v;
  }
  /**
   * Banked stack pointers (the active one lives in r[62..63]); SP_EL0 as int32 halves in the state
   * block, where translated code reads it (MRS SP_EL0).
   */
  get spEl0Lo(): number {
    return this.s32[SPEL0];
  }
  set spEl0Lo(v: number) {
    this.s32[SPEL0] = v;
  }
  get spEl0Hi(): number {
    return this.s32[SPEL0 + 1];
  }
  set spEl0Hi(v: number) {
    this.s32[SPEL0 + 1] = v;
  }
  spEl1Lo = 0;
  spEl1Hi = 0;

  // ---- FP/SIMD: V0..V31 and a scratch slot, in the state block (VREG_OFF) so translated code loads
  // and stores them too; these views are set up in the constructor ----
  readonly vU8: Uint8Array;
  readonly vU16: Uint16Array;
  readonly vU32: Uint32Array;
  readonly vI32: Int32Array;
  readonly vF32: Float32Array;
  readonly vF64: Float64Array;
  readonly vU64: BigUint64Array;
  readonly vDv: DataView;
  fpcr = 0;
  fpsr = 0;
  /** CPACR_EL1.FPEN decoded (kept in sync by sysregs on CPACR_EL1 writes): FP/SIMD usable at EL0 / EL1. */
  get fpEn0(): boolean {
    return this.s32[FPEN] !== 0;
  }
  set fpEn0(v: boolean) {
    this.s32[FPEN] = v ? 1 : 0;
  }
  get fpEn1(): boolean {
    return this.s32[FPEN + 1] !== 0;
  }
  set fpEn1(v: boolean) {
    this.s32[FPEN + 1] = v ? 1 : 0;
  }

  // ---- system ----
  readonly sys: SysRegs;
  readonly mmu: Mmu;
  /** Self-hosted debug and host debugger hooks (debug.ts). */
  readonly debug: DebugUnit;
  /**
   * A breakpoint, watchpoint or step is set up (guest or host; kept by DebugUnit.update()): the run
   * loop then interprets and checks each instruction.
   */
  debugArmed = false;
  /** Performance monitors (PMUv3). */
  readonly pmu: Pmu;
  /**
   * Exclusive monitor, in the state block (EXCL_OFF) where translated code's LDXR/STXR keep it too:
   * armed address (physical, -1 = open), size, and the value the load-exclusive saw (int32 halves,
   * compared as uint32 with >>> 0; the second 8 bytes for a 16-byte pair).
   */
  get exclAddr(): number {
    const hi = this.s32[EXA + 1];
    return hi < 0 ? -1 : hi * 4294967296 + (this.s32[EXA] >>> 0);
  }
  set exclAddr(pa: number) {
    this.s32[EXA] = pa < 0 ? -1 : pa % 4294967296;
    this.s32[EXA + 1] = pa < 0 ? -1 : Math.floor(pa / 4294967296);
  }
  get exclSize(): number {
    return this.s32[EXA + 2];
  }
  set exclSize(v: number) {
    this.s32[EXA + 2] = v;
  }
  get exclLo(): number {
    return this.s32[EXA + 4];
  }
  set exclLo(v: number) {
    this.s32[EXA + 4] = v;
  }
  get exclHi(): number {
    return this.s32[EXA + 5];
  }
  set exclHi(v: number) {
    this.s32[EXA + 5] = v;
  }
  get exclLo2(): number {
    return this.s32[EXA + 6];
  }
  set exclLo2(v: number) {
    this.s32[EXA + 6] = v;
  }
  get exclHi2(): number {
    return this.s32[EXA + 7];
  }
  set exclHi2(v: number) {
    this.s32[EXA + 7] = v;
  }

  /** All vCPUs of the machine, this one included (for broadcast TLBI, SEV, IPIs). Set by the machine. */
  peers: Arm64Cpu[] = [this];
  /**
   * The vCPUs on other threads, when the machine runs vCPUs on several (threads/): broadcasts reach
   * them through it, and exclusives then compare and swap with Atomics.
   */
  remote: CpuBroadcast | undefined;

  // ---- run state ----
  /** Not started (secondary before PSCI CPU_ON) or turned off. */
  off = false;
  /** Executed WFI/WFE and waits for an interrupt or event. */
  waiting = false;
  /**
   * Gives the rest of its slice to the vCPUs that share its thread: set by a YIELD, or a WFE that
   * completes at once, while they may hold what this vCPU spins on (system.ts); run() then returns.
   */
  yielded = false;
  /** Set by WFE/SEV logic. */
  eventRegister = false;
  /** Interrupt lines driven by the interrupt controller, in the state block (LINES_OFF: IRQ bit 0, FIQ bit 1). */
  get irqLine(): boolean {
    return (this.s32[LINES_W] & 1) !== 0;
  }
  set irqLine(v: boolean) {
    this.s32[LINES_W] = v ? this.s32[LINES_W] | 1 : this.s32[LINES_W] & ~1;
  }
  get fiqLine(): boolean {
    return (this.s32[LINES_W] & 2) !== 0;
  }
  set fiqLine(v: boolean) {
    this.s32[LINES_W] = v ? this.s32[LINES_W] | 2 : this.s32[LINES_W] & ~2;
  }
  /** Retired instructions. */
  icount = 0;
  /**
   * Where the last exception was entered from: the PC (low half) and EL of the instruction then
   * executing, and whether that instruction completed (SVC/HVC/SMC; ELR points past it).
   */
  excFromLo = 0;
  excFromEl = 1;
  excRetired = false;
  /** Set by a translated region that an exception left: its instructions before the one that raised. */
  regionPart = 0;
  /** run() is executing (an instruction is under way). */
  running = false;
  /** The exact count run() worked out for exactRetired() after a COUNT_SYNC (-1: none). */
  private countNow = -1;
  private countEndsRun = false;
  /** End run() at the first synchronous exception (tools that examine each fault, like the difftest). */
  stopOnException = false;
  /** Log each unallocated/unimplemented encoding once (to stderr). */
  logUnimplemented = false;
  private readonly loggedUnimplemented = new Set<number>();

  // fetch cache: the current code page (its virtual address is in the state block: FETCH_LO, FETCH_HI)
  private fetchPa = 0;
  private fetchPage: CodePage | undefined;
  /** CodePage.chunks of the fetch page. */
  private fetchChunks: number[] = [];
  /**
   * Guest RAM as int32 words, for fetching: handlers take the encoding as int32, which V8 passes as
   * a small integer (read through a Uint32Array, every word with bit 31 set, most of A64, became a
   * heap-allocated number on each call: about 130 MiB of garbage per second).
   */
  private readonly words: Int32Array;
  private fetchRamWord = -1;

  constructor(
    readonly id: number,
    readonly mem: GuestMemory,
    readonly code: CodeCache,
    readonly hooks: CpuHooks,
  ) {
    this.st = mem.cpuBlock(id);
    this.s32 = new Int32Array(mem.stateBuffer, this.st, CPU_BLOCK >> 2);
    this.r = this.s32.subarray(R_OFF >> 2, (R_OFF >> 2) + 68);
    this.s32.fill(0, 0, TLB_OFF >> 2);
    const vb = mem.stateBuffer;
    const vo = this.st + VREG_OFF;
    this.vU8 = new Uint8Array(vb, vo, VREG_BYTES);
    this.vU16 = new Uint16Array(vb, vo, VREG_BYTES >> 1);
    this.vU32 = new Uint32Array(vb, vo, VREG_BYTES >> 2);
    this.vI32 = new Int32Array(vb, vo, VREG_BYTES >> 2);
    this.vF32 = new Float32Array(vb, vo, VREG_BYTES >> 2);
    this.vF64 = new Float64Array(vb, vo, VREG_BYTES >> 3);
    this.vU64 = new BigUint64Array(vb, vo, VREG_BYTES >> 3);
    this.vDv = new DataView(vb, vo, VREG_BYTES);
    this.fpEn0 = this.fpEn1 = true;
    this.spsel = 1;
    this.daif = 0xf;
    this.s32[LINES_W] = 0;
    clearJumpCache(this.s32);
    this.sys = new SysRegs(this);
    this.mmu = new Mmu(this);
    this.debug = new DebugUnit(this);
    this.pmu = new Pmu(this);
    this.words = mem.i32;
    code.cpus.push(this);
    // V8 keeps a number field as a small integer until a value outside its 31-bit range arrives,
    // then gives the object a new hidden class and throws away all optimized code that used the old
    // one (every handler and translated block at once; `node --trace-generalization` lists them).
    // These fields hold uint32 halves of addresses, physical addresses and counts that pass 2^30
    // in a boot: start them as doubles.
    this.fetchPa = TWO32 - 1;
    this.spEl1Lo = this.spEl1Hi = TWO32 - 1;
    this.icount = this.excFromLo = this.countNow = TWO32 - 1;
    this.invalidateFetch();
    this.fetchPa = 0;
    this.spEl1Lo = this.spEl1Hi = 0;
    this.exclAddr = -1;
    this.icount = this.excFromLo = 0;
    this.countNow = -1;
  }

  // ---- register helpers ----
  xlo(n: number): number {
    return this.r[rz(n) << 1];
  }
  xhi(n: number): number {
    return this.r[(rz(n) << 1) | 1];
  }
  /** Write a 64-bit value to Xn (n = 31 discards). */
  setX(n: number, lo: number, hi: number): void {
    const s = wz(n) << 1;
    this.r[s] = lo;
    this.r[s + 1] = hi;
  }
  /** Write a 32-bit value to Wn, zeroing the upper half. */
  setW(n: number, lo: number): void {
    const s = wz(n) << 1;
    this.r[s] = lo;
    this.r[s + 1] = 0;
  }
  /** Read Xn as BigInt (slow paths only). */
  xBig(n: number): bigint {
    return (BigInt(this.xhi(n) >>> 0) << 32n) | BigInt(this.xlo(n) >>> 0);
  }
  setXBig(n: number, v: bigint): void {
    this.setX(n, Number(v & 0xffffffffn) | 0, Number((v >> 32n) & 0xffffffffn) | 0);
  }
  get pc(): bigint {
    return (BigInt(this.pcHi >>> 0) << 32n) | BigInt(this.pcLo >>> 0);
  }
  setPc(v: bigint): void {
    this.pcLo = Number(v & 0xffffffffn) >>> 0;
    this.pcHi = Number((v >> 32n) & 0xffffffffn) >>> 0;
  }
  /** Set the branch target (next PC) of the current instruction. */
  branchTo(lo: number, hi: number): void {
    this.nextLo = lo >>> 0;
    this.nextHi = hi >>> 0;
  }

  /** NZCV as the 4-bit value of PSTATE/SPSR bits 31..28. */
  get nzcv(): number {
    return (this.n << 3) | (this.z << 2) | (this.c << 1) | this.v;
  }
  set nzcv(f: number) {
    this.n = (f >>> 3) & 1;
    this.z = (f >>> 2) & 1;
    this.c = (f >>> 1) & 1;
    this.v = f & 1;
  }

  // ---- stack pointer banking ----
  private activeSp(): number {
    return this.el === 0 || this.spsel === 0 ? 0 : 1;
  }
  private saveSp(): void {
    if (this.activeSp() === 0) {
      this.spEl0Lo = this.r[62];
      this.spEl0Hi = this.r[63];
    } else {
      this.spEl1Lo = this.r[62];
      this.spEl1Hi = this.r[63];
    }
  }
  private loadSp(): void {
    if (this.activeSp() === 0) {
      this.r[62] = this.spEl0Lo;
      this.r[63] = this.spEl0Hi;
    } else {
      this.r[62] = this.spEl1Lo;
      this.r[63] = this.spEl1Hi;
    }
  }
  /** Change EL and/or PSTATE.SP, swapping the banked stack pointers. */
  setElSp(el: number, spsel: number): void {
    this.saveSp();
    const elChanged = el !== this.el;
    this.el = el;
    this.spsel = spsel;
    this.loadSp();
    if (elChanged) this.invalidateFetch();
  }
  /** Read SP_EL0 or SP_EL1 wherever it currently lives. */
  getSpEl(which: 0 | 1): bigint {
    this.saveSp();
    const lo = which === 0 ? this.spEl0Lo : this.spEl1Lo;
    const hi = which === 0 ? this.spEl0Hi : this.spEl1Hi;
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }
  setSpEl(which: 0 | 1, v: bigint): void {
    this.saveSp();
    const lo = Number(v & 0xffffffffn) | 0;
    const hi = Number((v >> 32n) & 0xffffffffn) | 0;
    if (which === 0) {
      this.spEl0Lo = lo;
      this.spEl0Hi = hi;
    } else {
      this.spEl1Lo = lo;
      this.spEl1Hi = hi;
    }
    this.loadSp();
  }

  // ---- PSTATE <-> SPSR ----
  /** The current PSTATE in SPSR_EL1 format (AArch64). */
  getPstate(): number {
    const m = (this.el << 2) | (this.el === 0 ? 0 : this.spsel);
    return ((this.nzcv << 28) | (this.debug.ss << 21) | (this.daif << 6) | m) >>> 0;
  }
  /** Restore PSTATE from an SPSR value (ERET; PSTATE.SS is eret()'s). Returns false for an illegal return. */
  setPstate(spsr: number): boolean {
    const m = spsr & 0x1f;
    if (spsr & 0x10) return false; // AArch32 is not implemented
    const el = (m >>> 2) & 3;
    if (el > 1 || (m & 2) !== 0) return false;
    this.nzcv = (spsr >>> 28) & 0xf;
    this.daif = (spsr >>> 6) & 0xf;
    this.setElSp(el, el === 0 ? 0 : m & 1);
    return true;
  }

  // ---- exceptions ----
  /**
   * Enter an exception taken to EL1. `retLo/retHi` is the preferred return address written to ELR_EL1.
   * Sets PC (and next PC) to the vector. Does not throw; see raise().
   */
  enterException(type: ExceptionType, esr: number, retLo: number, retHi: number, far?: bigint): void {
    const fromEl = this.el;
    const sys = this.sys;
    this.excFromLo = this.pcLo;
    this.excFromEl = fromEl;
    this.excRetired = retLo !== this.pcLo || retHi !== this.pcHi;
    sys.SPSR_EL1 = BigInt(this.getPstate());
    this.debug.ss = 0;
    sys.ELR_EL1 = (BigInt(retHi >>> 0) << 32n) | BigInt(retLo >>> 0);
    if (type === 'sync' || type === 'serror') sys.ESR_EL1 = BigInt(esr >>> 0);
    if (far !== undefined) sys.FAR_EL1 = far;
    let offset = VECTOR_OFFSET[type];
    if (fromEl === 0) offset += 0x400;
    else if (this.spsel === 1) offset += 0x200;
    this.daif = 0xf;
    this.setElSp(1, 1);
    this.clearExclusive();
    const target = (sys.VBAR_EL1 & ~0x7ffn) + BigInt(offset);
    this.setPc(target & 0xffffffffffffffffn);
    this.nextLo = this.pcLo;
    this.nextHi = this.pcHi;
    this.invalidateFetch();
  }

  /** Take a synchronous exception for the current instruction and abandon it. */
  raise(ec: number, iss: number, far?: bigint, il = 1): never {
    const esr = ((ec << 26) | (il << 25) | (iss & 0x1ffffff)) >>> 0;
    this.enterException('sync', esr, this.pcLo, this.pcHi, far);
    throw GUEST_EXCEPTION;
  }

  /** Exceptions whose preferred return is the next instruction (SVC, HVC, SMC). */
  raiseAfter(ec: number, iss: number): never {
    this.debug.ssAdvance();
    const esr = ((ec << 26) | (1 << 25) | (iss & 0x1ffffff)) >>> 0;
    this.enterException('sync', esr, this.nextLo, this.nextHi);
    throw GUEST_EXCEPTION;
  }

  undefinedInstruction(insn: number): never {
    if (this.logUnimplemented && !this.loggedUnimplemented.has(insn >>> 0)) {
      this.loggedUnimplemented.add(insn >>> 0);
      process.stderr.write(
        `typevisor: cpu${this.id}: undefined/unimplemented instruction 0x${(insn >>> 0).toString(16).padStart(8, '0')} at 0x${this.pc.toString(16)}\n`,
      );
    }
    this.raise(EC.UNKNOWN, 0);
  }

  /** ERET from EL1. */
  eret(): void {
    if (this.el === 0) this.undefinedInstruction(0xd69f03e0);
    // The ERET itself counts at EL1.
    if (this.pmu.elSplit) this.pmu.advance(this.exactRetired(false) + 1, 1);
    const elr = this.sys.ELR_EL1;
    const spsr = Number(this.sys.SPSR_EL1 & 0xffffffffn);
    this.clearExclusive();
    const ss = this.debug.returnSS(spsr);
    if (!this.setPstate(spsr)) {
      // Illegal exception return: stay at EL1, set PSTATE.IL-equivalent by raising an illegal state.
      this.setPc(elr);
      this.nextLo = this.pcLo;
      this.nextHi = this.pcHi;
      this.raise(EC.ILLEGAL_STATE, 0);
    }
    this.debug.ss = ss;
    this.setPc(elr);
    this.nextLo = this.pcLo;
    this.nextHi = this.pcHi;
    this.invalidateFetch();
  }

  /** Call at the start of every FP/SIMD instruction: traps (EC 0x07) when CPACR_EL1.FPEN disables it. */
  checkFp(): void {
    if (this.el === 0 ? !this.fpEn0 : !this.fpEn1) this.raise(EC.FP_ACCESS, 0);
  }

  clearExclusive(): void {
    this.exclAddr = -1;
  }

  invalidateFetch(): void {
    this.s32[FETCH_LO] = NO_FETCH_PAGE;
  }

  /**
   * Forget which translated unit starts at which virtual address (wasm/dispatch.ts), for the page
   * of `lo` or (no argument) for all: the MMU calls it when translations may have changed.
   */
  clearJumpCache(lo?: number): void {
    this.code.changes++;
    if (lo === undefined) clearJumpCache(this.s32);
    else clearJumpCachePage(this.s32, lo);
  }

  /** True when an unmasked interrupt is pending. */
  interruptPending(): boolean {
    return (this.irqLine && (this.daif & DAIF_I) === 0) || (this.fiqLine && (this.daif & DAIF_F) === 0);
  }

  /**
   * Instructions retired before the current one, exactly (the PMU counts from it). Inside run() the
   * executor's count is not in `icount` yet (it is kept in a local, and a translated region keeps its
   * own): the first call throws COUNT_SYNC, run() works the count out and runs the instruction again,
   * interpreted, and then the call returns it. So call it before any other effect of the instruction,
   * and once per instruction. `endRun`: the run ends after that instruction (a PMU register access:
   * the next run() bounds its budget by the counters' new state).
   */
  exactRetired(endRun = true): number {
    if (!this.running) return this.icount;
    const c = this.countNow;
    if (c < 0) {
      this.excFromLo = this.pcLo; // the instruction that asked (see jit.ts)
      this.countEndsRun = endRun;
      throw COUNT_SYNC;
    }
    this.countNow = -1;
    return c;
  }

  /**
   * Execute up to `budget` instructions. Returns the number retired. Stops early when the CPU waits
   * (WFI/WFE), yields (a spinning WFE or a YIELD, see `yielded`) or is turned off. Interrupts are taken before
   * the next instruction in the interpreter, and at the end of the current basic block (at most
   * MAX_BLOCK - 1 instructions on) in translated code.
   */
  run(budget: number): number {
    const pmu = this.pmu;
    if (pmu.active) budget = pmu.clampBudget(budget);
    this.running = true;
    this.yielded = false;
    this.heatSlot = -1;
    const done = this.execute(budget);
    const code = this.code;
    if (this.heatSlot >= 0) code.heatUp(this.heatSlot, done - this.heatFrom);
    if (code.pendingCount !== 0) {
      code.pendingAge += done;
      if (code.flushDue()) code.flushPending();
    }
    this.running = false;
    this.countNow = -1;
    this.icount += done;
    if (pmu.active) pmu.advance(this.icount, this.el);
    code.retired += done;
    if (code.retired >= code.sweepInsns && code.sweepInsns > 0) code.sweep();
    return done;
  }

  /**
   * The heat slot of the block head being interpreted, and the instructions run() had retired when it
   * was entered (-1: none). Fields, not execute()'s locals: see execute().
   */
  private heatSlot = -1;
  private heatFrom = 0;

  /**
   * run()'s loop: returns the instructions retired. Its one exit is `return done`, and whatever
   * comes after the loop is in run(): V8 compiles this function on stack replacement in its first
   * long call, before code after the loop has ever run, and code without type feedback deoptimizes
   * when it first runs. The code compiled on stack replacement stays cached and was entered again
   * on later calls, deoptimizing at the same place each time: in a boot of 2 vCPUs on threads, 22
   * of the 54 deoptimizations of the loop (then in run()) were one compiled code at one operation
   * after the loop, each followed by a stretch in V8's bytecode interpreter.
   */
  private execute(budget: number): number {
    // The module's constants as locals: in this loop's optimized code V8 (Node 20) read each use of a
    // module-scope constant through the context chain (four dependent loads and a check that it is
    // initialized). Default guest's boot, three interleaved runs each: 5.30/5.49/5.39 s without,
    // 4.99/5.13/5.23 s with (MAX_BLOCK alone, the one imported: 5.34/5.37/5.33 s).
    const kPcLo = PC_LO;
    const kPcHi = PC_HI;
    const kNextLo = NEXT_LO;
    const kNextHi = NEXT_HI;
    const kFetchLo = FETCH_LO;
    const kFetchHi = FETCH_HI;
    const kAttnW = ATTN_W;
    const kChunkShift = CHUNK_SHIFT;
    const kChunkWords = CHUNK_WORDS;
    const kHeatSlots = HEAT_SLOTS;
    const kMaxBlock = MAX_BLOCK;
    const kDaifI = DAIF_I;
    const kDaifF = DAIF_F;
    const kLinesW = LINES_W;
    const kDaifW = DAIF_W;
    let done = 0;
    const pmu = this.pmu;
    const s = this.s32;
    const mem = this.mem;
    const words = this.words;
    const ramBase = mem.ramBase;
    const code = this.code;
    const jit = code.jit;
    const threshold = code.jitThreshold;
    const heat = code.heat;
    const table = code.decoder.handlerTable;
    // Blocks run only while at least kMaxBlock instructions of the budget are left, so a run never
    // retires more than `budget`.
    // True when the next instruction starts a block: after a branch taken, a block, an exception, or
    // at the start of the slice. Only block heads are counted and translated.
    let head = true;
    while (done < budget && !this.off && !this.waiting && !this.yielded) {
      try {
        while (done < budget) {
          // Interrupts stay pending while the host debugger steps (debug.ts).
          const lines = s[kLinesW];
          if (lines !== 0 && !(this.debugArmed && this.debug.hostStepping)) {
            const daif = s[kDaifW];
            const irq = (lines & 1) !== 0 && (daif & kDaifI) === 0;
            if (irq || ((lines & 2) !== 0 && (daif & kDaifF) === 0)) {
              if (pmu.elSplit) pmu.advance(this.icount + done, this.el);
              this.countNow = -1;
              this.enterException(irq ? 'irq' : 'fiq', 0, this.pcLo, this.pcHi);
              head = true;
            }
          }
          const pcLo = s[kPcLo];
          const pcHi = s[kPcHi];
          // Debug armed: every instruction comes through the fetch-page miss (debug.afterFetch keeps
          // the page uncached), is checked there and interpreted.
          let checked = false;
          if ((pcLo & ~0xfff) !== s[kFetchLo] || pcHi !== s[kFetchHi]) {
            if (this.debugArmed) {
              checked = this.debug.checksAt(this.el);
              if (checked) this.debug.beforeFetch();
            }
            if ((pcLo & 3) !== 0) this.raise(EC.PC_ALIGN, 0, this.pc);
            const pageLo = (pcLo & ~0xfff) >>> 0;
            const pa = this.mmu.translateFetch(pageLo, pcHi >>> 0);
            if (!mem.isRam(pa, 4096)) {
              // Executing from MMIO or unbacked space: synchronous external abort on fetch.
              this.raise(this.el === 0 ? EC.IABT_LOWER : EC.IABT_CUR, 0x10, this.pc);
            }
            this.fetchPa = pa;
            const page = code.page(pa);
            this.fetchPage = page;
            this.fetchChunks = page.chunks;
            this.fetchRamWord = (pa - ramBase) >>> 2;
            s[kFetchLo] = pageLo;
            s[kFetchHi] = pcHi;
            if (checked) this.debug.afterFetch();
          }
          const idx = (pcLo & 0xfff) >>> 2;
          if (head && this.heatSlot >= 0) {
            // The interpreted run from the last head ends: its instructions heat that head.
            code.heatUp(this.heatSlot, done - this.heatFrom);
            this.heatSlot = -1;
          }
          // Another thread wants this vCPU out of run() (threads/link.ts): leave at this block head.
          if (head && s[kAttnW] !== 0) {
            budget = done;
            break;
          }
          if (head && jit && !checked && budget - done >= kMaxBlock) {
            const page = this.fetchPage!;
            const at = page.blockAt;
            const bx = at !== undefined ? at[idx] : 0;
            let f = bx !== 0 ? page.blocks[bx - 1] : 0;
            if (f === 0) {
              const slot = (page.heatBase + idx) & (kHeatSlots - 1);
              // Another vCPU's thread may have translated it (threads/units.ts).
              if (code.offeredOn(page.ramWord >>> 10)) f = code.adopt(page, idx);
              // This entry's first instruction counts already (threshold 1: translated at the first entry).
              if (f === 0 && heat[slot] + 1 >= threshold) f = code.translate(page, idx);
              if (f === 0) {
                // Interpreted (also while the head waits for its batch: see CodeCache.flushDue).
                this.heatSlot = slot;
                this.heatFrom = done;
              }
            }
            if (f !== 0) {
              const k = code.enter(this, f, budget - done - kMaxBlock);
              done += k;
              code.jitStats.insns += k;
              if (this.waiting || this.off || this.yielded) break;
              continue;
            }
          }
          const insn = words[this.fetchRamWord + idx];
          const hx = code.decoded[this.fetchChunks[idx >>> kChunkShift] + (idx & (kChunkWords - 1))];
          const h: Handler = table[hx !== 0 ? hx : code.decodeInto(this.fetchPage!, idx, insn)];
          const nl = (pcLo + 4) | 0;
          s[kNextLo] = nl;
          s[kNextHi] = nl === 0 ? pcHi + 1 : pcHi;
          h(this, insn);
          if (checked) this.debug.afterInsn(insn);
          const next = s[kNextLo];
          head = next !== nl;
          s[kPcLo] = next;
          s[kPcHi] = s[kNextHi];
          done++;
          if (this.waiting || this.off || this.yielded) break;
        }
      } catch (e) {
        if (e === DEBUG_STOP) break; // stopped for the host debugger before the instruction (debug.ts)
        if (e === COUNT_SYNC) {
          // exactRetired() asked: PC is still at the instruction; run it again, interpreted.
          done += this.regionPart;
          this.regionPart = 0;
          this.countNow = this.icount + done;
          if (this.countEndsRun) budget = done + 1;
          head = false;
          continue;
        }
        if (e !== GUEST_EXCEPTION) throw e;
        // The exception has been entered: PC is at the vector. The instruction that raised counts, and
        // so do those a translated region ran before it.
        done += this.regionPart + 1;
        this.regionPart = 0;
        head = true;
        if (pmu.active) pmu.exceptionTaken(this.icount + done, this.excFromEl, this.excRetired);
        if (this.stopOnException) break;
      }
    }
    return done;
  }

  /** The code page instructions are fetched from now (the code cache keeps it through a sweep). */
  get heldCodePage(): CodePage | undefined {
    return this.fetchPage;
  }

  /** Physical address of the current fetch page (for diagnostics). */
  get fetchPagePa(): number {
    return this.fetchPa;
  }

  // ---- snapshots ----

  /**
   * The architectural state for a snapshot (plain JSON), taken between run() slices: registers,
   * PSTATE, banked SPs, FP/SIMD, system registers, PMU, exclusive monitor, run flags. The timers and
   * the GIC CPU interface are saved by their own objects.
   */
  saveState(): Arm64CpuState {
    if (this.running) throw new Error(`cpu${this.id}: cannot save the state while an instruction runs`);
    this.saveSp();
    return {
      id: this.id,
      r: Array.from(this.r.subarray(0, 64)),
      pc: [this.pcLo >>> 0, this.pcHi >>> 0],
      nzcv: this.nzcv,
      el: this.el,
      spsel: this.spsel,
      daif: this.daif,
      sp: [this.spEl0Lo | 0, this.spEl0Hi | 0, this.spEl1Lo | 0, this.spEl1Hi | 0],
      ss: this.debug.ss,
      v: Buffer.from(this.vU8.subarray(0, 32 * 16)).toString('base64'),
      fpcr: this.fpcr,
      fpsr: this.fpsr,
      sys: this.sys.saveState(),
      pmu: this.pmu.saveState(),
      excl: [this.exclAddr, this.exclSize, this.exclLo, this.exclHi, this.exclLo2, this.exclHi2],
      off: this.off,
      waiting: this.waiting,
      event: this.eventRegister,
      icount: this.icount,
      fetchPa: this.fetchPa,
    };
  }

  /** Load a state saved by saveState() (registers are written into `r`, never replacing the array). */
  loadState(s: Arm64CpuState): void {
    const num = (v: unknown, what: string): number => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new Error(`cpu${this.id}: ${what} is not a number`);
      return v;
    };
    if (!Array.isArray(s.r) || s.r.length !== 64)
      throw new Error(`cpu${this.id}: expected 64 register words`);
    const v = Buffer.from(String(s.v), 'base64');
    if (v.length !== 32 * 16)
      throw new Error(`cpu${this.id}: expected 512 bytes of FP/SIMD registers, got ${v.length}`);
    const el = num(s.el, 'el');
    if (el !== 0 && el !== 1)
      throw new Error(`cpu${this.id}: exception level ${el} (only EL0 and EL1 exist)`);
    for (let i = 0; i < 64; i++) this.r[i] = num(s.r[i], `r[${i}]`) | 0;
    this.r.fill(0, 64);
    this.pcLo = this.nextLo = num(s.pc[0], 'pc') >>> 0;
    this.pcHi = this.nextHi = num(s.pc[1], 'pc') >>> 0;
    this.nzcv = num(s.nzcv, 'nzcv') & 0xf;
    this.daif = num(s.daif, 'daif') & 0xf;
    // The active SP (slot 31) is saved in its bank: load both banks, then select the active one.
    [this.spEl0Lo, this.spEl0Hi, this.spEl1Lo, this.spEl1Hi] = s.sp.map((x, i) => num(x, `sp[${i}]`) | 0);
    this.el = el;
    this.spsel = num(s.spsel, 'spsel') & 1;
    this.loadSp();
    this.vU8.set(v);
    this.fpcr = num(s.fpcr, 'fpcr') >>> 0;
    this.fpsr = num(s.fpsr, 'fpsr') >>> 0;
    this.sys.loadState(s.sys);
    this.pmu.loadState(s.pmu);
    this.debug.ss = num(s.ss, 'ss') & 1;
    [this.exclAddr, this.exclSize, this.exclLo, this.exclHi, this.exclLo2, this.exclHi2] = s.excl.map(
      (x, i) => num(x, `excl[${i}]`),
    );
    this.off = !!s.off;
    this.waiting = !!s.waiting;
    this.eventRegister = !!s.event;
    this.icount = num(s.icount, 'icount');
    // Where the last instruction came from: the timer tells a WFE wait from a WFI wait by it.
    const fetchPa = num(s.fetchPa, 'fetchPa');
    this.fetchPa = this.mem.isRam(fetchPa, 4096) ? fetchPa : 0;
    this.countNow = -1;
    this.regionPart = 0;
    this.mmu.onRegsChanged();
    this.debug.update();
    this.invalidateFetch();
    this.clearJumpCache();
  }
}

/** One vCPU's saved state (Arm64Cpu.saveState). */
export interface Arm64CpuState {
  id: number;
  /** X0-X30 and the active SP as int32 halves (slots 0-31 of `r`). */
  r: number[];
  pc: [number, number];
  nzcv: number;
  el: number;
  spsel: number;
  daif: number;
  /** SP_EL0 lo/hi, SP_EL1 lo/hi. */
  sp: number[];
  /** PSTATE.SS. */
  ss: number;
  /** V0-V31, base64. */
  v: string;
  fpcr: number;
  fpsr: number;
  sys: SysRegsState;
  pmu: PmuState;
  excl: number[];
  off: boolean;
  waiting: boolean;
  event: boolean;
  icount: number;
  /** Physical address of the page the last instruction was fetched from. */
  fetchPa: number;
}

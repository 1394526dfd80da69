// Going from one translated unit to the next without a return to JavaScript: the unit table and the
// jump cache (the part of QEMU's TCG that `lookup_and_goto_ptr` and tb_jmp_cache do).
//
// Every unit's function sits in one WebAssembly.Table per guest memory (UnitTable). The executor
// enters translated code through `dispatch(st, f, limit)`, a wasm function that calls unit `f` and,
// while the unit leaves by a branch (PC in the state block), looks the new PC up in the vCPU's jump
// cache (layout.ts: JC_OFF) and calls the unit found there, in wasm. It returns to the executor when
// the instruction budget is spent, an interrupt is pending, the jump cache has no unit for the PC, or
// the unit ended on an instruction that needs the executor (an exception, a system register write:
// the unit's result then has STOP set).
//
// A jump cache entry says "unit f starts at this virtual PC under this context (ASID | EL << 16)".
// The executor writes one each time it enters a unit itself (Arm64Cpu.run). Entries stay right while
// the guest's translations stay: the MMU clears the vCPU's cache on every TLB invalidation and
// translation-control change (mmu.ts), and a unit whose code page is dropped (a store to it, a sweep)
// has its table slot replaced by `stale`, a function that returns at once with STOP, so a cache entry
// that still names it sends the vCPU back to the executor. Slots of dropped units are reused only
// after every vCPU's jump cache has been cleared since (UnitTable.recycle).

import { Code, I32, I64, Op, moduleShape, type FuncType } from './encoder.js';
import { ASID_OFF, EL_OFF, IRQ_OFF, JC_BUCKET_BITS, JC_ENTRY, JC_OFF, JC_PAGE_BITS, JC_SIZE, PC_OFF } from './layout.js';

/** Set in a unit's result when the executor must look at the vCPU before anything else runs. */
export const STOP = 0x80000000 | 0;

/** The type of a unit's function: (st, limit, n) -> n, where n counts the instructions retired. */
export const UNIT_TYPE: FuncType = { params: [I32, I32, I32], results: [I32] };
const DISPATCH_TYPE: FuncType = { params: [I32, I32, I32], results: [I32] };

const PAGE_MASK = (1 << JC_PAGE_BITS) - 1;
const BUCKET_MASK = (1 << JC_BUCKET_BITS) - 1;

/**
 * Index of a PC's entry in the jump cache (from its low half): the entries of one 4 KiB page are
 * the JC_PAGE_BITS-entry bucket jcBucket(pc), so a TLB invalidation by address clears one bucket.
 */
export function jcIndex(pcLo: number): number {
  return jcBucket(pcLo) | (((pcLo >>> 2) ^ (pcLo >>> 8)) & PAGE_MASK);
}

/** First entry of the bucket that holds the PCs of the page of `lo`. */
export function jcBucket(lo: number): number {
  return (((lo >>> 12) ^ (lo >>> 18)) & BUCKET_MASK) << JC_PAGE_BITS;
}

/** Emit jcIndex of the i32 in local `x` (leaves it on the stack). */
function emitJcIndex(c: Code, x: number): void {
  // ((x >>> a) ^ (x >>> b)) & mask, the two halves of jcIndex
  const mix = (a: number, b: number, mask: number): void => {
    c.get(x);
    c.i32(a);
    c.op(Op.i32_shr_u);
    c.get(x);
    c.i32(b);
    c.op(Op.i32_shr_u);
    c.op(Op.i32_xor);
    c.i32(mask);
    c.op(Op.i32_and);
  };
  mix(12, 18, BUCKET_MASK);
  c.i32(JC_PAGE_BITS);
  c.op(Op.i32_shl);
  mix(2, 8, PAGE_MASK);
  c.op(Op.i32_or);
}

/** The context a jump cache entry holds. */
export function jcContext(asid: number, el: number): number {
  return (asid & 0xffff) | (el << 16);
}

function dispatchBody(): Code {
  const c = new Code();
  // params: st 0, f 1, limit 2; locals: n 3, pc 4 (i64), e 5, ctx 6
  const ST = 0;
  const F = 1;
  const LIMIT = 2;
  const N = 3;
  const PC = 4;
  const E = 5;
  const CTX = 6;
  c.get(ST);
  c.mem(Op.i32_load, 2, EL_OFF);
  c.i32(16);
  c.op(Op.i32_shl);
  c.get(ST);
  c.mem(Op.i32_load, 2, ASID_OFF);
  c.op(Op.i32_or);
  c.set(CTX);
  c.loop();
  // n = units[f](st, limit, n)
  c.get(ST);
  c.get(LIMIT);
  c.get(N);
  c.get(F);
  c.callIndirect(1); // the type of `stale`, function 1: UNIT_TYPE
  c.tee(N);
  c.i32(0);
  c.op(Op.i32_lt_s);
  c.if();
  c.get(N);
  c.i32(~STOP);
  c.op(Op.i32_and);
  c.op(Op.return);
  c.end();
  // budget spent or an interrupt pending: back to the executor
  c.get(N);
  c.get(LIMIT);
  c.op(Op.i32_gt_u);
  c.get(ST);
  c.mem(Op.i32_load, 2, IRQ_OFF);
  c.op(Op.i32_or);
  c.if();
  c.get(N);
  c.op(Op.return);
  c.end();
  // e = the jump cache entry for PC
  c.get(ST);
  c.mem(Op.i64_load, 3, PC_OFF);
  c.tee(PC);
  c.op(Op.i32_wrap_i64);
  c.set(E);
  emitJcIndex(c, E);
  c.i32(Math.log2(JC_ENTRY));
  c.op(Op.i32_shl);
  c.get(ST);
  c.op(Op.i32_add);
  c.set(E);
  // a hit when PC and context match: go on with its unit
  c.get(E);
  c.mem(Op.i64_load, 3, JC_OFF);
  c.get(PC);
  c.op(Op.i64_eq);
  c.get(E);
  c.mem(Op.i32_load, 2, JC_OFF + 8);
  c.get(CTX);
  c.op(Op.i32_eq);
  c.op(Op.i32_and);
  c.if();
  c.get(E);
  c.mem(Op.i32_load, 2, JC_OFF + 12);
  c.set(F);
  c.br(1); // the loop
  c.end();
  c.end(); // loop
  c.get(N);
  return c;
}

function staleBody(): Code {
  const c = new Code();
  c.get(2);
  c.i32(STOP);
  c.op(Op.i32_or);
  return c;
}

const DISPATCH_MODULE = moduleShape(
  [],
  [
    { type: DISPATCH_TYPE, locals: [I32, I64, I32, I32], export: 'dispatch' },
    { type: UNIT_TYPE, locals: [], export: 'stale' },
  ],
  65536,
  true,
);

/** Slots the unit table starts with. */
const INITIAL_SLOTS = 1024;

/** The units of one guest memory, by table index, and the dispatcher that runs them. */
export class UnitTable {
  readonly table = new WebAssembly.Table({ element: 'anyfunc', initial: INITIAL_SLOTS });
  /** Run unit `f` and the units the jump cache leads to; returns the instructions retired. */
  readonly dispatch: (st: number, f: number, limit: number) => number;
  private readonly stale: WebAssembly.ExportValue;
  /** Slot 0 is never a unit. */
  private top = 1;
  private readonly free: number[] = [];
  /** Slots of dropped units that a jump cache may still name. */
  private readonly retired: number[] = [];

  constructor(memory: WebAssembly.Memory) {
    const bytes = DISPATCH_MODULE.build([dispatchBody(), staleBody()]);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory, table: this.table } });
    this.dispatch = inst.exports.dispatch as UnitTable['dispatch'];
    this.stale = inst.exports.stale;
    this.table.set(0, this.stale);
  }

  /** Put a unit's function in the table; returns its index. */
  add(fn: WebAssembly.ExportValue): number {
    let f = this.free.pop();
    if (f === undefined) {
      if (this.top === this.table.length) this.table.grow(this.table.length, this.stale);
      f = this.top++;
    }
    this.table.set(f, fn);
    return f;
  }

  /** A unit is dropped: its slot now returns STOP, and is reused after the next recycle(). */
  retire(f: number): void {
    this.table.set(f, this.stale);
    this.retired.push(f);
  }

  /** Slots retired since the last recycle(). */
  get retiredCount(): number {
    return this.retired.length;
  }

  /** Every vCPU's jump cache has been cleared: retired slots can be reused. */
  recycle(): void {
    for (const f of this.retired) this.free.push(f);
    this.retired.length = 0;
  }

  /** Slots holding a live unit. */
  get liveCount(): number {
    return this.top - 1 - this.free.length - this.retired.length;
  }
}

/** Empty a vCPU's jump cache (its state block as int32 words): no entry matches any PC. */
export function clearJumpCache(s32: Int32Array): void {
  clearEntries(s32, 0, JC_SIZE);
}

/** Drop a vCPU's jump cache entries for the virtual page of `lo` (and the pages sharing its bucket). */
export function clearJumpCachePage(s32: Int32Array, lo: number): void {
  clearEntries(s32, jcBucket(lo), 1 << JC_PAGE_BITS);
}

function clearEntries(s32: Int32Array, first: number, count: number): void {
  // PC low half 1: no PC is odd.
  const w = (JC_OFF >> 2) + first * (JC_ENTRY >> 2);
  for (let i = w, end = w + count * (JC_ENTRY >> 2); i < end; i += JC_ENTRY >> 2) s32[i] = 1;
}

/** Record in a vCPU's jump cache that unit `f` starts at (pcLo, pcHi) in context `ctx`. */
export function jcInsert(s32: Int32Array, pcLo: number, pcHi: number, ctx: number, f: number): void {
  const w = (JC_OFF >> 2) + jcIndex(pcLo) * (JC_ENTRY >> 2);
  s32[w] = pcLo;
  s32[w + 1] = pcHi;
  s32[w + 2] = ctx;
  s32[w + 3] = f;
}

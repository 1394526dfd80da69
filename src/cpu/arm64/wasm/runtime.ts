// The translator's runtime: one wasm module per guest memory with the load and store functions that
// translated units call (wasm to wasm, no JavaScript on a TLB hit). Keeping the TLB path here, not
// inline in every unit, makes units about four times smaller, so they are emitted and compiled that
// much faster, and this code is compiled (and optimized by V8) once.
//
//   ldS(st, addr: i64, n, info) -> i64     S = 1, 2, 4, 8 bytes, zero-extended
//   stS(st, addr: i64, value: i64, n, info)
//   lduS, stuS                             the same with EL0's permissions (LDTR/STTR)
//   ldxS(st, addr, n, info) -> i64         LDXR: the load arms the exclusive monitor (state block)
//   stxS(st, addr, value, n, info) -> i32  STXR: stores when the monitor holds; the status
//
// `st` is the vCPU's state block, `n` the unit's instructions retired before the current basic
// block and `info` = word index of the instruction in its page | (its position in the block << 10),
// and SP_CHECK for the first access of an instruction that addresses through SP (see SP_CHECK).
// A hit needs the TLB's fast tag for the page under the current ASID and natural alignment (the
// same rule as mmu.ts's fast paths), or, second, the fast tag and an unaligned access that stays in
// its page while SCTLR_EL1.A is clear (memcpy of unaligned buffers: Linux's copy_to_user into a
// read(2) buffer at an odd offset made one JavaScript call per 8 bytes). Anything else (a miss,
// MMIO, an access across pages or one that must fault for alignment, a watchpoint)
// stores the instruction's address (the unit's base, from the state block, + 4 * word index) and
// calls the MMU through the JavaScript helpers `rd`/`wr` with the exact count of instructions before
// it, so a fault is reported from the right instruction. A store to a page that holds cached code
// calls `cw` to drop it.

import { Code, I32, I64, Op, buildModule, type FuncDef, type FuncType } from './encoder.js';
import {
  BASE_OFF,
  EL_OFF,
  EXCL_OFF,
  EXCL_SIZE_OFF,
  EXCL_V_OFF,
  HI_OFF,
  PC_OFF,
  R_OFF,
  SCTLR_OFF,
  codePagesOffset,
  tlbOff,
} from './layout.js';
import { ACC_UNPRIV } from '../mmu.js';
import { SCTLR_A } from '../sysregs.js';

export const ACCESS_SIZES = [1, 2, 4, 8] as const;

/**
 * The JavaScript helpers units call, passed on by this module as wasm functions: units reach the
 * runtime through a table of their own (unit.ts), and a table holds wasm functions only.
 */
export const FORWARDED: { name: string; type: FuncType }[] = [
  { name: 'h', type: { params: [I32, I32, I32], results: [] } }, // handler index, insn, part
  { name: 'sp', type: { params: [I32], results: [] } }, // SP alignment check (part)
  { name: 'hs', type: { params: [I32, I32, I32], results: [I32] } }, // h for a block ender: 1 = leave
];

const RT_IMPORTS: { name: string; type: FuncType }[] = [
  { name: 'rd', type: { params: [I32, I32, I32, I32], results: [I32] } }, // lo, hi, size, part
  { name: 'wr', type: { params: [I32, I32, I32, I32, I32, I32], results: [] } }, // lo, hi, size, vlo, vhi, part
  { name: 'cw', type: { params: [I32], results: [] } }, // RAM page written that holds cached code
  { name: 'lx', type: { params: [I32, I32, I32, I32], results: [I32] } }, // lo, hi, size, part
  { name: 'sx', type: { params: [I32, I32, I32, I32, I32, I32], results: [I32] } }, // lo, hi, size, vlo, vhi, part
  ...FORWARDED,
];
/** Index of the runtime's import `name` (RT_IMPORTS), for `call`. */
const imp = (name: string): number => RT_IMPORTS.findIndex((f) => f.name === name);
export const LOAD_TYPE: FuncType = { params: [I32, I64, I32, I32], results: [I64] };
export const STORE_TYPE: FuncType = { params: [I32, I64, I64, I32, I32], results: [] };
export const STORE_EXCL_TYPE: FuncType = { params: [I32, I64, I64, I32, I32], results: [I32] };

// parameters
const P_ST = 0;
const P_A = 1;
// locals after the parameters: lo, entry, tmp
const LOCALS = [I32, I32, I32];

/**
 * Push 1 when the TLB entry for the address in local `a` (state block in local `st`) has fast tag
 * `tag` and the access of `size` bytes is aligned (the read and write fast tags hold a page only
 * while its entry's ASID is the current one: mmu.ts). Leaves the address's low half in `lo` and the
 * entry's byte address (less the array's offset) in `e`. `elx`: an i32 local holding EL << 12 (a
 * unit reads it once: the EL does not change while it runs); without it EL is read from the state
 * block; 'user' for EL0's MMU index whatever the EL (LDTR/STTR: this CPU has no PAN or UAO, so an
 * unprivileged access is always checked as EL0's).
 */
export function hit(
  c: Code,
  size: number,
  tag: 'rTag' | 'wTag',
  lo: number,
  e: number,
  st = P_ST,
  a = P_A,
  elx?: number | 'user',
): void {
  c.get(a);
  c.op(Op.i32_wrap_i64);
  c.tee(lo);
  c.i32(12);
  c.op(Op.i32_shr_u);
  c.i32(1023);
  c.op(Op.i32_and);
  c.i32(2);
  c.op(Op.i32_shl);
  if (elx === undefined) {
    c.get(st);
    c.mem(Op.i32_load, 2, EL_OFF);
    c.i32(12);
    c.op(Op.i32_shl);
    c.op(Op.i32_add);
  } else if (elx !== 'user') {
    c.get(elx);
    c.op(Op.i32_add);
  }
  c.get(st);
  c.op(Op.i32_add);
  c.set(e);
  // the page bits and the alignment bits that must be zero (INVALID never matches)
  tagMatches(c, tag, lo, e, a, -4096 | (size - 1));
}

/**
 * Push 1 when TLB entry `e`'s fast tag `tag` equals the low half in `lo` masked by `mask`, and its
 * high tag the high half of i64 local `a`. As ((tag ^ lo) | (tagHi ^ hi)) == 0: V8 compiles two
 * i32.eq joined by i32.and to two set-on-compare instructions and a test; this is xor, xor, or and
 * the branch (sortbench, 100 rounds: 1.63-1.69 -> 1.57-1.58 s in three interleaved pairs).
 */
function tagMatches(c: Code, tag: 'rTag' | 'wTag', lo: number, e: number, a: number, mask: number): void {
  c.get(e);
  c.mem(Op.i32_load, 2, tlbOff(tag));
  c.get(lo);
  c.i32(mask);
  c.op(Op.i32_and);
  c.op(Op.i32_xor);
  c.get(e);
  c.mem(Op.i32_load, 2, tlbOff('tagHi'));
  c.get(a);
  c.i64(32);
  c.op(Op.i64_shr_u);
  c.op(Op.i32_wrap_i64);
  c.op(Op.i32_xor);
  c.op(Op.i32_or);
  c.op(Op.i32_eqz);
}

/** After hit(): push the access's offset in guest RAM. */
export function ramAddr(c: Code, lo: number, e: number): void {
  c.get(e);
  c.mem(Op.i32_load, 2, tlbOff('ramOff'));
  c.get(lo);
  c.i32(0xfff);
  c.op(Op.i32_and);
  c.op(Op.i32_add);
}

/**
 * After hit() for an access of `size` > 1 bytes that failed it: push 1 when the entry's fast tag
 * has the page (the check again, without the alignment bits), the access stays in that page and
 * SCTLR_EL1.A is clear, so the access may be made unaligned (wasm memory allows it).
 */
function unalignedHit(c: Code, size: number, tag: 'rTag' | 'wTag', lo: number, e: number): void {
  tagMatches(c, tag, lo, e, P_A, -4096);
  c.get(lo);
  c.i32(0xfff);
  c.op(Op.i32_and);
  c.i32(4097 - size); // offset + size <= 4096
  c.op(Op.i32_lt_u);
  c.op(Op.i32_and);
  sctlrClear(c, P_ST, SCTLR_A);
  c.op(Op.i32_and);
}

/** Push 1 where SCTLR_EL1 (its copy in the state block in local `st`) has bit `bit` clear. */
export function sctlrClear(c: Code, st: number, bit: number): void {
  c.get(st);
  c.mem(Op.i32_load, 2, SCTLR_OFF);
  c.i32(bit);
  c.op(Op.i32_and);
  c.op(Op.i32_eqz);
}

/**
 * Push whether the page of the RAM offset in local `off` holds cached code (GuestMemory.codePages: a
 * write there must drop it). With `page`, the page number is left in that local.
 */
export function holdsCode(c: Code, off: number, page?: number): void {
  c.get(off);
  c.i32(12);
  c.op(Op.i32_shr_u);
  if (page !== undefined) c.tee(page);
  c.mem(Op.i32_load8_u, 0, codePagesOffset());
}

/** Load `size` bytes, zero-extended to i64, from guest RAM at the offset on the stack. */
export function ramLoad(c: Code, size: number, ramOffset: number): void {
  c.mem(
    size === 8 ? Op.i64_load : size === 4 ? Op.i64_load32_u : size === 2 ? Op.i64_load16_u : Op.i64_load8_u,
    0,
    ramOffset,
  );
}

/** Store the low `size` bytes of the i64 on the stack to guest RAM at the offset under it. */
export function ramStore(c: Code, size: number, ramOffset: number): void {
  c.mem(
    size === 8 ? Op.i64_store : size === 4 ? Op.i64_store32 : size === 2 ? Op.i64_store16 : Op.i64_store8,
    0,
    ramOffset,
  );
}

/** Slow path prologue: PC = base + 4 * word index (info & 1023). */
function storePc(c: Code, info: number): void {
  c.get(P_ST);
  c.get(P_ST);
  c.mem(Op.i64_load, 3, BASE_OFF);
  c.get(info);
  c.i32(1023);
  c.op(Op.i32_and);
  c.i32(2);
  c.op(Op.i32_shl);
  c.op(Op.i64_extend_i32_u);
  c.op(Op.i64_add);
  c.mem(Op.i64_store, 3, PC_OFF);
}

/** Push the low and high i32 halves of i64 local `v`. */
function halves(c: Code, v: number): void {
  c.get(v);
  c.op(Op.i32_wrap_i64);
  c.get(v);
  c.i64(32);
  c.op(Op.i64_shr_u);
  c.op(Op.i32_wrap_i64);
}

/** The i32 a JavaScript slow path returned (the low half) becomes the i64 with HI_OFF's high half. */
function withHigh(c: Code): void {
  c.op(Op.i64_extend_i32_u);
  c.get(P_ST);
  c.mem(Op.i32_load, 2, HI_OFF);
  c.op(Op.i64_extend_i32_u);
  c.i64(32);
  c.op(Op.i64_shl);
  c.op(Op.i64_or);
}

/** Push the physical address (i64) of the RAM offset in i32 local `off`. */
function physical(c: Code, off: number, ramBase: number): void {
  c.get(off);
  c.op(Op.i64_extend_i32_u);
  c.i64(ramBase % 4294967296, Math.floor(ramBase / 4294967296));
  c.op(Op.i64_add);
}

/**
 * An access's `info` argument: the word index of its instruction (bits 0-9), the instructions of its
 * block before it (bits 10-19), and SP_CHECK where the instruction addresses through SP and this
 * access, its first, makes the SP alignment check (Unit.spCheck): one call in the runtime instead
 * of an inline check with its own slow path in every unit.
 */
export const SP_CHECK = 1 << 30;

/** Push `part` = n + the instructions before the access's in its block (info bits 10-19). */
function part(c: Code, n: number, info: number): void {
  c.get(n);
  c.get(info);
  c.i32(10);
  c.op(Op.i32_shr_u);
  c.i32(1023);
  c.op(Op.i32_and);
  c.op(Op.i32_add);
}

/** Push the halves of P_A and then `part`. */
function slowArgs(c: Code, n: number, info: number, extra?: () => void): void {
  halves(c, P_A);
  extra?.();
  part(c, n, info);
}

/**
 * Where `info` has SP_CHECK and SP is not 16-byte aligned: the runtime's sp (which raises the SP
 * alignment fault when SCTLR_EL1.SA/SA0 asks for it), before anything else of the access.
 */
function spCheckFirst(c: Code, n: number, info: number): void {
  c.get(info);
  c.i32(SP_CHECK);
  c.op(Op.i32_and);
  c.if();
  c.get(P_ST);
  c.mem(Op.i32_load, 2, R_OFF + 31 * 8);
  c.i32(15);
  c.op(Op.i32_and);
  c.if();
  storePc(c, info);
  part(c, n, info);
  c.call(imp('sp'));
  c.end();
  c.end();
}

/** `sf` argument of rd/wr: size | access flags << 4. */
const sizeFlags = (size: number, unpriv: boolean): number => size | ((unpriv ? ACC_UNPRIV : 0) << 4);

function loadFn(size: number, ramOffset: number, unpriv: boolean): FuncDef {
  const c = new Code();
  const n = 2;
  const info = 3;
  const lo = 4;
  const e = 5;
  const fast = (): void => {
    c.if();
    ramAddr(c, lo, e);
    ramLoad(c, size, ramOffset);
    c.op(Op.return);
    c.end();
  };
  spCheckFirst(c, n, info);
  hit(c, size, 'rTag', lo, e, P_ST, P_A, unpriv ? 'user' : undefined);
  fast();
  if (size > 1) {
    unalignedHit(c, size, 'rTag', lo, e);
    fast();
  }
  storePc(c, info);
  slowArgs(c, n, info, () => c.i32(sizeFlags(size, unpriv)));
  c.call(imp('rd'));
  if (size === 8) withHigh(c);
  else c.op(Op.i64_extend_i32_u);
  return { type: LOAD_TYPE, locals: LOCALS, body: c, export: `ld${unpriv ? 'u' : ''}${size}` };
}

function storeFn(size: number, ramOffset: number, unpriv: boolean): FuncDef {
  const c = new Code();
  const v = 2;
  const n = 3;
  const info = 4;
  const lo = 5;
  const e = 6;
  const tmp = 7;
  const fast = (): void => {
    c.if();
    ramAddr(c, lo, e);
    c.tee(tmp);
    c.get(v);
    ramStore(c, size, ramOffset);
    holdsCode(c, tmp, tmp);
    c.if();
    c.get(tmp);
    c.call(imp('cw'));
    c.end();
    c.op(Op.return);
    c.end();
  };
  spCheckFirst(c, n, info);
  hit(c, size, 'wTag', lo, e, P_ST, P_A, unpriv ? 'user' : undefined);
  fast();
  if (size > 1) {
    unalignedHit(c, size, 'wTag', lo, e);
    fast();
  }
  storePc(c, info);
  slowArgs(c, n, info, () => {
    c.i32(sizeFlags(size, unpriv));
    halves(c, v);
  });
  c.call(imp('wr'));
  return { type: STORE_TYPE, locals: LOCALS, body: c, export: `st${unpriv ? 'u' : ''}${size}` };
}

// Exclusives: the monitor is the physical address (RAM base + offset), the size and the value the
// load saw, as the handlers keep it (insn/ldst_int.ts); a store-exclusive succeeds where all three
// still match (the value compare stands for other writers, as QEMU's MTTCG does), the value compared
// and replaced in one atomic compare-and-swap. Anything but an
// aligned RAM access the TLB has (a miss, MMIO, a fault to raise) goes to the handlers' functions.

function loadExclFn(size: number, ramOffset: number, ramBase: number): FuncDef {
  const c = new Code();
  const n = 2;
  const info = 3;
  const lo = 4;
  const e = 5;
  const v = 6;
  hit(c, size, 'rTag', lo, e);
  c.if();
  ramAddr(c, lo, e);
  c.tee(e);
  ramLoad(c, size, ramOffset);
  c.set(v);
  c.get(P_ST);
  physical(c, e, ramBase);
  c.mem(Op.i64_store, 3, EXCL_OFF);
  c.get(P_ST);
  c.i32(size);
  c.mem(Op.i32_store, 2, EXCL_SIZE_OFF);
  c.get(P_ST);
  c.get(v);
  c.mem(Op.i64_store, 3, EXCL_V_OFF);
  c.get(v);
  c.op(Op.return);
  c.end();
  storePc(c, info);
  slowArgs(c, n, info, () => c.i32(size));
  c.call(imp('lx'));
  withHigh(c);
  return { type: LOAD_TYPE, locals: [I32, I32, I64], body: c, export: `ldx${size}` };
}

/** i64.atomic.rmw{8,16,32,}.cmpxchg(_u) by access size (threads proposal, after the 0xfe prefix). */
const CMPXCHG: Record<number, number> = { 1: 0x4c, 2: 0x4d, 4: 0x4e, 8: 0x49 };

function storeExclFn(size: number, ramOffset: number, ramBase: number): FuncDef {
  const c = new Code();
  const val = 2;
  const n = 3;
  const info = 4;
  const lo = 5;
  const e = 6;
  const ok = 7;
  hit(c, size, 'wTag', lo, e);
  c.if(I32);
  ramAddr(c, lo, e);
  c.set(e);
  // the monitor holds: same address, same size, memory still holds what the load saw
  c.get(P_ST);
  c.mem(Op.i64_load, 3, EXCL_OFF);
  physical(c, e, ramBase);
  c.op(Op.i64_eq);
  c.get(P_ST);
  c.mem(Op.i32_load, 2, EXCL_SIZE_OFF);
  c.i32(size);
  c.op(Op.i32_eq);
  c.op(Op.i32_and);
  c.if(I32);
  // ... and memory still holds what the load saw: compare and store in one atomic step, since vCPUs
  // on other threads store meanwhile (threads/)
  c.get(e);
  c.get(P_ST);
  c.mem(Op.i64_load, 3, EXCL_V_OFF);
  c.get(val);
  c.atomic(CMPXCHG[size], Math.log2(size), ramOffset);
  c.get(P_ST);
  c.mem(Op.i64_load, 3, EXCL_V_OFF);
  c.op(Op.i64_eq);
  c.else();
  c.i32(0);
  c.end();
  c.tee(ok);
  c.if();
  holdsCode(c, e, e);
  c.if();
  c.get(e);
  c.call(imp('cw'));
  c.end();
  c.end();
  c.get(P_ST);
  c.i64(-1);
  c.mem(Op.i64_store, 3, EXCL_OFF);
  c.get(ok);
  c.op(Op.i32_eqz); // status: 0 stored, 1 not
  c.else();
  storePc(c, info);
  slowArgs(c, n, info, () => {
    c.i32(size);
    halves(c, val);
  });
  c.call(imp('sx'));
  c.end();
  return { type: STORE_EXCL_TYPE, locals: [I32, I32, I32], body: c, export: `stx${size}` };
}

/** A function that calls import `k` of `type` with its own parameters. */
function forwardFn(k: number, name: string, type: FuncType): FuncDef {
  const c = new Code();
  type.params.forEach((_, i) => c.get(i));
  c.call(k);
  return { type, locals: [], body: c, export: name };
}

/** The runtime's exports: ld1..ld8, st1..st8, ldu1..ldu8, stu1..stu8, ldx1..ldx8, stx1..stx8 and the FORWARDED helpers. */
export type Runtime = Record<string, WebAssembly.ExportValue>;

const runtimes = new WeakMap<WebAssembly.Memory, Runtime>();

/** The runtime instance for a guest memory (built on first use). */
export function runtimeFor(
  memory: WebAssembly.Memory,
  ramOffset: number,
  ramBase: number,
  js: Record<'rd' | 'wr' | 'cw' | 'lx' | 'sx' | 'h' | 'sp' | 'hs', WebAssembly.ImportValue>,
): Runtime {
  let rt = runtimes.get(memory);
  if (rt) return rt;
  const funcs = [
    ...[false, true].flatMap((unpriv) => [
      ...ACCESS_SIZES.map((s) => loadFn(s, ramOffset, unpriv)),
      ...ACCESS_SIZES.map((s) => storeFn(s, ramOffset, unpriv)),
    ]),
    ...ACCESS_SIZES.map((s) => loadExclFn(s, ramOffset, ramBase)),
    ...ACCESS_SIZES.map((s) => storeExclFn(s, ramOffset, ramBase)),
    ...FORWARDED.map((f) => forwardFn(imp(f.name), f.name, f.type)),
  ];
  const bytes = buildModule(RT_IMPORTS, funcs, 65536);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory, ...js } });
  rt = inst.exports;
  runtimes.set(memory, rt);
  return rt;
}

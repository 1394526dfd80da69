// The emitter's view of a unit being translated (translate.ts): the code buffer, the function's
// locals and imports, and the building blocks emitters use (register and flag access, the inline
// TLB path of loads and stores, calls of the interpreter's handlers).

import type { Handler } from '../decode.js';
import { Code, I32, I64, Op, type FuncType } from './encoder.js';
import { C_OFF, HI_OFF, N_OFF, PC_OFF, V_OFF, Z_OFF, codePagesOffset, tlbOff } from './layout.js';

// ---- function locals ----
export const L_ST = 0;
export const L_LIMIT = 1;
export const L_N = 2;
export const L_AT = 3;
export const L_BASE = 4;
/** i64 temporaries. */
export const L_T0 = 5;
/** i32 temporaries. */
export const L_W0 = 9;
/** el << 12: byte offset of the current MMU index in a TLB array. */
export const L_ELX = 13;
export const L_ASID = 14;
export const LOCALS = [I32, I32, I64, I64, I64, I64, I64, I32, I32, I32, I32, I32, I32];

// ---- imports (function indexes) ----
export const F_H = 0;
export const F_RD = 1;
export const F_WR = 2;
export const F_CW = 3;
export const F_SP = 4;
export const IMPORTS: { name: string; type: FuncType }[] = [
  { name: 'h', type: { params: [I32, I32, I32], results: [] } }, // handler index, insn, part
  { name: 'rd', type: { params: [I32, I32, I32, I32], results: [I32] } }, // lo, hi, size | flags << 4, part
  { name: 'wr', type: { params: [I32, I32, I32, I32, I32, I32], results: [] } }, // lo, hi, size | flags << 4, vlo, vhi, part
  { name: 'cw', type: { params: [I32], results: [] } }, // RAM page written that holds cached code
  { name: 'sp', type: { params: [I32], results: [] } }, // SP alignment check (part)
];
export const FN_TYPE: FuncType = { params: [I32, I32], results: [I32] };

/** What one unit's emitters need: the code buffer and where things are. */
export class Unit {
  readonly c = new Code();
  /** Word index of the instruction being emitted, and of its basic block's first instruction. */
  i = 0;
  first = 0;
  /** Blocks open inside the current case (for branch depths). */
  nest = 0;
  /** Depth of the dispatch loop from the current case's top level. */
  caseDepth = 0;
  constructor(
    readonly ramOffset: number,
    readonly handlerIndex: (h: Handler) => number,
  ) {}

  /** Push the 64-bit register Xn; 31 reads as XZR unless `sp`. */
  rx(n: number, sp = false): void {
    if (n === 31 && !sp) this.c.i64(0);
    else {
      this.c.get(L_ST);
      this.c.mem(Op.i64_load, 3, n * 8);
    }
  }
  /** Push Wn (31 = WZR unless `sp`). */
  rw(n: number, sp = false): void {
    if (n === 31 && !sp) this.c.i32(0);
    else {
      this.c.get(L_ST);
      this.c.mem(Op.i32_load, 2, n * 8);
    }
  }
  /** Xd = the i64 `value` pushes; 31 discards (pure values only) unless `sp`. */
  setX(d: number, value: () => void, sp = false): void {
    if (d === 31 && !sp) return;
    this.c.get(L_ST);
    value();
    this.c.mem(Op.i64_store, 3, d * 8);
  }
  /** Xd = zero-extended i32 `value`. */
  setW(d: number, value: () => void, sp = false): void {
    if (d === 31 && !sp) return;
    this.c.get(L_ST);
    value();
    this.c.op(Op.i64_extend_i32_u);
    this.c.mem(Op.i64_store, 3, d * 8);
  }
  /** State word at `off` = the i32 `value` pushes. */
  setState(off: number, value: () => void): void {
    this.c.get(L_ST);
    value();
    this.c.mem(Op.i32_store, 2, off);
  }
  /** Push a state word. */
  state(off: number): void {
    this.c.get(L_ST);
    this.c.mem(Op.i32_load, 2, off);
  }
  /** Push the address of word `i` of the page (i64). */
  pcOf(i: number): void {
    this.c.get(L_BASE);
    if (i !== 0) {
      this.c.i64(i * 4);
      this.c.op(Op.i64_add);
    }
  }
  /** Record the current instruction's address in the state block (before a helper that may raise). */
  storePc(): void {
    this.c.get(L_ST);
    this.pcOf(this.i);
    this.c.mem(Op.i64_store, 3, PC_OFF);
  }
  /** Push the unit's instructions retired before the current one. */
  part(): void {
    this.c.get(L_N);
    this.c.i32(this.i - this.first);
    this.c.op(Op.i32_add);
  }
  /** Call the interpreter's handler for `insn`. */
  callHandler(h: Handler, insn: number): void {
    this.storePc();
    this.c.i32(this.handlerIndex(h));
    this.c.i32(insn | 0);
    this.part();
    this.c.call(F_H);
  }
  /** SP alignment check before an access through SP (n = 31). */
  spCheck(n: number): void {
    if (n !== 31) return;
    this.rw(31, true);
    this.c.i32(15);
    this.c.op(Op.i32_and);
    this.c.if();
    this.storePc();
    this.part();
    this.c.call(F_SP);
    this.c.end();
  }

  /**
   * Load `size` bytes (1, 2, 4, 8) from the address in i64 local `addr`; pushes the value zero-extended
   * to i64. `flags`: mmu.ts ACC_* bits (non-zero: always the slow path).
   */
  load(addr: number, size: number, flags = 0): void {
    const c = this.c;
    if (flags !== 0) {
      this.slowLoad(addr, size, flags);
      return;
    }
    this.tlbHit(addr, size, 'rTag');
    c.if(I64);
    this.nest++;
    this.ramAddr();
    c.mem(size === 8 ? Op.i64_load : size === 4 ? Op.i64_load32_u : size === 2 ? Op.i64_load16_u : Op.i64_load8_u, 0, this.ramOffset);
    c.else();
    this.slowLoad(addr, size, 0);
    c.end();
    this.nest--;
  }

  private slowLoad(addr: number, size: number, flags: number): void {
    const c = this.c;
    this.storePc();
    this.halves(addr);
    c.i32(size | (flags << 4));
    this.part();
    c.call(F_RD);
    c.op(Op.i64_extend_i32_u);
    if (size === 8) {
      this.state(HI_OFF);
      c.op(Op.i64_extend_i32_u);
      c.i64(32);
      c.op(Op.i64_shl);
      c.op(Op.i64_or);
    }
  }

  /** Store the low `size` bytes of the i64 `value` pushes to the address in i64 local `addr`. */
  store(addr: number, size: number, value: () => void, flags = 0): void {
    const c = this.c;
    if (flags === 0) {
      this.tlbHit(addr, size, 'wTag');
      c.if();
      this.nest++;
      this.ramAddr();
      c.tee(L_W0 + 3);
      value();
      c.mem(size === 8 ? Op.i64_store : size === 4 ? Op.i64_store32 : size === 2 ? Op.i64_store16 : Op.i64_store8, 0, this.ramOffset);
      // a store to a page with cached code drops it
      c.get(L_W0 + 3);
      c.i32(12);
      c.op(Op.i32_shr_u);
      c.tee(L_W0 + 3);
      c.mem(Op.i32_load8_u, 0, codePagesOffset());
      c.if();
      c.get(L_W0 + 3);
      c.call(F_CW);
      c.end();
      c.else();
    }
    this.storePc();
    this.halves(addr);
    c.i32(size | (flags << 4));
    value();
    c.op(Op.i32_wrap_i64);
    value();
    c.i64(32);
    c.op(Op.i64_shr_u);
    c.op(Op.i32_wrap_i64);
    this.part();
    c.call(F_WR);
    if (flags === 0) {
      c.end();
      this.nest--;
    }
  }

  /** Push the low and high halves of i64 local `addr` (two i32). */
  private halves(addr: number): void {
    const c = this.c;
    c.get(addr);
    c.op(Op.i32_wrap_i64);
    c.get(addr);
    c.i64(32);
    c.op(Op.i64_shr_u);
    c.op(Op.i32_wrap_i64);
  }

  /**
   * Push 1 when the TLB has a fast tag of kind `tag` for the page of i64 local `addr` under the
   * current ASID and the access is aligned; leaves in W0 the low half of the address and in W2 the
   * entry's byte address less the array's offset.
   */
  private tlbHit(addr: number, size: number, tag: 'rTag' | 'wTag'): void {
    const c = this.c;
    const w0 = L_W0;
    const w1 = L_W0 + 1;
    const w2 = L_W0 + 2;
    const w3 = L_W0 + 3;
    c.get(addr);
    c.op(Op.i32_wrap_i64);
    c.tee(w0);
    c.i32(12);
    c.op(Op.i32_shr_u);
    c.i32(1023);
    c.op(Op.i32_and);
    c.i32(2);
    c.op(Op.i32_shl);
    c.get(L_ELX);
    c.op(Op.i32_add);
    c.get(L_ST);
    c.op(Op.i32_add);
    c.tee(w2);
    c.mem(Op.i32_load, 2, tlbOffset(tag));
    c.get(w0);
    c.i32(-4096 | (size - 1)); // page bits, and the alignment bits that must be zero
    c.op(Op.i32_and);
    c.op(Op.i32_eq);
    c.get(w2);
    c.mem(Op.i32_load, 2, tlbOffset('tagHi'));
    c.get(addr);
    c.i64(32);
    c.op(Op.i64_shr_u);
    c.op(Op.i32_wrap_i64);
    c.tee(w1);
    c.op(Op.i32_eq);
    c.op(Op.i32_and);
    c.get(w2);
    c.mem(Op.i32_load, 2, tlbOffset('tAsid'));
    c.tee(w3);
    c.i32(-1);
    c.op(Op.i32_eq);
    c.get(w3);
    c.get(L_ASID);
    c.op(Op.i32_eq);
    c.op(Op.i32_or);
    c.op(Op.i32_and);
  }

  /** After tlbHit: push the RAM offset of the access (i32). */
  private ramAddr(): void {
    const c = this.c;
    c.get(L_W0 + 2);
    c.mem(Op.i32_load, 2, tlbOffset('ramOff'));
    c.get(L_W0);
    c.i32(0xfff);
    c.op(Op.i32_and);
    c.op(Op.i32_add);
  }
}

const tlbOffset = (a: 'rTag' | 'wTag' | 'tagHi' | 'tAsid' | 'ramOff'): number => tlbOff(a);

/** Push 1 when A64 condition `cond` holds for the flags in the state block. */
export function condition(u: Unit, cond: number): void {
  const c = u.c;
  const flag = (off: number): void => u.state(off);
  switch (cond >>> 1) {
    case 0:
      flag(Z_OFF);
      break;
    case 1:
      flag(C_OFF);
      break;
    case 2:
      flag(N_OFF);
      break;
    case 3:
      flag(V_OFF);
      break;
    case 4: // HI: C && !Z
      flag(C_OFF);
      flag(Z_OFF);
      c.op(Op.i32_eqz);
      c.op(Op.i32_and);
      break;
    case 5: // GE: N == V
      flag(N_OFF);
      flag(V_OFF);
      c.op(Op.i32_eq);
      break;
    case 6: // GT: !Z && N == V
      flag(N_OFF);
      flag(V_OFF);
      c.op(Op.i32_eq);
      flag(Z_OFF);
      c.op(Op.i32_eqz);
      c.op(Op.i32_and);
      break;
    default:
      c.i32(1);
      return;
  }
  if ((cond & 1) !== 0) c.op(Op.i32_eqz);
}


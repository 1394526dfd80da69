// The emitter's view of a unit being translated (translate.ts): the code buffer, the function's
// locals and imports, and the building blocks emitters use (register and flag access, the inline
// TLB path of loads and stores, calls of the interpreter's handlers).

import { Code, I32, I64, Op, type FuncType } from './encoder.js';
import { C_OFF, N_OFF, PC_OFF, V_OFF, Z_OFF, codePagesOffset } from './layout.js';
import { UNIT_TYPE } from './dispatch.js';
import { ACCESS_SIZES, FORWARDED, LOAD_TYPE, STORE_TYPE, hit, ramAddr, ramLoad, ramStore } from './runtime.js';

// ---- function parameters (st, limit, n) and locals ----
export const L_ST = 0;
export const L_LIMIT = 1;
/** Instructions retired so far in this call of the dispatcher (dispatch.ts), this unit's included. */
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
/** The locals after the parameters (st, limit, n: UNIT_TYPE). */
export const LOCALS = [I32, I64, I64, I64, I64, I64, I32, I32, I32, I32, I32, I32];

// ---- the runtime's functions (runtime.ts), called through the unit's own table ----
// A unit imports no function: V8 (Node 20) compiles a wrapper for each imported function of every
// module (JavaScript could be passed), most of a unit's 0.6-0.8 ms of compile and instantiation. A
// unit defines a table instead, filled with the runtime's functions after instantiation, and calls
// them with call_indirect (slot = index in RUNTIME_FNS). An imported table would do too, but V8 then
// keeps every instance that imports it alive.
export const RUNTIME_FNS: { name: string; type: FuncType }[] = [
  ...FORWARDED, // h, sp, hs
  ...ACCESS_SIZES.map((s) => ({ name: `ld${s}`, type: LOAD_TYPE })),
  ...ACCESS_SIZES.map((s) => ({ name: `st${s}`, type: STORE_TYPE })),
];
const fn = (name: string): number => RUNTIME_FNS.findIndex((f) => f.name === name);
const F_H = fn('h');
const F_SP = fn('sp');
const F_HS = fn('hs');
/** ld1, ld2, ld4, ld8, then st1 ... st8 (runtime.ts). */
const F_LD = fn('ld1');
const F_ST = fn('st1');
export const FN_TYPE: FuncType = UNIT_TYPE;
/** A unit module declares its function's type (index 0), then RUNTIME_FNS's types (UNIT_MODULE). */
const RT_TYPE0 = 1;

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
  /** Loads and stores take the TLB hit path inline (units with a loop). */
  inline = false;
  constructor(readonly ramOffset = 0) {}

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
  /** Call runtime function `k` (RUNTIME_FNS) with the arguments pushed. */
  callRt(k: number): void {
    this.c.i32(k);
    this.c.callIndirect(RT_TYPE0 + k);
  }
  /**
   * Call the interpreter's handler for `insn`, by its index in the decoder's handler table.
   * `ender`: the instruction ends a block; pushes 1 when the unit must leave (helper hs).
   */
  callHandler(handlerIndex: number, insn: number, ender = false): void {
    this.storePc();
    this.c.i32(handlerIndex);
    this.c.i32(insn | 0);
    this.part();
    this.callRt(ender ? F_HS : F_H);
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
    this.callRt(F_SP);
    this.c.end();
  }

  /** Push the runtime's `info` argument for the current instruction (runtime.ts). */
  private info(): void {
    this.c.get(L_N);
    this.c.i32(this.i | ((this.i - this.first) << 10));
  }

  /**
   * Load `size` bytes (1, 2, 4, 8) from the address in i64 local `addr`; pushes it zero-extended to
   * i64. In a unit with a loop (`inline`), a TLB hit is handled inline and only the rest calls the
   * runtime; elsewhere every access calls it (smaller units, faster to emit and compile).
   */
  load(addr: number, size: number): void {
    const c = this.c;
    const call = (): void => {
      c.get(L_ST);
      c.get(addr);
      this.info();
      this.callRt(F_LD + ACCESS_SIZES.indexOf(size as 1 | 2 | 4 | 8));
    };
    if (!this.inline) {
      call();
      return;
    }
    hit(c, size, 'rTag', L_W0, L_W0 + 1, L_W0 + 2, L_ST, addr);
    c.if(I64);
    ramAddr(c, L_W0, L_W0 + 1);
    ramLoad(c, size, this.ramOffset);
    c.else();
    call();
    c.end();
  }

  /** Store the low `size` bytes of the i64 `value` pushes to the address in i64 local `addr`. */
  store(addr: number, size: number, value: () => void): void {
    const c = this.c;
    const call = (): void => {
      c.get(L_ST);
      c.get(addr);
      value();
      this.info();
      this.callRt(F_ST + ACCESS_SIZES.indexOf(size as 1 | 2 | 4 | 8));
    };
    if (!this.inline) {
      call();
      return;
    }
    hit(c, size, 'wTag', L_W0, L_W0 + 1, L_W0 + 2, L_ST, addr);
    c.if();
    ramAddr(c, L_W0, L_W0 + 1);
    c.tee(L_W0 + 2);
    value();
    ramStore(c, size, this.ramOffset);
    // a store to a page with cached code drops it: the runtime's path does that
    c.get(L_W0 + 2);
    c.i32(12);
    c.op(Op.i32_shr_u);
    c.mem(Op.i32_load8_u, 0, codePagesOffset());
    c.if();
    call();
    c.end();
    c.else();
    call();
    c.end();
  }
}


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


// The emitter's view of a unit being translated (translate.ts): the code buffer, the function's
// locals and imports, and the building blocks emitters use (register and flag access, the inline
// TLB path of loads and stores, calls of the interpreter's handlers).

import { Code, I32, I64, Op, type FuncType } from './encoder.js';
import { C_OFF, N_OFF, PC_OFF, V_OFF, Z_OFF } from './layout.js';
import { UNIT_TYPE } from './dispatch.js';
import {
  ACCESS_SIZES,
  FORWARDED,
  LOAD_TYPE,
  STORE_EXCL_TYPE,
  STORE_TYPE,
  hit,
  holdsCode,
  ramAddr,
  ramLoad,
  ramStore,
  SP_CHECK,
} from './runtime.js';

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
/** i64: the value a store writes (store()). */
const L_SV = 14;
/** X0..X30 and SP (register slots 0..31) cached in i64 locals L_X + n, NZCV in i32 locals L_F + k. */
const L_X = 15;
const L_F = L_X + 32;
/** Cache slots: 0..31 the registers, 32 + k the flags N, Z, C, V. */
const SLOTS = 36;
const FLAG_OFFS = [N_OFF, Z_OFF, C_OFF, V_OFF];
/** Word index (in the unit's code page) of the block the unit goes to next (translate.ts). */
export const L_TW = L_F + 4;
/** The locals after the parameters (st, limit, n: UNIT_TYPE). */
export const LOCALS = [
  ...[I32, I64, I64, I64, I64, I64, I32, I32, I32, I32, I32, I64],
  ...Array<number>(32).fill(I64),
  ...Array<number>(4).fill(I32),
  I32, // L_TW
];
/** The local that caches slot `k`. */
const slotLocal = (k: number): number => (k < 32 ? L_X + k : L_F + k - 32);
/** A cache slot's state while a unit is emitted: the memory holds the value, or its local does. */
const MEMORY = 0;
const CLEAN = 1; // the local and the state block hold the same value
const DIRTY = 2; // the local holds the value, the state block an older one

// ---- the runtime's functions (runtime.ts), called through the unit module's own table ----
// A unit imports no function: V8 (Node 20) compiles a wrapper for each imported function of every
// module (JavaScript could be passed), most of a unit's 0.6-0.8 ms of compile and instantiation. A
// module of units defines a table instead, filled with the runtime's functions after instantiation,
// and calls them with call_indirect (slot = index in RUNTIME_FNS). An imported table would do too,
// but V8 then keeps every instance that imports it alive.
export const RUNTIME_FNS: { name: string; type: FuncType }[] = [
  ...FORWARDED, // h, sp, hs
  ...['', 'u'].flatMap((u) => [
    ...ACCESS_SIZES.map((s) => ({ name: `ld${u}${s}`, type: LOAD_TYPE })),
    ...ACCESS_SIZES.map((s) => ({ name: `st${u}${s}`, type: STORE_TYPE })),
  ]),
  ...ACCESS_SIZES.map((s) => ({ name: `ldx${s}`, type: LOAD_TYPE })),
  ...ACCESS_SIZES.map((s) => ({ name: `stx${s}`, type: STORE_EXCL_TYPE })),
];
const fn = (name: string): number => RUNTIME_FNS.findIndex((f) => f.name === name);
const F_H = fn('h');
const F_SP = fn('sp');
const F_HS = fn('hs');
/** ld1, ld2, ld4, ld8, then st1 ... st8 (runtime.ts); ldu1... and stu1... for unprivileged accesses. */
const F_LD = fn('ld1');
const F_ST = fn('st1');
const F_LDU = fn('ldu1');
const F_STU = fn('stu1');
const F_LDX = fn('ldx1');
const F_STX = fn('stx1');
export const FN_TYPE: FuncType = UNIT_TYPE;
/** A unit module declares its function's type (index 0), then RUNTIME_FNS's types (UNIT_MODULE). */
const RT_TYPE0 = 1;

/**
 * What one unit's emitters need: the code buffer and where things are.
 *
 * Registers and flags: within a basic block, the ones an instruction reads or writes stay in wasm
 * locals (V8 keeps them in host registers), written back to the state block at the block's end,
 * before every call out of the unit (helpers read the state block; a call may throw a guest
 * exception, which leaves the unit) and when the unit leaves; after a handler call (which may change
 * any of them) they are read again from the state block. Which slots are in locals is known while
 * emitting, since a block is straight-line code; code in both arms of an if merges the two states
 * (ifArm/elseArm/endArm), and a write-back inside an arm leaves the slot dirty for the code after it.
 */
export class Unit {
  /** Word index of the instruction being emitted, and of its basic block's first instruction. */
  i = 0;
  first = 0;
  /** The instruction being emitted and its handler's index in the decoder's table (raiseIf). */
  insn = 0;
  hx = 0;
  /** Blocks open inside the current case (for branch depths). */
  nest = 0;
  /** Depth of the dispatch loop from the current case's top level. */
  caseDepth = 0;
  /** Loads and stores take the TLB hit path inline (set per block: the blocks on a loop of the unit). */
  inline = false;
  /** Per cache slot: MEMORY, CLEAN or DIRTY. */
  private slots = new Uint8Array(SLOTS);
  /** Per cache slot: 1 once emitted code read or wrote it (`read`), wrote it (`written`). */
  readonly read = new Uint8Array(SLOTS);
  readonly written = new Uint8Array(SLOTS);
  /**
   * The last SUBS (CMP) emitted: its word index and its operands' locals, so that a condition right
   * after it in its block compares them itself (condition()).
   */
  readonly cmp = { at: -1, wide: false, a: 0, b: 0 };
  /** Handler calls emitted (they leave every slot in memory). */
  handlerCalls = 0;
  /** For each open ifArm: the slots before it, and at the end of its then-arm once elseArm ran. */
  private arms: { before: Uint8Array; then: Uint8Array | undefined }[] = [];
  constructor(
    readonly ramOffset = 0,
    /** The code buffer the unit's function body goes to. */
    readonly c = new Code(),
  ) {}

  /** Push cache slot `k` (a register or a flag) from its local, reading it in first. */
  private slotGet(k: number): void {
    const c = this.c;
    this.read[k] = 1;
    if (this.slots[k] === MEMORY) {
      c.get(L_ST);
      if (k < 32) c.mem(Op.i64_load, 3, k * 8);
      else c.mem(Op.i32_load, 2, FLAG_OFFS[k - 32]);
      c.tee(slotLocal(k));
      this.slots[k] = CLEAN;
    } else c.get(slotLocal(k));
  }
  /** Store slot `k`'s local to its place in the state block. */
  private writeBack(k: number): void {
    const c = this.c;
    c.get(L_ST);
    c.get(slotLocal(k));
    if (k < 32) c.mem(Op.i64_store, 3, k * 8);
    else c.mem(Op.i32_store, 2, FLAG_OFFS[k - 32]);
  }
  /**
   * Cache slot `k` = the value on the stack. Inside an if arm it is written through to the state block
   * as well, so that after the if the slot is in memory on both paths (or in the local on both, when
   * it was dirty before the if).
   */
  private slotSet(k: number): void {
    this.c.set(slotLocal(k));
    this.read[k] = 1;
    this.written[k] = 1;
    if (this.arms.length === 0) {
      this.slots[k] = DIRTY;
      return;
    }
    this.writeBack(k);
    this.slots[k] = CLEAN;
  }
  /**
   * Write the dirty slots back to the state block. Inside an if arm the slots stay dirty for the code
   * after it (the other arm did not write them back).
   */
  flush(regsOnly = false): void {
    for (let k = 0; k < (regsOnly ? 32 : SLOTS); k++) {
      if (this.slots[k] !== DIRTY) continue;
      this.writeBack(k);
      if (this.arms.length === 0) this.slots[k] = CLEAN;
    }
  }
  /**
   * Drop NZCV held dirty in locals without writing them back: only where the next instruction sets
   * all four without reading them and cannot raise (translate.ts), so the state block's older values
   * are never seen.
   */
  dropFlags(): void {
    if (this.arms.length !== 0) throw new Error('unit: flags dropped inside an if arm');
    for (let k = 32; k < SLOTS; k++) this.slots[k] = MEMORY;
  }
  /** Forget the cached slots (after a handler, which may have changed any register or flag). */
  private forget(): void {
    this.mustBeWritten();
    this.slots.fill(MEMORY);
  }
  /** Throw unless every register and flag is written back (where the unit leaves). */
  mustBeWritten(): void {
    if (this.slots.includes(DIRTY)) throw new Error('unit: a register was not written back');
  }
  /** At a block's first instruction (reached by a branch): nothing is cached. */
  startBlock(): void {
    if (this.arms.length !== 0) throw new Error('unit: a block starts inside an if arm');
    this.forget();
  }
  /**
   * The head of a loop inside a block (translate.ts): read every slot in `read` into its local, and
   * from here on take the ones in `written` as dirty (the loop's back edge comes with them so).
   */
  loopHead(read: Uint8Array, written: Uint8Array): void {
    const c = this.c;
    for (let k = 0; k < SLOTS; k++) {
      if (!read[k]) continue;
      if (this.slots[k] === MEMORY) {
        this.slotGet(k);
        c.op(Op.drop);
      }
      if (written[k]) this.slots[k] = DIRTY;
    }
  }
  /** Whether every slot in `read` is in its local (the state a loop head expects at its back edge). */
  inLocals(read: Uint8Array): boolean {
    for (let k = 0; k < SLOTS; k++) if (read[k] && this.slots[k] === MEMORY) return false;
    return true;
  }
  /** Whether code is being emitted inside an if arm (or an arm()). */
  get inArm(): boolean {
    return this.arms.length !== 0;
  }
  /** `if` whose arms read or write registers or flags. */
  ifArm(type?: number): void {
    this.c.if(type);
    this.arm();
  }
  /**
   * Code after this runs on some paths only, up to endArm (which closes the enclosing block): as in
   * an if arm, registers written back there stay dirty for the code after it.
   */
  arm(): void {
    // Both fields from the start: one object shape (see translate.ts's _lastUnit).
    this.arms.push({ before: this.slots.slice(), then: undefined });
  }
  elseArm(): void {
    const a = this.arms[this.arms.length - 1];
    a.then = this.slots;
    this.slots = a.before.slice();
    this.c.else();
  }
  endArm(): void {
    const a = this.arms.pop()!;
    const other = a.then ?? a.before;
    const s = this.slots;
    // In a local after the if only when both paths put it there. Dirty on a path only when it was
    // dirty before the if (arms write through), so then its local holds the value on both paths.
    for (let k = 0; k < SLOTS; k++) {
      if (s[k] === other[k]) continue;
      if (s[k] === DIRTY || other[k] === DIRTY) {
        if (s[k] === MEMORY || other[k] === MEMORY) throw new Error('unit: a slot dirty on one path only');
        s[k] = DIRTY;
      } else s[k] = MEMORY;
    }
    this.c.end();
  }

  /** Push the 64-bit register Xn; 31 reads as XZR unless `sp`. */
  rx(n: number, sp = false): void {
    if (n === 31 && !sp) this.c.i64(0);
    else this.slotGet(n);
  }
  /** Push Wn (31 = WZR unless `sp`). */
  rw(n: number, sp = false): void {
    if (n === 31 && !sp) this.c.i32(0);
    else {
      this.slotGet(n);
      this.c.op(Op.i32_wrap_i64);
    }
  }
  /** Xd = the i64 `value` pushes; 31 discards (pure values only) unless `sp`. */
  setX(d: number, value: () => void, sp = false): void {
    if (d === 31 && !sp) return;
    value();
    this.slotSet(d);
  }
  /** Xd = zero-extended i32 `value`. */
  setW(d: number, value: () => void, sp = false): void {
    if (d === 31 && !sp) return;
    value();
    this.c.op(Op.i64_extend_i32_u);
    this.slotSet(d);
  }
  /** State word at `off` = the i32 `value` pushes (a flag's word: its local). */
  setState(off: number, value: () => void): void {
    const f = FLAG_OFFS.indexOf(off);
    if (f >= 0) {
      value();
      this.slotSet(32 + f);
      return;
    }
    this.c.get(L_ST);
    value();
    this.c.mem(Op.i32_store, 2, off);
  }
  /** Push a state word (a flag's word: from its local). */
  state(off: number): void {
    const f = FLAG_OFFS.indexOf(off);
    if (f >= 0) {
      this.slotGet(32 + f);
      return;
    }
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
    this.flush();
    this.c.i32(k);
    this.c.callIndirect(RT_TYPE0 + k);
  }
  /**
   * Call the interpreter's handler for `insn`, by its index in the decoder's handler table.
   * `ender`: the instruction ends a block; pushes 1 when the unit must leave (helper hs).
   */
  callHandler(handlerIndex: number, insn: number, ender = false): void {
    this.handlerArgs(handlerIndex, insn);
    if (this.arms.length !== 0) throw new Error('unit: a handler call inside an if arm');
    this.handlerCalls++;
    this.callRt(ender ? F_HS : F_H);
    this.forget();
  }
  /**
   * Call block ender `handlerIndex` (the runtime's hs: pushes 1 where the unit must leave) where it
   * writes no register or flag: like callHandlerPure, it may be called inside an if arm (an ender
   * with an inline path in emit.ts, enderEmitters, calls its handler only where that path cannot do).
   */
  callEnderPure(handlerIndex: number, insn: number): void {
    this.handlerArgs(handlerIndex, insn);
    this.callRt(F_HS);
  }
  /**
   * Call the current instruction's handler where it writes no register or flag (memory only, or an
   * exception): the slots cached in locals stay valid, so unlike callHandler it may be called inside
   * an if arm and in a loop kept in locals (dirty slots are written back first, as for every call).
   */
  callHandlerPure(): void {
    this.handlerArgs(this.hx, this.insn);
    this.callRt(F_H);
  }
  /**
   * Where the i32 the caller pushed is non-zero, call the instruction's handler, which raises there
   * (UNDEF at EL0, say): the emitter leaves the conditions of the exception to the handler, and the
   * unit goes on after the if only where the value is zero.
   */
  raiseIf(): void {
    this.ifArm();
    this.callHandlerPure();
    this.c.op(Op.unreachable);
    this.endArm();
  }
  /** PC stored, then the arguments of the runtime's h/hs: handler index, instruction, count so far. */
  private handlerArgs(handlerIndex: number, insn: number): void {
    this.storePc();
    this.c.i32(handlerIndex);
    this.c.i32(insn | 0);
    this.part();
  }
  /**
   * SP alignment check before an access through SP (n = 31). `deferred`: the next load() or store()
   * is the instruction's first access; where that access calls the runtime, the runtime makes the
   * check (SP_CHECK in its `info`) and nothing is emitted here.
   */
  spCheck(n: number, deferred = false): void {
    if (n !== 31) return;
    if (deferred && !this.inline) {
      this.spInfo = SP_CHECK;
      return;
    }
    this.rw(31, true);
    this.c.i32(15);
    this.c.op(Op.i32_and);
    this.ifArm();
    this.storePc();
    this.part();
    this.callRt(F_SP);
    this.endArm();
  }

  /** SP_CHECK while a deferred SP alignment check waits for the access that makes it (spCheck). */
  spInfo = 0;
  /** Push the runtime's `info` argument for the current instruction (runtime.ts). */
  private info(): void {
    this.c.get(L_N);
    this.c.i32(this.i | ((this.i - this.first) << 10) | this.spInfo);
    this.spInfo = 0;
  }

  /**
   * Load `size` bytes (1, 2, 4, 8) from the address in i64 local `addr`; pushes it zero-extended to
   * i64. In a block on a loop of its unit (`inline`), a TLB hit is handled inline and only the rest
   * calls the runtime; elsewhere every access calls it (smaller units, faster to emit and compile,
   * less memory: default guest's boot, 3.7 MB of wasm against 4.9 when every block of a unit with a
   * loop took the inline path). `unpriv`:
   * with EL0's permissions (LDTR).
   */
  load(addr: number, size: number, unpriv = false): void {
    const c = this.c;
    const call = (): void => {
      c.get(L_ST);
      c.get(addr);
      this.info();
      this.callRt((unpriv ? F_LDU : F_LD) + ACCESS_SIZES.indexOf(size as 1 | 2 | 4 | 8));
    };
    if (!this.inline) {
      call();
      return;
    }
    hit(c, size, 'rTag', L_W0, L_W0 + 1, L_ST, addr, unpriv ? 'user' : L_ELX);
    this.ifArm(I64);
    ramAddr(c, L_W0, L_W0 + 1);
    ramLoad(c, size, this.ramOffset);
    this.elseArm();
    call();
    this.endArm();
  }

  /** LDXR: push the `size` bytes at the address in i64 local `addr`, zero-extended, arming the monitor. */
  loadExclusive(addr: number, size: number): void {
    this.c.get(L_ST);
    this.c.get(addr);
    this.info();
    this.callRt(F_LDX + ACCESS_SIZES.indexOf(size as 1 | 2 | 4 | 8));
  }
  /** STXR of the low `size` bytes of the i64 `value` pushes at the address in `addr`: pushes the i32 status. */
  storeExclusive(addr: number, size: number, value: () => void): void {
    this.c.get(L_ST);
    this.c.get(addr);
    value();
    this.info();
    this.callRt(F_STX + ACCESS_SIZES.indexOf(size as 1 | 2 | 4 | 8));
  }

  /** Store the low `size` bytes of the i64 `value` pushes to the address in i64 local `addr` (`unpriv`: STTR). */
  store(addr: number, size: number, value: () => void, unpriv = false): void {
    const c = this.c;
    // the value once, before the paths (each would read its registers)
    value();
    c.set(L_SV);
    const call = (): void => {
      c.get(L_ST);
      c.get(addr);
      c.get(L_SV);
      this.info();
      this.callRt((unpriv ? F_STU : F_ST) + ACCESS_SIZES.indexOf(size as 1 | 2 | 4 | 8));
    };
    if (!this.inline) {
      call();
      return;
    }
    // One runtime call serves both slow paths (a TLB miss, and a store to a page with cached code,
    // which the runtime's path drops after storing again): the registers it writes back first are
    // emitted once per store, not twice.
    c.block(); // done
    c.block(); // slow
    hit(c, size, 'wTag', L_W0, L_W0 + 1, L_ST, addr, unpriv ? 'user' : L_ELX);
    c.op(Op.i32_eqz);
    c.brIf(0);
    ramAddr(c, L_W0, L_W0 + 1);
    c.tee(L_W0 + 2);
    c.get(L_SV);
    ramStore(c, size, this.ramOffset);
    holdsCode(c, L_W0 + 2);
    c.op(Op.i32_eqz);
    c.brIf(1);
    c.end(); // slow
    this.arm();
    call();
    this.endArm(); // done
  }
}

/**
 * By condition code, the 32-bit compare of a SUBS's operands a, b that gives it (EQ, NE, HS, LO,
 * -, -, -, -, HI, LS, GE, LT, GT, LE; MI, PL, VS, VC and AL keep the flags). The 64-bit compare is
 * the same opcode plus I64_CMP (WebAssembly numbers the i64 compares in the i32 ones' order).
 */
const CMP: (number | undefined)[] = [
  Op.i32_eq,
  Op.i32_ne,
  Op.i32_ge_u,
  Op.i32_lt_u,
  undefined,
  undefined,
  undefined,
  undefined,
  Op.i32_gt_u,
  Op.i32_le_u,
  Op.i32_ge_s,
  Op.i32_lt_s,
  Op.i32_gt_s,
  Op.i32_le_s,
];
const I64_CMP = Op.i64_eq - Op.i32_eq;

/**
 * Push 1 when A64 condition `cond` holds for the flags in the state block. Right after a SUBS (CMP)
 * in its block, from the SUBS's operands, still in their locals, where a compare gives the
 * condition: V8 then compiles the compare with the branch or select that uses it, and the flags'
 * computation moves to the paths that need them (the unit's exits) (sortbench, 100 rounds, for
 * B.cond: 1.472-1.488 -> 1.444-1.451 s).
 */
export function condition(u: Unit, cond: number): void {
  const c = u.c;
  const cmp = u.cmp;
  const direct = CMP[cond];
  if (cmp.at === u.i - 1 && cmp.at >= u.first && direct !== undefined) {
    c.get(cmp.a);
    c.get(cmp.b);
    c.op(cmp.wide ? direct + I64_CMP : direct);
    return;
  }
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
    // HI and GT without materialized booleans (V8 compiles each i32.eq/eqz joined by i32.and to a
    // set-on-compare; these become one compare, or xor and or, and the branch).
    case 4: // HI: C && !Z, as C > Z (C is 0 or 1, Z zero or not)
      flag(C_OFF);
      flag(Z_OFF);
      c.op(Op.i32_gt_u);
      break;
    case 5: // GE: N == V
      flag(N_OFF);
      flag(V_OFF);
      c.op(Op.i32_eq);
      break;
    case 6: // GT: !Z && N == V, as ((N ^ V) | Z) == 0
      flag(N_OFF);
      flag(V_OFF);
      c.op(Op.i32_xor);
      flag(Z_OFF);
      c.op(Op.i32_or);
      c.op(Op.i32_eqz);
      break;
    default:
      c.i32(1);
      return;
  }
  if ((cond & 1) !== 0) c.op(Op.i32_eqz);
}

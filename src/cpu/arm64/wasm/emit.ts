// WebAssembly emitters for the hottest A64 instructions (see translate.ts). Each takes the unit and the
// instruction word, emits code that does what the interpreter's handler does, with the operand fields
// folded in, and returns true. It emits nothing and returns false for encodings the handler rejects
// as UNDEF or treats as CONSTRAINED UNPREDICTABLE, so those behaviours come from one place, and
// HANDLER for the rare forms it leaves to the handler on purpose;
// the translator then calls the handler. test/jit.test.ts fails when an emitter returns false for an
// encoding the interpreter executes. The difftest runs every case through these (npm run difftest).

import { BITMASK_HI, BITMASK_LO, BITMASK_OK } from '../int64.js';
import { I32, I64, Op, SimdOp } from './encoder.js';
import {
  C_OFF,
  FETCH_OFF,
  NO_FETCH_PAGE,
  N_OFF,
  SPEL0_OFF,
  SPSEL_OFF,
  TP_OFF,
  V_OFF,
  Z_OFF,
  FPEN_OFF,
  SYNC_OFF,
  VREG_OFF,
  DAIF_OFF,
  IRQ_OFF,
  LINES_OFF,
} from './layout.js';
import { hit, holdsCode, ramAddr, sctlrClear } from './runtime.js';
import { CTR_VALUE, DC_ZVA_BYTES, DCZID_BS, SCTLR_DZE, SCTLR_UCI, SCTLR_UCT, SCTLR_UMA } from '../sysregs.js';
import { scaleOf } from '../insn/ldst_simd.js';
import { imm5Size } from '../insn/simd_int.js';
import { L_ELX, L_ST, L_T0, L_W0, condition, type Unit } from './unit.js';

/** An emitter's answer for a form it leaves to the interpreter's handler on purpose. */
export const HANDLER = 'handler';
export type Emit = (u: Unit, insn: number) => boolean | typeof HANDLER;
export const emitters = new Map<string, Emit>();

function def(names: string[], e: Emit): void {
  for (const n of names)
    if (emitters.has(n) || enderEmitters.has(n)) throw new Error(`emit: two emitters for ${n}`);
  for (const n of names) emitters.set(n, e);
}

/**
 * Block enders (jit.ts) with an inline path for their common case. The emitter pushes an i32: zero
 * where it did the instruction, non-zero where its handler must run, which the translator then calls
 * as the block's ender (it may leave the unit: translate.ts). The handler must write no register or
 * flag the unit keeps in locals (Unit.callEnderPure).
 */
export type EnderEmit = (u: Unit, insn: number) => void;
export const enderEmitters = new Map<string, EnderEmit>();

function defEnder(names: string[], e: EnderEmit): void {
  for (const n of names)
    if (emitters.has(n) || enderEmitters.has(n)) throw new Error(`emit: two emitters for ${n}`);
  for (const n of names) enderEmitters.set(n, e);
}

const T0 = L_T0;
const T1 = L_T0 + 1;
const T2 = L_T0 + 2;
const T3 = L_T0 + 3;
const W0 = L_W0;
const W1 = L_W0 + 1;
const W2 = L_W0 + 2;
const W3 = L_W0 + 3;

const fields = (insn: number): { d: number; n: number; m: number } => ({
  d: insn & 31,
  n: (insn >>> 5) & 31,
  m: (insn >>> 16) & 31,
});

// ---- operands ----

// ---- flags ----

/** The operations of one operand width: 64 bits (X registers, i64) or 32 (W registers, i32). */
interface Width {
  wide: boolean;
  /** Register size in bits. */
  bits: number;
  add: number;
  sub: number;
  xor: number;
  and: number;
  shrU: number;
  eqz: number;
  eq: number;
  ltU: number;
  geU: number;
  mul: number;
  divU: number;
  divS: number;
  /** The type of a value of this width (for a typed if). */
  type: number;
  clz: number;
  /** By shift type: LSL, LSR, ASR, ROR. */
  shifts: readonly number[];
  /** By logical opc: AND, ORR, EOR, ANDS. */
  logic: readonly number[];
  /** Locals for a, b and the result. */
  a: number;
  b: number;
  r: number;
  /** Push a constant from its int32 halves (`hi` defaults to lo's sign; 32 bits use `lo` only). */
  k(u: Unit, lo: number, hi?: number): void;
  /** Push register n (31 = SP when `sp`, else zero). */
  rd(u: Unit, n: number, sp?: boolean): void;
  /** Register d = the value `value` pushes. */
  wr(u: Unit, d: number, value: () => void, sp?: boolean): void;
  /** Push the sign bit of local `l` as an i32. */
  msb(u: Unit, l: number): void;
}

const X: Width = {
  wide: true,
  bits: 64,
  add: Op.i64_add,
  sub: Op.i64_sub,
  xor: Op.i64_xor,
  and: Op.i64_and,
  shrU: Op.i64_shr_u,
  eqz: Op.i64_eqz,
  eq: Op.i64_eq,
  ltU: Op.i64_lt_u,
  geU: Op.i64_ge_u,
  mul: Op.i64_mul,
  divU: Op.i64_div_u,
  divS: Op.i64_div_s,
  type: I64,
  clz: Op.i64_clz,
  shifts: [Op.i64_shl, Op.i64_shr_u, Op.i64_shr_s, Op.i64_rotr],
  logic: [Op.i64_and, Op.i64_or, Op.i64_xor, Op.i64_and],
  a: T0,
  b: T1,
  r: T2,
  k: (u, lo, hi) => u.c.i64(lo, hi),
  rd: (u, n, sp) => u.rx(n, sp),
  wr: (u, d, value, sp) => u.setX(d, value, sp),
  msb: (u, l) => {
    u.c.get(l);
    u.c.i64(63);
    u.c.op(Op.i64_shr_u);
    u.c.op(Op.i32_wrap_i64);
  },
};

const W: Width = {
  wide: false,
  bits: 32,
  add: Op.i32_add,
  sub: Op.i32_sub,
  xor: Op.i32_xor,
  and: Op.i32_and,
  shrU: Op.i32_shr_u,
  eqz: Op.i32_eqz,
  eq: Op.i32_eq,
  ltU: Op.i32_lt_u,
  geU: Op.i32_ge_u,
  mul: Op.i32_mul,
  divU: Op.i32_div_u,
  divS: Op.i32_div_s,
  type: I32,
  clz: Op.i32_clz,
  shifts: [Op.i32_shl, Op.i32_shr_u, Op.i32_shr_s, Op.i32_rotr],
  logic: [Op.i32_and, Op.i32_or, Op.i32_xor, Op.i32_and],
  a: W0,
  b: W1,
  r: W2,
  k: (u, lo) => u.c.i32(lo),
  rd: (u, n, sp) => u.rw(n, sp),
  wr: (u, d, value, sp) => u.setW(d, value, sp),
  msb: (u, l) => {
    u.c.get(l);
    u.c.i32(31);
    u.c.op(Op.i32_shr_u);
  },
};

/** The width of an instruction with the sf bit (31). */
const widthOf = (insn: number): Width => ((insn & 0x80000000) !== 0 ? X : W);

/** Push register m shifted by a constant (type 0 LSL, 1 LSR, 2 ASR, 3 ROR). */
function shifted(u: Unit, w: Width, m: number, type: number, amt: number): void {
  w.rd(u, m);
  if (amt === 0) return;
  w.k(u, amt);
  u.c.op(w.shifts[type]);
}

/**
 * NZCV of a + b (sub: a - b) from the width's locals a, b and result; `withCarry`: a + b + carry-in
 * (b already inverted for SBC), the carry-in in W3.
 */
function flags(u: Unit, w: Width, sub: boolean, withCarry = false): void {
  const c = u.c;
  u.setState(N_OFF, () => w.msb(u, w.r));
  u.setState(Z_OFF, () => {
    c.get(w.r);
    c.op(w.eqz);
  });
  u.setState(C_OFF, () => {
    if (withCarry) {
      // carry when result < a, or result == a with a carry in
      c.get(w.r);
      c.get(w.a);
      c.op(w.ltU);
      c.get(w.r);
      c.get(w.a);
      c.op(w.eq);
      c.get(W3);
      c.op(Op.i32_and);
      c.op(Op.i32_or);
    } else if (sub) {
      c.get(w.a);
      c.get(w.b);
      c.op(w.geU);
    } else {
      c.get(w.r);
      c.get(w.a);
      c.op(w.ltU);
    }
  });
  u.setState(V_OFF, () => {
    // add: (a ^ r) & (b ^ r); sub: (a ^ b) & (a ^ r); sign bit
    c.get(w.a);
    c.get(sub && !withCarry ? w.b : w.r);
    c.op(w.xor);
    c.get(sub && !withCarry ? w.a : w.b);
    c.get(w.r);
    c.op(w.xor);
    c.op(w.and);
    if (w.wide) {
      c.i64(63);
      c.op(Op.i64_shr_u);
      c.op(Op.i32_wrap_i64);
    } else {
      c.i32(31);
      c.op(Op.i32_shr_u);
    }
  });
}

/** N and Z of a logical result (in the width's result local), C = V = 0. */
function logicFlags(u: Unit, w: Width): void {
  const c = u.c;
  u.setState(N_OFF, () => w.msb(u, w.r));
  u.setState(Z_OFF, () => {
    c.get(w.r);
    c.op(w.eqz);
  });
  u.setState(C_OFF, () => c.i32(0));
  u.setState(V_OFF, () => c.i32(0));
}

/**
 * Rd = a op b, with flags when `setFlags`: `a` and `b` push the operands; Rd 31 is XZR, or SP when
 * `spDest`.
 */
function addSub(
  u: Unit,
  w: Width,
  d: number,
  a: () => void,
  b: () => void,
  sub: boolean,
  setFlags: boolean,
  spDest: boolean,
): void {
  const c = u.c;
  if (!setFlags) {
    w.wr(
      u,
      d,
      () => {
        a();
        b();
        c.op(sub ? w.sub : w.add);
      },
      spDest,
    );
    return;
  }
  a();
  c.set(w.a);
  b();
  c.set(w.b);
  c.get(w.a);
  c.get(w.b);
  c.op(sub ? w.sub : w.add);
  c.set(w.r);
  flags(u, w, sub);
  w.wr(u, d, () => c.get(w.r));
  if (sub) Object.assign(u.cmp, { at: u.i, wide: w.wide, a: w.a, b: w.b });
}

// ---- add/subtract ----

def(
  [
    'ADD_sreg_x',
    'SUB_sreg_x',
    'ADDS_sreg_x',
    'SUBS_sreg_x',
    'ADD_sreg_w',
    'SUB_sreg_w',
    'ADDS_sreg_w',
    'SUBS_sreg_w',
  ],
  (u, insn) => {
    const type = (insn >>> 22) & 3;
    if (type === 3) return false;
    const w = widthOf(insn);
    const { d, n, m } = fields(insn);
    const amt = (insn >>> 10) & (w.bits - 1);
    addSub(
      u,
      w,
      d,
      () => w.rd(u, n),
      () => shifted(u, w, m, type, amt),
      (insn & 0x40000000) !== 0,
      (insn & 0x20000000) !== 0,
      false,
    );
    return true;
  },
);

const imm12 = (insn: number): number =>
  (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;

def(
  [
    'ADD_imm_x',
    'SUB_imm_x',
    'ADDS_imm_x',
    'SUBS_imm_x',
    'ADD_imm_w',
    'SUB_imm_w',
    'ADDS_imm_w',
    'SUBS_imm_w',
  ],
  (u, insn) => {
    const w = widthOf(insn);
    const { d, n } = fields(insn);
    const s = (insn & 0x20000000) !== 0;
    addSub(
      u,
      w,
      d,
      () => w.rd(u, n, true),
      () => w.k(u, imm12(insn)),
      (insn & 0x40000000) !== 0,
      s,
      !s,
    );
    return true;
  },
);

/** Push Xm extended (option) and shifted left by `sh`. */
function extended(u: Unit, m: number, option: number, sh: number): void {
  const c = u.c;
  u.rx(m);
  switch (option) {
    case 0:
      c.i64(0xff);
      c.op(Op.i64_and);
      break;
    case 1:
      c.i64(0xffff);
      c.op(Op.i64_and);
      break;
    case 2:
      c.i64(-1, 0);
      c.op(Op.i64_and);
      break;
    case 4:
      c.op(0xc2); // i64.extend8_s
      break;
    case 5:
      c.op(0xc3); // i64.extend16_s
      break;
    case 6:
      c.op(Op.i64_extend32_s);
      break;
    default:
      break;
  }
  if (sh !== 0) {
    c.i64(sh);
    c.op(Op.i64_shl);
  }
}

def(['ADDSUB_ext_x'], (u, insn) => {
  const sh = (insn >>> 10) & 7;
  if (sh > 4) return false;
  const { d, n, m } = fields(insn);
  const s = (insn & 0x20000000) !== 0;
  addSub(
    u,
    X,
    d,
    () => u.rx(n, true),
    () => extended(u, m, (insn >>> 13) & 7, sh),
    (insn & 0x40000000) !== 0,
    s,
    !s,
  );
  return true;
});

def(['ADDSUB_ext_w'], (u, insn) => {
  const sh = (insn >>> 10) & 7;
  if (sh > 4) return false;
  const { d, n, m } = fields(insn);
  const s = (insn & 0x20000000) !== 0;
  const option = (insn >>> 13) & 7;
  const b = (): void => {
    const c = u.c;
    u.rw(m);
    if (option === 0 || option === 1) {
      c.i32(option === 0 ? 0xff : 0xffff);
      c.op(Op.i32_and);
    } else if (option === 4)
      c.op(0xc0); // i32.extend8_s
    else if (option === 5) c.op(0xc1); // i32.extend16_s
    if (sh !== 0) {
      c.i32(sh);
      c.op(Op.i32_shl);
    }
  };
  addSub(u, W, d, () => u.rw(n, true), b, (insn & 0x40000000) !== 0, s, !s);
  return true;
});

def(['ADC_SBC_x', 'ADC_SBC_w'], (u, insn) => {
  const w = (insn & 0x80000000) !== 0 ? X : W;
  const { d, n, m } = fields(insn);
  const c = u.c;
  w.rd(u, n);
  c.set(w.a);
  w.rd(u, m);
  if ((insn & 0x40000000) !== 0) {
    w.k(u, -1);
    c.op(w.xor);
  }
  c.set(w.b);
  u.state(C_OFF);
  c.set(W3);
  c.get(w.a);
  c.get(w.b);
  c.op(w.add);
  c.get(W3);
  if (w.wide) c.op(Op.i64_extend_i32_u);
  c.op(w.add);
  c.set(w.r);
  if ((insn & 0x20000000) !== 0) flags(u, w, false, true);
  w.wr(u, d, () => c.get(w.r));
  return true;
});

def(['CCMP_CCMN'], (u, insn) => {
  const c = u.c;
  const wide = (insn & 0x80000000) !== 0;
  const sub = (insn & 0x40000000) !== 0;
  const n = (insn >>> 5) & 31;
  const m = (insn >>> 16) & 31;
  const imm = (insn & 0x800) !== 0;
  const nzcv = insn & 15;
  condition(u, (insn >>> 12) & 15);
  u.ifArm();
  const w = wide ? X : W;
  w.rd(u, n);
  c.set(w.a);
  if (imm) w.k(u, m);
  else w.rd(u, m);
  c.set(w.b);
  c.get(w.a);
  c.get(w.b);
  c.op(sub ? w.sub : w.add);
  c.set(w.r);
  flags(u, w, sub);
  u.elseArm();
  u.setState(N_OFF, () => c.i32((nzcv >>> 3) & 1));
  u.setState(Z_OFF, () => c.i32((nzcv >>> 2) & 1));
  u.setState(C_OFF, () => c.i32((nzcv >>> 1) & 1));
  u.setState(V_OFF, () => c.i32(nzcv & 1));
  u.endArm();
  return true;
});

// ---- logical ----

def(['LOGIC_reg_x', 'LOGIC_reg_w'], (u, insn) => {
  const w = widthOf(insn);
  const { d, n, m } = fields(insn);
  const c = u.c;
  const opc = (insn >>> 29) & 3;
  const value = (): void => {
    w.rd(u, n);
    shifted(u, w, m, (insn >>> 22) & 3, (insn >>> 10) & (w.bits - 1));
    if ((insn & 0x200000) !== 0) {
      w.k(u, -1);
      c.op(w.xor);
    }
    c.op(w.logic[opc]);
  };
  if (opc !== 3) {
    w.wr(u, d, value);
    return true;
  }
  value();
  c.set(w.r);
  logicFlags(u, w);
  w.wr(u, d, () => c.get(w.r));
  return true;
});

def(['LOGIC_imm_x', 'LOGIC_imm_w'], (u, insn) => {
  const idx = (insn >>> 10) & 0x1fff;
  const w = widthOf(insn);
  if (BITMASK_OK[idx] === 0 || (!w.wide && (insn & 0x400000) !== 0)) return false;
  const { d, n } = fields(insn);
  const c = u.c;
  const opc = (insn >>> 29) & 3;
  const value = (): void => {
    w.rd(u, n);
    w.k(u, BITMASK_LO[idx], BITMASK_HI[idx]);
    c.op(w.logic[opc]);
  };
  if (opc !== 3) {
    w.wr(u, d, value, true);
    return true;
  }
  value();
  c.set(w.r);
  logicFlags(u, w);
  w.wr(u, d, () => c.get(w.r));
  return true;
});

def(['MOV_reg_x'], (u, insn) => {
  const { d, m } = fields(insn);
  u.setX(d, () => u.rx(m));
  return true;
});

def(['MOV_reg_w'], (u, insn) => {
  const { d, m } = fields(insn);
  u.setW(d, () => u.rw(m));
  return true;
});

// ---- move wide ----

def(['MOVZ_x', 'MOVN_x'], (u, insn) => {
  const d = insn & 31;
  const hw = (insn >>> 21) & 3;
  const imm = (insn >>> 5) & 0xffff;
  let lo = hw === 0 ? imm : hw === 1 ? imm << 16 : 0;
  let hi = hw === 2 ? imm : hw === 3 ? imm << 16 : 0;
  if ((insn & 0x40000000) === 0) {
    lo = ~lo;
    hi = ~hi;
  }
  u.setX(d, () => u.c.i64(lo | 0, hi | 0));
  return true;
});

def(['MOVZ_w', 'MOVN_w'], (u, insn) => {
  if ((insn & 0x400000) !== 0) return false; // hw >= 2: UNDEF in 32 bits
  const d = insn & 31;
  const v = ((insn >>> 5) & 0xffff) << ((insn >>> 21) & 1 ? 16 : 0);
  u.setW(d, () => u.c.i32((insn & 0x40000000) === 0 ? ~v : v | 0));
  return true;
});

def(['MOVK_x', 'MOVK_w'], (u, insn) => {
  const w = widthOf(insn);
  if (!w.wide && (insn & 0x400000) !== 0) return false;
  const d = insn & 31;
  const sh = ((insn >>> 21) & 3) * 16;
  const imm = (insn >>> 5) & 0xffff;
  const c = u.c;
  // Rd = (Rd & ~(0xffff << sh)) | (imm << sh), the constants as int32 halves
  const high = sh >= 32;
  const field = (v: number): number => v << (sh & 31);
  w.wr(u, d, () => {
    w.rd(u, d);
    w.k(u, high ? -1 : ~field(0xffff), high ? ~field(0xffff) : -1);
    c.op(w.and);
    w.k(u, high ? 0 : field(imm), high ? field(imm) : 0);
    c.op(w.logic[1]);
  });
  return true;
});

// ---- PC-relative ----

def(['ADR', 'ADRP'], (u, insn) => {
  const d = insn & 31;
  const imm = (((insn << 8) >> 13) << 2) | ((insn >>> 29) & 3); // immhi:immlo, signed
  const c = u.c;
  u.setX(d, () => {
    u.pcOf(u.i);
    if ((insn & 0x80000000) !== 0) {
      c.i64(-4096);
      c.op(Op.i64_and);
      c.i64(imm << 12, imm >> 20);
    } else c.i64(imm);
    c.op(Op.i64_add);
  });
  return true;
});

// ---- conditional select ----

def(['CSEL_x', 'CSEL_w'], (u, insn) => {
  const w = widthOf(insn);
  const { d, n, m } = fields(insn);
  const c = u.c;
  w.wr(u, d, () => {
    w.rd(u, n);
    w.rd(u, m);
    if ((insn & 0x40000000) !== 0) {
      w.k(u, -1); // CSINV, CSNEG
      c.op(w.xor);
    }
    if ((insn & 0x400) !== 0) {
      w.k(u, 1); // CSINC, CSNEG
      c.op(w.add);
    }
    condition(u, (insn >>> 12) & 15);
    c.op(Op.select);
  });
  return true;
});

// ---- multiply and divide ----

def(['MADD_MSUB_x', 'MADD_MSUB_w'], (u, insn) => {
  const w = widthOf(insn);
  const { d, n, m } = fields(insn);
  const c = u.c;
  w.wr(u, d, () => {
    w.rd(u, (insn >>> 10) & 31);
    w.rd(u, n);
    w.rd(u, m);
    c.op(w.mul);
    c.op((insn & 0x8000) !== 0 ? w.sub : w.add);
  });
  return true;
});

// SMADDL, SMSUBL, UMADDL, UMSUBL: Xa +/- the 64-bit product of Wn and Wm.
def(['SMADDL_SMSUBL', 'UMADDL_UMSUBL'], (u, insn) => {
  const { d, n, m } = fields(insn);
  const ext = (insn & 0x800000) !== 0 ? Op.i64_extend_i32_u : Op.i64_extend_i32_s;
  const c = u.c;
  X.wr(u, d, () => {
    X.rd(u, (insn >>> 10) & 31);
    W.rd(u, n);
    c.op(ext);
    W.rd(u, m);
    c.op(ext);
    c.op(Op.i64_mul);
    c.op((insn & 0x8000) !== 0 ? Op.i64_sub : Op.i64_add);
  });
  return true;
});

// SMULH, UMULH: the high 64 bits of the 128-bit product, from 32-bit halves (wasm has no wider
// multiply): with a = ah:al and b = bh:bl, t = ah*bl + (al*bl >>> 32) and s = al*bh + (t & 0xffffffff)
// cannot carry out of 64 bits, and the high half is ah*bh + (t >>> 32) + (s >>> 32) (Hacker's
// Delight's mulhu); signed, less b where a < 0 and less a where b < 0.
def(['SMULH', 'UMULH'], (u, insn) => {
  const { d, n, m } = fields(insn);
  const signed = (insn & 0x800000) === 0;
  const c = u.c;
  const half = (x: number, high: boolean): void => {
    c.get(x);
    if (high) {
      c.i64(32);
      c.op(Op.i64_shr_u);
    } else {
      c.i64(-1, 0);
      c.op(Op.i64_and);
    }
  };
  u.setX(d, () => {
    u.rx(n);
    c.set(T0);
    u.rx(m);
    c.set(T1);
    // t = ah*bl + (al*bl >>> 32)
    half(T0, true);
    half(T1, false);
    c.op(Op.i64_mul);
    half(T0, false);
    half(T1, false);
    c.op(Op.i64_mul);
    c.i64(32);
    c.op(Op.i64_shr_u);
    c.op(Op.i64_add);
    c.set(T2);
    // s = al*bh + (t & 0xffffffff)
    half(T0, false);
    half(T1, true);
    c.op(Op.i64_mul);
    half(T2, false);
    c.op(Op.i64_add);
    c.set(T3);
    half(T0, true);
    half(T1, true);
    c.op(Op.i64_mul);
    half(T2, true);
    c.op(Op.i64_add);
    half(T3, true);
    c.op(Op.i64_add);
    if (signed) {
      for (const [x, y] of [
        [T0, T1],
        [T1, T0],
      ]) {
        c.get(x);
        c.i64(63);
        c.op(Op.i64_shr_s);
        c.get(y);
        c.op(Op.i64_and);
        c.op(Op.i64_sub);
      }
    }
  });
  return true;
});

def(['UDIV_x', 'SDIV_x', 'UDIV_w', 'SDIV_w'], (u, insn) => {
  const w = widthOf(insn);
  const { d, n, m } = fields(insn);
  const signed = (insn & 0x400) !== 0;
  const c = u.c;
  w.wr(u, d, () => {
    w.rd(u, m);
    c.set(w.b);
    w.rd(u, n);
    c.set(w.a);
    // a divisor of 0 gives 0
    c.get(w.b);
    c.op(w.eqz);
    c.if(w.type);
    w.k(u, 0);
    c.else();
    if (signed) {
      // the most negative value / -1 overflows to itself (wasm would trap): compute it as 0 - n
      c.get(w.b);
      w.k(u, -1);
      c.op(w.eq);
      c.if(w.type);
      w.k(u, 0);
      c.get(w.a);
      c.op(w.sub);
      c.else();
      c.get(w.a);
      c.get(w.b);
      c.op(w.divS);
      c.end();
    } else {
      c.get(w.a);
      c.get(w.b);
      c.op(w.divU);
    }
    c.end();
  });
  return true;
});

def(['SHIFTV_x', 'SHIFTV_w'], (u, insn) => {
  const w = widthOf(insn);
  const { d, n, m } = fields(insn);
  w.wr(u, d, () => {
    w.rd(u, n);
    w.rd(u, m); // the amount is taken modulo the width, as wasm's shifts do
    u.c.op(w.shifts[(insn >>> 10) & 3]);
  });
  return true;
});

// ---- bitfield moves and extract ----

def(['UBFM_x', 'SBFM_x', 'UBFM_w', 'SBFM_w'], (u, insn) => {
  const w = widthOf(insn);
  const immr = (insn >>> 16) & 63;
  const imms = (insn >>> 10) & 63;
  // N must equal sf; 32-bit forms take 5-bit fields
  if (((insn >>> 22) & 1) !== (w.wide ? 1 : 0) || immr >= w.bits || imms >= w.bits) return false;
  const { d, n } = fields(insn);
  const shr = (insn & 0x40000000) === 0 ? w.shifts[2] : w.shifts[1]; // SBFM: arithmetic
  const top = w.bits - 1;
  const c = u.c;
  w.wr(u, d, () => {
    w.rd(u, n);
    if (imms >= immr) {
      // bits imms..immr moved to the bottom, extended
      w.k(u, top - imms);
      c.op(w.shifts[0]);
      w.k(u, top - imms + immr);
      c.op(shr);
    } else {
      // bits imms..0, extended, moved up to bits - immr
      const f = imms + 1;
      w.k(u, w.bits - f);
      c.op(w.shifts[0]);
      w.k(u, w.bits - f);
      c.op(shr);
      w.k(u, w.bits - immr);
      c.op(w.shifts[0]);
    }
  });
  return true;
});

// BFM (BFI, BFXIL): the field of Rn, rotated into place, replaces those bits of Rd.
def(['BFM_x', 'BFM_w'], (u, insn) => {
  const w = widthOf(insn);
  const immr = (insn >>> 16) & 63;
  const imms = (insn >>> 10) & 63;
  if (((insn >>> 22) & 1) !== (w.wide ? 1 : 0) || immr >= w.bits || imms >= w.bits) return false;
  const { d, n } = fields(insn);
  // bits imms..immr to the bottom, or bits imms..0 up to bits - immr: Rn rotated right by immr, masked
  const width = imms >= immr ? imms - immr + 1 : imms + 1;
  const mask = ((1n << BigInt(width)) - 1n) << BigInt(imms >= immr ? 0 : w.bits - immr);
  const lo = Number(mask & 0xffffffffn) | 0;
  const hi = Number(mask >> 32n) | 0;
  const c = u.c;
  w.wr(u, d, () => {
    w.rd(u, d);
    w.k(u, ~lo, ~hi);
    c.op(w.and);
    w.rd(u, n);
    if (immr !== 0) {
      w.k(u, immr);
      c.op(w.shifts[3]);
    }
    w.k(u, lo, hi);
    c.op(w.and);
    c.op(w.logic[1]);
  });
  return true;
});

def(['EXTR_x', 'EXTR_w'], (u, insn) => {
  const w = widthOf(insn);
  if (((insn >>> 22) & 1) !== (w.wide ? 1 : 0)) return false;
  const { d, n, m } = fields(insn);
  const lsb = (insn >>> 10) & 63;
  const c = u.c;
  w.wr(u, d, () => {
    w.rd(u, m);
    if (lsb === 0) return;
    w.k(u, lsb);
    c.op(w.shifts[1]);
    w.rd(u, n);
    w.k(u, w.bits - lsb);
    c.op(w.shifts[0]);
    c.op(w.logic[1]);
  });
  return true;
});

// ---- loads and stores (general registers) ----

/**
 * The access of a load/store: `size` log2 bytes, `opc` (0 store, 1 load, 2 signed load to X, 3
 * signed load to W) on the address in T0. Returns false for the encodings left to the handler.
 */
function access(u: Unit, size: number, opc: number, t: number, unpriv = false): boolean {
  const c = u.c;
  const bytes = 1 << size;
  if (opc === 0) {
    u.store(T0, bytes, () => u.rx(t), unpriv);
    return true;
  }
  if (opc === 1) {
    u.load(T0, bytes, unpriv);
    c.set(T1);
    u.setX(t, () => c.get(T1));
    return true;
  }
  if (opc === 2 && size < 3) {
    u.load(T0, bytes, unpriv);
    c.op([0xc2, 0xc3, Op.i64_extend32_s][size]); // i64.extend8_s / 16_s / 32_s
    c.set(T1);
    u.setX(t, () => c.get(T1));
    return true;
  }
  if (opc === 3 && size < 2) {
    u.load(T0, bytes, unpriv);
    c.op(size === 0 ? 0xc2 : 0xc3);
    c.i64(-1, 0);
    c.op(Op.i64_and);
    c.set(T1);
    u.setX(t, () => c.get(T1));
    return true;
  }
  return false;
}

/**
 * T0 = Xn (SP for 31) + off, after the SP alignment check (`deferred`: made by the access load() or
 * store() emits next, see Unit.spCheck).
 */
function addrImm(u: Unit, n: number, off: number, deferred = true): void {
  u.spCheck(n, deferred);
  u.rx(n, true);
  if (off !== 0) {
    u.c.i64(off);
    u.c.op(Op.i64_add);
  }
  u.c.set(L_T0);
}

/** i64 local `to` = i64 local `from` + k. */
function plus(u: Unit, to: number, from: number, k: number): void {
  u.c.get(from);
  u.c.i64(k);
  u.c.op(Op.i64_add);
  u.c.set(to);
}

/**
 * T0 = Xn (SP for 31) + Xm extended by `option`, shifted by `scale` where S (bit 12) is set: the
 * register-offset forms, after the SP alignment check (made by the access that comes next).
 */
function addrReg(u: Unit, insn: number, option: number, scale: number): void {
  const { n, m } = fields(insn);
  u.spCheck(n, true);
  u.rx(n, true);
  extended(u, m, option, (insn & 0x1000) !== 0 ? scale : 0);
  u.c.op(Op.i64_add);
  u.c.set(L_T0);
}

/** Xn (SP for 31) += off. */
function writeback(u: Unit, n: number, off: number): void {
  u.setX(
    n,
    () => {
      u.rx(n, true);
      u.c.i64(off);
      u.c.op(Op.i64_add);
    },
    true,
  );
}

def(
  ['LDST_uimm', 'LDR_X_uimm', 'STR_X_uimm', 'LDR_W_uimm', 'STR_W_uimm', 'LDRB_uimm', 'STRB_uimm'],
  (u, insn) => {
    const size = insn >>> 30;
    const opc = (insn >>> 22) & 3;
    if (size === 3 && opc === 2) return true; // PRFM: a hint, nothing to do (as the handler)
    if (opc === 3 && size >= 2) return false; // unallocated
    addrImm(u, (insn >>> 5) & 31, ((insn >>> 10) & 0xfff) << size);
    return access(u, size, opc, insn & 31);
  },
);

// LDAR/STLR: ordinary accesses that must be naturally aligned (where the address is not, the handler
// raises the alignment fault). The host keeps a thread's loads and stores in order except a later
// load before an earlier store, so a store-release is followed by a fence: a later LDAR does not
// pass it (Arm's release-acquire is sequentially consistent) when vCPUs run on several threads.
def(['LDAR_STLR'], (u, insn) => {
  const size = insn >>> 30;
  addrImm(u, (insn >>> 5) & 31, 0, false); // the alignment check below comes after SP's
  if (size !== 0) {
    u.c.get(T0);
    u.c.op(Op.i32_wrap_i64);
    u.c.i32((1 << size) - 1);
    u.c.op(Op.i32_and);
    u.raiseIf();
  }
  const load = (insn >>> 22) & 1;
  if (!access(u, size, load, insn & 31)) return false;
  if (load === 0) u.c.fence();
  return true;
});

def(
  ['LDST_imm9', 'LDRX_imm9', 'STRX_imm9', 'LDRW_imm9', 'STRW_imm9', 'LDRB_imm9', 'STRB_imm9'],
  (u, insn) => {
    const size = insn >>> 30;
    const opc = (insn >>> 22) & 3;
    const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post-index, 2 unprivileged, 3 pre-index
    if (size === 3 && opc === 2 && mode === 0) return true; // PRFUM: a hint
    if (opc >= 2 && (size === 3 || (opc === 3 && size === 2))) return false; // unallocated
    const n = (insn >>> 5) & 31;
    const t = insn & 31;
    if ((mode & 1) !== 0 && n === t && n !== 31) return false;
    const imm = (insn << 11) >> 23;
    addrImm(u, n, mode === 1 ? 0 : imm);
    access(u, size, opc, t, mode === 2); // mode 2: LDTR/STTR, with EL0's permissions
    if ((mode & 1) !== 0) writeback(u, n, imm);
    return true;
  },
);

def(['LDST_reg', 'LDRX_reg', 'STRX_reg', 'LDRW_reg', 'STRW_reg', 'LDRB_reg', 'STRB_reg'], (u, insn) => {
  const size = insn >>> 30;
  const opc = (insn >>> 22) & 3;
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0 || (opc === 3 && size >= 2)) return false; // unallocated
  if (size === 3 && opc === 2) return true; // PRFM (register): a hint
  addrReg(u, insn, option, size);
  return access(u, size, opc, insn & 31);
});

def(['LDST_pair', 'LDP_X', 'STP_X', 'LDP_X_wb', 'STP_X_wb'], (u, insn) => {
  const opc = insn >>> 30;
  const load = (insn & 0x400000) !== 0;
  if (opc === 3 || (opc === 1 && (!load || (insn & 0x3800000) === 0))) return false; // no STPSW, no LDNPSW
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  const kind = (insn >>> 23) & 7; // 0 non-temporal, 1 post-index, 2 offset, 3 pre-index
  const wb = kind === 1 || kind === 3;
  if (load && t === t2) return false;
  if (wb && n !== 31 && (n === t || n === t2)) return false;
  const size = opc === 2 ? 3 : 2;
  const imm = ((insn << 10) >> 25) << size;
  const c = u.c;
  addrImm(u, n, kind === 1 ? 0 : imm);
  const bytes = 1 << size;
  if (load) {
    u.load(T0, bytes);
    if (opc === 1) c.op(Op.i64_extend32_s);
    c.set(T2);
    plus(u, T0, T0, bytes);
    u.load(T0, bytes);
    if (opc === 1) c.op(Op.i64_extend32_s);
    c.set(T3);
    if (opc === 1) {
      u.setX(t, () => c.get(T2));
      u.setX(t2, () => c.get(T3));
    } else {
      u.setX(t, () => c.get(T2));
      u.setX(t2, () => c.get(T3));
    }
  } else {
    u.store(T0, bytes, () => u.rx(t));
    plus(u, T0, T0, bytes);
    u.store(T0, bytes, () => u.rx(t2));
  }
  if (wb) writeback(u, n, imm);
  return true;
});

// LDXR/STXR (and LDAXR/STLXR: one thread runs every vCPU, so ordering comes free) through the
// runtime's ldx/stx, which keep the exclusive monitor in the state block as the handlers do.
def(['LDXR'], (u, insn) => {
  const size = insn >>> 30;
  const n = (insn >>> 5) & 31;
  u.spCheck(n);
  u.rx(n, true);
  u.c.set(T0);
  u.loadExclusive(T0, 1 << size);
  u.c.set(T1);
  u.setX(insn & 31, () => u.c.get(T1));
  return true;
});

def(['STXR'], (u, insn) => {
  const size = insn >>> 30;
  const { n, m: s } = fields(insn);
  const t = insn & 31;
  if (s === t || (s === n && n !== 31)) return false; // UNDEF (the handler's choice)
  u.spCheck(n);
  u.rx(n, true);
  u.c.set(T0);
  u.storeExclusive(T0, 1 << size, () => u.rx(t));
  u.c.op(Op.i64_extend_i32_u);
  u.c.set(T1);
  u.setX(s, () => u.c.get(T1), false);
  return true;
});

// ---- loads and stores of SIMD & FP registers (the V registers live in the state block) ----

/** Where FP/SIMD is disabled at the unit's EL (CPACR_EL1.FPEN), the handler raises the trap. */
function fpCheck(u: Unit): void {
  const c = u.c;
  c.get(L_ST);
  c.get(L_ELX); // EL << 12: EL * 4 is the byte offset of the EL's word
  c.i32(10);
  c.op(Op.i32_shr_u);
  c.op(Op.i32_add);
  c.mem(Op.i32_load, 2, FPEN_OFF);
  c.op(Op.i32_eqz);
  u.raiseIf();
}

/** Byte offset in the state block of V[t] (t = 32: the scratch slot). */
const vOff = (t: number): number => VREG_OFF + 16 * t;

/**
 * Load 2^scale bytes (scale 0..4) at the address in T0 into V[t], zeroing the rest of it; a Q
 * register as two 8-byte accesses, both read before the register is written (as the handler).
 */
function vLoad(u: Unit, t: number, scale: number): void {
  const c = u.c;
  if (scale < 4) {
    u.load(T0, 1 << scale);
    c.set(T2);
    c.i64(0);
    c.set(T3);
  } else {
    u.load(T0, 8);
    c.set(T2);
    plus(u, T1, T0, 8);
    u.load(T1, 8);
    c.set(T3);
  }
  c.get(L_ST);
  c.get(T2);
  c.mem(Op.i64_store, 3, vOff(t));
  c.get(L_ST);
  c.get(T3);
  c.mem(Op.i64_store, 3, vOff(t) + 8);
}

/** Store the low 2^scale bytes of V[t] at the address in T0 (a Q register: low half first). */
function vStore(u: Unit, t: number, scale: number): void {
  const c = u.c;
  const half = (off: number) => (): void => {
    c.get(L_ST);
    c.mem(Op.i64_load, 3, off);
  };
  if (scale < 4) {
    u.store(T0, 1 << scale, half(vOff(t)));
    return;
  }
  u.store(T0, 8, half(vOff(t)));
  plus(u, T1, T0, 8);
  u.store(T1, 8, half(vOff(t) + 8));
}

/** V[Rt] loaded from or stored to the address in T0 (bit 22: load), 2^scale bytes. */
function vAccess(u: Unit, insn: number, scale: number): void {
  if ((insn & 0x400000) !== 0) vLoad(u, insn & 31, scale);
  else vStore(u, insn & 31, scale);
}

def(['LDST_uimm_fp'], (u, insn) => {
  const scale = scaleOf(insn);
  if (scale < 0) return false;
  fpCheck(u);
  addrImm(u, (insn >>> 5) & 31, ((insn >>> 10) & 0xfff) << scale);
  vAccess(u, insn, scale);
  return true;
});

def(['LDST_imm9_fp'], (u, insn) => {
  const scale = scaleOf(insn);
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post-index, 3 pre-index (2 is unallocated)
  if (scale < 0 || mode === 2) return false;
  fpCheck(u);
  const n = (insn >>> 5) & 31;
  const imm = (insn << 11) >> 23;
  addrImm(u, n, mode === 1 ? 0 : imm);
  vAccess(u, insn, scale);
  if (mode !== 0) writeback(u, n, imm);
  return true;
});

def(['LDST_reg_fp'], (u, insn) => {
  const scale = scaleOf(insn);
  const option = (insn >>> 13) & 7;
  if (scale < 0 || (option & 2) === 0) return false;
  fpCheck(u);
  addrReg(u, insn, option, scale);
  vAccess(u, insn, scale);
  return true;
});

// LDP/STP/LDNP/STNP of S/D/Q: a load reads both (the first into the scratch slot) before it writes
// either register, as the handler does.
def(['LDST_pair_fp'], (u, insn) => {
  const opc = insn >>> 30;
  const load = (insn & 0x400000) !== 0;
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  if (opc === 3 || (load && t === t2)) return false;
  fpCheck(u);
  const mode = (insn >>> 23) & 3; // 0 no-allocate, 1 post-index, 2 offset, 3 pre-index
  const scale = opc + 2;
  const imm = ((insn << 10) >> 25) << scale;
  const n = (insn >>> 5) & 31;
  addrImm(u, n, mode === 1 ? 0 : imm);
  const c = u.c;
  if (load) {
    vLoad(u, 32, scale);
    plus(u, T0, T0, 1 << scale);
    vLoad(u, t2, scale);
    for (const k of [0, 8]) {
      c.get(L_ST);
      c.get(L_ST);
      c.mem(Op.i64_load, 3, vOff(32) + k);
      c.mem(Op.i64_store, 3, vOff(t) + k);
    }
  } else {
    vStore(u, t, scale);
    plus(u, T0, T0, 1 << scale);
    vStore(u, t2, scale);
  }
  if ((mode & 1) !== 0) writeback(u, n, imm);
  return true;
});

// ---- SIMD: vector logic, and FMOV between general and D registers, on 64-bit halves of V ----

/** V[t]'s upper 64 bits = 0 (a write of a 64-bit vector, or of a D register). */
function vClearHigh(u: Unit, t: number): void {
  u.c.get(L_ST);
  u.c.i64(0);
  u.c.mem(Op.i64_store, 3, vOff(t) + 8);
}

/** Push the 64-bit half `h` (0 low, 1 high) of V[t]. */
function vHalf(u: Unit, t: number, h: number): void {
  u.c.get(L_ST);
  u.c.mem(Op.i64_load, 3, vOff(t) + 8 * h);
}

/** i64 NOT of the value on the stack. */
function not64(u: Unit): void {
  u.c.i64(-1);
  u.c.op(Op.i64_xor);
}

/**
 * AND BIC ORR ORN EOR BSL BIT BIF (vector), by U (bit 29) and size (bits 23:22) as the handler's
 * table (insn/simd_int.ts) lists them: each 64-bit half of Vd from the same half of Vn, Vm (and Vd
 * for the selects); Q = 0 clears the upper half. Halves are independent, so Vd may be Vn or Vm.
 */
def(['AND', 'BIC', 'ORR', 'ORN', 'EOR', 'BSL', 'BIT', 'BIF'], (u, insn) => {
  const { d, n, m } = fields(insn);
  const q = (insn >>> 30) & 1;
  const kind = (((insn >>> 29) & 1) << 2) | ((insn >>> 22) & 3);
  const c = u.c;
  fpCheck(u);
  // (a & x) | (b & ~x), each operand pushed by its function
  const select = (a: () => void, b: () => void, x: () => void): void => {
    a();
    x();
    c.op(Op.i64_and);
    b();
    x();
    not64(u);
    c.op(Op.i64_and);
    c.op(Op.i64_or);
  };
  for (let h = 0; h <= q; h++) {
    const vn = (): void => vHalf(u, n, h);
    const vm = (): void => vHalf(u, m, h);
    const vd = (): void => vHalf(u, d, h);
    c.get(L_ST);
    switch (kind) {
      case 0: // AND
      case 1: // BIC: n & ~m
      case 2: // ORR
      case 3: // ORN: n | ~m
        vn();
        vm();
        if (kind & 1) not64(u);
        c.op(kind < 2 ? Op.i64_and : Op.i64_or);
        break;
      case 4: // EOR
        vn();
        vm();
        c.op(Op.i64_xor);
        break;
      case 5: // BSL: (n & d) | (m & ~d)
        select(vn, vm, vd);
        break;
      case 6: // BIT: (n & m) | (d & ~m)
        select(vn, vd, vm);
        break;
      default: // BIF: (d & m) | (n & ~m)
        select(vd, vn, vm);
    }
    c.mem(Op.i64_store, 3, vOff(d) + 8 * h);
  }
  if (q === 0) vClearHigh(u, d);
  return true;
});

// ---- SIMD: whole-vector operations with WebAssembly SIMD (v128) ----

/** Push V[t] as a v128. */
function vPush(u: Unit, t: number): void {
  u.c.get(L_ST);
  u.c.simdMem(SimdOp.v128_load, 3, vOff(t));
}

/**
 * Vd = the v128 `value` pushes; with Q = 0 only its low 64 bits, the upper half cleared. `value` reads
 * its operands before the store, so Vd may be one of them.
 */
function vSet(u: Unit, d: number, q: number, value: () => void): void {
  const c = u.c;
  c.get(L_ST);
  value();
  c.simdMem(SimdOp.v128_store, 3, vOff(d));
  if (q === 0) vClearHigh(u, d);
}

/**
 * The byte lanes of elements 2k + `odd` (k = 0, 1, ...) of the concatenation Vm:Vn, Vn's elements
 * first, as i8x16.shuffle(Vn, Vm) takes them: with Q = 0 only the low 8 bytes of each count.
 */
function pairLanes(size: number, q: number, odd: number): number[] {
  const eb = 1 << size;
  const half = q ? 16 : 8; // bytes of each operand that count
  const out: number[] = [];
  for (let k = 0; out.length < 16; k++) {
    const x = (2 * k + odd) * eb; // byte offset in the concatenation
    // Vn's bytes are lanes 0-15, Vm's 16-31; past the concatenation (the cleared half): any lane.
    const from = x >= 2 * half ? -1 : x < half ? x : 16 + x - half;
    for (let b = 0; b < eb; b++) out.push(from < 0 ? 0 : from + b);
  }
  return out;
}

/**
 * Define the emitters of `table` (pattern name -> its WebAssembly SIMD op per lane size, bits 23:22):
 * Vd = op(the two v128 `operands` pushes). 64-bit lanes need Q = 1; there, and for lane sizes
 * WebAssembly has no op for, the handler runs (it traps with FP disabled, raises UNDEF or computes).
 */
function defVector(
  table: Record<string, readonly number[]>,
  operands: (u: Unit, n: number, m: number, size: number, q: number) => void,
): void {
  for (const [name, ops] of Object.entries(table)) {
    def([name], (u, insn) => {
      const { d, n, m } = fields(insn);
      const q = (insn >>> 30) & 1;
      const size = (insn >>> 22) & 3;
      if (size >= ops.length || (size === 3 && q === 0)) return HANDLER;
      fpCheck(u);
      vSet(u, d, q, () => {
        operands(u, n, m, size, q);
        u.c.simd(ops[size]);
      });
      return true;
    });
  }
}

// SMAXP SMINP UMAXP UMINP ADDP (vector): result element k is op(element 2k, element 2k + 1) of Vm:Vn,
// as two shuffles (the even and the odd elements) and one lane-wise op.
defVector(
  { SMAXP: SimdOp.max_s, SMINP: SimdOp.min_s, UMAXP: SimdOp.max_u, UMINP: SimdOp.min_u, ADDP: SimdOp.add },
  (u, n, m, size, q) => {
    for (const odd of [0, 1]) {
      vPush(u, n);
      vPush(u, m);
      u.c.shuffle(pairLanes(size, q, odd));
    }
  },
);

// Lane-wise Vd = op(Vn, Vm): CMEQ, CMGT, CMGE, CMHI, CMHS (all ones where the comparison holds; no
// unsigned 64-bit compare in WebAssembly) and ADD, SUB (vector).
defVector(
  {
    CMEQ_vec: SimdOp.eq,
    CMGT: SimdOp.gt_s,
    CMGE: SimdOp.ge_s,
    CMHI: SimdOp.gt_u,
    CMHS: SimdOp.ge_u,
    ADD_vec: SimdOp.add,
    SUB_vec: SimdOp.sub,
  },
  (u, n, m) => {
    vPush(u, n);
    vPush(u, m);
  },
);

// CMEQ (vector, zero): all ones in the lanes of Vn that are zero (the pattern fixes bits 20:16).
defVector({ CMEQ_zero_vec: SimdOp.eq }, (u, n) => {
  vPush(u, n);
  u.c.v128Zero();
});

/** The imm5 field (bits 20:16) of DUP, INS and UMOV: the lane size is its lowest set bit (imm5Size). */
const imm5 = (insn: number): number => (insn >>> 16) & 31;

// DUP Vd.T, Xn/Wn: every lane = the low lane-size bits of the register.
def(['DUP_general'], (u, insn) => {
  const { d, n } = fields(insn);
  const q = (insn >>> 30) & 1;
  const size = imm5Size(imm5(insn));
  if (size < 0 || (size === 3 && q === 0)) return HANDLER;
  fpCheck(u);
  vSet(u, d, q, () => {
    if (size === 3) u.rx(n);
    else u.rw(n);
    u.c.simd(SimdOp.splat[size]);
  });
  return true;
});

const LANE_LOAD = [Op.i64_load8_u, Op.i64_load16_u, Op.i64_load32_u, Op.i64_load];
const LANE_STORE = [Op.i64_store8, Op.i64_store16, Op.i64_store32, Op.i64_store];

// UMOV Wd/Xd, Vn.T[i]: one lane, zero-extended (Xd only for 64-bit lanes, which need Q = 1).
def(['UMOV'], (u, insn) => {
  const { d, n } = fields(insn);
  const q = (insn >>> 30) & 1;
  const size = imm5Size(imm5(insn));
  if (size < 0 || (q ? size !== 3 : size === 3)) return HANDLER;
  const idx = imm5(insn) >>> (size + 1);
  fpCheck(u);
  u.setX(d, () => {
    u.c.get(L_ST);
    u.c.mem(LANE_LOAD[size], size, vOff(n) + (idx << size));
  });
  return true;
});

// INS Vd.T[i], Xn/Wn: one lane from the register's low bits, the other lanes kept.
def(['INS_general'], (u, insn) => {
  const { d, n } = fields(insn);
  const size = imm5Size(imm5(insn));
  if (size < 0) return HANDLER;
  const idx = imm5(insn) >>> (size + 1);
  fpCheck(u);
  u.c.get(L_ST);
  u.rx(n);
  u.c.mem(LANE_STORE[size], size, vOff(d) + (idx << size));
  return true;
});

// FMOV Xd, Dn: the low 64 bits of Vn.
def(['FMOV_XD'], (u, insn) => {
  const { d, n } = fields(insn);
  fpCheck(u);
  u.setX(d, () => vHalf(u, n, 0));
  return true;
});

// FMOV Dd, Xn: Vd = Xn, upper half cleared.
def(['FMOV_DX'], (u, insn) => {
  const { d, n } = fields(insn);
  const c = u.c;
  fpCheck(u);
  c.get(L_ST);
  u.rx(n);
  c.mem(Op.i64_store, 3, vOff(d));
  vClearHigh(u, d);
  return true;
});

// ---- hints and barriers ----

// YIELD is a block ender with its handler (a vCPU sharing its thread gives up its slice: system.ts).
def(['NOP', 'HINT'], () => true);

// DMB, DSB: a full barrier, for vCPUs on other threads (threads/). Loads and stores of one thread are
// not reordered by the host compiler around an atomic.fence, and an x86 host reorders only a later
// load before an earlier store, which the fence forbids; weaker barriers (LD, ST) get the same.
// Where TLB or cache maintenance this vCPU broadcast waits for completion (SYNC_OFF), the handler
// completes it.
def(['DSB', 'DMB'], (u) => {
  u.c.fence();
  u.state(SYNC_OFF);
  u.ifArm();
  u.callHandlerPure();
  u.endArm();
  return true;
});

// ISB: what the handler does, the interpreter's fetch page forgotten (it is read again on the way
// back to the executor). A unit needs no more: the instructions that change what code means (TLBI,
// translation registers, IC, EL changes) leave it themselves.
def(['ISB'], (u) => {
  u.c.get(L_ST);
  u.c.i32(NO_FETCH_PAGE);
  u.c.mem(Op.i32_store, 2, FETCH_OFF);
  return true;
});

/** Push the i32 on the stack with its bytes reversed (uses W0). */
function bswap32(u: Unit): void {
  const c = u.c;
  c.set(W0);
  // rotr(x & 0x00ff00ff, 8) | rotl(x & 0xff00ff00, 8)
  c.get(W0);
  c.i32(0x00ff00ff);
  c.op(Op.i32_and);
  c.i32(8);
  c.op(Op.i32_rotr);
  c.get(W0);
  c.i32(0xff00ff00 | 0);
  c.op(Op.i32_and);
  c.i32(24);
  c.op(Op.i32_rotr);
  c.op(Op.i32_or);
}

// DP1: RBIT REV16 REV32 REV CLZ CLS (bits 12:10); the emitted ones are CLZ and the byte reversals of
// whole words.
def(['DP1_x_a', 'DP1_x_b', 'DP1_w_a', 'DP1_w_b', 'DP1_w_c'], (u, insn) => {
  const wide = (insn & 0x80000000) !== 0;
  const op = (insn >>> 10) & 7;
  const { d, n } = fields(insn);
  const c = u.c;
  if (op === 4) {
    const w = widthOf(insn);
    w.wr(u, d, () => {
      w.rd(u, n);
      c.op(w.clz);
    });
    return true;
  }
  if (!wide && op === 2) {
    u.setW(d, () => {
      u.rw(n);
      bswap32(u);
    });
    return true;
  }
  if (wide && (op === 2 || op === 3)) {
    // REV32: each word reversed in place; REV: also the words swapped
    u.rx(n);
    c.set(T0);
    u.setX(d, () => {
      c.get(T0);
      c.op(Op.i32_wrap_i64);
      bswap32(u);
      c.op(Op.i64_extend_i32_u);
      if (op === 3) {
        c.i64(32);
        c.op(Op.i64_shl);
      }
      c.get(T0);
      c.i64(32);
      c.op(Op.i64_shr_u);
      c.op(Op.i32_wrap_i64);
      bswap32(u);
      c.op(Op.i64_extend_i32_u);
      if (op === 2) {
        c.i64(32);
        c.op(Op.i64_shl);
      }
      c.op(Op.i64_or);
    });
    return true;
  }
  return HANDLER; // RBIT, REV16, CLS
});

// ---- system registers translated code reads and writes in the state block ----

/** Push 1 at EL0 (the unit's EL, as el << 12 in a local: a change of EL ends the unit). */
function atEl0(u: Unit): void {
  u.c.get(L_ELX);
  u.c.op(Op.i32_eqz);
}

/** Push 1 at EL0 or under PSTATE.SP 0 (where SP_EL0 is the SP in use). */
function atEl0OrSp0(u: Unit): void {
  atEl0(u);
  u.c.get(L_ST);
  u.c.mem(Op.i32_load, 2, SPSEL_OFF);
  u.c.op(Op.i32_eqz);
  u.c.op(Op.i32_or);
}

/**
 * MRS / MSR of a 64-bit register kept in the state block at `off`; `undef` pushes 1 where the access
 * is UNDEF (the handler raises it).
 */
function stateReg(off: number, write: boolean, undef?: (u: Unit) => void): Emit {
  return (u, insn) => {
    const c = u.c;
    const t = insn & 31;
    if (undef) {
      undef(u);
      u.raiseIf();
    }
    if (write) {
      c.get(L_ST);
      u.rx(t);
      c.mem(Op.i64_store, 3, off);
    } else {
      u.setX(t, () => {
        c.get(L_ST);
        c.mem(Op.i64_load, 3, off);
      });
    }
    return true;
  };
}

def(['MRS_TPIDR_EL0'], stateReg(TP_OFF, false));
def(['MSR_TPIDR_EL0'], stateReg(TP_OFF, true));
def(['MRS_TPIDRRO_EL0'], stateReg(TP_OFF + 8, false));
def(['MRS_TPIDR_EL1'], stateReg(TP_OFF + 16, false, atEl0));
def(['MSR_TPIDR_EL1'], stateReg(TP_OFF + 16, true, atEl0));
def(['MRS_SP_EL0'], stateReg(SPEL0_OFF, false, atEl0OrSp0));

/** Push 1 at EL0 where SCTLR_EL1 has bit `bit` clear (an EL0 control that is off). */
function el0Without(u: Unit, bit: number): void {
  const c = u.c;
  atEl0(u);
  sctlrClear(c, L_ST, bit);
  c.op(Op.i32_and);
}

// CTR_EL0: a constant; at EL0 without SCTLR_EL1.UCT the read traps (the handler raises it).
def(['MRS_CTR_EL0'], (u, insn) => {
  el0Without(u, SCTLR_UCT);
  u.raiseIf();
  u.setX(insn & 31, () => u.c.i64(Number(CTR_VALUE) | 0, 0));
  return true;
});

// DCZID_EL0: the block size, and DZP (bit 4) where DC ZVA is prohibited: at EL0 without SCTLR_EL1.DZE.
def(['MRS_DCZID_EL0'], (u, insn) => {
  const c = u.c;
  u.setX(insn & 31, () => {
    el0Without(u, SCTLR_DZE);
    c.i32(4);
    c.op(Op.i32_shl);
    c.i32(DCZID_BS);
    c.op(Op.i32_or);
    c.op(Op.i64_extend_i32_u);
  });
  return true;
});

/**
 * Cache maintenance by VA (DC CVAC..., IC IVAU) at Xt: push 1 where the handler would find nothing to
 * fault or trap, the TLB having the page readable at this EL (W0, W1: the VA's low half and the
 * entry, for ramAddr) and EL0 allowed by SCTLR_EL1.UCI.
 */
function cacheOpHits(u: Unit, insn: number): void {
  const c = u.c;
  u.rx(insn & 31);
  c.set(T0);
  hit(c, 1, 'rTag', W0, W1, L_ST, T0, L_ELX);
  el0Without(u, SCTLR_UCI);
  c.op(Op.i32_eqz);
  c.op(Op.i32_and);
}

// DAIF (PSTATE's masks, in the state block: DAIF_OFF): at EL0 without SCTLR_EL1.UMA both trap (the
// handler raises it). Linux saves and masks them around every critical section (local_irq_save:
// MRS DAIF, then MSR DAIFSet; about 99,000 and 55,000 in a boot, each a handler call before).
def(['MRS_DAIF'], (u, insn) => {
  el0Without(u, SCTLR_UMA);
  u.raiseIf();
  u.setX(insn & 31, () => {
    u.state(DAIF_OFF);
    u.c.i32(6);
    u.c.op(Op.i32_shl);
    u.c.op(Op.i64_extend_i32_u);
  });
  return true;
});

// MSR DAIFSet masks more, so no interrupt can come in: the block goes on (jit.ts STRAIGHT_SYSTEM).
// One that was pending before stays pending: the unit leaves at the next block boundary as it
// would have, and the executor finds it masked.
def(['MSR_DAIFSet'], (u, insn) => {
  const c = u.c;
  el0Without(u, SCTLR_UMA);
  u.raiseIf();
  c.get(L_ST);
  u.state(DAIF_OFF);
  c.i32((insn >>> 8) & 0xf);
  c.op(Op.i32_or);
  c.mem(Op.i32_store, 2, DAIF_OFF);
  return true;
});

/**
 * MSR DAIF, Xt: the new masks, and where they let a pending interrupt in (LINES_OFF: IRQ bit 0 under
 * I, FIQ bit 1 under F), the IRQ word set, so that the unit leaves at the block boundary right after
 * it, where the interpreter would take the interrupt (the handler path sets it the same way). Linux's
 * local_irq_restore (about 88,000 in a boot). At EL0 without SCTLR_EL1.UMA: the handler (it traps).
 */
defEnder(['MSR_DAIF'], (u, insn) => {
  const c = u.c;
  el0Without(u, SCTLR_UMA);
  c.tee(W0);
  c.op(Op.i32_eqz);
  u.ifArm();
  c.get(L_ST);
  u.rw(insn & 31);
  c.i32(6);
  c.op(Op.i32_shr_u);
  c.i32(0xf);
  c.op(Op.i32_and);
  c.tee(W1);
  c.mem(Op.i32_store, 2, DAIF_OFF);
  // The lines not masked: IRQ (bit 0) where I (bit 1 of DAIF) is clear, FIQ (bit 1) where F (bit 0) is.
  u.state(LINES_OFF);
  c.get(W1);
  c.i32(1);
  c.op(Op.i32_shr_u);
  c.get(W1);
  c.i32(1);
  c.op(Op.i32_shl);
  c.op(Op.i32_or);
  c.i32(3);
  c.op(Op.i32_and);
  c.i32(-1);
  c.op(Op.i32_xor);
  c.op(Op.i32_and);
  u.ifArm();
  c.get(L_ST);
  c.i32(1);
  c.mem(Op.i32_store, 2, IRQ_OFF);
  u.endArm();
  u.endArm();
  c.get(W0);
});

/**
 * IC IVAU: nothing to do where the TLB has the page readable at this EL (the handler's translation
 * and permission check), EL0 may (SCTLR_EL1.UCI) and no thread's code cache holds code of that
 * page (GuestMemory.codePages: then there is nothing to drop, here or on another thread). Linux
 * runs it over every line of code it writes or maps (about 98,000 in a boot), mostly on pages no
 * code was run from yet. Else the handler, which drops the page's code and may leave the unit.
 */
defEnder(['IC_IVAU'], (u, insn) => {
  const c = u.c;
  cacheOpHits(u, insn);
  u.ifArm(I32);
  ramAddr(c, W0, W1);
  c.set(W2);
  holdsCode(c, W2);
  u.elseArm();
  c.i32(1);
  u.endArm();
});

/**
 * DC CVAC, CVAU, CVAP, CIVAC: there is no data cache to clean, so nothing to do where the TLB has the
 * page readable at this EL (what the handler checks: the translation and EL0's read permission) and,
 * at EL0, SCTLR_EL1.UCI allows them; else the handler, which faults or traps there. Linux cleans each
 * page it maps executable line by line (about 100,000 in a boot).
 */
def(['DC_CVAC', 'DC_CVAU', 'DC_CVAP', 'DC_CIVAC'], (u, insn) => {
  const c = u.c;
  cacheOpHits(u, insn);
  c.op(Op.i32_eqz);
  u.ifArm();
  u.callHandlerPure();
  u.endArm();
  return true;
});

/**
 * DC ZVA: zero the DC_ZVA_BYTES block holding Xt. Inline above EL0 when the TLB has the page as
 * writable RAM without cached code; otherwise (EL0, where SCTLR_EL1.DZE decides; a TLB miss, a fault,
 * MMIO, a code page) the handler. Linux clears every page it hands out this way (clear_page), about
 * a million times in a boot.
 */
def(['DC_ZVA'], (u, insn) => {
  const c = u.c;
  u.rx(insn & 31);
  c.i64(-DC_ZVA_BYTES);
  c.op(Op.i64_and);
  c.set(T0);
  hit(c, 1, 'wTag', W0, W1, L_ST, T0, L_ELX); // aligned to the block, so to any size
  c.get(L_ELX);
  c.i32(0);
  c.op(Op.i32_ne);
  c.op(Op.i32_and);
  u.ifArm();
  ramAddr(c, W0, W1);
  c.set(W2);
  holdsCode(c, W2);
  u.ifArm();
  u.callHandlerPure(); // the handler drops the page's translations
  u.elseArm();
  for (let k = 0; k < DC_ZVA_BYTES; k += 8) {
    c.get(W2);
    c.i64(0);
    c.mem(Op.i64_store, 0, u.ramOffset + k);
  }
  u.endArm();
  u.elseArm();
  u.callHandlerPure();
  u.endArm();
  return true;
});

// AdvSIMD floating point (ARMv8.0-A, single and double precision; FP16 arithmetic is not advertised):
// vector and scalar three-same, two-register misc, across lanes, pairwise, by element, fixed-point
// conversions (shift by immediate) and FCVTN/FCVTL/FCVTXN. All arithmetic comes from ../fpu.ts, whose
// operands are element indices (single: 4*reg + lane into vF32/vU32, double: 2*reg + lane into vF64).
// Scratch (bytes 512..527): f32 indices 128..131, f64 indices 64..65, f16 indices 256..263.

import type { Pattern } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import * as fpu from '../fpu.js';
import { RD, RN, RM, QF, zeroHi } from './simd_int.js';

const patterns: Pattern[] = [];
const P = (bits: string, name: string, handler: (c: Arm64Cpu, i: number) => void): void => {
  patterns.push({ bits, name, handler });
};
const undef = (c: Arm64Cpu, i: number): never => c.undefinedInstruction(i);
const SZB = (i: number): number => (i >>> 22) & 1;

/** Element op on indices (d, n, m) of one width. */
type F3 = (c: Arm64Cpu, d: number, n: number, m: number) => void;
type F1 = (c: Arm64Cpu, d: number, n: number) => void;
interface Pair3 {
  s: F3;
  d: F3;
}
interface Pair1 {
  s: F1;
  d: F1;
}

function zeroScalar(c: Arm64Cpu, r: number, dbl: number): void {
  const u = c.vU32;
  if (!dbl) u[(r << 2) + 1] = 0;
  u[(r << 2) + 2] = 0;
  u[(r << 2) + 3] = 0;
}

// ---- element operations ----
const cmpS =
  (kind: number, abs: boolean): F3 =>
  (c, d, n, m) => {
    if (abs) {
      c.vU32[128] = c.vU32[n] & 0x7fffffff;
      c.vU32[129] = c.vU32[m] & 0x7fffffff;
      n = 128;
      m = 129;
    }
    c.vI32[d] = fpu.fpCompareCond32(c, n, m, kind) ? -1 : 0;
  };
const cmpD =
  (kind: number, abs: boolean): F3 =>
  (c, d, n, m) => {
    if (abs) {
      c.vU32[128] = c.vU32[2 * n];
      c.vU32[129] = c.vU32[2 * n + 1] & 0x7fffffff;
      c.vU32[130] = c.vU32[2 * m];
      c.vU32[131] = c.vU32[2 * m + 1] & 0x7fffffff;
      n = 64;
      m = 65;
    }
    const r = fpu.fpCompareCond64(c, n, m, kind) ? -1 : 0;
    c.vI32[2 * d] = r;
    c.vI32[2 * d + 1] = r;
  };
const CMP = (kind: number, abs = false): Pair3 => ({ s: cmpS(kind, abs), d: cmpD(kind, abs) });
const MM = (op: number): Pair3 => ({
  s: (c, d, n, m) => fpu.fpMinMax32(c, d, n, m, op),
  d: (c, d, n, m) => fpu.fpMinMax64(c, d, n, m, op),
});
const ADD: Pair3 = { s: fpu.fpAdd32, d: fpu.fpAdd64 };
const SUB: Pair3 = { s: fpu.fpSub32, d: fpu.fpSub64 };
const MUL: Pair3 = { s: (c, d, n, m) => fpu.fpMul32(c, d, n, m), d: (c, d, n, m) => fpu.fpMul64(c, d, n, m) };
const MULX: Pair3 = { s: fpu.fpMulX32, d: fpu.fpMulX64 };
const DIV: Pair3 = { s: fpu.fpDiv32, d: fpu.fpDiv64 };
const FMLA: Pair3 = {
  s: (c, d, n, m) => fpu.fpMulAdd32(c, d, d, n, m),
  d: (c, d, n, m) => fpu.fpMulAdd64(c, d, d, n, m),
};
const FMLS: Pair3 = {
  s: (c, d, n, m) => fpu.fpMulAdd32(c, d, d, n, m, false, true),
  d: (c, d, n, m) => fpu.fpMulAdd64(c, d, d, n, m, false, true),
};
const RECPS: Pair3 = { s: fpu.fpRecipStep32, d: fpu.fpRecipStep64 };
const RSQRTS: Pair3 = { s: fpu.fpRSqrtStep32, d: fpu.fpRSqrtStep64 };
const ABD: Pair3 = {
  s: (c, d, n, m) => {
    fpu.fpSub32(c, d, n, m);
    c.vU32[d] &= 0x7fffffff;
  },
  d: (c, d, n, m) => {
    fpu.fpSub64(c, d, n, m);
    c.vU32[2 * d + 1] &= 0x7fffffff;
  },
};

// ---- three same (vector and scalar) ----
// key: U, a (size<1>), opcode
const SAME3: [number, number, string, string, Pair3, 'el' | 'pair', boolean][] = [
  // U, a, opcode, name, op, shape, scalar form
  [0, 0, '11000', 'FMAXNM', MM(2), 'el', false],
  [0, 0, '11001', 'FMLA', FMLA, 'el', false],
  [0, 0, '11010', 'FADD', ADD, 'el', false],
  [0, 0, '11011', 'FMULX', MULX, 'el', true],
  [0, 0, '11100', 'FCMEQ', CMP(0), 'el', true],
  [0, 0, '11110', 'FMAX', MM(0), 'el', false],
  [0, 0, '11111', 'FRECPS', RECPS, 'el', true],
  [0, 1, '11000', 'FMINNM', MM(3), 'el', false],
  [0, 1, '11001', 'FMLS', FMLS, 'el', false],
  [0, 1, '11010', 'FSUB', SUB, 'el', false],
  [0, 1, '11110', 'FMIN', MM(1), 'el', false],
  [0, 1, '11111', 'FRSQRTS', RSQRTS, 'el', true],
  [1, 0, '11000', 'FMAXNMP', MM(2), 'pair', false],
  [1, 0, '11010', 'FADDP', ADD, 'pair', false],
  [1, 0, '11011', 'FMUL', MUL, 'el', false],
  [1, 0, '11100', 'FCMGE', CMP(1), 'el', true],
  [1, 0, '11101', 'FACGE', CMP(1, true), 'el', true],
  [1, 0, '11110', 'FMAXP', MM(0), 'pair', false],
  [1, 0, '11111', 'FDIV', DIV, 'el', false],
  [1, 1, '11000', 'FMINNMP', MM(3), 'pair', false],
  [1, 1, '11010', 'FABD', ABD, 'el', true],
  [1, 1, '11100', 'FCMGT', CMP(2), 'el', true],
  [1, 1, '11101', 'FACGT', CMP(2, true), 'el', true],
  [1, 1, '11110', 'FMINP', MM(1), 'pair', false],
];
for (const [u, a, opc, name, op, shape, scal] of SAME3) {
  P(`0 q ${u} 01110 ${a} z 1 mmmmm ${opc} 1 nnnnn ddddd`, `${name}_vec`, (c, i) => {
    c.checkFp();
    const q = QF(i);
    const dbl = SZB(i);
    if (dbl && !q) undef(c, i);
    const d = RD(i);
    const n = RN(i);
    const m = RM(i);
    if (dbl) {
      const f = op.d;
      if (shape === 'el') {
        f(c, 2 * d, 2 * n, 2 * m);
        f(c, 2 * d + 1, 2 * n + 1, 2 * m + 1);
      } else {
        f(c, 64, 2 * n, 2 * n + 1);
        f(c, 65, 2 * m, 2 * m + 1);
        c.vF64[2 * d] = c.vF64[64];
        c.vU32[4 * d] = c.vU32[128];
        c.vU32[4 * d + 1] = c.vU32[129];
        c.vU32[4 * d + 2] = c.vU32[130];
        c.vU32[4 * d + 3] = c.vU32[131];
      }
      return;
    }
    const f = op.s;
    const lanes = q ? 4 : 2;
    if (shape === 'el') {
      for (let k = 0; k < lanes; k++) f(c, 4 * d + k, 4 * n + k, 4 * m + k);
    } else {
      const half = lanes >> 1;
      for (let k = 0; k < half; k++) {
        f(c, 128 + k, 4 * n + 2 * k, 4 * n + 2 * k + 1);
        f(c, 128 + half + k, 4 * m + 2 * k, 4 * m + 2 * k + 1);
      }
      for (let k = 0; k < lanes; k++) c.vU32[4 * d + k] = c.vU32[128 + k];
    }
    if (!q) zeroHi(c, d);
  });
  if (scal)
    P(`01 ${u} 11110 ${a} z 1 mmmmm ${opc} 1 nnnnn ddddd`, `${name}_scalar`, (c, i) => {
      c.checkFp();
      const dbl = SZB(i);
      const d = RD(i);
      if (dbl) op.d(c, 2 * d, 2 * RN(i), 2 * RM(i));
      else op.s(c, 4 * d, 4 * RN(i), 4 * RM(i));
      zeroScalar(c, d, dbl);
    });
}

// ---- scalar pairwise ----
const SPAIR: [number, string, string, Pair3][] = [
  [0, '01100', 'FMAXNMP', MM(2)],
  [0, '01101', 'FADDP', ADD],
  [0, '01111', 'FMAXP', MM(0)],
  [1, '01100', 'FMINNMP', MM(3)],
  [1, '01111', 'FMINP', MM(1)],
];
for (const [a, opc, name, op] of SPAIR) {
  P(`01 1 11110 ${a} z 11000 ${opc} 10 nnnnn ddddd`, `${name}_scalar`, (c, i) => {
    c.checkFp();
    const dbl = SZB(i);
    const d = RD(i);
    const n = RN(i);
    if (dbl) op.d(c, 2 * d, 2 * n, 2 * n + 1);
    else op.s(c, 4 * d, 4 * n, 4 * n + 1);
    zeroScalar(c, d, dbl);
  });
}

// ---- across lanes (4S only) ----
for (const [a, opc, name, mop] of [
  [0, '01100', 'FMAXNMV', 2],
  [1, '01100', 'FMINNMV', 3],
  [0, '01111', 'FMAXV', 0],
  [1, '01111', 'FMINV', 1],
] as [number, string, string, number][]) {
  P(`0 1 1 01110 ${a} 0 11000 ${opc} 10 nnnnn ddddd`, name, (c, i) => {
    c.checkFp();
    const n = RN(i);
    const d = RD(i);
    const u = c.vU32;
    for (let k = 0; k < 4; k++) u[128 + k] = u[4 * n + k];
    fpu.fpMinMax32(c, 128, 128, 129, mop);
    fpu.fpMinMax32(c, 130, 130, 131, mop);
    fpu.fpMinMax32(c, 128, 128, 130, mop);
    u[4 * d] = u[128];
    u[4 * d + 1] = 0;
    u[4 * d + 2] = 0;
    u[4 * d + 3] = 0;
  });
}

// ---- two-register misc ----
const zeroS = (c: Arm64Cpu): number => ((c.vU32[131] = 0), 131);
const zeroD = (c: Arm64Cpu): number => ((c.vU32[130] = 0), (c.vU32[131] = 0), 65);
const cmpZ = (kind: number, swap: boolean): Pair1 => ({
  s: (c, d, n) => {
    const z = zeroS(c);
    c.vI32[d] = (swap ? fpu.fpCompareCond32(c, z, n, kind) : fpu.fpCompareCond32(c, n, z, kind)) ? -1 : 0;
  },
  d: (c, d, n) => {
    const z = zeroD(c);
    const r = (swap ? fpu.fpCompareCond64(c, z, n, kind) : fpu.fpCompareCond64(c, n, z, kind)) ? -1 : 0;
    c.vI32[2 * d] = r;
    c.vI32[2 * d + 1] = r;
  },
});
const RINT = (rm: number, exact = false): Pair1 => ({
  s: (c, d, n) => fpu.fpRoundInt32(c, d, n, rm < 0 ? fpu.fpcrRounding(c) : rm, exact),
  d: (c, d, n) => fpu.fpRoundInt64(c, d, n, rm < 0 ? fpu.fpcrRounding(c) : rm, exact),
});
const TOINT = (rm: number, uns: boolean, fbits = 0): Pair1 => ({
  s: (c, d, n) => {
    c.vI32[d] = fpu.fpToFixed32(c, n, fbits, uns, rm, 32);
  },
  d: (c, d, n) => {
    const lo = fpu.fpToFixed64(c, n, fbits, uns, rm, 64);
    c.vI32[2 * d] = lo;
    c.vI32[2 * d + 1] = fpu.fixOut.hi;
  },
});
const TOFP = (uns: boolean, fbits = 0): Pair1 => ({
  s: (c, d, n) => {
    const lo = c.vI32[n];
    fpu.fixedToFp32(c, d, lo, uns ? 0 : lo >> 31, fbits, uns);
  },
  d: (c, d, n) => {
    fpu.fixedToFp64(c, d, c.vI32[2 * n], c.vI32[2 * n + 1], fbits, uns);
  },
});
const ABS: Pair1 = {
  s: (c, d, n) => void (c.vU32[d] = c.vU32[n] & 0x7fffffff),
  d: (c, d, n) => {
    c.vU32[2 * d] = c.vU32[2 * n];
    c.vU32[2 * d + 1] = c.vU32[2 * n + 1] & 0x7fffffff;
  },
};
const NEG: Pair1 = {
  s: (c, d, n) => void (c.vU32[d] = c.vU32[n] ^ 0x80000000),
  d: (c, d, n) => {
    c.vU32[2 * d] = c.vU32[2 * n];
    c.vU32[2 * d + 1] = c.vU32[2 * n + 1] ^ 0x80000000;
  },
};
const R = fpu;
// U, a, opcode, name, op, vector form, scalar form
const MISC: [number, number, string, string, Pair1, boolean, boolean][] = [
  [0, 0, '11000', 'FRINTN', RINT(R.RM_TIEEVEN), true, false],
  [0, 0, '11001', 'FRINTM', RINT(R.RM_NEGINF), true, false],
  [0, 0, '11010', 'FCVTNS', TOINT(R.RM_TIEEVEN, false), true, true],
  [0, 0, '11011', 'FCVTMS', TOINT(R.RM_NEGINF, false), true, true],
  [0, 0, '11100', 'FCVTAS', TOINT(R.RM_TIEAWAY, false), true, true],
  [0, 0, '11101', 'SCVTF', TOFP(false), true, true],
  [0, 1, '01100', 'FCMGT_zero', cmpZ(2, false), true, true],
  [0, 1, '01101', 'FCMEQ_zero', cmpZ(0, false), true, true],
  [0, 1, '01110', 'FCMLT_zero', cmpZ(2, true), true, true],
  [0, 1, '01111', 'FABS', ABS, true, false],
  [0, 1, '11000', 'FRINTP', RINT(R.RM_POSINF), true, false],
  [0, 1, '11001', 'FRINTZ', RINT(R.RM_ZERO), true, false],
  [0, 1, '11010', 'FCVTPS', TOINT(R.RM_POSINF, false), true, true],
  [0, 1, '11011', 'FCVTZS', TOINT(R.RM_ZERO, false), true, true],
  [0, 1, '11101', 'FRECPE', { s: fpu.fpRecipEstimate32, d: fpu.fpRecipEstimate64 }, true, true],
  [0, 1, '11111', 'FRECPX', { s: fpu.fpRecpX32, d: fpu.fpRecpX64 }, false, true],
  [1, 0, '11000', 'FRINTA', RINT(R.RM_TIEAWAY), true, false],
  [1, 0, '11001', 'FRINTX', RINT(-1, true), true, false],
  [1, 0, '11010', 'FCVTNU', TOINT(R.RM_TIEEVEN, true), true, true],
  [1, 0, '11011', 'FCVTMU', TOINT(R.RM_NEGINF, true), true, true],
  [1, 0, '11100', 'FCVTAU', TOINT(R.RM_TIEAWAY, true), true, true],
  [1, 0, '11101', 'UCVTF', TOFP(true), true, true],
  [1, 1, '01100', 'FCMGE_zero', cmpZ(1, false), true, true],
  [1, 1, '01101', 'FCMLE_zero', cmpZ(1, true), true, true],
  [1, 1, '01111', 'FNEG', NEG, true, false],
  [1, 1, '11001', 'FRINTI', RINT(-1), true, false],
  [1, 1, '11010', 'FCVTPU', TOINT(R.RM_POSINF, true), true, true],
  [1, 1, '11011', 'FCVTZU', TOINT(R.RM_ZERO, true), true, true],
  [1, 1, '11101', 'FRSQRTE', { s: fpu.fpRSqrtEstimate32, d: fpu.fpRSqrtEstimate64 }, true, true],
  [1, 1, '11111', 'FSQRT', { s: fpu.fpSqrt32, d: fpu.fpSqrt64 }, true, false],
];
function vecUnary(op: Pair1): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const q = QF(i);
    const dbl = SZB(i);
    if (dbl && !q) undef(c, i);
    const d = RD(i);
    const n = RN(i);
    if (dbl) {
      op.d(c, 2 * d, 2 * n);
      op.d(c, 2 * d + 1, 2 * n + 1);
      return;
    }
    const lanes = q ? 4 : 2;
    for (let k = 0; k < lanes; k++) op.s(c, 4 * d + k, 4 * n + k);
    if (!q) zeroHi(c, d);
  };
}
function scalarUnary(op: Pair1): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const dbl = SZB(i);
    const d = RD(i);
    if (dbl) op.d(c, 2 * d, 2 * RN(i));
    else op.s(c, 4 * d, 4 * RN(i));
    zeroScalar(c, d, dbl);
  };
}
for (const [u, a, opc, name, op, vec, scal] of MISC) {
  if (vec) P(`0 q ${u} 01110 ${a} z 10000 ${opc} 10 nnnnn ddddd`, `${name}_vec`, vecUnary(op));
  if (scal) P(`01 ${u} 11110 ${a} z 10000 ${opc} 10 nnnnn ddddd`, `${name}_scalar`, scalarUnary(op));
}

// FCVTN / FCVTXN (narrow), FCVTL (lengthen)
function copyToScratch(c: Arm64Cpu, n: number): void {
  const u = c.vU32;
  for (let k = 0; k < 4; k++) u[128 + k] = u[4 * n + k];
}
function fcvtn(odd: boolean): (c: Arm64Cpu, i: number) => void {
  return (c, i) => {
    c.checkFp();
    const q = QF(i);
    const dbl = SZB(i);
    if (odd && !dbl) undef(c, i);
    const d = RD(i);
    copyToScratch(c, RN(i));
    if (dbl) {
      const base = 4 * d + (q ? 2 : 0);
      for (let k = 0; k < 2; k++) fpu.fpCvtDS(c, base + k, 64 + k, odd ? fpu.RM_ODD : -1);
    } else {
      const base = 8 * d + (q ? 4 : 0);
      for (let k = 0; k < 4; k++) fpu.fpCvtSH(c, base + k, 128 + k);
    }
    if (!q) zeroHi(c, d);
  };
}
P('0 q 0 01110 0 z 10000 10110 10 nnnnn ddddd', 'FCVTN', fcvtn(false));
P('0 q 1 01110 0 z 10000 10110 10 nnnnn ddddd', 'FCVTXN', fcvtn(true));
P('01 1 11110 0 1 10000 10110 10 nnnnn ddddd', 'FCVTXN_scalar', (c, i) => {
  c.checkFp();
  const d = RD(i);
  fpu.fpCvtDS(c, 4 * d, 2 * RN(i), fpu.RM_ODD);
  zeroScalar(c, d, 0);
});
P('0 q 0 01110 0 z 10000 10111 10 nnnnn ddddd', 'FCVTL', (c, i) => {
  c.checkFp();
  const q = QF(i);
  const dbl = SZB(i);
  const d = RD(i);
  copyToScratch(c, RN(i));
  if (dbl) for (let k = 0; k < 2; k++) fpu.fpCvtSD(c, 2 * d + k, 128 + (q ? 2 : 0) + k);
  else for (let k = 0; k < 4; k++) fpu.fpCvtHS(c, 4 * d + k, 256 + (q ? 4 : 0) + k);
});

// ---- fixed-point conversions (shift by immediate) ----
for (const [u, opc, name, toFp] of [
  [0, '11100', 'SCVTF_fixed', true],
  [1, '11100', 'UCVTF_fixed', true],
  [0, '11111', 'FCVTZS_fixed', false],
  [1, '11111', 'FCVTZU_fixed', false],
] as [number, string, string, boolean][]) {
  const uns = u === 1;
  const mk = (fbits: number): Pair1 => (toFp ? TOFP(uns, fbits) : TOINT(fpu.RM_ZERO, uns, fbits));
  // cache the per-fbits ops (created once at load)
  const opsS: Pair1[] = [];
  const opsD: Pair1[] = [];
  for (let f = 0; f <= 64; f++) {
    opsS.push(mk(f));
    opsD.push(opsS[f]);
  }
  for (const [immhBits, dbl] of [
    ['01hh', 0],
    ['1hhh', 1],
  ] as [string, number][]) {
    P(`0 q ${u} 011110 ${immhBits} bbb ${opc} 1 nnnnn ddddd`, `${name}_vec`, (c, i) => {
      c.checkFp();
      const q = QF(i);
      if (dbl && !q) undef(c, i);
      const immhb = (i >>> 16) & 127;
      const d = RD(i);
      const n = RN(i);
      if (dbl) {
        const op = opsD[128 - immhb];
        op.d(c, 2 * d, 2 * n);
        op.d(c, 2 * d + 1, 2 * n + 1);
        return;
      }
      const op = opsS[64 - immhb];
      for (let k = 0; k < (q ? 4 : 2); k++) op.s(c, 4 * d + k, 4 * n + k);
      if (!q) zeroHi(c, d);
    });
    P(`01 ${u} 111110 ${immhBits} bbb ${opc} 1 nnnnn ddddd`, `${name}_scalar`, (c, i) => {
      c.checkFp();
      const immhb = (i >>> 16) & 127;
      const d = RD(i);
      if (dbl) opsD[128 - immhb].d(c, 2 * d, 2 * RN(i));
      else opsS[64 - immhb].s(c, 4 * d, 4 * RN(i));
      zeroScalar(c, d, dbl);
    });
  }
}

// ---- by element: FMLA, FMLS, FMUL, FMULX ----
for (const [u, opc, name, op] of [
  [0, '0001', 'FMLA_elem', FMLA],
  [0, '0101', 'FMLS_elem', FMLS],
  [0, '1001', 'FMUL_elem', MUL],
  [1, '1001', 'FMULX_elem', MULX],
] as [number, string, string, Pair3][]) {
  const elemOf = (c: Arm64Cpu, i: number, dbl: number): number => {
    const h = (i >>> 11) & 1;
    const l = (i >>> 21) & 1;
    const m = (i >>> 16) & 31;
    if (dbl) {
      if (l) undef(c, i);
      c.vU32[130] = c.vU32[4 * m + 2 * h];
      c.vU32[131] = c.vU32[4 * m + 2 * h + 1];
      return 65;
    }
    c.vU32[131] = c.vU32[4 * m + ((h << 1) | l)];
    return 131;
  };
  P(`0 q ${u} 01111 1 z l M mmmm ${opc} h 0 nnnnn ddddd`, name, (c, i) => {
    c.checkFp();
    const q = QF(i);
    const dbl = SZB(i);
    if (dbl && !q) undef(c, i);
    const e = elemOf(c, i, dbl);
    const d = RD(i);
    const n = RN(i);
    if (dbl) {
      op.d(c, 2 * d, 2 * n, e);
      op.d(c, 2 * d + 1, 2 * n + 1, e);
      return;
    }
    for (let k = 0; k < (q ? 4 : 2); k++) op.s(c, 4 * d + k, 4 * n + k, e);
    if (!q) zeroHi(c, d);
  });
  P(`01 ${u} 11111 1 z l M mmmm ${opc} h 0 nnnnn ddddd`, `${name}_scalar`, (c, i) => {
    c.checkFp();
    const dbl = SZB(i);
    const e = elemOf(c, i, dbl);
    const d = RD(i);
    if (dbl) op.d(c, 2 * d, 2 * RN(i), e);
    else op.s(c, 4 * d, 4 * RN(i), e);
    zeroScalar(c, d, dbl);
  });
}

export { patterns };

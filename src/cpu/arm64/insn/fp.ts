// A64 instruction group: scalar floating point (ARMv8.0: single and double precision; half precision only
// for FCVT, since FEAT_FP16 is not advertised and its encodings are UNDEF). See decode.ts for the
// pattern format and fpu.ts for the arithmetic.
//
// Scalar register Vn: double at vF64 index 2n, single at vF32 index 4n, half at vU16 index 8n. Every
// scalar result zeroes the rest of the 128-bit register.

import type { Pattern, Handler } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import { conditionHolds } from '../int64.js';
import * as fpu from '../fpu.js';

const RD = (i: number): number => i & 31;
const RN = (i: number): number => (i >>> 5) & 31;
const RM = (i: number): number => (i >>> 16) & 31;
const RA = (i: number): number => (i >>> 10) & 31;

function zero64(cpu: Arm64Cpu, rd: number): void {
  const u = cpu.vU32;
  u[4 * rd + 2] = 0;
  u[4 * rd + 3] = 0;
}
function zero32(cpu: Arm64Cpu, rd: number): void {
  const u = cpu.vU32;
  u[4 * rd + 1] = 0;
  u[4 * rd + 2] = 0;
  u[4 * rd + 3] = 0;
}
function zero16(cpu: Arm64Cpu, rd: number): void {
  cpu.vU16[8 * rd + 1] = 0;
  zero32(cpu, rd);
}

const patterns: Pattern[] = [];
/** ftype field values: 00 single, 01 double. */
const TY = [
  { t: '00', s: 'S' },
  { t: '01', s: 'D' },
] as const;

// ---- data-processing, 2 sources: M0S11110 ftype 1 Rm opcode 10 Rn Rd ----
type Bin = (cpu: Arm64Cpu, d: number, n: number, m: number) => void;
const bin64: [string, Bin][] = [
  ['0000', fpu.fpMul64],
  ['0001', fpu.fpDiv64],
  ['0010', fpu.fpAdd64],
  ['0011', fpu.fpSub64],
  ['0100', (c, d, n, m) => fpu.fpMinMax64(c, d, n, m, 0)],
  ['0101', (c, d, n, m) => fpu.fpMinMax64(c, d, n, m, 1)],
  ['0110', (c, d, n, m) => fpu.fpMinMax64(c, d, n, m, 2)],
  ['0111', (c, d, n, m) => fpu.fpMinMax64(c, d, n, m, 3)],
  ['1000', (c, d, n, m) => fpu.fpMul64(c, d, n, m, true)],
];
const bin32: [string, Bin][] = [
  ['0000', fpu.fpMul32],
  ['0001', fpu.fpDiv32],
  ['0010', fpu.fpAdd32],
  ['0011', fpu.fpSub32],
  ['0100', (c, d, n, m) => fpu.fpMinMax32(c, d, n, m, 0)],
  ['0101', (c, d, n, m) => fpu.fpMinMax32(c, d, n, m, 1)],
  ['0110', (c, d, n, m) => fpu.fpMinMax32(c, d, n, m, 2)],
  ['0111', (c, d, n, m) => fpu.fpMinMax32(c, d, n, m, 3)],
  ['1000', (c, d, n, m) => fpu.fpMul32(c, d, n, m, true)],
];
const BIN_NAMES = ['FMUL', 'FDIV', 'FADD', 'FSUB', 'FMAX', 'FMIN', 'FMAXNM', 'FMINNM', 'FNMUL'];
bin64.forEach(([op, f], i) => {
  patterns.push({
    bits: `00011110 01 1 mmmmm ${op} 10 nnnnn ddddd`,
    name: `${BIN_NAMES[i]}_D`,
    handler: (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      f(cpu, 2 * rd, 2 * RN(insn), 2 * RM(insn));
      zero64(cpu, rd);
    },
  });
});
bin32.forEach(([op, f], i) => {
  patterns.push({
    bits: `00011110 00 1 mmmmm ${op} 10 nnnnn ddddd`,
    name: `${BIN_NAMES[i]}_S`,
    handler: (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      f(cpu, 4 * rd, 4 * RN(insn), 4 * RM(insn));
      zero32(cpu, rd);
    },
  });
});

// ---- data-processing, 3 sources: M0S11111 ftype o1 Rm o0 Ra Rn Rd ----
const FMA_NAMES = ['FMADD', 'FMSUB', 'FNMADD', 'FNMSUB'];
for (let k = 0; k < 4; k++) {
  const o1 = k >> 1;
  const o0 = k & 1;
  // FMADD: a + n*m; FMSUB: a - n*m; FNMADD: -a - n*m; FNMSUB: -a + n*m.
  const negA = o1 === 1;
  const negN = o0 !== o1;
  patterns.push({
    bits: `00011111 01 ${o1} mmmmm ${o0} aaaaa nnnnn ddddd`,
    name: `${FMA_NAMES[k]}_D`,
    handler: (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpMulAdd64(cpu, 2 * rd, 2 * RA(insn), 2 * RN(insn), 2 * RM(insn), negA, negN);
      zero64(cpu, rd);
    },
  });
  patterns.push({
    bits: `00011111 00 ${o1} mmmmm ${o0} aaaaa nnnnn ddddd`,
    name: `${FMA_NAMES[k]}_S`,
    handler: (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpMulAdd32(cpu, 4 * rd, 4 * RA(insn), 4 * RN(insn), 4 * RM(insn), negA, negN);
      zero32(cpu, rd);
    },
  });
}

// ---- data-processing, 1 source: M0S11110 ftype 1 opcode(6) 10000 Rn Rd ----
function oneSrc(op: string, name: string, h64: Handler, h32: Handler): void {
  patterns.push({ bits: `00011110 01 1 ${op} 10000 nnnnn ddddd`, name: `${name}_D`, handler: h64 });
  patterns.push({ bits: `00011110 00 1 ${op} 10000 nnnnn ddddd`, name: `${name}_S`, handler: h32 });
}
oneSrc(
  '000000',
  'FMOV_reg',
  (cpu, insn) => {
    cpu.checkFp();
    const rd = RD(insn);
    const rn = RN(insn);
    const u = cpu.vU32;
    u[4 * rd] = u[4 * rn];
    u[4 * rd + 1] = u[4 * rn + 1];
    zero64(cpu, rd);
  },
  (cpu, insn) => {
    cpu.checkFp();
    const rd = RD(insn);
    cpu.vU32[4 * rd] = cpu.vU32[4 * RN(insn)];
    zero32(cpu, rd);
  },
);
function signOp(kind: 'abs' | 'neg'): [Handler, Handler] {
  const f = (x: number): number => (kind === 'abs' ? x & 0x7fffffff : x ^ 0x80000000) >>> 0;
  return [
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      const rn = RN(insn);
      const u = cpu.vU32;
      u[4 * rd] = u[4 * rn];
      u[4 * rd + 1] = f(u[4 * rn + 1]);
      zero64(cpu, rd);
    },
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      cpu.vU32[4 * rd] = f(cpu.vU32[4 * RN(insn)]);
      zero32(cpu, rd);
    },
  ];
}
oneSrc('000001', 'FABS', ...signOp('abs'));
oneSrc('000010', 'FNEG', ...signOp('neg'));
oneSrc(
  '000011',
  'FSQRT',
  (cpu, insn) => {
    cpu.checkFp();
    const rd = RD(insn);
    fpu.fpSqrt64(cpu, 2 * rd, 2 * RN(insn));
    zero64(cpu, rd);
  },
  (cpu, insn) => {
    cpu.checkFp();
    const rd = RD(insn);
    fpu.fpSqrt32(cpu, 4 * rd, 4 * RN(insn));
    zero32(cpu, rd);
  },
);
// FRINT*: opcode 001 rmode(3): 000 N, 001 P, 010 M, 011 Z, 100 A, 110 X, 111 I (101 unallocated).
const FRINT: [string, string, number][] = [
  ['000', 'FRINTN', fpu.RM_TIEEVEN],
  ['001', 'FRINTP', fpu.RM_POSINF],
  ['010', 'FRINTM', fpu.RM_NEGINF],
  ['011', 'FRINTZ', fpu.RM_ZERO],
  ['100', 'FRINTA', fpu.RM_TIEAWAY],
  ['110', 'FRINTX', -1],
  ['111', 'FRINTI', -1],
];
for (const [bits, name, mode] of FRINT) {
  const exact = name === 'FRINTX';
  oneSrc(
    `001${bits}`,
    name,
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpRoundInt64(cpu, 2 * rd, 2 * RN(insn), mode < 0 ? fpu.fpcrRounding(cpu) : mode, exact);
      zero64(cpu, rd);
    },
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpRoundInt32(cpu, 4 * rd, 4 * RN(insn), mode < 0 ? fpu.fpcrRounding(cpu) : mode, exact);
      zero32(cpu, rd);
    },
  );
}
// FCVT between precisions: ftype = source, opcode 0001 opc = destination (00 S, 01 D, 11 H).
const CVT: [string, string, string, Handler][] = [
  [
    '00',
    '01',
    'FCVT_DS',
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpCvtSD(cpu, 2 * rd, 4 * RN(insn));
      zero64(cpu, rd);
    },
  ],
  [
    '00',
    '11',
    'FCVT_HS',
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpCvtSH(cpu, 8 * rd, 4 * RN(insn));
      zero16(cpu, rd);
    },
  ],
  [
    '01',
    '00',
    'FCVT_SD',
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpCvtDS(cpu, 4 * rd, 2 * RN(insn));
      zero32(cpu, rd);
    },
  ],
  [
    '01',
    '11',
    'FCVT_HD',
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpCvtDH(cpu, 8 * rd, 2 * RN(insn));
      zero16(cpu, rd);
    },
  ],
  [
    '11',
    '00',
    'FCVT_SH',
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpCvtHS(cpu, 4 * rd, 8 * RN(insn));
      zero32(cpu, rd);
    },
  ],
  [
    '11',
    '01',
    'FCVT_DH',
    (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      fpu.fpCvtHD(cpu, 2 * rd, 8 * RN(insn));
      zero64(cpu, rd);
    },
  ],
];
for (const [src, dst, name, handler] of CVT) {
  patterns.push({ bits: `00011110 ${src} 1 0001${dst} 10000 nnnnn ddddd`, name, handler });
}

// ---- compare: M0S11110 ftype 1 Rm 00 1000 Rn opcode2(5) ----
for (const { t, s } of TY) {
  const is64 = t === '01';
  for (const [zero, signal, name] of [
    [false, false, 'FCMP'],
    [true, false, 'FCMP_zero'],
    [false, true, 'FCMPE'],
    [true, true, 'FCMPE_zero'],
  ] as const) {
    const op2 = `${signal ? 1 : 0}${zero ? 1 : 0}000`;
    patterns.push({
      bits: `00011110 ${t} 1 mmmmm 001000 nnnnn ${op2}`,
      name: `${name}_${s}`,
      handler: (cpu, insn) => {
        cpu.checkFp();
        let m: number;
        if (zero) {
          // Compare with +0.0: use the scratch element.
          m = is64 ? 64 : 128;
          if (is64) cpu.vF64[64] = 0;
          else cpu.vF32[128] = 0;
        } else m = is64 ? 2 * RM(insn) : 4 * RM(insn);
        cpu.nzcv = is64
          ? fpu.fpCompare64(cpu, 2 * RN(insn), m, signal)
          : fpu.fpCompare32(cpu, 4 * RN(insn), m, signal);
      },
    });
  }
  // FCCMP / FCCMPE: M0S11110 ftype 1 Rm cond 01 Rn op nzcv
  for (const signal of [false, true]) {
    patterns.push({
      bits: `00011110 ${t} 1 mmmmm cccc 01 nnnnn ${signal ? 1 : 0} ffff`,
      name: `${signal ? 'FCCMPE' : 'FCCMP'}_${s}`,
      handler: (cpu, insn) => {
        cpu.checkFp();
        if (conditionHolds(cpu, (insn >>> 12) & 15)) {
          cpu.nzcv = is64
            ? fpu.fpCompare64(cpu, 2 * RN(insn), 2 * RM(insn), signal)
            : fpu.fpCompare32(cpu, 4 * RN(insn), 4 * RM(insn), signal);
        } else cpu.nzcv = insn & 15;
      },
    });
  }
  // FCSEL: M0S11110 ftype 1 Rm cond 11 Rn Rd
  patterns.push({
    bits: `00011110 ${t} 1 mmmmm cccc 11 nnnnn ddddd`,
    name: `FCSEL_${s}`,
    handler: (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      const src = conditionHolds(cpu, (insn >>> 12) & 15) ? RN(insn) : RM(insn);
      const u = cpu.vU32;
      u[4 * rd] = u[4 * src];
      if (is64) {
        u[4 * rd + 1] = u[4 * src + 1];
        zero64(cpu, rd);
      } else zero32(cpu, rd);
    },
  });
  // FMOV (immediate): M0S11110 ftype 1 imm8 100 00000 Rd
  patterns.push({
    bits: `00011110 ${t} 1 iiiiiiii 100 00000 ddddd`,
    name: `FMOV_imm_${s}`,
    handler: (cpu, insn) => {
      cpu.checkFp();
      const rd = RD(insn);
      const imm8 = (insn >>> 13) & 0xff;
      const sign = (imm8 >>> 7) << 31;
      const b6 = (imm8 >>> 6) & 1;
      const u = cpu.vU32;
      if (is64) {
        // exponent = NOT(b6) : Replicate(b6, 8) : imm8<5:4>; fraction = imm8<3:0> : Zeros(48)
        const exp = ((b6 ^ 1) << 10) | (b6 ? 0xff << 2 : 0) | ((imm8 >>> 4) & 3);
        u[4 * rd] = 0;
        u[4 * rd + 1] = (sign | (exp << 20) | ((imm8 & 15) << 16)) >>> 0;
        zero64(cpu, rd);
      } else {
        const exp = ((b6 ^ 1) << 7) | (b6 ? 0x1f << 2 : 0) | ((imm8 >>> 4) & 3);
        u[4 * rd] = (sign | (exp << 23) | ((imm8 & 15) << 19)) >>> 0;
        zero32(cpu, rd);
      }
    },
  });
}

// ---- conversion between FP and integer: sf 0 S 11110 ftype 1 rmode opcode 000000 Rn Rd ----
const CVT_INT: [string, string, number][] = [
  ['00', 'N', fpu.RM_TIEEVEN],
  ['01', 'P', fpu.RM_POSINF],
  ['10', 'M', fpu.RM_NEGINF],
  ['11', 'Z', fpu.RM_ZERO],
];
function toIntHandler(
  is64src: boolean,
  sf: boolean,
  unsigned: boolean,
  mode: number,
  fixed: boolean,
): Handler {
  return (cpu, insn) => {
    cpu.checkFp();
    const fbits = fixed ? 64 - ((insn >>> 10) & 63) : 0;
    const rn = RN(insn);
    const size = sf ? 64 : 32;
    const lo = is64src
      ? fpu.fpToFixed64(cpu, 2 * rn, fbits, unsigned, mode, size)
      : fpu.fpToFixed32(cpu, 4 * rn, fbits, unsigned, mode, size);
    if (sf) cpu.setX(RD(insn), lo, fpu.fixOut.hi);
    else cpu.setW(RD(insn), lo);
  };
}
function fromIntHandler(is64dst: boolean, sf: boolean, unsigned: boolean, fixed: boolean): Handler {
  return (cpu, insn) => {
    cpu.checkFp();
    const fbits = fixed ? 64 - ((insn >>> 10) & 63) : 0;
    const rn = RN(insn);
    const rd = RD(insn);
    const lo = cpu.xlo(rn);
    const hi = sf ? cpu.xhi(rn) : unsigned ? 0 : lo >> 31;
    if (is64dst) {
      fpu.fixedToFp64(cpu, 2 * rd, lo, hi, fbits, unsigned);
      zero64(cpu, rd);
    } else {
      fpu.fixedToFp32(cpu, 4 * rd, lo, hi, fbits, unsigned);
      zero32(cpu, rd);
    }
  };
}
for (const sf of [false, true]) {
  const sfb = sf ? '1' : '0';
  const rn = sf ? 'X' : 'W';
  for (const { t, s } of TY) {
    const is64 = t === '01';
    for (const [rmode, r, mode] of CVT_INT) {
      patterns.push({
        bits: `${sfb}0011110 ${t} 1 ${rmode} 000 000000 nnnnn ddddd`,
        name: `FCVT${r}S_${rn}${s}`,
        handler: toIntHandler(is64, sf, false, mode, false),
      });
      patterns.push({
        bits: `${sfb}0011110 ${t} 1 ${rmode} 001 000000 nnnnn ddddd`,
        name: `FCVT${r}U_${rn}${s}`,
        handler: toIntHandler(is64, sf, true, mode, false),
      });
    }
    patterns.push({
      bits: `${sfb}0011110 ${t} 1 00 100 000000 nnnnn ddddd`,
      name: `FCVTAS_${rn}${s}`,
      handler: toIntHandler(is64, sf, false, fpu.RM_TIEAWAY, false),
    });
    patterns.push({
      bits: `${sfb}0011110 ${t} 1 00 101 000000 nnnnn ddddd`,
      name: `FCVTAU_${rn}${s}`,
      handler: toIntHandler(is64, sf, true, fpu.RM_TIEAWAY, false),
    });
    patterns.push({
      bits: `${sfb}0011110 ${t} 1 00 010 000000 nnnnn ddddd`,
      name: `SCVTF_${s}${rn}`,
      handler: fromIntHandler(is64, sf, false, false),
    });
    patterns.push({
      bits: `${sfb}0011110 ${t} 1 00 011 000000 nnnnn ddddd`,
      name: `UCVTF_${s}${rn}`,
      handler: fromIntHandler(is64, sf, true, false),
    });
    // Fixed-point forms: sf 0 S 11110 ftype 0 rmode opcode scale Rn Rd (32-bit: scale<5> = 1).
    const scale = sf ? 'ssssss' : '1sssss';
    patterns.push({
      bits: `${sfb}0011110 ${t} 0 11 000 ${scale} nnnnn ddddd`,
      name: `FCVTZS_fix_${rn}${s}`,
      handler: toIntHandler(is64, sf, false, fpu.RM_ZERO, true),
    });
    patterns.push({
      bits: `${sfb}0011110 ${t} 0 11 001 ${scale} nnnnn ddddd`,
      name: `FCVTZU_fix_${rn}${s}`,
      handler: toIntHandler(is64, sf, true, fpu.RM_ZERO, true),
    });
    patterns.push({
      bits: `${sfb}0011110 ${t} 0 00 010 ${scale} nnnnn ddddd`,
      name: `SCVTF_fix_${s}${rn}`,
      handler: fromIntHandler(is64, sf, false, true),
    });
    patterns.push({
      bits: `${sfb}0011110 ${t} 0 00 011 ${scale} nnnnn ddddd`,
      name: `UCVTF_fix_${s}${rn}`,
      handler: fromIntHandler(is64, sf, true, true),
    });
  }
}

// ---- FMOV between general and FP registers ----
patterns.push({
  bits: '00011110 00 1 00 110 000000 nnnnn ddddd',
  name: 'FMOV_WS',
  handler: (cpu, insn) => {
    cpu.checkFp();
    cpu.setW(RD(insn), cpu.vU32[4 * RN(insn)]);
  },
});
patterns.push({
  bits: '00011110 00 1 00 111 000000 nnnnn ddddd',
  name: 'FMOV_SW',
  handler: (cpu, insn) => {
    cpu.checkFp();
    const rd = RD(insn);
    cpu.vU32[4 * rd] = cpu.xlo(RN(insn));
    zero32(cpu, rd);
  },
});
patterns.push({
  bits: '10011110 01 1 00 110 000000 nnnnn ddddd',
  name: 'FMOV_XD',
  handler: (cpu, insn) => {
    cpu.checkFp();
    const rn = RN(insn);
    cpu.setX(RD(insn), cpu.vU32[4 * rn], cpu.vU32[4 * rn + 1]);
  },
});
patterns.push({
  bits: '10011110 01 1 00 111 000000 nnnnn ddddd',
  name: 'FMOV_DX',
  handler: (cpu, insn) => {
    cpu.checkFp();
    const rd = RD(insn);
    const rn = RN(insn);
    cpu.vU32[4 * rd] = cpu.xlo(rn);
    cpu.vU32[4 * rd + 1] = cpu.xhi(rn);
    zero64(cpu, rd);
  },
});
patterns.push({
  bits: '10011110 10 1 01 110 000000 nnnnn ddddd',
  name: 'FMOV_XV1',
  handler: (cpu, insn) => {
    cpu.checkFp();
    const rn = RN(insn);
    cpu.setX(RD(insn), cpu.vU32[4 * rn + 2], cpu.vU32[4 * rn + 3]);
  },
});
patterns.push({
  bits: '10011110 10 1 01 111 000000 nnnnn ddddd',
  name: 'FMOV_V1X',
  handler: (cpu, insn) => {
    cpu.checkFp();
    const rd = RD(insn);
    const rn = RN(insn);
    cpu.vU32[4 * rd + 2] = cpu.xlo(rn);
    cpu.vU32[4 * rd + 3] = cpu.xhi(rn);
  },
});

export { patterns };

// AdvSIMD data processing (insn/simd*.ts).
//
// 1. Generator-style differential test against qemu-aarch64: every implemented instruction (in each
//    arrangement) runs on random register contents (biased towards edge values: 0, ±1, the signed limits,
//    all-ones, small shift counts and table indices; FP lanes from a table of specials plus random finite
//    values, under several FPCR settings). A static aarch64 C program with one inline-asm stub per
//    instruction (built with aarch64-linux-gnu-gcc) produces the reference V0..V3, X0 and FPSR under
//    qemu-aarch64; typevisor's CPU runs the same instruction words on the same inputs and must give the
//    same bits. Skipped, saying so, when the cross compiler or qemu-aarch64 is missing.
// 2. Hand-computed cases (permutes, EXT, TBL/TBX, saturation and FPSR.QC, immediates, UNDEF encodings).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCpu, RAM_BASE, type TestCpu } from './helpers/arm64.js';
import { EC } from '../src/cpu/arm64/cpu.js';

function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}
const TOOLS = haveTool('aarch64-linux-gnu-gcc') && haveTool('qemu-aarch64');
const SKIP = TOOLS
  ? false
  : 'aarch64-linux-gnu-gcc and/or qemu-aarch64 not installed: qemu-aarch64 reference comparison skipped';

// ---------------------------------------------------------------------------------------------------
// Instruction list. Operands: V0 (destination, random), V1, V2, V3 (random), X0, X1 (random).
// kind: 'i' integer inputs, 'f' single-precision lanes, 'd' double-precision lanes.
// ---------------------------------------------------------------------------------------------------

type Kind = 'i' | 'f' | 'd';
const INSNS: [string, Kind][] = [];
const add = (asm: string, k: Kind = 'i'): void => void INSNS.push([asm, k]);

const B = ['8b', '16b'];
const H = ['4h', '8h'];
const S = ['2s', '4s'];
const BHS = [...B, ...H, ...S];
const ALLT = [...BHS, '2d'];
const v3 = (op: string, ts: string[]): void => ts.forEach((t) => add(`${op} v0.${t}, v1.${t}, v2.${t}`));
const v2 = (op: string, ts: string[]): void => ts.forEach((t) => add(`${op} v0.${t}, v1.${t}`));

// three same
for (const op of [
  'add',
  'sub',
  'cmeq',
  'cmge',
  'cmgt',
  'cmhi',
  'cmhs',
  'cmtst',
  'sqadd',
  'uqadd',
  'sqsub',
  'uqsub',
])
  v3(op, ALLT);
for (const op of ['sshl', 'ushl', 'srshl', 'urshl', 'sqshl', 'uqshl', 'sqrshl', 'uqrshl', 'addp'])
  v3(op, ALLT);
for (const op of ['mul', 'mla', 'mls', 'smax', 'smin', 'umax', 'umin', 'smaxp', 'sminp', 'umaxp', 'uminp'])
  v3(op, BHS);
for (const op of ['shadd', 'uhadd', 'srhadd', 'urhadd', 'shsub', 'uhsub', 'sabd', 'uabd', 'saba', 'uaba'])
  v3(op, BHS);
for (const op of ['sqdmulh', 'sqrdmulh']) v3(op, [...H, ...S]);
for (const op of ['pmul', 'and', 'bic', 'orr', 'orn', 'eor', 'bsl', 'bit', 'bif']) v3(op, B);
add('add v1.4s, v1.4s, v1.4s');
add('eor v2.16b, v1.16b, v2.16b');
for (const op of [
  'add',
  'sub',
  'cmeq',
  'cmge',
  'cmgt',
  'cmhi',
  'cmhs',
  'cmtst',
  'sshl',
  'ushl',
  'srshl',
  'urshl',
])
  add(`${op} d0, d1, d2`);
for (const op of ['sqadd', 'uqadd', 'sqsub', 'uqsub', 'sqshl', 'uqshl', 'sqrshl', 'uqrshl'])
  for (const r of ['b', 'h', 's', 'd']) add(`${op} ${r}0, ${r}1, ${r}2`);
for (const op of ['sqdmulh', 'sqrdmulh']) for (const r of ['h', 's']) add(`${op} ${r}0, ${r}1, ${r}2`);

// three different
const LONG: [string, string, string][] = [
  ['8h', '8b', '16b'],
  ['4s', '4h', '8h'],
  ['2d', '2s', '4s'],
];
for (const op of [
  'saddl',
  'uaddl',
  'ssubl',
  'usubl',
  'sabal',
  'uabal',
  'sabdl',
  'uabdl',
  'smlal',
  'umlal',
  'smlsl',
  'umlsl',
  'smull',
  'umull',
])
  for (const [w, n, n2] of LONG) {
    add(`${op} v0.${w}, v1.${n}, v2.${n}`);
    add(`${op}2 v0.${w}, v1.${n2}, v2.${n2}`);
  }
for (const op of ['saddw', 'uaddw', 'ssubw', 'usubw'])
  for (const [w, n, n2] of LONG) {
    add(`${op} v0.${w}, v1.${w}, v2.${n}`);
    add(`${op}2 v0.${w}, v1.${w}, v2.${n2}`);
  }
for (const op of ['addhn', 'subhn', 'raddhn', 'rsubhn'])
  for (const [w, n, n2] of LONG) {
    add(`${op} v0.${n}, v1.${w}, v2.${w}`);
    add(`${op}2 v0.${n2}, v1.${w}, v2.${w}`);
  }
for (const op of ['sqdmull', 'sqdmlal', 'sqdmlsl']) {
  for (const [w, n, n2] of LONG.slice(1)) {
    add(`${op} v0.${w}, v1.${n}, v2.${n}`);
    add(`${op}2 v0.${w}, v1.${n2}, v2.${n2}`);
  }
  add(`${op} s0, h1, h2`);
  add(`${op} d0, s1, s2`);
}
add('pmull v0.8h, v1.8b, v2.8b');
add('pmull2 v0.8h, v1.16b, v2.16b');

// two-register misc
v2('rev64', BHS);
v2('rev32', [...B, ...H]);
v2('rev16', B);
for (const op of ['saddlp', 'uaddlp', 'sadalp', 'uadalp']) {
  add(`${op} v0.4h, v1.8b`);
  add(`${op} v0.8h, v1.16b`);
  add(`${op} v0.2s, v1.4h`);
  add(`${op} v0.4s, v1.8h`);
  add(`${op} v0.1d, v1.2s`);
  add(`${op} v0.2d, v1.4s`);
}
for (const op of ['suqadd', 'usqadd', 'sqabs', 'sqneg', 'abs', 'neg']) v2(op, ALLT);
for (const op of ['cls', 'clz']) v2(op, BHS);
for (const op of ['cnt', 'not', 'rbit']) v2(op, B);
for (const op of ['cmgt', 'cmge', 'cmeq', 'cmle', 'cmlt'])
  ALLT.forEach((t) => add(`${op} v0.${t}, v1.${t}, #0`));
for (const op of ['xtn', 'sqxtn', 'uqxtn', 'sqxtun'])
  for (const [w, n, n2] of LONG) {
    add(`${op} v0.${n}, v1.${w}`);
    add(`${op}2 v0.${n2}, v1.${w}`);
  }
for (const [w, n, n2] of LONG) {
  const e = Number(n.slice(0, -1)) === 8 ? 8 : n.endsWith('h') ? 16 : 32;
  add(`shll v0.${w}, v1.${n}, #${e}`);
  add(`shll2 v0.${w}, v1.${n2}, #${e}`);
}
v2('urecpe', S);
v2('ursqrte', S);
for (const op of ['suqadd', 'usqadd', 'sqabs', 'sqneg'])
  for (const r of ['b', 'h', 's', 'd']) add(`${op} ${r}0, ${r}1`);
add('abs d0, d1');
add('neg d0, d1');
for (const op of ['cmgt', 'cmge', 'cmeq', 'cmle', 'cmlt']) add(`${op} d0, d1, #0`);
for (const op of ['sqxtn', 'uqxtn', 'sqxtun']) {
  add(`${op} b0, h1`);
  add(`${op} h0, s1`);
  add(`${op} s0, d1`);
}

// across lanes
for (const op of ['addv', 'smaxv', 'sminv', 'umaxv', 'uminv']) {
  for (const t of ['8b', '16b']) add(`${op} b0, v1.${t}`);
  for (const t of H) add(`${op} h0, v1.${t}`);
  add(`${op} s0, v1.4s`);
}
for (const op of ['saddlv', 'uaddlv']) {
  for (const t of ['8b', '16b']) add(`${op} h0, v1.${t}`);
  for (const t of H) add(`${op} s0, v1.${t}`);
  add(`${op} d0, v1.4s`);
}
add('addp d0, v1.2d');

// copy
for (const [t, r, idx] of [
  ['16b', 'b', 13],
  ['8b', 'b', 2],
  ['8h', 'h', 7],
  ['4h', 'h', 1],
  ['4s', 's', 3],
  ['2s', 's', 0],
  ['2d', 'd', 1],
] as [string, string, number][]) {
  add(`dup v0.${t}, v1.${r}[${idx}]`);
  add(`dup v0.${t}, ${r === 'd' ? 'x' : 'w'}1`);
  add(`mov v0.${r}[${idx}], ${r === 'd' ? 'x' : 'w'}1`);
  add(
    `mov v0.${r}[${idx}], v1.${r}[${(idx * 3 + 1) % (16 / ({ b: 1, h: 2, s: 4, d: 8 } as Record<string, number>)[r])}]`,
  );
  add(`mov ${r}0, v1.${r}[${idx}]`);
}
add('umov w0, v1.b[9]');
add('umov w0, v1.h[3]');
add('umov w0, v1.s[3]');
add('umov x0, v1.d[1]');
add('smov w0, v1.b[15]');
add('smov w0, v1.h[2]');
add('smov x0, v1.b[4]');
add('smov x0, v1.h[7]');
add('smov x0, v1.s[1]');

// modified immediate
for (const s of [
  'movi v0.16b, #0xa5',
  'movi v0.8b, #0x7f',
  'movi v0.4h, #0x12, lsl #8',
  'movi v0.8h, #0xfe',
  'movi v0.4s, #0x34, lsl #16',
  'movi v0.2s, #0x81, lsl #24',
  'movi v0.2s, #0x56, msl #8',
  'movi v0.4s, #0x56, msl #16',
  'movi d0, #0xff00ff0000ffff00',
  'movi v0.2d, #0x00ffff00ff0000ff',
  'mvni v0.8h, #0x12, lsl #8',
  'mvni v0.4h, #0x99',
  'mvni v0.2s, #0x34, lsl #24',
  'mvni v0.4s, #0x7f, msl #16',
  'mvni v0.2s, #0xc3, msl #8',
  'orr v0.4s, #0x12, lsl #8',
  'orr v0.4h, #0x34',
  'orr v0.2s, #0xf0, lsl #24',
  'bic v0.8h, #0x56, lsl #8',
  'bic v0.2s, #0x78, lsl #16',
  'bic v0.4s, #0xff',
  'fmov v0.4s, #-1.25',
  'fmov v0.2s, #31.0',
  'fmov v0.2d, #0.125',
  'fmov v0.2d, #-17.0',
])
  add(s);

// permutes, EXT, TBL/TBX
for (const op of ['zip1', 'zip2', 'uzp1', 'uzp2', 'trn1', 'trn2']) v3(op, ALLT);
add('zip1 v1.4s, v1.4s, v2.4s');
add('uzp2 v2.8h, v1.8h, v2.8h');
for (const k of [0, 3, 15]) add(`ext v0.16b, v1.16b, v2.16b, #${k}`);
for (const k of [0, 5, 7]) add(`ext v0.8b, v1.8b, v2.8b, #${k}`);
add('ext v1.16b, v1.16b, v1.16b, #8');
for (const op of ['tbl', 'tbx'])
  for (const t of B) {
    add(`${op} v0.${t}, {v1.16b}, v3.${t}`);
    add(`${op} v0.${t}, {v1.16b, v2.16b}, v3.${t}`);
    add(`${op} v0.${t}, {v1.16b, v2.16b, v3.16b}, v3.${t}`);
    add(`${op} v0.${t}, {v0.16b, v1.16b, v2.16b, v3.16b}, v1.${t}`);
  }

// shift by immediate
const SH_T: [string, number][] = [
  ['8b', 8],
  ['16b', 8],
  ['4h', 16],
  ['8h', 16],
  ['2s', 32],
  ['4s', 32],
  ['2d', 64],
];
for (const op of ['sshr', 'ushr', 'ssra', 'usra', 'srshr', 'urshr', 'srsra', 'ursra', 'sri'])
  for (const [t, e] of SH_T) for (const s of [1, e >> 1, e]) add(`${op} v0.${t}, v1.${t}, #${s}`);
for (const op of ['shl', 'sli', 'sqshl', 'uqshl', 'sqshlu'])
  for (const [t, e] of SH_T) for (const s of [0, (e >> 1) - 1, e - 1]) add(`${op} v0.${t}, v1.${t}, #${s}`);
for (const op of ['sshr', 'ushr', 'ssra', 'usra', 'srshr', 'urshr', 'srsra', 'ursra', 'sri'])
  for (const s of [1, 37, 64]) add(`${op} d0, d1, #${s}`);
for (const op of ['shl', 'sli']) for (const s of [0, 13, 63]) add(`${op} d0, d1, #${s}`);
for (const op of ['sqshl', 'uqshl', 'sqshlu'])
  for (const [r, e] of [
    ['b', 8],
    ['h', 16],
    ['s', 32],
    ['d', 64],
  ] as [string, number][])
    for (const s of [0, (e >> 1) + 1, e - 1]) add(`${op} ${r}0, ${r}1, #${s}`);
for (const op of ['shrn', 'rshrn', 'sqshrn', 'sqrshrn', 'uqshrn', 'uqrshrn', 'sqshrun', 'sqrshrun'])
  for (const [w, n, n2] of LONG) {
    const e = n === '8b' ? 8 : n === '4h' ? 16 : 32;
    for (const s of [1, (e >> 1) + 1, e]) {
      add(`${op} v0.${n}, v1.${w}, #${s}`);
      add(`${op}2 v0.${n2}, v1.${w}, #${s}`);
    }
  }
for (const op of ['sqshrn', 'sqrshrn', 'uqshrn', 'uqrshrn', 'sqshrun', 'sqrshrun'])
  for (const [r, w, e] of [
    ['b', 'h', 8],
    ['h', 's', 16],
    ['s', 'd', 32],
  ] as [string, string, number][])
    for (const s of [1, e - 3, e]) add(`${op} ${r}0, ${w}1, #${s}`);
for (const op of ['sshll', 'ushll'])
  for (const [w, n, n2] of LONG) {
    const e = n === '8b' ? 8 : n === '4h' ? 16 : 32;
    for (const s of [0, e - 1]) {
      add(`${op} v0.${w}, v1.${n}, #${s}`);
      add(`${op}2 v0.${w}, v1.${n2}, #${s}`);
    }
  }

// by element (integer)
for (const op of ['mul', 'mla', 'mls', 'sqdmulh', 'sqrdmulh']) {
  add(`${op} v0.4h, v1.4h, v2.h[3]`);
  add(`${op} v0.8h, v1.8h, v2.h[6]`);
  add(`${op} v0.2s, v1.2s, v2.s[1]`);
  add(`${op} v0.4s, v1.4s, v2.s[2]`);
}
add('mul v1.4s, v1.4s, v1.s[1]');
for (const op of ['smull', 'umull', 'smlal', 'umlal', 'smlsl', 'umlsl', 'sqdmull', 'sqdmlal', 'sqdmlsl']) {
  add(`${op} v0.4s, v1.4h, v2.h[5]`);
  add(`${op}2 v0.4s, v1.8h, v2.h[2]`);
  add(`${op} v0.2d, v1.2s, v2.s[3]`);
  add(`${op}2 v0.2d, v1.4s, v2.s[0]`);
}
for (const op of ['sqdmulh', 'sqrdmulh']) {
  add(`${op} h0, h1, v2.h[5]`);
  add(`${op} s0, s1, v2.s[3]`);
}
for (const op of ['sqdmull', 'sqdmlal', 'sqdmlsl']) {
  add(`${op} s0, h1, v2.h[1]`);
  add(`${op} d0, s1, v2.s[2]`);
}

// floating point
const FT: [string, Kind][] = [
  ['2s', 'f'],
  ['4s', 'f'],
  ['2d', 'd'],
];
for (const op of [
  'fadd',
  'fsub',
  'fmul',
  'fdiv',
  'fmla',
  'fmls',
  'fmax',
  'fmin',
  'fmaxnm',
  'fminnm',
  'fmaxp',
  'fminp',
  'fmaxnmp',
  'fminnmp',
  'faddp',
  'fabd',
  'fmulx',
  'fcmeq',
  'fcmge',
  'fcmgt',
  'facge',
  'facgt',
  'frecps',
  'frsqrts',
])
  for (const [t, k] of FT) add(`${op} v0.${t}, v1.${t}, v2.${t}`, k);
for (const op of [
  'fabs',
  'fneg',
  'fsqrt',
  'frintn',
  'frintm',
  'frintp',
  'frintz',
  'frinta',
  'frintx',
  'frinti',
  'fcvtns',
  'fcvtms',
  'fcvtas',
  'fcvtps',
  'fcvtzs',
  'fcvtnu',
  'fcvtmu',
  'fcvtau',
  'fcvtpu',
  'fcvtzu',
  'frecpe',
  'frsqrte',
])
  for (const [t, k] of FT) add(`${op} v0.${t}, v1.${t}`, k);
for (const op of ['scvtf', 'ucvtf']) for (const [t] of FT) add(`${op} v0.${t}, v1.${t}`);
for (const op of ['fcmgt', 'fcmge', 'fcmeq', 'fcmle', 'fcmlt'])
  for (const [t, k] of FT) add(`${op} v0.${t}, v1.${t}, #0.0`, k);
add('fcvtn v0.4h, v1.4s', 'f');
add('fcvtn2 v0.8h, v1.4s', 'f');
add('fcvtn v0.2s, v1.2d', 'd');
add('fcvtn2 v0.4s, v1.2d', 'd');
add('fcvtxn v0.2s, v1.2d', 'd');
add('fcvtxn2 v0.4s, v1.2d', 'd');
add('fcvtxn s0, d1', 'd');
add('fcvtl v0.4s, v1.4h', 'f');
add('fcvtl2 v0.4s, v1.8h', 'f');
add('fcvtl v0.2d, v1.2s', 'f');
add('fcvtl2 v0.2d, v1.4s', 'f');
add('fcvtn2 v1.4s, v1.2d', 'd');
for (const op of ['fmaxv', 'fminv', 'fmaxnmv', 'fminnmv']) add(`${op} s0, v1.4s`, 'f');
for (const op of ['fmla', 'fmls', 'fmul', 'fmulx']) {
  add(`${op} v0.2s, v1.2s, v2.s[3]`, 'f');
  add(`${op} v0.4s, v1.4s, v2.s[1]`, 'f');
  add(`${op} v0.2d, v1.2d, v2.d[1]`, 'd');
  add(`${op} s0, s1, v2.s[2]`, 'f');
  add(`${op} d0, d1, v2.d[0]`, 'd');
}
add('fmla v2.4s, v1.4s, v2.s[1]', 'f');
for (const [op, k] of [
  ['scvtf', 'i'],
  ['ucvtf', 'i'],
  ['fcvtzs', 'x'],
  ['fcvtzu', 'x'],
] as [string, string][]) {
  add(`${op} v0.4s, v1.4s, #5`, k === 'i' ? 'i' : 'f');
  add(`${op} v0.2s, v1.2s, #32`, k === 'i' ? 'i' : 'f');
  add(`${op} v0.2d, v1.2d, #40`, k === 'i' ? 'i' : 'd');
  add(`${op} v0.2d, v1.2d, #1`, k === 'i' ? 'i' : 'd');
  add(`${op} s0, s1, #17`, k === 'i' ? 'i' : 'f');
  add(`${op} d0, d1, #64`, k === 'i' ? 'i' : 'd');
}
for (const [r, k] of [
  ['s', 'f'],
  ['d', 'd'],
] as [string, Kind][]) {
  for (const op of ['fmulx', 'fcmeq', 'fcmge', 'fcmgt', 'facge', 'facgt', 'fabd', 'frecps', 'frsqrts'])
    add(`${op} ${r}0, ${r}1, ${r}2`, k);
  for (const op of [
    'frecpe',
    'frsqrte',
    'frecpx',
    'fcvtns',
    'fcvtms',
    'fcvtas',
    'fcvtps',
    'fcvtzs',
    'fcvtnu',
    'fcvtmu',
    'fcvtau',
    'fcvtpu',
    'fcvtzu',
  ])
    add(`${op} ${r}0, ${r}1`, k);
  add(`scvtf ${r}0, ${r}1`);
  add(`ucvtf ${r}0, ${r}1`);
  for (const op of ['fcmgt', 'fcmge', 'fcmeq', 'fcmle', 'fcmlt']) add(`${op} ${r}0, ${r}1, #0.0`, k);
  for (const op of ['faddp', 'fmaxp', 'fminp', 'fmaxnmp', 'fminnmp'])
    add(`${op} ${r}0, v1.${r === 's' ? '2s' : '2d'}`, k);
}

// ---------------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------------

let seed = Number(process.env.SIMD_TEST_SEED ?? 0x51ad1234) | 0;
function rnd32(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
const rndInt = (n: number): number => rnd32() % n;

/** 16 bytes for one integer register, chunk by chunk with a random style each. */
function intReg(out: Buffer, off: number): void {
  for (let chunk = 0; chunk < 2; chunk++) {
    const o = off + chunk * 8;
    const style = rndInt(6);
    const eb = 1 << rndInt(4);
    if (style <= 1) for (let b = 0; b < 8; b++) out[o + b] = rndInt(256);
    else if (style === 2) for (let b = 0; b < 8; b++) out[o + b] = (rndInt(35) - 17) & 0xff;
    else if (style === 3) for (let b = 0; b < 8; b++) out[o + b] = rndInt(70);
    else {
      // edge values per element of a random size
      for (let e = 0; e < 8; e += eb) {
        const pick = rndInt(7);
        for (let b = 0; b < eb; b++) {
          let v: number;
          const top = b === eb - 1;
          switch (pick) {
            case 0:
              v = 0;
              break;
            case 1:
              v = b === 0 ? 1 : 0;
              break;
            case 2:
              v = top ? 0x7f : 0xff;
              break; // max signed
            case 3:
              v = top ? 0x80 : 0;
              break; // min signed
            case 4:
              v = 0xff;
              break; // -1
            case 5:
              v = top ? 0x80 : rndInt(256);
              break;
            default:
              v = top ? 0x7f : rndInt(256);
          }
          out[o + e + b] = v;
        }
      }
    }
  }
}
const F_SPECIAL = [
  0x0, 0x80000000, 0x1, 0x807fffff, 0x00800000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40000000, 0x3f000000,
  0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00123, 0xffc00321, 0x7f800456, 0xffa00001, 0x4b000001,
  0x4effffff, 0x4f000000, 0xcf000000, 0x5f000000, 0x4f800000, 0x3fa00000, 0x40200000, 0xc0600000,
];
const D_SPECIAL = [
  0x0n,
  0x8000000000000000n,
  0x1n,
  0x800fffffffffffffn,
  0x0010000000000000n,
  0x3ff0000000000000n,
  0xbff0000000000000n,
  0x3ff8000000000000n,
  0x4000000000000000n,
  0x3fe0000000000000n,
  0x7fefffffffffffffn,
  0x7ff0000000000000n,
  0xfff0000000000000n,
  0x7ff8000000000123n,
  0xfff8000000000321n,
  0x7ff0000000000456n,
  0xfff4000000000001n,
  0x4330000000000001n,
  0x41dfffffffc00000n,
  0x41e0000000000000n,
  0xc1e0000000000000n,
  0x43e0000000000000n,
  0xc3e0000000000000n,
  0x43f0000000000000n,
  0x3ff4000000000000n,
  0x4004000000000000n,
];
function fpReg(out: Buffer, off: number, dbl: boolean): void {
  if (dbl) {
    for (let k = 0; k < 2; k++) {
      let v: bigint;
      if (rndInt(3) === 0) v = D_SPECIAL[rndInt(D_SPECIAL.length)];
      else {
        const exp = BigInt(1023 + rndInt(80) - 40);
        v =
          (BigInt(rndInt(2)) << 63n) | (exp << 52n) | ((BigInt(rnd32()) << 20n) | BigInt(rnd32() & 0xfffff));
      }
      out.writeBigUInt64LE(v, off + 8 * k);
    }
  } else {
    for (let k = 0; k < 4; k++) {
      let v: number;
      if (rndInt(3) === 0) v = F_SPECIAL[rndInt(F_SPECIAL.length)];
      else v = ((rndInt(2) << 31) | ((127 + rndInt(70) - 35) << 23) | (rnd32() & 0x7fffff)) >>> 0;
      out.writeUInt32LE(v, off + 4 * k);
    }
  }
}

const RP = 1 << 22;
const RM = 2 << 22;
const RZ = 3 << 22;
const FZ = 1 << 24;
const DN = 1 << 25;
const AHP = 1 << 26;
const FP_FPCRS = [0, RP, RM, RZ, FZ, DN, FZ | DN | RM, AHP | RZ];

// Case record (112 bytes): V0..V3 (64), X0, X1 (16), fpcr (8), op (4), pad (20).
// Result record (96 bytes): V0..V3 (64), X0 (8), fpsr (8), insn (4), pad (12).
const CASE = 112;
const RES = 96;

function cProgram(): string {
  const stubs = INSNS.map(
    ([asm], i) => `static void f${i}(uint64_t *io) {
  __asm__ volatile(
    "ldr x9, [%0, #80]\\n msr fpcr, x9\\n msr fpsr, xzr\\n"
    "ldp q0, q1, [%0]\\n ldp q2, q3, [%0, #32]\\n ldp x0, x1, [%0, #64]\\n"
    "1: ${asm}\\n"
    "mrs x9, fpsr\\n str x9, [%0, #104]\\n"
    "stp q0, q1, [%0]\\n stp q2, q3, [%0, #32]\\n str x0, [%0, #64]\\n adr x9, 1b\\n ldr w9, [x9]\\n str x9, [%0, #88]\\n"
    : : "r"(io) : "x0", "x1", "x9", "v0", "v1", "v2", "v3", "memory", "cc");
}`,
  );
  return `#include <stdint.h>
#include <stdio.h>
#include <string.h>
${stubs.join('\n')}
static void (*const fns[])(uint64_t *) = { ${INSNS.map((_, i) => `f${i}`).join(', ')} };
int main(void) {
  static uint64_t io[14];
  unsigned char in[${CASE}], out[${RES}];
  while (fread(in, 1, ${CASE}, stdin) == ${CASE}) {
    uint32_t op;
    memset(io, 0, sizeof io);
    memcpy(io, in, 88);
    memcpy(&op, in + 88, 4);
    fns[op](io);
    memcpy(out, io, 72);
    memcpy(out + 72, &io[13], 8);
    uint32_t insn = (uint32_t)io[11];
    memcpy(out + 80, &insn, 4);
    memset(out + 84, 0, 12);
    fwrite(out, 1, ${RES}, stdout);
  }
  return 0;
}
`;
}

interface Case {
  op: number;
  data: Buffer; // 88 bytes: V0..V3, X0, X1, fpcr
}

function buildCases(): Case[] {
  const cases: Case[] = [];
  INSNS.forEach(([, kind], op) => {
    const fpcrs = kind === 'i' ? [0] : FP_FPCRS;
    const per = kind === 'i' ? 40 : 10;
    for (const fpcr of fpcrs)
      for (let r = 0; r < per; r++) {
        const data = Buffer.alloc(88);
        for (let v = 0; v < 4; v++) {
          if (kind === 'i' || v === 0) intReg(data, v * 16);
          else fpReg(data, v * 16, kind === 'd');
        }
        for (let b = 64; b < 80; b++) data[b] = rndInt(256);
        data.writeUInt32LE(fpcr >>> 0, 80);
        cases.push({ op, data });
      }
  });
  return cases;
}

function runReference(cases: Case[]): { buf: Buffer; words: number[] } {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-simd-'));
  try {
    writeFileSync(join(dir, 'simdref.c'), cProgram());
    execFileSync(
      'aarch64-linux-gnu-gcc',
      ['-static', '-O1', '-o', join(dir, 'simdref'), join(dir, 'simdref.c')],
      {
        stdio: 'pipe',
      },
    );
    const input = Buffer.alloc(cases.length * CASE);
    cases.forEach((c, i) => {
      c.data.copy(input, i * CASE);
      input.writeUInt32LE(c.op, i * CASE + 88);
    });
    writeFileSync(join(dir, 'cases.bin'), input);
    const r = spawnSync('sh', [
      '-c',
      `qemu-aarch64 ${join(dir, 'simdref')} < ${join(dir, 'cases.bin')} > ${join(dir, 'out.bin')}`,
    ]);
    if (r.status !== 0) throw new Error(`reference program failed: ${r.stderr}`);
    const buf = readFileSync(join(dir, 'out.bin'));
    if (buf.length !== cases.length * RES) throw new Error(`reference program wrote ${buf.length} bytes`);
    const words: number[] = [];
    cases.forEach((c, i) => (words[c.op] = buf.readUInt32LE(i * RES + 80)));
    return { buf, words };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runOnCpu(t: TestCpu, addr: number, c: Case): { out: Buffer; ok: boolean } {
  const cpu = t.cpu;
  const u8 = cpu.vU8;
  u8.fill(0);
  for (let b = 0; b < 64; b++) u8[b] = c.data[b];
  cpu.setXBig(0, c.data.readBigUInt64LE(64));
  cpu.setXBig(1, c.data.readBigUInt64LE(72));
  cpu.fpcr = c.data.readUInt32LE(80);
  cpu.fpsr = 0;
  cpu.pcLo = addr;
  cpu.pcHi = 0;
  t.step(1);
  const out = Buffer.alloc(80);
  for (let b = 0; b < 64; b++) out[b] = u8[b];
  out.writeBigUInt64LE(cpu.xBig(0), 64);
  out.writeBigUInt64LE(BigInt(cpu.fpsr >>> 0), 72);
  return { out, ok: cpu.pcLo === addr + 4 };
}

const hexb = (b: Buffer, from: number, to: number): string => {
  const parts: string[] = [];
  for (let r = from; r < to; r += 16)
    parts.push(
      Buffer.from(b.subarray(r, Math.min(r + 16, to)))
        .reverse()
        .toString('hex'),
    );
  return parts.join(' ');
};

test('AdvSIMD matches qemu-aarch64 bit for bit', { skip: SKIP }, async (t) => {
  const cases = buildCases();
  const { buf, words } = runReference(cases);
  t.diagnostic(`${cases.length} cases over ${INSNS.length} instructions`);
  const tc = makeCpu(words);
  const failures = new Map<number, string[]>();
  cases.forEach((c, i) => {
    const want = buf.subarray(i * RES, i * RES + 80);
    const got = runOnCpu(tc, RAM_BASE + 4 * c.op, c);
    if (!got.ok || !got.out.equals(want)) {
      const list = failures.get(c.op) ?? [];
      if (list.length < 4)
        list.push(
          `fpcr=${c.data.readUInt32LE(80).toString(16)} in V0..V3=${hexb(c.data, 0, 64)} X0,X1=${hexb(c.data, 64, 80)}\n` +
            `    ${got.ok ? '' : 'UNDEF/exception '}want V0..V3=${hexb(want, 0, 64)} X0=${hexb(want, 64, 72)} FPSR=${hexb(want, 72, 80)}\n` +
            `    got  V0..V3=${hexb(got.out, 0, 64)} X0=${hexb(got.out, 64, 72)} FPSR=${hexb(got.out, 72, 80)}`,
        );
      failures.set(c.op, list);
    }
  });
  for (let op = 0; op < INSNS.length; op++) {
    await t.test(`${INSNS[op][0]} (0x${words[op].toString(16).padStart(8, '0')})`, () => {
      const f = failures.get(op);
      assert.ok(!f, f ? `${INSNS[op][0]}:\n  ${f.join('\n  ')}` : '');
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Hand-computed cases. Encodings from aarch64-linux-gnu-as.
// ---------------------------------------------------------------------------------------------------

function exec1(word: number, setup: (t: TestCpu) => void): TestCpu {
  const t = makeCpu([word]);
  setup(t);
  t.step(1);
  assert.equal(t.cpu.pcLo, RAM_BASE + 4, `0x${word.toString(16)} executed without an exception`);
  return t;
}
const setBytes = (t: TestCpu, r: number, f: (b: number) => number): void => {
  for (let b = 0; b < 16; b++) t.cpu.vU8[r * 16 + b] = f(b) & 0xff;
};
const bytes = (t: TestCpu, r: number): number[] => Array.from(t.cpu.vU8.subarray(r * 16, r * 16 + 16));
const QC = 1 << 27;

test('permutes: ZIP1/ZIP2/UZP1/UZP2/TRN1/TRN2 on byte and halfword lanes', () => {
  // V1 = bytes 0..15, V2 = bytes 0x10..0x1f
  const setup = (t: TestCpu): void => {
    setBytes(t, 1, (b) => b);
    setBytes(t, 2, (b) => 0x10 + b);
  };
  const n = [...Array(16).keys()];
  const m = n.map((b) => 0x10 + b);
  // zip1 v0.16b, v1.16b, v2.16b = 0x4e023820
  const zip1 = n.slice(0, 8).flatMap((_, k) => [n[k], m[k]]);
  assert.deepEqual(bytes(exec1(0x4e023820, setup), 0), zip1);
  // zip2 v0.16b = 0x4e027820
  assert.deepEqual(
    bytes(exec1(0x4e027820, setup), 0),
    n.slice(0, 8).flatMap((_, k) => [n[8 + k], m[8 + k]]),
  );
  // uzp1 v0.16b = 0x4e021820 ; uzp2 = 0x4e025820
  const cat = [...n, ...m];
  assert.deepEqual(
    bytes(exec1(0x4e021820, setup), 0),
    cat.filter((_, k) => k % 2 === 0),
  );
  assert.deepEqual(
    bytes(exec1(0x4e025820, setup), 0),
    cat.filter((_, k) => k % 2 === 1),
  );
  // trn1 v0.16b = 0x4e022820 ; trn2 = 0x4e026820
  assert.deepEqual(
    bytes(exec1(0x4e022820, setup), 0),
    n.map((_, k) => (k % 2 ? m[k - 1] : n[k])),
  );
  assert.deepEqual(
    bytes(exec1(0x4e026820, setup), 0),
    n.map((_, k) => (k % 2 ? m[k] : n[k + 1])),
  );
  // zip1 v0.4h, v1.4h, v2.4h = 0x0e423820: halfwords n0 m0 n1 m1, upper 64 bits zero
  const t = exec1(0x0e423820, (t) => {
    setup(t);
    setBytes(t, 0, () => 0xee);
  });
  assert.deepEqual(bytes(t, 0), [0, 1, 0x10, 0x11, 2, 3, 0x12, 0x13, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('EXT, TBL and TBX', () => {
  const setup = (t: TestCpu): void => {
    setBytes(t, 1, (b) => b);
    setBytes(t, 2, (b) => 0x10 + b);
  };
  // ext v0.16b, v1.16b, v2.16b, #3 = 0x6e021820
  assert.deepEqual(
    bytes(exec1(0x6e021820, setup), 0),
    [...Array(16).keys()].map((k) => k + 3),
  );
  // tbl v0.16b, {v1.16b, v2.16b}, v3.16b = 0x4e032020 ; indexes 31, 0, 32 (out of range), 255, 16...
  const idx = [31, 0, 32, 255, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const expect = idx.map((x) => (x < 32 ? x : 0));
  const st = (t: TestCpu): void => {
    setup(t);
    setBytes(t, 3, (b) => idx[b]);
    setBytes(t, 0, () => 0xaa);
  };
  assert.deepEqual(bytes(exec1(0x4e032020, st), 0), expect);
  // tbx v0.16b, {v1.16b, v2.16b}, v3.16b = 0x4e033020: out of range keeps the destination byte
  assert.deepEqual(
    bytes(exec1(0x4e033020, st), 0),
    idx.map((x) => (x < 32 ? x : 0xaa)),
  );
});

test('saturating arithmetic sets FPSR.QC and clamps', () => {
  // sqadd v0.16b, v1.16b, v2.16b = 0x4e220c20: 0x7f + 1 -> 0x7f (QC), 0x80 + 0xff -> 0x80 (QC), 1 + 2 = 3
  let t = exec1(0x4e220c20, (t) => {
    setBytes(t, 1, (b) => [0x7f, 0x80, 1][b % 3]);
    setBytes(t, 2, (b) => [1, 0xff, 2][b % 3]);
  });
  assert.deepEqual(
    bytes(t, 0),
    [...Array(16).keys()].map((b) => [0x7f, 0x80, 3][b % 3]),
  );
  assert.equal(t.cpu.fpsr & QC, QC);
  // uqsub v0.8h, v1.8h, v2.8h = 0x6e622c20: 5 - 7 -> 0 (QC)
  t = exec1(0x6e622c20, (t) => {
    for (let k = 0; k < 8; k++) {
      t.cpu.vU16[8 + k] = 5;
      t.cpu.vU16[16 + k] = k < 4 ? 7 : 3;
    }
  });
  assert.deepEqual(Array.from(t.cpu.vU16.subarray(0, 8)), [0, 0, 0, 0, 2, 2, 2, 2]);
  assert.equal(t.cpu.fpsr & QC, QC);
  // no saturation leaves QC clear: add 1 + 2 with uqadd v0.4s = 0x6ea20c20
  t = exec1(0x6ea20c20, (t) => {
    t.cpu.vU32.fill(1, 4, 8);
    t.cpu.vU32.fill(2, 8, 12);
  });
  assert.deepEqual(Array.from(t.cpu.vU32.subarray(0, 4)), [3, 3, 3, 3]);
  assert.equal(t.cpu.fpsr & QC, 0);
  // sqxtn v0.8b, v1.8h = 0x0e214820: 300 -> 127, -300 -> -128, 5 -> 5
  t = exec1(0x0e214820, (t) => {
    const vals = [300, -300, 5, -5, 127, -128, 128, -129];
    vals.forEach((v, k) => (t.cpu.vU16[8 + k] = v & 0xffff));
  });
  assert.deepEqual(bytes(t, 0), [127, 128, 5, 251, 127, 128, 127, 128, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(t.cpu.fpsr & QC, QC);
  // sqdmulh v0.4s, v1.4s, v2.4s = 0x4ea2b420: INT32_MIN * INT32_MIN saturates to INT32_MAX
  t = exec1(0x4ea2b420, (t) => {
    t.cpu.vU32.fill(0x80000000, 4, 8);
    t.cpu.vU32.fill(0x80000000, 8, 12);
  });
  assert.deepEqual(Array.from(t.cpu.vU32.subarray(0, 4)), [0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff]);
  assert.equal(t.cpu.fpsr & QC, QC);
});

test('MOVI / MVNI / ORR / BIC immediates and DUP/UMOV', () => {
  // movi v0.2s, #0x56, msl #8 = 0x0f02c6c0 -> 0x000056ff per lane, upper half zero
  let t = exec1(0x0f02c6c0, (t) => setBytes(t, 0, () => 0xee));
  assert.deepEqual(Array.from(t.cpu.vU32.subarray(0, 4)), [0x56ff, 0x56ff, 0, 0]);
  // movi d0, #0xff00ff0000ffff00 = 0x2f05e4c0
  t = exec1(0x2f05e4c0, (t) => setBytes(t, 0, () => 0xee));
  assert.equal(t.cpu.vU64[0], 0xff00ff0000ffff00n);
  assert.equal(t.cpu.vU64[1], 0n);
  // mvni v0.4s, #0x7f, msl #16 = 0x6f03d7e0 -> ~0x007fffff
  t = exec1(0x6f03d7e0, () => {});
  assert.deepEqual(Array.from(t.cpu.vU32.subarray(0, 4)), Array(4).fill(0xff800000));
  // bic v0.8h, #0x56, lsl #8 = 0x6f02b6c0
  t = exec1(0x6f02b6c0, (t) => t.cpu.vU16.fill(0xffff, 0, 8));
  assert.deepEqual(Array.from(t.cpu.vU16.subarray(0, 8)), Array(8).fill(0xa9ff));
  // fmov v0.2d, #0.125 = 0x6f02f400
  t = exec1(0x6f02f400, () => {});
  assert.deepEqual(Array.from(t.cpu.vF64.subarray(0, 2)), [0.125, 0.125]);
  // dup v0.8h, w1 = 0x4e060c20
  t = exec1(0x4e060c20, (t) => t.cpu.setX(1, 0x12345678, 0));
  assert.deepEqual(Array.from(t.cpu.vU16.subarray(0, 8)), Array(8).fill(0x5678));
  // umov x0, v1.d[1] = 0x4e183c20
  t = exec1(0x4e183c20, (t) => {
    t.cpu.vU64[3] = 0x0123456789abcdefn;
  });
  assert.equal(t.cpu.xBig(0), 0x0123456789abcdefn);
  // smov x0, v1.h[7] = 0x4e1e2c20
  t = exec1(0x4e1e2c20, (t) => (t.cpu.vU16[15] = 0x8001));
  assert.equal(t.cpu.xBig(0), 0xffffffffffff8001n);
});

test('UMINV / UMAXV / ADDV / UADDLV across lanes', () => {
  const setup = (t: TestCpu): void => setBytes(t, 1, (b) => [9, 200, 3, 77][b % 4] + (b >> 2));
  const vals = [...Array(16).keys()].map((b) => [9, 200, 3, 77][b % 4] + (b >> 2));
  // uminv b0, v1.16b = 0x6e31a820 ; umaxv = 0x6e30a820 ; addv b0, v1.16b = 0x4e31b820 ; uaddlv h0 = 0x6e303820
  assert.equal(exec1(0x6e31a820, setup).cpu.vU8[0], Math.min(...vals));
  assert.equal(exec1(0x6e30a820, setup).cpu.vU8[0], Math.max(...vals));
  const sum = vals.reduce((a, b) => a + b, 0);
  const t = exec1(0x4e31b820, setup);
  assert.equal(t.cpu.vU8[0], sum & 0xff);
  assert.deepEqual(bytes(t, 0).slice(1), Array(15).fill(0));
  assert.equal(exec1(0x6e303820, setup).cpu.vU16[0], sum);
});

test('unallocated and unadvertised encodings are UNDEF', () => {
  const undef = (word: number, what: string): void => {
    const t = makeCpu([word]);
    t.cpu.sys.VBAR_EL1 = 0x40001000n;
    t.step(1);
    assert.equal(t.cpu.pcLo, 0x40001200, `${what} (0x${word.toString(16)}) should be UNDEF`);
    assert.equal(Number(t.cpu.sys.ESR_EL1 >> 26n), EC.UNKNOWN, what);
  };
  undef(0x0ee1e000, 'pmull v0.1q, v0.1d, v1.1d (crypto)');
  undef(0x4e284800, 'aese v0.16b, v0.16b (crypto)');
  undef(0x5e000000, 'sha1c q0, s0, v0.4s (crypto)');
  undef(0x6e828400, 'sqrdmlah v0.4s, v0.4s, v2.4s (ARMv8.1)');
  undef(0x4e829400, 'sdot v0.4s, v0.16b, v2.16b (dot product)');
  undef(0x4e401400, 'fadd v0.8h, v0.8h, v0.8h (FP16)');
  undef(0x0ee18400, 'add v0.1d (size 3 with Q = 0, reserved)');
  undef(0x0ee1a400, 'smaxp with size 3 (reserved)');
  undef(0x0e303800 | (3 << 22), 'saddlv with size 3 (reserved)');
  undef(0x2f00f400 | 0, 'fmov 2d immediate with Q = 0 (unallocated)');
});

test('register numbering: TBL wraps from V31 to V0, by-element Rm above V15', () => {
  // tbl v0.16b, {v31.16b, v0.16b}, v1.16b = 0x4e0123e0: index 0..15 -> V31, 16..31 -> V0 (its old value)
  let t = exec1(0x4e0123e0, (t) => {
    setBytes(t, 31, (b) => 0xa0 + b);
    setBytes(t, 0, (b) => 0xc0 + b);
    setBytes(t, 1, (b) => [0, 15, 16, 31, 32, 5, 20, 255][b % 8]);
  });
  assert.deepEqual(
    bytes(t, 0),
    [...Array(16).keys()].map((b) => {
      const x = [0, 15, 16, 31, 32, 5, 20, 255][b % 8];
      return x < 16 ? 0xa0 + x : x < 32 ? 0xc0 + x - 16 : 0;
    }),
  );
  // mul v0.4s, v1.4s, v17.s[3] = 0x4fb18820
  t = exec1(0x4fb18820, (t) => {
    t.cpu.vU32.set([1, 2, 0x80000000, 0xffffffff], 4);
    t.cpu.vU32[17 * 4 + 3] = 3;
  });
  assert.deepEqual(Array.from(t.cpu.vU32.subarray(0, 4)), [3, 6, 0x80000000, 0xfffffffd]);
  // mla v0.8h, v1.8h, v15.h[7] = 0x6f7f0820: V0 += V1 * V15.H[7]
  t = exec1(0x6f7f0820, (t) => {
    for (let k = 0; k < 8; k++) {
      t.cpu.vU16[k] = 100 * k;
      t.cpu.vU16[8 + k] = k + 0xfff0;
    }
    t.cpu.vU16[15 * 8 + 7] = 2;
  });
  assert.deepEqual(
    Array.from(t.cpu.vU16.subarray(0, 8)),
    [...Array(8).keys()].map((k) => (100 * k + 2 * (k + 0xfff0)) & 0xffff),
  );
  // fmul v0.2d, v1.2d, v31.d[1] = 0x4fdf9820
  t = exec1(0x4fdf9820, (t) => {
    t.cpu.vF64[2] = 1.5;
    t.cpu.vF64[3] = -4;
    t.cpu.vF64[63] = 0.25;
  });
  assert.deepEqual(Array.from(t.cpu.vF64.subarray(0, 2)), [0.375, -1]);
});

test('AdvSIMD instructions trap when CPACR_EL1.FPEN disables FP/SIMD', () => {
  const t = makeCpu([0x4ee28420]); // add v0.2d, v1.2d, v2.2d
  t.cpu.sys.VBAR_EL1 = 0x40001000n;
  t.cpu.fpEn1 = false;
  t.cpu.vU32.fill(7, 0, 4);
  t.step(1);
  assert.equal(t.cpu.pcLo, 0x40001200);
  assert.equal(Number(t.cpu.sys.ESR_EL1 >> 26n), EC.FP_ACCESS);
  assert.deepEqual(Array.from(t.cpu.vU32.subarray(0, 4)), [7, 7, 7, 7], 'destination untouched');
});

test('DUP / INS from register 31 read XZR, not SP', () => {
  // dup v0.4s, wzr = 0x4e040fe0
  let t = exec1(0x4e040fe0, (t) => {
    t.cpu.r[62] = 0x1234; // slot 31 is SP
    t.cpu.r[63] = 0x5678;
    setBytes(t, 0, () => 0xee);
  });
  assert.deepEqual(bytes(t, 0), Array(16).fill(0));
  // mov v0.d[1], xzr = 0x4e181fe0
  t = exec1(0x4e181fe0, (t) => {
    t.cpu.r[62] = 0x1234;
    setBytes(t, 0, () => 0xee);
  });
  assert.deepEqual(bytes(t, 0), [...Array(8).fill(0xee), ...Array(8).fill(0)]);
  // umov w1, v0.s[1] = 0x0e0c3c01
  t = exec1(0x0e0c3c01, (t) => {
    t.cpu.vU32[1] = 0xdeadbeef;
    t.cpu.setX(1, -1, -1);
  });
  assert.equal(t.cpu.xBig(1), 0xdeadbeefn);
});

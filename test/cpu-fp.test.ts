// Scalar floating point (insn/fp.ts, fpu.ts).
//
// 1. Differential test against qemu-aarch64: the test writes a static aarch64 C program with one inline-asm
//    stub per instruction, builds it with aarch64-linux-gnu-gcc and runs it under qemu-aarch64 on a table
//    of inputs (zeros, subnormals, infinities, quiet/signalling NaNs with payloads, near-overflow values,
//    halfway cases, random values) under every rounding mode and with FZ / DN / AHP. The captured results
//    (all 128 bits of V0, X0, FPSR, NZCV) are the fixture; the same instruction words run on typevisor's CPU
//    and must give the same bits. Skipped (with a message) when the cross compiler or qemu is missing.
// 2. Hand-checked cases (FCMP flags, conversion saturation) that need no tools.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCpu, RAM_BASE, type TestCpu } from './helpers/arm64.js';
import type { Arm64Cpu } from '../src/cpu/arm64/cpu.js';
import * as fpu from '../src/cpu/arm64/fpu.js';

// ---------------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------------

function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}
const TOOLS = haveTool('aarch64-linux-gnu-gcc') && haveTool('qemu-aarch64');
const SKIP = TOOLS
  ? false
  : 'aarch64-linux-gnu-gcc and/or qemu-aarch64 not installed: qemu reference comparison skipped';

// ---------------------------------------------------------------------------------------------------
// Instructions under test. Operands: V1 = {in0, in1} (so D1/S1/H1 = in0 and V1.D[1] = in1), D2 = in1,
// D3 = in2, X1 = in0; results in V0 (preset to 0x55 bytes) and X0 (preset to all ones).
// kind selects the input generator.
// ---------------------------------------------------------------------------------------------------

type Kind = 'd' | 'dd' | 'ddd' | 's' | 'ss' | 'sss' | 'h' | 'x' | 'w';
type Direct = (cpu: Arm64Cpu) => void;
const INSNS: [string, Kind, Direct?][] = [];
for (const p of ['d', 's'] as const) {
  const k2: Kind = p === 'd' ? 'dd' : 'ss';
  const k3: Kind = p === 'd' ? 'ddd' : 'sss';
  for (const op of ['fadd', 'fsub', 'fmul', 'fnmul', 'fdiv', 'fmax', 'fmin', 'fmaxnm', 'fminnm'])
    INSNS.push([`${op} ${p}0, ${p}1, ${p}2`, k2]);
  for (const op of ['fmadd', 'fmsub', 'fnmadd', 'fnmsub'])
    INSNS.push([`${op} ${p}0, ${p}1, ${p}2, ${p}3`, k3]);
  for (const op of [
    'fmov',
    'fabs',
    'fneg',
    'fsqrt',
    'frintn',
    'frintp',
    'frintm',
    'frintz',
    'frinta',
    'frintx',
    'frinti',
  ])
    INSNS.push([`${op} ${p}0, ${p}1`, p]);
  INSNS.push(
    [`fcmp ${p}1, ${p}2`, k2],
    [`fcmpe ${p}1, ${p}2`, k2],
    [`fcmp ${p}1, #0.0`, p],
    [`fcmpe ${p}1, #0.0`, p],
  );
  INSNS.push([`fccmp ${p}1, ${p}2, #5, eq`, k2], [`fccmpe ${p}1, ${p}2, #10, ge`, k2]);
  INSNS.push([`fcsel ${p}0, ${p}1, ${p}2, eq`, k2], [`fcsel ${p}0, ${p}1, ${p}2, lt`, k2]);
  for (const r of ['n', 'p', 'm', 'z', 'a'])
    for (const u of ['s', 'u']) for (const g of ['w', 'x']) INSNS.push([`fcvt${r}${u} ${g}0, ${p}1`, p]);
  for (const g of ['w', 'x'] as const) {
    INSNS.push(
      [`fcvtzs ${g}0, ${p}1, #7`, p],
      [`fcvtzu ${g}0, ${p}1, #1`, p],
      [`fcvtzs ${g}0, ${p}1, #32`, p],
    );
    INSNS.push([`scvtf ${p}0, ${g}1`, g], [`ucvtf ${p}0, ${g}1`, g]);
    INSNS.push([`scvtf ${p}0, ${g}1, #5`, g], [`ucvtf ${p}0, ${g}1, #32`, g], [`scvtf ${p}0, ${g}1, #1`, g]);
  }
  INSNS.push([`fmov ${p}0, #-1.25`, p], [`fmov ${p}0, #31.0`, p], [`fmov ${p}0, #0.125`, p]);
}
INSNS.push(['fcvt s0, d1', 'd'], ['fcvt d0, s1', 's'], ['fcvt h0, s1', 's'], ['fcvt h0, d1', 'd']);
INSNS.push(['fcvt s0, h1', 'h'], ['fcvt d0, h1', 'h']);
INSNS.push(['fmov x0, d1', 'd'], ['fmov d0, x1', 'x'], ['fmov w0, s1', 's'], ['fmov s0, w1', 'w']);
INSNS.push(['fmov x0, v1.d[1]', 'dd'], ['fmov v0.d[1], x1', 'x']);

// AdvSIMD scalar instructions whose arithmetic lives in fpu.ts: the fpu functions are called directly
// (V0 element 0 = f(V1, V2), rest of V0 zeroed, as the scalar instruction does).
function zeroAbove(cpu: Arm64Cpu, bytes: number): void {
  cpu.vU8.fill(0, bytes, 16);
}
const d2 =
  (f: (c: Arm64Cpu, d: number, n: number, m: number) => void): Direct =>
  (c) => (f(c, 0, 2, 4), zeroAbove(c, 8));
const s2 =
  (f: (c: Arm64Cpu, d: number, n: number, m: number) => void): Direct =>
  (c) => (f(c, 0, 4, 8), zeroAbove(c, 4));
const d1 =
  (f: (c: Arm64Cpu, d: number, n: number) => void): Direct =>
  (c) => (f(c, 0, 2), zeroAbove(c, 8));
const s1 =
  (f: (c: Arm64Cpu, d: number, n: number) => void): Direct =>
  (c) => (f(c, 0, 4), zeroAbove(c, 4));
const cmp =
  (is64: boolean, kind: number): Direct =>
  (c) => {
    const r = is64 ? fpu.fpCompareCond64(c, 2, 4, kind) : fpu.fpCompareCond32(c, 4, 8, kind);
    c.vU32.fill(0, 0, 4);
    c.vU32.fill(r ? 0xffffffff : 0, 0, is64 ? 2 : 1);
  };
INSNS.push(
  ['frecpe d0, d1', 'd', d1(fpu.fpRecipEstimate64)],
  ['frecpe s0, s1', 's', s1(fpu.fpRecipEstimate32)],
  ['frsqrte d0, d1', 'd', d1(fpu.fpRSqrtEstimate64)],
  ['frsqrte s0, s1', 's', s1(fpu.fpRSqrtEstimate32)],
  ['frecpx d0, d1', 'd', d1(fpu.fpRecpX64)],
  ['frecpx s0, s1', 's', s1(fpu.fpRecpX32)],
  ['frecps d0, d1, d2', 'dd', d2(fpu.fpRecipStep64)],
  ['frecps s0, s1, s2', 'ss', s2(fpu.fpRecipStep32)],
  ['frsqrts d0, d1, d2', 'dd', d2(fpu.fpRSqrtStep64)],
  ['frsqrts s0, s1, s2', 'ss', s2(fpu.fpRSqrtStep32)],
  ['fmulx d0, d1, d2', 'dd', d2(fpu.fpMulX64)],
  ['fmulx s0, s1, s2', 'ss', s2(fpu.fpMulX32)],
  ['fcvtxn s0, d1', 'd', (c) => (fpu.fpCvtDS(c, 0, 2, fpu.RM_ODD), zeroAbove(c, 4))],
  ['fcmeq d0, d1, d2', 'dd', cmp(true, 0)],
  ['fcmge s0, s1, s2', 'ss', cmp(false, 1)],
  ['fcmgt d0, d1, d2', 'dd', cmp(true, 2)],
);

// FPCR settings: RMode (23:22), FZ (24), DN (25), AHP (26).
const RP = 1 << 22;
const RM = 2 << 22;
const RZ = 3 << 22;
const FZ = 1 << 24;
const DN = 1 << 25;
const AHP = 1 << 26;
const FPCRS = [0, RP, RM, RZ, FZ, DN, FZ | DN | RP, FZ | RM, FZ | RZ, AHP, AHP | RM];

// ---------------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------------

let seed = Number(process.env.FP_TEST_SEED ?? 0x2545f491) | 0;
function rnd32(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
const rndInt = (n: number): number => rnd32() % n;
const rnd64 = (): bigint => (BigInt(rnd32()) << 32n) | BigInt(rnd32());

const D_SPECIAL = [
  0x0n,
  0x8000000000000000n,
  0x1n,
  0x3n,
  0x800fffffffffffffn,
  0x000fffffffffffffn,
  0x0010000000000000n,
  0x8010000000000000n,
  0x0010000000000001n,
  0x3ff0000000000000n,
  0xbff0000000000000n,
  0x3ff0000000000001n,
  0x3ff8000000000000n,
  0x4000000000000000n,
  0x4004000000000000n,
  0xc004000000000000n,
  0x3fe0000000000000n,
  0x3fb999999999999an,
  0x4008000000000000n,
  0x7fefffffffffffffn,
  0xffefffffffffffffn,
  0x7fe0000000000000n,
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
  0x3cb0000000000000n,
  0x000ffffffffffffen,
];
const S_SPECIAL = [
  0x0, 0x80000000, 0x1, 0x3, 0x807fffff, 0x007fffff, 0x00800000, 0x80800000, 0x00800001, 0x3f800000,
  0xbf800000, 0x3f800001, 0x3fc00000, 0x40000000, 0x40200000, 0xc0200000, 0x3f000000, 0x3dcccccd, 0x40400000,
  0x7f7fffff, 0xff7fffff, 0x7f000000, 0x7f800000, 0xff800000, 0x7fc00123, 0xffc00321, 0x7f800456, 0xffa00001,
  0x4b000001, 0x4effffff, 0x4f000000, 0xcf000000, 0x5f000000, 0xdf000000, 0x5f800000, 0x33800000, 0x477fe000,
  0x477ff000, 0x387fc000, 0x33000000, 0x007ffffe,
];
const H_SPECIAL = [
  0x0, 0x8000, 0x1, 0x3ff, 0x400, 0x3c00, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7e01, 0x7d01, 0xfc01,
  0x7fff, 0xffff,
];
const I_SPECIAL = [
  0n,
  1n,
  0xffffffffffffffffn,
  0x8000000000000000n,
  0x7fffffffffffffffn,
  0xffffffffn,
  0x80000000n,
  0x7fffffffn,
  0x20000000000001n,
  0x20000000000003n,
  0x1000001n,
  0x1000003n,
  0xffffffff80000000n,
  0xfffffffffeffffffn,
  0x8000000000000400n,
  0x8000000000000401n,
  0x7ffffffffffffdffn,
  0x123456789abcdefn,
];

/** A random double: exponent from interesting ranges, mantissa random / short / extreme. */
function rndD(): bigint {
  const sign = BigInt(rndInt(2)) << 63n;
  let e: number;
  switch (rndInt(6)) {
    case 0:
      e = rndInt(2047);
      break;
    case 1:
      e = 1023 - 8 + rndInt(16);
      break;
    case 2:
      e = rndInt(60);
      break;
    case 3:
      e = 2046 - rndInt(60);
      break;
    case 4:
      e = 0;
      break;
    default:
      e = 1023 + 20 - rndInt(80);
  }
  let m = rnd64() & 0xfffffffffffffn;
  const r = rndInt(4);
  if (r === 0)
    m &= 0xffffff8000000n; // short mantissa: exact / halfway products
  else if (r === 1) m |= 0xfffffff000000n;
  return sign | (BigInt(e) << 52n) | m;
}
function rndS(): bigint {
  const sign = rndInt(2) << 31;
  let e: number;
  switch (rndInt(6)) {
    case 0:
      e = rndInt(255);
      break;
    case 1:
      e = 127 - 8 + rndInt(16);
      break;
    case 2:
      e = rndInt(30);
      break;
    case 3:
      e = 254 - rndInt(30);
      break;
    case 4:
      e = 0;
      break;
    default:
      e = 112 + rndInt(32); // half-precision range
  }
  let m = rnd32() & 0x7fffff;
  const r = rndInt(4);
  if (r === 0) m &= 0x7ff000;
  else if (r === 1) m |= 0x7ff000;
  return BigInt((sign | (e << 23) | m) >>> 0) | 0x1234567800000000n; // garbage above the single
}
/** A double that converts to half with interesting rounding. */
function rndDHalf(): bigint {
  const sign = BigInt(rndInt(2)) << 63n;
  const e = 1023 - 26 + rndInt(46);
  let m = rnd64() & 0xfffffffffffffn;
  if (rndInt(2)) m &= 0xfff0000000000n;
  return sign | (BigInt(e) << 52n) | m;
}
function rndI(): bigint {
  switch (rndInt(4)) {
    case 0:
      return I_SPECIAL[rndInt(I_SPECIAL.length)];
    case 1:
      return BigInt.asUintN(64, BigInt(rnd32() | 0)); // sign-extended 32-bit
    case 2:
      return rnd64() >> BigInt(rndInt(64));
    default:
      return rnd64();
  }
}
const pick = <T>(a: T[]): T => a[rndInt(a.length)];
const sBits = (x: number): bigint => BigInt(x >>> 0) | 0x1234567800000000n;

function inputsFor(kind: Kind, insn: string): bigint[][] {
  const out: bigint[][] = [];
  const arity = kind === 'dd' || kind === 'ss' ? 2 : kind === 'ddd' || kind === 'sss' ? 3 : 1;
  const isD = kind[0] === 'd';
  const special = (): bigint => (isD ? pick(D_SPECIAL) : sBits(pick(S_SPECIAL)));
  const random = (): bigint => (isD ? (insn.startsWith('fcvt h') ? rndDHalf() : rndD()) : rndS());
  if (kind === 'h') {
    for (const h of H_SPECIAL) out.push([BigInt(h) | 0xabcd0000n, 0n, 0n]);
    for (let i = 0; i < 250; i++) out.push([BigInt(rnd32() & 0xffff), 0n, 0n]);
    return out;
  }
  if (kind === 'x' || kind === 'w') {
    for (const v of I_SPECIAL) out.push([v, 0x0123456789abcdefn, 0n]);
    for (let i = 0; i < 250; i++) out.push([rndI(), rnd64(), 0n]);
    return out;
  }
  if (arity === 1) {
    const sp = isD ? D_SPECIAL : S_SPECIAL.map(sBits);
    for (const v of sp) out.push([v, 0n, 0n]);
    for (let i = 0; i < 250; i++) out.push([random(), 0n, 0n]);
  } else if (arity === 2) {
    const sp = isD ? D_SPECIAL : S_SPECIAL.map(sBits);
    for (let i = 0; i < sp.length; i++)
      for (let j = 0; j < sp.length; j += 3) out.push([sp[i], sp[(j + i) % sp.length], 0n]);
    for (let i = 0; i < 900; i++) {
      const a = random();
      let b = random();
      const mask = isD ? 0x7ffn : 0xffn;
      const sh = isD ? 52n : 23n;
      const bias = isD ? 1023n : 127n;
      if (rndInt(3) === 0) {
        // product or quotient near the subnormal range / the overflow threshold
        const ea = (a >> sh) & mask;
        const mul = insn.startsWith('fmul') || insn.startsWith('fnmul');
        const target = rndInt(2) === 0 ? BigInt(rndInt(isD ? 60 : 30)) - 2n : mask - 1n - BigInt(rndInt(4));
        let eb = mul ? target + bias - ea : ea - target + bias;
        if (eb < 0n) eb = 0n;
        if (eb > mask - 1n) eb = mask - 1n;
        b = (b & ~(mask << sh)) | (eb << sh);
      } else if (rndInt(2) === 0) {
        // close exponents: cancellation, halfway and sticky cases
        const sh = isD ? 52n : 23n;
        const ea = (a >> sh) & (isD ? 0x7ffn : 0xffn);
        const eb = ea - BigInt(rndInt(isD ? 56 : 27));
        if (eb > 0n) b = (b & ~((isD ? 0x7ffn : 0xffn) << sh)) | (eb << sh);
      }
      out.push([a, b, 0n]);
    }
  } else {
    for (let i = 0; i < 300; i++) out.push([special(), special(), special()]);
    for (let i = 0; i < 1500; i++) {
      const a = random();
      let b = random();
      if (rndInt(3) === 0) {
        // product near the subnormal range or the overflow threshold
        const mask = isD ? 0x7ffn : 0xffn;
        const sh = isD ? 52n : 23n;
        const bias = isD ? 1023n : 127n;
        const target = rndInt(2) === 0 ? BigInt(rndInt(isD ? 60 : 30)) - 2n : mask - 1n - BigInt(rndInt(4));
        let eb = target + bias - ((a >> sh) & mask);
        if (eb < 0n) eb = 0n;
        if (eb > mask - 1n) eb = mask - 1n;
        b = (b & ~(mask << sh)) | (eb << sh);
      }
      // addend near the product: cancellation and rounding on the last bits
      let c = random();
      if (rndInt(2) === 0 && isD) {
        const p = f64(a) * f64(b);
        if (Number.isFinite(p)) c = bitsOf64(-p * (1 + (rndInt(3) - 1) * 2 ** -52));
      } else if (rndInt(2) === 0 && !isD) {
        const p = Math.fround(f32(a) * f32(b));
        if (Number.isFinite(p)) c = BigInt(bitsOf32(-p)) | 0x1234567800000000n;
      }
      out.push([a, b, c]);
    }
  }
  return out;
}
const fb = new Float64Array(1);
const fbu = new BigUint64Array(fb.buffer);
const sb = new Float32Array(1);
const sbu = new Uint32Array(sb.buffer);
function f64(b: bigint): number {
  fbu[0] = b;
  return fb[0];
}
function bitsOf64(x: number): bigint {
  fb[0] = x;
  return fbu[0];
}
function f32(b: bigint): number {
  sbu[0] = Number(b & 0xffffffffn);
  return sb[0];
}
function bitsOf32(x: number): number {
  sb[0] = x;
  return sbu[0];
}

// ---------------------------------------------------------------------------------------------------
// The reference program
// ---------------------------------------------------------------------------------------------------

// Case record (48 bytes): in0, in1, in2 (u64), fpcr (u64), nzcv (u64), op (u32), pad.
// Result record (48 bytes): q0 lo, q0 hi, x0 (u64), fpsr (u32), nzcv (u32), insn (u32), pad (u32), pad (u64).
const CASE = 48;
const RES = 48;

function cProgram(): string {
  const stubs = INSNS.map(
    ([asm], i) => `static void f${i}(uint64_t *io) {
  __asm__ volatile(
    "ldr x9, [%0, #24]\\n msr fpcr, x9\\n msr fpsr, xzr\\n ldr x9, [%0, #32]\\n msr nzcv, x9\\n"
    "ldr q1, [%0]\\n ldr d2, [%0, #8]\\n ldr d3, [%0, #16]\\n ldr x1, [%0]\\n"
    "movi v0.16b, #0x55\\n mov x0, #-1\\n"
    "1: ${asm}\\n"
    "mrs x9, fpsr\\n str x9, [%0, #64]\\n mrs x9, nzcv\\n str x9, [%0, #72]\\n"
    "str q0, [%0, #48]\\n str x0, [%0, #80]\\n adr x9, 1b\\n ldr w9, [x9]\\n str x9, [%0, #88]\\n"
    : : "r"(io) : "x0", "x1", "x9", "v0", "v1", "v2", "v3", "memory", "cc");
}`,
  );
  return `#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
${stubs.join('\n')}
static void (*const fns[])(uint64_t *) = { ${INSNS.map((_, i) => `f${i}`).join(', ')} };
int main(void) {
  static uint64_t io[12];
  unsigned char in[${CASE}], out[${RES}];
  while (fread(in, 1, ${CASE}, stdin) == ${CASE}) {
    uint32_t op;
    memset(io, 0, sizeof io);
    memcpy(io, in, 40);
    memcpy(&op, in + 40, 4);
    fns[op](io);
    uint64_t r[6];
    r[0] = io[6]; r[1] = io[7]; r[2] = io[10];
    uint32_t w[2] = { (uint32_t)io[8], (uint32_t)io[9] };
    memcpy(out, r, 24); memcpy(out + 24, w, 8);
    uint32_t insn = (uint32_t)io[11]; memcpy(out + 32, &insn, 4);
    memset(out + 36, 0, 12);
    fwrite(out, 1, ${RES}, stdout);
  }
  return 0;
}
`;
}

interface Case {
  op: number;
  fpcr: number;
  nzcv: number;
  in: bigint[];
}

function buildCases(): Case[] {
  const cases: Case[] = [];
  INSNS.forEach(([asm, kind], op) => {
    const usesHalf = asm.includes('h0') || asm.includes('h1');
    for (const fpcr of FPCRS) {
      if ((fpcr & AHP) !== 0 && !usesHalf) continue;
      for (const inp of inputsFor(kind, asm)) cases.push({ op, fpcr, nzcv: rndInt(16) << 28, in: inp });
    }
  });
  return cases;
}

function runReference(cases: Case[]): { buf: Buffer; words: number[] } {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-fp-'));
  try {
    writeFileSync(join(dir, 'fpref.c'), cProgram());
    execFileSync(
      'aarch64-linux-gnu-gcc',
      ['-static', '-O1', '-o', join(dir, 'fpref'), join(dir, 'fpref.c')],
      { stdio: 'pipe' },
    );
    const input = Buffer.alloc(cases.length * CASE);
    cases.forEach((c, i) => {
      const o = i * CASE;
      input.writeBigUInt64LE(c.in[0], o);
      input.writeBigUInt64LE(c.in[1], o + 8);
      input.writeBigUInt64LE(c.in[2], o + 16);
      input.writeBigUInt64LE(BigInt(c.fpcr >>> 0), o + 24);
      input.writeBigUInt64LE(BigInt(c.nzcv >>> 0), o + 32);
      input.writeUInt32LE(c.op, o + 40);
    });
    writeFileSync(join(dir, 'cases.bin'), input);
    const r = spawnSync('sh', [
      '-c',
      `qemu-aarch64 ${join(dir, 'fpref')} < ${join(dir, 'cases.bin')} > ${join(dir, 'out.bin')}`,
    ]);
    if (r.status !== 0) throw new Error(`reference program failed: ${r.stderr}`);
    const buf = readFileSync(join(dir, 'out.bin'));
    if (buf.length !== cases.length * RES) throw new Error(`reference program wrote ${buf.length} bytes`);
    const words: number[] = [];
    cases.forEach((c, i) => (words[c.op] = buf.readUInt32LE(i * RES + 32)));
    return { buf, words };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hex = (v: bigint | number, w = 16): string => v.toString(16).padStart(w, '0');

function runOnCpu(
  t: TestCpu,
  addr: number,
  c: Case,
): { q0lo: bigint; q0hi: bigint; x0: bigint; fpsr: number; nzcv: number; ok: boolean } {
  const cpu = t.cpu;
  const u = cpu.vU64;
  u[2] = c.in[0]; // V1 = {in0, in1}
  u[3] = c.in[1];
  u[4] = c.in[1]; // D2
  u[5] = 0n;
  u[6] = c.in[2]; // D3
  u[7] = 0n;
  u[0] = 0x5555555555555555n;
  u[1] = 0x5555555555555555n;
  cpu.setXBig(1, c.in[0]);
  cpu.setX(0, -1, -1);
  cpu.fpcr = c.fpcr;
  cpu.fpsr = 0;
  cpu.nzcv = c.nzcv >>> 28;
  cpu.pcLo = addr;
  cpu.pcHi = 0;
  const direct = INSNS[c.op][2];
  if (direct) {
    cpu.checkFp();
    direct(cpu);
    cpu.pcLo = addr + 4;
  } else t.step(1);
  return {
    q0lo: u[0],
    q0hi: u[1],
    x0: cpu.xBig(0),
    fpsr: cpu.fpsr,
    nzcv: (cpu.nzcv << 28) >>> 0,
    ok: cpu.pcLo === addr + 4,
  };
}

test('scalar FP matches qemu-aarch64 bit for bit', { skip: SKIP }, async (t) => {
  const cases = buildCases();
  const { buf, words } = runReference(cases);
  t.diagnostic(`${cases.length} cases over ${INSNS.length} instructions`);
  const tc = makeCpu(words);
  const failures = new Map<number, string[]>();
  let compared = 0;
  cases.forEach((c, i) => {
    const o = i * RES;
    const want = {
      q0lo: buf.readBigUInt64LE(o),
      q0hi: buf.readBigUInt64LE(o + 8),
      x0: buf.readBigUInt64LE(o + 16),
      fpsr: buf.readUInt32LE(o + 24),
      nzcv: buf.readUInt32LE(o + 28),
    };
    const got = runOnCpu(tc, RAM_BASE + 4 * c.op, c);
    compared++;
    const same =
      got.ok &&
      got.q0lo === want.q0lo &&
      got.q0hi === want.q0hi &&
      got.x0 === want.x0 &&
      got.fpsr === want.fpsr &&
      got.nzcv === want.nzcv;
    if (!same) {
      const list = failures.get(c.op) ?? [];
      if (list.length < 6)
        list.push(
          `fpcr=${hex(c.fpcr, 8)} nzcv=${c.nzcv >>> 28} in=${c.in.map((v) => hex(v)).join(',')}: ` +
            (got.ok ? '' : 'UNDEF/exception ') +
            `want q0=${hex(want.q0hi)}${hex(want.q0lo)} x0=${hex(want.x0)} fpsr=${hex(want.fpsr, 2)} nzcv=${want.nzcv >>> 28} ` +
            `got q0=${hex(got.q0hi)}${hex(got.q0lo)} x0=${hex(got.x0)} fpsr=${hex(got.fpsr, 2)} nzcv=${got.nzcv >>> 28}`,
        );
      failures.set(c.op, list);
    }
  });
  for (let op = 0; op < INSNS.length; op++) {
    await t.test(`${INSNS[op][0]} (0x${hex(words[op], 8)})`, () => {
      const f = failures.get(op);
      assert.ok(!f, f ? `${INSNS[op][0]}:\n  ${f.join('\n  ')}` : '');
    });
  }
  assert.ok(compared > 10000);
});

// ---------------------------------------------------------------------------------------------------
// Hand-checked cases (no tools needed). Encodings from aarch64-linux-gnu-as.
// ---------------------------------------------------------------------------------------------------

const W = {
  fcmp_d1_d2: 0x1e622020,
  fcmpe_d1_d2: 0x1e622030,
  fcmp_s1_0: 0x1e202028,
  fcvtzs_w0_d1: 0x1e780020,
  fcvtzu_w0_d1: 0x1e790020,
  fcvtzs_x0_d1: 0x9e780020,
  fcvtzu_x0_s1: 0x9e390020,
  fcvtas_w0_d1: 0x1e640020,
  fcvtns_x0_d1: 0x9e600020,
  fadd_d0_d1_d2: 0x1e622820,
};

function exec1(word: number, setup: (t: TestCpu) => void): TestCpu {
  const t = makeCpu([word]);
  setup(t);
  t.step(1);
  assert.equal(t.cpu.pcLo, RAM_BASE + 4, 'instruction executed without an exception');
  return t;
}
const setD = (t: TestCpu, n: number, v: number): void => {
  t.cpu.vF64[2 * n] = v;
};

test('FCMP / FCMPE set NZCV as the architecture specifies', () => {
  const cases: [number, number, number, number][] = [
    // a, b, NZCV, FPSR after FCMP
    [1, 2, 0b1000, 0],
    [2, 1, 0b0010, 0],
    [2, 2, 0b0110, 0],
    [0, -0, 0b0110, 0],
    [-Infinity, Infinity, 0b1000, 0],
    [NaN, 1, 0b0011, 0], // quiet NaN: no exception for FCMP
  ];
  for (const [a, b, nzcv, fpsr] of cases) {
    const t = exec1(W.fcmp_d1_d2, (t) => {
      setD(t, 1, a);
      setD(t, 2, b);
      t.cpu.nzcv = 0b0101;
    });
    assert.equal(t.cpu.nzcv, nzcv, `fcmp ${a}, ${b}`);
    assert.equal(t.cpu.fpsr, fpsr);
  }
  // FCMPE signals Invalid Operation on a quiet NaN.
  const t = exec1(W.fcmpe_d1_d2, (t) => {
    setD(t, 1, 1);
    setD(t, 2, NaN);
  });
  assert.equal(t.cpu.nzcv, 0b0011);
  assert.equal(t.cpu.fpsr, 1);
  // FCMP with a signalling NaN signals too; FCMP s1, #0.0 with -0.0 is equal.
  const t2 = exec1(W.fcmp_d1_d2, (t) => {
    t.cpu.vU32[4] = 1;
    t.cpu.vU32[5] = 0x7ff00000;
    setD(t, 2, 0);
  });
  assert.equal(t2.cpu.nzcv, 0b0011);
  assert.equal(t2.cpu.fpsr, 1);
  const t3 = exec1(W.fcmp_s1_0, (t) => (t.cpu.vU32[4] = 0x80000000));
  assert.equal(t3.cpu.nzcv, 0b0110);
});

test('FP to integer conversions saturate and signal', () => {
  const cases: [number, number, bigint, number][] = [
    // word, input, expected X0 (W results zero-extended), FPSR
    [W.fcvtzs_w0_d1, 1e10, 0x7fffffffn, 1],
    [W.fcvtzs_w0_d1, -1e10, 0x80000000n, 1],
    [W.fcvtzs_w0_d1, -2147483648.75, 0x80000000n, 0x10], // truncates into range: inexact only
    [W.fcvtzs_w0_d1, 2147483647.5, 0x7fffffffn, 0x10],
    [W.fcvtzs_w0_d1, 2147483648, 0x7fffffffn, 1],
    [W.fcvtzs_w0_d1, -1.5, 0xffffffffn, 0x10],
    [W.fcvtzs_w0_d1, NaN, 0n, 1],
    [W.fcvtzu_w0_d1, -1, 0n, 1],
    [W.fcvtzu_w0_d1, -0.5, 0n, 0x10], // rounds to zero: in range
    [W.fcvtzu_w0_d1, 4294967295.9, 0xffffffffn, 0x10],
    [W.fcvtzu_w0_d1, 4294967296, 0xffffffffn, 1],
    [W.fcvtzs_x0_d1, 2 ** 63, 0x7fffffffffffffffn, 1],
    [W.fcvtzs_x0_d1, -(2 ** 63), 0x8000000000000000n, 0],
    [W.fcvtzs_x0_d1, -Infinity, 0x8000000000000000n, 1],
    [W.fcvtzs_x0_d1, -123456789012.75, BigInt.asUintN(64, -123456789012n), 0x10],
    [W.fcvtas_w0_d1, 2.5, 3n, 0x10],
    [W.fcvtas_w0_d1, -2.5, 0xfffffffdn, 0x10],
    [W.fcvtns_x0_d1, 2.5, 2n, 0x10],
    [W.fcvtns_x0_d1, 3.5, 4n, 0x10],
    [W.fcvtns_x0_d1, -3.5, BigInt.asUintN(64, -4n), 0x10],
  ];
  for (const [word, v, x0, fpsr] of cases) {
    const t = exec1(word, (t) => setD(t, 1, v));
    assert.equal(t.cpu.xBig(0), x0, `0x${hex(word, 8)} of ${v}`);
    assert.equal(t.cpu.fpsr, fpsr, `0x${hex(word, 8)} of ${v}: fpsr`);
  }
  // FCVTZU X0, S1 of 2^64 (single 0x5f800000) saturates to all ones.
  const t = exec1(W.fcvtzu_x0_s1, (t) => (t.cpu.vU32[4] = 0x5f800000));
  assert.equal(t.cpu.xBig(0), 0xffffffffffffffffn);
  assert.equal(t.cpu.fpsr, 1);
});

test('FADD rounding modes on a halfway case', () => {
  // 1 + 2^-53 is exactly halfway between 1 and 1 + 2^-52.
  const up = 1 + 2 ** -52;
  for (const [fpcr, want] of [
    [0, 1],
    [RP, up],
    [RM, 1],
    [RZ, 1],
  ] as const) {
    const t = exec1(W.fadd_d0_d1_d2, (t) => {
      setD(t, 1, 1);
      setD(t, 2, 2 ** -53);
      t.cpu.fpcr = fpcr;
    });
    assert.equal(t.cpu.vF64[0], want);
    assert.equal(t.cpu.fpsr, 0x10);
    assert.equal(t.cpu.vU64[1], 0n, 'upper half zeroed');
  }
});

test('FEAT_FP16 arithmetic and unallocated FP encodings are UNDEF', () => {
  const undef = [
    0x1ee22820, // fadd h0, h1, h2
    0x1ee70020, // fmov h0, w1
    0x1ee1c020, // fsqrt h0, h1
    0x1ef80020, // fcvtzs w0, h1
    0x1ee20020, // scvtf h0, w1
    0x1eee1000, // fmov h0, #1.0
    0x1ee22020, // fcmp h1, h2
    0x1ea22820, // ftype = 10
    0x1e224020, // fcvt with the same source and destination precision
    0x1e180020, // fcvtzs w0, s1, #fbits with scale<5> = 0
    0x1e26c020, // frint opcode 001101 (unallocated)
    0x3e222820, // fadd with S = 1
  ];
  for (const w of undef) {
    const t = makeCpu([w]);
    t.cpu.sys.VBAR_EL1 = BigInt(RAM_BASE + 0x1000);
    t.step(1);
    assert.equal(t.cpu.pcLo, RAM_BASE + 0x1200, `0x${hex(w, 8)} raises an exception`);
    assert.equal(Number(t.cpu.sys.ESR_EL1 >> 26n), 0, `0x${hex(w, 8)}: EC = unknown`);
  }
});

test('FMOV (immediate) expands all 256 imm8 values', () => {
  for (const is64 of [false, true]) {
    for (let imm8 = 0; imm8 < 256; imm8++) {
      // imm8 = a:b:c:d:e:f:g:h -> (-1)^a * (16 + efgh) / 16 * 2^(b ? cd - 3 : cd + 1)
      const a = imm8 >> 7;
      const b = (imm8 >> 6) & 1;
      const cd = (imm8 >> 4) & 3;
      const want = (a ? -1 : 1) * ((16 + (imm8 & 15)) / 16) * 2 ** (b ? cd - 3 : cd + 1);
      const word = (0x1e201000 | ((is64 ? 1 : 0) << 22) | (imm8 << 13) | 5) >>> 0;
      const t = exec1(word, (t) => t.cpu.vU32.fill(0xffffffff, 20, 24));
      const got = is64 ? t.cpu.vF64[10] : t.cpu.vF32[20];
      assert.equal(got, want, `imm8 0x${imm8.toString(16)}`);
      assert.deepEqual([...t.cpu.vU32.subarray(is64 ? 22 : 21, 24)], is64 ? [0, 0] : [0, 0, 0]);
    }
  }
});

test('FP instructions trap (EC 0x07) when CPACR_EL1.FPEN disables FP at EL1', () => {
  const t = makeCpu([0x1e622820]); // fadd d0, d1, d2
  t.cpu.sys.VBAR_EL1 = BigInt(RAM_BASE + 0x1000);
  t.cpu.fpEn1 = false;
  t.cpu.vF64[2] = 1;
  t.cpu.vF64[4] = 2;
  t.step(1);
  assert.equal(t.cpu.pcLo, RAM_BASE + 0x1200);
  assert.equal(Number(t.cpu.sys.ESR_EL1 >> 26n), 0x07);
  assert.equal(t.cpu.vF64[0], 0, 'destination untouched');
});

// A64 integer data-processing instructions: random operands checked against a BigInt model written
// from the Arm ARM pseudo-code (independent of the implementation), flags included, W and X forms,
// register 31 as SP or XZR, edge cases and UNDEF encodings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';

const M64 = (1n << 64n) - 1n;
const M32 = 0xffffffffn;
const VBAR = BigInt(RAM_BASE + 0x1000);

// ---- deterministic random numbers ----
let seed = 0x1234567;
function rnd32(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
const rndInt = (n: number): number => rnd32() % n;
const SPECIAL: bigint[] = [
  0n,
  1n,
  2n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fffffffn,
  0x80000000n,
  0xfffffffen,
  0xffffffffn,
  0x100000000n,
  0x1ffffffffn,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0x8000000000000001n,
  0xfffffffffffffffen,
  0xffffffffffffffffn,
  0xffffffff00000000n,
  0x00000000ffffffffn,
  0xffffffff80000000n,
  0xffffffff7fffffffn,
];
function rnd64(): bigint {
  const k = rndInt(8);
  if (k < 2) return SPECIAL[rndInt(SPECIAL.length)];
  if (k === 2) return BigInt(rndInt(100)); // small
  if (k === 3) return (-BigInt(rndInt(100) + 1)) & M64; // small negative
  return (BigInt(rnd32()) << 32n) | BigInt(rnd32());
}
/** A register number, 31 (SP/XZR) with probability ~1/6. */
const rreg = (): number => (rndInt(6) === 0 ? 31 : rndInt(31));

// ---- the model ----
const mask = (bits: number): bigint => (bits === 64 ? M64 : M32);
const sInt = (x: bigint, bits: number): bigint => BigInt.asIntN(bits, x);
const uInt = (x: bigint, bits: number): bigint => BigInt.asUintN(bits, x);

interface Flags {
  n: number;
  z: number;
  c: number;
  v: number;
}
const nzcvOf = (f: Flags): number => (f.n << 3) | (f.z << 2) | (f.c << 1) | f.v;

/** AddWithCarry(x, y, carry_in) from the Arm ARM. */
function addWithCarry(x: bigint, y: bigint, cin: number, bits: number): { res: bigint; nzcv: number } {
  const usum = uInt(x, bits) + uInt(y, bits) + BigInt(cin);
  const ssum = sInt(x, bits) + sInt(y, bits) + BigInt(cin);
  const res = uInt(usum, bits);
  const n = Number(res >> BigInt(bits - 1));
  const z = res === 0n ? 1 : 0;
  const c = res === usum ? 0 : 1;
  const v = sInt(res, bits) === ssum ? 0 : 1;
  return { res, nzcv: nzcvOf({ n, z, c, v }) };
}

function shiftModel(x: bigint, type: number, amt: number, bits: number): bigint {
  x = uInt(x, bits);
  const a = BigInt(amt);
  switch (type) {
    case 0:
      return uInt(x << a, bits);
    case 1:
      return x >> a;
    case 2:
      return uInt(sInt(x, bits) >> a, bits);
    default:
      return uInt((x >> a) | (x << (BigInt(bits) - a)), bits);
  }
}

function extendModel(x: bigint, option: number, shift: number, bits: number): bigint {
  const size = 8 << (option & 3);
  const v = option >= 4 ? sInt(x, size) : uInt(x, size);
  return uInt(v << BigInt(shift), bits);
}

function conditionModel(cond: number, nzcv: number): boolean {
  const N = (nzcv >> 3) & 1;
  const Z = (nzcv >> 2) & 1;
  const C = (nzcv >> 1) & 1;
  const V = nzcv & 1;
  let r: boolean;
  switch (cond >> 1) {
    case 0:
      r = Z === 1;
      break;
    case 1:
      r = C === 1;
      break;
    case 2:
      r = N === 1;
      break;
    case 3:
      r = V === 1;
      break;
    case 4:
      r = C === 1 && Z === 0;
      break;
    case 5:
      r = N === V;
      break;
    case 6:
      r = N === V && Z === 0;
      break;
    default:
      r = true;
  }
  if ((cond & 1) === 1 && cond !== 15) r = !r;
  return r;
}

const ones = (k: number): bigint => (1n << BigInt(k)) - 1n;
function rorModel(x: bigint, r: number, bits: number): bigint {
  if (r === 0) return x;
  return uInt((x >> BigInt(r)) | (x << BigInt(bits - r)), bits);
}
function replicate(x: bigint, esize: number, bits: number): bigint {
  let out = 0n;
  for (let i = 0; i < bits; i += esize) out |= x << BigInt(i);
  return out;
}

/** DecodeBitMasks(immN, imms, immr, immediate, M) from the Arm ARM; undefined = UNDEFINED. */
function decodeBitMasks(
  immN: number,
  imms: number,
  immr: number,
  immediate: boolean,
  M: number,
): { wmask: bigint; tmask: bigint } | undefined {
  const combined = (immN << 6) | (~imms & 0x3f);
  let len = -1;
  for (let i = 6; i >= 0; i--)
    if ((combined >> i) & 1) {
      len = i;
      break;
    }
  if (len < 1) return undefined;
  if (M < 1 << len) return undefined;
  const levels = (1 << len) - 1;
  if (immediate && (imms & levels) === levels) return undefined;
  const S = imms & levels;
  const R = immr & levels;
  const diff = (S - R) & 0x3f;
  const esize = 1 << len;
  const d = diff & (esize - 1);
  const welem = ones(S + 1);
  const telem = ones(d + 1);
  return { wmask: replicate(rorModel(welem, R, esize), esize, M), tmask: replicate(telem, esize, M) };
}

// ---- the harness ----
interface State {
  x: bigint[]; // X0..X30
  sp: bigint;
  nzcv: number;
}
function randomState(): State {
  const x: bigint[] = [];
  for (let i = 0; i < 31; i++) x.push(rnd64());
  return { x, sp: rnd64(), nzcv: rndInt(16) };
}
const clone = (s: State): State => ({ x: s.x.slice(), sp: s.sp, nzcv: s.nzcv });
/** Read register n: 31 is SP when spForm, else XZR. */
const rd = (s: State, n: number, spForm = false): bigint => (n === 31 ? (spForm ? s.sp : 0n) : s.x[n]);
/** Write register n: 31 is SP when spForm, else discarded. W results are zero-extended. */
function wr(s: State, n: number, v: bigint, bits: number, spForm = false): void {
  v = uInt(v, bits);
  if (n === 31) {
    if (spForm) s.sp = v;
  } else s.x[n] = v;
}

const tc = makeCpu([], { ramSize: 64 * 1024 });

/** Execute one instruction word from state s; returns the resulting state, or 'undef'. */
function execute(word: number, s: State): State | 'undef' {
  const { cpu, mem } = tc;
  mem.dv.setUint32(0, word >>> 0, true);
  cpu.code.invalidateAll();
  cpu.invalidateFetch();
  for (let i = 0; i < 31; i++) cpu.setXBig(i, s.x[i]);
  cpu.r[62] = Number(s.sp & M32) | 0;
  cpu.r[63] = Number(s.sp >> 32n) | 0;
  cpu.nzcv = s.nzcv;
  cpu.el = 1;
  cpu.spsel = 1;
  cpu.sys.VBAR_EL1 = VBAR;
  cpu.sys.ESR_EL1 = 0x12345678n;
  cpu.pcLo = RAM_BASE;
  cpu.pcHi = 0;
  tc.step(1);
  if (cpu.pc === VBAR + 0x200n) {
    assert.equal(cpu.sys.ESR_EL1 >> 26n, 0n, 'UNDEF has EC 0');
    assert.equal(cpu.sys.ELR_EL1, BigInt(RAM_BASE));
    return 'undef';
  }
  assert.equal(cpu.pc, BigInt(RAM_BASE + 4), `0x${hex(word)}: next PC`);
  const x: bigint[] = [];
  for (let i = 0; i < 31; i++) x.push(cpu.xBig(i));
  const sp = (BigInt(cpu.r[63] >>> 0) << 32n) | BigInt(cpu.r[62] >>> 0);
  return { x, sp, nzcv: cpu.nzcv };
}

const hex = (v: number | bigint, w = 8): string => v.toString(16).padStart(w, '0');

function check(word: number, s: State, exp: State, what: string): void {
  const got = execute(word, s);
  const ctx = () =>
    `${what} [0x${hex(word >>> 0)}] inputs: ${s.x.map((v, i) => `x${i}=${hex(v, 16)}`).join(' ')} sp=${hex(s.sp, 16)} nzcv=${s.nzcv}`;
  assert.notEqual(got, 'undef', `${ctx()}: unexpected UNDEF`);
  if (got === 'undef') return;
  for (let i = 0; i < 31; i++) {
    if (got.x[i] !== exp.x[i]) assert.fail(`${ctx()}: x${i} = ${hex(got.x[i], 16)}, expected ${hex(exp.x[i], 16)}`);
  }
  if (got.sp !== exp.sp) assert.fail(`${ctx()}: sp = ${hex(got.sp, 16)}, expected ${hex(exp.sp, 16)}`);
  if (got.nzcv !== exp.nzcv) assert.fail(`${ctx()}: nzcv = ${got.nzcv.toString(2)}, expected ${exp.nzcv.toString(2)}`);
}

function checkUndef(word: number, what: string): void {
  assert.equal(execute(word, randomState()), 'undef', `${what} [0x${hex(word >>> 0)}] should be UNDEF`);
}

// ---- encoders (field layouts from the Arm ARM) ----
const u = (x: number): number => x >>> 0;
const E = {
  addSubImm: (sf: number, op: number, S: number, sh: number, imm12: number, rn: number, rdd: number) =>
    u((sf << 31) | (op << 30) | (S << 29) | (0b100010 << 23) | (sh << 22) | (imm12 << 10) | (rn << 5) | rdd),
  logImm: (sf: number, opc: number, N: number, immr: number, imms: number, rn: number, rdd: number) =>
    u((sf << 31) | (opc << 29) | (0b100100 << 23) | (N << 22) | (immr << 16) | (imms << 10) | (rn << 5) | rdd),
  movWide: (sf: number, opc: number, hw: number, imm16: number, rdd: number) =>
    u((sf << 31) | (opc << 29) | (0b100101 << 23) | (hw << 21) | (imm16 << 5) | rdd),
  bitfield: (sf: number, opc: number, N: number, immr: number, imms: number, rn: number, rdd: number) =>
    u((sf << 31) | (opc << 29) | (0b100110 << 23) | (N << 22) | (immr << 16) | (imms << 10) | (rn << 5) | rdd),
  extr: (sf: number, N: number, rm: number, imms: number, rn: number, rdd: number) =>
    u((sf << 31) | (0b100111 << 23) | (N << 22) | (rm << 16) | (imms << 10) | (rn << 5) | rdd),
  adr: (op: number, imm: number, rdd: number) =>
    u((op << 31) | ((imm & 3) << 29) | (0b10000 << 24) | (((imm >> 2) & 0x7ffff) << 5) | rdd),
  logReg: (sf: number, opc: number, shift: number, N: number, rm: number, imm6: number, rn: number, rdd: number) =>
    u((sf << 31) | (opc << 29) | (0b01010 << 24) | (shift << 22) | (N << 21) | (rm << 16) | (imm6 << 10) | (rn << 5) | rdd),
  addSubShift: (sf: number, op: number, S: number, shift: number, rm: number, imm6: number, rn: number, rdd: number) =>
    u((sf << 31) | (op << 30) | (S << 29) | (0b01011 << 24) | (shift << 22) | (rm << 16) | (imm6 << 10) | (rn << 5) | rdd),
  addSubExt: (sf: number, op: number, S: number, rm: number, option: number, imm3: number, rn: number, rdd: number) =>
    u(
      (sf << 31) | (op << 30) | (S << 29) | (0b01011 << 24) | (1 << 21) | (rm << 16) | (option << 13) | (imm3 << 10) | (rn << 5) | rdd,
    ),
  adcSbc: (sf: number, op: number, S: number, rm: number, rn: number, rdd: number) =>
    u((sf << 31) | (op << 30) | (S << 29) | (0b11010000 << 21) | (rm << 16) | (rn << 5) | rdd),
  ccmp: (sf: number, op: number, imm: number, rmOrImm5: number, cond: number, rn: number, nzcv: number) =>
    u((sf << 31) | (op << 30) | (1 << 29) | (0b11010010 << 21) | (rmOrImm5 << 16) | (cond << 12) | (imm << 11) | (rn << 5) | nzcv),
  csel: (sf: number, op: number, o2: number, rm: number, cond: number, rn: number, rdd: number) =>
    u((sf << 31) | (op << 30) | (0b11010100 << 21) | (rm << 16) | (cond << 12) | (o2 << 10) | (rn << 5) | rdd),
  dp1: (sf: number, opcode: number, rn: number, rdd: number) =>
    u((sf << 31) | (1 << 30) | (0b11010110 << 21) | (opcode << 10) | (rn << 5) | rdd),
  dp2: (sf: number, opcode: number, rm: number, rn: number, rdd: number) =>
    u((sf << 31) | (0b11010110 << 21) | (rm << 16) | (opcode << 10) | (rn << 5) | rdd),
  dp3: (sf: number, op31: number, o0: number, rm: number, ra: number, rn: number, rdd: number) =>
    u((sf << 31) | (0b11011 << 24) | (op31 << 21) | (rm << 16) | (o0 << 15) | (ra << 10) | (rn << 5) | rdd),
};

test('encoders agree with the GNU assembler', () => {
  // words from aarch64-linux-gnu-as + objdump
  const table: [number, number, string][] = [
    [E.addSubImm(1, 0, 0, 0, 0x123, 2, 1), 0x91048c41, 'add x1, x2, #0x123'],
    [E.addSubImm(0, 0, 1, 1, 5, 4, 3), 0x31401483, 'adds w3, w4, #0x5, lsl #12'],
    [E.addSubImm(1, 1, 0, 0, 16, 31, 31), 0xd10043ff, 'sub sp, sp, #16'],
    [E.addSubImm(1, 1, 1, 0, 1, 5, 31), 0xf10004bf, 'cmp x5, #1'],
    [E.logImm(1, 0, 0, 8, 0x27, 1, 0), 0x92089c20, 'and x0, x1, #0xff00ff00ff00ff00'],
    [E.logImm(0, 1, 0, 0, 0x33, 3, 2), 0x3200cc62, 'orr w2, w3, #0x0f0f0f0f'],
    [E.logImm(1, 2, 1, 0, 0, 4, 31), 0xd240009f, 'eor sp, x4, #1'],
    [E.logImm(1, 3, 1, 63, 61, 7, 6), 0xf27ff4e6, 'ands x6, x7, #0x7ffffffffffffffe'],
    [E.movWide(1, 2, 3, 0x1234, 1), 0xd2e24681, 'movz x1, #0x1234, lsl #48'],
    [E.movWide(0, 0, 1, 0xffff, 2), 0x12bfffe2, 'movn w2, #0xffff, lsl #16'],
    [E.movWide(1, 3, 2, 0xbeef, 3), 0xf2d7dde3, 'movk x3, #0xbeef, lsl #32'],
    [E.bitfield(1, 0, 1, 3, 10, 2, 1), 0x93432841, 'sbfm x1, x2, #3, #10'],
    [E.bitfield(0, 1, 0, 30, 1, 5, 4), 0x331e04a4, 'bfm w4, w5, #30, #1'],
    [E.bitfield(1, 2, 1, 63, 62, 7, 6), 0xd37ff8e6, 'ubfm x6, x7, #63, #62'],
    [E.extr(1, 1, 3, 17, 2, 1), 0x93c34441, 'extr x1, x2, x3, #17'],
    [E.extr(0, 0, 6, 31, 5, 4), 0x13867ca4, 'extr w4, w5, w6, #31'],
    [E.adr(0, 0x1235, 7), 0x300091a7, 'adr x7, .+0x1235'],
    [E.logReg(1, 3, 3, 1, 3, 63, 2, 1), 0xeae3fc41, 'bics x1, x2, x3, ror #63'],
    [E.logReg(0, 2, 2, 1, 6, 31, 5, 4), 0x4aa67ca4, 'eon w4, w5, w6, asr #31'],
    [E.addSubShift(1, 1, 1, 1, 9, 32, 8, 7), 0xeb498107, 'subs x7, x8, x9, lsr #32'],
    [E.addSubShift(0, 0, 0, 0, 12, 3, 11, 10), 0x0b0c0d6a, 'add w10, w11, w12, lsl #3'],
    [E.addSubExt(1, 0, 0, 2, 6, 2, 31, 1), 0x8b22cbe1, 'add x1, sp, w2, sxtw #2'],
    [E.addSubExt(0, 1, 1, 4, 0, 4, 31, 3), 0x6b2413e3, 'subs w3, wsp, w4, uxtb #4'],
    [E.adcSbc(1, 0, 1, 7, 6, 5), 0xba0700c5, 'adcs x5, x6, x7'],
    [E.adcSbc(0, 1, 0, 10, 9, 8), 0x5a0a0128, 'sbc w8, w9, w10'],
    [E.ccmp(1, 1, 1, 31, 12, 1, 0xa), 0xfa5fc82a, 'ccmp x1, #31, #0xa, gt'],
    [E.ccmp(0, 0, 0, 3, 6, 2, 5), 0x3a436045, 'ccmn w2, w3, #5, vs'],
    [E.csel(1, 0, 0, 3, 1, 2, 1), 0x9a831041, 'csel x1, x2, x3, ne'],
    [E.csel(0, 0, 1, 6, 8, 5, 4), 0x1a8684a4, 'csinc w4, w5, w6, hi'],
    [E.csel(1, 1, 0, 9, 11, 8, 7), 0xda89b107, 'csinv x7, x8, x9, lt'],
    [E.csel(0, 1, 1, 12, 14, 11, 10), 0x5a8ce56a, 'csneg w10, w11, w12, al'],
    [E.dp1(1, 0, 2, 1), 0xdac00041, 'rbit x1, x2'],
    [E.dp1(0, 1, 4, 3), 0x5ac00483, 'rev16 w3, w4'],
    [E.dp1(1, 2, 6, 5), 0xdac008c5, 'rev32 x5, x6'],
    [E.dp1(1, 3, 8, 7), 0xdac00d07, 'rev x7, x8'],
    [E.dp1(0, 2, 10, 9), 0x5ac00949, 'rev w9, w10'],
    [E.dp1(1, 4, 12, 11), 0xdac0118b, 'clz x11, x12'],
    [E.dp1(0, 5, 14, 13), 0x5ac015cd, 'cls w13, w14'],
    [E.dp2(1, 2, 3, 2, 1), 0x9ac30841, 'udiv x1, x2, x3'],
    [E.dp2(0, 3, 6, 5, 4), 0x1ac60ca4, 'sdiv w4, w5, w6'],
    [E.dp2(1, 8, 9, 8, 7), 0x9ac92107, 'lslv x7, x8, x9'],
    [E.dp2(0, 11, 12, 11, 10), 0x1acc2d6a, 'rorv w10, w11, w12'],
    [E.dp3(1, 0, 0, 3, 4, 2, 1), 0x9b031041, 'madd x1, x2, x3, x4'],
    [E.dp3(0, 0, 1, 7, 8, 6, 5), 0x1b07a0c5, 'msub w5, w6, w7, w8'],
    [E.dp3(1, 1, 0, 3, 4, 2, 1), 0x9b231041, 'smaddl x1, w2, w3, x4'],
    [E.dp3(1, 5, 1, 7, 8, 6, 5), 0x9ba7a0c5, 'umsubl x5, w6, w7, x8'],
    [E.dp3(1, 2, 0, 11, 31, 10, 9), 0x9b4b7d49, 'smulh x9, x10, x11'],
    [E.dp3(1, 6, 0, 14, 31, 13, 12), 0x9bce7dac, 'umulh x12, x13, x14'],
  ];
  for (const [got, want, text] of table) assert.equal(hex(got), hex(want), text);
});

const N_RANDOM = 1000;

test('ADD/ADDS/SUB/SUBS (immediate): W/X, LSL #12, SP forms, flags', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const op = rndInt(2);
    const S = rndInt(2);
    const sh = rndInt(2);
    const imm12 = rndInt(3) === 0 ? [0, 1, 0xfff][rndInt(3)] : rndInt(4096);
    const rn = rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const a = rd(s, rn, true);
    const imm = BigInt(imm12) << (sh ? 12n : 0n);
    const r = op ? addWithCarry(a, ~imm, 1, bits) : addWithCarry(a, imm, 0, bits);
    wr(e, rdd, r.res, bits, S === 0);
    if (S) e.nzcv = r.nzcv;
    check(E.addSubImm(sf, op, S, sh, imm12, rn, rdd), s, e, `addsub imm sf=${sf} op=${op} S=${S}`);
  }
});

test('add/sub immediate edge cases: carry across bit 31, overflow, CMP', () => {
  const cases: [number, number, number, bigint, number, bigint, number][] = [
    // sf, op, S, Xn value, imm12, expected result, expected nzcv
    [1, 0, 1, 0xffffffffn, 1, 0x100000000n, 0b0000],
    [1, 0, 1, 0xffffffffffffffffn, 1, 0n, 0b0110],
    [1, 0, 1, 0x7fffffffffffffffn, 1, 0x8000000000000000n, 0b1001],
    [1, 1, 1, 0x100000000n, 1, 0xffffffffn, 0b0010],
    [1, 1, 1, 0n, 1, 0xffffffffffffffffn, 0b1000],
    [1, 1, 1, 0x8000000000000000n, 1, 0x7fffffffffffffffn, 0b0011],
    [1, 1, 1, 5n, 5, 0n, 0b0110],
    [0, 0, 1, 0xffffffffn, 1, 0n, 0b0110],
    [0, 0, 1, 0x7fffffffn, 1, 0x80000000n, 0b1001],
    [0, 1, 1, 0x80000000n, 1, 0x7fffffffn, 0b0011],
    [0, 1, 1, 0x1_00000000n, 1, 0xffffffffn, 0b1000], // upper bits ignored for W
  ];
  for (const [sf, op, S, xn, imm12, res, nzcv] of cases) {
    const s = randomState();
    s.x[1] = xn;
    const e = clone(s);
    e.x[0] = res;
    e.nzcv = nzcv;
    check(E.addSubImm(sf, op, S, 0, imm12, 1, 0), s, e, 'edge');
  }
});

test('ADR', () => {
  for (let i = 0; i < N_RANDOM; i++) {
    const imm = (rnd32() << 11) >> 11; // signed 21 bits
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    wr(e, rdd, BigInt(RAM_BASE) + BigInt(imm), 64);
    check(E.adr(0, imm, rdd), s, e, 'adr');
  }
  // ADRP: (PC & ~0xfff) + (imm << 12)
  for (let i = 0; i < N_RANDOM; i++) {
    const imm = (rnd32() << 11) >> 11;
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    wr(e, rdd, BigInt(RAM_BASE) + (BigInt(imm) << 12n), 64);
    check(E.adr(1, imm, rdd), s, e, 'adrp');
  }
});

/** Random (N, immr, imms) for a logical immediate: valid ones mostly. */
function randomBitmaskFields(sf: number): [number, number, number] {
  const N = sf ? rndInt(2) : 0;
  return [N, rndInt(64), rndInt(64)];
}

test('logical immediate: AND/ORR/EOR/ANDS, all bitmask immediates, SP destination, UNDEF', () => {
  let valid = 0;
  let invalid = 0;
  for (let i = 0; i < N_RANDOM * 3; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const opc = rndInt(4);
    const [N, immr, imms] = randomBitmaskFields(sf);
    const rn = rreg();
    const rdd = rreg();
    const word = E.logImm(sf, opc, N, immr, imms, rn, rdd);
    const bm = decodeBitMasks(N, imms, immr, true, bits);
    if (!bm) {
      checkUndef(word, `logical imm N=${N} immr=${immr} imms=${imms}`);
      invalid++;
      continue;
    }
    valid++;
    const s = randomState();
    const e = clone(s);
    const a = uInt(rd(s, rn), bits);
    const res = opc === 1 ? a | bm.wmask : opc === 2 ? a ^ bm.wmask : a & bm.wmask;
    wr(e, rdd, res, bits, opc !== 3);
    if (opc === 3) e.nzcv = ((res >> BigInt(bits - 1)) === 1n ? 8 : 0) | (res === 0n ? 4 : 0);
    check(word, s, e, `logical imm sf=${sf} opc=${opc} N=${N} immr=${immr} imms=${imms}`);
  }
  assert.ok(valid > 100 && invalid > 20);
  // every 64-bit encoding against the model (ORR Xd, XZR, #imm = MOV)
  for (let idx = 0; idx < 8192; idx++) {
    const N = idx >> 12;
    const immr = (idx >> 6) & 63;
    const imms = idx & 63;
    const word = E.logImm(1, 1, N, immr, imms, 31, 0);
    const bm = decodeBitMasks(N, imms, immr, true, 64);
    if (!bm) continue;
    const s = randomState();
    const e = clone(s);
    e.x[0] = bm.wmask;
    check(word, s, e, `mov bitmask N=${N} immr=${immr} imms=${imms}`);
  }
  // 32-bit with N = 1 is UNDEF
  checkUndef(E.logImm(0, 0, 1, 0, 0, 1, 2), 'AND W with N=1');
  // all-ones element is not encodable
  checkUndef(E.logImm(1, 1, 1, 0, 63, 1, 2), 'ORR X with imms=63, N=1');
  checkUndef(E.logImm(0, 1, 0, 0, 31, 1, 2), 'ORR W with imms=31');
});

test('MOVZ/MOVN/MOVK: W/X, all hw, 32-bit hw >= 2 UNDEF', () => {
  for (let i = 0; i < N_RANDOM; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const opc = [0, 2, 3][rndInt(3)];
    const hw = rndInt(sf ? 4 : 2);
    const imm16 = rndInt(3) === 0 ? [0, 0xffff, 0x8000][rndInt(3)] : rndInt(0x10000);
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const sh = BigInt(hw * 16);
    let v: bigint;
    if (opc === 0) v = ~(BigInt(imm16) << sh);
    else if (opc === 2) v = BigInt(imm16) << sh;
    else v = (rd(s, rdd) & ~(0xffffn << sh)) | (BigInt(imm16) << sh);
    wr(e, rdd, v, bits);
    check(E.movWide(sf, opc, hw, imm16, rdd), s, e, `movwide sf=${sf} opc=${opc} hw=${hw}`);
  }
  for (const opc of [0, 2, 3]) for (const hw of [2, 3]) checkUndef(E.movWide(0, opc, hw, 0x1234, 1), `32-bit move wide hw=${hw}`);
  checkUndef(E.movWide(1, 1, 0, 0x1234, 1), 'move wide opc=01');
});

test('SBFM/BFM/UBFM and aliases (ASR/LSL/LSR, SXTB/H/W, UXTB/H, BFI, BFXIL, SBFX, UBFX)', () => {
  const run = (sf: number, opc: number, immr: number, imms: number, rn: number, rdd: number, s: State, what: string) => {
    const bits = sf ? 64 : 32;
    const bm = decodeBitMasks(sf, imms, immr, false, bits);
    assert.ok(bm);
    const e = clone(s);
    const src = uInt(rd(s, rn), bits);
    const dst = uInt(rd(s, rdd), bits);
    const rot = rorModel(src, immr, bits);
    let res: bigint;
    if (opc === 1) {
      const bot = (dst & ~bm.wmask) | (rot & bm.wmask);
      res = uInt((dst & ~bm.tmask) | (bot & bm.tmask), bits);
    } else if (opc === 0) {
      const bot = rot & bm.wmask;
      const top = (src >> BigInt(imms)) & 1n ? mask(bits) : 0n;
      res = uInt((top & ~bm.tmask) | (bot & bm.tmask), bits);
    } else {
      res = rot & bm.wmask & bm.tmask;
    }
    wr(e, rdd, res, bits);
    check(E.bitfield(sf, opc, sf, immr, imms, rn, rdd), s, e, what);
  };
  for (let i = 0; i < N_RANDOM * 3; i++) {
    const sf = rndInt(2);
    const w = sf ? 64 : 32;
    const opc = rndInt(3);
    run(sf, opc, rndInt(w), rndInt(w), rreg(), rreg(), randomState(), `bitfield sf=${sf} opc=${opc}`);
  }
  // aliases with fixed fields: LSL #0/#1/#31/#32/#63, LSR, ASR, extensions
  for (const sf of [0, 1]) {
    const w = sf ? 64 : 32;
    for (const sh of [0, 1, 31, 32, 63].filter((k) => k < w)) {
      const s = randomState();
      run(sf, 2, (w - sh) % w, w - 1 - sh, 1, 2, s, `lsl #${sh}`);
      run(sf, 2, sh, w - 1, 1, 2, s, `lsr #${sh}`);
      run(sf, 0, sh, w - 1, 1, 2, s, `asr #${sh}`);
      // and a direct model for the shifts
      const x = uInt(s.x[1], w);
      const e = clone(s);
      e.x[2] = uInt(sInt(x, w) >> BigInt(sh), w);
      check(E.bitfield(sf, 0, sf, sh, w - 1, 1, 2), s, e, `asr #${sh} direct`);
      e.x[2] = uInt(x << BigInt(sh), w);
      check(E.bitfield(sf, 2, sf, (w - sh) % w, w - 1 - sh, 1, 2), s, e, `lsl #${sh} direct`);
    }
    for (const imms of [7, 15, 31]) {
      if (imms >= w) continue;
      const s = randomState();
      s.x[1] = 0x80808080_80808080n ^ BigInt(rnd32());
      run(sf, 0, 0, imms, 1, 2, s, `sxt imms=${imms}`);
      run(sf, 2, 0, imms, 1, 2, s, `uxt imms=${imms}`);
      const e = clone(s);
      e.x[2] = uInt(sInt(s.x[1], imms + 1), w);
      check(E.bitfield(sf, 0, sf, 0, imms, 1, 2), s, e, 'sxt direct');
    }
  }
  // SXTW X2, W1
  {
    const s = randomState();
    s.x[1] = 0x12345678_87654321n;
    const e = clone(s);
    e.x[2] = 0xffffffff_87654321n;
    check(E.bitfield(1, 0, 1, 0, 31, 1, 2), s, e, 'sxtw');
  }
  // BFI X2, X1, #60, #4 and BFXIL W2, W1, #4, #8 with direct models
  {
    const s = randomState();
    const e = clone(s);
    e.x[2] = (s.x[2] & ~(0xfn << 60n)) | ((s.x[1] & 0xfn) << 60n);
    check(E.bitfield(1, 1, 1, 4, 3, 1, 2), s, e, 'bfi #60, #4');
    const e2 = clone(s);
    e2.x[2] = ((s.x[2] & M32) & ~0xffn) | ((s.x[1] >> 4n) & 0xffn);
    check(E.bitfield(0, 1, 0, 4, 11, 1, 2), s, e2, 'bfxil w #4, #8');
  }
  // UNDEF: opc = 11, N != sf, 32-bit immr/imms >= 32
  checkUndef(E.bitfield(1, 3, 1, 0, 0, 1, 2), 'bitfield opc=11');
  checkUndef(E.bitfield(1, 2, 0, 0, 0, 1, 2), 'UBFM X with N=0');
  checkUndef(E.bitfield(0, 2, 1, 0, 0, 1, 2), 'UBFM W with N=1');
  checkUndef(E.bitfield(0, 2, 0, 32, 0, 1, 2), 'UBFM W immr=32');
  checkUndef(E.bitfield(0, 0, 0, 0, 32, 1, 2), 'SBFM W imms=32');
});

test('EXTR (and ROR immediate)', () => {
  for (let i = 0; i < N_RANDOM; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const lsb = [0, 1, 31, 32, 63][rndInt(5)] % bits || rndInt(bits);
    const rn = rreg();
    const rm = rndInt(3) === 0 ? rn : rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const concat = (uInt(rd(s, rn), bits) << BigInt(bits)) | uInt(rd(s, rm), bits);
    wr(e, rdd, concat >> BigInt(lsb), bits);
    check(E.extr(sf, sf, rm, lsb, rn, rdd), s, e, `extr sf=${sf} lsb=${lsb}`);
  }
  checkUndef(E.extr(0, 0, 1, 32, 2, 3), 'EXTR W lsb=32');
  checkUndef(E.extr(1, 0, 1, 3, 2, 3), 'EXTR X N=0');
  checkUndef(u(E.extr(1, 1, 1, 3, 2, 3) | (1 << 21)), 'EXTR o0=1');
  checkUndef(u(E.extr(1, 1, 1, 3, 2, 3) | (1 << 29)), 'EXTR op21=01');
});

test('logical (shifted register): AND BIC ORR ORN EOR EON ANDS BICS, all shifts', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const opc = rndInt(4);
    const N = rndInt(2);
    const shift = rndInt(4);
    const amt = rndInt(3) === 0 ? [0, 1, 31, 32, 63][rndInt(5)] % bits : rndInt(bits);
    const rn = rreg();
    const rm = rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    let b = shiftModel(rd(s, rm), shift, amt, bits);
    if (N) b = uInt(~b, bits);
    const a = uInt(rd(s, rn), bits);
    const res = opc === 1 ? a | b : opc === 2 ? a ^ b : a & b;
    wr(e, rdd, res, bits);
    if (opc === 3) e.nzcv = ((res >> BigInt(bits - 1)) === 1n ? 8 : 0) | (res === 0n ? 4 : 0);
    check(E.logReg(sf, opc, shift, N, rm, amt, rn, rdd), s, e, `logical reg sf=${sf} opc=${opc} N=${N} shift=${shift}#${amt}`);
  }
  checkUndef(E.logReg(0, 0, 0, 0, 1, 32, 2, 3), 'AND W with imm6=32');
  // MOV Xd, Xm / MOV Wd, Wm
  const s = randomState();
  const e = clone(s);
  e.x[3] = s.x[7];
  check(E.logReg(1, 1, 0, 0, 7, 0, 31, 3), s, e, 'mov x3, x7');
  e.x[3] = s.x[7] & M32;
  check(E.logReg(0, 1, 0, 0, 7, 0, 31, 3), s, e, 'mov w3, w7');
});

test('ADD/ADDS/SUB/SUBS (shifted register): flags, XZR', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const op = rndInt(2);
    const S = rndInt(2);
    const shift = rndInt(3);
    const amt = rndInt(3) === 0 ? [0, 1, 31, 32, 63][rndInt(5)] % bits : rndInt(bits);
    const rn = rreg();
    const rm = rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const b = shiftModel(rd(s, rm), shift, amt, bits);
    const a = rd(s, rn);
    const r = op ? addWithCarry(a, ~b, 1, bits) : addWithCarry(a, b, 0, bits);
    wr(e, rdd, r.res, bits);
    if (S) e.nzcv = r.nzcv;
    check(E.addSubShift(sf, op, S, shift, rm, amt, rn, rdd), s, e, `addsub shifted sf=${sf} op=${op} S=${S} shift=${shift}#${amt}`);
  }
  checkUndef(E.addSubShift(1, 0, 0, 3, 1, 0, 2, 3), 'ADD shift=ROR');
  checkUndef(E.addSubShift(0, 1, 1, 0, 1, 32, 2, 3), 'SUBS W imm6=32');
});

test('ADD/ADDS/SUB/SUBS (extended register): UXTB..SXTX, shift 0-4, SP forms', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const op = rndInt(2);
    const S = rndInt(2);
    const option = rndInt(8);
    const imm3 = rndInt(5);
    const rn = rreg();
    const rm = rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const b = extendModel(rd(s, rm), option, imm3, bits);
    const a = rd(s, rn, true);
    const r = op ? addWithCarry(a, ~b, 1, bits) : addWithCarry(a, b, 0, bits);
    wr(e, rdd, r.res, bits, S === 0);
    if (S) e.nzcv = r.nzcv;
    check(E.addSubExt(sf, op, S, rm, option, imm3, rn, rdd), s, e, `addsub ext sf=${sf} op=${op} S=${S} opt=${option} #${imm3}`);
  }
  checkUndef(E.addSubExt(1, 0, 0, 1, 3, 5, 2, 3), 'ADD ext imm3=5');
  checkUndef(E.addSubExt(0, 0, 0, 1, 3, 7, 2, 3), 'ADD ext imm3=7');
  checkUndef(u(E.addSubExt(1, 0, 0, 1, 3, 0, 2, 3) | (1 << 22)), 'ADD ext opt=01');
});

test('ADC/ADCS/SBC/SBCS', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const op = rndInt(2);
    const S = rndInt(2);
    const rn = rreg();
    const rm = rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const cin = (s.nzcv >> 1) & 1;
    const b = rd(s, rm);
    const r = addWithCarry(rd(s, rn), op ? ~b : b, cin, bits);
    wr(e, rdd, r.res, bits);
    if (S) e.nzcv = r.nzcv;
    check(E.adcSbc(sf, op, S, rm, rn, rdd), s, e, `adc/sbc sf=${sf} op=${op} S=${S}`);
  }
  // v8.4/8.5 flag manipulation (RMIF, SETF8, SETF16) share this space: UNDEF
  checkUndef(0xba018422, 'rmif x1, #3, #2');
  checkUndef(0x3a00080d, 'SETF8 w0');
  checkUndef(0x3a00480d, 'SETF16 w0');
});

test('CCMP/CCMN (register and immediate)', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const op = rndInt(2);
    const imm = rndInt(2);
    const x = imm ? rndInt(32) : rreg();
    const cond = rndInt(16);
    const rn = rreg();
    const nzcv = rndInt(16);
    const s = randomState();
    const e = clone(s);
    if (conditionModel(cond, s.nzcv)) {
      const b = imm ? BigInt(x) : rd(s, x);
      e.nzcv = (op ? addWithCarry(rd(s, rn), ~b, 1, bits) : addWithCarry(rd(s, rn), b, 0, bits)).nzcv;
    } else e.nzcv = nzcv;
    check(E.ccmp(sf, op, imm, x, cond, rn, nzcv), s, e, `ccmp sf=${sf} op=${op} imm=${imm} cond=${cond}`);
  }
  checkUndef(u(E.ccmp(1, 1, 0, 1, 0, 2, 0) & ~(1 << 29)), 'CCMP with S=0');
  checkUndef(u(E.ccmp(1, 1, 0, 1, 0, 2, 0) | (1 << 10)), 'CCMP o2=1');
  checkUndef(u(E.ccmp(1, 1, 0, 1, 0, 2, 0) | (1 << 4)), 'CCMP o3=1');
});

test('CSEL/CSINC/CSINV/CSNEG (CSET, CINC, CNEG aliases)', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const op = rndInt(2);
    const o2 = rndInt(2);
    const cond = rndInt(16);
    const rn = rreg();
    const rm = rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    let res: bigint;
    if (conditionModel(cond, s.nzcv)) res = rd(s, rn);
    else {
      const m = uInt(rd(s, rm), bits);
      res = op === 0 ? (o2 ? m + 1n : m) : o2 ? -m : ~m;
    }
    wr(e, rdd, res, bits);
    check(E.csel(sf, op, o2, rm, cond, rn, rdd), s, e, `csel sf=${sf} op=${op} o2=${o2} cond=${cond}`);
  }
  checkUndef(u(E.csel(1, 0, 0, 1, 0, 2, 3) | (1 << 29)), 'CSEL S=1');
  checkUndef(u(E.csel(1, 0, 0, 1, 0, 2, 3) | (1 << 11)), 'CSEL op2=1x');
});

function bitsRev(x: bigint, bits: number): bigint {
  let r = 0n;
  for (let i = 0; i < bits; i++) if ((x >> BigInt(i)) & 1n) r |= 1n << BigInt(bits - 1 - i);
  return r;
}
/** Reverse bytes within each container of `csize` bits. */
function revBytes(x: bigint, bits: number, csize: number): bigint {
  let r = 0n;
  for (let c = 0; c < bits; c += csize) {
    const cont = (x >> BigInt(c)) & ones(csize);
    let rc = 0n;
    for (let b = 0; b < csize; b += 8) rc |= ((cont >> BigInt(b)) & 0xffn) << BigInt(csize - 8 - b);
    r |= rc << BigInt(c);
  }
  return r;
}
function clzModel(x: bigint, bits: number): number {
  let n = 0;
  for (let i = bits - 1; i >= 0 && ((x >> BigInt(i)) & 1n) === 0n; i--) n++;
  return n;
}
function clsModel(x: bigint, bits: number): number {
  const sign = (x >> BigInt(bits - 1)) & 1n;
  let n = 0;
  for (let i = bits - 2; i >= 0 && ((x >> BigInt(i)) & 1n) === sign; i--) n++;
  return n;
}

test('RBIT, REV16, REV32, REV, CLZ, CLS', () => {
  for (let i = 0; i < N_RANDOM * 2; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const opcode = sf ? rndInt(6) : [0, 1, 2, 4, 5][rndInt(5)];
    const rn = rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const x = uInt(rd(s, rn), bits);
    let res: bigint;
    switch (opcode) {
      case 0:
        res = bitsRev(x, bits);
        break;
      case 1:
        res = revBytes(x, bits, 16);
        break;
      case 2:
        res = revBytes(x, bits, 32);
        break;
      case 3:
        res = revBytes(x, bits, 64);
        break;
      case 4:
        res = BigInt(clzModel(x, bits));
        break;
      default:
        res = BigInt(clsModel(x, bits));
    }
    wr(e, rdd, res, bits);
    check(E.dp1(sf, opcode, rn, rdd), s, e, `dp1 sf=${sf} opcode=${opcode}`);
  }
  // CLZ/CLS edge values
  for (const [sf, opcode, x, want] of [
    [1, 4, 0n, 64n],
    [0, 4, 0xffffffff00000000n, 32n],
    [1, 4, 0x00000000_80000000n, 32n],
    [1, 5, 0n, 63n],
    [1, 5, M64, 63n],
    [0, 5, 0n, 31n],
    [0, 5, 0xffffffffn, 31n],
    [1, 5, 0xffffffff_7fffffffn, 31n],
    [1, 5, 0xffffffff_ffffffffn ^ (1n << 30n), 32n],
    [0, 5, 1n, 30n],
  ] as [number, number, bigint, bigint][]) {
    const s = randomState();
    s.x[1] = x;
    const e = clone(s);
    e.x[2] = want;
    check(E.dp1(sf, opcode, 1, 2), s, e, `clz/cls ${hex(x, 16)}`);
  }
  checkUndef(E.dp1(0, 3, 1, 2), 'REV (64-bit opcode) with sf=0');
  for (const opcode of [6, 7, 8, 0x10, 0x15]) checkUndef(E.dp1(1, opcode, 1, 2), `dp1 opcode ${opcode} (v8.9 CSSC / CRC / unallocated)`);
  // words from aarch64-linux-gnu-as -march=armv8.5-a
  checkUndef(0xdac10041, 'pacia x1, x2');
  checkUndef(0xdac123e1, 'paciza x1');
  checkUndef(0xdac143e1, 'xpaci x1');
  checkUndef(u(E.dp1(1, 0, 1, 2) | (1 << 29)), 'dp1 S=1');
});

test('UDIV, SDIV (divide by zero, INT_MIN / -1), LSLV, LSRV, ASRV, RORV', () => {
  for (let i = 0; i < N_RANDOM * 3; i++) {
    const sf = rndInt(2);
    const bits = sf ? 64 : 32;
    const opcode = [2, 3, 8, 9, 10, 11][rndInt(6)];
    const rn = rreg();
    const rm = rreg();
    const rdd = rreg();
    const s = randomState();
    if (rndInt(8) === 0 && rm !== 31) s.x[rm] = 0n; // division by zero
    const e = clone(s);
    const a = uInt(rd(s, rn), bits);
    const b = uInt(rd(s, rm), bits);
    let res: bigint;
    if (opcode === 2) res = b === 0n ? 0n : a / b;
    else if (opcode === 3) res = b === 0n ? 0n : sInt(a, bits) / sInt(b, bits);
    else res = shiftModel(a, opcode - 8, Number(b % BigInt(bits)), bits);
    wr(e, rdd, res, bits);
    check(E.dp2(sf, opcode, rm, rn, rdd), s, e, `dp2 sf=${sf} opcode=${opcode}`);
  }
  const cases: [number, number, bigint, bigint, bigint][] = [
    [1, 3, 0x8000000000000000n, M64, 0x8000000000000000n],
    [0, 3, 0x80000000n, 0xffffffffn, 0x80000000n],
    [1, 3, 0xffffffff80000000n, M64, 0x80000000n],
    [1, 3, 5n, 0n, 0n],
    [1, 2, 5n, 0n, 0n],
    [0, 2, 0xffffffffn, 0n, 0n],
    [0, 3, 0xfffffff9n, 2n, 0xfffffffdn], // -7 / 2 = -3
    [1, 3, (-7n) & M64, 2n, (-3n) & M64],
    [1, 2, M64, 3n, 0x5555555555555555n],
    [1, 2, M64, 1n, M64],
    [1, 2, 0x1_00000000n, 0x1_00000000n, 1n],
  ];
  for (const [sf, opcode, a, b, want] of cases) {
    const s = randomState();
    s.x[1] = a;
    s.x[2] = b;
    const e = clone(s);
    e.x[3] = want;
    check(E.dp2(sf, opcode, 2, 1, 3), s, e, `div ${hex(a, 16)} / ${hex(b, 16)}`);
  }
  // shift amounts 0/31/32/63 (and beyond: taken modulo the size)
  for (const amt of [0n, 31n, 32n, 63n, 64n, 65n, 0xffffffffffffffffn]) {
    for (const sf of [0, 1]) {
      const bits = sf ? 64 : 32;
      for (const opcode of [8, 9, 10, 11]) {
        const s = randomState();
        s.x[2] = amt;
        const e = clone(s);
        e.x[3] = shiftModel(s.x[1], opcode - 8, Number(amt % BigInt(bits)), bits);
        check(E.dp2(sf, opcode, 2, 1, 3), s, e, `shiftv ${opcode} by ${amt}`);
      }
    }
  }
  for (const opcode of [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]) checkUndef(E.dp2(0, opcode, 1, 2, 3), `CRC32 opcode ${opcode}`);
  checkUndef(0x9ac34c41, 'crc32x w1, w2, x3');
  checkUndef(0x1ac34041, 'crc32b w1, w2, w3');
  checkUndef(0x9ac30041, 'subp x1, x2, x3');
  checkUndef(0x9ac31041, 'irg x1, x2, x3');
  checkUndef(0x9ac31441, 'gmi x1, x2, x3');
  checkUndef(0x9ac33041, 'pacga x1, x2, x3');
  checkUndef(E.dp2(1, 0, 1, 2, 3), 'SUBP (MTE)');
  checkUndef(E.dp2(1, 4, 1, 2, 3), 'IRG (MTE)');
  checkUndef(E.dp2(1, 5, 1, 2, 3), 'GMI (MTE)');
  checkUndef(E.dp2(1, 12, 1, 2, 3), 'PACGA');
  checkUndef(E.dp2(1, 0x18, 1, 2, 3), 'SMAX (CSSC)');
  checkUndef(u(E.dp2(1, 2, 1, 2, 3) | (1 << 29)), 'UDIV with S=1');
});

test('MADD, MSUB, SMADDL, SMSUBL, UMADDL, UMSUBL, SMULH, UMULH', () => {
  for (let i = 0; i < N_RANDOM * 3; i++) {
    const kind = rndInt(5); // 0: MADD/MSUB 1: SMADDL/SMSUBL 2: UMADDL/UMSUBL 3: SMULH 4: UMULH
    const sf = kind === 0 ? rndInt(2) : 1;
    const bits = sf ? 64 : 32;
    const o0 = kind >= 3 ? 0 : rndInt(2);
    const op31 = [0, 1, 5, 2, 6][kind];
    const rn = rreg();
    const rm = rreg();
    const ra = kind >= 3 ? 31 : rreg();
    const rdd = rreg();
    const s = randomState();
    const e = clone(s);
    const a = rd(s, ra);
    const n = rd(s, rn);
    const m = rd(s, rm);
    let res: bigint;
    if (kind === 0) res = o0 ? a - uInt(n, bits) * uInt(m, bits) : a + uInt(n, bits) * uInt(m, bits);
    else if (kind === 1) res = o0 ? a - sInt(n, 32) * sInt(m, 32) : a + sInt(n, 32) * sInt(m, 32);
    else if (kind === 2) res = o0 ? a - uInt(n, 32) * uInt(m, 32) : a + uInt(n, 32) * uInt(m, 32);
    else if (kind === 3) res = (sInt(n, 64) * sInt(m, 64)) >> 64n;
    else res = (n * m) >> 64n;
    wr(e, rdd, res, bits);
    check(E.dp3(sf, op31, o0, rm, ra, rn, rdd), s, e, `dp3 kind=${kind} sf=${sf} o0=${o0}`);
  }
  for (const op31 of [1, 2, 5, 6]) checkUndef(E.dp3(0, op31, 0, 1, 2, 3, 4), `32-bit dp3 op31=${op31}`);
  for (const op31 of [3, 4, 7]) checkUndef(E.dp3(1, op31, 0, 1, 2, 3, 4), `dp3 op31=${op31}`);
  checkUndef(E.dp3(1, 2, 1, 1, 31, 3, 4), 'SMULH o0=1');
  checkUndef(u(E.dp3(1, 0, 0, 1, 2, 3, 4) | (1 << 29)), 'dp3 op54=01');
});

test('other unallocated / later-architecture encodings in the integer space are UNDEF', () => {
  checkUndef(0x91810441, 'addg x1, x2, #16, #1');
  checkUndef(u((1 << 31) | (0b100011 << 23) | (1 << 5) | 2), 'ADDG (MTE, v8.5)');
  checkUndef(u((1 << 31) | (1 << 30) | (0b100011 << 23) | (1 << 5) | 2), 'SUBG (MTE, v8.5)');
  checkUndef(u((1 << 31) | (0b1000111 << 22) | (1 << 5) | 2), 'SMAX imm (v8.9)');
});

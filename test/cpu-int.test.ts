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
  if (k === 3) return -BigInt(rndInt(100) + 1) & M64; // small negative
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
    if (got.x[i] !== exp.x[i])
      assert.fail(`${ctx()}: x${i} = ${hex(got.x[i], 16)}, expected ${hex(exp.x[i], 16)}`);
  }
  if (got.sp !== exp.sp) assert.fail(`${ctx()}: sp = ${hex(got.sp, 16)}, expected ${hex(exp.sp, 16)}`);
  if (got.nzcv !== exp.nzcv)
    assert.fail(`${ctx()}: nzcv = ${got.nzcv.toString(2)}, expected ${exp.nzcv.toString(2)}`);
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
    u(
      (sf << 31) | (opc << 29) | (0b100100 << 23) | (N << 22) | (immr << 16) | (imms << 10) | (rn << 5) | rdd,
    ),
  movWide: (sf: number, opc: number, hw: number, imm16: number, rdd: number) =>
    u((sf << 31) | (opc << 29) | (0b100101 << 23) | (hw << 21) | (imm16 << 5) | rdd),
  bitfield: (sf: number, opc: number, N: number, immr: number, imms: number, rn: number, rdd: number) =>
    u(
      (sf << 31) | (opc << 29) | (0b100110 << 23) | (N << 22) | (immr << 16) | (imms << 10) | (rn << 5) | rdd,
    ),
  extr: (sf: number, N: number, rm: number, imms: number, rn: number, rdd: number) =>
    u((sf << 31) | (0b100111 << 23) | (N << 22) | (rm << 16) | (imms << 10) | (rn << 5) | rdd),
  adr: (op: number, imm: number, rdd: number) =>
    u((op << 31) | ((imm & 3) << 29) | (0b10000 << 24) | (((imm >> 2) & 0x7ffff) << 5) | rdd),
  logReg: (
    sf: number,
    opc: number,
    shift: number,
    N: number,
    rm: number,
    imm6: number,
    rn: number,
    rdd: number,
  ) =>
    u(
      (sf << 31) |
        (opc << 29) |
        (0b01010 << 24) |
        (shift << 22) |
        (N << 21) |
        (rm << 16) |
        (imm6 << 10) |
        (rn << 5) |
        rdd,
    ),
  addSubShift: (
    sf: number,
    op: number,
    S: number,
    shift: number,
    rm: number,
    imm6: number,
    rn: number,
    rdd: number,
  ) =>
    u(
      (sf << 31) |
        (op << 30) |
        (S << 29) |
        (0b01011 << 24) |
        (shift << 22) |
        (rm << 16) |
        (imm6 << 10) |
        (rn << 5) |
        rdd,
    ),
  addSubExt: (
    sf: number,
    op: number,
    S: number,
    rm: number,
    option: number,
    imm3: number,
    rn: number,
    rdd: number,
  ) =>
    u(
      (sf << 31) |
        (op << 30) |
        (S << 29) |
        (0b01011 << 24) |
        (1 << 21) |
        (rm << 16) |
        (option << 13) |
        (imm3 << 10) |
        (rn << 5) |
        rdd,
    ),
  adcSbc: (sf: number, op: number, S: number, rm: number, rn: number, rdd: number) =>
    u((sf << 31) | (op << 30) | (S << 29) | (0b11010000 << 21) | (rm << 16) | (rn << 5) | rdd),
  ccmp: (sf: number, op: number, imm: number, rmOrImm5: number, cond: number, rn: number, nzcv: number) =>
    u(
      (sf << 31) |
        (op << 30) |
        (1 << 29) |
        (0b11010010 << 21) |
        (rmOrImm5 << 16) |
        (cond << 12) |
        (imm << 11) |
        (rn << 5) |
        nzcv,
    ),
  csel: (sf: number, op: number, o2: number, rm: number, cond: number, rn: number, rdd: number) =>
    u(
      (sf << 31) | (op << 30) | (0b11010100 << 21) | (rm << 16) | (cond << 12) | (o2 << 10) | (rn << 5) | rdd,
    ),
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
    if (opc === 3) e.nzcv = (res >> BigInt(bits - 1) === 1n ? 8 : 0) | (res === 0n ? 4 : 0);
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
  for (const opc of [0, 2, 3])
    for (const hw of [2, 3]) checkUndef(E.movWide(0, opc, hw, 0x1234, 1), `32-bit move wide hw=${hw}`);
  checkUndef(E.movWide(1, 1, 0, 0x1234, 1), 'move wide opc=01');
});

test('SBFM/BFM/UBFM and aliases (ASR/LSL/LSR, SXTB/H/W, UXTB/H, BFI, BFXIL, SBFX, UBFX)', () => {
  const run = (
    sf: number,
    opc: number,
    immr: number,
    imms: number,
    rn: number,
    rdd: number,
    s: State,
    what: string,
  ) => {
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
    e2.x[2] = (s.x[2] & M32 & ~0xffn) | ((s.x[1] >> 4n) & 0xffn);
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
    if (opc === 3) e.nzcv = (res >> BigInt(bits - 1) === 1n ? 8 : 0) | (res === 0n ? 4 : 0);
    check(
      E.logReg(sf, opc, shift, N, rm, amt, rn, rdd),
      s,
      e,
      `logical reg sf=${sf} opc=${opc} N=${N} shift=${shift}#${amt}`,
    );
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
    check(
      E.addSubShift(sf, op, S, shift, rm, amt, rn, rdd),
      s,
      e,
      `addsub shifted sf=${sf} op=${op} S=${S} shift=${shift}#${amt}`,
    );
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
    check(
      E.addSubExt(sf, op, S, rm, option, imm3, rn, rdd),
      s,
      e,
      `addsub ext sf=${sf} op=${op} S=${S} opt=${option} #${imm3}`,
    );
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
  for (const opcode of [6, 7, 8, 0x10, 0x15])
    checkUndef(E.dp1(1, opcode, 1, 2), `dp1 opcode ${opcode} (v8.9 CSSC / CRC / unallocated)`);
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
    [1, 3, -7n & M64, 2n, -3n & M64],
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
  for (const opcode of [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17])
    checkUndef(E.dp2(0, opcode, 1, 2, 3), `CRC32 opcode ${opcode}`);
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

// Reference results from qemu-aarch64 (user mode): random words over every data-processing pattern,
// Rd = X0, sources among X0..X5. [word, X0..X5 before, NZCV before, X0 after, NZCV after]
const QEMU_VECTORS: [number, bigint[], number, bigint, number][] = [
  [
    0x71152c80,
    [0x97ae2f35c4b238f3n, 0x28853d8905576a6bn, 0xfd758fe18b5a1d39n, 0x80000000n, 0x7fe25996b316d0efn, 0x1en],
    6,
    0xb316cba4n,
    10,
  ],
  [
    0x12bec000,
    [0x68de892eb144576en, 0xde6eb804654bc28fn, 0x8000000000000000n, 0x80000000n, 0x8n, 0x7fffffffn],
    13,
    0x9ffffffn,
    13,
  ],
  [
    0x71666c20,
    [
      0x9a096589d3bd548dn,
      0xfded86245ba4e99dn,
      0x896706ff513448ccn,
      0x7fffffffn,
      0x7b2ac0ebb51fc171n,
      0x92f29e8b8003f51dn,
    ],
    0,
    0x5b0b399dn,
    2,
  ],
  [
    0x5ac008a0,
    [0xfe2b555870063a34n, 0xabe96cc8ddfdbd28n, 0x444493bec8da61ebn, 0x9n, 0xf4d15e51f22cab84n, 0x1en],
    4,
    0x1e000000n,
    4,
  ],
  [
    0x11278c00,
    [0xa5aae595e1983afan, 0xba1baefb30f6901n, 0xfaa199a976fa2fb5n, 0x13n, 0xffffffffffffffffn, 0xcn],
    9,
    0xe19844ddn,
    9,
  ],
  [
    0x1ac40c00,
    [
      0x29b21893be08d2cfn,
      0x38n,
      0x18718fd7cc5f105bn,
      0x39d33995515d3e9fn,
      0x13075e8e0f8c4ec4n,
      0xdb1f6be690a20d0an,
    ],
    0,
    0xfffffffcn,
    0,
  ],
  [
    0xaa0103e0,
    [
      0xde1cc83934f23243n,
      0xa03667941b1f18b8n,
      0xd2727caa7af752cn,
      0x100000000n,
      0x5a11baf98369f43an,
      0xba97dbec85e13ad4n,
    ],
    10,
    0xa03667941b1f18b8n,
    10,
  ],
  [
    0x1ac30840,
    [
      0x2dn,
      0x603b36cef8d70592n,
      0x8f2e2c70c12c7973n,
      0xb785d59cfd191e3an,
      0x12abaffea795791fn,
      0xd5c70d0b73a74760n,
    ],
    7,
    0x0n,
    7,
  ],
  [
    0x9bdf54a0,
    [0x7fffffffn, 0x17n, 0x1b5a24d99a12b1c3n, 0x0n, 0x289e307871396f36n, 0xffffffff80000000n],
    13,
    0x0n,
    13,
  ],
  [
    0x9b000c20,
    [
      0x2726c4c33e488b06n,
      0x7fffffffn,
      0xdbdf1c0b17ee9d15n,
      0x64d6a4240bd6c3d8n,
      0x30c938cc2c20eb5n,
      0x50ec5de9cf5d25ccn,
    ],
    8,
    0xdcd424e3cd8e38d2n,
    8,
  ],
  [
    0x9ac02800,
    [0x3e426490b8013184n, 0x414a285de2460d2cn, 0x12n, 0x22n, 0x54fafaaed9d0a898n, 0x6d1d6d26489190a3n],
    6,
    0x3e426490b801318n,
    6,
  ],
  [
    0x6b016080,
    [0xc1108d0fe8cd0aaan, 0x27n, 0x43n, 0xe07a2609b8101c15n, 0x3an, 0x8ea49f856b127884n],
    3,
    0xd900003an,
    8,
  ],
  [
    0x9ac50c40,
    [
      0xe1f955837dce5274n,
      0x42e462bd61da11b3n,
      0xa2b7f609434a73e8n,
      0x0n,
      0xe109d56dc57c3c13n,
      0xfc8cc90983cd4d30n,
    ],
    12,
    0x1bn,
    12,
  ],
  [
    0xd2d2f020,
    [
      0x6a5cbe98e351e710n,
      0x3ec9b1cd8c92aa19n,
      0x3797a4e30f331843n,
      0x16n,
      0x825650e568648230n,
      0x7fffffffffffffffn,
    ],
    2,
    0x978100000000n,
    2,
  ],
  [0x2b855480, [0x80000000n, 0x1n, 0x100000000n, 0x7fffffffn, 0x3an, 0x896001e7dd39a79dn], 8, 0xffffff23n, 8],
  [
    0x13152060,
    [0x21n, 0x50ac06f8e6423037n, 0xcb09ce9d86390e87n, 0xdc1ab3cb425704cdn, 0xfa172ade6f7582fen, 0x80000000n],
    15,
    0x66800n,
    15,
  ],
  [
    0xb110d000,
    [
      0xffffffff80000000n,
      0x2c3543bcf27874bdn,
      0x7fffffffffffffffn,
      0xffffffffn,
      0x6a34c6191dca63b2n,
      0x100000000n,
    ],
    6,
    0xffffffff80000434n,
    8,
  ],
  [
    0xdac004a0,
    [
      0x89b4f29dc20f4d83n,
      0xe6695fc3ddd3e14n,
      0x27568cd58bf9409n,
      0x35ee746d575b3e69n,
      0x29n,
      0x71efbbd72f5a8830n,
    ],
    8,
    0xef71d7bb5a2f3088n,
    8,
  ],
  [
    0x1b020400,
    [0xbn, 0xb54e7aaa1f549436n, 0x7fffffffn, 0xffffffffffffffffn, 0x5479fca5291801aen, 0x7a8172aa6b8e327dn],
    7,
    0x9f54942bn,
    7,
  ],
  [
    0x9b028060,
    [
      0x4333101908a33178n,
      0x1f52f9ea3b6fe603n,
      0xbc7550fb5f84558bn,
      0x2aba8798fd30eae5n,
      0x7n,
      0xac12aeb729580037n,
    ],
    0,
    0x6107110b38019e21n,
    0,
  ],
  [
    0x9b436040,
    [0x0n, 0x478ff6b0800a31b8n, 0xaed8f6a4f815f057n, 0x34efe384cb1ebef4n, 0xe8e26ec77c5d3244n, 0x2en],
    15,
    0xef3806881097d2d1n,
    15,
  ],
  [
    0x4b042020,
    [
      0x80000000n,
      0x14e5bd15f48903c7n,
      0x2275a95ca526bfddn,
      0x735bdd0f0b3a67a8n,
      0xa47db4d24486b7d2n,
      0x1c6ebd735db0fe5dn,
    ],
    7,
    0x6dd131c7n,
    7,
  ],
  [
    0x9ac30c20,
    [
      0x0n,
      0x2099c2b97727d84fn,
      0x9a92e6db798efe6bn,
      0x27b3b70dd3b72b66n,
      0x556e6f271cac4e83n,
      0x76dc47c65a24291n,
    ],
    12,
    0x0n,
    12,
  ],
  [
    0x2b436440,
    [
      0xc437a0e58c3937dbn,
      0x8000000000000000n,
      0xd63a196994932ca0n,
      0x32n,
      0xcb0da43f036e3d01n,
      0x7fffffffffffffffn,
    ],
    2,
    0x94932ca0n,
    8,
  ],
  [
    0x0b259040,
    [0x2bn, 0xa494623a04b40c63n, 0xffffffffn, 0xe33f2095b1bd0cd9n, 0x6d477680ec61e812n, 0xa8fda27b269c9e18n],
    12,
    0x17fn,
    12,
  ],
  [
    0x9ac40800,
    [
      0xa5db9c34edd8b37n,
      0xd8fe95409d82fd98n,
      0x6e94913a69bb09c9n,
      0x12n,
      0xff36c35f1262d99cn,
      0x3a7b61d42c7e903cn,
    ],
    5,
    0x0n,
    5,
  ],
  [
    0x12b17480,
    [0x3a8ad5735ed1862an, 0x6n, 0x16caa17c799aca33n, 0x22n, 0x3ebfe241f2f790f5n, 0xfe7621b9f05c7e1bn],
    3,
    0x745bffffn,
    3,
  ],
  [
    0xba42a060,
    [0xbc1c23915c3e5ac1n, 0x1fn, 0x8af333e28cd2418cn, 0x1n, 0xf2cde6e3740493c0n, 0xcd014a4697f44d11n],
    4,
    0xbc1c23915c3e5ac1n,
    8,
  ],
  [
    0xda0400a0,
    [0x100000000n, 0x1946622fcde93976n, 0x9a53460326fe5895n, 0x36n, 0x9a0a190a60e6e329n, 0xcefc473f751b7695n],
    3,
    0x34f22e351434936cn,
    3,
  ],
  [
    0x5ac00000,
    [
      0x457b899af78ee916n,
      0xea312d7c08f8fff9n,
      0x7b604e4f2f983d91n,
      0x13n,
      0xbeff53b2672fb1d7n,
      0xb40f4219cbb4cab5n,
    ],
    1,
    0x689771efn,
    1,
  ],
  [
    0x5a84a0a0,
    [
      0x1e0136c71a3939f0n,
      0x787620f36f0f6c33n,
      0xc201617d8681b980n,
      0xecbb15030587c3f9n,
      0x27n,
      0x6831491657ed6dfdn,
    ],
    3,
    0xffffffd8n,
    3,
  ],
  [
    0x5a834400,
    [0x80000000n, 0xd7f8522a49ced56n, 0x2n, 0x1n, 0x100000000n, 0x7f34a1be7da6155cn],
    11,
    0x80000000n,
    11,
  ],
  [
    0x6a852080,
    [0xf193a4984da5960n, 0x818cbda1ce274f02n, 0x100000000n, 0x7fffffffffffffffn, 0xf0f6805325b572cfn, 0x0n],
    2,
    0x0n,
    4,
  ],
  [
    0x72b04460,
    [
      0x870920fd58f9e613n,
      0x63c00c6b64622df5n,
      0x88a764f443659dbcn,
      0x6c39d8bb6b5bbfb6n,
      0x69057840956e8689n,
      0x2f101e99dbb04b6an,
    ],
    4,
    0x8223e613n,
    4,
  ],
  [
    0x9b250ca0,
    [0x15n, 0x190b4c67b923cb4en, 0x1n, 0x41136848977e6ca8n, 0x38n, 0x100000000n],
    10,
    0x41136848977e6ca8n,
    10,
  ],
  [
    0xd28ee080,
    [
      0x39d07b03dc9d5accn,
      0xffffffffn,
      0x99d46fe269895765n,
      0x80c55f47dbb61494n,
      0xc264a2bb47847eccn,
      0xffffffff80000000n,
    ],
    8,
    0x7704n,
    8,
  ],
  [
    0x8b04fc80,
    [0xd3ff18eb0a6410c7n, 0x595c4cff1b1cece5n, 0xen, 0x0n, 0x11n, 0x94f0f11454b3868bn],
    6,
    0x8000000000000011n,
    6,
  ],
  [
    0x92817860,
    [0xdn, 0x8a738e70209c6867n, 0x80000000n, 0xdcd55514f604a080n, 0x1n, 0x60a4fbbb7b1dce5en],
    4,
    0xfffffffffffff43cn,
    4,
  ],
  [
    0xcb821000,
    [0xb11366a46e361c6bn, 0x6c969e8ab760c15bn, 0x7588e14f7bcfbd1cn, 0x1985e88caf1042e9n, 0x7n, 0x3dn],
    3,
    0xa9bad88f7679209an,
    3,
  ],
  [
    0xfa429020,
    [
      0x40f052d6fbe70dc5n,
      0xb1b9d80fac963678n,
      0xb555eb2b229b3782n,
      0x7b2630c0b073f2dcn,
      0xc0bee48323ba5392n,
      0x100000000n,
    ],
    10,
    0x40f052d6fbe70dc5n,
    0,
  ],
  [
    0x9bc10480,
    [
      0x97135b7a852b4e41n,
      0xfb6ffe22efc1b2c2n,
      0xb0a9c908a24b3b2cn,
      0x2cc6277baaf6b15dn,
      0x54b3b0159ff32a1an,
      0x84b266d95c12629an,
    ],
    7,
    0x53313ba4651a744an,
    7,
  ],
  [
    0xf2fe40a0,
    [
      0xe0b00a0f5efb6156n,
      0xd1cb9d0df579ed64n,
      0x0n,
      0xf1fcec4698028a6an,
      0x49bf75f865e23a4cn,
      0x3526fd1d5b02e90dn,
    ],
    7,
    0xf2050a0f5efb6156n,
    7,
  ],
  [
    0x331e5460,
    [0x16n, 0x34b60b9ae13b9437n, 0x1n, 0x53e6a9614fe046aen, 0xd3d02b05360d9311n, 0x7n],
    1,
    0x811aban,
    1,
  ],
  [
    0x936df460,
    [
      0x8f012f833c5241e7n,
      0x4f1724512aa71127n,
      0x6n,
      0x8563688551230881n,
      0xffffffffffffffffn,
      0x78a0a3ccd1c610adn,
    ],
    11,
    0x2b1bn,
    11,
  ],
  [
    0x9ba300a0,
    [
      0x7772bb9f22c89fb7n,
      0xd308b51b3895036n,
      0x98bb91b9e981c9d7n,
      0x473f13727412a3aen,
      0x856376802114bb2n,
      0x43n,
    ],
    2,
    0x7772bbbd83a97641n,
    2,
  ],
  [
    0x6b405400,
    [
      0x8000000000000000n,
      0xb51036c9ca364861n,
      0x2d15b50c5ec1692en,
      0xc64f8ce4ecd7a958n,
      0xffffffff80000000n,
      0x9e1490a4b2ddf27cn,
    ],
    12,
    0x0n,
    6,
  ],
  [
    0x530a2460,
    [
      0x6d106e3b2b56a534n,
      0xe453350463d00142n,
      0xeec9dc7c26430e4an,
      0x30n,
      0x8000000000000000n,
      0x4f39bcdb34ae61ecn,
    ],
    2,
    0xc000000n,
    2,
  ],
  [
    0x9ac40880,
    [
      0xf05e4e455b409959n,
      0x6a63c9f8c636083an,
      0x34ddb84f5c73184fn,
      0xa4ca24bbc9ebff04n,
      0x1c904f7db139374bn,
      0x2fb0c7e87f368fabn,
    ],
    8,
    0x1n,
    8,
  ],
  [
    0xb3668480,
    [
      0x31bc7f66322dacdbn,
      0x675ecf318025b0acn,
      0x2an,
      0x5c5b6ac8fd14f0ben,
      0xcb72195f64365a1bn,
      0xd32a755abe5972a7n,
    ],
    1,
    0x3d90d9686e2dacdbn,
    1,
  ],
  [
    0x5ac00080,
    [0xa00923ce9cbdc8fen, 0xe62531459345bd70n, 0xbba46a2ef5291b53n, 0x3153a571234f7698n, 0x30n, 0x43n],
    1,
    0xc000000n,
    1,
  ],
  [
    0xf1216c00,
    [0x11n, 0x80000000n, 0x3en, 0xab81e9d481d236f7n, 0xdef84fb7ec0434b3n, 0x99c3c761e95060ecn],
    11,
    0xfffffffffffff7b6n,
    8,
  ],
  [
    0x5ac00840,
    [0x13n, 0x1fn, 0x72a5ef474265c6edn, 0x7dcd980b692351c1n, 0xeb0d5f7dc47da7e8n, 0x9n],
    12,
    0xedc66542n,
    12,
  ],
  [
    0xdac00460,
    [0x8000000000000000n, 0x27n, 0x2dn, 0x5e2c27f1a2244b7an, 0xd344783065b9c40n, 0xc3f59948309aa69fn],
    15,
    0x2c5ef12724a27a4bn,
    15,
  ],
  [
    0x6a652860,
    [0x56711ac4a6a7d0b3n, 0xce27492afb8537c7n, 0x3n, 0x3ecb280a45a36a8dn, 0xa8d0ed4f8141809bn, 0x45n],
    6,
    0x45a36a8dn,
    0,
  ],
  [
    0xd35d5c40,
    [
      0xffffffff80000000n,
      0x4eba4e6d5e788335n,
      0x80000000n,
      0xd8040912139d3951n,
      0x1374d1812e26e597n,
      0xa9790abce3f5655dn,
    ],
    7,
    0x0n,
    7,
  ],
  [
    0x5a010060,
    [0xffffffffn, 0x53242885b0a42f82n, 0x4975007ae4158635n, 0x2an, 0xc4bc717fe8530405n, 0x118c07be51152a74n],
    10,
    0x4f5bd0a8n,
    10,
  ],
  [
    0xf2b60480,
    [
      0xcb496dee01d7c5f2n,
      0x2cdc90e0c70a1bbfn,
      0x8000000000000000n,
      0x7fffffffffffffffn,
      0x81f914995642ebaen,
      0xef8bba1b7a4c8372n,
    ],
    6,
    0xcb496deeb024c5f2n,
    6,
  ],
  [
    0x330748a0,
    [
      0x100000000n,
      0x907080df4f29a5e2n,
      0x1e63533288984c85n,
      0xdbfc3a004588be01n,
      0x7977c912f1b0a3ben,
      0xcecab358ef74d9e9n,
    ],
    1,
    0x9b3n,
    1,
  ],
  [
    0x13804080,
    [
      0x3bfedd0bac8fb13an,
      0xe571eaff323a6f38n,
      0x7680db27edfcf8e3n,
      0xd32f35486abaa215n,
      0x6038a154c73e4085n,
      0x316e44351f20656dn,
    ],
    10,
    0x4085ac8fn,
    10,
  ],
  [
    0xeb426860,
    [
      0xce16f42208fc56efn,
      0x8000000000000000n,
      0x2b3b181790955d36n,
      0xa3dcda6e81fde17cn,
      0xe885d31468f856adn,
      0x910c6bf0d6c0c989n,
    ],
    13,
    0xa3dcda63b337db98n,
    10,
  ],
  [
    0xf1598040,
    [0x100000000n, 0x7fffffffffffffffn, 0x62f4189fe2d0a13en, 0xd149cc226c361df0n, 0x3fn, 0xda32c3e13b81a91cn],
    13,
    0x62f4189fe26aa13en,
    2,
  ],
  [0x9a0200a0, [0xan, 0xac8a9ad228378577n, 0x0n, 0x4ad97449d762eaf8n, 0x1an, 0x1cn], 9, 0x1cn, 9],
  [
    0xeb42ec60,
    [0x63928eb79b029d9fn, 0x86ac6e7fd6a2e828n, 0x1cn, 0x606c30fa7a3716an, 0xffffffffffffffffn, 0xbn],
    5,
    0x606c30fa7a3716an,
    2,
  ],
  [
    0x92f378a0,
    [0x39n, 0xd3fd3d0b34f4effcn, 0xe5e3a3e62c0f5c3cn, 0x5n, 0x5179f253f99d27f6n, 0x7fffffffn],
    14,
    0x643affffffffffffn,
    14,
  ],
  [
    0xdac01420,
    [
      0xbdaa776909360467n,
      0x229e4e4cbd20533n,
      0x31efb141e6f236ecn,
      0xe0ef304d50f60d2en,
      0xdn,
      0xbae3a21393890b2an,
    ],
    14,
    0x5n,
    14,
  ],
  [
    0x0b823420,
    [
      0x1157008264854c13n,
      0xab4691df16c4e9f8n,
      0xd81c3140114d2ebdn,
      0x8000000000000000n,
      0xc4f6ed880fb27648n,
      0x50010189e223791cn,
    ],
    11,
    0x16c57461n,
    11,
  ],
  [
    0xd1166060,
    [0x1n, 0x0n, 0x2764b11f159aa136n, 0xfd778738e18b9511n, 0xff5a878648fdf931n, 0xbd137d8f3bef13d1n],
    2,
    0xfd778738e18b8f79n,
    2,
  ],
  [
    0x2a0403e0,
    [
      0x95953c3fd03cebb8n,
      0x24n,
      0xce02d5276c2077e4n,
      0x155320c2ad43940en,
      0x72557e598d4b56ean,
      0xc0775da4580fee0bn,
    ],
    14,
    0x8d4b56ean,
    14,
  ],
  [
    0x8b019020,
    [
      0x826b1109d8a2df7dn,
      0x5320439236d65944n,
      0x8235a72df74eb91an,
      0xffffffffffffffffn,
      0xf1663b3554fbc5cfn,
      0x18n,
    ],
    10,
    0xc085d7d236d65944n,
    10,
  ],
  [
    0x1ac30800,
    [0x143dbaaf9a885437n, 0x29n, 0x12n, 0x3dn, 0x217aad836ec1cfd8n, 0x8660f49e324b378en],
    9,
    0x28887acn,
    9,
  ],
  [
    0x93418c80,
    [
      0x3227788122e064a8n,
      0x11d010350634c099n,
      0xd3a4c4681bb951c1n,
      0xd9cc130cc8677ae7n,
      0x8000000000000000n,
      0x34n,
    ],
    6,
    0x0n,
    6,
  ],
  [
    0x72302480,
    [
      0x10n,
      0xcc997aeda6d18838n,
      0x2e12240ed569bb46n,
      0x8c5b4372f047f515n,
      0xcd43333a3a239b80n,
      0x5ce30e1283863d25n,
    ],
    1,
    0x2230000n,
    0,
  ],
  [
    0x515a9080,
    [
      0x100000000n,
      0xd9a1d78e348dbfabn,
      0xffffffff80000000n,
      0x7fffffffffffffffn,
      0xf118aab62114ba02n,
      0x72e2a8a0be838539n,
    ],
    8,
    0x20aa7a02n,
    8,
  ],
  [
    0x9a858460,
    [
      0x7e7826b351a6321cn,
      0x1a9338bde3a30c5bn,
      0xe4c17d31b59348ban,
      0x2an,
      0xba7ec0ea54d93616n,
      0xbe6766da3523671fn,
    ],
    12,
    0xbe6766da35236720n,
    12,
  ],
  [
    0x53001440,
    [0x9n, 0x1ce1d001a66ba955n, 0x0n, 0x5f0d94f29d9790a6n, 0x99a4bd9f121650f9n, 0x911ab3e91b282405n],
    8,
    0x0n,
    8,
  ],
  [
    0x7290ac60,
    [0xe6e78683044c737cn, 0x83d1dcff3b291d21n, 0xffffffffffffffffn, 0x5n, 0x0n, 0x81c667210e948279n],
    7,
    0x44c8563n,
    7,
  ],
  [
    0xf2404040,
    [0x9abb0dc95c28ce6n, 0x3a0bec5824ffe8e2n, 0x5a3aed2898c73f99n, 0x5dc9863a00dc4e6dn, 0x31n, 0x23n],
    9,
    0x13f99n,
    0,
  ],
  [
    0x9ba18840,
    [
      0xf2b460e38f72e418n,
      0xc75dee41c8a61a01n,
      0x7821fa9b8b726a3n,
      0x56482a92238bbbc9n,
      0x574a861ea54c1f98n,
      0xa3a28b12cca11f70n,
    ],
    6,
    0x76bb2ff400617200n,
    6,
  ],
  [
    0x52a6f080,
    [0xfbe3047d00c5372n, 0xbe437957c7984473n, 0x39n, 0x85f2904292f9657dn, 0x0n, 0x43n],
    7,
    0x37840000n,
    7,
  ],
  [
    0x9b251440,
    [0x80000000n, 0x8000000000000000n, 0x34n, 0x0n, 0x20n, 0xbaff9f51f8c4ef84n],
    1,
    0xbaff9f5080c59654n,
    1,
  ],
  [
    0x130e6c20,
    [
      0x176f1b618473caan,
      0xe192aa2d35ac748bn,
      0x7fffffffn,
      0x4bf761bc9d304b8en,
      0xc3cb2b5bc3269d01n,
      0x916cedfa57a34223n,
    ],
    5,
    0x16b1n,
    5,
  ],
  [
    0x138578a0,
    [0x7fffffffn, 0xd0c85f8a230ea9d4n, 0x6feb69396db83809n, 0x13fac6db88403082n, 0x19n, 0x100000000n],
    0,
    0x0n,
    0,
  ],
  [
    0x1ac40c40,
    [
      0x62a6073dcf3aa4ean,
      0x7fffffffffffffffn,
      0xdeb902f2e425ff0bn,
      0x349db9df6e70c117n,
      0x1df0fb2c9b8fb161n,
      0x1an,
    ],
    1,
    0x0n,
    1,
  ],
  [
    0x93df9860,
    [
      0x7fffffffffffffffn,
      0x6f23979c28360a92n,
      0x100000000n,
      0x7f4b8c68f1156e78n,
      0x9c7490c74aef9945n,
      0x4b85070b70fecean,
    ],
    11,
    0xa3c455b9e0000000n,
    11,
  ],
  [
    0x93c48c00,
    [
      0x6e8e0e94f79144e7n,
      0xdd25701536740f77n,
      0x42a927fcd5e48bd9n,
      0x18n,
      0x888e60d4866ebf5dn,
      0x13ed32f75d16b5f8n,
    ],
    1,
    0x9ef2289cf111cc1an,
    1,
  ],
  [
    0x5ac01080,
    [0x9d098ea7e39bb37an, 0x75d33a19b3eb39b7n, 0x994f551ca2240f03n, 0x18n, 0x59e205a3ddabf4cbn, 0x0n],
    7,
    0x0n,
    7,
  ],
  [
    0x9a827420,
    [0x0n, 0xd27fc7654581102fn, 0x229908791afc820en, 0x8000000000000000n, 0x2fn, 0x6f85059f03c13948n],
    12,
    0xd27fc7654581102fn,
    12,
  ],
  [
    0x7a050060,
    [0x10n, 0x0n, 0x868d8af14295767bn, 0x400fc06e2b481b2en, 0x549457372a6baf4n, 0x976df30771a247d3n],
    3,
    0xb9a5d35bn,
    8,
  ],
  [
    0x3220a080,
    [
      0xfc951a02074ecc31n,
      0x1n,
      0xb8d527bcb27f2cf1n,
      0x8000000000000000n,
      0xffffffffffffffffn,
      0x7b00a8d24e8c09dfn,
    ],
    5,
    0xffffffffn,
    5,
  ],
  [
    0xb1237c60,
    [
      0xdbfaa1ee2e7be8cbn,
      0xf2f1f03820d00184n,
      0x8e9d5d3507dd2263n,
      0x15d07506d9a42d6n,
      0x0n,
      0x91cdc1574d7df2cen,
    ],
    4,
    0x15d07506d9a4bb5n,
    0,
  ],
  [
    0x8a43dc80,
    [0x97bed91ab68a0447n, 0x2ee496351a9b3b7en, 0xa7c306a656af40ebn, 0x80000000n, 0x32n, 0x6f33323153450e21n],
    12,
    0x0n,
    12,
  ],
  [
    0x1ac520a0,
    [0x80000000n, 0x8e5e94e35759840n, 0x18n, 0x6251d010cfa17c65n, 0xbcb6895622de22a3n, 0x8000000000000000n],
    13,
    0x0n,
    13,
  ],
  [
    0x1b040080,
    [0x70e11f72700fa6ffn, 0x34n, 0xffffffffffffffffn, 0x1n, 0x257a5fbe22e84e06n, 0x7ce9be679972e8a7n],
    10,
    0x8ab74f23n,
    10,
  ],
  [
    0xeae58080,
    [
      0x43n,
      0x7fffffffffffffffn,
      0x494432188225580fn,
      0x4ed08f4097df172fn,
      0xffffffffffffffffn,
      0x413303cf7bb9f94an,
    ],
    6,
    0x844606b5beccfc30n,
    8,
  ],
  [
    0x112ba060,
    [
      0x7fffffffffffffffn,
      0x8c4b3cb1509fec4fn,
      0xfe440cf2be6dd22bn,
      0x41n,
      0x17e38d0dbe3c341en,
      0x1e12ed181e0c93d3n,
    ],
    7,
    0xb29n,
    7,
  ],
  [
    0x4b827060,
    [
      0x5778556680301719n,
      0xa61589c92ea35b18n,
      0xffffffff80000000n,
      0x33n,
      0xe0b76739bda4d6a5n,
      0xf8eec309f3190607n,
    ],
    10,
    0x3bn,
    10,
  ],
  [
    0xaa0203e0,
    [
      0x4b97fc468262ad06n,
      0xa80cab66159f3233n,
      0x52d8b337a4ecab20n,
      0x10n,
      0xb0e3b85468320622n,
      0xffffffff80000000n,
    ],
    12,
    0x52d8b337a4ecab20n,
    12,
  ],
  [
    0x1ac42800,
    [0x1n, 0x13f7fb4736efad0fn, 0x8000000000000000n, 0x954e24fe3f6e2af7n, 0x7fffffffn, 0xe81b728298638a86n],
    0,
    0x0n,
    0,
  ],
  [
    0x2b222420,
    [
      0x13df9ceb84f8c30cn,
      0x6n,
      0xcf7c6655f28ea3d2n,
      0xcab497828f7598cdn,
      0xef2fe0dc14022de2n,
      0xa2d29066e4de6e6fn,
    ],
    2,
    0x147aan,
    0,
  ],
  [
    0x2a0503e0,
    [
      0xffffffff80000000n,
      0xf9be4da555000236n,
      0xa21858e050f231d0n,
      0x4c2598d01c7948fdn,
      0x9n,
      0x24a3b056e0cecddfn,
    ],
    7,
    0xe0cecddfn,
    7,
  ],
  [
    0xdac01400,
    [
      0x3d518cc874104701n,
      0x14n,
      0xeea08cfadb7a2e9en,
      0xf25cba10df91d5f1n,
      0x82541d5ab97dd338n,
      0x7fffffffffffffffn,
    ],
    10,
    0x1n,
    10,
  ],
  [
    0x917ce860,
    [
      0x450d8ce49defbc0cn,
      0x42312f4a4f52d37n,
      0x8a363bb889b7d30an,
      0x10632ea3bd873efen,
      0xdn,
      0xc602442d33f56a00n,
    ],
    14,
    0x10632ea3be7adefen,
    14,
  ],
  [
    0x9b4258a0,
    [
      0xc8ec1eddc7cc4f74n,
      0x4f558104a14a398n,
      0xa46e4ad080fb14c2n,
      0x7787fdf56c19e897n,
      0x1n,
      0xffffffff80000000n,
    ],
    2,
    0x2dc8da97n,
    2,
  ],
  [
    0xd1202400,
    [
      0x8e3f76f33f39685n,
      0x673e6b3cebac207fn,
      0x9202bf3ef8f86238n,
      0xffffffff80000000n,
      0xffffffffn,
      0xa491e26285b0d7a0n,
    ],
    1,
    0x8e3f76f33f38e7cn,
    1,
  ],
  [
    0x0b0004a0,
    [
      0x26n,
      0x6794c825edd75240n,
      0x8518927b91a19710n,
      0xa52eeccda0276217n,
      0x3d477b15a22d12a2n,
      0x92934f44bbfa4aben,
    ],
    6,
    0xbbfa4b0an,
    6,
  ],
  [
    0xab052840,
    [0x98be5fcdd09e072fn, 0x1n, 0xc42f9b923bc8294an, 0x21n, 0xec9cd78652b22a52n, 0x12n],
    0,
    0xc42f9b923bc8714an,
    8,
  ],
  [
    0x310548a0,
    [
      0xffffffff80000000n,
      0x28n,
      0x9e956968897dd911n,
      0xfc88df073660d493n,
      0x662cd4a038d4a61an,
      0xeb78189d9562ef01n,
    ],
    2,
    0x9562f053n,
    8,
  ],
  [
    0xf2035000,
    [0xed4048b3b54de65bn, 0x7fffffffffffffffn, 0xan, 0x0n, 0x8000000000000000n, 0xffffffffffffffffn],
    15,
    0xe00048b3a001e65bn,
    8,
  ],
  [
    0x5ac010a0,
    [0x55a5c10e039929f0n, 0xa8c7f1556a21ff98n, 0x8000000000000000n, 0x23n, 0x2en, 0xc6e858105512f7b5n],
    15,
    0x1n,
    15,
  ],
  [
    0xab24a0a0,
    [
      0xffffffffffffffffn,
      0x417c4df51ffb52fn,
      0x45n,
      0x2ac8a5567012462n,
      0x6faa0ddd19a56d72n,
      0x4ee64ccdc26e96cbn,
    ],
    6,
    0x4ee64ccdc26f043dn,
    0,
  ],
  [
    0xb37b2c40,
    [
      0x15408a55d5de7cacn,
      0x409ddac430f8e17n,
      0x2bn,
      0xf416bd6a43a9c9een,
      0x60bdfe2113afffc1n,
      0xc06a815f18a52e33n,
    ],
    1,
    0x15408a55d5de056cn,
    1,
  ],
  [
    0x8b22c080,
    [0x4720262411cd3169n, 0x32n, 0x60186a198c8b88ebn, 0x100000000n, 0x7n, 0x43n],
    3,
    0xffffffff8c8b88f2n,
    3,
  ],
  [
    0x312020a0,
    [
      0xa87715e686200e1dn,
      0x3798f0cd3272a677n,
      0x18f4ac68cab2a00en,
      0x22n,
      0x1bb8f92340be76c1n,
      0xa2a48ddbcad5fc3bn,
    ],
    14,
    0xcad60443n,
    8,
  ],
  [
    0x9157b060,
    [
      0xd43402195801d6an,
      0x5c761b657cd6c6bn,
      0x9a55053f353d26f7n,
      0xffffffff80000000n,
      0x24n,
      0xbd7ab7c187913fadn,
    ],
    1,
    0xffffffff805ec000n,
    1,
  ],
  [
    0x517f7c20,
    [0x3n, 0x868a3a953ae01498n, 0xb5beaa04ef3691b7n, 0xc45a405a95e7e385n, 0x54f62905ca14b7bn, 0x1n],
    2,
    0x39e22498n,
    2,
  ],
  [
    0xd354b400,
    [0x19c0c4861ac807f9n, 0xf354b06630de50e1n, 0x3342166943471e8dn, 0x13n, 0x100000000n, 0x6n],
    13,
    0x4861acn,
    13,
  ],
  [
    0xcb000440,
    [
      0xcec12d3b4b85f0dfn,
      0x22e322eaa8e2c40fn,
      0x83a0889f853995b1n,
      0x526ec0e430ab9025n,
      0x6dca950296cf06e7n,
      0x2dn,
    ],
    12,
    0xe61e2e28ee2db3f3n,
    12,
  ],
  [
    0x9ac42440,
    [0x13n, 0xb3f3dce7b86b9f67n, 0x35b42e4e3879f90bn, 0x1n, 0xd3be13935dd9408n, 0x1f3416cb92efc377n],
    8,
    0x35b42e4e3879f9n,
    8,
  ],
  [
    0x5287d800,
    [
      0x8bfc6bd78096a83cn,
      0x4268212be89e665bn,
      0xffffffffffffffffn,
      0xab0f4a8bd2997e5fn,
      0x666e117199d3bc97n,
      0x7fffffffn,
    ],
    11,
    0x3ec0n,
    11,
  ],
  [
    0xab0318a0,
    [0x9362a0cae92992e1n, 0x3bn, 0x8457e32f4035f021n, 0x30n, 0x2f9c88ddff0be9a3n, 0xb6506d8241f9e7ean],
    8,
    0xb6506d8241f9f3ean,
    8,
  ],
];

test('results agree with qemu-aarch64 reference vectors', () => {
  for (const [word, xs, nzcv, x0, nzcvAfter] of QEMU_VECTORS) {
    const s = randomState();
    for (let i = 0; i < 6; i++) s.x[i] = xs[i];
    s.nzcv = nzcv;
    const e = clone(s);
    e.x[0] = x0;
    e.nzcv = nzcvAfter;
    check(word, s, e, 'qemu vector');
  }
});

// A64 branches: B, BL, B.cond, CBZ, CBNZ, TBZ, TBNZ, BR, BLR, RET. Targets are checked against a
// BigInt model of the 64-bit PC arithmetic, including carries into and borrows from the high half.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';
import type { Arm64Cpu } from '../src/cpu/arm64/cpu.js';

const M64 = (1n << 64n) - 1n;
const VBAR = BigInt(RAM_BASE + 0x1000);

let seed = 0x9e3779b9;
function rnd32(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}
const rndInt = (n: number): number => rnd32() % n;
const SPECIAL_PC = [
  0n,
  0xfffffffcn,
  0xfffffff0n,
  0x100000000n,
  0x100000004n,
  0xfffffffffffffffcn,
  0x7ffffffffffffffcn,
  0x8000000000000000n,
];
function rndPc(): bigint {
  if (rndInt(3) === 0) return SPECIAL_PC[rndInt(SPECIAL_PC.length)];
  return ((BigInt(rnd32()) << 32n) | BigInt(rnd32())) & ~3n;
}
function rnd64(): bigint {
  if (rndInt(4) === 0) return [0n, 1n, 0xffffffffn, 0x100000000n, M64, 1n << 63n, 1n << 31n][rndInt(7)];
  return (BigInt(rnd32()) << 32n) | BigInt(rnd32());
}
const hex = (v: number | bigint, w = 8): string => v.toString(16).padStart(w, '0');

function conditionModel(cond: number, nzcv: number): boolean {
  const N = (nzcv >> 3) & 1;
  const Z = (nzcv >> 2) & 1;
  const C = (nzcv >> 1) & 1;
  const V = nzcv & 1;
  const base = [Z === 1, C === 1, N === 1, V === 1, C === 1 && Z === 0, N === V, N === V && Z === 0, true][
    cond >> 1
  ];
  return (cond & 1) === 1 && cond !== 15 ? !base : base;
}

// encoders (Arm ARM field layouts)
const u = (x: number): number => x >>> 0;
const E = {
  b: (link: number, off: number) => u((link << 31) | (0b00101 << 26) | ((off >> 2) & 0x3ffffff)),
  bcond: (cond: number, off: number) => u((0b01010100 << 24) | (((off >> 2) & 0x7ffff) << 5) | cond),
  cb: (sf: number, nz: number, rt: number, off: number) =>
    u((sf << 31) | (0b011010 << 25) | (nz << 24) | (((off >> 2) & 0x7ffff) << 5) | rt),
  tb: (nz: number, bit: number, rt: number, off: number) =>
    u(
      ((bit >> 5) << 31) |
        (0b011011 << 25) |
        (nz << 24) |
        ((bit & 31) << 19) |
        (((off >> 2) & 0x3fff) << 5) |
        rt,
    ),
  br: (opc: number, rn: number) => u((0b1101011 << 25) | (opc << 21) | (0b11111 << 16) | (rn << 5)),
};

test('encoders agree with the GNU assembler', () => {
  // words from aarch64-linux-gnu-as + objdump
  const table: [number, number, string][] = [
    [E.b(0, 0x1000), 0x14000400, 'b .+0x1000'],
    [E.b(1, -4), 0x97ffffff, 'bl .-4'],
    [E.bcond(10, 0x40), 0x5400020a, 'b.ge .+0x40'],
    [E.cb(0, 0, 3, -0x100), 0x34fff803, 'cbz w3, .-0x100'],
    [E.cb(1, 1, 4, 8), 0xb5000044, 'cbnz x4, .+8'],
    [E.tb(0, 63, 5, 0x20), 0xb6f80105, 'tbz x5, #63, .+0x20'],
    [E.tb(1, 3, 6, -0x20), 0x371fff06, 'tbnz w6, #3, .-0x20'],
    [E.br(0, 7), 0xd61f00e0, 'br x7'],
    [E.br(1, 30), 0xd63f03c0, 'blr x30'],
    [E.br(2, 30), 0xd65f03c0, 'ret'],
  ];
  for (const [got, want, text] of table) assert.equal(hex(got), hex(want), text);
});

const tc = makeCpu([], { ramSize: 64 * 1024 });

interface Result {
  next: bigint;
  x: bigint[];
}

/**
 * Run the handler the decoder picks for `word` at an arbitrary 64-bit PC (the executor needs the PC
 * to be in RAM, so the handler is called directly, after presetting next PC = PC + 4 as the executor does).
 */
function atPc(word: number, pc: bigint, x: bigint[], nzcv: number): Result {
  const cpu = tc.cpu;
  for (let i = 0; i < 31; i++) cpu.setXBig(i, x[i]);
  cpu.nzcv = nzcv;
  cpu.setPc(pc);
  const next = (pc + 4n) & M64;
  cpu.nextLo = Number(next & 0xffffffffn);
  cpu.nextHi = Number(next >> 32n);
  const d = cpu.code.decoder.decode(word);
  assert.notEqual(d.name, 'UNALLOCATED', `0x${hex(word)} decodes`);
  d.handler(cpu, word);
  return {
    next: (BigInt(cpu.nextHi >>> 0) << 32n) | BigInt(cpu.nextLo >>> 0),
    x: Array.from({ length: 31 }, (_, i) => cpu.xBig(i)),
  };
}

/** Execute one instruction at RAM_BASE through the executor; 'undef' if it took an UNDEF exception. */
function execute(word: number, x: bigint[], nzcv: number): Arm64Cpu | 'undef' {
  const { cpu, mem } = tc;
  mem.dv.setUint32(0, word, true);
  cpu.code.invalidateAll();
  cpu.invalidateFetch();
  for (let i = 0; i < 31; i++) cpu.setXBig(i, x[i]);
  cpu.nzcv = nzcv;
  cpu.el = 1;
  cpu.spsel = 1;
  cpu.sys.VBAR_EL1 = VBAR;
  cpu.setPc(BigInt(RAM_BASE));
  tc.step(1);
  if (cpu.pc === VBAR + 0x200n && cpu.sys.ESR_EL1 >> 26n === 0n) return 'undef';
  return cpu;
}

const randRegs = (): bigint[] => Array.from({ length: 31 }, () => rnd64());

test('B and BL: 64-bit targets (carry into / borrow from the high half), X30 = PC + 4', () => {
  for (let i = 0; i < 3000; i++) {
    const link = rndInt(2);
    const off = rndInt(4) === 0 ? [0, 4, -4, 0x7fffffc, -0x8000000][rndInt(5)] : ((rnd32() << 6) >> 6) & ~3;
    const pc = rndPc();
    const x = randRegs();
    const r = atPc(E.b(link, off), pc, x, rndInt(16));
    assert.equal(
      hex(r.next, 16),
      hex((pc + BigInt(off)) & M64, 16),
      `b${link ? 'l' : ''} ${off} at ${hex(pc, 16)}`,
    );
    const want = x.slice();
    if (link) want[30] = (pc + 4n) & M64;
    assert.deepEqual(r.x, want);
  }
});

test('B.cond: every condition against every NZCV', () => {
  for (let cond = 0; cond < 16; cond++) {
    for (let nzcv = 0; nzcv < 16; nzcv++) {
      for (let k = 0; k < 8; k++) {
        const off = ((rnd32() << 13) >> 13) & ~3; // signed 19-bit word offset
        const pc = rndPc();
        const x = randRegs();
        const r = atPc(E.bcond(cond, off), pc, x, nzcv);
        const want = conditionModel(cond, nzcv) ? (pc + BigInt(off)) & M64 : (pc + 4n) & M64;
        assert.equal(hex(r.next, 16), hex(want, 16), `b.${cond} nzcv=${nzcv} off=${off} pc=${hex(pc, 16)}`);
        assert.deepEqual(r.x, x);
      }
    }
  }
  // through the executor: taken and not taken
  const x = randRegs();
  let cpu = execute(E.bcond(0, -8), x, 0b0100);
  assert.ok(cpu !== 'undef');
  assert.equal(cpu.pc, BigInt(RAM_BASE - 8));
  cpu = execute(E.bcond(0, -8), x, 0);
  assert.ok(cpu !== 'undef');
  assert.equal(cpu.pc, BigInt(RAM_BASE + 4));
  // BC.cond (v8.8, o0 = 1) is UNDEF
  assert.equal(execute(0x54000050, x, 0), 'undef', 'bc.eq');
});

test('CBZ/CBNZ: W forms look at the low half only; XZR', () => {
  for (let i = 0; i < 3000; i++) {
    const sf = rndInt(2);
    const nz = rndInt(2);
    const rt = rndInt(6) === 0 ? 31 : rndInt(31);
    const off = ((rnd32() << 13) >> 13) & ~3;
    const pc = rndPc();
    const x = randRegs();
    const sel = rndInt(4);
    if (rt !== 31 && sel === 0) x[rt] = 0n;
    if (rt !== 31 && sel === 1) x[rt] = BigInt((rnd32() | 1) >>> 0) << 32n; // low half zero, high half not
    const v = rt === 31 ? 0n : sf ? x[rt] : x[rt] & 0xffffffffn;
    const taken = nz ? v !== 0n : v === 0n;
    const r = atPc(E.cb(sf, nz, rt, off), pc, x, rndInt(16));
    const want = taken ? (pc + BigInt(off)) & M64 : (pc + 4n) & M64;
    assert.equal(hex(r.next, 16), hex(want, 16), `cb${nz ? 'nz' : 'z'} sf=${sf} x${rt}=${hex(v, 16)}`);
    assert.deepEqual(r.x, x);
  }
});

test('TBZ/TBNZ: bits 0..63', () => {
  for (let i = 0; i < 3000; i++) {
    const nz = rndInt(2);
    const bit = rndInt(4) === 0 ? [0, 31, 32, 63][rndInt(4)] : rndInt(64);
    const rt = rndInt(8) === 0 ? 31 : rndInt(31);
    const off = ((rnd32() << 18) >> 18) & ~3; // signed 14-bit word offset
    const pc = rndPc();
    const x = randRegs();
    const v = rt === 31 ? 0n : x[rt];
    const set = ((v >> BigInt(bit)) & 1n) === 1n;
    const taken = nz ? set : !set;
    const r = atPc(E.tb(nz, bit, rt, off), pc, x, rndInt(16));
    const want = taken ? (pc + BigInt(off)) & M64 : (pc + 4n) & M64;
    assert.equal(
      hex(r.next, 16),
      hex(want, 16),
      `tb${nz ? 'nz' : 'z'} #${bit} x${rt}=${hex(v, 16)} off=${off}`,
    );
    assert.deepEqual(r.x, x);
  }
});

test('BR, BLR, RET: register targets, BLR X30 uses the old X30', () => {
  for (let i = 0; i < 1000; i++) {
    const opc = rndInt(3);
    const rn = rndInt(8) === 0 ? 30 : rndInt(31);
    const pc = rndPc();
    const x = randRegs();
    const r = atPc(E.br(opc, rn), pc, x, rndInt(16));
    assert.equal(hex(r.next, 16), hex(x[rn], 16), `br opc=${opc} x${rn}`);
    const want = x.slice();
    if (opc === 1) want[30] = (pc + 4n) & M64;
    assert.deepEqual(r.x, want);
  }
  // RET defaults to X30
  const x = randRegs();
  const r = atPc(0xd65f03c0, 0x1000n, x, 0);
  assert.equal(r.next, x[30]);
});

test('pointer-authentication branches and other unallocated branch encodings are UNDEF', () => {
  const x = randRegs();
  // words from aarch64-linux-gnu-as -march=armv8.5-a
  for (const [w, text] of [
    [0xd71f0822, 'braa x1, x2'],
    [0xd63f087f, 'blraaz x3'],
    [0xd65f0bff, 'retaa'],
    [0xd61f00e1, 'br x7 with op4 != 0'],
    [0xd61e00e0, 'br x7 with op2 != 11111'],
  ] as [number, string][]) {
    assert.equal(execute(w, x, 0), 'undef', text);
  }
});

test('a loop through the executor: calls, compare-and-branch, condition codes', () => {
  // sum 1..100 in x0 through a called function, then a self-loop; words from aarch64-linux-gnu-as
  const prog = [
    0xd2800000, // mov x0, #0
    0xd2800c81, // mov x1, #100
    0x94000004, // loop: bl add_it (+16)
    0xf1000421, // subs x1, x1, #1
    0x54ffffc1, // b.ne loop (-8)
    0x14000000, // done: b .
    0x8b010000, // add_it: add x0, x0, x1
    0xd65f03c0, // ret
  ];
  const t = makeCpu(prog, { ramSize: 64 * 1024 });
  t.step(2 + 100 * 5);
  assert.equal(t.cpu.xBig(0), 5050n);
  assert.equal(t.cpu.xBig(1), 0n);
  assert.equal(t.cpu.pc, BigInt(RAM_BASE + 20));
  assert.equal(t.cpu.xBig(30), BigInt(RAM_BASE + 12));
  assert.equal(t.cpu.nzcv, 0b0110);
});

test('BR/BLR to a misaligned address take a PC alignment fault at the target', () => {
  for (const opc of [0, 1]) {
    const t = makeCpu([E.br(opc, 1), 0xd503201f, 0xd503201f], { ramSize: 64 * 1024 });
    t.cpu.sys.VBAR_EL1 = VBAR;
    t.cpu.setXBig(1, BigInt(RAM_BASE + 6));
    t.step(1);
    assert.equal(t.cpu.pc, BigInt(RAM_BASE + 6));
    t.step(1);
    assert.equal(t.cpu.pc, VBAR + 0x200n, 'vector');
    assert.equal(t.cpu.sys.ESR_EL1 >> 26n, 0x22n, 'EC = PC alignment');
    assert.equal(t.cpu.sys.ELR_EL1, BigInt(RAM_BASE + 6));
    assert.equal(t.cpu.sys.FAR_EL1, BigInt(RAM_BASE + 6));
  }
});

// The WebAssembly translator's memory and units: guest RAM, the registers and the TLB share one
// WebAssembly memory; a unit imports only that memory and gives the interpreter's results and count;
// RAM past what one 32-bit wasm memory holds is refused with the limit in the message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  noAssembler,
  assemble,
  compareTiers,
  makeCpu,
  RAM_BASE,
  runToWfi,
  type TestCpu,
} from './helpers/arm64.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { MAX_WASM_RAM } from '../src/cpu/arm64/wasm/layout.js';
import { emitUnit } from '../src/cpu/arm64/wasm/translate.js';

// x1 = N; loop: x0 += 1; x1 -= 1; b.ne loop; wfi
const loop = (n: number): number[] => [
  0xd2800001 | (n << 5), // movz x1, #n
  0x91000400, // add x0, x0, #1
  0xf1000421, // subs x1, x1, #1
  0x54ffffc1, // b.ne -8
  0xd503207f, // wfi
];

test('guest RAM, registers and the TLB live in one shared WebAssembly memory', () => {
  const t = makeCpu(loop(10));
  const mem = t.mem;
  assert.ok(mem.wasm instanceof WebAssembly.Memory);
  assert.ok(mem.ram instanceof SharedArrayBuffer);
  assert.equal(mem.u8.buffer, mem.wasm.buffer, 'RAM is a view of the wasm memory');
  assert.equal(t.cpu.r.buffer, mem.wasm.buffer, 'the registers too');
  assert.equal(mem.ramOffset % 65536, 0, 'RAM starts on a 64 KiB boundary (host pages can be dropped)');
  t.cpu.setX(5, 0x1234, 0x5678);
  const dv = new DataView(mem.wasm.buffer);
  assert.equal(dv.getBigUint64(t.cpu.st + 5 * 8, true), 0x0000567800001234n, 'X5 as one little-endian i64');
});

test('RAM past one 32-bit WebAssembly memory is refused, naming the limit', () => {
  const mib = MAX_WASM_RAM / (1 << 20);
  assert.throws(
    () => new GuestMemory(RAM_BASE, MAX_WASM_RAM + (1 << 20)),
    new RegExp(`at most ${mib} MiB \\(one 32-bit WebAssembly memory\\)`),
  );
});

test('a unit imports no function, and runs the loop as the interpreter does', () => {
  const interp = makeCpu(loop(3000));
  interp.cpu.code.jit = false;
  interp.step(100_000);
  const t = makeCpu(loop(3000));
  const code = t.cpu.code;
  code.jitThreshold = 10;
  code.jitBatch = 1; // each unit compiled when its head gets hot
  let ran = 0;
  for (let k = 0; k < 200 && !t.cpu.waiting; k++) ran += t.step(1000);
  assert.ok(t.cpu.waiting, 'the loop ran to its WFI');
  assert.equal(t.cpu.xlo(0), 3000);
  assert.equal(ran, interp.cpu.icount, 'the same instruction count as the interpreter');
  assert.ok(code.jitStats.blocks > 0, 'a unit was installed');
  assert.ok(code.jitStats.insns > ran / 2, 'and ran most instructions');
  // V8 compiles a wrapper for every imported function of every module: units call the runtime
  // through their own table instead (wasm/unit.ts).
  const page = code.page(RAM_BASE);
  const src = emitUnit(
    1,
    {
      word: (i) => t.mem.u32[page.ramWord + i],
      decode: (insn) => code.decoder.decode(insn),
      undefinedHandler: code.decoder.undefinedHandler,
      ramOffset: t.mem.ramOffset,
    },
    512,
  );
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(src.bytes));
  assert.deepEqual(
    imports.map((i) => `${i.module}.${i.name}:${i.kind}`),
    ['env.mem:memory'],
  );
});

// Two loops of one block each, which a unit runs with their registers and flags in wasm locals
// (translate.ts, emitSelfLoop): loads, stores and flags in the first, a carry chain and CBNZ in the
// second. Whether the unit leaves every few iterations (small slices: the limit check on the back
// edge) or runs them through, registers, flags, memory and the count are the interpreter's.
const LOOPS = `
    mov x5, #0x40000000
    add x5, x5, #0x10000
    mov x1, #300
    mov x3, #7
3:  mov x0, #0
1:  ldr x2, [x5, x0, lsl #3]
    add x2, x2, x3
    eor x3, x3, x2, lsl #1
    str x2, [x5, x0, lsl #3]
    add x0, x0, #1
    cmp x0, x1
    b.ne 1b
    mov x4, #1000
    mov x6, #-1
2:  adds x6, x6, x4
    adc x7, x7, xzr
    sub x4, x4, #1
    cbnz x4, 2b
    sub x1, x1, #1
    cmp x1, #290
    b.ne 3b
    wfi
`;

test(
  'loop blocks keep registers in locals and leave with the interpreter state',
  { skip: noAssembler },
  () => {
    const { words } = assemble(LOOPS);
    const state = (t: TestCpu) => ({
      x: Array.from({ length: 8 }, (_, n) => `${t.cpu.xhi(n).toString(16)}:${t.cpu.xlo(n).toString(16)}`),
      nzcv: [t.cpu.n, t.cpu.z, t.cpu.c, t.cpu.v],
      mem: Array.from(t.mem.u32.subarray(0x10000 / 4, 0x10000 / 4 + 600)),
      count: t.cpu.icount,
    });
    const interp = makeCpu(words);
    interp.cpu.code.jit = false;
    runToWfi(interp, 1_000_000, 10);
    const want = state(interp);
    for (const slice of [200, 5000]) {
      const t = makeCpu(words);
      compareTiers(t.cpu, true);
      runToWfi(t, slice, 10_000);
      assert.deepEqual(
        state(t),
        want,
        `slices of ${slice}: the interpreter's registers, flags, memory and count`,
      );
      assert.ok(
        t.cpu.code.jitStats.insns > want.count / 2,
        `slices of ${slice}: most instructions ran translated`,
      );
    }
  },
);

// Blocks on no loop of their unit branch through the dispatch loop's head, which makes the block
// boundary check for all of them (translate.ts): a unit leaving there stops at the block it would
// have run next, with the count the interpreter has at that instruction.
test('a unit leaves at a block boundary reached from a block on no loop, at the next block', () => {
  const words = [
    0xd2800020, // movz x0, #1
    0xb4000040, // cbz x0, +8 (not taken)
    0x91000821, // add x1, x1, #2
    0x91000c42, // add x2, x2, #3
    0xd503207f, // wfi
  ];
  for (const [limit, pc, count] of [
    [0, 8, 2], // past the limit after the first block: leaves before the add at +8
    [10, 20, 5], // runs on through the second block and its WFI
  ]) {
    const t = makeCpu(words);
    const code = t.cpu.code;
    // interpreted once first: a unit holds only blocks the guest has run
    code.jit = false;
    t.step(words.length);
    assert.ok(t.cpu.waiting, 'the interpreter ran to the WFI');
    t.cpu.waiting = false;
    for (const r of [0, 1, 2]) t.cpu.setX(r, 0, 0);
    t.cpu.pcLo = RAM_BASE;
    code.jit = true;
    code.jitBatch = 1;
    const f = code.translate(code.page(RAM_BASE), 0);
    assert.notEqual(f, 0, 'the unit was translated');
    const ran = code.enter(t.cpu, f, limit);
    assert.equal(t.cpu.pcLo, RAM_BASE + pc, `PC after a run with limit ${limit}`);
    assert.equal(ran, count, `instructions retired with limit ${limit}`);
    assert.equal(t.cpu.xlo(1), count > 2 ? 2 : 0);
    const interp = makeCpu(words);
    interp.cpu.code.jit = false;
    interp.step(count);
    assert.equal(interp.cpu.pcLo, t.cpu.pcLo, 'where the interpreter is after as many instructions');
  }
});

/**
 * Translate the unit at the start of `words` (run by the interpreter first from each state `warm`
 * sets up: a unit holds only blocks the guest has run), enter it from the state `setUp` makes with
 * `limit`, and check PC, NZCV and registers `regs` against the interpreter after as many instructions.
 */
function leavesAsInterpreter(
  words: number[],
  setUp: (t: TestCpu) => void,
  warm: ((t: TestCpu) => void)[],
  limit: number,
  regs: number[],
  what: string,
): void {
  const t = makeCpu(words);
  const code = t.cpu.code;
  code.jit = false;
  for (const w of warm) {
    setUp(t);
    w(t);
    t.step(100);
    assert.ok(t.cpu.waiting, `the interpreter ran to the WFI, ${what}`);
  }
  setUp(t);
  code.jit = true;
  code.jitBatch = 1;
  const f = code.translate(code.page(RAM_BASE), 0);
  assert.notEqual(f, 0, 'the unit was translated');
  const ran = code.enter(t.cpu, f, limit) & 0x7fffffff;
  const interp = makeCpu(words);
  interp.cpu.code.jit = false;
  setUp(interp);
  interp.step(ran);
  const at = `${what}, limit ${limit} (${ran} instructions)`;
  assert.equal(t.cpu.pcLo, interp.cpu.pcLo, `PC, ${at}`);
  assert.equal(t.cpu.nzcv, interp.cpu.nzcv, `NZCV, ${at}`);
  for (const r of regs) assert.equal(t.cpu.xBig(r), interp.cpu.xBig(r), `X${r}, ${at}`);
}

// A compare and branch followed by a block that starts with another compare: the flags of the first
// are written back only where the unit leaves (translate.ts, setsFlagsFirst); where it leaves at that
// boundary, or takes the branch, the state block must have them.
for (const [variant, words] of [
  [
    'starts with the compare',
    [
      0xeb020023, // subs x3, x1, x2
      0x54000060, // b.eq +12 (to the WFI)
      0xf1001424, // subs x4, x1, #5
      0x9a9f17e5, // cset x5, eq
      0xd503207f, // wfi
    ],
  ],
  [
    'compares after an add',
    [
      0xeb020023, // subs x3, x1, x2
      0x54000080, // b.eq +16 (to the WFI)
      0x91000427, // add x7, x1, #1
      0xf10014e4, // subs x4, x7, #5
      0x9a9f17e5, // cset x5, eq
      0xd503207f, // wfi
    ],
  ],
] as [string, number[]][])
  test(`flags a compare leaves for the next block (which ${variant}) are exact where the unit leaves there`, () => {
    const cases: [number, number, number][] = [
      // x1, x2, limit: leave after the first block (not taken), run on, and take the branch
      [7, 9, 0],
      [7, 9, 10],
      [5, 5, 0],
      [0x80000000, 1, 0],
    ];
    for (const [x1, x2, limit] of cases) {
      const setUp = (t: TestCpu): void => {
        t.cpu.waiting = false;
        for (let r = 0; r < 6; r++) t.cpu.setX(r, 0, 0);
        t.cpu.setX(1, x1 | 0, x1 < 0 ? -1 : 0);
        t.cpu.setX(2, x2, 0);
        t.cpu.nzcv = 0b1010; // neither what the first compare nor the second leaves
        t.cpu.pcLo = RAM_BASE;
      };
      // both paths of the branch first
      const warm = [1, 3].map((a) => (t: TestCpu): void => {
        t.cpu.setX(1, a, 0);
        t.cpu.setX(2, a === 1 ? 2 : 3, 0);
      });
      leavesAsInterpreter(words, setUp, warm, limit, [3, 4, 5], `x1=${x1} x2=${x2}`);
    }
  });

// The same for a loop's back edge into a head that starts with a compare: the flags of the branch's
// own compare are written back only where the unit leaves at the back edge.
test('flags of a loop back edge into a compare are exact where the unit leaves there', () => {
  const words = [
    0xf1000463, // subs x3, x3, #1
    0x54000080, // b.eq +16 (to the WFI)
    0x91000400, // add x0, x0, #1
    0xb1000006, // adds x6, x0, #0
    0x54ffff81, // b.ne -16 (back to the subs)
    0xd503207f, // wfi
  ];
  const setUp = (t: TestCpu): void => {
    t.cpu.waiting = false;
    for (let r = 0; r < 7; r++) t.cpu.setX(r, 0, 0);
    t.cpu.setX(3, 4, 0);
    t.cpu.nzcv = 0b1010;
    t.cpu.pcLo = RAM_BASE;
  };
  for (const limit of [0, 3, 7, 100]) leavesAsInterpreter(words, setUp, [() => {}], limit, [0, 3, 6], 'loop');
});

// A condition right after a SUBS (CMP) in its block comes from the SUBS's operands (unit.ts,
// condition): every condition code it does that for, on both widths, on operands at the edges of
// signed and unsigned order, for a branch and for a select, against the interpreter.
test('a conditional branch or select right after a compare chooses as the interpreter does', () => {
  const M64 = (1n << 64n) - 1n;
  const pairs: [bigint, bigint][] = [
    [0n, 0n],
    [1n, 2n],
    [2n, 1n],
    [M64, 1n],
    [1n, M64],
    [1n << 63n, 1n],
    [(1n << 63n) - 1n, M64],
    [0x1234567800000001n, 0xffffffff00000002n], // W compares the low halves only
    [0x80000000n, 1n],
    [0x7fffffffn, 0xffffffffn],
  ];
  for (const wide of [true, false])
    for (let cond = 0; cond < 14; cond++) {
      const words = [
        wide ? 0xeb020023 : 0x6b020023, // subs x3, x1, x2 / subs w3, w1, w2
        0x54000040 | cond, // b.<cond> +8 (to the WFI)
        0xd2800024, // movz x4, #1 (not taken)
        0xd503207f, // wfi
      ];
      // and a select right after the compare
      const select = [
        words[0],
        0x9a8600a4 | (cond << 12), // csel x4, x5, x6, <cond>
        0xd503207f, // wfi
      ];
      for (const [a, b] of pairs) {
        const setUp = (t: TestCpu): void => {
          t.cpu.waiting = false;
          t.cpu.setXBig(1, a);
          t.cpu.setXBig(2, b);
          for (const r of [3, 4]) t.cpu.setX(r, 0, 0);
          t.cpu.setX(5, 0x55, 0);
          t.cpu.setX(6, 0x66, 0);
          t.cpu.nzcv = 0;
          t.cpu.pcLo = RAM_BASE;
        };
        leavesAsInterpreter(
          select,
          setUp,
          [() => {}],
          100,
          [3, 4],
          `CSEL, ${wide ? 'X' : 'W'} cond ${cond} ${a} ${b}`,
        );
        leavesAsInterpreter(
          words,
          setUp,
          [() => {}],
          100,
          [3, 4],
          `${wide ? 'X' : 'W'} cond ${cond} ${a} ${b}`,
        );
      }
    }
});

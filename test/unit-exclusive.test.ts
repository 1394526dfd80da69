// LDXR/STXR in translated code (wasm/runtime.ts ldx/stx): an atomic-increment loop of each size
// gives the interpreter's memory, registers and count without calling the handlers once translated;
// a store-exclusive after another write changed the location fails (status 1) in both tiers; an
// unaligned load-exclusive raises the alignment fault at the same instruction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  noAssembler,
  RECORDING_VECTORS,
  assemble,
  compareTiers,
  countingHandlers,
  makeCpu,
  runToWfi,
  type TestCpu,
} from './helpers/arm64.js';

const DATA = 0x10000; // offset in RAM of the counters (RAM_BASE + DATA = 0x4001_0000)
// x1: an 8-byte counter incremented 500 times; then a load-exclusive, a plain store of another
// value and the store-exclusive (w6: its status); x8: a halfword and x9: a byte counter, 300 times
// each. x12 = 1: then `lx`, a load-exclusive, 50 times aligned (translated by then) and once at an
// unaligned address. x20/x21: ESR and ELR of an exception.
const PROGRAM = `
    .text
_start:
    adr x10, vectors
    msr vbar_el1, x10
    movz x1, #0x4001, lsl #16
    add x8, x1, #16
    add x9, x1, #32
    mov x3, #500
1:  ldxr x0, [x1]
    add x0, x0, #1
    stxr w2, x0, [x1]
    cbnz w2, 1b
    subs x3, x3, #1
    b.ne 1b
    ldaxr w4, [x1]
    add w5, w4, #7
    str w5, [x1]
    stlxr w6, w4, [x1]
    mov x3, #300
2:  ldxrh w7, [x8]
    add w7, w7, #3
    stxrh w2, w7, [x8]
    cbnz w2, 2b
    ldxrb w7, [x9]
    add w7, w7, #1
    stxrb w2, w7, [x9]
    cbnz w2, 2b
    subs x3, x3, #1
    b.ne 2b
    cbz x12, 3f
    mov x3, #50
4:  mov x11, x1
    bl lx
    subs x3, x3, #1
    b.ne 4b
    add x11, x1, #2
    bl lx
3:  wfi
lx:
unaligned:
    ldxr w7, [x11]
    ret
${RECORDING_VECTORS}
`;

function run(jit: boolean, x12 = 0): { t: TestCpu; n: number; calls: number } {
  const { words } = assemble(PROGRAM);
  const t = makeCpu(words);
  compareTiers(t.cpu, jit);
  t.cpu.setX(12, x12, 0);
  // the LDXR and STXR handlers' calls
  const ldxrStxr = [0xc85f7c20 /* ldxr x0, [x1] */, 0xc8027c20 /* stxr w2, x0, [x1] */];
  const { result: n, calls } = countingHandlers(t.cpu, ldxrStxr, () => runToWfi(t, 100_000, 10));
  return { t, n, calls };
}

test(
  "exclusive increments translated: the interpreter's memory, status and count, no handler call once translated",
  { skip: noAssembler },
  () => {
    const a = run(false);
    const b = run(true);
    for (const r of [a, b]) {
      const dv = r.t.mem.dv;
      assert.equal(dv.getBigUint64(DATA, true), 507n, '500 increments, then the plain store of 500 + 7');
      assert.equal(r.t.cpu.xBig(6), 1n, 'the store-exclusive after the plain store failed');
      assert.equal(dv.getUint16(DATA + 16, true), 900, 'halfword: 300 x 3');
      assert.equal(dv.getUint8(DATA + 32), 300 & 0xff, 'byte: 300 increments, mod 256');
    }
    assert.equal(b.n, a.n, 'the same instruction count');
    assert.ok(a.calls > 1000, `interpreted: each LDXR and STXR of the first loop (${a.calls})`);
    assert.ok(b.calls * 10 < a.calls, `translated: ${b.calls} handler calls`);
    const slow = b.t.cpu.code.jitStats.slow;
    assert.ok(slow < 20, `translated: the MMU's slow path taken ${slow} times (TLB misses only)`);
  },
);

test(
  'an unaligned load-exclusive raises the alignment fault in translated code as interpreted',
  { skip: noAssembler },
  () => {
    const a = run(false, 1);
    const b = run(true, 1);
    const { sym } = assemble(PROGRAM);
    for (const r of [a, b]) {
      // EC 0x25 (data abort, same EL), IL, DFSC 0x21 (alignment)
      assert.equal(r.t.cpu.xBig(20), (0x25n << 26n) | (1n << 25n) | 0x21n, 'ESR_EL1: alignment fault');
      assert.equal(r.t.cpu.xBig(21), BigInt(0x4000_0000 + sym.unaligned), 'ELR_EL1: the ldxr');
    }
    assert.equal(b.n, a.n, 'the same instruction count');
  },
);

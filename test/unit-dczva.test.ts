// DC ZVA in translated code (wasm/emit.ts): inline above EL0 when the TLB has the block's page as
// writable RAM without cached code, else the interpreter's handler. A clear_page-style loop zeroes
// exactly its pages, interpreted and translated alike, and translated it calls the handler only for
// the TLB's first miss of each page; a DC ZVA on the page that holds the loop drops its translation
// (the code runs as memory now holds it); at EL0 with SCTLR_EL1.DZE = 0 it traps at the same
// instruction with the same syndrome.
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

const BUF = 0x10000; // offset in RAM of four pages the program clears
// `clear` zeroes from x0 to the end of its page, x2 pages. x12 = 1: then zero a data block of page
// `zpage` (the TLB now holds it as writable), run its code twice (`zero_me`: translated at its second
// entry), zero the code with the same translated loop and call it again: it is UNDEF now (zeros).
// x13 = 1: DC ZVA at EL0. x20/x21: ESR and ELR of an exception taken to EL1.
const PROGRAM = `
    .text
_start:
    adr x8, vectors
    msr vbar_el1, x8
    movz x0, #0x4001, lsl #16
    mov x2, #4
    bl clear
    cbz x12, 3f
    adr x0, zpage + 0x800
    mov x2, #1
    bl clear
    bl zero_me
    bl zero_me
    mov x15, x14
    mov x14, #0
    adr x0, zpage
    mov x2, #1
    bl clear
    bl zero_me
3:  cbz x13, 4f
    msr spsr_el1, xzr
    adr x8, el0
    msr elr_el1, x8
    eret
4:  wfi
el0:
    movz x0, #0x4001, lsl #16
    dc zva, x0
    wfi
clear:
2:  mov x1, #64
1:  dc zva, x0
    add x0, x0, x1
    tst x0, #0xfff
    b.ne 1b
    sub x2, x2, #1
    cbnz x2, 2b
    ret
${RECORDING_VECTORS}
    .balign 4096
zpage:
zero_me:
    mov x14, #1
    ret
`;

function run(jit: boolean, x12 = 0, x13 = 0): { t: TestCpu; n: number; zvaCalls: number } {
  const { words } = assemble(PROGRAM);
  const t = makeCpu(words);
  compareTiers(t.cpu, jit);
  t.cpu.setX(12, x12, 0);
  t.cpu.setX(13, x13, 0);
  for (let i = BUF - 64; i < BUF + 0x4004; i += 4) t.mem.dv.setUint32(i, 0xa5a5a5a5, true);
  // DC ZVA's handler calls (0xd50b7420: dc zva, x0)
  const { result: n, calls } = countingHandlers(t.cpu, [0xd50b7420], () => runToWfi(t, 100_000, 10));
  return { t, n, zvaCalls: calls };
}

test(
  'DC ZVA translated zeroes the same blocks inline, with the interpreter count',
  { skip: noAssembler },
  () => {
    const a = run(false);
    const b = run(true);
    for (const r of [a, b]) {
      const u8 = r.t.mem.u8;
      assert.ok(
        u8.subarray(BUF, BUF + 0x4000).every((x) => x === 0),
        'the four pages are zero',
      );
      assert.ok(
        u8.subarray(BUF - 64, BUF).every((x) => x === 0xa5),
        'the block before them is untouched',
      );
      assert.equal(r.t.mem.dv.getUint32(BUF + 0x4000, true), 0xa5a5a5a5, 'the word after them is untouched');
    }
    assert.equal(b.n, a.n, 'the same instruction count');
    assert.equal(a.zvaCalls, 256, 'interpreted: one handler call per block');
    assert.ok(
      b.zvaCalls <= 8,
      `translated: the handler for the first blocks and TLB misses only (${b.zvaCalls} calls)`,
    );
    assert.ok(b.t.cpu.code.jitStats.insns > b.n / 2, 'most instructions ran translated');
  },
);

test(
  'DC ZVA translated on a page with cached code drops it: the zeroed code runs as memory holds it',
  {
    skip: noAssembler,
  },
  () => {
    const a = run(false, 1);
    const b = run(true, 1);
    const { sym } = assemble(PROGRAM);
    for (const r of [a, b]) {
      assert.equal(r.t.cpu.xBig(15), 1n, 'zero_me ran before it was zeroed');
      assert.equal(r.t.cpu.xBig(14), 0n, 'not after');
      assert.equal(r.t.cpu.xBig(20), 1n << 25n, 'ESR_EL1: UNDEF (EC 0), IL 1');
      assert.equal(r.t.cpu.xBig(21), BigInt(0x4000_0000 + sym.zero_me), 'ELR_EL1 at the zeroed word');
    }
    assert.equal(b.n, a.n, 'the same instruction count');
  },
);

test('DC ZVA at EL0 with SCTLR_EL1.DZE = 0 traps (EC 0x18) as interpreted', { skip: noAssembler }, () => {
  const a = run(false, 0, 1);
  const b = run(true, 0, 1);
  const { sym } = assemble(PROGRAM);
  for (const r of [a, b]) {
    assert.equal(Number(r.t.cpu.xBig(20) >> 26n), 0x18, 'ESR_EL1.EC: trapped system instruction');
    assert.equal(r.t.cpu.xBig(21), BigInt(0x4000_0000 + sym.el0 + 4), 'ELR_EL1 at the DC ZVA');
  }
  assert.equal(b.t.cpu.xBig(20), a.t.cpu.xBig(20), 'the same syndrome');
  assert.equal(b.n, a.n, 'the same instruction count');
});

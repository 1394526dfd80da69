// Instructions translated code runs without a call to the interpreter's handler (wasm/emit.ts): MRS
// and MSR of TPIDR_EL0/TPIDRRO_EL0/TPIDR_EL1, MRS SP_EL0 (read from the state block), BFM and the
// long multiply-adds. The same program runs interpreted and translated: the same registers, the same
// instruction count, the UNDEF of MRS TPIDR_EL1 at EL0 and of MRS SP_EL0 under PSTATE.SP 0 taken at the
// same instruction with the same syndrome, and the loop really ran translated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  noAssembler,
  RECORDING_VECTORS,
  assemble,
  compareTiers,
  makeCpu,
  runToWfi,
  type TestCpu,
} from './helpers/arm64.js';

// `body` loops x1 times over the instructions below. It runs 300 times at EL1 (translated by then),
// then at EL1 with PSTATE.SP 0 when x12 is 1 (MRS SP_EL0 is UNDEF there), else at EL0, where its
// first instruction, MRS TPIDR_EL1, is UNDEF: the exception vectors record ESR and ELR and stop.
const PROGRAM = `
    .text
_start:
    adr x8, vectors
    msr vbar_el1, x8
    movz x3, #0x1234, lsl #48
    movk x3, #0x5678
    msr tpidr_el1, x3
    movz x3, #0xfedc, lsl #32
    movk x3, #0x40
    msr sp_el0, x3
    movz x3, #0x7, lsl #16
    msr tpidrro_el0, x3
    mov x1, #300
    bl body
    mov x1, #5
    cbz x12, 1f
    msr spsel, #0
    bl body
    wfi
1:  msr spsr_el1, xzr
    adr x8, el0
    msr elr_el1, x8
    eret
el0:
    bl body
    wfi
body:
    mrs x4, tpidr_el1
    add x5, x5, x4
    mrs x6, sp_el0
    eor x5, x5, x6, ror #7
    bfi x5, x4, #8, #12
    bfxil x6, x5, #3, #29
    bfi w9, w5, #30, #2
    smaddl x7, w5, w4, x7
    umsubl x7, w6, w5, x7
    msr tpidr_el1, x7
    msr tpidr_el0, x5
    mrs x11, tpidr_el0
    mrs x13, tpidrro_el0
    eor x7, x7, x11, lsl #3
    add x7, x7, x13
    add x7, x7, x9
    subs x1, x1, #1
    b.ne body
    ret
${RECORDING_VECTORS}`;

function run(jit: boolean, spsel0: boolean): { t: TestCpu; n: number } {
  const { words } = assemble(PROGRAM);
  const t = makeCpu(words);
  compareTiers(t.cpu, jit);
  if (spsel0) t.cpu.setX(12, 1, 0);
  const n = runToWfi(t, 1000, 100);
  return { t, n };
}

function compare(spsel0: boolean): void {
  const a = run(false, spsel0);
  const b = run(true, spsel0);
  for (const r of [5, 6, 7, 9, 11, 13, 20, 21])
    assert.equal(b.t.cpu.xBig(r), a.t.cpu.xBig(r), `x${r} translated as interpreted`);
  assert.equal(b.n, a.n, 'the same instruction count');
  assert.equal(b.t.cpu.sys.TPIDR_EL1, a.t.cpu.sys.TPIDR_EL1, 'TPIDR_EL1');
  // ESR: EC 0 (unknown reason, UNDEF), IL 1; ELR: MRS TPIDR_EL1 or MRS SP_EL0.
  const { sym } = assemble(PROGRAM);
  assert.equal(a.t.cpu.xBig(20), 1n << 25n, 'ESR_EL1 of the UNDEF');
  assert.equal(a.t.cpu.xBig(21), BigInt(0x4000_0000 + sym.body + (spsel0 ? 8 : 0)), 'ELR_EL1 at the MRS');
  const s = b.t.cpu.code.jitStats;
  assert.ok(s.insns > b.n / 2, `most instructions ran translated (${s.insns} of ${b.n})`);
}

test(
  'MRS/MSR TPIDR_*, MRS SP_EL0, BFM and SMADDL/UMSUBL translated; MRS TPIDR_EL1 UNDEF at EL0',
  { skip: noAssembler },
  () => {
    compare(false);
  },
);

test('MRS SP_EL0 translated is UNDEF under PSTATE.SP 0, as interpreted', { skip: noAssembler }, () => {
  compare(true);
});

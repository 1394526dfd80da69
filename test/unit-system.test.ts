// System instructions inside translated units (src/cpu/arm64/wasm/translate.ts, helper `hs`): a unit
// goes on after an MRS, MSR DAIFSet/DAIFClr or ISB when nothing the executor must see changed, and
// leaves right after a DAIFClr that unmasks a pending interrupt, with the interpreter's results and
// count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noAssembler, assemble, compareTiers, makeCpu, runToWfi, type TestCpu } from './helpers/arm64.js';

// A loop of 600 iterations with system instructions in it, unmasking interrupts (DAIFClr) and
// masking them again in each. With x7 != 0, iteration 400 has the host raise the interrupt line
// (HVC #1): the next DAIFClr, in translated code by then, takes it. The IRQ vector counts in x9,
// has the host lower the line (HVC #0) and stops at WFI.
const PROGRAM = `
    .text
_start:
    adr x8, vectors
    msr vbar_el1, x8
    msr daifset, #2
    isb
    mov x0, #0
    mov x1, #600
loop:
    add x0, x0, #3
    mrs x2, midr_el1
    msr daifclr, #2
    add x0, x0, #100
    msr daifset, #2
    isb
    eor x0, x0, x2, lsr #40
    cmp x1, #200
    b.ne 1f
    cbz x7, 1f
    hvc #1
1:  subs x1, x1, #1
    b.ne loop
    wfi
    .balign 2048
vectors:
    .org vectors + 0x280
    add x9, x9, #1
    hvc #0
    wfi
`;

function load(jit: boolean, irq: boolean): TestCpu {
  const t = makeCpu(assemble(PROGRAM).words, {
    hooks: {
      hvc: (cpu, imm) => {
        cpu.irqLine = imm === 1;
        return true;
      },
    },
  });
  compareTiers(t.cpu, jit);
  if (irq) t.cpu.setX(7, 1, 0);
  return t;
}

test(
  'MRS, MSR DAIFSet and ISB do not send translated code back to the executor',
  { skip: noAssembler },
  () => {
    const interp = load(false, false);
    const n0 = runToWfi(interp, 500, 200);
    const t = load(true, false);
    const n = runToWfi(t, 500, 200);
    assert.equal(t.cpu.xlo(0), interp.cpu.xlo(0), 'same result');
    assert.equal(n, n0, 'same instruction count');
    const s = t.cpu.code.jitStats;
    assert.ok(s.insns > n / 2, `most instructions ran translated (${s.insns} of ${n})`);
    // Four system instructions per iteration: leaving after each would enter the executor ~2400 times.
    assert.ok(s.entries < 60, `the executor entered translated code ${s.entries} times for 600 iterations`);
  },
);

test('an MSR DAIFClr that unmasks a pending interrupt leaves the unit at once', { skip: noAssembler }, () => {
  const interp = load(false, true);
  const n0 = runToWfi(interp, 500, 200);
  const t = load(true, true);
  const n = runToWfi(t, 500, 200);
  assert.equal(interp.cpu.xlo(9), 1, 'the interpreter took the interrupt');
  assert.equal(t.cpu.xlo(9), 1, 'translated code took the interrupt');
  // Taken before the ADD after the DAIFClr, as the interpreter does: same x0, same count.
  assert.equal(t.cpu.xlo(0), interp.cpu.xlo(0), 'same x0 when the interrupt was taken');
  assert.equal(t.cpu.xlo(1), interp.cpu.xlo(1), 'same loop counter when the interrupt was taken');
  assert.equal(n, n0, 'same instruction count');
  assert.ok(t.cpu.code.jitStats.insns > 0, 'the loop ran translated');
});

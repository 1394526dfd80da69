// Interrupts are taken promptly on every tier: bare-metal programs (assembled at test time) run 100
// trials each and count, in the guest, the trials where the IRQ handler had not run when it should
// have. Bounds (see Arm64Cpu.run): an interrupt that becomes pending is taken before the next
// instruction in the interpreter, and at the end of the current basic block (at most MAX_BLOCK - 1
// = 63 instructions later) in translated code; a system register write (MSR, e.g. ICC_SGI1R_EL1)
// ends a translated block. A timer that the guest sees fired (CNTV_CTL_EL0.ISTATUS, or a
// counter value past CVAL) has raised its PPI by the time the reading instruction completes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, noCrossToolchain, runBareMetal, x, type Tier } from './helpers/baremetal.js';
import { MAX_BLOCK } from '../src/cpu/arm64/jit.js';

const TRIALS = 100;

/**
 * Vectors and the IRQ handler: acknowledge, mask the virtual timer if it was that, set `flag`, count
 * in `handled`, keep the main program's x5 (its progress since raising the interrupt, for the SPI
 * tests) in `seen` and the largest such value in `seenMax`, EOI, return. Uses x10-x12 only.
 */
const HANDLER = `
    .balign 2048
vectors:
    .org vectors + 0x280
    b irq
    .org vectors + 0x800
irq:
    mrs x10, icc_iar1_el1
    cmp x10, #27
    b.ne 1f
    mov x11, #3                 // CNTV_CTL_EL0: ENABLE | IMASK
    msr cntv_ctl_el0, x11
1:  adr x11, flag
    mov w12, #1
    str w12, [x11]
    adr x11, handled
    ldr w12, [x11]
    add w12, w12, #1
    str w12, [x11]
    adr x11, seen
    str x5, [x11]
    adr x11, seenMax
    ldr x12, [x11]
    cmp x5, x12
    b.ls 2f
    str x5, [x11]
2:  msr icc_eoir1_el1, x10
    eret
    .balign 8
flag: .word 0
handled: .word 0
seen: .quad 0
seenMax: .quad 0
`;

/** x20 = misses, x19 = trials left (0), w21 = handled count, x22 = the largest x5 the handler saw. */
const EPILOGUE = `
    adr x1, handled
    ldr w21, [x1]
    adr x1, seenMax
    ldr x22, [x1]
    ret
`;

const TIMER = `
main:
    mov x19, #${TRIALS}
    mov x20, #0
    adr x3, flag
trial:
    str wzr, [x3]
    mov x1, #37
    mul x1, x1, x19
    add x1, x1, #20             // CNTV_TVAL_EL0: 20 + 37 * trial ticks
    msr cntv_tval_el0, x1
    mov x1, #1
    msr cntv_ctl_el0, x1
    msr daifclr, #2
1:  mrs x1, cntv_ctl_el0        // spin until ISTATUS
    tbz x1, #2, 1b
    ldr w2, [x3]                // the handler must have run
    cbnz w2, 2f
    add x20, x20, #1
2:  msr daifset, #2
    msr cntv_ctl_el0, xzr
    subs x19, x19, #1
    b.ne trial
${EPILOGUE}
${HANDLER}`;

// Spin on the counter instead of ISTATUS: once CNTVCT_EL0 >= CVAL the interrupt is taken.
const TIMER_COUNTER = `
main:
    mov x19, #${TRIALS}
    mov x20, #0
    adr x3, flag
trial:
    str wzr, [x3]
    mov x1, #41
    mul x1, x1, x19
    add x1, x1, #30
    mrs x4, cntvct_el0
    add x4, x4, x1              // CVAL = now + 30 + 41 * trial
    msr cntv_cval_el0, x4
    mov x1, #1
    msr cntv_ctl_el0, x1
    msr daifclr, #2
1:  mrs x1, cntvct_el0
    cmp x1, x4
    b.lo 1b
    ldr w2, [x3]
    cbnz w2, 2f
    add x20, x20, #1
2:  msr daifset, #2
    msr cntv_ctl_el0, xzr
    subs x19, x19, #1
    b.ne trial
${EPILOGUE}
${HANDLER}`;

// SGI 1 to this CPU (ICC_SGI1R_EL1: INTID 1, target list = CPU 0), checked by the next instruction.
const SGI = `
main:
    mov x19, #${TRIALS}
    mov x20, #0
    adr x3, flag
    ldr x4, =((1 << 24) | 1)
    msr daifclr, #2
trial:
    str wzr, [x3]
    msr icc_sgi1r_el1, x4
    ldr w2, [x3]
    cbnz w2, 2f
    add x20, x20, #1
2:  subs x19, x19, #1
    b.ne trial
    msr daifset, #2
${EPILOGUE}
${HANDLER}`;

// SPI 40 made pending by a store to GICD_ISPENDR1 (what a device's line does), then 80 counted
// instructions: the handler must have run by then, and x5 tells how many ran before it.
const SPI = `
main:
    mov x19, #${TRIALS}
    mov x20, #0
    adr x3, flag
    ldr x4, =0x08000204         // GICD_ISPENDR1
    mov w6, #(1 << 8)           // SPI 40
    msr daifclr, #2
trial:
    str wzr, [x3]
    mov x5, #0
    str w6, [x4]
    .rept 80
    add x5, x5, #1
    .endr
    ldr w2, [x3]
    cbnz w2, 2f
    add x20, x20, #1
2:  subs x19, x19, #1
    b.ne trial
    msr daifset, #2
${EPILOGUE}
${HANDLER}`;

// The same SPI raised by a store inside a loop that a translated region runs without leaving (one
// basic block branching back to its head): at iteration 50 of 200 the store pends it (CSEL picks the
// bit, other iterations write 0, which ISPENDR ignores); the handler must see x5 = 50, that is, run
// before the next iteration.
const SPI_LOOP = `
main:
    mov x19, #${TRIALS}
    mov x20, #0
    adr x3, seen
    ldr x4, =0x08000204         // GICD_ISPENDR1
    mov w6, #(1 << 8)           // SPI 40
    msr daifclr, #2
trial:
    mov x5, #0
1:  add x5, x5, #1
    cmp x5, #50
    csel w7, w6, wzr, eq
    str w7, [x4]
    cmp x5, #200
    b.lo 1b
    ldr x2, [x3]
    cmp x2, #50
    b.eq 2f
    add x20, x20, #1
2:  subs x19, x19, #1
    b.ne trial
    msr daifset, #2
${EPILOGUE}
${HANDLER}`;

// Another vCPU sends the SGI: CPU 0 asks for it ('sent' = 1) and spins until CPU 1 says it has sent
// it ('sent' = 2); by then CPU 0 must have taken it. (vCPUs run in turns on one thread, so an
// interrupt another vCPU raises is taken before this one's next instruction.)
const SGI_OTHER = `
main:
    ldr x0, =0xc4000003         // PSCI CPU_ON: CPU 1 at cpu1
    mov x1, #1
    adr x2, cpu1
    mov x3, #0
    hvc #0
    mov x19, #${TRIALS}
    mov x20, #0
    adr x3, flag
    adr x4, sent
    msr daifclr, #2
trial:
    str wzr, [x3]
    mov w1, #1
    str w1, [x4]
1:  ldr w2, [x4]
    cmp w2, #2
    b.ne 1b
    ldr w2, [x3]
    cbnz w2, 2f
    add x20, x20, #1
2:  subs x19, x19, #1
    b.ne trial
    msr daifset, #2
${EPILOGUE}
cpu1:
    adr x4, sent
    ldr x5, =((1 << 24) | 1)    // SGI 1 to CPU 0
1:  ldr w2, [x4]
    cmp w2, #1
    b.ne 1b
    msr icc_sgi1r_el1, x5
    mov w2, #2
    str w2, [x4]
    b 1b
    .balign 8
sent: .word 0
${HANDLER}`;

const cases: [string, string, boolean][] = [
  ['virtual timer, spinning on ISTATUS (real-time counter)', TIMER, false],
  ['virtual timer, spinning on ISTATUS (deterministic counter)', TIMER, true],
  ['virtual timer, spinning on CNTVCT_EL0 >= CVAL (real-time counter)', TIMER_COUNTER, false],
  ['virtual timer, spinning on CNTVCT_EL0 >= CVAL (deterministic counter)', TIMER_COUNTER, true],
  ['SGI to itself through ICC_SGI1R_EL1', SGI, false],
  ['SPI from a device store inside a loop', SPI_LOOP, false],
];

for (const [name, source, deterministic] of cases) {
  for (const tier of ['interpreted', 'translated'] as Tier[]) {
    test(`${name}, ${tier}: the handler has run when the program looks, ${TRIALS}/${TRIALS}`, { skip: noCrossToolchain }, async () => {
      const m = await runBareMetal(assemble(source), { tier, deterministic });
      assert.equal(x(m, 19), 0, 'all trials ran');
      assert.equal(x(m, 21), TRIALS, 'one interrupt per trial');
      assert.equal(x(m, 20), 0, 'trials where the handler had not run yet');
    });
  }
}

for (const tier of ['interpreted', 'translated'] as Tier[]) {
  test(`SGI from another vCPU, ${tier}: taken before this vCPU's next instruction, ${TRIALS}/${TRIALS}`, { skip: noCrossToolchain }, async () => {
    const m = await runBareMetal(assemble(SGI_OTHER), { tier, cpus: 2 });
    assert.equal(x(m, 19), 0, 'all trials ran');
    assert.equal(x(m, 21), TRIALS, 'one interrupt per trial');
    assert.equal(x(m, 20), 0, 'trials where the handler had not run when CPU 1 said it had sent the SGI');
  });
}

for (const tier of ['interpreted', 'translated'] as Tier[]) {
  test(`SPI from a device store, ${tier}: taken within ${tier === 'interpreted' ? 0 : MAX_BLOCK - 1} instructions, ${TRIALS}/${TRIALS}`, { skip: noCrossToolchain }, async () => {
    const m = await runBareMetal(assemble(SPI), { tier });
    assert.equal(x(m, 19), 0, 'all trials ran');
    assert.equal(x(m, 21), TRIALS, 'one interrupt per trial');
    assert.equal(x(m, 20), 0, 'trials where the handler had not run after 80 instructions');
    const bound = tier === 'interpreted' ? 0 : MAX_BLOCK - 1;
    assert.ok(x(m, 22) <= bound, `instructions run after the store before the interrupt: up to ${x(m, 22)}, bound ${bound}`);
  });
}

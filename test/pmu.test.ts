// PMUv3 of the software CPU: bare-metal programs (assembled at test time) that count instructions
// with the event counters and the cycle counter, on both tiers, plus EL0 access control. Expected
// counts are worked out instruction by instruction in the comments; a counter read (MRS) sees the
// instructions retired before it, and a write takes effect from the next instruction.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble, noCrossToolchain, runBareMetal, x, type Tier } from './helpers/baremetal.js';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';
import { PMCEID0_VALUE, PMCR_ID } from '../src/cpu/arm64/pmu.js';
import { EC } from '../src/cpu/arm64/cpu.js';

const TIERS: Tier[] = ['interpreted', 'translated'];

// Counter 0: INST_RETIRED at EL0 only (P), counter 1: INST_RETIRED at EL1 only (U), counter 2:
// INST_SPEC at both, counter 3: CPU_CYCLES, and the cycle counter. EL1 runs a loop and reads a
// counter in the middle of a basic block, then ERETs to EL0, which runs a loop, takes a data abort
// on a load from an address with nothing behind it (not retired; the handler skips it) and an SVC,
// whose handler reads all counters.
const COUNT = `
main:
    ldr x1, =((1 << 31) | 0x08)
    msr pmevtyper0_el0, x1
    ldr x1, =((1 << 30) | 0x08)
    msr pmevtyper1_el0, x1
    mov x1, #0x1b
    msr pmevtyper2_el0, x1
    mov x1, #0x11
    msr pmevtyper3_el0, x1
    msr pmccfiltr_el0, xzr
    mov x1, #7                  // PMCR_EL0: E | P | C
    msr pmcr_el0, x1
    ldr x1, =0x8000000f
    msr pmcntenset_el0, x1      // counting starts with the next instruction
    mov x9, #1000
1:  subs x9, x9, #1
    b.ne 1b
    add x1, x1, #1
    add x1, x1, #1
    mrs x21, pmevcntr2_el0      // 1 + 2000 + 2 = 2003
    mrs x22, pmevcntr1_el0      // 2004
    adr x1, el0
    msr elr_el1, x1
    mov x1, #0x3c0              // SPSR: EL0t, DAIF masked
    msr spsr_el1, x1
    eret
el0:
    mov x9, #500
1:  subs x9, x9, #1
    b.ne 1b
    mov x1, #0x1000
    ldr x2, [x1]                // external abort: not retired
    svc #0
0:  b 0b

    .balign 2048
vectors:
    .org vectors + 0x400        // synchronous, from EL0
    mrs x10, esr_el1
    lsr x10, x10, #26
    cmp x10, #0x15
    b.eq 1f
    mrs x10, elr_el1            // the abort: skip the load
    add x10, x10, #4
    msr elr_el1, x10
    eret
1:  mrs x23, pmevcntr0_el0
    mrs x24, pmevcntr1_el0
    mrs x25, pmevcntr2_el0
    mrs x26, pmccntr_el0
    mrs x27, pmevcntr3_el0
    ldr x0, =0x84000008
    hvc #0
`;

for (const tier of TIERS) {
  test(`INST_RETIRED, INST_SPEC, CPU_CYCLES and PMCCNTR count exactly, with EL filters, ${tier}`, { skip: noCrossToolchain }, async () => {
    const m = await runBareMetal(assemble(COUNT), { tier });
    assert.equal(x(m, 21), 2003, 'MRS in the middle of a block: mov + 1000 x (subs, b.ne) + 2 adds');
    assert.equal(x(m, 22), 2004, 'EL1-only counter, one MRS later');
    // EL0: mov + 500 x 2 + mov + (aborted ldr: 0) + svc
    assert.equal(x(m, 23), 1003, 'EL0-only counter');
    // EL1 since x22's read: that MRS, adr, msr, mov, msr, eret (6); the abort handler (8); the SVC
    // handler's test (4) and first MRS (1)
    assert.equal(x(m, 24), 2004 + 6 + 8 + 4 + 1, 'EL1-only counter');
    assert.equal(x(m, 25), x(m, 23) + x(m, 24) + 1, 'both ELs: the two others and the MRS between');
    assert.equal(x(m, 26), x(m, 25) + 1, 'PMCCNTR_EL0: one cycle per instruction');
    assert.equal(x(m, 27), x(m, 26) + 1, 'CPU_CYCLES on an event counter');
  });
}

// 100 trials: counter 0 (INST_RETIRED, PMINTENSET bit 0) starts 7 * trial + 1 instructions before
// it wraps; the IRQ handler's first instruction reads it: 0 when the interrupt came right after the
// overflowing instruction. The handler also checks PMOVSCLR_EL0 bit 0, then clears it and disables
// the counter. x20 counts trials that went wrong.
const OVERFLOW = `
main:
    mov x19, #100
    mov x20, #0
    mov x1, #0x08
    msr pmevtyper0_el0, x1
    mov x1, #1
    msr pmintenset_el1, x1
    msr pmcr_el0, x1            // E
    adr x3, handled
trial:
    mov x1, #7
    mul x1, x1, x19
    add x1, x1, #1
    neg w1, w1                  // 2^32 - (7 * trial + 1)
    msr pmevcntr0_el0, x1
    mov x13, #-1
    str wzr, [x3]
    msr daifclr, #2
    mov x1, #1
    msr pmcntenset_el0, x1
    mov x5, #0
1:  add x5, x5, #1
    cmp x5, #1000
    b.lo 1b
    msr daifset, #2
    ldr w2, [x3]
    cmp w2, #1
    b.ne 2f
    cbz x13, 3f
2:  add x20, x20, #1
3:  subs x19, x19, #1
    b.ne trial
    mrs x21, pmovsclr_el0
    ret

    .balign 2048
vectors:
    .org vectors + 0x280        // IRQ, current EL
    mrs x13, pmevcntr0_el0
    mrs x10, icc_iar1_el1
    mrs x11, pmovsclr_el0
    tbz x11, #0, 1f             // no overflow flag: leave 'handled' at 0
    mov w12, #1
    str w12, [x3]
1:  mov x11, #1
    msr pmcntenclr_el0, x11
    msr pmovsclr_el0, x11
    msr icc_eoir1_el1, x10
    eret
    .balign 8
handled: .word 0
`;

for (const tier of TIERS) {
  test(`overflow sets PMOVS and raises INTID 23 right after the overflowing instruction, 100/100, ${tier}`, { skip: noCrossToolchain }, async () => {
    const m = await runBareMetal(assemble(OVERFLOW), { tier });
    assert.equal(x(m, 19), 0, 'all trials ran');
    assert.equal(x(m, 20), 0, 'trials without the interrupt, without PMOVS, or with a late interrupt');
    assert.equal(x(m, 21), 0, 'the handler cleared the overflow flags');
    assert.equal(x(m, 13), 0, 'last trial: the counter read 0 at the handler');
  });
}

const SWINC = `
main:
    msr pmevtyper4_el0, xzr     // SW_INCR
    mov x1, #(1 << 4)
    msr pmcntenset_el0, x1
    mov x1, #1
    msr pmcr_el0, x1
    mov x1, #(1 << 4)
    msr pmswinc_el0, x1
    msr pmswinc_el0, x1
    msr pmswinc_el0, x1
    mrs x21, pmevcntr4_el0      // 3
    mov w1, #-1
    msr pmevcntr4_el0, x1
    mov x1, #(1 << 4)
    msr pmswinc_el0, x1         // wraps
    mrs x22, pmevcntr4_el0      // 0
    mrs x23, pmovsclr_el0       // bit 4
    mov x1, #(1 << 5)
    msr pmswinc_el0, x1         // counter 5 is not enabled
    mrs x24, pmevcntr5_el0
    mrs x25, pmceid0_el0
    mrs x26, pmcr_el0
    mov x1, #4
    msr pmselr_el0, x1
    mrs x27, pmxevcntr_el0      // counter 4 through PMSELR
    mrs x28, pmxevtyper_el0
    ret
    .balign 2048
vectors:
`;

test('SW_INCR through PMSWINC_EL0, overflow flag, PMSELR/PMXEV*, PMCEID0 and PMCR identification', { skip: noCrossToolchain }, async () => {
  const m = await runBareMetal(assemble(SWINC), { tier: 'interpreted' });
  assert.equal(x(m, 21), 3);
  assert.equal(x(m, 22), 0);
  assert.equal(x(m, 23), 1 << 4, 'PMOVSCLR_EL0: counter 4 overflowed');
  assert.equal(x(m, 24), 0, 'a disabled counter ignores PMSWINC');
  assert.equal(x(m, 25), PMCEID0_VALUE);
  assert.equal(PMCEID0_VALUE, (1 << 0x00) | (1 << 0x08) | (1 << 0x11) | (1 << 0x1b), 'SW_INCR, INST_RETIRED, CPU_CYCLES, INST_SPEC');
  assert.equal(x(m, 26), PMCR_ID | 1);
  assert.equal((x(m, 26) >>> 11) & 0x1f, 6, 'PMCR_EL0.N: 6 event counters');
  assert.equal(x(m, 27), 0);
  assert.equal(x(m, 28), 0, 'PMEVTYPER4: SW_INCR');
  assert.equal(m.cpus[0].irqLine, false, 'no interrupt: PMINTENSET is clear');
});

// EL0 access control (PMUSERENR_EL0). Encodings from aarch64-linux-gnu-as.
const MRS_PMCCNTR = 0xd53b9d00; // mrs x0, pmccntr_el0
const MSR_PMINTENSET = 0xd5189e21; // msr pmintenset_el1, x1
const MSR_PMSWINC = 0xd51b9c81; // msr pmswinc_el0, x1
const MRS_PMUSERENR = 0xd53b9e00; // mrs x0, pmuserenr_el0
const MSR_PMUSERENR = 0xd51b9e00; // msr pmuserenr_el0, x0
const MRS_PMEVCNTR0 = 0xd53be802; // mrs x2, pmevcntr0_el0
const MRS_PMCR = 0xd53b9c03; // mrs x3, pmcr_el0

/** Run `insn` once at EL0 with PMUSERENR_EL0 = `userenr`; returns the EC taken, or undefined. */
function atEl0(insn: number, userenr: number): number | undefined {
  const t = makeCpu([insn]);
  const { cpu } = t;
  cpu.pmu.userenr = userenr;
  cpu.sys.VBAR_EL1 = BigInt(RAM_BASE + 0x1000);
  cpu.setElSp(0, 0);
  cpu.daif = 0;
  t.step(1);
  if (cpu.el === 0) return undefined;
  const esr = Number(cpu.sys.ESR_EL1);
  if (esr >>> 26 === EC.SYSREG) {
    // ISS of the trapped MRS/MSR: Op0, Op2, Op1, CRn, Rt, CRm, direction
    const iss = esr & 0x1ff_ffff;
    const exp =
      (((insn >>> 19) & 3) << 20) |
      (((insn >>> 5) & 7) << 17) |
      (((insn >>> 16) & 7) << 14) |
      (((insn >>> 12) & 15) << 10) |
      ((insn & 31) << 5) |
      (((insn >>> 8) & 15) << 1) |
      ((insn >>> 21) & 1);
    assert.equal(iss, exp, 'ISS of the trap');
  }
  return esr >>> 26;
}

test('EL0 access: PMUSERENR_EL0 EN/SW/CR/ER gate it (trap EC 0x18), PMINTENSET_EL1 and PMUSERENR writes are UNDEFINED', () => {
  assert.equal(atEl0(MRS_PMCCNTR, 0), EC.SYSREG);
  assert.equal(atEl0(MRS_PMCCNTR, 1 << 2), undefined, 'CR: cycle counter reads');
  assert.equal(atEl0(MRS_PMCCNTR, 1 << 0), undefined, 'EN');
  assert.equal(atEl0(MRS_PMEVCNTR0, 1 << 2), EC.SYSREG, 'CR does not open the event counters');
  assert.equal(atEl0(MRS_PMEVCNTR0, 1 << 3), undefined, 'ER: event counter reads');
  assert.equal(atEl0(MSR_PMSWINC, 0), EC.SYSREG);
  assert.equal(atEl0(MSR_PMSWINC, 1 << 1), undefined, 'SW');
  assert.equal(atEl0(MRS_PMCR, 1 << 3), EC.SYSREG, 'ER does not open PMCR');
  assert.equal(atEl0(MRS_PMCR, 1 << 0), undefined);
  assert.equal(atEl0(MSR_PMINTENSET, 0xf), EC.UNKNOWN);
  assert.equal(atEl0(MRS_PMUSERENR, 0), undefined, 'PMUSERENR_EL0 reads at EL0');
  assert.equal(atEl0(MSR_PMUSERENR, 0xf), EC.UNKNOWN);
});

// 16 vCPUs on arm64-virt (BOARD_MAX_CPUS): PSCI CPU_ON brings each up with its own MPIDR affinity,
// an SGI reaches the sixteenth through its redistributor, and the device tree describes all of them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VIRT } from '../src/machine/arm64-virt.js';
import { BOARD_MAX_CPUS } from '../src/machine/machine.js';
import { buildArm64Dt } from '../src/machine/arm64-dt.js';
import { cells } from '../src/boot/fdt-parse.js';
import { assemble, cpuOnAll, noCrossToolchain, runBareMetal, type Tier } from './helpers/baremetal.js';

const N = BOARD_MAX_CPUS['arm64-virt'];
const LAST_GICR = VIRT.GICR + (N - 1) * VIRT.GICR_STRIDE;

const PROGRAM = `
main:
${cpuOnAll(N, 'secondary', 'fail')}    ldr x2, =slots               // every secondary has written its affinity
    mov x5, #1
2:  ldr x7, [x2, x5, lsl #3]
    orr x8, x5, #0x100
    cmp x7, x8
    b.ne 2b
    add x5, x5, #1
    cmp x5, #${N}
    b.ne 2b
    ldr x2, =ready               // the last one listens for SGIs
3:  ldr x3, [x2]
    cbz x3, 3b
    mov x4, #(1 << 24)           // ICC_SGI1R_EL1: INTID 1, Aff3.2.1 = 0, TargetList bit ${N - 1}
    orr x4, x4, #(1 << ${N - 1})
    msr icc_sgi1r_el1, x4
    isb
    ldr x2, =got
4:  ldr x3, [x2]
    cbz x3, 4b
    mov x19, #0                  // the result (x0 carries PSCI SYSTEM_OFF's function id after)
    ret
fail:
    mov x19, #1
    ret

secondary:                       // x0 = context = vCPU index
    mrs x9, mpidr_el1
    and x9, x9, #0xff
    orr x1, x9, #0x100
    ldr x2, =slots
    str x1, [x2, x0, lsl #3]
    cmp x0, #${N - 1}
    b.ne park
    ldr x1, =${LAST_GICR}
    str wzr, [x1, #0x14]         // GICR_WAKER
    ldr x1, =${LAST_GICR + 0x1_0000}
    mov w2, #-1
    str w2, [x1, #0x80]          // IGROUPR0
    mov w2, #2
    str w2, [x1, #0x100]         // ISENABLER0: SGI 1
    mov x2, #0xf0
    msr icc_pmr_el1, x2
    mov x2, #1
    msr icc_igrpen1_el1, x2
    isb
    ldr x2, =ready
    mov x3, #1
    str x3, [x2]
5:  wfi                          // IRQs masked: WFI wakes on the pending SGI, IAR takes it
    mrs x4, icc_iar1_el1
    cmp x4, #1
    b.ne 5b
    msr icc_eoir1_el1, x4
    ldr x2, =got
    str x4, [x2]
park:
    wfi
    b park

    .balign 2048
vectors:
    .rept 16
    b .
    .balign 128
    .endr

    .data
    .balign 8
slots: .fill ${N}, 8, 0
ready: .quad 0
got:   .quad 0
`;

for (const tier of ['interpreted', 'translated'] as Tier[]) {
  test(`${N} vCPUs (${tier}): each comes up through PSCI with its own affinity; an SGI reaches the last`, { skip: noCrossToolchain, timeout: 120_000 }, async () => {
    const m = await runBareMetal(assemble(PROGRAM), { tier, cpus: N, deterministic: true });
    assert.equal(m.cpus.length, N);
    assert.equal(Number(m.cpus[0].xBig(19)), 0, 'every CPU_ON succeeded and the SGI was taken');
    assert.equal(Number(m.cpus[N - 1].xBig(4)), 1, `vCPU ${N - 1} acknowledged INTID 1`);
    for (let i = 1; i < N; i++) assert.equal(Number(m.cpus[i].xBig(9)), i, `vCPU ${i}'s MPIDR Aff0`);
  });
}

test(`the device tree describes ${N} CPUs and ${N} redistributor frames; one more is refused`, async () => {
  const dt = buildArm64Dt({ cpus: N, ramBase: VIRT.RAM, ramSize: 64 << 20, cmdline: '', serialConsole: true });
  const cpus = dt.children.find((n) => n.name === 'cpus')!.children.filter((n) => n.name.startsWith('cpu@'));
  assert.deepEqual(cpus.map((c) => cells(c.props.get('reg'))[0]), [...Array(N).keys()]);
  const gic = dt.children.find((n) => n.name.startsWith('intc@'))!;
  const reg = cells(gic.props.get('reg'));
  assert.equal(reg[6] * 2 ** 32 + reg[7], N * VIRT.GICR_STRIDE, 'GICR region size');
  assert.ok(VIRT.GICR + N * VIRT.GICR_STRIDE <= VIRT.UART, 'the redistributors end below the UART');
  const { Arm64VirtMachine } = await import('../src/machine/arm64-virt.js');
  assert.throws(() => new Arm64VirtMachine({ cpus: N + 1, memoryBytes: 16 << 20 }), new RegExp(`expected 1 to ${N} vCPUs, got ${N + 1}`));
});

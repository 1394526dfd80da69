// vCPUs on their own host threads (src/cpu/arm64/threads/): bare-metal programs on arm64-virt with
// `threads`, vCPU 0 on this thread and the others on worker threads over the shared guest memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { assemble, cpuOnAll, noCrossToolchain, runBareMetal, x, type Tier } from './helpers/baremetal.js';
import { Arm64VirtMachine, VIRT } from '../src/machine/arm64-virt.js';

const N = 4;
const K = 20_000;

// vCPU 0 starts the others with PSCI CPU_ON; every vCPU adds 1 to one counter K times with
// LDXR/STXR; the secondaries then count themselves done (LDAXR/STLXR) and the last sends SGI 1 to
// vCPU 0, which waits for it in WFI and acknowledges it through its CPU interface.
const COUNTER = `
main:
    mov x24, x30
${cpuOnAll(N, 'secondary', 'fail')}    bl work
    ldr x2, =done
2:  ldr w3, [x2]
    cmp w3, #${N - 1}
    b.ne 2b
    ldr x2, =counter
    ldr x19, [x2]                // the total (x0 carries PSCI SYSTEM_OFF's function id after)
3:  wfi                          // IRQs masked: WFI wakes on the pending SGI, IAR takes it
    mrs x4, icc_iar1_el1
    cmp x4, #1
    b.ne 3b
    msr icc_eoir1_el1, x4
    mov x22, #1
    mov x30, x24
    ret
fail:
    mov x19, #-1
    mov x30, x24
    ret

work:
    ldr x5, =counter
    ldr x6, =${K}
4:  ldxr x7, [x5]
    add x7, x7, #1
    stxr w8, x7, [x5]
    cbnz w8, 4b
    subs x6, x6, #1
    b.ne 4b
    ret

secondary:                       // x0 = context = vCPU index
    mov x21, x0
    bl work
    ldr x5, =done
5:  ldaxr w7, [x5]
    add w7, w7, #1
    stlxr w8, w7, [x5]
    cbnz w8, 5b
    cmp w7, #${N - 1}
    b.ne 7f
    mov x4, #(1 << 24)           // ICC_SGI1R_EL1: INTID 1, TargetList bit 0 (vCPU 0)
    orr x4, x4, #1
    msr icc_sgi1r_el1, x4
    isb
7:  wfi
    b 7b

vectors:
    b .
    .balign 8
counter: .quad 0
done:    .quad 0
`;

for (const tier of ['interpreted', 'translated'] as Tier[]) {
  test(
    `${N} vCPUs on threads (${tier}): LDXR/STXR increments from every vCPU add up exactly; an SGI from a worker vCPU reaches vCPU 0`,
    { skip: noCrossToolchain, timeout: 120_000 },
    async () => {
      const m = await runBareMetal(assemble(COUNTER), { tier, cpus: N, threads: true });
      assert.ok(m.threaded, 'the machine runs vCPUs 1..N-1 on worker threads');
      assert.equal(x(m, 19), N * K, 'every increment counted once');
      assert.equal(x(m, 22), 1, 'vCPU 0 took SGI 1');
      assert.ok(m.instructions > N * K * 5, `instructions of every thread counted (${m.instructions})`);
    },
  );
}

// Translated code goes from one vCPU's thread to the others (threads/units.ts): vCPU 1 runs g and f
// (each translated at its first entry here), then rewrites f (with the cache maintenance the
// architecture asks for), and only then wakes vCPU 0 with an SGI. vCPU 0 then runs g with vCPU 1's
// unit, and f as it is now: vCPU 1's unit of the old f, offered to vCPU 0, must not be taken.
const SHARED = `
main:
    mov x24, x30
    ldr x0, =0xC4000003
    mov x1, #1
    ldr x2, =secondary
    mov x3, #1
    hvc #0
1:  wfi                          // IRQs masked: wakes on vCPU 1's SGI
    ldr x2, =ready
    ldar w3, [x2]
    cbz w3, 1b
    mrs x4, icc_iar1_el1
    msr icc_eoir1_el1, x4
    bl g
    mov x20, x0
    bl f
    mov x19, x0
    mov x30, x24
    ret

secondary:
    bl g
    bl f
    ldr x5, =f
    ldr w6, =0xd2800040          // mov x0, #2
    str w6, [x5]
    dc cvau, x5
    dsb ish
    ic ivau, x5
    dsb ish
    isb
    ldr x2, =ready
    mov w3, #1
    stlr w3, [x2]
    mov x4, #(1 << 24)           // ICC_SGI1R_EL1: INTID 1 to vCPU 0
    orr x4, x4, #1
    msr icc_sgi1r_el1, x4
    isb
7:  wfi
    b 7b

    .balign 4096                 // g, f and the flag each on a page of their own
g:  mov x0, #7
    add x0, x0, #0
    ret
    .balign 4096
f:  mov x0, #1
    ret
    .balign 4096
ready: .word 0
vectors:
    b .
`;

test(
  'vCPUs on threads share translated code: vCPU 0 runs what vCPU 1 translated, never a unit of code rewritten since',
  { skip: noCrossToolchain, timeout: 120_000 },
  async () => {
    const m = await runBareMetal(assemble(SHARED), { tier: 'translated', cpus: 2, threads: true });
    assert.ok(m.threaded, 'vCPU 1 runs on a worker thread');
    assert.equal(x(m, 20), 7, 'g');
    assert.equal(x(m, 19), 2, 'f as vCPU 1 rewrote it, not its translation of the old f');
    assert.ok(
      m.code.jitStats.adopted >= 1,
      `vCPU 0 took units of vCPU 1's thread (${m.code.jitStats.adopted})`,
    );
  },
);

// Every vCPU adds 1 to its own slot forever (vCPU 0 after starting the others).
const BUSY = `
main:
    mov x20, #1
1:  ldr x0, =0xC4000003
    mov x1, x20
    ldr x2, =secondary
    mov x3, x20
    hvc #0
    add x20, x20, #1
    cmp x20, #${N}
    b.ne 1b
    mov x0, #0
secondary:
    ldr x5, =slots
    add x5, x5, x0, lsl #3
2:  ldr x6, [x5]
    add x6, x6, #1
    str x6, [x5]
    b 2b

vectors:
    b .
    .balign 4096
slots: .fill ${N}, 8, 0
`;

function busyMachine(): { m: Arm64VirtMachine; slots: () => number[] } {
  const image = assemble(BUSY);
  const m = new Arm64VirtMachine({ cpus: N, memoryBytes: 16 << 20, threads: true });
  m.mem.u8.set(image, 0);
  m.boot(VIRT.RAM, 0);
  // `slots`: N quadwords at the first page boundary after the code.
  const at = 4096;
  const slots = (): number[] =>
    Array.from({ length: N }, (_, i) => Number(m.mem.dv.getBigUint64(at + 8 * i, true)));
  return { m, slots };
}

async function until(what: string, f: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(f(), what);
}

test(
  `${N} vCPUs on threads, all busy: pause holds every one (nothing moves), resume lets them all go on, stop ends the run`,
  { skip: noCrossToolchain, timeout: 120_000 },
  async () => {
    const { m, slots } = busyMachine();
    const run = m.run();
    await until('every vCPU counts', () => slots().every((v) => v > 1000));
    m.pause();
    await m.engine.held();
    const held = slots();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(slots(), held, 'no vCPU moves while paused');
    m.resume();
    await until('every vCPU counts on after resume', () => slots().every((v, i) => v > held[i] + 1000));
    m.stop('stopped');
    assert.equal(await run, 'stopped');
  },
);

test(
  'an error on a vCPU thread stops the guest with a message naming the vCPU',
  { skip: noCrossToolchain, timeout: 120_000 },
  async () => {
    const image = assemble(`
main:
    ldr x0, =0xC4000003
    mov x1, #1
    ldr x2, =secondary
    mov x3, #1
    hvc #0
1:  b 1b
secondary:
    ldr x1, =0x0b000000
    ldr w2, [x1]
2:  b 2b
vectors:
    b .
`);
    const m = new Arm64VirtMachine({ cpus: 2, memoryBytes: 16 << 20, threads: true });
    m.mem.addMmio(0x0b00_0000, 0x1000, 'faulty', {
      read: () => {
        throw new Error('the faulty device broke');
      },
      write: () => {},
    });
    m.mem.u8.set(image, 0);
    m.boot(VIRT.RAM, 0);
    await assert.rejects(m.run(), /vCPU 1: .*the faulty device broke/);
  },
);

test('--vcpu-threads: multi or single, anything else is a usage error; the default gives each vCPU a thread only where the host has a core for it', async () => {
  const { specFromOptions } = await import('../src/config/spec.js');
  const { vcpuThreadsFor } = await import('../src/vmm/arm64-guest.js');
  const { availableParallelism } = await import('node:os');
  const kernel = fileURLToPath(import.meta.url); // any file will do: it is not read
  await assert.rejects(
    specFromOptions({ kernel, 'vcpu-threads': 'many' }),
    /--vcpu-threads: expected multi or single, got 'many'/,
  );
  const spec = await specFromOptions({ kernel, 'vcpu-threads': 'single' });
  assert.equal(spec.vcpuThreads, 'single');
  assert.equal(vcpuThreadsFor(spec, 4), false);
  assert.equal(vcpuThreadsFor({ ...spec, vcpuThreads: 'multi' }, 64), true);
  const cores = availableParallelism();
  const dflt = { ...spec, vcpuThreads: undefined };
  assert.equal(vcpuThreadsFor(dflt, cores), true, `${cores} vCPUs on ${cores} cores`);
  assert.equal(vcpuThreadsFor(dflt, cores + 1), false, `${cores + 1} vCPUs on ${cores} cores`);
  assert.equal(
    vcpuThreadsFor({ ...spec, vcpuThreads: 'multi', gdb: { host: '127.0.0.1', port: 0, wait: false } }, 2),
    false,
    'gdb: one thread',
  );
});

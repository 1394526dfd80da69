// Bare-metal AArch64 programs for CPU tests: assembled at test time with the cross toolchain and run
// on an arm64-virt machine (its run loop, GICv3, timers and PSCI), from the start of RAM at EL1 with
// the MMU off. A program ends with PSCI SYSTEM_OFF; the test then reads the registers.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Arm64VirtMachine, VIRT } from '../../src/machine/arm64-virt.js';
import { missingTool } from './tools.js';

export const CC = 'aarch64-linux-gnu-gcc';
export const OBJCOPY = 'aarch64-linux-gnu-objcopy';
/** A skip reason when the cross toolchain is missing. */
export const noCrossToolchain = missingTool(CC, OBJCOPY);

/**
 * Common start: VBAR_EL1 = `vectors` (the program defines it), the GIC's distributor and this CPU's
 * redistributor on (SPIs 32..63 group 1, SPI 40 enabled and routed to CPU 0; SGI 1, PPIs 23 (PMU)
 * and 27 (virtual timer) enabled; all at priority 0), the CPU interface on (PMR 0xf0, group 1),
 * then `bl main` and PSCI SYSTEM_OFF.
 */
const PRELUDE = `
    .text
    .globl _start
_start:
    ldr x0, =vectors
    msr vbar_el1, x0
    ldr x1, =${VIRT.GICD}
    mov w2, #0x12               // GICD_CTLR: ARE | EnableGrp1
    str w2, [x1]
    mov w2, #-1
    str w2, [x1, #0x84]         // IGROUPR1
    mov w2, #(1 << 8)
    str w2, [x1, #0x104]        // ISENABLER1: SPI 40
    ldr x1, =${VIRT.GICR}
    str wzr, [x1, #0x14]        // GICR_WAKER
    ldr x1, =${VIRT.GICR + 0x1_0000}
    mov w2, #-1
    str w2, [x1, #0x80]         // IGROUPR0
    ldr w2, =((1 << 1) | (1 << 23) | (1 << 27))
    str w2, [x1, #0x100]        // ISENABLER0
    mov x2, #0xf0
    msr icc_pmr_el1, x2
    mov x2, #1
    msr icc_igrpen1_el1, x2
    isb
    bl main
    ldr x0, =0x84000008         // PSCI SYSTEM_OFF
    hvc #0
0:  b 0b
`;

/** Assemble `source` (GNU as syntax, C preprocessor) after the prelude, linked at the start of RAM. */
export function assemble(source: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-bm-'));
  try {
    const src = join(dir, 'prog.S');
    const elf = join(dir, 'prog.elf');
    const bin = join(dir, 'prog.bin');
    writeFileSync(src, PRELUDE + source + '\n    .ltorg\n');
    execFileSync(CC, ['-nostdlib', '-static', `-Wl,-Ttext=0x${VIRT.RAM.toString(16)}`, '-Wl,--build-id=none', '-Wl,-e,_start', '-o', elf, src]);
    execFileSync(OBJCOPY, ['-O', 'binary', elf, bin]);
    return new Uint8Array(readFileSync(bin));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Assembly that starts vCPUs 1..n-1 with PSCI CPU_ON at label `entry`, each with its index as the
 * context (x0 there), and branches to label `fail` when one is refused. Uses x0-x3 and x20.
 */
export function cpuOnAll(n: number, entry: string, fail: string): string {
  return `
    mov x20, #1
1:  ldr x0, =0xC4000003          // PSCI CPU_ON (64-bit): target Aff0 = x20, entry, context = x20
    mov x1, x20
    ldr x2, =${entry}
    mov x3, x20
    hvc #0
    cbnz x0, ${fail}
    add x20, x20, #1
    cmp x20, #${n}
    b.ne 1b
`;
}

export type Tier = 'interpreted' | 'translated';

/**
 * Run an assembled program on a machine (1 vCPU unless `cpus`; vCPU 0 starts, others wait for PSCI
 * CPU_ON; `threads`: vCPUs 1.. on their own threads) until it powers off; returns the machine.
 */
export async function runBareMetal(
  image: Uint8Array,
  opts: { tier: Tier; deterministic?: boolean; cpus?: number; threads?: boolean },
): Promise<Arm64VirtMachine> {
  const m = new Arm64VirtMachine({
    cpus: opts.cpus ?? 1,
    memoryBytes: 16 * 1024 * 1024,
    deterministic: !!opts.deterministic,
    threads: !!opts.threads,
  });
  m.code.jit = opts.tier === 'translated';
  m.code.jitThreshold = 1; // translate every block head at its first entry
  m.code.jitBatch = 1; // each unit compiled when its head gets hot
  m.mem.u8.set(image, 0);
  m.boot(VIRT.RAM, 0);
  const reason = await m.run();
  if (reason !== 'poweroff') throw new Error(`bare-metal program stopped: ${reason}`);
  return m;
}

/** Xn of vCPU 0 as a number (values below 2^53). */
export function x(m: Arm64VirtMachine, n: number): number {
  return Number(m.cpus[0].xBig(n));
}

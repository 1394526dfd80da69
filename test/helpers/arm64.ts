// Helpers for CPU tests: a bare CPU with RAM at 0x4000_0000 and code placed at its start.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { Arm64Cpu, CodeCache, type CpuHooks } from '../../src/cpu/arm64/cpu.js';
import { missingTool } from './tools.js';

export const RAM_BASE = 0x4000_0000;

export interface TestCpu {
  cpu: Arm64Cpu;
  mem: GuestMemory;
  /** Run until `count` instructions retired or the CPU waits/turns off. */
  step(count?: number): number;
}

/** A CPU at EL1 (MMU off) with `code` (instruction words) at RAM_BASE and PC there. */
export function makeCpu(
  code: number[] = [],
  opts: { ramSize?: number; hooks?: Partial<CpuHooks> } = {},
): TestCpu {
  const mem = new GuestMemory(RAM_BASE, opts.ramSize ?? 16 * 1024 * 1024);
  code.forEach((w, i) => mem.dv.setUint32(i * 4, w >>> 0, true));
  const hooks: CpuHooks = { hvc: () => false, smc: () => false, ...opts.hooks };
  const cpu = new Arm64Cpu(0, mem, new CodeCache(mem), hooks);
  cpu.pcLo = RAM_BASE;
  cpu.pcHi = 0;
  return { cpu, mem, step: (count = 1) => cpu.run(count) };
}

/**
 * The tier a test that compares interpreted and translated runs gives `cpu`: interpret every
 * instruction (jit false), or translate each block head once the interpreter has run 2 instructions
 * from it, each unit compiled at once (not waiting for a batch), so that translation starts at a
 * known instruction.
 */
export function compareTiers(cpu: Arm64Cpu, jit: boolean): void {
  cpu.code.jit = jit;
  cpu.code.jitThreshold = 2;
  cpu.code.jitBatch = 1;
}

/**
 * Run `body` with the handlers of the instructions `words` decode to counting their calls
 * (translated code calls handlers through the same table); the handlers are put back after.
 */
export function countingHandlers<T>(
  cpu: Arm64Cpu,
  words: number[],
  body: () => T,
): { result: T; calls: number } {
  const dec = cpu.code.decoder;
  const saved = [...new Set(words.map((w) => dec.decode(w).index))].map((hx) => ({
    hx,
    h: dec.handlerTable[hx],
  }));
  let calls = 0;
  for (const { hx, h } of saved) {
    dec.handlerTable[hx] = (c, insn) => {
      calls++;
      h(c, insn);
    };
  }
  try {
    const result = body();
    return { result, calls };
  } finally {
    for (const { hx, h } of saved) dec.handlerTable[hx] = h;
  }
}

/** Run `t` in slices of `slice` instructions (at most `slices`) until it waits (WFI); returns the count. */
export function runToWfi(t: TestCpu, slice: number, slices: number): number {
  let n = 0;
  for (let k = 0; k < slices && !t.cpu.waiting; k++) n += t.step(slice);
  assert.ok(t.cpu.waiting, 'the program ran to a WFI');
  return n;
}

/** Why assemble() cannot run here (a tool it needs is missing), or false: a test's `skip`. */
export const noAssembler = missingTool(
  'aarch64-linux-gnu-as',
  'aarch64-linux-gnu-objcopy',
  'aarch64-linux-gnu-nm',
);

/**
 * Assemble A64 source with the cross assembler (aarch64-linux-gnu-as, ARMv8.0-A) into instruction
 * words placed from offset 0, and the offsets of its labels. The caller skips without the tools
 * (noAssembler).
 */
export function assemble(source: string): { words: number[]; sym: Record<string, number> } {
  const dir = mkdtempSync(join(tmpdir(), 'tv-asm-'));
  try {
    const src = join(dir, 'a.s');
    const obj = join(dir, 'a.o');
    const bin = join(dir, 'a.bin');
    writeFileSync(src, source + '\n');
    execFileSync('aarch64-linux-gnu-as', ['-march=armv8-a', '-o', obj, src], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    execFileSync('aarch64-linux-gnu-objcopy', ['-O', 'binary', '-j', '.text', obj, bin]);
    const raw = readFileSync(bin);
    const words: number[] = [];
    for (let i = 0; i + 4 <= raw.length; i += 4) words.push(raw.readUInt32LE(i));
    const sym: Record<string, number> = {};
    for (const line of execFileSync('aarch64-linux-gnu-nm', [obj], { encoding: 'utf8' }).split('\n')) {
      const m = /^([0-9a-f]+) [tT] (\S+)$/.exec(line.trim());
      if (m) sym[m[2]] = parseInt(m[1], 16);
    }
    return { words, sym };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Assembly of an exception vector table (label `vectors`, 2 KiB aligned) whose synchronous entries
 * (current EL with SP_EL0, with SP_ELx, lower EL) record ESR_EL1 in x20 and ELR_EL1 in x21 and wait.
 */
export const RECORDING_VECTORS = `
    .balign 2048
vectors:
    mrs x20, esr_el1
    mrs x21, elr_el1
    wfi
    .org vectors + 0x200
    mrs x20, esr_el1
    mrs x21, elr_el1
    wfi
    .org vectors + 0x400
    mrs x20, esr_el1
    mrs x21, elr_el1
    wfi
    .org vectors + 0x600
`;

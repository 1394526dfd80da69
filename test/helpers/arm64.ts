// Helpers for CPU tests: a bare CPU with RAM at 0x4000_0000 and code placed at its start.

import { GuestMemory } from '../../src/devices/memory.js';
import { Arm64Cpu, CodeCache, type CpuHooks } from '../../src/cpu/arm64/cpu.js';

export const RAM_BASE = 0x4000_0000;

export interface TestCpu {
  cpu: Arm64Cpu;
  mem: GuestMemory;
  /** Run until `count` instructions retired or the CPU waits/turns off. */
  step(count?: number): number;
}

/** A CPU at EL1 (MMU off) with `code` (instruction words) at RAM_BASE and PC there. */
export function makeCpu(code: number[] = [], opts: { ramSize?: number; hooks?: Partial<CpuHooks> } = {}): TestCpu {
  const mem = new GuestMemory(RAM_BASE, opts.ramSize ?? 16 * 1024 * 1024);
  code.forEach((w, i) => mem.dv.setUint32(i * 4, w >>> 0, true));
  const hooks: CpuHooks = { hvc: () => false, smc: () => false, ...opts.hooks };
  const cpu = new Arm64Cpu(0, mem, new CodeCache(mem), hooks);
  cpu.pcLo = RAM_BASE;
  cpu.pcHi = 0;
  return { cpu, mem, step: (count = 1) => cpu.run(count) };
}

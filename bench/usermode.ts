// Runs a static, freestanding AArch64 Linux program (ELF) at EL0 on typevisor's CPU, with an identity
// map of guest RAM and the two system calls such programs use here: write (64) and exit (93).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { Arm64Cpu, CodeCache } from '../src/cpu/arm64/cpu.js';

const RAM = 0x4000_0000;
const RAM_SIZE = 32 * 1024 * 1024;
const PT = RAM + RAM_SIZE - 0x10_0000;
const VBAR = PT + 0x8000;

export interface UserRun {
  exitCode: number;
  stdout: string;
  instructions: number;
  seconds: number;
}

function loadElf(mem: GuestMemory, file: string): bigint {
  const b = readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b.readUInt16LE(18) !== 183) {
    throw new Error(`${file}: not a 64-bit AArch64 ELF`);
  }
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (b.readUInt32LE(p) !== 1) continue; // PT_LOAD
    const off = Number(b.readBigUInt64LE(p + 8));
    const vaddr = Number(b.readBigUInt64LE(p + 16));
    const filesz = Number(b.readBigUInt64LE(p + 32));
    const memsz = Number(b.readBigUInt64LE(p + 40));
    mem.load(vaddr, b.subarray(off, off + filesz), `${file} segment ${i}`);
    mem.load(vaddr + filesz, new Uint8Array(memsz - filesz), `${file} bss ${i}`);
  }
  return b.readBigUInt64LE(24);
}

export function runUserProgram(file: string, maxInstructions = 20e9): UserRun {
  const mem = new GuestMemory(RAM, RAM_SIZE);
  // Every exception vector holds HVC #0, which the hook turns into "stop running": the loop below then
  // serves the system call (or reports the fault) from ESR_EL1/ELR_EL1.
  const stopAtVector = (c: Arm64Cpu): boolean => {
    c.waiting = true;
    return true;
  };
  const cpu = new Arm64Cpu(0, mem, new CodeCache(mem), { hvc: stopAtVector, smc: stopAtVector });
  for (let off = 0; off < 0x800; off += 0x80) mem.dv.setUint32(VBAR - RAM + off, 0xd4000002, true); // hvc #0
  // Identity map RAM with 2 MiB blocks through TTBR0 (T0SZ = 25, walk starts at level 1).
  const dv = mem.dv;
  dv.setBigUint64(PT - RAM + 8, BigInt(PT + 0x1000) | 3n, true);
  const blocks = RAM_SIZE / 0x20_0000;
  for (let i = 0; i < blocks; i++) {
    const pa = BigInt(RAM + i * 0x20_0000);
    // The program's blocks: EL0 read/write (AP = 01), which makes them PXN for EL1. The last block holds
    // the page tables and the vectors: EL1 only (AP = 00), executable at EL1, UXN.
    const attrs =
      i === blocks - 1
        ? 1n | (1n << 10n) | (3n << 8n) | (1n << 54n)
        : 1n | (1n << 10n) | (3n << 8n) | (1n << 6n) | (1n << 53n);
    dv.setBigUint64(PT + 0x1000 - RAM + i * 8, pa | attrs, true);
  }
  cpu.sys.MAIR_EL1 = 0xffn;
  cpu.sys.TCR_EL1 = 25n | (1n << 23n) | (2n << 32n) | (1n << 8n) | (1n << 10n) | (3n << 12n);
  cpu.sys.TTBR0_EL1 = BigInt(PT);
  cpu.sys.VBAR_EL1 = BigInt(VBAR);
  cpu.sys.SCTLR_EL1 = 0x30d00800n | 1n | (1n << 2n) | (1n << 12n) | (1n << 14n) | (1n << 15n) | (1n << 26n);
  cpu.sys.CPACR_EL1 = 3n << 20n;
  cpu.mmu.onRegsChanged();
  const entry = loadElf(mem, file);
  cpu.setElSp(0, 0);
  cpu.daif = 0;
  cpu.setPc(entry);
  let stdout = '';
  let exitCode = -1;
  const t0 = process.hrtime.bigint();
  while (cpu.icount < maxInstructions) {
    cpu.run(1_000_000);
    if (cpu.waiting) {
      cpu.waiting = false;
      const ec = Number(cpu.sys.ESR_EL1 >> 26n);
      if (ec !== 0x15) {
        throw new Error(
          `program faulted: ESR 0x${cpu.sys.ESR_EL1.toString(16)} at 0x${cpu.sys.ELR_EL1.toString(16)}`,
        );
      }
      const nr = cpu.xlo(8);
      if (nr === 93 || nr === 94) {
        exitCode = cpu.xlo(0);
        break;
      }
      if (nr === 64) {
        const p = Number(cpu.xBig(1));
        const n = cpu.xlo(2);
        const s = mem.slice(p, n);
        stdout += s ? Buffer.from(s).toString('latin1') : '';
        cpu.setX(0, s ? n : -14, s ? 0 : -1);
      } else cpu.setX(0, -38, -1); // ENOSYS
      cpu.eret();
      cpu.pcLo = cpu.nextLo;
      cpu.pcHi = cpu.nextHi;
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { exitCode, stdout, instructions: cpu.icount, seconds };
}

// `node dist/bench/usermode.js PROGRAM`: run it as a process of its own (the cpu bench times whole
// processes on both engines); the result goes to stdout as one JSON line.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/usermode.js PROGRAM\n');
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(runUserProgram(file)) + '\n');
}

// `npm run bench -- cpu`: one compiled AArch64 program (bench/programs/sortbench.c: sorting and an
// LZ77 match search) under qemu-aarch64 and under typevisor's CPU in the same run.
// Both execute the same binary, so they retire the same instructions: the count is typevisor's
// (QEMU user mode does not count), and each engine's rate is that count over its own time.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runUserProgram } from './usermode.js';
import { repoRoot } from './util.js';

export async function benchCpu(): Promise<void> {
  const out = join(repoRoot, '.cache', 'bench');
  mkdirSync(out, { recursive: true });
  const exe = join(out, 'sortbench');
  process.stderr.write('bench cpu: building bench/programs/sortbench.c with aarch64-linux-gnu-gcc -O2\n');
  execFileSync('aarch64-linux-gnu-gcc', [
    '-O2', '-static', '-nostdlib', '-ffreestanding', '-fno-stack-protector',
    '-Wl,-Ttext-segment=0x40100000', '-o', exe, join(repoRoot, 'bench', 'programs', 'sortbench.c'),
  ]);
  let qemuBest = Infinity;
  let qemuOut = '';
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('qemu-aarch64', ['-cpu', 'cortex-a53', exe], { encoding: 'latin1' });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`qemu-aarch64 failed: ${r.stderr}`);
    qemuOut = r.stdout;
    qemuBest = Math.min(qemuBest, s);
  }
  process.stderr.write(`bench cpu: qemu-aarch64 best of 3: ${qemuBest.toFixed(3)} s\n`);
  process.stderr.write('bench cpu: running on typevisor...\n');
  const t = runUserProgram(exe);
  if (t.stdout !== qemuOut || t.exitCode !== 0) {
    throw new Error(`typevisor's result differs from qemu's: '${t.stdout.trim()}' (exit ${t.exitCode}) vs '${qemuOut.trim()}'`);
  }
  const tvMips = t.instructions / t.seconds / 1e6;
  const qMips = t.instructions / qemuBest / 1e6;
  process.stdout.write(`instructions: ${t.instructions} (checksum ${t.stdout.trim()} from both)\n`);
  process.stdout.write(`typevisor: ${t.seconds.toFixed(3)} s; qemu-aarch64: ${qemuBest.toFixed(3)} s\n`);
  process.stdout.write(`cpu: typevisor ${tvMips.toFixed(1)} MIPS, qemu ${qMips.toFixed(1)} MIPS, ratio ${(t.seconds / qemuBest).toFixed(2)}\n`);
}

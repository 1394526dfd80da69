// `npm run bench -- cpu`: one compiled AArch64 program (bench/programs/sortbench.c: sorting and an
// LZ77 match search) under qemu-aarch64 and under typevisor's CPU in the same run.
// Both execute the same binary, so they retire the same instructions: the count is typevisor's
// (QEMU user mode does not count), and each engine's rate is that count over its own time. Both are
// timed the same way: whole processes (start-up included), best of three each; typevisor's process
// is a Node.js with the options of a VM process (src/host/vm-process.ts), as `typevisor run` uses.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UserRun } from './usermode.js';
import { repoRoot } from './util.js';
import { VM_NODE_OPTIONS, vmEnv } from '../src/host/vm-process.js';

const RUNS = 3;

/** Run `cmd args` RUNS times; the best wall time of a whole process and that run's output. */
function bestOf(
  what: string,
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): { seconds: number; stdout: string } {
  let best = Infinity;
  let stdout = '';
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { encoding: 'latin1', env, maxBuffer: 1 << 20 });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}): ${r.stderr}`);
    if (s < best) {
      best = s;
      stdout = r.stdout;
    }
    process.stderr.write(`bench cpu: ${what} run ${i + 1}: ${s.toFixed(3)} s\n`);
  }
  return { seconds: best, stdout };
}

export async function benchCpu(): Promise<void> {
  const out = join(repoRoot, '.cache', 'bench');
  mkdirSync(out, { recursive: true });
  const exe = join(out, 'sortbench');
  process.stderr.write('bench cpu: building bench/programs/sortbench.c with aarch64-linux-gnu-gcc -O2\n');
  execFileSync('aarch64-linux-gnu-gcc', [
    '-O2',
    '-static',
    '-nostdlib',
    '-ffreestanding',
    '-fno-stack-protector',
    '-Wl,-Ttext-segment=0x40100000',
    '-o',
    exe,
    join(repoRoot, 'bench', 'programs', 'sortbench.c'),
  ]);
  const q = bestOf('qemu-aarch64', 'qemu-aarch64', ['-cpu', 'cortex-a53', exe]);
  const runner = fileURLToPath(new URL('./usermode.js', import.meta.url));
  const tv = bestOf('typevisor', process.execPath, [...VM_NODE_OPTIONS, runner, exe], vmEnv(process.env));
  const t = JSON.parse(tv.stdout) as UserRun;
  const qemuBest = q.seconds;
  if (t.stdout !== q.stdout || t.exitCode !== 0) {
    throw new Error(
      `typevisor's result differs from qemu's: '${t.stdout.trim()}' (exit ${t.exitCode}) vs '${q.stdout.trim()}'`,
    );
  }
  const tvMips = t.instructions / tv.seconds / 1e6;
  const qMips = t.instructions / qemuBest / 1e6;
  process.stdout.write(`instructions: ${t.instructions} (checksum ${t.stdout.trim()} from both)\n`);
  process.stdout.write(
    `typevisor: ${tv.seconds.toFixed(3)} s (${t.seconds.toFixed(3)} s of it running guest code); qemu-aarch64: ${qemuBest.toFixed(3)} s (best of ${RUNS} whole processes each)\n`,
  );
  process.stdout.write(
    `cpu: typevisor ${tvMips.toFixed(1)} MIPS, qemu ${qMips.toFixed(1)} MIPS, ratio ${(tv.seconds / qemuBest).toFixed(2)}\n`,
  );
}

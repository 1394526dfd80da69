// `npm run bench -- smp`: does a guest with 2 vCPUs run 2 CPU-bound jobs in parallel? The default
// guest (Debian's arm64 kernel + the busybox initramfs, with bench/programs/smpwork.c built static
// by the cross compiler and appended as a second initramfs) boots on typevisor's software CPU and on
// Debian's qemu-system-aarch64 (MTTCG: -accel tcg,thread=multi, -M virt,gic-version=3 -cpu
// cortex-a53), each with --cpus 1 and with --cpus 2 (-smp), 4 boots in all. In each boot, after a
// warm-up run, the guest runs the workload as 1 job and as 2 parallel jobs (processes), 3 times
// (TYPEVISOR_BENCH_SMP_REPEATS), and the best time of each counts; the guest program times each run
// itself (CLOCK_MONOTONIC, from its first fork to its last wait, so the boot is not counted); beside
// it, the host's time from typing the command to the result line. The last line is the target:
// `smp: typevisor speedup X, qemu speedup Y`, speedup = time of 2 jobs on 1 vCPU / time of 2 jobs on
// 2 vCPUs (2 means the two jobs ran fully in parallel). TYPEVISOR_BENCH_SMP_ITERS sets the rounds of
// each job (default 200M: about 2-3 s on typevisor, 1 s on QEMU, per job alone);
// TYPEVISOR_BENCH_SMPWORK a prebuilt smpwork (static, arm64) for a host without the cross compiler.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeInitramfsWith } from '../src/boot/initramfs.js';
import { buildDefaultImage, INIT_READY_MARKER } from '../src/image/build.js';
import { ConsoleGuest, qemuVirtArgs, repoRoot, typevisorRunArgs } from './util.js';

const CMDLINE = 'console=ttyAMA0 rdinit=/init';
const MEMORY_MIB = 512;
const ITERS = Number(process.env.TYPEVISOR_BENCH_SMP_ITERS ?? 200_000_000);
/** Before the timed runs: 2 jobs of a quarter of the rounds (the software CPU translates the loop). */
const WARMUP_ITERS = Math.max(1, Math.round(ITERS / 4));
const REPEATS = Number(process.env.TYPEVISOR_BENCH_SMP_REPEATS ?? 3);
const BOOT_TIMEOUT_MS = 900_000;
const RUN_TIMEOUT_MS = 600_000;

type Engine = 'typevisor' | 'qemu';

interface Run {
  /** Seconds the guest program measured. */
  guest: number;
  /** Seconds from typing the command to its result line, on the host. */
  host: number;
}

function log(m: string): void {
  process.stderr.write(`bench smp: ${m}\n`);
}

/**
 * Compile smpwork.c (or take the static arm64 build TYPEVISOR_BENCH_SMPWORK names, on a host without
 * the cross compiler) and write `initrd` + it as a new initramfs in `dir`.
 */
function initrdWithSmpwork(initrd: string, dir: string): string {
  let bin = process.env.TYPEVISOR_BENCH_SMPWORK ?? '';
  if (bin === '') {
    bin = join(dir, 'smpwork');
    execFileSync('aarch64-linux-gnu-gcc', [
      '-static',
      '-O2',
      '-o',
      bin,
      join(repoRoot, 'bench', 'programs', 'smpwork.c'),
    ]);
  }
  const out = join(dir, 'initramfs-smpwork.cpio.gz');
  writeInitramfsWith(initrd, out, { 'bin/smpwork': bin });
  return out;
}

function command(engine: Engine, cpus: number, kernel: string, initrd: string): [string, string[]] {
  if (engine === 'typevisor') {
    return [
      join(repoRoot, 'bin', 'typevisor'),
      typevisorRunArgs({ kernel, initrd, cmdline: CMDLINE, memoryMiB: MEMORY_MIB, cpus }),
    ];
  }
  return [
    'qemu-system-aarch64',
    [
      ...qemuVirtArgs({ kernel, initrd, cmdline: CMDLINE, memoryMiB: MEMORY_MIB, cpus, multi: true }),
      // No default NIC: QEMU would want its option ROM (ipxe-qemu), and typevisor's side has no network either.
      '-nic',
      'none',
    ],
  ];
}

/** `smpwork JOBS ITERS` in the guest; checks the CPU count and the jobs' checksums. */
async function work(
  g: ConsoleGuest,
  jobs: number,
  cpus: number,
  iters: number,
): Promise<Run & { sum: string }> {
  const t0 = process.hrtime.bigint();
  const at = g.type(`smpwork ${jobs} ${iters}; echo "@@smpstatus=$?"`);
  const m = await g.waitFor(/@@smpwork=(\d+) (\d+) ([\d.]+)\r?\n/, `smpwork ${jobs}`, at, RUN_TIMEOUT_MS);
  const host = Number(process.hrtime.bigint() - t0) / 1e9;
  const status = await g.waitFor(/@@smpstatus=(\d+)/, `smpwork ${jobs}'s status`, at, RUN_TIMEOUT_MS);
  const sums = [...g.out.slice(at).matchAll(/@@smpsum=([0-9a-f]+)/g)].map((s) => s[1]);
  if (status[1] !== '0' || Number(m[1]) !== jobs || sums.length !== jobs || new Set(sums).size !== 1)
    throw new Error(`${g.name}: smpwork ${jobs} failed; output:\n${g.out.slice(at).slice(-2000)}`);
  if (Number(m[2]) !== cpus) throw new Error(`${g.name}: the guest has ${m[2]} CPUs online, not ${cpus}`);
  return { guest: Number(m[3]), host, sum: sums[0] };
}

/** One boot: the warm-up, then 1 job and 2 jobs, REPEATS times; the best time of each. */
async function measure(
  engine: Engine,
  cpus: number,
  kernel: string,
  initrd: string,
): Promise<{ one: number; two: number; sum: string }> {
  const [cmd, args] = command(engine, cpus, kernel, initrd);
  const g = new ConsoleGuest(
    `${engine} --cpus ${cpus}`,
    spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }),
  );
  try {
    log(`${g.name}: booting...`);
    await g.waitFor(new RegExp(INIT_READY_MARKER), 'the init marker', 0, BOOT_TIMEOUT_MS);
    await work(g, 2, cpus, WARMUP_ITERS);
    const best = [Infinity, Infinity];
    let sum = '';
    for (let i = 0; i < REPEATS; i++) {
      for (const jobs of [1, 2]) {
        const r = await work(g, jobs, cpus, ITERS);
        sum ||= r.sum;
        if (r.sum !== sum) throw new Error(`${g.name}: smpwork ${jobs} computed another sum`);
        best[jobs - 1] = Math.min(best[jobs - 1], r.guest);
        process.stdout.write(
          `${engine.padEnd(9)} --cpus ${cpus}, ${jobs} job${jobs > 1 ? 's' : ' '}: ${r.guest.toFixed(2)} s ` +
            `(host ${r.host.toFixed(2)} s)\n`,
        );
      }
    }
    return { one: best[0], two: best[1], sum };
  } finally {
    await g.stop();
  }
}

export async function benchSmp(): Promise<void> {
  const img = await buildDefaultImage({ log: (m) => log(m) });
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-bench-smp-'));
  try {
    const initrd = initrdWithSmpwork(img.initrd, dir);
    log(`workload: smpwork, ${ITERS} rounds per job, ${MEMORY_MIB} MiB guests`);
    const speedup: Record<Engine, number> = { typevisor: NaN, qemu: NaN };
    const sums = new Set<string>();
    for (const engine of ['typevisor', 'qemu'] as const) {
      const on1 = await measure(engine, 1, img.kernel, initrd);
      const on2 = await measure(engine, 2, img.kernel, initrd);
      sums.add(on1.sum).add(on2.sum);
      speedup[engine] = on1.two / on2.two;
    }
    if (sums.size !== 1) throw new Error(`the engines computed different sums: ${[...sums].join(' ')}`);
    process.stdout.write(
      `smp: typevisor speedup ${speedup.typevisor.toFixed(2)}, qemu speedup ${speedup.qemu.toFixed(2)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

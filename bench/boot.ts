// `npm run bench -- boot`: the default guest (Debian's arm64 kernel + the busybox initramfs) booted on
// typevisor's software CPU and on Debian's qemu-system-aarch64 (-M virt,gic-version=3 -cpu cortex-a53,
// TCG) in the same run, each timed from launch to the marker /init prints, with each process's peak
// RSS (VmHWM) read at that moment.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDefaultImage, INIT_READY_MARKER } from '../src/image/build.js';
import { MAX_CPUS } from '../src/config/vmconfig.js';
import { qemuVirtArgs, repoRoot, typevisorRunArgs } from './util.js';

const CMDLINE = 'console=ttyAMA0 rdinit=/init';
export const MEMORY_MIB = 512;

export interface BootRun {
  seconds: number;
  peakRssMiB: number;
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function timeToMarker(name: string, cmd: string, args: string[], timeoutMs: number): Promise<BootRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p: ChildProcess = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      p.kill('SIGKILL');
      reject(
        new Error(
          `${name}: no '${INIT_READY_MARKER}' within ${timeoutMs / 1000} s; output:\n${out.slice(-2000)}`,
        ),
      );
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      if (done) return;
      out += d.toString('latin1');
      if (out.includes(INIT_READY_MARKER)) {
        done = true;
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const rss = peakRssMiB(p.pid!);
        clearTimeout(timer);
        p.kill('SIGKILL');
        resolve({ seconds, peakRssMiB: rss });
      }
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${name}: ${e.message}`));
    });
    p.on('exit', (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(
        new Error(
          `${name} exited (${signal ?? code}) before '${INIT_READY_MARKER}'; output:\n${out.slice(-2000)}`,
        ),
      );
    });
  });
}

const vcpus = (n: number): string => `${n} vCPU${n === 1 ? '' : 's'}`;

/**
 * QEMU's cold boot of the default guest to its init marker (the peer of the boot and restore
 * benches). With more than one vCPU, MTTCG (a host thread per vCPU), as typevisor would use.
 */
export function qemuBootToInit(
  img: { kernel: string; initrd: string },
  bench: string,
  cpus = 1,
): Promise<BootRun> {
  process.stderr.write(
    `bench ${bench}: qemu-system-aarch64 (TCG, cortex-a53, GICv3), ${MEMORY_MIB} MiB, ${vcpus(cpus)}...\n`,
  );
  return timeToMarker(
    'qemu-system-aarch64',
    'qemu-system-aarch64',
    [
      ...qemuVirtArgs({
        kernel: img.kernel,
        initrd: img.initrd,
        cmdline: CMDLINE,
        memoryMiB: MEMORY_MIB,
        cpus,
        multi: cpus > 1,
      }),
      // No default NIC: QEMU would want its option ROM (ipxe-qemu), and typevisor's side has no network either.
      '-nic',
      'none',
    ],
    300_000,
  );
}

/** typevisor's boot of the default guest to its init marker (`run`, vCPU threads as it chooses). */
function typevisorBootToInit(
  img: { kernel: string; initrd: string },
  bench: string,
  cpus = 1,
): Promise<BootRun> {
  process.stderr.write(`bench ${bench}: typevisor (software CPU), ${MEMORY_MIB} MiB, ${vcpus(cpus)}...\n`);
  return timeToMarker(
    'typevisor',
    join(repoRoot, 'bin', 'typevisor'),
    typevisorRunArgs({
      kernel: img.kernel,
      initrd: img.initrd,
      cmdline: CMDLINE,
      memoryMiB: MEMORY_MIB,
      cpus,
    }),
    900_000,
  );
}

export async function benchBoot(): Promise<void> {
  const img = await buildDefaultImage({ log: (m) => process.stderr.write(`bench boot: ${m}\n`) });
  const qemu = await qemuBootToInit(img, 'boot');
  const tv = await typevisorBootToInit(img, 'boot');
  process.stdout.write(
    `peak RSS: typevisor ${tv.peakRssMiB.toFixed(0)} MiB, qemu ${qemu.peakRssMiB.toFixed(0)} MiB\n`,
  );
  process.stdout.write(
    `boot: typevisor ${tv.seconds.toFixed(2)} s, qemu ${qemu.seconds.toFixed(2)} s, ratio ${(tv.seconds / qemu.seconds).toFixed(2)}\n`,
  );
}

/** Boots per configuration in `bench boot-smp` (the best counts). */
const SMP_BOOTS = Number(process.env.TYPEVISOR_BENCH_BOOT_SMP_RUNS ?? 3);
/** The vCPUs `bench boot-smp` compares with one (TYPEVISOR_BENCH_BOOT_SMP_CPUS). */
const SMP_CPUS = Number(process.env.TYPEVISOR_BENCH_BOOT_SMP_CPUS ?? 4);

/**
 * `npm run bench -- boot-smp`: what booting with more vCPUs costs, on each engine. The default guest
 * boots to its init marker with 1 and with SMP_CPUS vCPUs, on typevisor and on QEMU (MTTCG), the
 * configurations interleaved, SMP_BOOTS times each; the best time of each counts. Last line:
 * `boot-smp: typevisor N/1 vCPUs R, qemu N/1 vCPUs Q` (R = best boot with N vCPUs / best with 1;
 * 1.00: no slower).
 */
export async function benchBootSmp(): Promise<void> {
  if (!Number.isInteger(SMP_BOOTS) || SMP_BOOTS < 1)
    throw new Error('TYPEVISOR_BENCH_BOOT_SMP_RUNS: expected an integer >= 1');
  if (!Number.isInteger(SMP_CPUS) || SMP_CPUS < 2 || SMP_CPUS > MAX_CPUS.aarch64)
    throw new Error(`TYPEVISOR_BENCH_BOOT_SMP_CPUS: expected an integer from 2 to ${MAX_CPUS.aarch64}`);
  const img = await buildDefaultImage({ log: (m) => process.stderr.write(`bench boot-smp: ${m}\n`) });
  const engines = { typevisor: typevisorBootToInit, qemu: qemuBootToInit };
  const best: Record<string, number> = {};
  for (let r = 0; r < SMP_BOOTS; r++) {
    for (const [name, boot] of Object.entries(engines)) {
      for (const cpus of [1, SMP_CPUS]) {
        const { seconds } = await boot(img, 'boot-smp', cpus);
        process.stderr.write(`bench boot-smp: ${name}, ${vcpus(cpus)}: ${seconds.toFixed(2)} s\n`);
        const key = `${name}/${cpus}`;
        best[key] = Math.min(best[key] ?? Infinity, seconds);
      }
    }
  }
  const ratio = (name: string): string => (best[`${name}/${SMP_CPUS}`] / best[`${name}/1`]).toFixed(2);
  for (const name of Object.keys(engines)) {
    process.stdout.write(
      `boot ${name}: ${vcpus(1)} ${best[`${name}/1`].toFixed(2)} s, ${vcpus(SMP_CPUS)} ${best[`${name}/${SMP_CPUS}`].toFixed(2)} s (best of ${SMP_BOOTS})\n`,
    );
  }
  process.stdout.write(
    `boot-smp: typevisor ${SMP_CPUS}/1 vCPUs ${ratio('typevisor')}, qemu ${SMP_CPUS}/1 vCPUs ${ratio('qemu')}\n`,
  );
}

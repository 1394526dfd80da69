// `npm run bench -- boot`: the default guest (Debian's arm64 kernel + the busybox initramfs) booted on
// typevisor's software CPU and on Debian's qemu-system-aarch64 (-M virt,gic-version=3 -cpu cortex-a53,
// TCG) in the same run, each timed from launch to the marker /init prints, with each process's peak
// RSS (VmHWM) read at that moment.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDefaultImage, INIT_READY_MARKER } from '../src/image/build.js';
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
      reject(new Error(`${name}: no '${INIT_READY_MARKER}' within ${timeoutMs / 1000} s; output:\n${out.slice(-2000)}`));
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
      reject(new Error(`${name} exited (${signal ?? code}) before '${INIT_READY_MARKER}'; output:\n${out.slice(-2000)}`));
    });
  });
}

/** QEMU's cold boot of the default guest to its init marker (the peer of the boot and restore benches). */
export function qemuBootToInit(img: { kernel: string; initrd: string }, bench: string): Promise<BootRun> {
  process.stderr.write(`bench ${bench}: qemu-system-aarch64 (TCG, cortex-a53, GICv3), ${MEMORY_MIB} MiB, 1 vCPU...\n`);
  return timeToMarker(
    'qemu-system-aarch64',
    'qemu-system-aarch64',
    [...qemuVirtArgs({ kernel: img.kernel, initrd: img.initrd, cmdline: CMDLINE, memoryMiB: MEMORY_MIB }),
      // No default NIC: QEMU would want its option ROM (ipxe-qemu), and typevisor's side has no network either.
      '-nic', 'none'],
    300_000,
  );
}

export async function benchBoot(): Promise<void> {
  const img = await buildDefaultImage({ log: (m) => process.stderr.write(`bench boot: ${m}\n`) });
  const qemu = await qemuBootToInit(img, 'boot');
  process.stderr.write(`bench boot: typevisor (software CPU), ${MEMORY_MIB} MiB, 1 vCPU...\n`);
  const tv = await timeToMarker(
    'typevisor',
    join(repoRoot, 'bin', 'typevisor'),
    typevisorRunArgs({ kernel: img.kernel, initrd: img.initrd, cmdline: CMDLINE, memoryMiB: MEMORY_MIB }),
    900_000,
  );
  process.stdout.write(`peak RSS: typevisor ${tv.peakRssMiB.toFixed(0)} MiB, qemu ${qemu.peakRssMiB.toFixed(0)} MiB\n`);
  process.stdout.write(`boot: typevisor ${tv.seconds.toFixed(2)} s, qemu ${qemu.seconds.toFixed(2)} s, ratio ${(tv.seconds / qemu.seconds).toFixed(2)}\n`);
}

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (bench files run from dist/bench). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * `typevisor run`'s arguments for a bench guest (no virtio-rng: QEMU's peer has none); the caller
 * adds the rest (NICs, a name).
 */
export function typevisorRunArgs(o: {
  kernel: string;
  initrd: string;
  cmdline: string;
  memoryMiB: number;
  cpus?: number;
}): string[] {
  return [
    ...['run', '--kernel', o.kernel, '--initrd', o.initrd, '--cmdline', o.cmdline],
    ...['--memory', String(o.memoryMiB), '--cpus', String(o.cpus ?? 1), '--no-rng'],
  ];
}

/**
 * qemu-system-aarch64's arguments for the peer of a typevisor guest: QEMU's virt board with GICv3, a
 * Cortex-A53 on TCG (`multi`: MTTCG, one thread per vCPU), the kernel, initrd and command line,
 * serial console on stdio, no reboot. The caller adds its devices (`-nic none` where there is none).
 */
export function qemuVirtArgs(o: {
  kernel: string;
  initrd: string;
  cmdline: string;
  memoryMiB: number;
  cpus?: number;
  multi?: boolean;
}): string[] {
  return [
    ...['-M', 'virt,gic-version=3', '-cpu', 'cortex-a53', '-accel', o.multi ? 'tcg,thread=multi' : 'tcg'],
    ...['-m', String(o.memoryMiB), '-smp', String(o.cpus ?? 1), '-nographic', '-no-reboot'],
    ...['-kernel', o.kernel, '-initrd', o.initrd, '-append', o.cmdline],
  ];
}

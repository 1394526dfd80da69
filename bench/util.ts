import type { ChildProcess } from 'node:child_process';
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A bench guest driven through its console on stdio (typevisor run, or QEMU with -nographic). */
export class ConsoleGuest {
  out = '';

  constructor(
    readonly name: string,
    readonly p: ChildProcess,
    /** How long waitFor() waits when not told. */
    private readonly stepMs = 600_000,
    /** A line the guest prints when its program failed: waitFor() fails at once when it appears. */
    private readonly failure?: RegExp,
  ) {
    p.stdout!.on('data', (d: Buffer) => (this.out += d.toString('latin1')));
    p.stderr!.on('data', (d: Buffer) => (this.out += d.toString('latin1')));
    p.on('error', (e) => (this.out += `\n${name}: ${e.message}\n`));
  }

  private get exited(): boolean {
    return this.p.exitCode !== null || this.p.signalCode !== null;
  }

  /** Wait for `re` in the output after position `from`. */
  async waitFor(re: RegExp, what: string, from = 0, timeoutMs = this.stepMs): Promise<RegExpExecArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const text = this.out.slice(from);
      const m = re.exec(text);
      if (m) return m;
      const failed = this.failure?.exec(text);
      if (failed) throw new Error(`${this.name}: ${what}: ${failed[0]}; output:\n${this.out.slice(-2000)}`);
      if (this.exited || Date.now() > end) {
        throw new Error(`${this.name}: ${what}: not seen; output:\n${this.out.slice(-2000)}`);
      }
      await sleep(20);
    }
  }

  /** Type a command line; returns the output position to search from. */
  type(line: string): number {
    const at = this.out.length;
    this.p.stdin!.write(line + '\n');
    return at;
  }

  async stop(): Promise<void> {
    if (!this.exited) this.p.stdin!.write('poweroff -f\n');
    await Promise.race([new Promise((r) => this.p.once('close', r)), sleep(20_000)]);
    if (!this.exited) this.p.kill('SIGKILL');
  }
}

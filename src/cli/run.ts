// `typevisor run [CONFIG] [options]`: boot a guest in the foreground with its console on this terminal.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { Vm, type VmSpec } from '../vmm/vm.js';
import { RUN_OPTIONS, RUN_HELP } from './spec.js';
import { specFromOptions } from '../config/spec.js';
import { serveGdbAnnounced, type GdbServer } from '../api/gdb.js';
import type { SnapshotReader } from '../vmm/snapshot.js';
import { specFromSnapshot } from './restore.js';

/** Ctrl-] leaves the console (like telnet, virsh and xl console). */
export const ESCAPE_BYTE = 0x1d;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...RUN_OPTIONS, restore: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UserError(`run: expected at most one config file, got ${positionals.join(' ')}`);
  if (values.restore !== undefined) {
    // The snapshot holds the guest: only a name, and memory/vCPUs to check, go with it.
    const others = Object.keys(values).filter((k) => !['restore', 'name', 'memory', 'cpus'].includes(k));
    if (positionals.length > 0 || others.length > 0) {
      throw new UserError(
        `run --restore: ${positionals.length > 0 ? `a config file (${positionals[0]})` : `--${others[0]}`} cannot be given with a snapshot; it holds the guest's config`,
      );
    }
    const { reader, spec } = specFromSnapshot(values.restore, values);
    return runForeground(spec, reader);
  }
  const spec = await specFromOptions(values, positionals[0]);
  return runForeground(spec);
}

export async function runForeground(spec: VmSpec, restore?: SnapshotReader): Promise<number> {
  const vm = new Vm(spec);
  process.stderr.write(
    (restore
      ? `typevisor: restoring ${spec.name} from ${restore.path}: ${spec.cpus} vCPU(s), ${spec.memoryMiB} MiB`
      : `typevisor: booting ${spec.name}${spec.arch === 'x86_64' ? ' (x86_64, kvm)' : ''}: ${spec.cpus} vCPU(s), ${spec.memoryMiB} MiB, kernel ${spec.kernel}`) +
      (process.stdin.isTTY ? ' (Ctrl-] quits)' : '') +
      '\n',
  );
  const gdb: GdbServer | undefined = spec.gdb ? await serveGdbAnnounced(vm, spec.gdb) : undefined;
  try {
    await vm.start({ paused: spec.gdb?.wait, restore });
  } catch (e) {
    gdb?.close();
    throw e;
  }
  const vsock = vm.guestDevices?.vsock;
  if (vsock) {
    process.stderr.write(
      `typevisor: virtio-vsock: guest CID ${vsock.device.cid}; host socket ${vsock.path} (CONNECT <port>; guest connections to CID 2 port P reach ${vsock.path}_P)
`,
    );
  }
  vm.console.pipe(process.stdout, { end: false });
  const stdin = process.stdin;
  let quitByEscape = false;
  const onData = (chunk: Buffer): void => {
    if (stdin.isTTY) {
      const i = chunk.indexOf(ESCAPE_BYTE);
      if (i >= 0) {
        if (i > 0) vm.input.write(chunk.subarray(0, i));
        quitByEscape = true;
        vm.destroy();
        return;
      }
    }
    vm.input.write(chunk);
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.resume();
  const onSignal = (): void => vm.destroy();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const exit = await vm.wait();
    if (quitByEscape) {
      process.stderr.write('\r\ntypevisor: quit from the console (Ctrl-])\n');
      return 0;
    }
    process.stderr.write(`\r\ntypevisor: ${exit.message}\n`);
    return exit.exitCode;
  } finally {
    stdin.off('data', onData);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    stdin.unref?.();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    gdb?.close();
  }
}

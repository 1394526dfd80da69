// x86_64 test guests (test/fixtures/x86, ELF "kernels" entered in long mode) as VMs through vmm/'s
// Vm, the way the CLI and the toolstack run them.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Vm, type VmExit, type VmSpec } from '../../src/vmm/vm.js';
import { buildGuestElf } from '../fixtures/x86/build.js';

let dir: string | undefined;

/** Assemble test guest `name` as an ELF kernel at 16 MiB and return its file. */
export function guestKernelFile(name: string): string {
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'tv-x86-kernels-'));
  const file = path.join(dir, `${name}.elf`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, buildGuestElf(name, 0x1000000));
  return file;
}

/** A spec for an x86_64 guest on kvm with no devices unless `over` adds them. */
export function x86Spec(kernel: string, over: Partial<VmSpec> = {}): VmSpec {
  return {
    name: 'x86-test',
    arch: 'x86_64',
    accel: 'kvm',
    cpus: 1,
    memoryMiB: 64,
    kernel,
    cmdline: 'console=ttyS0',
    console: 'serial',
    disks: [],
    rng: false,
    balloon: false,
    ...over,
  };
}

/** A started VM and its console output so far. */
export async function startVm(spec: VmSpec): Promise<{ vm: Vm; text: () => string; exit: Promise<VmExit> }> {
  const vm = new Vm(spec);
  const chunks: Buffer[] = [];
  vm.console.on('data', (b: Buffer) => chunks.push(b));
  await vm.start();
  return { vm, text: () => Buffer.concat(chunks).toString('latin1'), exit: vm.wait() };
}

// Build an x86-microvm guest on the kvm engine from a VmSpec: the machine, the spec's devices
// (guest.ts) announced on the kernel command line, and the Linux kernel entered in 64-bit mode
// (machine/x86-boot.ts). The spec's fields that only the arm64 software CPU has are refused.

import { UserError } from '../host/errors.js';
import { X86Machine } from '../machine/x86-microvm.js';
import { loadLinux } from '../machine/x86-boot.js';
import type { NetBackend } from '../devices/virtio/net.js';
import { addSpecDevices, readBootFile, type BuildOptions, type BuiltGuest } from './guest.js';
import type { VmSpec } from './vm.js';

/** The spec fields x86-microvm on kvm cannot honour, with why. */
function refused(spec: VmSpec): string | undefined {
  if (spec.accel === 'tcg') return 'accel tcg: the software CPU is AArch64; x86_64 guests run on kvm';
  if (spec.dtb) return 'dtb: x86-microvm has no device tree (its devices are on the kernel command line)';
  if (spec.dumpDtb) return 'dump-dtb: x86-microvm has no device tree';
  if (spec.deterministic) return 'deterministic: repeatable runs need the software CPU (aarch64 guests on tcg)';
  if (spec.vcpuThreads) return 'vcpu-threads: a software-CPU option (aarch64 guests on tcg; kvm runs each vCPU on its own thread)';
  if (spec.logUnimplemented) return 'log-unimplemented: a software-CPU option (aarch64 guests on tcg)';
  if (spec.gdb) return 'gdb: the gdb stub serves aarch64 guests on the software CPU (tcg)';
  return undefined;
}

export async function buildX86Guest(
  spec: VmSpec,
  output: (bytes: Uint8Array) => void,
  netBackends: NetBackend[] = [],
  opts: BuildOptions = {},
): Promise<BuiltGuest & { machine: X86Machine }> {
  const no = refused(spec);
  if (no) throw new UserError(`${spec.name}: x86_64 guests (x86-microvm on kvm): ${no}`);
  // A restored machine gets its RAM and registers from the snapshot instead of the boot files.
  const kernel = opts.restore ? undefined : readBootFile(spec.kernel, 'kernel');
  const initrd = opts.restore || spec.initrd === undefined ? undefined : readBootFile(spec.initrd, 'initrd');
  let machine: X86Machine;
  try {
    // Always on pool threads: the event loop (console, control API) keeps running while vCPUs run.
    machine = new X86Machine({ memoryMiB: spec.memoryMiB, cpus: spec.cpus, unbackedMmio: 'ignore', mode: 'async' });
  } catch (e) {
    throw new UserError(`${spec.name}: cannot create the KVM machine: ${(e as Error).message} (\`typevisor doctor\` says what this host's kvm can run)`);
  }
  try {
    const devs = addSpecDevices(spec, machine, output, netBackends, opts);
    try {
      if (kernel) {
        const cmdline = [spec.cmdline ?? '', machine.virtio.cmdline()].filter((s) => s).join(' ');
        const info = loadLinux(machine.mem, {
          kernel,
          initrd,
          cmdline,
          cpus: spec.cpus,
          levelIrqs: machine.virtio.devices.map((d) => d.irq),
        });
        machine.setupLongMode(0, info.entry, info.zeroPage);
      }
      return { machine, devices: await devs.finish() };
    } catch (e) {
      devs.close();
      throw e;
    }
  } catch (e) {
    machine.close();
    if (e instanceof UserError) throw e;
    throw new UserError(`${spec.name}: ${(e as Error).message}`);
  }
}

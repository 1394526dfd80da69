// Build an arm64-virt machine from a VmSpec: devices, kernel/initrd/DTB placement (booting.rst), and
// the boot vCPU's entry state. With a user DTB (--dtb) its /memory decides where the kernel goes
// (seed 001: RAM from 0x4800_0000, initrd at 0x5400_0000, DTB at 0x4700_0000).

import { deterministicBytes } from '../host/deterministic.js';
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { UserError } from '../host/errors.js';
import { Arm64VirtMachine, VIRT } from '../machine/arm64-virt.js';
import { BOARD_MAX_CPUS } from '../machine/machine.js';
import { writeArm64Dtb } from '../machine/arm64-dt.js';
import { loadArm64KernelFile } from '../boot/arm64-image.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { parseDtb, readMemory, readChosen, patchDtb } from '../boot/fdt-parse.js';
import { findNode } from '../boot/fdt.js';
import { addSpecDevices, type BuildOptions, type BuiltGuest } from './guest.js';
import type { NetBackend } from '../devices/virtio/net.js';
import type { VmSpec } from './vm.js';

const MiB = 1024 * 1024;
const SZ_2M = 2 * MiB;
const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

interface UserDtbInfo {
  data: Uint8Array;
  memBase: number;
  memEnd: number;
  cpus: number;
  initrdStart?: number;
}

function readUserDtb(path: string): UserDtbInfo {
  let data: Uint8Array;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new UserError(`--dtb ${path}: ${(e as Error).message}`);
  }
  let parsed;
  try {
    parsed = parseDtb(data, path);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const mem = readMemory(parsed.root);
  if (mem.length === 0)
    throw new UserError(`${path}: the device tree has no /memory node with a reg property`);
  const memBase = Number(mem[0].base);
  const memEnd = Number(mem[0].base + mem[0].size);
  if (memBase < VIRT.RAM) {
    throw new UserError(
      `${path}: /memory starts at 0x${memBase.toString(16)}, below arm64-virt RAM at 0x${VIRT.RAM.toString(16)}`,
    );
  }
  const cpusNode = findNode(parsed.root, '/cpus');
  const cpus = cpusNode ? cpusNode.children.filter((c) => c.name.startsWith('cpu@')).length : 1;
  const chosen = readChosen(parsed.root);
  return {
    data,
    memBase,
    memEnd,
    cpus: Math.max(1, cpus),
    initrdStart: chosen.initrdStart !== undefined ? Number(chosen.initrdStart) : undefined,
  };
}

/** /chosen/rng-seed for a --deterministic VM: the same 32 bytes every run. */
function fixedSeed(): Uint8Array {
  const seed = new Uint8Array(32);
  deterministicBytes(0x5eed)(seed);
  return seed;
}

/**
 * 32 random bytes for /chosen/rng-seed: from /dev/urandom, or node:crypto where there is none.
 * Loading node:crypto initialises OpenSSL, RSS the VMM need not carry for 32 bytes (see rng.ts).
 */
function rngSeed(): Uint8Array {
  const seed = new Uint8Array(32);
  try {
    const fd = openSync('/dev/urandom', 'r');
    try {
      if (readSync(fd, seed, 0, 32, null) === 32) return seed;
    } finally {
      closeSync(fd);
    }
  } catch {
    // no /dev/urandom: below
  }
  return (createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')).randomBytes(32);
}

/** Read `length` bytes of an open file into guest RAM at `pa` (a range already checked to be RAM). */
function readIntoRam(mem: GuestMemory, pa: number, fd: number, length: number, what: string): void {
  const off = pa - mem.ramBase;
  let done = 0;
  while (done < length) {
    const n = readSync(fd, mem.u8, off + done, length - done, done);
    if (n === 0)
      throw new UserError(`${what}: the file shrank while it was read (${done} of ${length} bytes)`);
    done += n;
  }
  if (length > 0) mem.noteWrite(off, length);
}

/**
 * Whether the vCPUs run on their own threads (VmSpec.vcpuThreads). The gdb stub stops, examines and
 * steps each vCPU in place: one thread runs them all then. By default each vCPU gets a thread when
 * the host has a core for each: on fewer, the threads only compete for them, and each costs its own
 * JIT warm-up (V8 compiles the CPU's code and the guest's translated code once per thread).
 * Measured on a 2-core host, default guest to power-off (stop 32): 1 vCPU 5.1-5.4 s; 4 vCPUs on one
 * thread 5.5-6.1 s, on 4 threads 13.3 s. With a core per vCPU but none to spare, threads still cost
 * the boot (2 vCPUs: 7.3-7.8 s on 2 threads, 5.3-5.4 s on one: V8's compiler thread does the second
 * thread's JIT warm-up, 5.0-5.4 s of CPU against 3.0 s, on the cores the vCPUs need) but run
 * parallel guest work in parallel (`npm run bench -- smp`: speedup 1.98 on 2 threads): the default
 * favours what the guest runs after its boot.
 */
export function vcpuThreadsFor(spec: VmSpec, cpus: number): boolean {
  if (spec.gdb || spec.vcpuThreads === 'single') return false;
  return spec.vcpuThreads === 'multi' || cpus <= availableParallelism();
}

/** `netBackends`: the host side of each of spec.nets, opened by the caller (they outlive a reboot). */
export async function buildArm64Guest(
  spec: VmSpec,
  output: (bytes: Uint8Array) => void,
  netBackends: NetBackend[] = [],
  opts: BuildOptions = {},
): Promise<BuiltGuest & { machine: Arm64VirtMachine }> {
  const user = spec.dtb ? readUserDtb(spec.dtb) : undefined;
  let ramSize = spec.memoryMiB * MiB;
  if (user) ramSize = Math.max(ramSize, alignUp(user.memEnd - VIRT.RAM, MiB));
  const cpus = user && spec.cpus === 1 ? Math.min(BOARD_MAX_CPUS['arm64-virt'], user.cpus) : spec.cpus;
  const machine = new Arm64VirtMachine({
    cpus,
    memoryBytes: ramSize,
    deterministic: spec.deterministic,
    logUnimplemented: spec.logUnimplemented,
    threads: vcpuThreadsFor(spec, cpus),
  });
  const mem = machine.mem;

  const devs = addSpecDevices(spec, machine, output, netBackends, opts);

  // ---- boot files (a restored machine gets its RAM and registers from the snapshot instead) ----
  const bootFiles = async (): Promise<void> => {
    // Kernel and initrd go from their files straight into guest RAM (no host copy of either).
    const kernelBase = user ? alignUp(user.memBase, SZ_2M) : VIRT.RAM;
    const kernel = await loadArm64KernelFile(mem, spec.kernel, {
      base: kernelBase,
      what: `kernel ${spec.kernel}`,
    });
    if (kernel.kind === 'raw') {
      process.stderr.write(
        `typevisor: kernel ${spec.kernel} is neither an arm64 Image nor an ELF file: running it as a raw binary at 0x${kernel.entry.toString(16)}\n`,
      );
    }
    const ramEnd = mem.ramEnd;
    // Where the device tree goes (x0 points at it for every kind of kernel): seed 001's layout below
    // a user DTB's RAM; else the top 2 MiB of RAM for an Image, and as QEMU's virt board does
    // (hw/arm/boot.c) for the others: at the start of RAM below an ELF's lowest segment when it fits
    // there, and for a raw binary 2 MiB aligned after the initrd (or where an initrd would start).
    const topWindow = user && user.memBase - 16 * MiB >= VIRT.RAM ? user.memBase - 16 * MiB : ramEnd - SZ_2M;
    const reserved = user || kernel.kind !== 'raw' ? topWindow : undefined;
    const initrdDefault = Math.max(
      alignUp(kernel.end, SZ_2M),
      mem.ramBase + Math.min(ramSize / 2, 128 * MiB),
    );
    let initrd: { start: number; end: number } | undefined;
    if (spec.initrd) {
      const fd = openSync(spec.initrd, 'r');
      try {
        const length = fstatSync(fd).size;
        const hitsDtb = (start: number): boolean =>
          reserved !== undefined && start < reserved + SZ_2M && start + length > reserved;
        let start = user?.initrdStart ?? initrdDefault;
        if (hitsDtb(start)) start = alignUp(kernel.end, SZ_2M);
        if (!mem.isRam(start, length) || hitsDtb(start)) {
          throw new UserError(
            `initrd ${spec.initrd} (${length} bytes) does not fit in guest RAM after the kernel; give the guest more memory (--memory)`,
          );
        }
        readIntoRam(mem, start, fd, length, `initrd ${spec.initrd}`);
        initrd = { start, end: start + length };
      } finally {
        closeSync(fd);
      }
    }

    let dtb: Uint8Array;
    if (user) {
      dtb = patchDtb(user.data, { bootargs: spec.cmdline, initrd }, spec.dtb);
    } else {
      dtb = writeArm64Dtb({
        cpus,
        ramBase: mem.ramBase,
        ramSize,
        cmdline: spec.cmdline ?? '',
        serialConsole: spec.console === 'serial',
        initrd,
        rngSeed: spec.deterministic ? fixedSeed() : rngSeed(),
      });
    }
    if (spec.dumpDtb) writeFileSync(spec.dumpDtb, dtb);
    if (dtb.length > SZ_2M) throw new UserError('device tree is larger than 2 MiB');
    let dtbAddr = topWindow;
    if (!user && kernel.kind === 'elf' && mem.ramBase + dtb.length <= kernel.low) dtbAddr = mem.ramBase;
    if (!user && kernel.kind === 'raw') dtbAddr = alignUp(initrd ? initrd.end : initrdDefault, SZ_2M);
    const overlaps = (a: number, b: number): boolean => dtbAddr < b && a < dtbAddr + dtb.length;
    if (
      !mem.isRam(dtbAddr, dtb.length) ||
      overlaps(kernel.low, kernel.end) ||
      (initrd && overlaps(initrd.start, initrd.end))
    ) {
      throw new UserError(
        `no room for the device tree (${dtb.length} bytes) at 0x${dtbAddr.toString(16)}: the kernel occupies ` +
          `0x${kernel.low.toString(16)}-0x${kernel.end.toString(16)}${initrd ? `, the initrd 0x${initrd.start.toString(16)}-0x${initrd.end.toString(16)}` : ''}` +
          ` in RAM 0x${mem.ramBase.toString(16)}-0x${ramEnd.toString(16)}; give the guest more memory (--memory)`,
      );
    }
    mem.load(dtbAddr, dtb, 'device tree');
    machine.boot(kernel.entry, dtbAddr);
  };
  if (!opts.restore) {
    try {
      await bootFiles();
    } catch (e) {
      devs.close();
      throw e;
    }
  }
  return { machine, devices: await devs.finish() };
}

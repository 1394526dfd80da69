// A config file plus option values (run's command-line options, or a library caller's overrides)
// -> the VmSpec the VMM boots.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../host/errors.js';
import { lookupNetwork } from '../host/network.js';
import type { VmSpec, DiskSpec, GdbSpec, VsockSpec } from '../vmm/vm.js';
import { MAX_SOCKET_PATH, stateDir } from '../vmm/state.js';
import { guestCidProblem } from '../devices/virtio/vsock.js';
import { loadConfig } from './load.js';
import { buildDefaultImage } from '../image/build.js';
import { sniffKernelArch } from './common.js';
import { MAX_CPUS, parseListenAddress } from './vmconfig.js';
import { netRequestFromConfig, parseNetOption, resolveNets, type NetRequest } from '../vmm/net.js';

/** Where host networks are kept: next to the VMs' state. */
export function networksDir(): string {
  return join(stateDir(), 'networks');
}

/** `--net network=NAME` -> the network's bridge. */
export function networkBridge(name: string, what: string): string {
  return lookupNetwork(networksDir(), name, what);
}

/** Option values, as run's command line gives them; they override the config's settings. */
export interface RunValues {
  kernel?: string;
  initrd?: string;
  dtb?: string;
  'dump-dtb'?: string;
  cmdline?: string;
  cpus?: string;
  memory?: string;
  disk?: string[];
  net?: string[];
  console?: string;
  name?: string;
  from?: string;
  arch?: string;
  accel?: string;
  'no-rng'?: boolean;
  balloon?: boolean;
  vsock?: string;
  deterministic?: boolean;
  'vcpu-threads'?: string;
  'log-unimplemented'?: boolean;
  gdb?: string;
  'gdb-wait'?: boolean;
}

function vcpuThreadsOption(text: string | undefined): 'multi' | 'single' | undefined {
  if (text === undefined || text === 'multi' || text === 'single') return text;
  throw new UserError(`--vcpu-threads: expected multi or single, got '${text}'`);
}

function intOption(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UserError(`--${name}: expected an integer from ${min} to ${max}, got '${text}'`);
  }
  return n;
}

export function parseDiskOption(text: string): DiskSpec {
  const parts = text.split(',');
  const path = parts[0];
  if (!path) throw new UserError(`--disk: expected PATH[,ro], got '${text}'`);
  let readOnly = false;
  for (const p of parts.slice(1)) {
    if (p === 'ro') readOnly = true;
    else if (p === 'rw') readOnly = false;
    else throw new UserError(`--disk ${text}: unknown flag '${p}' (expected ro or rw)`);
  }
  return { path: resolve(path), readOnly };
}

/** `--gdb [HOST:]PORT` (HOST may be [IPv6]) and `--gdb-wait`. */
export function parseGdbOption(text: string | undefined, wait: boolean | undefined): GdbSpec | undefined {
  if (text === undefined) {
    if (wait) {
      throw new UserError('--gdb-wait (gdbWait in a config): needs --gdb [HOST:]PORT (where gdb connects)');
    }
    return undefined;
  }
  const a = parseListenAddress(text);
  if (!a) throw new UserError(`--gdb: expected [HOST:]PORT with a port from 0 to 65535, got '${text}'`);
  return { ...a, wait: !!wait };
}

/** `--vsock CID[,uds=PATH]`. */
export function parseVsockOption(text: string): VsockSpec {
  const [cidText, ...rest] = text.split(',');
  if (!/^\d+$/.test(cidText.trim())) {
    throw new UserError(`--vsock: expected CID[,uds=PATH] with a numeric guest CID, got '${text}'`);
  }
  const spec: VsockSpec = { cid: Number(cidText) };
  const bad = guestCidProblem(spec.cid);
  if (bad) throw new UserError(`--vsock: ${bad}`);
  for (const p of rest) {
    if (p.startsWith('uds=') && p.length > 4) spec.uds = checkVsockPath('--vsock uds', p.slice(4));
    else throw new UserError(`--vsock ${text}: unknown setting '${p}' (expected uds=PATH)`);
  }
  return spec;
}

/** A vsock socket path, absolute, that a Unix socket can have. */
export function checkVsockPath(what: string, path: string): string {
  const p = resolve(path);
  const n = Buffer.byteLength(p);
  if (n > MAX_SOCKET_PATH) {
    throw new UserError(`${what}: the socket path ${p} is ${n} bytes, more than the ${MAX_SOCKET_PATH} a Unix socket allows`);
  }
  return p;
}

function requireFile(what: string, path: string): string {
  const p = resolve(path);
  if (!existsSync(p)) throw new UserError(`${what}: file not found: ${path}`);
  return p;
}

export const DEFAULT_CMDLINE_SERIAL = 'console=ttyAMA0 earlycon=pl011,0x09000000 rdinit=/init';
export const DEFAULT_CMDLINE_VIRTIO = 'console=hvc0 earlycon=pl011,0x09000000 rdinit=/init';
export const DEFAULT_CMDLINE_X86 = 'console=ttyS0 reboot=k panic=-1';

/**
 * The guest architecture and engine. The software CPU (tcg) runs aarch64 guests; /dev/kvm (kvm) runs
 * x86_64 guests on an x86_64 host. `auto` picks the engine that can run the guest's architecture.
 */
export function resolveEngine(
  values: RunValues,
  spec: Partial<VmSpec>,
  kernel: string | undefined,
): { arch: 'aarch64' | 'x86_64'; accel: 'tcg' | 'kvm' } {
  const archText = values.arch ?? spec.arch ?? (kernel ? sniffKernelArch(kernel) : undefined) ?? 'aarch64';
  if (archText !== 'aarch64' && archText !== 'x86_64') {
    throw new UserError(`--arch: expected aarch64 or x86_64, got '${archText}'`);
  }
  const accelText = values.accel ?? spec.accel ?? 'auto';
  if (accelText !== 'tcg' && accelText !== 'kvm' && accelText !== 'auto') {
    throw new UserError(`--accel: expected tcg, kvm or auto, got '${accelText}'`);
  }
  const accel = accelText === 'auto' ? (archText === 'x86_64' ? 'kvm' : 'tcg') : accelText;
  if (archText === 'aarch64' && accel === 'kvm') {
    throw new UserError(
      `--accel kvm: aarch64 guests need an arm64 host for kvm (this host is ${process.arch}); use --accel tcg (the software CPU)`,
    );
  }
  if (archText === 'x86_64' && accel === 'tcg') {
    throw new UserError('--accel tcg: the software CPU is AArch64; x86_64 guests run with --accel kvm');
  }
  return { arch: archText, accel };
}

/** Build the VmSpec from a config file (optional) and command-line options (which win). */
export async function specFromOptions(values: RunValues, configPath?: string): Promise<VmSpec> {
  let spec: Partial<VmSpec> = {};
  let configGdb: { address?: string; wait?: boolean } = {};
  let configNets: NetRequest[] = [];
  if (configPath) {
    const { config, warnings } = loadConfig(configPath, { from: values.from });
    for (const w of warnings) process.stderr.write(`typevisor: warning: ${w}\n`);
    spec = {
      arch: config.arch,
      accel: config.accel === 'auto' ? undefined : config.accel,
      name: config.name,
      cpus: config.cpus,
      memoryMiB: config.memoryMiB,
      kernel: config.kernel,
      initrd: config.initrd,
      dtb: config.dtb,
      // cpus/memory defaults come from the options below
      cmdline: config.cmdline,
      console: config.console,
      disks: (config.disks ?? []).map((d) => ({ path: d.path, readOnly: !!d.readOnly })),
      rng: config.rng ?? true,
      balloon: config.balloon
        ? {
            targetMiB: config.balloon.targetMiB,
            deflateOnOom: config.balloon.demandPage,
            statsIntervalS: config.balloon.intervalS,
            autoThresholdMiB: config.balloon.thresholdMiB,
          }
        : false,
      vsock: config.vsock && { cid: config.vsock.cid, uds: config.vsock.uds },
      onReboot: config.onReboot === 'destroy' ? 'destroy' : 'restart',
    };
    configGdb = { address: config.gdb, wait: config.gdbWait };
    configNets = (config.nets ?? []).map(netRequestFromConfig);
  }
  const consoleKind = values.console ?? spec.console ?? 'serial';
  if (consoleKind !== 'serial' && consoleKind !== 'virtio') {
    throw new UserError(`--console: expected serial or virtio, got '${consoleKind}'`);
  }
  // Checked early (before a default image build); the architecture's own limit once it is known.
  const cpus =
    values.cpus !== undefined ? intOption('cpus', values.cpus, 1, Math.max(...Object.values(MAX_CPUS))) : (spec.cpus ?? 1);
  const memoryMiB = values.memory !== undefined ? intOption('memory', values.memory, 64, 16384) : (spec.memoryMiB ?? 512);
  let kernel = values.kernel ?? spec.kernel;
  let initrd = values.initrd ?? spec.initrd;
  if (!kernel && (values.arch ?? spec.arch ?? 'aarch64') !== 'aarch64') {
    throw new UserError('--kernel: x86_64 guests need a kernel (bzImage or ELF vmlinux); the default image is arm64');
  }
  if (!kernel) {
    const img = await buildDefaultImage({ log: (m: string) => process.stderr.write(`typevisor: ${m}\n`) });
    kernel = img.kernel;
    initrd ??= img.initrd;
  }
  const { arch, accel } = resolveEngine(values, spec, kernel);
  if (cpus > MAX_CPUS[arch]) throw new UserError(`--cpus: ${arch} guests run at most ${MAX_CPUS[arch]} vCPUs, got ${cpus}`);
  const disks = values.disk ? values.disk.map(parseDiskOption) : (spec.disks ?? []);
  const gdb = parseGdbOption(values.gdb ?? configGdb.address, values['gdb-wait'] ?? configGdb.wait);
  if (gdb && arch !== 'aarch64')
    throw new UserError('--gdb: the gdb stub serves aarch64 guests on the software CPU (tcg)');
  for (const d of disks) requireFile('--disk', d.path);
  const name = values.name ?? spec.name ?? 'guest';
  const netRequests = values.net ? values.net.map(parseNetOption) : configNets;
  const nets = resolveNets(netRequests, name, networkBridge);
  return {
    name,
    cpus,
    memoryMiB,
    kernel: requireFile('--kernel', kernel),
    initrd: initrd ? requireFile('--initrd', initrd) : undefined,
    dtb: values.dtb ? requireFile('--dtb', values.dtb) : spec.dtb,
    dumpDtb: values['dump-dtb'] ? resolve(values['dump-dtb']) : undefined,
    // With a user DTB, its /chosen/bootargs stand unless a command line is given.
    cmdline:
      values.cmdline ??
      spec.cmdline ??
      (arch === 'x86_64'
        ? DEFAULT_CMDLINE_X86
        : values.dtb || spec.dtb
          ? undefined
          : consoleKind === 'virtio'
            ? DEFAULT_CMDLINE_VIRTIO
            : DEFAULT_CMDLINE_SERIAL),
    arch,
    accel,
    console: consoleKind,
    disks,
    nets,
    rng: values['no-rng'] ? false : (spec.rng ?? true),
    balloon: spec.balloon || values.balloon || false,
    vsock:
      values.vsock !== undefined
        ? parseVsockOption(values.vsock)
        : spec.vsock && { cid: spec.vsock.cid, uds: spec.vsock.uds && checkVsockPath('vsock.uds', spec.vsock.uds) },
    deterministic: values.deterministic,
    vcpuThreads: vcpuThreadsOption(values['vcpu-threads']),
    logUnimplemented: values['log-unimplemented'],
    onReboot: spec.onReboot,
    gdb,
  };
}

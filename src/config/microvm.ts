// Importer for microvm.nix-style VM options (nixos-modules/microvm/options.nix), written as JSON
// or as literal Nix bindings (`microvm.mem = 512;`, see nix.ts).
//
// Three JSON spellings are accepted (and may be mixed):
//   {"microvm": {"mem": 512, "vcpu": 2, "qemu": {"extraArgs": [...]}}}
//   {"mem": 512, "vcpu": 2, "qemu": {"extraArgs": [...]}}            (the microvm options at top level)
//   {"microvm.mem": 512, "microvm.qemu.extraArgs": [...]}             (Nix's dotted paths, as in seed 004)
// plus "name" or "networking.hostName" for the VM's name (default: the file's name).
//
// Mapping: mem + balloonMem -> memoryMiB (microvm.nix's qemu runner passes `-m mem+balloonMem`), a
// balloon when balloonMem > 0 or balloon = true (initialBalloonMem -> balloon.targetMiB,
// deflateOnOOM -> balloon.demandPage), vcpu -> cpus, kernel -> kernel, initrdPath -> initrd,
// kernelParams -> cmdline, volumes -> disks (image, readOnly; id = serial or mountPoint),
// interfaces -> nets (tap: tap = id; bridge: bridge, tap = id; user: user-mode networking; macvtap:
// error), socket -> controlSocket, qemu.serialConsole -> console, vsock.cid -> vsock (the host socket
// in the VM's state directory). <hypervisor>.extraArgs: `-device virtio-rng-*` and
// `-device virtio-balloon*` are understood; anything else gets a warning (QEMU arguments are not
// interpreted). Shares, PCI/USB devices, graphics, forwardPorts, hotplug memory and the
// NixOS store options get a warning.

import { existsSync } from 'node:fs';
import { parseNixAttrs } from './nix.js';
import { guestCidProblem } from '../devices/virtio/vsock.js';
import { ConfigError, describe, didYouMean, nameFromFile } from './errors.js';
import {
  baseDirOf,
  finish,
  joinCmdline,
  resolvePath,
  type ImportOptions,
  type ImportResult,
} from './common.js';
import {
  parseJson,
  MAC_RE,
  MAX_CPUS,
  MAX_MEMORY_MIB,
  MIN_MEMORY_MIB,
  type DiskConfig,
  type NetConfig,
  type VmConfig,
} from './vmconfig.js';

export const MICROVM_HYPERVISORS = [
  'qemu',
  'cloud-hypervisor',
  'firecracker',
  'crosvm',
  'kvmtool',
  'stratovirt',
  'alioth',
  'vfkit',
];

/** microvm.nix options typevisor maps. */
const MAPPED = [
  'hypervisor',
  'mem',
  'balloonMem',
  'balloon',
  'initialBalloonMem',
  'deflateOnOOM',
  'vcpu',
  'kernel',
  'initrdPath',
  'kernelParams',
  'volumes',
  'interfaces',
  'socket',
  'vsock',
  'qemu',
  'cloud-hypervisor',
  'firecracker',
  'crosvm',
  'kvmtool',
  'stratovirt',
  'alioth',
  'vfkit',
];

/** microvm.nix options that exist but that typevisor does not support (warning). */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  shares: 'shared directories (9p/virtiofs)',
  devices: 'PCI/USB device pass-through',
  graphics: 'graphics',
  forwardPorts: 'user-mode port forwarding',
  hotplugMem: 'memory hotplug',
  hotpluggedMem: 'memory hotplug',
  cpu: 'CPU model selection',
  machineId: 'machine-id injection',
  storeOnDisk: 'the Nix store image',
  storeDiskType: 'the Nix store image',
  storeDiskErofsFlags: 'the Nix store image',
  storeDiskSquashfsFlags: 'the Nix store image',
  writableStoreOverlay: 'the writable Nix store overlay',
  registerClosure: 'Nix closure registration',
  optimize: 'closure optimization',
  prettyProcnames: 'process renaming',
  preStart: 'preStart scripts',
  user: 'running as another user',
  systemSymlink: 'the system symlink',
  credentialFiles: 'systemd credentials',
  virtiofsd: 'virtiofsd',
  guest: 'guest module options',
  binScripts: 'extra runner scripts',
  declaredRunner: 'the declared runner',
  runner: 'runner packages',
  vmHostPackages: 'host packages',
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets obj[a][b][c] = value for the path a.b.c, creating objects on the way. */
function setPath(obj: Obj, path: string[], value: unknown, file: string, full: string): void {
  let o = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    if (o[k] === undefined) o[k] = {};
    const next = o[k];
    if (!isObj(next))
      throw new ConfigError(
        { file, key: full },
        `conflicts with '${path.slice(0, i + 1).join('.')}', which is not an object`,
      );
    o = next;
  }
  const last = path[path.length - 1]!;
  if (isObj(o[last]) && isObj(value)) Object.assign(o[last] as Obj, value);
  else o[last] = value;
}

/** Expands dotted keys ("microvm.qemu.extraArgs") into nested objects. */
export function expandDotted(obj: Obj, file: string): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(obj)) {
    const value = isObj(v) ? expandDotted(v, file) : v;
    setPath(out, k.split('.'), value, file, k);
  }
  return out;
}

/** True when a parsed JSON object looks like microvm options (for format detection). */
export function looksLikeMicrovm(obj: Obj): boolean {
  return Object.keys(obj).some((k) => k === 'microvm' || k.startsWith('microvm.'));
}

/** True for Nix text (a .nix file, or text that is not a JSON object). */
export function isNixText(text: string, file: string): boolean {
  return /\.nix$/i.test(file) || !/^\s*\{\s*("|\})/.test(text);
}

/** Imports microvm.nix-style options from JSON text, or from Nix text of literal bindings. */
export function importMicrovm(text: string, file: string, options: ImportOptions = {}): ImportResult {
  const parsed: unknown = isNixText(text, file) ? parseNixAttrs(text, file) : parseJson(text, file);
  if (!isObj(parsed))
    throw new ConfigError({ file }, `expected a JSON object of microvm options, got ${describe(parsed)}`);
  return importMicrovmObject(parsed, file, options);
}

/** Imports microvm.nix-style options from an already parsed object. */
export function importMicrovmObject(input: Obj, file: string, options: ImportOptions = {}): ImportResult {
  const top = expandDotted(input, file);
  const baseDir = baseDirOf(file, options);
  const warnings: string[] = [];

  // Gather the microvm options: under "microvm", and/or at top level.
  const mv: Obj = {};
  let name: unknown;
  let nameKey = 'name';
  for (const [k, v] of Object.entries(top)) {
    if (k === 'microvm') {
      if (!isObj(v))
        throw new ConfigError(
          { file, key: 'microvm' },
          `expected an object of microvm options, got ${describe(v)}`,
        );
      Object.assign(mv, v);
    } else if (k === 'name') {
      name = v;
    } else if (k === 'networking' && isObj(v) && v.hostName !== undefined) {
      name = v.hostName;
      nameKey = 'networking.hostName';
      const others = Object.keys(v).filter((x) => x !== 'hostName');
      for (const o of others)
        warnings.push(`NixOS option 'networking.${o}' is not supported by typevisor; ignored`);
    } else {
      mv[k] = v;
    }
  }
  // Messages name keys the way the file nests them.
  const prefix = 'microvm' in top ? 'microvm.' : '';
  const key = (k: string): string => `${prefix}${k}`;
  const fail = (k: string, detail: string): never => {
    throw new ConfigError({ file, key: key(k) }, detail);
  };
  const int = (k: string, v: unknown, min: number, max: number, unit = ''): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      fail(k, `expected an integer from ${min} to ${max}${unit}, got ${describe(v)}`);
    }
    return v as number;
  };
  const str = (k: string, v: unknown): string => {
    if (typeof v !== 'string' || v.trim() === '') fail(k, `expected a non-empty string, got ${describe(v)}`);
    return v as string;
  };
  const bool = (k: string, v: unknown): boolean => {
    if (typeof v !== 'boolean') fail(k, `expected true or false, got ${describe(v)}`);
    return v as boolean;
  };
  const list = (k: string, v: unknown): unknown[] => {
    if (!Array.isArray(v)) fail(k, `expected a list, got ${describe(v)}`);
    return v as unknown[];
  };
  const obj = (k: string, v: unknown, allowed: string[]): Obj => {
    if (!isObj(v)) fail(k, `expected an object, got ${describe(v)}`);
    for (const sub of Object.keys(v as Obj)) {
      if (!allowed.includes(sub))
        fail(
          `${k}.${sub}`,
          `unknown option${didYouMean(sub, allowed)}; expected one of ${allowed.join(', ')}`,
        );
    }
    return v as Obj;
  };

  const config: VmConfig = { name: nameFromFile(file) };
  if (name !== undefined) {
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
      throw new ConfigError(
        { file, key: nameKey },
        `expected a name of 1 to 64 letters, digits, _, . or -, got ${describe(name)}`,
      );
    }
    config.name = name;
  }

  const hypervisor = mv.hypervisor === undefined ? 'qemu' : str('hypervisor', mv.hypervisor);
  if (!MICROVM_HYPERVISORS.includes(hypervisor)) {
    warnings.push(
      `microvm hypervisor '${hypervisor}' is unknown${didYouMean(hypervisor, MICROVM_HYPERVISORS)}; typevisor runs the VM itself`,
    );
  }

  const mem = mv.mem === undefined ? undefined : int('mem', mv.mem, MIN_MEMORY_MIB, MAX_MEMORY_MIB, ' (MiB)');
  const balloonMem =
    mv.balloonMem === undefined ? 0 : int('balloonMem', mv.balloonMem, 0, MAX_MEMORY_MIB, ' (MiB)');
  if (mem !== undefined || balloonMem > 0) {
    config.memoryMiB = (mem ?? 512) + balloonMem;
    if (config.memoryMiB > MAX_MEMORY_MIB)
      fail('balloonMem', `mem + balloonMem must be at most ${MAX_MEMORY_MIB} MiB`);
  }
  if (balloonMem > 0) config.balloon = {};
  if (mv.balloon !== undefined) {
    if (bool('balloon', mv.balloon)) config.balloon ??= {};
    else if (balloonMem === 0) delete config.balloon;
  }
  if (mv.initialBalloonMem !== undefined) {
    const init = int('initialBalloonMem', mv.initialBalloonMem, 0, MAX_MEMORY_MIB, ' (MiB)');
    const total = config.memoryMiB ?? 512;
    if (init >= total)
      fail('initialBalloonMem', `expected less than the VM's memory (${total} MiB), got ${init}`);
    if (init > 0) (config.balloon ??= {}).targetMiB = total - init;
  }
  if (mv.deflateOnOOM !== undefined && bool('deflateOnOOM', mv.deflateOnOOM))
    (config.balloon ??= {}).demandPage = true;

  if (mv.vcpu !== undefined) {
    const n = int('vcpu', mv.vcpu, 1, 4096);
    config.cpus = Math.min(n, MAX_CPUS.aarch64);
    if (n > config.cpus)
      warnings.push(
        `microvm ${key('vcpu')} ${n}: typevisor runs at most ${MAX_CPUS.aarch64} vCPUs; the guest gets ${config.cpus}`,
      );
  }
  if (mv.kernel !== undefined) config.kernel = resolvePath(baseDir, str('kernel', mv.kernel));
  if (mv.initrdPath !== undefined) config.initrd = resolvePath(baseDir, str('initrdPath', mv.initrdPath));
  if (mv.kernelParams !== undefined) {
    const params = list('kernelParams', mv.kernelParams).map((p, i) => {
      if (typeof p !== 'string') fail(`kernelParams[${i}]`, `expected a string, got ${describe(p)}`);
      return p as string;
    });
    const c = joinCmdline(...params);
    if (c !== undefined) config.cmdline = c;
  }

  if (mv.volumes !== undefined) {
    const disks: DiskConfig[] = [];
    list('volumes', mv.volumes).forEach((v, i) => {
      const k = `volumes[${i}]`;
      const o = obj(k, v, [
        'image',
        'mountPoint',
        'size',
        'autoCreate',
        'fsType',
        'label',
        'readOnly',
        'serial',
        'direct',
        'mkfsExtraArgs',
      ]);
      if (o.image === undefined) fail(`${k}.image`, 'missing; expected the path of a raw disk image');
      const d: DiskConfig = { path: resolvePath(baseDir, str(`${k}.image`, o.image)), readOnly: false };
      if (o.readOnly !== undefined) d.readOnly = bool(`${k}.readOnly`, o.readOnly);
      if (o.serial !== undefined) d.id = str(`${k}.serial`, o.serial);
      else if (o.mountPoint !== undefined && o.mountPoint !== null)
        d.id = str(`${k}.mountPoint`, o.mountPoint);
      if (o.size !== undefined) int(`${k}.size`, o.size, 1, Number.MAX_SAFE_INTEGER, ' (MiB)');
      const autoCreate = o.autoCreate === undefined ? true : bool(`${k}.autoCreate`, o.autoCreate);
      if (autoCreate && !existsSync(d.path)) {
        warnings.push(
          `microvm ${key(k)}: ${d.path} does not exist; microvm.nix would create it${o.size !== undefined ? ` (${String(o.size)} MiB` : ' ('}${o.fsType !== undefined ? `, ${String(o.fsType)})` : ')'} but typevisor does not: create it before booting`,
        );
      }
      disks.push(d);
    });
    config.disks = disks;
  }

  if (mv.interfaces !== undefined) {
    const nets: NetConfig[] = [];
    list('interfaces', mv.interfaces).forEach((v, i) => {
      const k = `interfaces[${i}]`;
      const o = obj(k, v, ['type', 'id', 'mac', 'bridge', 'macvtap']);
      const type = o.type === undefined ? 'user' : str(`${k}.type`, o.type);
      const n: NetConfig = {};
      if (o.mac !== undefined) {
        const mac = str(`${k}.mac`, o.mac);
        if (!MAC_RE.test(mac))
          fail(`${k}.mac`, `expected a MAC address like 02:00:00:00:00:01, got ${describe(o.mac)}`);
        n.mac = mac.toLowerCase();
      }
      const id = o.id === undefined ? undefined : str(`${k}.id`, o.id);
      switch (type) {
        case 'tap':
          if (id === undefined)
            fail(`${k}.id`, 'missing; a tap interface needs the name of its host tap device');
          n.tap = id;
          break;
        case 'bridge':
          if (o.bridge === undefined)
            fail(`${k}.bridge`, 'missing; a bridge interface needs the host bridge');
          n.bridge = str(`${k}.bridge`, o.bridge);
          if (id) n.tap = id;
          break;
        case 'user':
          break;
        case 'macvtap':
          fail(
            `${k}.type`,
            `macvtap is not supported by typevisor (it has no macvtap backend); use type = "bridge" with the host bridge, or type = "tap"`,
          );
          break;
        default:
          fail(`${k}.type`, `expected one of 'user', 'tap', 'macvtap', 'bridge', got ${describe(type)}`);
      }
      nets.push(n);
    });
    config.nets = nets;
  }

  if (mv.vsock !== undefined && mv.vsock !== null) {
    if (!isObj(mv.vsock)) fail('vsock', `expected an object, got ${describe(mv.vsock)}`);
    const vs = mv.vsock as Obj;
    if (vs.cid !== undefined && vs.cid !== null) {
      if (typeof vs.cid !== 'number')
        fail('vsock.cid', `expected an integer from 3 to 4294967294, got ${describe(vs.cid)}`);
      const bad = guestCidProblem(vs.cid as number);
      if (bad) fail('vsock.cid', bad);
      config.vsock = { cid: vs.cid as number };
    }
    for (const sub of Object.keys(vs)) {
      if (sub !== 'cid')
        warnings.push(`microvm option '${key(`vsock.${sub}`)}' is not supported by typevisor; ignored`);
    }
  }
  if (mv.socket !== undefined && mv.socket !== null)
    config.controlSocket = resolvePath(baseDir, str('socket', mv.socket));

  // Per-hypervisor options.
  for (const hv of MICROVM_HYPERVISORS) {
    const v = mv[hv];
    if (v === undefined) continue;
    const allowed =
      hv === 'qemu'
        ? ['extraArgs', 'serialConsole', 'machine', 'machineOpts', 'package', 'pcieRootPorts']
        : ['extraArgs', 'package', 'pivotRoot', 'gpu'];
    const o = obj(hv, v, allowed);
    if (o.extraArgs !== undefined) {
      const args = list(`${hv}.extraArgs`, o.extraArgs).map((a, i) => {
        if (typeof a !== 'string') fail(`${hv}.extraArgs[${i}]`, `expected a string, got ${describe(a)}`);
        return a as string;
      });
      mapExtraArgs(args, config, warnings, key(`${hv}.extraArgs`), hv, hypervisor);
    }
    if (hv === 'qemu' && o.serialConsole !== undefined)
      config.console = bool('qemu.serialConsole', o.serialConsole) ? 'serial' : 'virtio';
    for (const sub of Object.keys(o)) {
      if (sub === 'extraArgs' || (hv === 'qemu' && sub === 'serialConsole')) continue;
      warnings.push(`microvm option '${key(`${hv}.${sub}`)}' is not supported by typevisor; ignored`);
    }
  }

  for (const k of Object.keys(mv)) {
    if (MAPPED.includes(k)) continue;
    const what = KNOWN_UNSUPPORTED[k];
    if (what) warnings.push(`microvm option '${key(k)}' (${what}) is not supported by typevisor; ignored`);
    else
      warnings.push(
        `microvm option '${key(k)}' is unknown${didYouMean(k, [...MAPPED, ...Object.keys(KNOWN_UNSUPPORTED)])}; ignored`,
      );
  }
  return finish(config, warnings);
}

/** Understands the few QEMU arguments with a typevisor meaning; warns about the rest. */
function mapExtraArgs(
  args: string[],
  config: VmConfig,
  warnings: string[],
  where: string,
  hv: string,
  selected: string,
): void {
  // Arguments may be one per element or several in one element; look at the words in order.
  const words = args.flatMap((a, i) =>
    a
      .trim()
      .split(/\s+/)
      .filter((w) => w !== '')
      .map((w) => ({ w, i })),
  );
  const mapped = new Set<number>();
  const unmapped = new Set<number>();
  for (let j = 0; j < words.length; j++) {
    const cur = words[j]!;
    const next = words[j + 1];
    if (hv === 'qemu' && cur.w === '-device' && next && /^virtio-rng(-device|-pci)?(,|$)/.test(next.w)) {
      config.rng = true;
    } else if (
      hv === 'qemu' &&
      cur.w === '-device' &&
      next &&
      /^virtio-balloon(-device|-pci)?(,|$)/.test(next.w)
    ) {
      config.balloon ??= {};
    } else {
      unmapped.add(cur.i);
      continue;
    }
    mapped.add(cur.i).add(next.i);
    j++;
  }
  const ignored = args.filter(
    (a, i) => unmapped.has(i) || (!mapped.has(i) && a.trim() !== '' && !words.some((w) => w.i === i)),
  );
  if (ignored.length > 0) {
    const label = hv === 'qemu' ? 'QEMU' : hv;
    const unused = hv !== selected ? ` (and the selected hypervisor is '${selected}')` : '';
    warnings.push(
      `microvm ${where}: ${label}-specific arguments are not interpreted by typevisor${unused}; ignored: ${ignored.map((a) => JSON.stringify(a)).join(' ')}`,
    );
  }
}

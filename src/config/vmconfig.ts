// typevisor's own VM configuration (JSON) and its validation.
//
// A config file is one JSON object. Every key is optional except that a VM needs a kernel to boot
// (the CLI falls back to the default guest image when there is none). Paths in a file are resolved
// relative to the file's directory. Unknown keys are errors, with a "did you mean" suggestion.
//
//   {
//     "name": "web",                 "arch": "aarch64",          "accel": "tcg",
//     "cpus": 2,                     "memoryMiB": 512,           "maxMemoryMiB": 1024,
//     "kernel": "Image",             "initrd": "initramfs.cpio.gz", "dtb": "guest.dtb",
//     "cmdline": "console=ttyAMA0",  "console": "serial",
//     "disks": [{ "path": "disk.img", "readOnly": false }],
//     "nets": [{ "mac": "02:00:00:00:00:01", "bridge": "br0" }],
//     "balloon": { "targetMiB": 512 }, "rng": true,
//     "vsock": { "cid": 3, "uds": "web.vsock" },
//     "onPoweroff": "destroy", "onReboot": "restart", "onCrash": "destroy",
//     "controlSocket": "web.sock",
//     "gdb": "127.0.0.1:1234",       "gdbWait": true
//   }

import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, describe, didYouMean, nameFromFile } from './errors.js';
import { guestCidProblem } from '../devices/virtio/vsock.js';
import { MAX_MTU, MIN_MTU } from '../devices/virtio/net.js';
import { BOARD_MAX_CPUS } from '../machine/machine.js';

export const ARCHES = ['aarch64', 'x86_64'] as const;
export type Arch = (typeof ARCHES)[number];
export const ACCELS = ['tcg', 'kvm', 'auto'] as const;
export type Accel = (typeof ACCELS)[number];
export const CONSOLES = ['serial', 'virtio'] as const;
export type ConsoleKind = (typeof CONSOLES)[number];
/** What happens when the guest powers off, reboots or crashes: xl's actions (xl.cfg(5)). */
export const LIFECYCLE_ACTIONS = [
  'destroy',
  'restart',
  'preserve',
  'rename-restart',
  'coredump-destroy',
  'coredump-restart',
] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

/** vCPU limits per architecture: those of the board that runs it. */
export const MAX_CPUS: Record<Arch, number> = {
  aarch64: BOARD_MAX_CPUS['arm64-virt'],
  x86_64: BOARD_MAX_CPUS['x86-microvm'],
};
export const MIN_MEMORY_MIB = 16;
export const MAX_MEMORY_MIB = 1024 * 1024;

export interface DiskConfig {
  /** Raw disk image (absolute once loaded). */
  path: string;
  readOnly: boolean;
  /** Writes go to memory and are dropped when the VM stops (Fuchsia's `volatile`). */
  volatile?: boolean;
  /** A name for the disk (xl's vdev, microvm's mountPoint...). */
  id?: string;
}

/**
 * One NIC (virtio-net). Its host side: `network` (a typevisor network), `bridge` (a new TAP on that
 * bridge; `tap` names it), `tap` alone (that TAP device), or none of these: user-mode networking
 * (passt), where `hostfwd` forwards host ports ("tcp::8080-:80", QEMU's syntax).
 */
export interface NetConfig {
  mac?: string;
  network?: string;
  bridge?: string;
  tap?: string;
  hostfwd?: string[];
  /** The MTU the guest's NIC gets (and a TAP's); default 65520 user-mode, 1500 on a TAP or bridge. */
  mtu?: number;
  /** Device model; typevisor implements virtio-net. */
  model?: string;
}

export interface BalloonConfig {
  /** Initial balloon target: the memory the guest should keep (MiB). */
  targetMiB?: number;
  /** Fuchsia's balloon-demand-page: deflate on the guest's demand. */
  demandPage?: boolean;
  /** Seconds between balloon statistics polls (Fuchsia's balloon-interval, Firecracker's stats_polling_interval_s). */
  intervalS?: number;
  /**
   * Fuchsia's balloon-threshold (MiB of guest memory kept available): with intervalS, Fuchsia's
   * automatic policy sets the target from the guest's available memory at every poll.
   */
  thresholdMiB?: number;
}

/** virtio-vsock: the guest's CID and the host side's Unix socket (Firecracker's convention). */
export interface VsockConfig {
  cid: number;
  uds?: string;
}

export interface VmConfig {
  name: string;
  arch?: Arch;
  accel?: Accel;
  cpus?: number;
  memoryMiB?: number;
  /** Memory ceiling for the balloon (MiB); at least memoryMiB. */
  maxMemoryMiB?: number;
  kernel?: string;
  initrd?: string;
  dtb?: string;
  cmdline?: string;
  console?: ConsoleKind;
  disks?: DiskConfig[];
  nets?: NetConfig[];
  balloon?: BalloonConfig;
  rng?: boolean;
  vsock?: VsockConfig;
  onPoweroff?: LifecycleAction;
  onReboot?: LifecycleAction;
  onCrash?: LifecycleAction;
  /** typevisor's control socket for this VM. */
  controlSocket?: string;
  /** A QMP-compatible socket. */
  qmpSocket?: string;
  /** Serve the GDB remote protocol on [HOST:]PORT (like run --gdb). */
  gdb?: string;
  /** Hold the guest at its first instruction until gdb continues it (run --gdb-wait). */
  gdbWait?: boolean;
  /** Features the source config asked for that typevisor does not support yet. */
  warnings?: string[];
}

/** The top-level keys of a VmConfig, in the order a written config lists them. */
export const VMCONFIG_KEYS = [
  'name',
  'arch',
  'accel',
  'cpus',
  'memoryMiB',
  'maxMemoryMiB',
  'kernel',
  'initrd',
  'dtb',
  'cmdline',
  'console',
  'disks',
  'nets',
  'balloon',
  'rng',
  'vsock',
  'onPoweroff',
  'onReboot',
  'onCrash',
  'controlSocket',
  'qmpSocket',
  'gdb',
  'gdbWait',
  'warnings',
] as const;

const DISK_KEYS = ['path', 'readOnly', 'volatile', 'id'] as const;
const NET_KEYS = ['mac', 'network', 'bridge', 'tap', 'hostfwd', 'mtu', 'model'] as const;
const BALLOON_KEYS = ['targetMiB', 'demandPage', 'intervalS', 'thresholdMiB'] as const;
const VSOCK_KEYS = ['cid', 'uds'] as const;

export const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** A TCP listen address `[HOST:]PORT` (HOST may be [IPv6]; default 127.0.0.1), or undefined if malformed. */
export function parseListenAddress(text: string): { host: string; port: number } | undefined {
  const m = /^(?:(?:\[([^\]]+)\]|([^:]*)):)?(\d{1,5})$/.exec(text.trim());
  if (!m || Number(m[3]) > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

export interface ValidateOptions {
  /** Directory relative paths are resolved against (default: the file's directory). */
  baseDir?: string;
  /** Leave relative paths as written (default false). */
  keepRelativePaths?: boolean;
}

/** Checks a parsed JSON value against the VmConfig schema and returns a normalized VmConfig. */
export function validateConfig(obj: unknown, file: string, options: ValidateOptions = {}): VmConfig {
  const v = new Validator(file, options);
  return v.config(obj);
}

type Obj = Record<string, unknown>;

class Validator {
  private readonly baseDir: string;
  constructor(
    private readonly file: string,
    private readonly options: ValidateOptions,
  ) {
    this.baseDir = options.baseDir ?? dirname(resolve(file));
  }

  fail(key: string, detail: string): never {
    throw new ConfigError({ file: this.file, key }, detail);
  }

  expected(key: string, what: string, got: unknown): never {
    this.fail(key, `expected ${what}, got ${describe(got)}`);
  }

  object(key: string, v: unknown, allowed: readonly string[]): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.expected(key, 'an object', v);
    const o = v as Obj;
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) {
        const where = key ? `${key}.${k}` : k;
        this.fail(where, `unknown key${didYouMean(k, allowed)}; expected one of ${allowed.join(', ')}`);
      }
    }
    return o;
  }

  string(key: string, v: unknown, nonEmpty = true): string {
    if (typeof v !== 'string') this.expected(key, 'a string', v);
    if (nonEmpty && v.trim() === '') this.expected(key, 'a non-empty string', v);
    return v;
  }

  path(key: string, v: unknown): string {
    const s = this.string(key, v);
    if (this.options.keepRelativePaths || isAbsolute(s)) return s;
    return resolve(this.baseDir, s);
  }

  bool(key: string, v: unknown): boolean {
    if (typeof v !== 'boolean') this.expected(key, 'true or false', v);
    return v;
  }

  int(key: string, v: unknown, min: number, max: number, unit = ''): number {
    const range = `an integer from ${min} to ${max}${unit}`;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.expected(key, range, v);
    if (v < min || v > max) this.expected(key, range, v);
    return v;
  }

  oneOf<T extends string>(key: string, v: unknown, values: readonly T[]): T {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      const hint = typeof v === 'string' ? didYouMean(v, values) : '';
      this.fail(key, `expected one of ${values.map((x) => `'${x}'`).join(', ')}, got ${describe(v)}${hint}`);
    }
    return v as T;
  }

  array(key: string, v: unknown): unknown[] {
    if (!Array.isArray(v)) this.expected(key, 'a list', v);
    return v;
  }

  config(input: unknown): VmConfig {
    const o = this.object('', input, VMCONFIG_KEYS);
    const c: VmConfig = { name: o.name === undefined ? nameFromFile(this.file) : this.name(o.name) };
    if (o.arch !== undefined) c.arch = this.oneOf('arch', o.arch, ARCHES);
    if (o.accel !== undefined) c.accel = this.oneOf('accel', o.accel, ACCELS);
    const arch = c.arch ?? 'aarch64';
    if (o.cpus !== undefined) c.cpus = this.int('cpus', o.cpus, 1, MAX_CPUS[arch], ` (the ${arch} limit)`);
    if (o.memoryMiB !== undefined)
      c.memoryMiB = this.int('memoryMiB', o.memoryMiB, MIN_MEMORY_MIB, MAX_MEMORY_MIB);
    if (o.maxMemoryMiB !== undefined) {
      c.maxMemoryMiB = this.int('maxMemoryMiB', o.maxMemoryMiB, MIN_MEMORY_MIB, MAX_MEMORY_MIB);
      const mem = c.memoryMiB ?? 512;
      if (c.maxMemoryMiB < mem) {
        this.fail('maxMemoryMiB', `expected at least memoryMiB (${mem}), got ${c.maxMemoryMiB}`);
      }
    }
    for (const k of ['kernel', 'initrd', 'dtb'] as const) {
      if (o[k] !== undefined) c[k] = this.path(k, o[k]);
    }
    if (o.cmdline !== undefined) c.cmdline = this.string('cmdline', o.cmdline, false);
    if (o.console !== undefined) c.console = this.oneOf('console', o.console, CONSOLES);
    if (o.disks !== undefined)
      c.disks = this.array('disks', o.disks).map((d, i) => this.disk(`disks[${i}]`, d));
    if (o.nets !== undefined) c.nets = this.array('nets', o.nets).map((n, i) => this.net(`nets[${i}]`, n));
    if (o.balloon !== undefined) c.balloon = this.balloon(o.balloon, c);
    if (o.rng !== undefined) c.rng = this.bool('rng', o.rng);
    if (o.vsock !== undefined) c.vsock = this.vsock(o.vsock);
    for (const k of ['onPoweroff', 'onReboot', 'onCrash'] as const) {
      if (o[k] !== undefined) c[k] = this.oneOf(k, o[k], LIFECYCLE_ACTIONS);
    }
    for (const k of ['controlSocket', 'qmpSocket'] as const) {
      if (o[k] !== undefined) c[k] = this.path(k, o[k]);
    }
    if (o.gdb !== undefined) {
      c.gdb = this.string('gdb', o.gdb);
      if (!parseListenAddress(c.gdb))
        this.expected('gdb', "'[HOST:]PORT' with a port from 0 to 65535", o.gdb);
    }
    if (o.gdbWait !== undefined) c.gdbWait = this.bool('gdbWait', o.gdbWait);
    if (o.warnings !== undefined) {
      c.warnings = this.array('warnings', o.warnings).map((w, i) => this.string(`warnings[${i}]`, w));
    }
    return c;
  }

  name(v: unknown): string {
    const s = this.string('name', v);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(s)) {
      this.expected(
        'name',
        'a name of 1 to 64 letters, digits, _, . or - (starting with a letter or digit)',
        v,
      );
    }
    return s;
  }

  disk(key: string, v: unknown): DiskConfig {
    const o = this.object(key, v, DISK_KEYS);
    if (o.path === undefined) this.fail(`${key}.path`, 'missing; expected the path of a raw disk image');
    const d: DiskConfig = { path: this.path(`${key}.path`, o.path), readOnly: false };
    if (o.readOnly !== undefined) d.readOnly = this.bool(`${key}.readOnly`, o.readOnly);
    if (o.volatile !== undefined) d.volatile = this.bool(`${key}.volatile`, o.volatile);
    if (o.id !== undefined) d.id = this.string(`${key}.id`, o.id);
    return d;
  }

  net(key: string, v: unknown): NetConfig {
    const o = this.object(key, v, NET_KEYS);
    const n: NetConfig = {};
    if (o.mac !== undefined) {
      const mac = this.string(`${key}.mac`, o.mac);
      if (!MAC_RE.test(mac)) this.expected(`${key}.mac`, 'a MAC address like 02:00:00:00:00:01', o.mac);
      n.mac = mac.toLowerCase();
    }
    if (o.network !== undefined) n.network = this.string(`${key}.network`, o.network);
    if (o.bridge !== undefined) n.bridge = this.string(`${key}.bridge`, o.bridge);
    if (o.tap !== undefined) n.tap = this.string(`${key}.tap`, o.tap);
    if (o.hostfwd !== undefined) {
      n.hostfwd = this.array(`${key}.hostfwd`, o.hostfwd).map((h, i) => this.string(`${key}.hostfwd[${i}]`, h));
    }
    if (o.mtu !== undefined) n.mtu = this.int(`${key}.mtu`, o.mtu, MIN_MTU, MAX_MTU, ' bytes');
    if (o.model !== undefined) n.model = this.string(`${key}.model`, o.model);
    return n;
  }

  vsock(v: unknown): VsockConfig {
    const o = this.object('vsock', v, VSOCK_KEYS);
    if (o.cid === undefined) this.fail('vsock.cid', "missing; expected the guest's CID (3 to 4294967294)");
    if (typeof o.cid !== 'number') this.expected('vsock.cid', 'an integer from 3 to 4294967294', o.cid);
    const bad = guestCidProblem(o.cid);
    if (bad) this.fail('vsock.cid', bad);
    const vs: VsockConfig = { cid: o.cid };
    if (o.uds !== undefined) vs.uds = this.path('vsock.uds', o.uds);
    return vs;
  }

  balloon(v: unknown, c: VmConfig): BalloonConfig {
    const o = this.object('balloon', v, BALLOON_KEYS);
    const b: BalloonConfig = {};
    const ceiling = c.maxMemoryMiB ?? c.memoryMiB ?? MAX_MEMORY_MIB;
    if (o.targetMiB !== undefined) b.targetMiB = this.int('balloon.targetMiB', o.targetMiB, 1, ceiling);
    if (o.demandPage !== undefined) b.demandPage = this.bool('balloon.demandPage', o.demandPage);
    if (o.intervalS !== undefined) b.intervalS = this.int('balloon.intervalS', o.intervalS, 0, 86400);
    if (o.thresholdMiB !== undefined)
      b.thresholdMiB = this.int('balloon.thresholdMiB', o.thresholdMiB, 0, MAX_MEMORY_MIB);
    return b;
  }
}

/** Parses JSON text with a ConfigError (file:line, column) on a syntax error. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e))
      .replace(/ in JSON at position \d+.*$/s, '')
      .replace(/, ".*" is not valid JSON$/s, '');
    const pos = jsonErrorOffset(text);
    if (pos === undefined) throw new ConfigError({ file }, `invalid JSON: ${msg}`);
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    const col = pos - before.lastIndexOf('\n');
    throw new ConfigError({ file, line }, `invalid JSON at column ${col}: ${msg}`);
  }
}

/**
 * The offset of the first character that makes `text` invalid JSON (V8 does not always say):
 * a prefix that is merely incomplete stays parseable-so-far, and once a prefix is invalid every
 * longer one is too, so a binary search finds the boundary.
 */
function jsonErrorOffset(text: string): number | undefined {
  const invalid = (s: string): boolean => {
    try {
      JSON.parse(s);
      return false;
    } catch (e) {
      const m = e instanceof Error ? e.message : '';
      const at = /at position (\d+)/.exec(m);
      if (at) return Number(at[1]) < s.length; // an error at the very end only means "incomplete"
      return !/Unexpected end of JSON input/.test(m);
    }
  };
  if (!invalid(text)) return text.length > 0 ? text.length - 1 : undefined;
  let lo = 0;
  let hi = text.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (invalid(text.slice(0, mid))) hi = mid;
    else lo = mid;
  }
  return hi - 1;
}

/** The config as typevisor JSON text (keys in schema order, no undefined values). */
export function formatConfig(c: VmConfig): string {
  const out: Record<string, unknown> = {};
  for (const k of VMCONFIG_KEYS) {
    const v = c[k];
    if (v === undefined) continue;
    if (Array.isArray(v) && v.length === 0 && k === 'warnings') continue;
    out[k] = v;
  }
  return JSON.stringify(out, null, 2) + '\n';
}

export { loadConfig } from './load.js';
export type { LoadOptions, LoadResult, ConfigFormat } from './load.js';

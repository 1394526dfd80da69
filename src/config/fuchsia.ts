// Importer for Fuchsia guest configs (the `vmm` / `guest launch` packages' guest.cfg).
//
// Fuchsia's guest_config.cc changed its keys across three generations; all are accepted:
//
//  1. Flat flags (garnet/bin/guest, 2017-18): a guest.cfg of `--key=value` flags or `key=value`
//     lines, the same options as the vmm command line: --kernel, --ramdisk, --block=PATH[,ro|rw|
//     volatile][,fdio|qcow], --cmdline, --cmdline-append (later --cmdline-add), --cpus,
//     --memory=SIZE (bytes, or k/M/G suffix), --dtb_overlay (later --dtb-overlay),
//     --balloon-demand-page, --balloon-interval=SECONDS, --balloon-threshold=PAGES, --display,
//     --gic=2|3, --network, --block-wait, --virtio-gpu=false ...
//  2. The JSON object of seed 000 (garnet/bin/guest, 2018): "kernel", "ramdisk", "block",
//     "cmdline", "balloon-demand-page", "balloon-interval", "balloon-threshold" — every value a
//     string ("true", "1234"); later also "zircon"/"linux", "cpus", "memory", "block-wait".
//  3. The JSON of src/virtualization/bin/vmm (2019+): the kernel given as "linux": PATH or
//     "zircon": PATH; "cpus", "memory", "default-net", "net", "interrupt", "virtio-balloon",
//     "virtio-console", "virtio-gpu", "virtio-magma", "virtio-rng", "virtio-sound",
//     "virtio-sound-input", "virtio-vsock", "dtb-overlay"; a repeatable option ("block",
//     "cmdline-add", "memory", "net", "interrupt") may be a list of strings.
//
// Fuchsia reads values as strings; JSON numbers and booleans are accepted too. Paths under
// /pkg/data/ (the guest package's data directory) are read from the config file's directory.
// Zircon guests are refused: only Linux guests boot.
//
// Mapping: kernel|linux -> kernel, ramdisk -> initrd, block -> disks, cmdline -> cmdline,
// cmdline-add|cmdline-append -> appended to cmdline, cpus -> cpus, memory -> memoryMiB,
// balloon-* -> balloon {demandPage, intervalS, thresholdMiB (pages of 4 KiB, rounded up to MiB)},
// virtio-balloon -> balloon on/off, virtio-console -> console virtio/serial, virtio-rng -> rng,
// virtio-vsock -> vsock with Fuchsia's guest CID 3 (the host socket in the VM's state directory),
// default-net -> one net with Fuchsia's default MAC 02:1a:11:00:01:00, net -> nets. Devices
// typevisor lacks (gpu, sound, magma, wl, display, interrupt pass-through, dtb overlays):
// a warning when enabled.

import { ConfigError, didYouMean, describe, nameFromFile } from './errors.js';
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
  type VmConfig,
} from './vmconfig.js';

export type FuchsiaGeneration = 1 | 2 | 3;

/** Fuchsia's default guest MAC (guest_config.cc: locally administered + Google OUI). */
export const FUCHSIA_DEFAULT_MAC = '02:1a:11:00:01:00';
/** The CID Fuchsia's vmm gives its guest (fuchsia.virtualization's DEFAULT_GUEST_CID). */
export const FUCHSIA_GUEST_CID = 3;

type Kind = 'path' | 'string' | 'bool' | 'number' | 'size' | 'spec';

interface KeyInfo {
  kind: Kind;
  /** May be given more than once (a list in JSON). */
  repeated?: boolean;
}

/** Every key of the three generations. */
export const FUCHSIA_KEYS: Record<string, KeyInfo> = {
  kernel: { kind: 'path' },
  linux: { kind: 'path' },
  zircon: { kind: 'path' },
  ramdisk: { kind: 'path' },
  block: { kind: 'spec', repeated: true },
  cmdline: { kind: 'string' },
  'cmdline-add': { kind: 'string', repeated: true },
  'cmdline-append': { kind: 'string', repeated: true },
  'dtb-overlay': { kind: 'path' },
  dtb_overlay: { kind: 'path' },
  cpus: { kind: 'number' },
  memory: { kind: 'size', repeated: true },
  'balloon-demand-page': { kind: 'bool' },
  'balloon-interval': { kind: 'number' },
  'balloon-threshold': { kind: 'number' },
  display: { kind: 'string' },
  network: { kind: 'bool' },
  'block-wait': { kind: 'bool' },
  'pvblk-enabled': { kind: 'bool' },
  gic: { kind: 'number' },
  vmem: { kind: 'string' },
  'host-memory': { kind: 'bool' },
  'legacy-net': { kind: 'bool' },
  interrupt: { kind: 'string', repeated: true },
  net: { kind: 'string', repeated: true },
  'default-net': { kind: 'bool' },
  'virtio-balloon': { kind: 'bool' },
  'virtio-console': { kind: 'bool' },
  'virtio-gpu': { kind: 'bool' },
  'virtio-input': { kind: 'bool' },
  'virtio-magma': { kind: 'bool' },
  'virtio-rng': { kind: 'bool' },
  'virtio-sound': { kind: 'bool' },
  'virtio-sound-input': { kind: 'bool' },
  'virtio-vsock': { kind: 'bool' },
  'virtio-wl': { kind: 'bool' },
  'virtio-mem': { kind: 'bool' },
};

/** Keys that only generation 3 has (used to report the generation). */
const GEN3_KEYS = ['linux', 'zircon', 'default-net', 'net', 'cmdline-add', 'dtb-overlay', 'interrupt'];

interface Entry {
  key: string;
  value: string;
  /** For messages: `block[1]` in JSON, the key elsewhere. */
  where: string;
  line?: number;
}

/** Imports a Fuchsia guest config of any generation (JSON or flat flags). */
export function importFuchsia(
  text: string,
  file: string,
  options: ImportOptions = {},
): ImportResult & { generation: FuchsiaGeneration } {
  const trimmed = text.trimStart();
  let entries: Entry[];
  let generation: FuchsiaGeneration;
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const obj = parseJson(text, file);
    entries = jsonEntries(obj, file);
    const keys = new Set(entries.map((e) => e.key));
    generation = GEN3_KEYS.some((k) => keys.has(k)) || [...keys].some((k) => k.startsWith('virtio-')) ? 3 : 2;
  } else {
    entries = flatEntries(text, file);
    generation = 1;
  }
  const result = build(entries, file, options);
  return { ...result, generation };
}

function jsonEntries(obj: unknown, file: string): Entry[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new ConfigError({ file }, `expected a JSON object of guest options, got ${describe(obj)}`);
  }
  const out: Entry[] = [];
  for (const [key, v] of Object.entries(obj as Record<string, unknown>)) {
    const info = FUCHSIA_KEYS[key];
    if (!info) {
      throw new ConfigError(
        { file, key },
        `unknown Fuchsia guest option${didYouMean(key, Object.keys(FUCHSIA_KEYS))}`,
      );
    }
    const items = Array.isArray(v) ? v : [v];
    if (Array.isArray(v) && !info.repeated) {
      throw new ConfigError(
        { file, key },
        `expected a string, got a list (only ${repeatedKeys()} may be lists)`,
      );
    }
    items.forEach((item, i) => {
      const where = Array.isArray(v) ? `${key}[${i}]` : key;
      if (typeof item === 'string') out.push({ key, value: item, where });
      else if (typeof item === 'number' || typeof item === 'boolean')
        out.push({ key, value: String(item), where });
      else throw new ConfigError({ file, key: where }, `expected a string, got ${describe(item)}`);
    });
  }
  return out;
}

function repeatedKeys(): string {
  return Object.entries(FUCHSIA_KEYS)
    .filter(([, i]) => i.repeated)
    .map(([k]) => k)
    .join(', ');
}

/** `--key=value` flags (several per line allowed) or `key=value` lines; `#` comments. */
function flatEntries(text: string, file: string): Entry[] {
  const out: Entry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const content = stripComment(raw).trim();
    if (content === '') return;
    const chunks = content.startsWith('--') ? splitFlags(content) : [content];
    for (const chunk of chunks) {
      const m = /^(?:--)?([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*(.*))?$/s.exec(chunk.trim());
      if (!m)
        throw new ConfigError(
          { file, line },
          `expected --key=value or key=value, got ${JSON.stringify(chunk)}`,
        );
      const key = m[1]!;
      if (!FUCHSIA_KEYS[key]) {
        throw new ConfigError(
          { file, line, key },
          `unknown Fuchsia guest option${didYouMean(key, Object.keys(FUCHSIA_KEYS))}`,
        );
      }
      out.push({ key, value: unquote((m[2] ?? '').trim()), where: key, line });
    }
  });
  return out;
}

function stripComment(line: string): string {
  let q = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q) {
      if (c === q) q = '';
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** Splits a line at whitespace followed by `--`, outside quotes. */
function splitFlags(line: string): string[] {
  const out: string[] = [];
  let q = '';
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q) {
      if (c === q) q = '';
    } else if (c === '"' || c === "'") q = c;
    else if (/\s/.test(c) && line.startsWith('--', i + 1)) {
      out.push(line.slice(start, i));
      start = i + 1;
    }
  }
  out.push(line.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

function unquote(s: string): string {
  if (s.length >= 2 && (s[0] === '"' || s[0] === "'") && s[s.length - 1] === s[0]) return s.slice(1, -1);
  return s;
}

const MIB = 1024 * 1024;

/** Fuchsia's size syntax: bytes, or a number with a b/k/M/G suffix. */
export function parseFuchsiaSize(value: string): number | undefined {
  const m = /^(\d+)\s*([bkKMG]?)$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const mult = { '': 1, b: 1, k: 1024, K: 1024, M: MIB, G: 1024 * MIB }[m[2]!]!;
  return n * mult;
}

function build(entries: Entry[], file: string, options: ImportOptions): ImportResult {
  const baseDir = baseDirOf(file, options);
  const warnings: string[] = [];
  const config: VmConfig = { name: nameFromFile(file) };
  const fail = (e: Entry, detail: string): never => {
    throw new ConfigError({ file, line: e.line, key: e.where }, detail);
  };
  const bool = (e: Entry): boolean => {
    const v = e.value.toLowerCase();
    if (v === '' || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    return fail(e, `expected true or false, got ${JSON.stringify(e.value)}`);
  };
  const int = (e: Entry, min: number, max: number, what = ''): number => {
    const t = e.value.trim();
    if (!/^\d+$/.test(t) || Number(t) < min || Number(t) > max) {
      fail(e, `expected ${what || `a number from ${min} to ${max}`}, got ${JSON.stringify(e.value)}`);
    }
    return Number(t);
  };
  const path = (e: Entry): string => {
    if (e.value.trim() === '') fail(e, 'expected a path, got an empty string');
    return packagePath(baseDir, e.value.trim());
  };
  const unsupported = (e: Entry, what: string): void => {
    if (bool(e)) warnings.push(`Fuchsia option '${e.key}': ${what} is not supported by typevisor; ignored`);
  };

  let cmdline: string | undefined;
  const cmdlineAdd: string[] = [];
  let memoryBytes: number[] = [];
  const disks: DiskConfig[] = [];
  const nets: { mac?: string }[] = [];
  let defaultNet: boolean | undefined;
  let virtioBalloon: boolean | undefined;

  for (const e of entries) {
    switch (e.key) {
      case 'kernel':
      case 'linux':
        config.kernel = path(e);
        break;
      case 'zircon':
        fail(
          e,
          'Zircon guests are not supported: typevisor boots Linux guests only (use "linux": PATH with a Linux kernel)',
        );
        break;
      case 'ramdisk':
        config.initrd = path(e);
        break;
      case 'block':
        disks.push(blockSpec(e, baseDir, fail, warnings, disks.length));
        break;
      case 'cmdline':
        cmdline = e.value;
        break;
      case 'cmdline-add':
      case 'cmdline-append':
        cmdlineAdd.push(e.value);
        break;
      case 'dtb-overlay':
      case 'dtb_overlay':
        warnings.push(
          `Fuchsia option '${e.key}': device tree overlays are not supported by typevisor (it writes the guest's device tree; 'dtb' in typevisor JSON replaces it whole); ignored`,
        );
        break;
      case 'cpus':
        {
          const n = int(e, 1, 4096, 'a number of vCPUs');
          config.cpus = Math.min(n, MAX_CPUS.aarch64);
          if (n > config.cpus)
            warnings.push(
              `Fuchsia option 'cpus' ${n}: typevisor runs at most ${MAX_CPUS.aarch64} vCPUs; the guest gets ${config.cpus}`,
            );
        }
        break;
      case 'memory': {
        // SIZE, or BASE,SIZE[,POLICY] (generation 3 memory regions).
        const parts = e.value.split(',');
        const sizeText = parts.length === 1 ? parts[0]! : (parts[1] ?? '');
        if (parts.length > 1)
          warnings.push(
            `Fuchsia option '${e.where}': memory base address and policy (${e.value}) are not supported by typevisor; only the size is used`,
          );
        const bytes =
          parseFuchsiaSize(sizeText) ??
          fail(
            e,
            `expected a size in bytes or with a k, M or G suffix (like 1024M or 2G), got ${JSON.stringify(e.value)}`,
          );
        if (bytes < MIN_MEMORY_MIB * MIB) {
          fail(
            e,
            `${JSON.stringify(e.value)} is ${bytes} bytes, less than ${MIN_MEMORY_MIB} MiB (a bare number is bytes; write e.g. ${sizeText.trim()}M)`,
          );
        }
        if (bytes % MIB !== 0)
          warnings.push(`Fuchsia option '${e.where}': ${e.value} is not a whole number of MiB; rounded down`);
        memoryBytes = parts.length === 1 && e.where === e.key ? [bytes] : [...memoryBytes, bytes];
        break;
      }
      case 'balloon-demand-page':
        (config.balloon ??= {}).demandPage = bool(e);
        break;
      case 'balloon-interval':
        (config.balloon ??= {}).intervalS = int(e, 0, 86400, 'a number of seconds');
        break;
      case 'balloon-threshold': {
        const pages = int(e, 0, (MAX_MEMORY_MIB * MIB) / 4096, 'a number of 4 KiB pages');
        (config.balloon ??= {}).thresholdMiB = Math.ceil((pages * 4096) / MIB);
        break;
      }
      case 'virtio-balloon':
        virtioBalloon = bool(e);
        break;
      case 'virtio-console':
        config.console = bool(e) ? 'virtio' : 'serial';
        break;
      case 'virtio-rng':
        config.rng = bool(e);
        break;
      case 'virtio-vsock':
        if (bool(e)) config.vsock = { cid: FUCHSIA_GUEST_CID };
        else delete config.vsock;
        break;
      case 'virtio-gpu':
        unsupported(e, 'virtio-gpu (and its virtio-input)');
        break;
      case 'virtio-input':
      case 'virtio-magma':
      case 'virtio-sound':
      case 'virtio-sound-input':
      case 'virtio-wl':
      case 'virtio-mem':
        unsupported(e, e.key);
        break;
      case 'display': {
        const d = e.value.trim();
        if (d !== '' && d !== 'none')
          warnings.push(`Fuchsia option 'display': a '${d}' display is not supported by typevisor; ignored`);
        break;
      }
      case 'gic': {
        const g = int(e, 2, 3, 'a GIC version, 2 or 3');
        if (g === 2)
          warnings.push(`Fuchsia option 'gic': GICv2 is not supported by typevisor; the guest gets a GICv3`);
        break;
      }
      case 'default-net':
      case 'network':
        defaultNet = bool(e);
        break;
      case 'net': {
        const mac = e.value.trim();
        if (!MAC_RE.test(mac))
          fail(e, `expected a MAC address like 02:1a:11:00:00:00, got ${JSON.stringify(e.value)}`);
        nets.push({ mac: mac.toLowerCase() });
        break;
      }
      case 'interrupt':
        warnings.push(
          `Fuchsia option '${e.where}': hardware interrupt pass-through (${e.value}) is not supported by typevisor; ignored`,
        );
        break;
      case 'block-wait':
      case 'pvblk-enabled':
      case 'host-memory':
      case 'legacy-net':
        unsupported(e, e.key);
        break;
      case 'vmem':
        warnings.push(`Fuchsia option 'vmem' is not supported by typevisor; ignored`);
        break;
    }
  }

  if (virtioBalloon === true) config.balloon ??= {};
  if (virtioBalloon === false && config.balloon) {
    warnings.push(`Fuchsia option 'virtio-balloon' is false: the balloon-* options are ignored`);
    delete config.balloon;
  }
  config.cmdline = joinCmdline(cmdline, ...cmdlineAdd);
  if (config.cmdline === undefined) delete config.cmdline;
  if (memoryBytes.length > 0) {
    if (memoryBytes.length > 1)
      warnings.push(`Fuchsia option 'memory': ${memoryBytes.length} memory regions are merged into one`);
    const mib = Math.floor(memoryBytes.reduce((a, b) => a + b, 0) / MIB);
    if (mib > MAX_MEMORY_MIB)
      throw new ConfigError(
        { file, key: 'memory' },
        `expected at most ${MAX_MEMORY_MIB} MiB in all, got ${mib} MiB`,
      );
    config.memoryMiB = mib;
  }
  if (disks.length > 0) config.disks = disks;
  if (defaultNet) nets.unshift({ mac: FUCHSIA_DEFAULT_MAC });
  if (nets.length > 0) config.nets = nets;
  if (!config.kernel) warnings.push(`no kernel in the Fuchsia config (give "linux": PATH or "kernel": PATH)`);
  return finish(config, warnings);
}

function blockSpec(
  e: Entry,
  baseDir: string,
  fail: (e: Entry, detail: string) => never,
  warnings: string[],
  index: number,
): DiskConfig {
  let path: string | undefined;
  let readOnly = false;
  let volatile = false;
  for (const raw of e.value.split(',')) {
    const tok = raw.trim();
    if (tok === '') continue;
    switch (tok) {
      case 'rw':
        readOnly = false;
        volatile = false;
        break;
      case 'ro':
        readOnly = true;
        volatile = false;
        break;
      case 'volatile':
        readOnly = false;
        volatile = true;
        break;
      case 'fdio':
      case 'file':
      case 'raw':
        break;
      case 'qcow':
        fail(
          e,
          `qcow images are not supported: typevisor reads raw disk images only (convert it: qemu-img convert -O raw IN OUT)`,
        );
        break;
      case 'block':
        warnings.push(
          `Fuchsia option '${e.where}': the 'block' data plane is not supported by typevisor; the image is read as a file`,
        );
        break;
      default:
        if (/^(guid|type):/i.test(tok)) {
          fail(e, `disks named by partition ${tok} are not supported: give the path of a raw disk image`);
        }
        if (path !== undefined)
          fail(e, `expected one path and flags (ro, rw, volatile), got a second path '${tok}'`);
        path = tok;
    }
  }
  if (path === undefined) fail(e, `expected PATH[,ro|rw|volatile], got ${JSON.stringify(e.value)} (no path)`);
  const d: DiskConfig = { path: packagePath(baseDir, path), readOnly, id: `block${index}` };
  if (volatile) d.volatile = true;
  return d;
}

/** A path as a guest package names it: /pkg/data/X is X next to the config file. */
function packagePath(baseDir: string, p: string): string {
  const m = /^\/pkg\/data\/(.+)$/.exec(p);
  if (m) return resolvePath(baseDir, m[1]!);
  return resolvePath(baseDir, p);
}

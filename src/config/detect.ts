// Config format detection from a file's contents (and, as a hint, its name).
//
// JSON: microvm options ("microvm" or "microvm.*" keys, or microvm option names), a Fuchsia guest
// config (its hyphenated keys, "linux"/"zircon"/"ramdisk", string-only values), or typevisor's
// own (its camelCase keys). Text: CAmkES (`vmN.attr = ...;`, configuration/assembly blocks), xl
// (`key = "quoted" | number | [list]`), or Fuchsia's flat flags (`--key=value`, `key=value`
// with unquoted values). When the evidence points to more than one format, detection fails with
// an error listing the candidates and the --from values to choose one.

import { extname } from 'node:path';
import { ConfigError } from './errors.js';
import { FUCHSIA_KEYS } from './fuchsia.js';
import { VMCONFIG_KEYS } from './vmconfig.js';

export const CONFIG_FORMATS = ['native', 'xl', 'fuchsia', 'microvm', 'camkes'] as const;
export type ConfigFormat = (typeof CONFIG_FORMATS)[number];

export const FORMAT_NAMES: Record<ConfigFormat, string> = {
  native: 'typevisor JSON',
  xl: 'Xen xl .cfg',
  fuchsia: 'Fuchsia guest config',
  microvm: 'microvm.nix options (JSON)',
  camkes: 'CAmkES VM attributes',
};

/** microvm.nix option names that identify microvm JSON at top level. */
const MICROVM_TOP_KEYS = [
  'mem',
  'vcpu',
  'balloonMem',
  'volumes',
  'interfaces',
  'kernelParams',
  'hypervisor',
  'shares',
  'initrdPath',
  'socket',
  'qemu',
  'cloud-hypervisor',
  'crosvm',
  'firecracker',
  'forwardPorts',
  'devices',
  'storeOnDisk',
  'writableStoreOverlay',
];
/** Keys shared by typevisor JSON and Fuchsia's: they point to neither. */
const SHARED_KEYS = ['kernel', 'cmdline', 'cpus'];
/** xl keys that only xl has (a flat Fuchsia file never uses them). */
const XL_ONLY_KEYS = [
  'name',
  'vcpus',
  'maxvcpus',
  'maxmem',
  'disk',
  'vif',
  'extra',
  'root',
  'type',
  'builder',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'vnc',
  'sdl',
  'pci',
  'uuid',
  'device_tree',
  'bootloader',
  'vfb',
  'serial',
  'usb',
  'vtpm',
];

export interface Detection {
  format: ConfigFormat;
  /** Why (for messages). */
  reason: string;
}

/** Detects the format of a config file's text; throws a ConfigError when unknown or ambiguous. */
export function detectFormat(text: string, file: string): Detection {
  const trimmed = text.trimStart();
  const ext = extname(file).toLowerCase();
  if (ext === '.nix') return { format: 'microvm', reason: '.nix file' };
  if (/^\{\s*("|\}|$)/.test(trimmed) || ext === '.json') {
    if (trimmed.startsWith('{')) return detectJson(text, file);
  }
  if (ext === '.json')
    throw new ConfigError(
      { file },
      'expected a JSON object (the file is named .json but does not start with {)',
    );
  return detectText(text, file, ext);
}

function detectJson(text: string, file: string): Detection {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    // Let the native parser report the syntax error with its line.
    return { format: 'native', reason: 'JSON' };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    return { format: 'native', reason: 'JSON' };
  const keys = Object.keys(obj);
  const values = Object.values(obj);
  const evidence: Partial<Record<ConfigFormat, string[]>> = {};
  const add = (f: ConfigFormat, k: string): void => {
    (evidence[f] ??= []).push(k);
  };
  const nativeKeys = VMCONFIG_KEYS as readonly string[];
  for (const k of keys) {
    if (k === 'microvm' || k.startsWith('microvm.') || k === 'networking.hostName') add('microvm', k);
    else if (MICROVM_TOP_KEYS.includes(k)) add('microvm', k);
    if (SHARED_KEYS.includes(k)) continue;
    if (nativeKeys.includes(k)) add('native', k);
    if (k in FUCHSIA_KEYS) add('fuchsia', k);
  }
  // Keys like "name" alone, or only shared keys: typevisor's own format.
  const candidates = (Object.keys(evidence) as ConfigFormat[]).filter((f) => (evidence[f]?.length ?? 0) > 0);
  if (candidates.length === 0) {
    // Only shared keys (kernel, cmdline, cpus) or unknown keys. All-string values and no numbers
    // is how generation-2 Fuchsia configs look, but typevisor JSON can look the same: native
    // reports unknown keys best.
    if (
      keys.length > 0 &&
      keys.every((k) => SHARED_KEYS.includes(k)) &&
      values.every((v) => typeof v === 'string') &&
      keys.includes('cpus')
    ) {
      return ambiguous(file, { native: ['cpus'], fuchsia: ['cpus (a string)'] });
    }
    return { format: 'native', reason: 'JSON with typevisor keys' };
  }
  if (candidates.length === 1)
    return { format: candidates[0]!, reason: `keys ${evidence[candidates[0]!]!.join(', ')}` };
  // microvm wins when it has its own "microvm" key.
  if (evidence.microvm?.some((k) => k === 'microvm' || k.startsWith('microvm.'))) {
    return { format: 'microvm', reason: 'a microvm key' };
  }
  return ambiguous(file, evidence);
}

function ambiguous(file: string, evidence: Partial<Record<ConfigFormat, string[]>>): never {
  const lines = (Object.keys(evidence) as ConfigFormat[]).map(
    (f) => `${f} (${FORMAT_NAMES[f]}: ${evidence[f]!.join(', ')})`,
  );
  throw new ConfigError(
    { file },
    `cannot tell the config format: it could be ${lines.join(' or ')}; choose one with --from ${Object.keys(evidence).join('|')}`,
  );
}

function detectText(text: string, file: string, ext: string): Detection {
  const lines = text.split('\n');
  // CAmkES: vmN.attr = value; or configuration/assembly/component blocks.
  if (ext === '.camkes') return { format: 'camkes', reason: '.camkes file' };
  const camkes =
    /^\s*[A-Za-z_]\w*\.[A-Za-z_]\w*\s*=\s*[^;]*;/m.test(text) &&
    /\b(configuration|component|assembly)\b\s*\{/.test(text);
  const camkesAttr = /^\s*vm\d+\.[A-Za-z_]\w*\s*=/m.test(text);
  // Nix: microvm.* bindings ending in ';' (seed 004's spelling).
  if (/^\s*(\{[^{}]*\}\s*:\s*)?\{?\s*microvm\.[\w.-]+\s*=[^;]*;/m.test(text) && !camkesAttr) {
    return { format: 'microvm', reason: 'microvm.* Nix bindings' };
  }
  let flags = 0;
  let quoted = 0; // "string" or [list] values: xl syntax
  let numeric = 0; // numbers: both xl and flat Fuchsia
  let bare = 0; // unquoted words: flat Fuchsia
  const xlKeys: string[] = [];
  const fuchsiaKeys: string[] = [];
  const otherKeys: string[] = [];
  for (const raw of lines) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith('//')) continue;
    if (line.startsWith('--')) {
      flags++;
      continue;
    }
    const m = /^([A-Za-z_][\w.-]*)\s*\+?=\s*(.*)$/.exec(line);
    if (!m) continue;
    const k = m[1]!;
    const v = m[2]!.trim();
    if (/^["'[]/.test(v)) quoted++;
    else if (/^(0[xX][0-9a-fA-F]+|\d+)\s*;?\s*(#.*)?$/.test(v)) numeric++;
    else bare++;
    if (XL_ONLY_KEYS.includes(k)) xlKeys.push(k);
    else if (k in FUCHSIA_KEYS) fuchsiaKeys.push(k);
    else otherKeys.push(k);
  }
  const candidates: Partial<Record<ConfigFormat, string[]>> = {};
  if (camkes || camkesAttr) candidates.camkes = ['vmN.attribute = value;'];
  if (flags > 0) candidates.fuchsia = ['--key=value flags'];
  else if (bare > 0 && fuchsiaKeys.length > 0 && xlKeys.length === 0)
    candidates.fuchsia = [`unquoted values for ${fuchsiaKeys.join(', ')}`];
  if (xlKeys.length > 0) candidates.xl = [`keys ${[...new Set(xlKeys)].join(', ')}`];
  else if (quoted > 0 && flags === 0) candidates.xl = ['KEY = "quoted" values'];
  else if (numeric > 0 && bare === 0 && flags === 0) {
    // Only numbers: `memory = 512` reads the same in both.
    candidates.xl = [`KEY = NUMBER lines`];
    if (otherKeys.length === 0 && fuchsiaKeys.length > 0)
      candidates.fuchsia = [`keys ${fuchsiaKeys.join(', ')}`];
  }
  // A CAmkES file also has `x = y;` lines; its own evidence wins.
  if (candidates.camkes && (camkes || !candidates.fuchsia))
    return { format: 'camkes', reason: 'CAmkES attributes' };
  const found = Object.keys(candidates) as ConfigFormat[];
  if (found.length === 1) return { format: found[0]!, reason: candidates[found[0]!]!.join(', ') };
  if (found.length === 0) {
    const content = lines.filter((l) => l.trim() !== '' && !/^\s*(#|\/\/)/.test(l)).length;
    if (content === 0) {
      throw new ConfigError(
        { file },
        'the file has no settings (expected xl KEY = VALUE lines, Fuchsia --key=value flags, or JSON)',
      );
    }
    throw new ConfigError(
      { file },
      `cannot tell the config format: expected typevisor or Fuchsia JSON ({...}), microvm.nix options as JSON, xl KEY = VALUE lines, Fuchsia --key=value flags, or CAmkES vmN.attr = value; settings (choose one with --from ${CONFIG_FORMATS.join('|')})`,
    );
  }
  if (candidates.xl && candidates.fuchsia && xlKeys.length > 0 && flags === 0)
    return { format: 'xl', reason: candidates.xl.join(', ') };
  return ambiguous(file, candidates);
}

// Importer for Xen's xl domain configuration files (xl.cfg(5), xl-disk-configuration(5),
// xl-network-configuration(5)).
//
// Syntax: one `KEY = VALUE` setting per line (or several separated by `;`), where VALUE is a
// string in single or double quotes, a number (decimal or 0x hex), or a list `[ VALUE, ... ]` that
// may span lines and end with a comma. `KEY += VALUE` appends to a list or string. `#` starts a
// comment.
//
// Mapping to VmConfig:
//   name, memory (MiB), maxmem (balloon ceiling), vcpus (maxvcpus > vcpus: warning), kernel,
//   ramdisk, device_tree, cmdline (or "root=ROOT EXTRA" from root/extra), disk, vif,
//   on_poweroff/on_reboot/on_crash. type/builder other than pvh: warning (an arm guest is always
//   pvh-like). Every other key: warning naming it; the key is ignored.

import { ConfigError, describe, nameFromFile } from './errors.js';
import { MAX_MTU, MIN_MTU, mtuFromText } from '../devices/virtio/net.js';
import {
  baseDirOf,
  finish,
  joinCmdline,
  resolvePath,
  type ImportOptions,
  type ImportResult,
} from './common.js';
import {
  LIFECYCLE_ACTIONS,
  MAC_RE,
  MAX_CPUS,
  MAX_MEMORY_MIB,
  MIN_MEMORY_MIB,
  type DiskConfig,
  type LifecycleAction,
  type NetConfig,
  type VmConfig,
} from './vmconfig.js';

// ---------------------------------------------------------------------------------------------
// Parser

export type XlValue =
  | { kind: 'string'; value: string; line: number }
  | { kind: 'number'; value: number; line: number }
  | { kind: 'list'; items: XlValue[]; line: number };

export interface XlSetting {
  key: string;
  value: XlValue;
  line: number;
}

/** Parses xl.cfg text into settings in file order (later settings of a key win; += appends). */
export function parseXl(text: string, file: string): Map<string, XlSetting> {
  const p = new XlParser(text, file);
  return p.parse();
}

class XlParser {
  private pos = 0;
  private line = 1;
  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  private fail(detail: string, line = this.line, key?: string): never {
    throw new ConfigError({ file: this.file, line, key }, detail);
  }

  private peek(): string {
    return this.text[this.pos] ?? '';
  }

  /** Skips spaces, tabs and comments; with `newlines`, line breaks too. */
  private skip(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '#') {
        while (this.pos < this.text.length && this.peek() !== '\n') this.pos++;
      } else if (c === '\\' && this.text[this.pos + 1] === '\n') {
        this.pos += 2;
        this.line++;
      } else if (newlines && c === '\n') {
        this.pos++;
        this.line++;
      } else return;
    }
  }

  parse(): Map<string, XlSetting> {
    const out = new Map<string, XlSetting>();
    for (;;) {
      this.skip(true);
      if (this.peek() === ';') {
        this.pos++;
        continue;
      }
      if (this.pos >= this.text.length) return out;
      const line = this.line;
      const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(this.text.slice(this.pos, this.pos + 200));
      if (!m) this.fail(`expected a setting 'KEY = VALUE', got ${JSON.stringify(this.restOfLine())}`);
      const key = m[0];
      this.pos += key.length;
      this.skip(false);
      let append = false;
      if (this.text.startsWith('+=', this.pos)) {
        append = true;
        this.pos += 2;
      } else if (this.peek() === '=') this.pos++;
      else
        this.fail(`expected '=' after '${key}', got ${JSON.stringify(this.restOfLine())}`, line, undefined);
      this.skip(false);
      const value = this.value(key);
      this.skip(false);
      const c = this.peek();
      if (c === ';') this.pos++;
      else if (c !== '\n' && c !== '') {
        this.fail(`unexpected ${JSON.stringify(this.restOfLine())} after the value`, this.line, key);
      }
      const prev = out.get(key);
      if (append && prev) {
        if (prev.value.kind === 'list') {
          const items = value.kind === 'list' ? value.items : [value];
          prev.value = { ...prev.value, items: [...prev.value.items, ...items] };
        } else if (prev.value.kind === 'string' && value.kind === 'string') {
          prev.value = { ...prev.value, value: prev.value.value + value.value };
        } else {
          this.fail(`'+=' needs a list or a string on both sides`, line, key);
        }
      } else {
        out.delete(key); // a later setting wins and takes the later position
        out.set(key, { key, value, line });
      }
    }
  }

  private restOfLine(): string {
    const end = this.text.indexOf('\n', this.pos);
    return this.text
      .slice(this.pos, end < 0 ? undefined : end)
      .trim()
      .slice(0, 40);
  }

  private value(key: string): XlValue {
    const line = this.line;
    const c = this.peek();
    if (c === '"' || c === "'") return { kind: 'string', value: this.string(key), line };
    if (c === '[') {
      this.pos++;
      const items: XlValue[] = [];
      for (;;) {
        this.skip(true);
        if (this.peek() === ']') {
          this.pos++;
          return { kind: 'list', items, line };
        }
        if (this.pos >= this.text.length) this.fail(`unterminated list (missing ']')`, line, key);
        if (this.peek() === '[') this.fail(`lists inside lists are not allowed`, this.line, key);
        items.push(this.value(key));
        this.skip(true);
        if (this.peek() === ',') this.pos++;
        else if (this.pos >= this.text.length) this.fail(`unterminated list (missing ']')`, line, key);
        else if (this.peek() !== ']') {
          this.fail(
            `expected ',' or ']' in the list, got ${JSON.stringify(this.restOfLine())}`,
            this.line,
            key,
          );
        }
      }
    }
    const m = /^(0[xX][0-9a-fA-F]+|[0-9]+)(?![A-Za-z0-9_.])/.exec(this.text.slice(this.pos, this.pos + 40));
    if (m) {
      this.pos += m[0].length;
      return { kind: 'number', value: Number(m[0].toLowerCase().startsWith('0x') ? m[0] : m[0]), line };
    }
    const rest = this.restOfLine();
    this.fail(
      `expected a quoted string, a number or a list, got ${JSON.stringify(rest)}` +
        (rest ? ` (quote it: "${rest.replace(/"/g, '')}")` : ''),
      line,
      key,
    );
  }

  private string(key: string): string {
    const q = this.peek();
    const line = this.line;
    this.pos++;
    let s = '';
    for (;;) {
      const c = this.peek();
      if (c === '' || c === '\n') this.fail(`unterminated string (missing ${q})`, line, key);
      this.pos++;
      if (c === q) return s;
      if (c === '\\') {
        const e = this.peek();
        this.pos++;
        switch (e) {
          case 'n':
            s += '\n';
            break;
          case 't':
            s += '\t';
            break;
          case 'r':
            s += '\r';
            break;
          case '\\':
          case '"':
          case "'":
            s += e;
            break;
          default:
            s += '\\' + e;
        }
        continue;
      }
      s += c;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Disk and network specs

const DISK_FORMATS = ['raw', 'qcow', 'qcow2', 'vhd', 'qed'];
const DISK_FLAGS = ['cdrom', 'discard', 'no-discard', 'direct-io-safe', 'colo'];
const DISK_KEYS = [
  'target',
  'format',
  'vdev',
  'access',
  'devtype',
  'backend',
  'backendtype',
  'script',
  'specification',
  'trusted',
  'untrusted',
  'colo-host',
  'colo-port',
  'colo-export',
  'active-disk',
  'hidden-disk',
];
const IGNORED_PREFIXES = ['tapdisk', 'tap2', 'tap', 'aio', 'ioemu', 'file', 'phy', 'vbd3'];
const SCRIPT_PREFIXES = ['iscsi', 'nbd', 'enbd', 'drbd'];

export interface XlDisk {
  target?: string;
  format: string;
  vdev?: string;
  readOnly: boolean;
  cdrom: boolean;
  other: string[];
}

/** Parses one DISKSPEC (xl-disk-configuration(5)). Errors name `disk[i]`. */
export function parseXlDisk(spec: string, where: { file: string; line: number; key: string }): XlDisk {
  const fail = (detail: string): never => {
    throw new ConfigError(where, `${detail} (in '${spec}')`);
  };
  const named: Record<string, string> = {};
  const flags = new Set<string>();
  const positional: string[] = [];
  let rest = spec;
  // target= consumes the rest of the spec, commas included.
  const t = /(^|,)\s*target=/.exec(rest);
  if (t) {
    named.target = rest.slice(t.index + t[0].length);
    rest = rest.slice(0, t.index);
  }
  const parts = rest === '' && t ? [] : rest.split(',').map((s) => s.trim());
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq > 0 && /^[A-Za-z][A-Za-z0-9_-]*$/.test(part.slice(0, eq))) {
      const k = part.slice(0, eq);
      if (!DISK_KEYS.includes(k)) fail(`unknown disk parameter '${k}'`);
      if (k in named) fail(`parameter '${k}' given twice`);
      named[k] = part.slice(eq + 1);
    } else if (DISK_FLAGS.includes(part)) {
      flags.add(part);
    } else {
      positional.push(part);
    }
  }
  // Deprecated prefixes on the first positional: [format:][script:][ignored:]target
  let deprecatedSyntax = false;
  if (positional.length > 0) {
    let first = positional[0]!;
    for (;;) {
      const m = /^([A-Za-z0-9]+):(.*)$/s.exec(first);
      if (!m) break;
      const pre = m[1]!.toLowerCase();
      if (IGNORED_PREFIXES.includes(pre)) {
        deprecatedSyntax = true;
      } else if (DISK_FORMATS.includes(pre)) {
        deprecatedSyntax = true;
        if (named.format === undefined) named.format = pre;
      } else if (SCRIPT_PREFIXES.includes(pre)) {
        fail(
          `'${pre}:' disks (script block-${pre}) are not supported by typevisor; give the path of a raw image file`,
        );
      } else break;
      first = m[2]!;
    }
    positional[0] = first;
  }
  // Assign positionals to target, format, vdev, access in order. The old 3-field syntax
  // (target,vdev,access) omits the format: a second positional that is not a format is the vdev.
  const slots = ['target', 'format', 'vdev', 'access'];
  let slot = 0;
  for (const p of positional) {
    while (slot < slots.length && named[slots[slot]!] !== undefined) slot++;
    if (slot >= slots.length) fail(`too many positional parameters ('${p}')`);
    if (
      slots[slot] === 'format' &&
      (deprecatedSyntax || (p !== '' && !DISK_FORMATS.includes(p.toLowerCase())))
    ) {
      slot++;
      while (slot < slots.length && named[slots[slot]!] !== undefined) slot++;
      if (slot >= slots.length) fail(`too many positional parameters ('${p}')`);
    }
    if (p !== '') named[slots[slot]!] = p;
    slot++;
  }
  let cdrom = flags.has('cdrom') || named.devtype === 'cdrom';
  if (named.vdev && /:cdrom$/.test(named.vdev)) {
    cdrom = true;
    named.vdev = named.vdev.replace(/:cdrom$/, '');
  }
  if (named.devtype !== undefined && named.devtype !== 'cdrom')
    fail(`devtype: expected 'cdrom', got '${named.devtype}'`);
  const format = (named.format ?? 'raw').toLowerCase();
  if (!DISK_FORMATS.includes(format))
    fail(`format: expected one of ${DISK_FORMATS.join(', ')}, got '${format}'`);
  let readOnly = cdrom;
  if (named.access !== undefined) {
    const a = named.access.toLowerCase();
    if (a === 'ro' || a === 'r') readOnly = true;
    else if (a === 'rw' || a === 'w') readOnly = false;
    else if (a === 'cdrom') {
      cdrom = true;
      readOnly = true;
    } else fail(`access: expected ro, r, rw or w, got '${named.access}'`);
  }
  const other: string[] = [];
  for (const k of [
    'backend',
    'script',
    'specification',
    'colo-host',
    'colo-port',
    'colo-export',
    'active-disk',
    'hidden-disk',
  ]) {
    if (named[k] !== undefined) other.push(`${k}=${named[k]}`);
  }
  for (const f of ['colo']) if (flags.has(f)) other.push(f);
  return { target: named.target, format, vdev: named.vdev, readOnly, cdrom, other };
}

const VIF_KEYS = [
  'mac',
  'bridge',
  'ip',
  'model',
  'type',
  'vifname',
  'script',
  'backend',
  'rate',
  'gatewaydev',
  'devid',
  'mtu',
  'accel',
  'forwarddev',
  'trusted',
  'untrusted',
  'colo_sock_mirror_id',
];

export interface XlVif {
  net: NetConfig;
  ignored: string[];
}

/** Parses one vif spec (xl-network-configuration(5)): comma-separated KEY=VALUE. */
export function parseXlVif(spec: string, where: { file: string; line: number; key: string }): XlVif {
  const fail = (detail: string): never => {
    throw new ConfigError(where, `${detail} (in '${spec}')`);
  };
  const net: NetConfig = {};
  const ignored: string[] = [];
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) fail(`expected KEY=VALUE, got '${part}'`);
    const k = part.slice(0, eq).trim();
    const val = part.slice(eq + 1).trim();
    switch (k) {
      case 'mac':
        if (!MAC_RE.test(val)) fail(`mac: expected a MAC address like 00:16:3e:01:02:03, got '${val}'`);
        net.mac = val.toLowerCase();
        break;
      case 'bridge':
        net.bridge = val;
        break;
      case 'vifname':
        net.tap = val;
        break;
      case 'script':
        // vif-bridge (the default) is what the bridge backend does: a TAP attached to the bridge.
        if (val.split('/').pop() !== 'vif-bridge') ignored.push(`${k}=${val}`);
        break;
      case 'model':
        net.model = val;
        break;
      case 'mtu':
        net.mtu = mtuFromText(val) ?? fail(`mtu: expected an MTU from ${MIN_MTU} to ${MAX_MTU}, got '${val}'`);
        break;
      case 'type':
        if (val !== 'vif' && val !== 'ioemu') fail(`type: expected vif or ioemu, got '${val}'`);
        break;
      default:
        if (k.startsWith('colo_') || VIF_KEYS.includes(k)) ignored.push(`${k}=${val}`);
        else fail(`unknown vif parameter '${k}'`);
    }
  }
  // Without bridge= (Xen would use xenbr0): vifname= is a TAP device, neither is user-mode networking.
  return { net, ignored };
}

// ---------------------------------------------------------------------------------------------
// Importer

/** Keys of xl.cfg(5) that are understood, and keys that are known but only produce a warning. */
const HANDLED = new Set([
  'name',
  'type',
  'builder',
  'memory',
  'maxmem',
  'vcpus',
  'maxvcpus',
  'kernel',
  'ramdisk',
  'device_tree',
  'cmdline',
  'root',
  'extra',
  'disk',
  'vif',
  'on_poweroff',
  'on_reboot',
  'on_crash',
]);

/** Imports an xl domain config. */
export function importXl(text: string, file: string, options: ImportOptions = {}): ImportResult {
  const settings = parseXl(text, file);
  const baseDir = baseDirOf(file, options);
  const warnings: string[] = [];
  const err = (s: XlSetting, detail: string): never => {
    throw new ConfigError({ file, line: s.line, key: s.key }, detail);
  };
  const str = (s: XlSetting): string => {
    if (s.value.kind !== 'string') return err(s, `expected a quoted string, got ${xlDescribe(s.value)}`);
    return s.value.value;
  };
  const num = (s: XlSetting, min: number, max: number, unit = ''): number => {
    let v: number | undefined;
    if (s.value.kind === 'number') v = s.value.value;
    else if (s.value.kind === 'string' && /^\d+$/.test(s.value.value.trim()))
      v = Number(s.value.value.trim());
    if (v === undefined || v < min || v > max)
      return err(s, `expected a number from ${min} to ${max}${unit}, got ${xlDescribe(s.value)}`);
    return v;
  };
  const list = (s: XlSetting): { value: string; line: number }[] => {
    const items = s.value.kind === 'list' ? s.value.items : [s.value];
    return items.map((it, i) => {
      if (it.kind !== 'string') {
        throw new ConfigError(
          { file, line: it.line, key: `${s.key}[${i}]` },
          `expected a quoted string, got ${xlDescribe(it)}`,
        );
      }
      return { value: it.value, line: it.line };
    });
  };
  const get = (k: string): XlSetting | undefined => settings.get(k);

  const nameS = get('name');
  const config: VmConfig = { name: nameS ? str(nameS) : nameFromFile(file) };
  if (nameS && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(config.name)) {
    err(nameS, `expected a name of 1 to 64 letters, digits, _, . or -, got ${JSON.stringify(config.name)}`);
  }

  // Guest type: an arm guest is always pvh-like, which is what typevisor runs.
  const typeS = get('type');
  if (typeS) {
    const t = str(typeS);
    if (!['pv', 'pvh', 'hvm'].includes(t)) err(typeS, `expected 'pv', 'pvh' or 'hvm', got '${t}'`);
    if (t !== 'pvh')
      warnings.push(
        `xl type '${t}' is not supported by typevisor; the guest boots as a direct-kernel (pvh-like) VM`,
      );
  }
  const builderS = get('builder');
  if (builderS) {
    const b = str(builderS);
    if (b !== 'generic')
      warnings.push(
        `xl builder '${b}' is not supported by typevisor; the guest boots as a direct-kernel (pvh-like) VM`,
      );
  }

  const memS = get('memory');
  if (memS) config.memoryMiB = num(memS, MIN_MEMORY_MIB, MAX_MEMORY_MIB, ' (MiB)');
  const maxmemS = get('maxmem');
  if (maxmemS) {
    const max = num(maxmemS, MIN_MEMORY_MIB, MAX_MEMORY_MIB, ' (MiB)');
    const mem = config.memoryMiB ?? max;
    if (max < mem) err(maxmemS, `expected at least memory (${mem}), got ${max}`);
    if (max > mem) {
      config.maxMemoryMiB = max;
      config.balloon = { targetMiB: mem };
    }
  }

  const vcpusS = get('vcpus');
  const cpuLimit = MAX_CPUS.aarch64;
  if (vcpusS) {
    const n = num(vcpusS, 1, 4096);
    config.cpus = Math.min(n, cpuLimit);
    if (n > cpuLimit)
      warnings.push(`xl vcpus ${n}: typevisor runs at most ${cpuLimit} vCPUs; the guest gets ${cpuLimit}`);
  }
  const maxvcpusS = get('maxvcpus');
  if (maxvcpusS) {
    const mx = num(maxvcpusS, 1, 4096);
    if (config.cpus === undefined) config.cpus = Math.min(mx, cpuLimit);
    if (mx > config.cpus)
      warnings.push(
        `xl maxvcpus ${mx} > vcpus ${config.cpus}: vCPU hotplug is not supported by typevisor; the guest gets ${config.cpus}`,
      );
  }

  const kernelS = get('kernel');
  if (kernelS) config.kernel = resolvePath(baseDir, str(kernelS));
  const ramdiskS = get('ramdisk');
  if (ramdiskS) config.initrd = resolvePath(baseDir, str(ramdiskS));
  const dtS = get('device_tree');
  if (dtS) config.dtb = resolvePath(baseDir, str(dtS));

  const cmdlineS = get('cmdline');
  const rootS = get('root');
  const extraS = get('extra');
  if (cmdlineS) {
    config.cmdline = joinCmdline(str(cmdlineS)) ?? '';
    for (const s of [rootS, extraS]) {
      if (s) warnings.push(`xl key '${s.key}' is ignored because 'cmdline' is set (as xl does)`);
    }
  } else if (rootS || extraS) {
    const root = rootS ? str(rootS).trim() : undefined;
    config.cmdline = joinCmdline(root ? `root=${root}` : undefined, extraS ? str(extraS) : undefined);
  }

  const diskS = get('disk');
  if (diskS) {
    const disks: DiskConfig[] = [];
    list(diskS).forEach((item, i) => {
      const where = { file, line: item.line, key: `disk[${i}]` };
      const d = parseXlDisk(item.value, where);
      if (d.format !== 'raw') {
        throw new ConfigError(
          where,
          `format '${d.format}' is not supported: typevisor reads raw disk images only (convert it: qemu-img convert -O raw IN OUT)`,
        );
      }
      if (d.target === undefined || d.target === '') {
        if (d.cdrom) {
          warnings.push(`xl disk[${i}]: an empty cdrom drive is not supported by typevisor; ignored`);
          return;
        }
        throw new ConfigError(
          where,
          `missing the target (the path of a raw disk image) (in '${item.value}')`,
        );
      }
      if (d.cdrom) warnings.push(`xl disk[${i}]: cdrom devices are attached as read-only virtio-blk disks`);
      if (d.other.length > 0)
        warnings.push(`xl disk[${i}]: ${d.other.join(', ')} not supported by typevisor; ignored`);
      const disk: DiskConfig = { path: resolvePath(baseDir, d.target), readOnly: d.readOnly };
      if (d.vdev) disk.id = d.vdev;
      disks.push(disk);
    });
    config.disks = disks;
  }

  const vifS = get('vif');
  if (vifS) {
    const nets: NetConfig[] = [];
    list(vifS).forEach((item, i) => {
      const v = parseXlVif(item.value, { file, line: item.line, key: `vif[${i}]` });
      if (v.ignored.length > 0)
        warnings.push(`xl vif[${i}]: ${v.ignored.join(', ')} not supported by typevisor; ignored`);
      if (v.net.model && !/^virtio(-net)?$/.test(v.net.model))
        warnings.push(`xl vif[${i}]: model=${v.net.model}: typevisor's NIC is virtio-net; the guest sees a virtio-net device`);
      nets.push(v.net);
    });
    config.nets = nets;
  }

  for (const [k, field] of [
    ['on_poweroff', 'onPoweroff'],
    ['on_reboot', 'onReboot'],
    ['on_crash', 'onCrash'],
  ] as const) {
    const s = get(k);
    if (!s) continue;
    const a = str(s);
    if (a === 'soft-reset') {
      warnings.push(`xl ${k} 'soft-reset' is not supported by typevisor; using 'restart'`);
      config[field] = 'restart';
    } else if ((LIFECYCLE_ACTIONS as readonly string[]).includes(a)) config[field] = a as LifecycleAction;
    else err(s, `expected one of ${[...LIFECYCLE_ACTIONS, 'soft-reset'].join(', ')}, got '${a}'`);
  }

  for (const s of settings.values()) {
    if (HANDLED.has(s.key)) continue;
    warnings.push(`xl key '${s.key}' is not supported by typevisor; ignored`);
  }
  return finish(config, warnings);
}

function xlDescribe(v: XlValue): string {
  if (v.kind === 'list') return 'a list';
  return describe(v.value);
}

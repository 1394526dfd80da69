// Kernel module metadata from .ko files (no modules.dep needed): the `.modinfo` ELF section holds
// NUL-separated "key=value" strings (depends=, softdep=, alias=, name=). Used to compute the load
// order of the modules that go into the default guest's initramfs.

import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ModInfo {
  name: string;
  /** Path relative to /lib/modules/<release>/. */
  relPath: string;
  depends: string[];
  /** softdep "pre:" modules (names or aliases). */
  softPre: string[];
  aliases: string[];
}

/** Module name from a file name: strip .ko(.xz/.gz/.zst) and turn '-' into '_'. */
export function moduleName(file: string): string {
  return path
    .basename(file)
    .replace(/\.ko(\.(xz|gz|zst))?$/, '')
    .replace(/-/g, '_');
}

/** The strings of the .modinfo section of an ELF64 little-endian relocatable object. */
export function readModinfo(ko: Uint8Array, what: string): Map<string, string[]> {
  const dv = new DataView(ko.buffer, ko.byteOffset, ko.byteLength);
  if (ko.length < 64 || dv.getUint32(0) !== 0x7f454c46 || ko[4] !== 2 || ko[5] !== 1) {
    throw new Error(
      `${what}: not an ELF64 little-endian kernel module (compressed modules are not supported)`,
    );
  }
  const shoff = Number(dv.getBigUint64(0x28, true));
  const shentsize = dv.getUint16(0x3a, true);
  const shnum = dv.getUint16(0x3c, true);
  const shstrndx = dv.getUint16(0x3e, true);
  const sh = (i: number) => {
    const o = shoff + i * shentsize;
    return {
      name: dv.getUint32(o, true),
      offset: Number(dv.getBigUint64(o + 0x18, true)),
      size: Number(dv.getBigUint64(o + 0x20, true)),
    };
  };
  if (shoff + shnum * shentsize > ko.length || shstrndx >= shnum)
    throw new Error(`${what}: bad ELF section table`);
  const strtab = sh(shstrndx);
  const cstr = (o: number) => {
    let e = o;
    while (e < ko.length && ko[e] !== 0) e++;
    return Buffer.from(ko.subarray(o, e)).toString('latin1');
  };
  const out = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = sh(i);
    if (cstr(strtab.offset + s.name) !== '.modinfo') continue;
    const text = Buffer.from(ko.subarray(s.offset, s.offset + s.size)).toString('latin1');
    for (const kv of text.split('\0')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) continue;
      const k = kv.slice(0, eq);
      const list = out.get(k) ?? [];
      list.push(kv.slice(eq + 1));
      out.set(k, list);
    }
  }
  return out;
}

export class ModuleTree {
  /** name -> relative path, for every .ko under kernel/. */
  readonly paths = new Map<string, string>();
  readonly builtin = new Set<string>();
  private readonly info = new Map<string, ModInfo>();
  private aliasIndex: Map<string, string> | undefined;

  constructor(readonly dir: string) {
    const walk = (rel: string) => {
      for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
        const r = path.join(rel, e.name);
        if (e.isDirectory()) walk(r);
        else if (/\.ko(\.(xz|gz|zst))?$/.test(e.name)) this.paths.set(moduleName(e.name), r);
      }
    };
    walk('kernel');
    try {
      for (const line of fs.readFileSync(path.join(dir, 'modules.builtin'), 'utf8').split('\n')) {
        if (line.trim()) this.builtin.add(moduleName(line.trim()));
      }
    } catch {
      // no modules.builtin: nothing is known to be built in
    }
  }

  get(name: string): ModInfo | undefined {
    const n = name.replace(/-/g, '_');
    const cached = this.info.get(n);
    if (cached) return cached;
    const rel = this.paths.get(n);
    if (!rel) return undefined;
    const mi = readModinfo(fs.readFileSync(path.join(this.dir, rel)), rel);
    const depends = (mi.get('depends') ?? []).flatMap((d) => d.split(',')).filter((d) => d.length > 0);
    const softPre: string[] = [];
    for (const sd of mi.get('softdep') ?? []) {
      const m = /pre:\s*([^:]*?)(\s+post:.*)?$/.exec(sd);
      if (m) softPre.push(...m[1].split(/\s+/).filter((x) => x.length > 0));
    }
    const info: ModInfo = { name: n, relPath: rel, depends, softPre, aliases: mi.get('alias') ?? [] };
    this.info.set(n, info);
    return info;
  }

  /**
   * A module name for `name`: itself when such a module exists, else the module declaring it as an
   * alias (searched among the crypto and library modules, where softdep aliases such as "crc32c"
   * live). Undefined when built in or unknown.
   */
  resolve(name: string): string | undefined {
    const n = name.replace(/-/g, '_');
    if (this.paths.has(n)) return n;
    if (this.builtin.has(n)) return undefined;
    if (!this.aliasIndex) {
      this.aliasIndex = new Map();
      for (const [mod, rel] of this.paths) {
        if (!/^kernel\/(crypto|lib|arch\/arm64\/crypto)\//.test(rel)) continue;
        for (const a of this.get(mod)?.aliases ?? [])
          if (!this.aliasIndex.has(a)) this.aliasIndex.set(a, mod);
      }
    }
    return this.aliasIndex.get(name) ?? this.aliasIndex.get(n);
  }

  /**
   * The dependency closure of `roots` in load order (dependencies first), following depends= and
   * softdep pre:. Roots that are built into the kernel are skipped; unknown roots are reported.
   */
  closure(roots: string[]): { order: ModInfo[]; builtin: string[]; missing: string[] } {
    const order: ModInfo[] = [];
    const done = new Set<string>();
    const visiting = new Set<string>();
    const builtin: string[] = [];
    const missing: string[] = [];
    const visit = (name: string, isRoot: boolean) => {
      const mod = this.resolve(name);
      if (!mod) {
        if (this.builtin.has(name.replace(/-/g, '_'))) {
          if (isRoot) builtin.push(name);
        } else if (isRoot) missing.push(name);
        return;
      }
      if (done.has(mod) || visiting.has(mod)) return;
      visiting.add(mod);
      const info = this.get(mod)!;
      for (const d of info.softPre) visit(d, false);
      for (const d of info.depends) visit(d, false);
      visiting.delete(mod);
      done.add(mod);
      order.push(info);
    };
    for (const r of roots) visit(r, true);
    return { order, builtin, missing };
  }
}

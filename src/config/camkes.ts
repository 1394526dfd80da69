// Importer for the per-VM attributes of a seL4 CAmkES VM (camkes-vm's configuration blocks):
//
//   configuration {
//       vm0.guest_ram_mb = 128;
//       vm0.kernel_cmdline = "console=ttyS0,115200 root=/dev/mem";
//       vm0.kernel_image = "bzimage";
//       vm0.initrd_image = "rootfs.cpio";
//   }
//
// Mapping: guest_ram_mb -> memoryMiB, kernel_cmdline -> cmdline, kernel_image -> kernel,
// initrd_image -> initrd (file names resolved relative to the .camkes file). Every other vmN.*
// attribute gets a warning. A file may configure several VMs (vm0, vm1, ...): the `vm` option
// picks one, else the first. Values may be string literals (adjacent literals are joined, as in
// C), numbers, or macros: a macro is expanded from a `#define` in the file (or in a header it
// #includes that exists next to it) or from the `defines` option (like cpp -DNAME=VALUE);
// otherwise it is an error asking for the literal value. A bzImage kernel selects arch x86_64.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, didYouMean, nameFromFile } from './errors.js';
import { baseDirOf, finish, resolvePath, type ImportOptions, type ImportResult } from './common.js';
import { MAX_MEMORY_MIB, MIN_MEMORY_MIB, type VmConfig } from './vmconfig.js';

type Tok =
  | { t: 'str'; v: string; line: number }
  | { t: 'num'; v: string; line: number }
  | { t: 'id'; v: string; line: number }
  | { t: 'punct'; v: string; line: number };

interface Define {
  value: string;
  file: string;
  line: number;
}

/** Tokenizes CAmkES/C text; `#define NAME VALUE` lines go to `defines`, `#include "x"` to `includes`. */
function tokenize(text: string, file: string, defines: Map<string, Define>, includes: string[]): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  let atLineStart = true;
  const fail = (detail: string): never => {
    throw new ConfigError({ file, line }, detail);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
      atLineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#' && atLineStart) {
      // A preprocessor line, with backslash continuations.
      let end = i;
      let body = '';
      const startLine = line;
      for (;;) {
        let e = text.indexOf('\n', end);
        if (e < 0) e = text.length;
        const seg = text.slice(end, e);
        if (seg.endsWith('\\')) {
          body += seg.slice(0, -1); // line splicing, as cpp does
          end = e + 1;
          line++;
          continue;
        }
        body += seg;
        end = e;
        break;
      }
      i = end;
      const directive = body.replace(/\/\/.*$/, '').replace(/\/\*.*?\*\//g, ' ');
      const d = /^#\s*define\s+([A-Za-z_]\w*)(?!\()\s*(.*)$/.exec(directive.trim());
      if (d) defines.set(d[1]!, { value: d[2]!.trim(), file, line: startLine });
      const inc = /^#\s*include\s+["<]([^">]+)[">]/.exec(directive.trim());
      if (inc) includes.push(inc[1]!);
      continue;
    }
    atLineStart = false;
    if (text.startsWith('//', i)) {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (text.startsWith('/*', i)) {
      const e = text.indexOf('*/', i + 2);
      if (e < 0) fail('unterminated comment');
      for (let k = i; k < e; k++) if (text[k] === '\n') line++;
      i = e + 2;
      continue;
    }
    if (c === '"') {
      const startLine = line;
      let s = '';
      i++;
      for (;;) {
        const ch = text[i];
        if (ch === undefined || ch === '\n') {
          line = startLine;
          fail('unterminated string');
        }
        i++;
        if (ch === '"') break;
        if (ch === '\\') {
          const e = text[i++];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === '\n' ? '' : (e ?? '');
          if (e === '\n') line++;
        } else s += ch;
      }
      toks.push({ t: 'str', v: s, line: startLine });
      continue;
    }
    const num = /^(0[xX][0-9a-fA-F]+|\d+)/.exec(text.slice(i, i + 40));
    if (num) {
      toks.push({ t: 'num', v: num[0], line });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_]\w*/.exec(text.slice(i, i + 200));
    if (id) {
      toks.push({ t: 'id', v: id[0], line });
      i += id[0].length;
      continue;
    }
    toks.push({ t: 'punct', v: c, line });
    i++;
  }
  return toks;
}

interface Setting {
  instance: string;
  attr: string;
  value: Tok[];
  line: number;
}

const VM_ATTRS = ['guest_ram_mb', 'kernel_cmdline', 'kernel_image', 'initrd_image'];

/** Imports one VM's attributes from a .camkes file. */
export function importCamkes(text: string, file: string, options: ImportOptions = {}): ImportResult {
  const defines = new Map<string, Define>();
  const includes: string[] = [];
  const toks = tokenize(text, file, defines, includes);
  readIncludes(includes, dirname(resolve(file)), defines, new Set([resolve(file)]));
  for (const [k, v] of Object.entries(options.defines ?? {}))
    defines.set(k, { value: v, file: '-D', line: 0 });

  // Find `inst.attr = value ;` settings.
  const settings: Setting[] = [];
  for (let i = 0; i + 3 < toks.length; i++) {
    const a = toks[i]!;
    const dot = toks[i + 1]!;
    const b = toks[i + 2]!;
    const eq = toks[i + 3]!;
    if (a.t !== 'id' || dot.v !== '.' || b.t !== 'id' || eq.v !== '=') continue;
    if (i > 0 && toks[i - 1]!.v === '.') continue;
    let j = i + 4;
    let depth = 0;
    const value: Tok[] = [];
    for (; j < toks.length; j++) {
      const t = toks[j]!;
      if (t.t === 'punct') {
        if ('([{'.includes(t.v)) depth++;
        else if (')]}'.includes(t.v)) depth--;
        else if (t.v === ';' && depth <= 0) break;
      }
      if (depth < 0) break;
      value.push(t);
    }
    if (j >= toks.length || toks[j]!.v !== ';') {
      throw new ConfigError({ file, line: a.line, key: `${a.v}.${b.v}` }, `expected ';' after the value`);
    }
    settings.push({ instance: a.v, attr: b.v, value, line: a.line });
    i = j;
  }

  const isVm = (inst: string): boolean =>
    /^vm\d*$/.test(inst) || settings.some((s) => s.instance === inst && VM_ATTRS.includes(s.attr));
  const instances = [...new Set(settings.map((s) => s.instance))].filter(isVm);
  if (instances.length === 0) {
    throw new ConfigError(
      { file },
      `no VM attributes found (expected settings like vm0.guest_ram_mb = 128; in a configuration block)`,
    );
  }
  let inst = instances[0]!;
  if (options.vm !== undefined) {
    if (!instances.includes(options.vm)) {
      throw new ConfigError(
        { file },
        `no VM named '${options.vm}'${didYouMean(options.vm, instances)}; the file configures ${instances.join(', ')}`,
      );
    }
    inst = options.vm;
  }

  const baseDir = baseDirOf(file, options);
  const warnings: string[] = [];
  if (instances.length > 1) {
    warnings.push(
      `the file configures ${instances.length} VMs (${instances.join(', ')}); importing ${inst} (choose another by name)`,
    );
  }
  const config: VmConfig = { name: instances.length > 1 ? inst : `${nameFromFile(file)}` };
  if (!/^[A-Za-z0-9]/.test(config.name)) config.name = inst;

  for (const s of settings.filter((x) => x.instance === inst)) {
    const key = `${s.instance}.${s.attr}`;
    const where = { file, line: s.line, key };
    switch (s.attr) {
      case 'guest_ram_mb': {
        const n = evalNumber(s.value, defines, where);
        if (n < MIN_MEMORY_MIB || n > MAX_MEMORY_MIB) {
          throw new ConfigError(
            where,
            `expected a number of MiB from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB}, got ${n}`,
          );
        }
        config.memoryMiB = n;
        break;
      }
      case 'kernel_cmdline':
        config.cmdline = evalString(s.value, defines, where).trim();
        break;
      case 'kernel_image':
        config.kernel = resolvePath(baseDir, nonEmpty(evalString(s.value, defines, where), where));
        break;
      case 'initrd_image':
        config.initrd = resolvePath(baseDir, nonEmpty(evalString(s.value, defines, where), where));
        break;
      case 'kernel_relocs':
        warnings.push(
          `CAmkES attribute '${key}' (relocation data for the seL4 VMM's loader) is not needed by typevisor; ignored`,
        );
        break;
      default:
        warnings.push(`CAmkES attribute '${key}' is not supported by typevisor; ignored`);
    }
  }
  return finish(config, warnings);
}

function nonEmpty(s: string, where: { file: string; line: number; key: string }): string {
  if (s.trim() === '') throw new ConfigError(where, 'expected a file name, got an empty string');
  return s.trim();
}

function readIncludes(names: string[], dir: string, defines: Map<string, Define>, seen: Set<string>): void {
  for (const n of names) {
    const p = resolve(dir, n);
    if (seen.has(p) || !existsSync(p)) continue;
    seen.add(p);
    let text: string;
    try {
      text = readFileSync(p, 'utf8');
    } catch {
      continue;
    }
    const more: string[] = [];
    const fileDefines = new Map<string, Define>();
    tokenize(text, p, fileDefines, more);
    for (const [k, v] of fileDefines) if (!defines.has(k)) defines.set(k, v);
    readIncludes(more, dirname(p), defines, seen);
  }
}

/** Expands macros in a value's tokens (recursively, with a depth limit). */
function expand(
  value: Tok[],
  defines: Map<string, Define>,
  where: { file: string; line: number; key: string },
  depth = 0,
): Tok[] {
  const out: Tok[] = [];
  for (const t of value) {
    if (t.t !== 'id') {
      out.push(t);
      continue;
    }
    const d = defines.get(t.v);
    if (!d) {
      throw new ConfigError(
        where,
        `${t.v} is a preprocessor macro whose value is not in this file; write the literal value (${where.key} = "...";) or define it (-D ${t.v}=VALUE)`,
      );
    }
    if (depth > 16) throw new ConfigError(where, `macro ${t.v} expands recursively`);
    const toks = tokenize(d.value, d.file, new Map(), []);
    out.push(...expand(toks, defines, where, depth + 1));
  }
  return out;
}

function evalString(
  value: Tok[],
  defines: Map<string, Define>,
  where: { file: string; line: number; key: string },
): string {
  const toks = expand(value, defines, where);
  if (toks.length === 0) throw new ConfigError(where, 'expected a string literal, got nothing');
  let s = '';
  for (const t of toks) {
    if (t.t !== 'str')
      throw new ConfigError(
        where,
        `expected a string literal like "...", got '${toks.map((x) => (x.t === 'str' ? JSON.stringify(x.v) : x.v)).join(' ')}'`,
      );
    s += t.v;
  }
  return s;
}

function evalNumber(
  value: Tok[],
  defines: Map<string, Define>,
  where: { file: string; line: number; key: string },
): number {
  const toks = expand(value, defines, where).filter(
    (t) => !(t.t === 'punct' && (t.v === '(' || t.v === ')')),
  );
  if (toks.length !== 1 || toks[0]!.t !== 'num') {
    throw new ConfigError(
      where,
      `expected a number, got '${toks.map((x) => (x.t === 'str' ? JSON.stringify(x.v) : x.v)).join(' ')}'`,
    );
  }
  return Number(toks[0]!.v);
}

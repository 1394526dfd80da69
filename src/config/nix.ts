// A reader for the literal subset of the Nix language that microvm.nix option files are written
// in (seed 004: `microvm.mem = 512; microvm.qemu.extraArgs = [ "..." ];`):
//
//   bindings      attr.path = VALUE;   (attribute paths may be quoted: "cloud-hypervisor")
//   values        integers, floats, "strings" (escapes; no ${} interpolation), ''indented
//                 strings'', true/false/null, [ lists ], { attribute sets }, paths (./x.img)
//   file shapes   bare bindings; `{ bindings }`; a module `{ config, pkgs, ... }: { bindings }`
//   comments      # to end of line, /* block */
//
// Anything that needs evaluation (function calls, `pkgs.x` references, `let`, `with`, `inherit`,
// `//`, interpolation) is an error naming the file, line and attribute: the importer needs
// literal values.

import { ConfigError } from './errors.js';

export type NixValue = string | number | boolean | null | NixValue[] | { [k: string]: NixValue };

/** Parses a Nix file of literal bindings into a plain object (dotted paths nested). */
export function parseNixAttrs(text: string, file: string): Record<string, NixValue> {
  return new NixParser(text, file).parseFile();
}

class NixParser {
  private pos = 0;
  private line = 1;
  private currentKey: string | undefined;

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  private fail(detail: string, line = this.line): never {
    throw new ConfigError({ file: this.file, line, key: this.currentKey }, detail);
  }

  private skip(): void {
    for (;;) {
      const c = this.text[this.pos];
      if (c === '\n') {
        this.line++;
        this.pos++;
      } else if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '#') {
        while (this.pos < this.text.length && this.text[this.pos] !== '\n') this.pos++;
      } else if (c === '/' && this.text[this.pos + 1] === '*') {
        const end = this.text.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated comment');
        for (let i = this.pos; i < end; i++) if (this.text[i] === '\n') this.line++;
        this.pos = end + 2;
      } else return;
    }
  }

  private peek(): string {
    this.skip();
    return this.text[this.pos] ?? '';
  }

  private expect(c: string): void {
    if (this.peek() !== c) this.fail(`expected '${c}', got ${this.near()}`);
    this.pos++;
  }

  private near(): string {
    if (this.pos >= this.text.length) return 'the end of the file';
    const end = this.text.indexOf('\n', this.pos);
    return JSON.stringify(
      this.text
        .slice(this.pos, end < 0 ? undefined : end)
        .trim()
        .slice(0, 30),
    );
  }

  parseFile(): Record<string, NixValue> {
    this.skip();
    // A module: `{ config, pkgs, lib, ... }:` or `args:` before the body.
    const header = /^(\{[^{}=;]*\}|[A-Za-z_][\w'-]*)\s*:/.exec(this.text.slice(this.pos));
    if (header && !/^[A-Za-z_][\w'-]*\s*:\s*\/\//.test(header[0])) {
      for (const ch of header[0]) if (ch === '\n') this.line++;
      this.pos += header[0].length;
    }
    let out: Record<string, NixValue>;
    if (this.peek() === '{') {
      this.pos++;
      out = this.bindings('}');
      this.expect('}');
    } else {
      out = this.bindings('');
    }
    if (this.peek() !== '') this.fail(`unexpected ${this.near()} after the attribute set`);
    return out;
  }

  private bindings(close: string): Record<string, NixValue> {
    const out: Record<string, NixValue> = {};
    for (;;) {
      const c = this.peek();
      if (c === close || (close === '' && c === '')) return out;
      if (c === '') this.fail(`unterminated attribute set (missing '${close}')`);
      const line = this.line;
      const path = this.attrPath();
      const saved = this.currentKey;
      this.currentKey = saved ? `${saved}.${path.join('.')}` : path.join('.');
      if (path[0] === 'inherit') this.fail(`'inherit' needs evaluation; write the attributes out`, line);
      if (path[0] === 'let' || path[0] === 'with')
        this.fail(`'${path[0]}' needs evaluation; write literal values`, line);
      this.expect('=');
      const v = this.value();
      this.expect(';');
      const key = this.currentKey;
      this.currentKey = saved;
      set(out, path, v, () => {
        throw new ConfigError({ file: this.file, line, key }, 'is set twice');
      });
    }
  }

  private attrPath(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skip();
      const c = this.text[this.pos];
      if (c === '"') parts.push(this.string());
      else {
        const m = /^[A-Za-z_][\w'-]*/.exec(this.text.slice(this.pos, this.pos + 200));
        if (!m) this.fail(`expected an attribute name, got ${this.near()}`);
        parts.push(m[0]);
        this.pos += m[0].length;
      }
      if (this.peek() === '.') {
        this.pos++;
        continue;
      }
      return parts;
    }
  }

  private value(): NixValue {
    const c = this.peek();
    const line = this.line;
    let v: NixValue;
    if (c === '"') v = this.string();
    else if (c === "'" && this.text[this.pos + 1] === "'") v = this.indented();
    else if (c === '[') {
      this.pos++;
      const items: NixValue[] = [];
      while (this.peek() !== ']') {
        if (this.peek() === '') this.fail(`unterminated list (missing ']')`, line);
        items.push(this.value());
      }
      this.pos++;
      v = items;
    } else if (c === '{') {
      this.pos++;
      v = this.bindings('}');
      this.expect('}');
    } else {
      const rest = this.text.slice(this.pos, this.pos + 200);
      const num = /^-?\d+(\.\d+)?(?![\w.])/.exec(rest);
      const path = /^(\.{1,2}|~)?(\/[\w.+-]+)+/.exec(rest);
      const word = /^[A-Za-z_][\w'-]*(\.[A-Za-z_][\w'-]*)*/.exec(rest);
      if (num) {
        this.pos += num[0].length;
        v = Number(num[0]);
      } else if (path && (path[1] !== undefined || rest.startsWith('/'))) {
        this.pos += path[0].length;
        v = path[0];
      } else if (word && ['true', 'false', 'null'].includes(word[0])) {
        this.pos += word[0].length;
        v = word[0] === 'null' ? null : word[0] === 'true';
      } else if (word) {
        this.fail(
          `'${word[0]}' needs Nix evaluation; write a literal value (a number, "string", [ list ] or { set })`,
          line,
        );
      } else {
        this.fail(`expected a value, got ${this.near()}`, line);
      }
    }
    const after = this.peek();
    if (after === '+' || (after === '/' && this.text[this.pos + 1] === '/')) {
      this.fail(`operators need Nix evaluation; write the resulting literal value`, this.line);
    }
    return v;
  }

  private string(): string {
    const line = this.line;
    this.pos++; // "
    let s = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string', line);
      this.pos++;
      if (c === '"') return s;
      if (c === '\n') this.line++;
      if (c === '$' && this.text[this.pos] === '{')
        this.fail('string interpolation ${...} needs Nix evaluation; write the literal string', this.line);
      if (c === '\\') {
        const e = this.text[this.pos++];
        s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : (e ?? '');
        continue;
      }
      s += c;
    }
  }

  private indented(): string {
    const line = this.line;
    this.pos += 2;
    let raw = '';
    for (;;) {
      if (this.pos >= this.text.length) this.fail("unterminated ''string''", line);
      if (this.text.startsWith("'''", this.pos)) {
        raw += "''";
        this.pos += 3;
        continue;
      }
      if (this.text.startsWith("''", this.pos)) {
        this.pos += 2;
        break;
      }
      const c = this.text[this.pos++]!;
      if (c === '$' && this.text[this.pos] === '{')
        this.fail('string interpolation ${...} needs Nix evaluation; write the literal string', this.line);
      if (c === '\n') this.line++;
      raw += c;
    }
    // Strip the common indentation, and a first empty line.
    const lines = raw.replace(/^[ \t]*\n/, '').split('\n');
    const indents = lines.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0].length);
    const strip = indents.length ? Math.min(...indents) : 0;
    return lines
      .map((l) => l.slice(strip))
      .join('\n')
      .replace(/[ \t]+$/, '');
  }
}

function set(obj: Record<string, NixValue>, path: string[], value: NixValue, dup: () => never): void {
  let o = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    const next = o[k];
    if (next === undefined) o[k] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) dup();
    o = o[k] as Record<string, NixValue>;
  }
  const last = path[path.length - 1]!;
  const prev = o[last];
  if (prev !== undefined) {
    const isSet = (v: NixValue | undefined): v is Record<string, NixValue> =>
      typeof v === 'object' && v !== null && !Array.isArray(v);
    if (isSet(prev) && isSet(value)) {
      for (const [k, v] of Object.entries(value)) set(prev, [k], v, dup);
      return;
    }
    dup();
  }
  o[last] = value;
}

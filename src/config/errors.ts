// Errors and small helpers shared by the config layer.
//
// A ConfigError is a user error: the CLI prints its message alone and exits non-zero. The message
// always starts with the file (and the line, where the format has lines), then names the key (a
// JSON path such as `disks[1].path`, or the key as the source format spells it) and what was
// expected, e.g. `vm.json: disks[1].path: expected a string, got 42`.

import { basename } from 'node:path';
import { UserError } from '../host/errors.js';

export interface ConfigErrorInfo {
  /** The config file as the user named it. */
  file: string;
  /** The key, as a JSON path or as the source format spells it. */
  key?: string;
  /** 1-based line number, for formats with lines. */
  line?: number;
}

export class ConfigError extends UserError {
  readonly file: string;
  readonly key: string | undefined;
  readonly line: number | undefined;
  /** The message without the file/line/key prefix. */
  readonly detail: string;

  constructor(info: ConfigErrorInfo, detail: string) {
    let prefix = info.file;
    if (info.line !== undefined) prefix += `:${info.line}`;
    if (info.key !== undefined && info.key !== '') prefix += `: ${info.key}`;
    super(`${prefix}: ${detail}`, 2);
    this.name = 'ConfigError';
    this.file = info.file;
    this.key = info.key;
    this.line = info.line;
    this.detail = detail;
  }
}

/** Levenshtein distance (small strings only). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = new Array<number>(n + 1);
  let cur = new Array<number>(n + 1);
  for (let j = 0; j <= n; j++) prev[j] = j;
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[n]!;
}

/** The closest candidate to `word` when it is close enough to be a likely typo, else undefined. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    if (cl === w) return c;
    const d = editDistance(w, cl);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  // A key missing its unit or suffix ("target" for "targetMiB") is a likely mistake too.
  if (bestD > 1 && w.length >= 4) {
    for (const c of candidates) {
      const cl = c.toLowerCase();
      if (cl.startsWith(w) || w.startsWith(cl)) return c;
    }
  }
  // Allow about one typo per three characters, at least 1 and at most 3.
  const limit = Math.max(1, Math.min(3, Math.floor(Math.max(w.length, 2) / 3)));
  return bestD <= limit ? best : undefined;
}

/** " (did you mean 'x'?)" or "". */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c ? ` (did you mean '${c}'?)` : '';
}

/** How a JSON value reads in an error message: strings quoted, others as JSON, long ones cut. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : `a list (${short(JSON.stringify(v))})`;
  if (typeof v === 'object') return `an object (${short(JSON.stringify(v))})`;
  if (typeof v === 'string') return JSON.stringify(short(v));
  return String(v);
}

function short(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** A default VM name from a config file's name: `/etc/xen/web.cfg` -> `web`. */
export function nameFromFile(file: string): string {
  const b = basename(file).replace(/\.(json|cfg|conf|camkes|nix|xl)$/i, '');
  const cleaned = b.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '');
  return cleaned || 'guest';
}

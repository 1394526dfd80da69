// `typevisor run` driven as a user scripts it: the console on a pipe, a script typed on stdin, the
// process killed when the guest does not finish in time. Guest commands print marker lines
// ("@@key=value") whose value comes from the guest, so the echo of the typed command (which holds
// the unexpanded text) never matches.

import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';

/** The command users run (it starts dist/src/cli/main.js with the VM process's Node.js options). */
export const typevisor = join(resolve(import.meta.dirname, '..', '..', '..'), 'bin', 'typevisor');

/** How long one Linux boot on the software CPU may take. */
export const BOOT_TIMEOUT_MS = 15 * 60 * 1000;

export interface RunResult {
  code: number | null;
  out: string;
  err: string;
  /** The values of each "@@key=value" console line, in order. */
  markers: Map<string, string[]>;
}

/** Run `typevisor run ARGS` with `script` on stdin; rejects (after killing it) past `timeoutMs`. */
export function runGuest(
  args: string[],
  script: string,
  timeoutMs = BOOT_TIMEOUT_MS,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(typevisor, ['run', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    p.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(
        new Error(
          `guest did not finish in ${timeoutMs / 1000} s; console so far:\n${out.slice(-3000)}\n${err}`,
        ),
      );
    }, timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      const markers = new Map<string, string[]>();
      for (const line of out.split(/\r?\n/)) {
        const m = /^@@([a-z0-9_]+)=(.*)$/.exec(line.trim());
        if (m) markers.set(m[1], [...(markers.get(m[1]) ?? []), m[2].trim()]);
      }
      resolvePromise({ code, out, err, markers });
    });
    p.stdin.end(script);
  });
}

/** The first "@@key=" value; fails the test, showing the console, when there is none. */
export function marker(r: RunResult, key: string): string {
  const v = r.markers.get(key);
  assert.ok(
    v && v.length > 0,
    `no @@${key}= line in the console output:\n${r.out.slice(-4000)}\n--- stderr ---\n${r.err}`,
  );
  return v[0];
}

// Shared by the CLI's entry points (main.ts, vm-server.ts): "is this module the program?", and the
// exit status and message for an error: a user error prints its message alone (no stack trace).

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { UserError } from '../host/errors.js';

export function isEntry(moduleUrl: string): boolean {
  try {
    return !!process.argv[1] && moduleUrl === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

/** Print `err` for a person and return the exit status: 2 for usage/config errors, 70 for bugs. */
export function reportError(err: unknown): number {
  if (err instanceof UserError || (err instanceof Error && err.name === 'ConfigError')) {
    process.stderr.write(`typevisor: ${err.message}\n`);
    return err instanceof UserError ? err.exitCode : 2;
  }
  if (err instanceof Error && /^ERR_PARSE_ARGS/.test(String((err as { code?: string }).code))) {
    process.stderr.write(`typevisor: ${err.message}\n`);
    return 2;
  }
  process.stderr.write(`typevisor: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}

/**
 * Keep V8's young generation at its starting size (two 1 MiB semi-spaces) instead of letting it
 * double up to 2 x 16 MiB. The software CPU allocates short-lived objects at a high rate (about
 * 14 GiB while booting the default image), so V8 grows the young generation to its maximum within
 * seconds and both semi-spaces then stay resident: 30 MiB of the VMM's memory. The price is more,
 * smaller scavenges. Measured booting the default image (VMM beyond guest RAM; main-thread
 * scavenge time in the 30 s boot): 2 x 16 MiB 112 MiB, 0.5 s; 2 x 2 MiB 81 MiB, 1.3 s; 2 x 1 MiB
 * 78 MiB, 1.6 s.
 *
 * --max-semi-space-size would need a re-exec or NODE_OPTIONS (V8 sizes its heap before any
 * JavaScript runs), but the growth factor is read each time V8 would grow the space, so setting it
 * here, before the VM's code loads, takes effect.
 */
export function limitYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Run `main` as the program: its result becomes the exit status (or `exit` is called with it). */
export function runAsProgram(main: (args: string[]) => Promise<number>, exit = false): void {
  limitYoungGeneration();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const code = reportError(err);
      if (exit) process.exit(code);
      process.exitCode = code;
    },
  );
}

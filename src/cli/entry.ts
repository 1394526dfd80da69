// Shared by the CLI's entry points (main.ts, vm-server.ts): "is this module the program?", and the
// exit status and message for an error: a user error prints its message alone (no stack trace).

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
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

/** Run `main` as the program: its result becomes the exit status (or `exit` is called with it). */
export function runAsProgram(main: (args: string[]) => Promise<number>, exit = false): void {
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

#!/usr/bin/env node
// typevisor's command-line entry: one module per verb (like kvmtool's builtin-*.c).

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UserError } from '../host/errors.js';

interface Verb {
  summary: string;
  load: () => Promise<{ main(args: string[]): Promise<number> }>;
}

const VERBS: Record<string, Verb> = {
  run: { summary: 'boot a guest in the foreground with its console on this terminal', load: () => import('./run.js') },
  image: { summary: 'build the default arm64 guest image (image build)', load: () => import('./image.js') },
  import: { summary: 'convert an xl / Fuchsia / microvm.nix / CAmkES config to typevisor JSON', load: () => import('./import.js') },
};

function usage(): string {
  const lines = ['usage: typevisor <command> [options]', '', 'commands:'];
  for (const [name, v] of Object.entries(VERBS)) lines.push(`  ${name.padEnd(16)} ${v.summary}`);
  lines.push('', "run 'typevisor <command> --help' for a command's options");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage() + '\n');
    return verb ? 0 : 2;
  }
  const v = VERBS[verb];
  if (!v) {
    process.stderr.write(`typevisor: unknown command '${verb}'\n${usage()}\n`);
    return 2;
  }
  const mod = await v.load();
  return mod.main(rest);
}

function isEntry(): boolean {
  try {
    return !!process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof UserError || (err instanceof Error && err.name === 'ConfigError')) {
        process.stderr.write(`typevisor: ${err.message}\n`);
        process.exitCode = err instanceof UserError ? err.exitCode : 2;
      } else if (err instanceof Error && /^ERR_PARSE_ARGS/.test(String((err as { code?: string }).code))) {
        process.stderr.write(`typevisor: ${err.message}\n`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`typevisor: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exitCode = 70;
      }
    },
  );
}

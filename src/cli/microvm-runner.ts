// `typevisor microvm-runner CONFIG --out DIR`: write microvm.nix-style runner scripts
// (DIR/bin/microvm-run, -shutdown, -balloon, -console) calling this CLI.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { writeMicrovmRunner } from '../config/microvm-runner.js';

const HELP = `usage: typevisor microvm-runner CONFIG --out DIR [--from FORMAT]

Writes DIR/bin/microvm-run (typevisor run CONFIG), microvm-shutdown (typevisor shutdown -w NAME),
microvm-balloon MIB (typevisor balloon NAME MIB) and microvm-console (typevisor console NAME),
as microvm.nix does for its hypervisors. $TYPEVISOR in their environment names the typevisor binary.
`;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      help: { type: 'boolean', short: 'h' },
      out: { type: 'string', short: 'o' },
      from: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError(
      'microvm-runner: expected one config file (typevisor microvm-runner CONFIG --out DIR)',
    );
  if (!values.out) throw new UserError('microvm-runner: --out DIR is required');
  const r = writeMicrovmRunner(positionals[0], values.out, { from: values.from });
  for (const w of r.warnings) process.stderr.write(`typevisor: warning: ${w}\n`);
  for (const s of r.scripts) process.stdout.write(s + '\n');
  return 0;
}

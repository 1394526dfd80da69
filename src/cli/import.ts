// `typevisor import FILE [--from xl|fuchsia|microvm|camkes|native]`: print the typevisor JSON config for
// an xl .cfg, a Fuchsia guest config, microvm.nix options or CAmkES VM attributes. Warnings (features
// the source asks for that typevisor does not have) go to stderr.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { loadConfig } from '../config/load.js';
import { formatConfig } from '../config/vmconfig.js';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { from: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  const usage = 'usage: typevisor import FILE [--from native|xl|fuchsia|microvm|camkes]\n';
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (positionals.length !== 1) throw new UserError(`import: expected one config file\n${usage}`);
  const { config, warnings, format } = loadConfig(positionals[0], { from: values.from });
  for (const w of warnings) process.stderr.write(`typevisor: warning: ${w}\n`);
  process.stderr.write(`typevisor: read ${positionals[0]} as ${format}\n`);
  process.stdout.write(formatConfig(config));
  return 0;
}

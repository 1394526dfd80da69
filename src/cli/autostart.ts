// `typevisor autostart [DIR]` (xendomains' /etc/xen/auto): create every guest configured in DIR
// (default /etc/typevisor/auto; *.json and *.cfg files) that is not running yet.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { loadConfig } from '../config/load.js';
import { entryAlive } from '../api/client.js';
import { stateDir } from '../vmm/state.js';
import { specFromOptions } from '../config/spec.js';
import { createVm } from './create.js';

export const DEFAULT_AUTOSTART_DIR = '/etc/typevisor/auto';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      `usage: typevisor autostart [DIR]\n\nCreates every guest configured in DIR (default ${DEFAULT_AUTOSTART_DIR}; *.json, *.cfg) that is not running.\n`,
    );
    return 0;
  }
  if (positionals.length > 1) throw new UserError('autostart: expected at most one directory');
  const dir = positionals[0] ?? DEFAULT_AUTOSTART_DIR;
  let files: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new UserError(`autostart: ${dir} is not a directory`);
    files = readdirSync(dir)
      .filter((f) => /\.(json|cfg)$/.test(f))
      .sort();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`autostart: cannot read ${dir}: ${(e as Error).message}`);
  }
  let failures = 0;
  for (const f of files) {
    const path = join(dir, f);
    try {
      const { config } = loadConfig(path);
      if ((await entryAlive(config.name, stateDir())).alive) {
        process.stderr.write(`typevisor: ${config.name} (${path}) is already running\n`);
        continue;
      }
      const spec = await specFromOptions({}, path);
      const rec = await createVm(spec, { onPoweroff: config.onPoweroff, onCrash: config.onCrash });
      process.stderr.write(`typevisor: created ${rec.name} (id ${rec.id}) from ${path}\n`);
    } catch (e) {
      failures++;
      process.stderr.write(
        `typevisor: ${path}: ${e instanceof UserError ? e.message.replace(new RegExp(`^${escapeRe(path)}: `), '') : (e as Error).message}\n`,
      );
    }
  }
  return failures > 0 ? 1 : 0;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

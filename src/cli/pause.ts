// `typevisor pause NAME` / `typevisor unpause NAME`: stop and resume the guest's vCPUs (xl pause /
// unpause). Unpausing a guest created with -p boots it.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { callVm, findVm } from '../api/client.js';

async function run(verb: 'pause' | 'unpause', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: typevisor ${verb} NAME\n`);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError(`${verb}: expected one guest name (typevisor ${verb} NAME)`);
  const rec = await findVm(positionals[0]);
  await callVm(rec, 'PATCH', '/vm', { state: verb === 'pause' ? 'Paused' : 'Resumed' });
  return 0;
}

export function main(args: string[]): Promise<number> {
  return run('pause', args);
}

export function unpauseMain(args: string[]): Promise<number> {
  return run('unpause', args);
}

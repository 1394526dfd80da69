// `typevisor reboot NAME`: ask the guest to reboot (magic SysRq sync / remount read-only / reboot).

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { callVm, findVm } from '../api/client.js';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: typevisor reboot NAME\n\nAsks the guest NAME (or its id) to reboot.\n');
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError('reboot: expected one guest name (typevisor reboot NAME)');
  const rec = await findVm(positionals[0]);
  await callVm(rec, 'PUT', '/reboot');
  return 0;
}

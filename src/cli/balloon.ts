// `typevisor balloon NAME MIB`: set the memory the guest should keep (like `xl mem-set`, QEMU's
// `balloon`); the virtio-balloon takes the rest. Without MIB, prints the balloon's state.

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
    process.stdout.write(
      'usage: typevisor balloon NAME [MIB]\n\nSets the memory the guest NAME should keep, in MiB (its balloon takes the rest).\n',
    );
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 2)
    throw new UserError('balloon: expected NAME and a size in MiB (typevisor balloon NAME MIB)');
  const rec = await findVm(positionals[0]);
  const cfg = (await callVm(rec, 'GET', '/machine-config')) as { mem_size_mib: number };
  if (positionals.length === 1) {
    const b = (await callVm(rec, 'GET', '/balloon')) as { target_mib: number; actual_mib: number };
    process.stdout.write(
      `${rec.name}: memory ${cfg.mem_size_mib} MiB, target ${b.target_mib} MiB, guest has ${b.actual_mib} MiB\n`,
    );
    return 0;
  }
  const text = positionals[1];
  const mib = Number(text);
  if (!/^\d+$/.test(text) || mib > cfg.mem_size_mib) {
    throw new UserError(
      `balloon: expected a size from 0 to ${cfg.mem_size_mib} MiB (the guest's memory), got '${text}'`,
    );
  }
  await callVm(rec, 'PATCH', '/balloon', { amount_mib: cfg.mem_size_mib - mib });
  return 0;
}

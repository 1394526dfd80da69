// `typevisor shutdown [-w] NAME`: ask the guest to power off (the power key, then the kernel's
// magic SysRq after a grace period), like `xl shutdown`. -w waits until the VM process has exited.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { callVm, findVm, waitPidExit } from '../api/client.js';

const HELP = `usage: typevisor shutdown [-w] [--grace SECONDS] NAME

Asks the guest NAME (or its id) to power off: the power key first; a guest that ignores it gets
the kernel's magic SysRq sync / remount read-only / power off after --grace seconds (default 5).
  -w, --wait      return only once the guest has powered off and its VM process has exited
`;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      help: { type: 'boolean', short: 'h' },
      wait: { type: 'boolean', short: 'w' },
      grace: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError('shutdown: expected one guest name (typevisor shutdown [-w] NAME)');
  let graceMs: number | undefined;
  if (values.grace !== undefined) {
    const g = Number(values.grace);
    if (!/^\d+(\.\d+)?$/.test(values.grace) || !Number.isFinite(g))
      throw new UserError(`--grace: expected seconds, got '${values.grace}'`);
    graceMs = Math.round(g * 1000);
  }
  const rec = await findVm(positionals[0]);
  await callVm(rec, 'PUT', '/shutdown', graceMs === undefined ? undefined : { grace_ms: graceMs });
  if (values.wait) {
    process.stderr.write(`typevisor: waiting for ${rec.name} to shut down\n`);
    await waitPidExit(rec.pid, Infinity, rec.pidStart);
    process.stderr.write(`typevisor: ${rec.name} has shut down\n`);
  }
  return 0;
}

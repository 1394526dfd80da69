// `typevisor save [--stop] NAME FILE`: write a snapshot of a running guest (xl save). The guest is
// paused while the file is written, then runs on (or is destroyed with --stop; a guest that was
// paused stays paused). `typevisor restore FILE` brings it back.

import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { apiRequest, callVm, faultOf, findVm, waitPidExit } from '../api/client.js';
import { entryPaths, stateDir } from '../vmm/state.js';

const HELP = `usage: typevisor save [--stop] NAME FILE

Pauses the guest NAME (or its id), writes its state (config, vCPUs, devices, the RAM pages in use,
compressed) to FILE, then lets it run on. Disks are referenced by path, not copied: restore the
snapshot with the disks as they were when it was taken (--stop guarantees that).

  --stop    destroy the guest once the snapshot is written (xl save without -c)
`;

/** How long the VM process may take to write the file. */
const SAVE_TIMEOUT_MS = 300_000;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { stop: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 2)
    throw new UserError('save: expected a guest name and a file (typevisor save NAME FILE)');
  const dir = stateDir();
  const rec = await findVm(positionals[0], dir);
  const file = resolve(positionals[1]);
  const vm = (await callVm(rec, 'GET', '/vm', undefined, dir)) as { state: string };
  if (vm.state === 'not-started')
    throw new UserError(
      `guest '${rec.name}' has not been started (created with -p): there is nothing to save`,
      1,
    );
  const wasPaused = vm.state === 'paused';
  if (!wasPaused) await callVm(rec, 'PATCH', '/vm', { state: 'Paused' }, dir);
  let fault: string | undefined;
  try {
    const r = await apiRequest(
      entryPaths(rec.name, dir).control,
      'PUT',
      '/snapshot/create',
      { snapshot_path: file },
      SAVE_TIMEOUT_MS,
    );
    if (r.status < 200 || r.status >= 300) fault = faultOf(r);
  } finally {
    if (!wasPaused && !(values.stop && fault === undefined))
      await callVm(rec, 'PATCH', '/vm', { state: 'Resumed' }, dir);
  }
  if (fault !== undefined) throw new UserError(`guest '${rec.name}': ${fault}`, 1);
  const mib = (statSync(file).size / 1048576).toFixed(1);
  if (values.stop) {
    await callVm(rec, 'PUT', '/destroy', undefined, dir);
    await waitPidExit(rec.pid, 10_000, rec.pidStart);
  }
  process.stderr.write(
    `typevisor: saved ${rec.name} to ${file} (${mib} MiB)${values.stop ? '; guest destroyed' : ''}\n`,
  );
  return 0;
}

// `typevisor destroy NAME`: stop the guest at once (like `xl destroy`: no chance to flush) and wait
// for its VM process to exit. A VM process that does not answer is killed.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { apiRequest, findVm, waitPidExit } from '../api/client.js';
import { entryPaths, pidAlive, removeEntry, stateDir } from '../vmm/state.js';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: typevisor destroy NAME\n\nStops the guest NAME (or its id) at once, like pulling the plug.\n',
    );
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError('destroy: expected one guest name (typevisor destroy NAME)');
  const dir = stateDir();
  const rec = await findVm(positionals[0], dir);
  let asked = false;
  try {
    const r = await apiRequest(entryPaths(rec.name, dir).control, 'PUT', '/destroy', undefined, 3000);
    asked = r.status >= 200 && r.status < 300;
  } catch {
    // not answering: kill it below
  }
  if (!asked || !(await waitPidExit(rec.pid, 5000, rec.pidStart))) {
    try {
      if (pidAlive(rec.pid, rec.pidStart)) process.kill(rec.pid, 'SIGKILL');
    } catch {
      // gone already
    }
    await waitPidExit(rec.pid, 5000, rec.pidStart);
  }
  removeEntry(rec.name, dir);
  return 0;
}

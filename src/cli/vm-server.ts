// `node vm-server.js --state-dir DIR NAME` (hidden; `create` spawns it): the VM process. It boots
// the guest from DIR/NAME/spec.json, serves control.sock (HTTP API), qmp.sock (QMP) and console.sock
// (raw console), and exits when the VM is gone, removing its state entry.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { isEntry, runAsProgram } from './entry.js';
import { VmHost } from '../vmm/server.js';
import { stateDir } from '../vmm/state.js';
import { createControlServer } from '../api/control.js';
import { createQmpServer } from '../api/qmp.js';
import { serveGdbAnnounced } from '../api/gdb.js';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { 'state-dir': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1)
    throw new UserError('usage: typevisor vm-server [--state-dir DIR] NAME (internal; use typevisor create)');
  const name = positionals[0];
  const dir = values['state-dir'] ?? stateDir();
  let host: VmHost;
  try {
    host = VmHost.fromEntry(name, dir);
  } catch (e) {
    throw new UserError(`vm-server: cannot read the entry of '${name}' in ${dir}: ${(e as Error).message}`);
  }
  const gone = new Promise<number>((resolve) => host.once('gone', resolve));
  const onSignal = (): void => host.destroy();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {});
  // On a failure here the entry stays: `create` reads the message from vm.log and removes it.
  if (host.record.spec.gdb) await serveGdbAnnounced(host.vm, host.record.spec.gdb);
  if (!host.record.startPaused) await host.start();
  await host.listen(host.paths.console, host.consoleServer());
  await host.listen(host.paths.qmp, createQmpServer(host));
  // Last: `create` waits for this socket to answer.
  await host.listen(host.paths.control, createControlServer(host));
  const code = await gone;
  // Let replies and console output drain, then leave even if a client holds a connection open.
  setTimeout(() => process.exit(code), 100).unref();
  return code;
}

// Run directly (`node vm-server.js ...`, as `create` does): the verb stays out of the CLI's list.
if (isEntry(import.meta.url)) runAsProgram(main, true);

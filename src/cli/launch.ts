// `typevisor launch CONFIG [run options]` (Fuchsia's `guest launch`): boot a guest in the foreground
// with its console on this terminal, as `typevisor run CONFIG` does, and also register it in the
// state directory with its sockets (control.sock, qmp.sock, console.sock), so that list, console,
// shutdown, balloon, pause... reach it while it runs. It is the foreground VM process that a
// service manager keeps (microvm.nix's microvm-run); Ctrl-] on a terminal destroys the guest.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { loadConfig } from '../config/load.js';
import { checkKernel } from '../vmm/guest.js';
import { VmHost } from '../vmm/server.js';
import {
  claimId,
  socketPathProblem,
  ensureStateDir,
  pidStartTime,
  releaseId,
  removeEntry,
  stateDir,
  writeJsonAtomic,
  entryPaths,
  type VmRecord,
} from '../vmm/state.js';
import { createControlServer } from '../api/control.js';
import { createQmpServer } from '../api/qmp.js';
import { RUN_HELP, RUN_OPTIONS } from './spec.js';
import { specFromOptions } from '../config/spec.js';
import { claimName } from './create.js';
import { ESCAPE_BYTE } from './run.js';
import { serveGdbAnnounced } from '../api/gdb.js';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: RUN_OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      RUN_HELP.replace(
        'usage: typevisor run [CONFIG] [options]',
        'usage: typevisor launch [CONFIG] [options]',
      ) +
        '\nlaunch also registers the guest in the state directory (typevisor list, console, shutdown... reach it).\n',
    );
    return 0;
  }
  if (positionals.length > 1)
    throw new UserError(`launch: expected at most one config file, got ${positionals.join(' ')}`);
  const configPath = positionals[0];
  const spec = await specFromOptions(values, configPath);
  let onPoweroff: string | undefined;
  let onCrash: string | undefined;
  if (configPath) {
    const { config } = loadConfig(configPath, { from: values.from });
    onPoweroff = config.onPoweroff;
    onCrash = config.onCrash;
  }
  await checkKernel(spec);
  const dir = ensureStateDir(stateDir());
  const tooLong = socketPathProblem(spec.name, dir);
  if (tooLong) throw new UserError(tooLong);
  await claimName(spec.name, dir);
  let id = 0;
  let host: VmHost;
  try {
    id = claimId(spec.name, dir);
    // In the foreground, on_poweroff/on_crash 'preserve' would only keep this terminal waiting.
    const record: VmRecord = {
      name: spec.name,
      id,
      pid: process.pid,
      pidStart: pidStartTime(process.pid),
      spec,
      created: new Date().toISOString(),
      onPoweroff: onPoweroff === 'preserve' ? undefined : onPoweroff,
      onCrash: onCrash === 'preserve' ? undefined : onCrash,
    };
    writeJsonAtomic(entryPaths(spec.name, dir).spec, record);
    writeJsonAtomic(entryPaths(spec.name, dir).record, record);
    host = new VmHost(record, dir);
  } catch (e) {
    removeEntry(spec.name, dir);
    if (id) releaseId(id, spec.name, dir);
    throw e;
  }
  return runRegistered(host);
}

async function runRegistered(host: VmHost): Promise<number> {
  const spec = host.record.spec;
  const gone = new Promise<number>((resolve) => host.once('gone', resolve));
  let exitMessage = '';
  host.vm.once('exit', (e: { message: string }) => (exitMessage = e.message));
  process.stderr.write(
    `typevisor: booting ${spec.name} (id ${host.record.id}): ${spec.cpus} vCPU(s), ${spec.memoryMiB} MiB, kernel ${spec.kernel}` +
      (process.stdin.isTTY ? ' (Ctrl-] quits)' : '') +
      '\n',
  );
  host.vm.console.on('data', (d: Buffer) => process.stdout.write(d));
  const stdin = process.stdin;
  let quitByEscape = false;
  const onData = (chunk: Buffer): void => {
    if (stdin.isTTY) {
      const i = chunk.indexOf(ESCAPE_BYTE);
      if (i >= 0) {
        if (i > 0) host.vm.input.write(chunk.subarray(0, i));
        quitByEscape = true;
        host.destroy();
        return;
      }
    }
    host.vm.input.write(chunk);
  };
  const onSignal = (): void => host.destroy();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    try {
      if (spec.gdb) await serveGdbAnnounced(host.vm, spec.gdb);
      await host.start();
      await host.listen(host.paths.console, host.consoleServer());
      await host.listen(host.paths.qmp, createQmpServer(host));
      await host.listen(host.paths.control, createControlServer(host));
    } catch (e) {
      host.close(2);
      throw e;
    }
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
    const code = await gone;
    // Leave even if a client still holds a connection (the VM is gone); output drains first.
    setTimeout(() => process.exit(quitByEscape ? 0 : code), 200).unref();
    process.stderr.write(
      quitByEscape
        ? '\r\ntypevisor: quit from the console (Ctrl-])\n'
        : `\r\ntypevisor: ${exitMessage || 'VM stopped'}\n`,
    );
    return quitByEscape ? 0 : code;
  } finally {
    stdin.off('data', onData);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    stdin.unref?.();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

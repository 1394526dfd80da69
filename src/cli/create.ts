// `typevisor create [-c] [-p] CONFIG [run options]`: start a guest as its own detached VM process
// (like `xl create`). Returns once the VM's control socket answers; -c then attaches the console,
// -p leaves the guest paused before its first instruction (unpause starts it).

import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { VM_NODE_OPTIONS, vmEnv } from '../host/vm-process.js';
import { loadConfig } from '../config/load.js';
import { checkKernel } from '../vmm/guest.js';
import { apiRequest, entryAlive } from '../api/client.js';
import {
  claimId,
  ensureStateDir,
  entryPaths,
  pidStartTime,
  releaseId,
  socketPathProblem,
  removeEntry,
  stateDir,
  writeJsonAtomic,
  type VmRecord,
} from '../vmm/state.js';
import type { VmSpec } from '../vmm/vm.js';
import { RUN_OPTIONS } from './spec.js';
import { specFromOptions } from '../config/spec.js';
import { attachConsole } from './console.js';

const HELP = `usage: typevisor create [-c] [-p] CONFIG [options]

Starts the guest described by CONFIG (typevisor JSON, xl .cfg, Fuchsia, microvm.nix or CAmkES) as
a background VM process and returns once it answers on its control socket. Options are those of
'typevisor run' (they override the config), plus:

  -c, --console   attach to the guest's console once it has started (Ctrl-] detaches)
  -p, --paused    leave the guest paused before it runs (typevisor unpause NAME starts it)

The VM's sockets are in the state directory ($TYPEVISOR_STATE_DIR, else $XDG_RUNTIME_DIR/typevisor,
else /tmp/typevisor-$UID): NAME/control.sock (HTTP API), NAME/qmp.sock, NAME/console.sock.
`;

/** How long create waits for the VM process to answer. */
const READY_TIMEOUT_MS = 120_000;

export interface CreateOptions {
  startPaused?: boolean;
  onPoweroff?: string;
  onCrash?: string;
  /** Where the VM process's stderr goes (default NAME/vm.log). */
  stateRoot?: string;
  /** Start from this snapshot file (typevisor restore) instead of booting. */
  restore?: string;
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...RUN_OPTIONS,
      console: { type: 'string' },
      c: { type: 'boolean', short: 'c' },
      attach: { type: 'boolean' },
      paused: { type: 'boolean', short: 'p' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1)
    throw new UserError(`create: expected one config file, got ${positionals.join(' ')}`);
  const configPath = positionals[0];
  const spec = await specFromOptions(values, configPath);
  let onPoweroff: string | undefined;
  let onCrash: string | undefined;
  if (configPath) {
    const { config } = loadConfig(configPath, { from: values.from });
    onPoweroff = config.onPoweroff;
    onCrash = config.onCrash;
  }
  const rec = await createVm(spec, { startPaused: values.paused, onPoweroff, onCrash });
  process.stderr.write(
    `typevisor: created ${rec.name} (id ${rec.id}, pid ${rec.pid})${values.paused ? ', paused' : ''}\n`,
  );
  if (spec.vsock) {
    process.stderr.write(
      `typevisor: ${rec.name}: virtio-vsock guest CID ${spec.vsock.cid}, host socket ${spec.vsock.uds ?? entryPaths(rec.name).vsock}\n`,
    );
  }
  if (values.c || values.attach) return attachConsole(rec.name, entryPaths(rec.name).console);
  return 0;
}

/** The VM process entry (a hidden program, not a CLI verb). */
function serverPath(): string {
  return fileURLToPath(new URL('./vm-server.js', import.meta.url));
}

/** Claim NAME in the state directory; a live guest of that name is an error, a dead one is cleared. */
export async function claimName(name: string, dir: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      mkdirSync(entryPaths(name, dir).dir, { mode: 0o700 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const { alive, record } = await entryAlive(name, dir);
    if (alive) {
      throw new UserError(
        `a guest named '${name}' is already running${record ? ` (id ${record.id}, pid ${record.pid})` : ''}; ` +
          `destroy it first (typevisor destroy ${name}) or give this one another name (--name)`,
        1,
      );
    }
    removeEntry(name, dir);
  }
  throw new UserError(`cannot claim the name '${name}' in ${dir}`, 1);
}

/** Start `spec` as a detached VM process; resolves with its record once its control socket answers. */
export async function createVm(spec: VmSpec, opts: CreateOptions = {}): Promise<VmRecord> {
  // Catch a bad kernel here, before anything starts (a restored guest needs none until it reboots).
  if (!opts.restore) await checkKernel(spec);
  const dir = ensureStateDir(opts.stateRoot ?? stateDir());
  const name = spec.name;
  const tooLong = socketPathProblem(name, dir);
  if (tooLong) throw new UserError(tooLong);
  await claimName(name, dir);
  const paths = entryPaths(name, dir);
  let id = 0;
  try {
    id = claimId(name, dir);
    const base = {
      name,
      id,
      spec,
      created: new Date().toISOString(),
      startPaused: opts.startPaused || undefined,
      onPoweroff: opts.onPoweroff,
      onCrash: opts.onCrash,
      restore: opts.restore,
    };
    writeJsonAtomic(paths.spec, base);
    const log = openSync(paths.log, 'a', 0o600);
    const child = spawn(process.execPath, [...VM_NODE_OPTIONS, serverPath(), '--state-dir', dir, name], {
      detached: true,
      stdio: ['ignore', log, log],
      env: vmEnv({ ...process.env, TYPEVISOR_STATE_DIR: dir }),
    });
    closeSync(log);
    if (child.pid === undefined) throw new UserError(`cannot start the VM process for '${name}'`, 1);
    const record: VmRecord = { ...base, pid: child.pid, pidStart: pidStartTime(child.pid) };
    writeJsonAtomic(paths.record, record);
    let exited: number | null | undefined;
    child.on('exit', (code, signal) => {
      exited = code ?? (signal ? 128 : 1);
    });
    child.unref();
    const end = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited !== undefined) throw startFailure(name, paths.log, exited ?? 1);
      try {
        const r = await apiRequest(paths.control, 'GET', '/', undefined, 2000);
        if (r.status === 200) return record;
      } catch {
        // not listening yet
      }
      if (Date.now() > end) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // gone already
        }
        throw new UserError(
          `guest '${name}' did not answer on ${paths.control} within ${READY_TIMEOUT_MS / 1000} s; see ${paths.log}`,
          1,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    removeEntry(name, dir);
    if (id) releaseId(id, name, dir);
    throw e;
  }
}

/** The VM process exited before it was ready: its last message says why. */
function startFailure(name: string, logPath: string, code: number): UserError {
  let last = '';
  try {
    const lines = readFileSync(logPath, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    last = lines.filter((l) => l.startsWith('typevisor: ')).at(-1) ?? lines.at(-1) ?? '';
  } catch {
    // no log
  }
  last = last.replace(/^typevisor: /, '');
  return new UserError(
    last ? last : `the VM process of '${name}' exited (status ${code}) before it was ready`,
    code === 2 ? 2 : 1,
  );
}

// The state directory: one entry per running VM process, like xl's domain list.
//
//   $TYPEVISOR_STATE_DIR, else $XDG_RUNTIME_DIR/typevisor, else /tmp/typevisor-$UID
//     NAME/vm.json        { name, id, pid, spec, created, ... } (written by `create`)
//     NAME/spec.json      the VmSpec the VM process boots (written before it is spawned)
//     NAME/control.sock   HTTP+JSON control API (the VM process answers here once it is up)
//     NAME/qmp.sock       QMP subset
//     NAME/console.sock   raw console byte stream
//     NAME/vsock.sock     virtio-vsock's host side (with --vsock; NAME/vsock.sock_PORT for guest connections)
//     NAME/vm.log         the VM process's stderr
//     .ids/ID             claims domain id ID (contains the name); ids are the lowest free integer from 1
//
// A name is claimed by creating NAME/ (mkdir is atomic), an id by creating .ids/ID exclusively, so
// two concurrent `create`s never share either. An entry whose process is gone (SIGKILL, crash) is
// stale: isAlive() says so and removeEntry() clears it; `list` and `create` do that on sight.

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../host/errors.js';
import type { VmSpec } from './vm.js';

export interface VmRecord {
  name: string;
  /** Small integer, unique among running VMs, from 1 (like xl's domid). */
  id: number;
  /** The VM process. */
  pid: number;
  /** Its start time (see pidStartTime), so that a reused pid is not taken for it. */
  pidStart?: number;
  spec: VmSpec;
  /** ISO time of creation. */
  created: string;
  /** Create paused: the guest does not boot until InstanceStart / unpause / cont. */
  startPaused?: boolean;
  /** Start from this snapshot file instead of booting (typevisor restore). */
  restore?: string;
  /** xl's on_poweroff / on_crash: 'preserve' keeps the stopped VM listed until destroyed. */
  onPoweroff?: string;
  onCrash?: string;
}

export interface EntryPaths {
  dir: string;
  record: string;
  spec: string;
  control: string;
  qmp: string;
  console: string;
  vsock: string;
  log: string;
}

/** The state directory (not created). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TYPEVISOR_STATE_DIR) return resolve(env.TYPEVISOR_STATE_DIR);
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'typevisor');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join('/tmp', `typevisor-${uid}`);
}

/** Create the state directory (mode 0700); one that another user owns is refused (its sockets could be anyone's). */
export function ensureStateDir(dir = stateDir()): string {
  mkdirSync(join(dir, '.ids'), { recursive: true, mode: 0o700 });
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  const owner = statSync(dir).uid;
  if (uid !== undefined && owner !== uid) {
    throw new UserError(
      `state directory ${dir} belongs to user ${owner}, not to you (${uid}); set TYPEVISOR_STATE_DIR to a directory of yours`,
      1,
    );
  }
  return dir;
}

export function entryPaths(name: string, dir = stateDir()): EntryPaths {
  const d = join(dir, name);
  return {
    dir: d,
    record: join(d, 'vm.json'),
    spec: join(d, 'spec.json'),
    control: join(d, 'control.sock'),
    qmp: join(d, 'qmp.sock'),
    console: join(d, 'console.sock'),
    vsock: join(d, 'vsock.sock'),
    log: join(d, 'vm.log'),
  };
}

/**
 * virtio-vsock's host socket for a VM outside the state directory (`typevisor run`, the library):
 * in $XDG_RUNTIME_DIR, else the temporary directory, named after the guest and this process.
 */
export function runtimeVsockPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_RUNTIME_DIR || tmpdir(), `typevisor-${name}-${process.pid}.vsock`);
}

/** The longest unix socket path Linux takes (sun_path is 108 bytes with the terminating NUL). */
export const MAX_SOCKET_PATH = 107;

/** A reason the entry's socket paths cannot work, or undefined when they fit. */
export function socketPathProblem(name: string, dir = stateDir()): string | undefined {
  const p = entryPaths(name, dir);
  const longest = [p.control, p.qmp, p.console].reduce((a, b) =>
    Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a,
  );
  const n = Buffer.byteLength(longest);
  if (n <= MAX_SOCKET_PATH) return undefined;
  return `the socket path ${longest} is ${n} bytes, more than the ${MAX_SOCKET_PATH} a unix socket allows; use a shorter guest name or set TYPEVISOR_STATE_DIR to a shorter directory`;
}

/** Write a file atomically (temp file + rename), so readers never see half of it. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

export function readRecord(name: string, dir = stateDir()): VmRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(entryPaths(name, dir).record, 'utf8')) as VmRecord;
    if (typeof r?.name !== 'string' || typeof r.id !== 'number' || typeof r.pid !== 'number')
      return undefined;
    return r;
  } catch {
    return undefined;
  }
}

/** Names of the entries in the state directory (live or not). */
export function entryNames(dir = stateDir()): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => !n.startsWith('.')).sort();
}

/** The start time of process `pid` (clock ticks after boot, /proc/PID/stat field 22), if known. */
export function pidStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether process `pid` is alive. With `startTime` (recorded when the entry was written), a pid that
 * the system has since given to another process counts as dead. A zombie counts as dead.
 */
export function pidAlive(pid: number, startTime?: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2);
    if (rest[0] === 'Z' || rest[0] === 'X') return false;
    if (startTime !== undefined && Number(rest.split(' ')[19]) !== startTime) return false;
  } catch {
    // no /proc (or it vanished): trust kill(0)
  }
  return true;
}

/** Remove an entry and release its id. */
export function removeEntry(name: string, dir = stateDir()): void {
  const rec = readRecord(name, dir);
  rmSync(entryPaths(name, dir).dir, { recursive: true, force: true });
  if (rec) releaseId(rec.id, name, dir);
}

/**
 * Claim the lowest free id (from 1) for `name`. Claims of entries that no longer exist are
 * reclaimed once they are a few seconds old (a `create` that died half-way).
 */
export function claimId(name: string, dir = stateDir()): number {
  const ids = join(dir, '.ids');
  mkdirSync(ids, { recursive: true, mode: 0o700 });
  for (let id = 1; id < 1 << 20; id++) {
    const p = join(ids, String(id));
    try {
      writeFileSync(p, name, { flag: 'wx', mode: 0o600 });
      return id;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // Taken: reclaim it if its owner is gone.
    try {
      const owner = readFileSync(p, 'utf8');
      const rec = readRecord(owner, dir);
      const old = Date.now() - statSync(p).mtimeMs > 10_000;
      if (old && (!rec || rec.id !== id) && !existsSync(entryPaths(owner, dir).spec)) {
        rmSync(p, { force: true });
        id--; // try this id again
      }
    } catch {
      // raced with its removal: the next loop round tries the next id; fine
    }
  }
  throw new Error('no free VM id');
}

export function releaseId(id: number, name: string, dir = stateDir()): void {
  const p = join(dir, '.ids', String(id));
  try {
    if (readFileSync(p, 'utf8') === name) rmSync(p, { force: true });
  } catch {
    // already gone
  }
}

/** Seconds since the entry directory was created (Infinity when it is gone). */
export function entryAgeS(name: string, dir = stateDir()): number {
  try {
    return (Date.now() - statSync(entryPaths(name, dir).dir).mtimeMs) / 1000;
  } catch {
    return Infinity;
  }
}

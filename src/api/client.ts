// Clients for a running VM's sockets: the control API (HTTP over a unix socket) and name lookup in
// the state directory, with stale entries (a VM process that died without cleaning up) removed.

import { request } from 'node:http';
import { UserError } from '../host/errors.js';
import {
  entryAgeS,
  entryNames,
  entryPaths,
  pidAlive,
  readRecord,
  removeEntry,
  stateDir,
  type VmRecord,
} from '../vmm/state.js';

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** One HTTP request to a control socket. Rejects when the socket does not answer (within timeoutMs). */
export function apiRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 5000,
): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers:
          text === undefined
            ? {}
            : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const t = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = undefined;
          if (t !== '') {
            try {
              parsed = JSON.parse(t);
            } catch {
              parsed = t;
            }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (text !== undefined) req.write(text);
    req.end();
  });
}

/** The fault message of an error response, or a description of the status. */
export function faultOf(r: ApiResponse): string {
  const b = r.body as { fault_message?: string } | undefined;
  return b && typeof b === 'object' && typeof b.fault_message === 'string'
    ? b.fault_message
    : `HTTP ${r.status}`;
}

/** Seconds a new entry may go without answering before it counts as dead (the VM process is starting). */
const STARTUP_GRACE_S = 30;

/**
 * Whether NAME's entry belongs to a live VM process. A dead pid, or a process that has not answered
 * on its control socket long after its creation, makes it stale.
 */
export async function entryAlive(
  name: string,
  dir = stateDir(),
): Promise<{ alive: boolean; record?: VmRecord }> {
  const record = readRecord(name, dir);
  if (!record) {
    // `create` writes vm.json right after spawning the VM process; an entry without one is new or broken.
    return { alive: entryAgeS(name, dir) < STARTUP_GRACE_S };
  }
  if (!pidAlive(record.pid, record.pidStart)) return { alive: false, record };
  try {
    await apiRequest(entryPaths(name, dir).control, 'GET', '/', undefined, 3000);
    return { alive: true, record };
  } catch {
    const age = (Date.now() - Date.parse(record.created)) / 1000;
    return { alive: !(age >= STARTUP_GRACE_S), record };
  }
}

/** Remove NAME's entry if its VM process is gone; true when it was removed. */
export async function reapIfDead(name: string, dir = stateDir()): Promise<boolean> {
  const { alive } = await entryAlive(name, dir);
  if (alive) return false;
  removeEntry(name, dir);
  return true;
}

/** Live VM records, stale entries removed on the way. */
export async function liveRecords(dir = stateDir()): Promise<VmRecord[]> {
  const out: VmRecord[] = [];
  for (const name of entryNames(dir)) {
    const { alive, record } = await entryAlive(name, dir);
    if (!alive) {
      removeEntry(name, dir);
      continue;
    }
    if (record) out.push(record);
  }
  return out.sort((a, b) => a.id - b.id);
}

/** Find a running VM by name (or by id, as xl accepts a domid); a UserError when there is none. */
export async function findVm(nameOrId: string, dir = stateDir()): Promise<VmRecord> {
  if (/^\d+$/.test(nameOrId) && !readRecord(nameOrId, dir)) {
    const byId = (await liveRecords(dir)).find((r) => r.id === Number(nameOrId));
    if (byId) return byId;
  }
  const { alive, record } = await entryAlive(nameOrId, dir);
  if (record && alive) return record;
  if (record && !alive) removeEntry(nameOrId, dir);
  throw new UserError(`no running guest named '${nameOrId}' (see typevisor list)`, 1);
}

/** Call the control API of the named VM; a non-2xx answer becomes a UserError with its fault message. */
export async function callVm(
  record: VmRecord,
  method: string,
  path: string,
  body?: unknown,
  dir = stateDir(),
): Promise<unknown> {
  let r: ApiResponse;
  try {
    r = await apiRequest(entryPaths(record.name, dir).control, method, path, body);
  } catch (e) {
    throw new UserError(`guest '${record.name}': control socket does not answer: ${(e as Error).message}`, 1);
  }
  if (r.status < 200 || r.status >= 300) throw new UserError(`guest '${record.name}': ${faultOf(r)}`, 1);
  return r.body;
}

/** Wait until process `pid` has exited (polling), or the timeout passes; true when it exited. */
export async function waitPidExit(pid: number, timeoutMs = Infinity, startTime?: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (pidAlive(pid, startTime)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

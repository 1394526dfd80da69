// A QMP subset on qmp.sock, enough for tools written for QEMU (microvm.nix's runners, scripts):
//
//   greeting {"QMP": {"version": ..., "capabilities": []}}, then qmp_capabilities, query-status,
//   stop, cont, system_powerdown, system_reset, quit, query-chardev, balloon, query-balloon,
//   query-commands, query-version, query-name, and snapshots to and from files: migrate,
//   migrate-incoming (file:PATH URIs), query-migrate
//
// Framing as QEMU's: a stream of JSON objects (newlines optional); each reply is one line. Errors
// are {"error": {"class", "desc"}}; before qmp_capabilities every command but it is refused with
// CommandNotFound, as QEMU does. Events (STOP, RESUME, SHUTDOWN, RESET, POWERDOWN) go to every
// client past negotiation. Malformed input gets an error and the VM carries on.

import { createServer, type Server, type Socket } from 'node:net';
import { ControlError, type VmHost } from '../vmm/server.js';
import { BALLOON_PAGE_SIZE } from '../devices/virtio/balloon.js';
import { VMM_VERSION } from '../host/version.js';

const MAX_PENDING = 1024 * 1024;
const MiB = 1024 * 1024;

class QmpError extends Error {
  constructor(
    readonly cls: 'GenericError' | 'CommandNotFound' | 'DeviceNotActive',
    desc: string,
  ) {
    super(desc);
  }
}

type Args = Record<string, unknown>;
interface Command {
  args?: Record<string, 'int' | 'str' | 'bool'>;
  run(host: VmHost, args: Args, client: QmpClient): unknown;
}

function checkArgs(name: string, spec: Record<string, 'int' | 'str' | 'bool'> = {}, args: unknown): Args {
  if (args === undefined) args = {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new QmpError('GenericError', "QMP input member 'arguments' must be an object");
  }
  const a = args as Args;
  for (const k of Object.keys(a)) {
    if (!(k in spec)) throw new QmpError('GenericError', `Parameter '${k}' is unexpected`);
  }
  for (const [k, t] of Object.entries(spec)) {
    const v = a[k];
    if (v === undefined) throw new QmpError('GenericError', `Parameter '${k}' is missing`);
    const ok =
      t === 'int' ? Number.isSafeInteger(v) : t === 'str' ? typeof v === 'string' : typeof v === 'boolean';
    if (!ok) {
      const want = t === 'int' ? 'integer' : t === 'str' ? 'string' : 'boolean';
      throw new QmpError('GenericError', `Invalid parameter type for '${k}', expected: ${want}`);
    }
  }
  void name;
  return a;
}

/** The path of a `file:PATH` migration URI (the only kind typevisor speaks). */
function fileUri(uri: string): string {
  if (!uri.startsWith('file:') || uri.length <= 5)
    throw new QmpError(
      'GenericError',
      `Invalid migration URI '${uri}': typevisor migrates to and from files only (file:PATH)`,
    );
  return uri.slice(5);
}

function qemuStatus(host: VmHost): { status: string; running: boolean } {
  const s = host.state();
  if (s === 'running' || s === 'blocked') return { status: 'running', running: true };
  if (s === 'paused') return { status: 'paused', running: false };
  if (s === 'not-started') return { status: 'prelaunch', running: false };
  if (s === 'crashed') return { status: 'guest-panicked', running: false };
  return { status: 'shutdown', running: false };
}

const COMMANDS: Record<string, Command> = {
  qmp_capabilities: {
    run: () => {
      throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
    },
  },
  'query-status': { run: (host) => ({ ...qemuStatus(host), singlestep: false }) },
  'query-name': { run: (host) => ({ name: host.record.name }) },
  'query-version': {
    run: () => {
      const [major, minor, micro] = VMM_VERSION.split('.').map((x) => Number.parseInt(x, 10) || 0);
      return { qemu: { major, minor, micro }, package: `typevisor ${VMM_VERSION}` };
    },
  },
  'query-commands': { run: () => Object.keys(COMMANDS).map((name) => ({ name })) },
  stop: { run: (host) => host.pause() },
  cont: { run: (host) => host.resume() },
  system_powerdown: { run: (host) => host.shutdown() },
  system_reset: {
    run: (host) => {
      host.reboot();
    },
  },
  quit: {
    run: (host, _a, client) => {
      client.quitAfterReply = true;
      setTimeout(() => host.destroy(), 10);
    },
  },
  'query-chardev': {
    run: (host) => [
      { label: 'console', filename: `unix:${host.paths.console},server=on`, 'frontend-open': true },
      { label: 'qmp', filename: `unix:${host.paths.qmp},server=on`, 'frontend-open': true },
    ],
  },
  balloon: {
    args: { value: 'int' },
    run: (host, a) => {
      if (!host.balloon()) throw new QmpError('DeviceNotActive', 'No balloon device has been activated');
      const value = a.value as number;
      if (value <= 0)
        throw new QmpError('GenericError', "Parameter 'value' expects a size greater than zero");
      host.setBalloon(Math.min(host.record.spec.memoryMiB, value / MiB));
    },
  },
  // Snapshots, the way QEMU saves a VM to a file: `migrate` to a file: URI (QEMU 8.2's file
  // migration) stops the VM and writes it, which then stays paused (QEMU's postmigrate; `cont`
  // runs it on); `migrate-incoming` from a file: URI on a VM created paused (QEMU's -incoming
  // defer with -S) loads it, paused until `cont`.
  migrate: {
    args: { uri: 'str' },
    run: async (host, a) => {
      const path = fileUri(a.uri as string);
      host.pause();
      const t0 = Date.now();
      const stats = await host.saveSnapshot(path);
      host.lastMigration = {
        status: 'completed',
        'total-time': Date.now() - t0,
        ram: {
          total: host.record.spec.memoryMiB * MiB,
          transferred: stats.bytes,
          'normal-bytes': stats.nonZeroPages * 4096,
        },
      };
    },
  },
  'migrate-incoming': {
    args: { uri: 'str' },
    run: async (host, a) => {
      await host.loadSnapshot(fileUri(a.uri as string), false);
    },
  },
  'query-migrate': { run: (host) => host.lastMigration ?? {} },
  'query-balloon': {
    run: (host) => {
      const b = host.balloon();
      if (!b) throw new QmpError('DeviceNotActive', 'No balloon device has been activated');
      // The guest's memory now: configured memory less the pages its driver put in the balloon.
      return { actual: b.memoryMiB * MiB - b.actualPages * BALLOON_PAGE_SIZE };
    },
  },
};

class QmpClient {
  negotiated = false;
  quitAfterReply = false;
  private pending = '';
  /** Commands run one after another, so replies come in order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly host: VmHost,
    readonly sock: Socket,
  ) {}

  send(obj: unknown): void {
    if (!this.sock.destroyed && this.sock.writable) this.sock.write(JSON.stringify(obj) + '\r\n');
  }

  error(cls: string, desc: string, id?: unknown): void {
    this.send(id === undefined ? { error: { class: cls, desc } } : { error: { class: cls, desc }, id });
  }

  /** Split the input stream into top-level JSON texts (objects, arrays, or stray tokens). */
  feed(data: string): void {
    this.pending += data;
    if (this.pending.length > MAX_PENDING) {
      this.pending = '';
      this.error(
        'GenericError',
        `JSON parse error, input longer than ${MAX_PENDING} bytes without a complete value`,
      );
      return;
    }
    let i = 0;
    const s = this.pending;
    while (i < s.length) {
      const c = s[i];
      if (c === ' ' || c === '\n' || c === '\r' || c === '\t') {
        i++;
        continue;
      }
      if (c === '{' || c === '[') {
        const end = matchEnd(s, i);
        if (end < 0) break; // incomplete: wait for more
        this.enqueue(s.slice(i, end));
        i = end;
        continue;
      }
      // Stray text (bare words, numbers, strings, closing brackets): one error for the rest of the
      // line, up to a newline or the next object.
      let j = i + 1;
      if (c === '"') {
        j = stringEnd(s, i);
        if (j < 0) break;
      } else {
        while (j < s.length && !/[\n{[]/.test(s[j])) j++;
        if (j >= s.length && !/[\]}]/.test(c)) break; // maybe incomplete
      }
      this.enqueue(s.slice(i, j));
      i = j;
    }
    this.pending = s.slice(i);
  }

  private enqueue(text: string): void {
    this.queue = this.queue.then(() => this.handle(text));
  }

  private async handle(text: string): Promise<void> {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch (e) {
      this.error('GenericError', `JSON parse error, ${(e as Error).message}`);
      return;
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      this.error('GenericError', 'QMP input must be a JSON object');
      return;
    }
    const r = req as Record<string, unknown>;
    const id = r.id;
    for (const k of Object.keys(r)) {
      if (k !== 'execute' && k !== 'arguments' && k !== 'id' && k !== 'exec-oob') {
        this.error('GenericError', `QMP input member '${k}' is unexpected`, id);
        return;
      }
    }
    if (r.execute === undefined) {
      this.error('GenericError', "QMP input lacks member 'execute'", id);
      return;
    }
    if (typeof r.execute !== 'string') {
      this.error('GenericError', "QMP input member 'execute' must be a string", id);
      return;
    }
    const name = r.execute;
    if (!this.negotiated) {
      if (name !== 'qmp_capabilities') {
        this.error('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'", id);
        return;
      }
      try {
        checkArgs(name, {}, r.arguments === undefined ? {} : stripEnable(r.arguments));
      } catch (e) {
        this.error('GenericError', (e as Error).message, id);
        return;
      }
      this.negotiated = true;
      this.reply({}, id);
      return;
    }
    const cmd = COMMANDS[name];
    if (!cmd) {
      this.error('CommandNotFound', `The command ${name} has not been found`, id);
      return;
    }
    try {
      const args = checkArgs(name, cmd.args, r.arguments);
      const out = await cmd.run(this.host, args, this);
      this.reply(out === undefined ? {} : out, id);
    } catch (e) {
      if (e instanceof QmpError) this.error(e.cls, e.message, id);
      else if (e instanceof ControlError) this.error('GenericError', e.message, id);
      else this.error('GenericError', `internal error: ${(e as Error)?.message ?? String(e)}`, id);
    }
    if (this.quitAfterReply) this.sock.end();
  }

  private reply(value: unknown, id: unknown): void {
    this.send(id === undefined ? { return: value } : { return: value, id });
  }
}

/** qmp_capabilities takes an optional `enable` list (of OOB capabilities; none are offered). */
function stripEnable(args: unknown): unknown {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return args;
  const { enable, ...rest } = args as Args;
  if (enable !== undefined) {
    if (!Array.isArray(enable))
      throw new QmpError('GenericError', "Invalid parameter type for 'enable', expected: array");
    if (enable.length > 0)
      throw new QmpError('GenericError', `Capability '${String(enable[0])}' not available`);
  }
  return rest;
}

/** End (exclusive) of the JSON object/array starting at `start`, or -1 when incomplete. */
function matchEnd(s: string, start: number): number {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (c === '"') {
      const e = stringEnd(s, i);
      if (e < 0) return -1;
      i = e - 1;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** End (exclusive) of the JSON string starting at `start`, or -1 when incomplete. */
function stringEnd(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i + 1;
  }
  return -1;
}

function timestamp(): { seconds: number; microseconds: number } {
  const t = Date.now();
  return { seconds: Math.floor(t / 1000), microseconds: (t % 1000) * 1000 };
}

/** The QMP server for qmp.sock. */
export function createQmpServer(host: VmHost): Server {
  const clients = new Set<QmpClient>();
  host.on('event', (event, data) => {
    for (const c of clients) {
      if (c.negotiated)
        c.send(data ? { event, data, timestamp: timestamp() } : { event, timestamp: timestamp() });
    }
  });
  return createServer((sock) => {
    const client = new QmpClient(host, sock);
    clients.add(client);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => client.feed(d));
    sock.on('error', () => sock.destroy());
    sock.on('close', () => clients.delete(client));
    const [major, minor, micro] = VMM_VERSION.split('.').map((x) => Number.parseInt(x, 10) || 0);
    client.send({
      QMP: {
        version: { qemu: { major, minor, micro }, package: `typevisor ${VMM_VERSION}` },
        capabilities: [],
      },
    });
  });
}

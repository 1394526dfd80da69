// The control API on control.sock: HTTP/1.1 + JSON, shaped like Firecracker's where they overlap
// (GET /, GET /machine-config, PUT /actions, PATCH /vm, GET/PATCH /balloon, GET/PATCH
// /balloon/statistics, PUT /snapshot/create, PUT /vsock, PUT /network-interfaces/{id} and
// PUT /snapshot/load before start) plus typevisor's own
// (GET /vm, PUT /shutdown, PUT /reboot, PUT /destroy). Errors are Firecracker's {"fault_message"}.
// src/api/openapi.yaml describes it.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ControlError, type HostState, type VmHost } from '../vmm/server.js';
import { VMM_VERSION } from '../host/version.js';

/** A request error: HTTP status and the fault message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly allow?: string,
  ) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;
/** The longest balloon statistics polling interval (a day, as the config's balloon.intervalS). */
const MAX_STATS_INTERVAL_S = 86400;

/** Firecracker's instance states. */
export function firecrackerState(s: HostState): string {
  if (s === 'not-started') return 'Not started';
  if (s === 'paused') return 'Paused';
  if (s === 'running' || s === 'blocked') return 'Running';
  return 'Halted';
}

type FieldType = 'string' | 'integer' | 'number' | 'boolean' | 'object';

/** Check a JSON body against the fields a request takes: an unknown field or a wrong type is a 400 naming it. */
function checkBody(
  body: unknown,
  fields: Record<string, { type: FieldType; required?: boolean; values?: readonly string[] }>,
): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(
      400,
      `expected a JSON object as the request body, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}`,
    );
  }
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in fields)) {
      throw new ApiError(
        400,
        `unknown field \`${k}\`, expected one of: ${Object.keys(fields)
          .map((f) => `\`${f}\``)
          .join(', ')}`,
      );
    }
  }
  for (const [k, f] of Object.entries(fields)) {
    const v = o[k];
    if (v === undefined) {
      if (f.required) throw new ApiError(400, `missing field \`${k}\``);
      continue;
    }
    const ok =
      f.type === 'string'
        ? typeof v === 'string'
        : f.type === 'object'
          ? typeof v === 'object' && v !== null && !Array.isArray(v)
          : f.type === 'boolean'
            ? typeof v === 'boolean'
            : f.type === 'integer'
              ? Number.isSafeInteger(v) && (v as number) >= 0
              : typeof v === 'number' && Number.isFinite(v);
    if (!ok) {
      const what = f.type === 'integer' ? 'a non-negative integer' : `a ${f.type}`;
      throw new ApiError(400, `invalid type for field \`${k}\`: expected ${what}, got ${JSON.stringify(v)}`);
    }
    if (f.values && !f.values.includes(v as string)) {
      throw new ApiError(
        400,
        `invalid value for field \`${k}\`: expected one of ${f.values.map((x) => `"${x}"`).join(', ')}, got ${JSON.stringify(v)}`,
      );
    }
  }
  return o;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new ApiError(413, `request body larger than ${MAX_BODY} bytes`));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  if (text.trim() === '') throw new ApiError(400, 'expected a JSON request body, got an empty one');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `malformed JSON in the request body: ${(e as Error).message}`);
  }
}

type Handler = (host: VmHost, body: () => Promise<unknown>, param: string) => Promise<unknown> | unknown;

/** Paths with a parameter: the route's key, and a pattern whose group 1 is the parameter. */
const PARAM_ROUTES: [string, RegExp][] = [['/network-interfaces/{iface_id}', /^\/network-interfaces\/([A-Za-z0-9_.-]{1,64})$/]];

/** path -> method -> handler; a handler's return value is the JSON response (undefined: 204). */
const ROUTES: Record<string, Record<string, Handler>> = {
  '/': {
    GET: (host) => {
      const s = host.status();
      return {
        id: s.name,
        state: firecrackerState(s.state),
        vmm_version: VMM_VERSION,
        app_name: 'typevisor',
      };
    },
  },
  '/vm': {
    GET: (host) => {
      const s = host.status();
      return {
        name: s.name,
        domid: s.id,
        pid: s.pid,
        state: s.state,
        vcpu_count: s.vcpus,
        mem_size_mib: s.memoryMiB,
        current_mem_mib: s.currentMiB,
        instructions: s.instructions,
        cpu_time_s: s.cpuTimeS,
        boots: s.boots,
        uptime_s: s.uptimeS,
      };
    },
    PATCH: async (host, body) => {
      const o = checkBody(await body(), {
        state: { type: 'string', required: true, values: ['Paused', 'Resumed'] },
      });
      if (o.state === 'Paused') host.pause();
      else await host.resume();
      return undefined;
    },
  },
  '/machine-config': {
    GET: (host) => {
      const s = host.status();
      return { vcpu_count: s.vcpus, mem_size_mib: s.memoryMiB, smt: false, track_dirty_pages: false };
    },
  },
  '/actions': {
    PUT: async (host, body) => {
      const o = checkBody(await body(), {
        action_type: {
          type: 'string',
          required: true,
          values: ['InstanceStart', 'SendCtrlAltDel', 'FlushMetrics'],
        },
      });
      if (o.action_type === 'InstanceStart') await host.start();
      else if (o.action_type === 'SendCtrlAltDel') host.shutdown();
      // FlushMetrics: typevisor keeps no metrics file; nothing to flush.
      return undefined;
    },
  },
  '/shutdown': {
    PUT: async (host, body) => {
      const b = await body();
      const o = b === undefined ? {} : checkBody(b, { grace_ms: { type: 'integer' } });
      host.shutdown(o.grace_ms as number | undefined);
      return undefined;
    },
  },
  '/reboot': {
    PUT: async (host, body) => {
      const b = await body();
      if (b !== undefined) checkBody(b, {});
      host.reboot();
      return undefined;
    },
  },
  '/destroy': {
    PUT: async (host, body) => {
      const b = await body();
      if (b !== undefined) checkBody(b, {});
      // Answer first; the process exits right after.
      setImmediate(() => host.destroy());
      return undefined;
    },
  },
  '/vsock': {
    PUT: async (host, body) => {
      const o = checkBody(await body(), {
        vsock_id: { type: 'string' },
        guest_cid: { type: 'integer', required: true },
        uds_path: { type: 'string' },
      });
      host.setVsock(o.guest_cid as number, o.uds_path as string | undefined);
      return undefined;
    },
  },
  '/network-interfaces/{iface_id}': {
    // Firecracker's: before InstanceStart, a NIC on the TAP device host_dev_name.
    PUT: async (host, body, id) => {
      const o = checkBody(await body(), {
        iface_id: { type: 'string', required: true },
        host_dev_name: { type: 'string', required: true },
        guest_mac: { type: 'string' },
      });
      if (o.iface_id !== id) {
        throw new ApiError(400, `invalid value for field \`iface_id\`: ${JSON.stringify(o.iface_id)} is not the ${JSON.stringify(id)} of the path`);
      }
      host.setNetworkInterface(id, o.host_dev_name as string, o.guest_mac as string | undefined);
      return undefined;
    },
  },
  '/snapshot/create': {
    // Firecracker's (the VM paused first). Guest RAM goes into snapshot_path with the rest: a
    // mem_file_path is accepted for Firecracker's clients and not written.
    PUT: async (host, body) => {
      const o = checkBody(await body(), {
        snapshot_path: { type: 'string', required: true },
        mem_file_path: { type: 'string' },
        snapshot_type: { type: 'string', values: ['Full', 'Diff'] },
        version: { type: 'string' },
      });
      if (o.snapshot_type === 'Diff') throw new ApiError(400, 'diff snapshots are not supported: use "snapshot_type": "Full"');
      await host.saveSnapshot(o.snapshot_path as string);
      return undefined;
    },
  },
  '/snapshot/load': {
    // Firecracker's, before the VM starts: the guest RAM comes from snapshot_path (mem_backend and
    // mem_file_path are accepted for Firecracker's clients and not read).
    PUT: async (host, body) => {
      const o = checkBody(await body(), {
        snapshot_path: { type: 'string', required: true },
        mem_file_path: { type: 'string' },
        mem_backend: { type: 'object' },
        enable_diff_snapshots: { type: 'boolean' },
        resume_vm: { type: 'boolean' },
      });
      if (o.enable_diff_snapshots) throw new ApiError(400, 'diff snapshots are not supported: leave `enable_diff_snapshots` false');
      const mb = o.mem_backend as Record<string, unknown> | undefined;
      if (mb && mb.backend_type !== undefined && mb.backend_type !== 'File')
        throw new ApiError(400, `invalid value for field \`mem_backend.backend_type\`: only "File" is supported, got ${JSON.stringify(mb.backend_type)}`);
      await host.loadSnapshot(o.snapshot_path as string, o.resume_vm === true);
      return undefined;
    },
  },
  '/balloon': {
    GET: (host) => {
      const b = host.balloon();
      if (!b) throw new ApiError(400, 'No balloon device configured');
      return {
        amount_mib: Math.round(b.memoryMiB - b.targetMiB),
        deflate_on_oom: b.deflateOnOom,
        stats_polling_interval_s: b.statsIntervalS,
        target_mib: Math.round(b.targetMiB),
        actual_mib: Math.round(b.actualMiB),
      };
    },
    PATCH: async (host, body) => {
      const o = checkBody(await body(), { amount_mib: { type: 'integer', required: true } });
      const b = host.balloon();
      if (!b) throw new ApiError(400, 'No balloon device configured');
      const amount = o.amount_mib as number;
      if (amount > b.memoryMiB) {
        throw new ApiError(
          400,
          `invalid value for field \`amount_mib\`: ${amount} is more than the guest's ${b.memoryMiB} MiB`,
        );
      }
      host.setBalloon(b.memoryMiB - amount);
      return undefined;
    },
  },
  '/balloon/statistics': {
    GET: (host) => {
      const b = host.balloon();
      if (!b) throw new ApiError(400, 'No balloon device configured');
      if (b.statsIntervalS <= 0) {
        throw new ApiError(
          400,
          'Statistics for the balloon device are not enabled (PATCH /balloon/statistics with stats_polling_interval_s)',
        );
      }
      const out: Record<string, number> = {
        target_pages: b.targetPages,
        actual_pages: b.actualPages,
        target_mib: Math.round(b.memoryMiB - b.targetMiB),
        actual_mib: Math.round(b.memoryMiB - b.actualMiB),
      };
      // Firecracker's names are the virtio tags' names with underscores (free_memory, ...).
      for (const [k, v] of Object.entries(b.stats)) out[k.replace(/-/g, '_')] = Number(v);
      return out;
    },
    PATCH: async (host, body) => {
      const o = checkBody(await body(), { stats_polling_interval_s: { type: 'integer', required: true } });
      const s = o.stats_polling_interval_s as number;
      if (s < 0 || s > MAX_STATS_INTERVAL_S) {
        throw new ApiError(
          400,
          `invalid value for field \`stats_polling_interval_s\`: expected 0 (off) to ${MAX_STATS_INTERVAL_S} seconds, got ${s}`,
        );
      }
      if (!host.balloon()) throw new ApiError(400, 'No balloon device configured');
      host.setBalloonStatsInterval(s);
      return undefined;
    },
  },
};

function send(res: ServerResponse, status: number, value: unknown, allow?: string): void {
  const headers: Record<string, string> = {};
  if (allow) headers.Allow = allow;
  if (value === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(value);
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = String(Buffer.byteLength(text));
  res.writeHead(status, headers);
  res.end(text);
}

export async function handleRequest(host: VmHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let path = url.pathname;
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    let param = '';
    let key = path;
    for (const [k, re] of PARAM_ROUTES) {
      const m = re.exec(path);
      if (m) {
        key = k;
        param = m[1];
      }
    }
    const route = ROUTES[key];
    if (!route) throw new ApiError(404, `unknown path ${path}; see openapi.yaml for the API`);
    const method = req.method ?? 'GET';
    const handler = route[method];
    if (!handler) {
      const allow = Object.keys(route).join(', ');
      throw new ApiError(405, `method ${method} is not allowed on ${path}; allowed: ${allow}`, allow);
    }
    let bodyRead: Promise<unknown> | undefined;
    const body = (): Promise<unknown> =>
      (bodyRead ??= readBody(req).then((t) =>
        t.trim() === '' && method !== 'PATCH' && path !== '/actions' ? undefined : parseJson(t),
      ));
    const out = await handler(host, body, param);
    if (!bodyRead) req.resume();
    send(res, out === undefined ? 204 : 200, out);
  } catch (e) {
    req.resume();
    if (e instanceof ApiError) send(res, e.status, { fault_message: e.message }, e.allow);
    else if (e instanceof ControlError) send(res, 400, { fault_message: e.message });
    else send(res, 500, { fault_message: `internal error: ${(e as Error)?.message ?? String(e)}` });
  }
}

/** The HTTP server for control.sock. */
export function createControlServer(host: VmHost): Server {
  const server = createServer((req, res) => {
    void handleRequest(host, req, res);
  });
  // A client speaking something other than HTTP gets a 400 and the VM carries on.
  server.on('clientError', (err, socket) => {
    if (socket.writable) {
      const text = JSON.stringify({ fault_message: `malformed HTTP request: ${err.message}` });
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    } else socket.destroy();
  });
  return server;
}

/** The API's paths and their methods (openapi.yaml documents each). */
export const API_ROUTES: Record<string, string[]> = Object.fromEntries(
  Object.entries(ROUTES).map(([path, methods]) => [path, Object.keys(methods)]),
);

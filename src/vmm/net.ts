// A VM's NICs: the `--net` option's syntax, MAC addresses, and opening each NIC's host backend
// (passt for user-mode networking, a TAP device, or a new TAP attached to a bridge).
//
//   --net user[,mac=MAC][,mtu=N][,hostfwd=tcp::HOSTPORT-:GUESTPORT]...   (QEMU's hostfwd syntax)
//   --net tap=IFNAME[,mac=MAC][,mtu=N]
//   --net bridge=BRIDGE[,mac=MAC][,mtu=N]
//   --net network=NAME[,mac=MAC][,mtu=N]        (a `typevisor network`: its bridge)
//
// mtu=N: the MTU the guest's NIC gets (virtio-net's MTU feature); for a TAP, the TAP's MTU is set to
// it too (on a bridge, the bridge then carries frames up to the smallest MTU of its ports).
//
// Every error names the NIC (`--net #2 (bridge=br0)`) and comes before the guest starts.

import { closeSync } from 'node:fs';
import { UserError } from '../host/errors.js';
import { startPasst, type HostFwd } from '../host/passt.js';
import { isBridge, ip, openTap, TapBackend } from '../host/tap.js';
import { DEFAULT_MTU, MAX_MTU, MIN_MTU, mtuFromText, type NetBackend } from '../devices/virtio/net.js';

export type { HostFwd };

export interface NetSpec {
  /** An identifier given by the user (Firecracker's iface_id). */
  id?: string;
  /** user: passt; tap: the TAP device `tap` (existing or new); bridge: a new TAP on `bridge`. */
  mode: 'user' | 'tap' | 'bridge';
  /** Locally administered unicast MAC, lower case. */
  mac: string;
  tap?: string;
  bridge?: string;
  /** The typevisor network this NIC joins (mode bridge). */
  network?: string;
  hostfwd?: HostFwd[];
  /** The link's MTU (default: nicMtu's). */
  mtu?: number;
}

/**
 * The MTU a user-mode NIC offers the guest: passt's own default (its largest), as QEMU users of passt
 * get it. passt is a socket-level proxy, so the guest's big frames never reach a wire as they are, and
 * a frame of 64 KiB costs the guest's stack one pass where 1500-byte frames cost 44. Measured over
 * passt, 4 MiB, default guest: host -> guest 2.39 MB/s at this MTU against 0.32-0.70 MB/s at 1500
 * (passt's ACK timeout resends the window to a guest this slow: 9,800 duplicate segments of 12,800),
 * guest -> host 12.4 MB/s against 1.4-2.9 MB/s.
 */
export const USER_MTU = MAX_MTU;

/** The MTU of a NIC's link: the one it was given, else USER_MTU over passt, Ethernet's 1500 on a TAP or bridge. */
export function nicMtu(n: NetRequest): number {
  return n.mtu ?? (n.mode === 'user' ? USER_MTU : DEFAULT_MTU);
}

/** An `mtu=` value: an integer from MIN_MTU to MAX_MTU. */
export function parseMtu(text: string, where: string): number {
  const n = mtuFromText(text);
  if (n === undefined) throw new UserError(`${where}: mtu=${text}: expected an MTU from ${MIN_MTU} to ${MAX_MTU} (bytes)`);
  return n;
}

/** A NIC as a user or config asked for it: the MAC is optional until resolveNets(). */
export type NetRequest = Omit<NetSpec, 'mac'> & { mac?: string };

const MAC_TEXT = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const HOSTFWD = /^(tcp|udp)?:([^:]*):(\d+)-([^:]*):(\d+)$/;

export function describeNet(n: NetRequest, index: number): string {
  const what =
    n.mode === 'user'
      ? 'user'
      : n.network !== undefined
        ? `network=${n.network}`
        : n.mode === 'bridge'
          ? `bridge=${n.bridge}`
          : `tap=${n.tap}`;
  return `--net #${index + 1} (${what})`;
}

function port(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`${what}: port ${text} is not from 1 to 65535`);
  return n;
}

/** QEMU's `hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`. */
export function parseHostFwd(text: string, what: string): HostFwd {
  const m = HOSTFWD.exec(text);
  if (!m) {
    throw new UserError(`${what}: hostfwd=${text}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-:GUESTPORT, e.g. tcp::8080-:80`);
  }
  if (m[4]) {
    throw new UserError(
      `${what}: hostfwd=${text}: a guest address is not supported (ports are forwarded to the guest's own address); write tcp::${m[3]}-:${m[5]}`,
    );
  }
  return { proto: (m[1] ?? 'tcp') as 'tcp' | 'udp', hostAddr: m[2], hostPort: port(m[3], what), guestPort: port(m[5], what) };
}

/** Parse one `--net` option (see the file's header). */
export function parseNetOption(text: string, index: number): NetRequest {
  const parts = text.split(',');
  const head = parts[0];
  const where = `--net #${index + 1} '${text}'`;
  let req: NetRequest;
  const eq = head.indexOf('=');
  const key = eq < 0 ? head : head.slice(0, eq);
  const val = eq < 0 ? '' : head.slice(eq + 1);
  if (head === 'user') req = { mode: 'user' };
  else if (key === 'tap' && val) req = { mode: 'tap', tap: val };
  else if (key === 'bridge' && val) req = { mode: 'bridge', bridge: val };
  else if (key === 'network' && val) req = { mode: 'bridge', network: val };
  else {
    throw new UserError(`${where}: expected user, tap=IFNAME, bridge=BRIDGE or network=NAME first, got '${head}'`);
  }
  for (const p of parts.slice(1)) {
    const i = p.indexOf('=');
    const k = i < 0 ? p : p.slice(0, i);
    const v = p.slice(i + 1);
    if (k === 'mac' && i > 0) req.mac = v;
    else if (k === 'mtu' && i > 0) req.mtu = parseMtu(v, where);
    else if (k === 'hostfwd' && i > 0 && req.mode === 'user') (req.hostfwd ??= []).push(parseHostFwd(v, where));
    else if (k === 'hostfwd') throw new UserError(`${where}: hostfwd is for --net user only`);
    else throw new UserError(`${where}: unknown setting '${p}' (expected mac=MAC, mtu=N${req.mode === 'user' ? ' or hostfwd=...' : ''})`);
  }
  return req;
}

/** A config file's NIC (VmConfig `nets`, the same fields) as a request. */
export function netRequestFromConfig(
  n: { mac?: string; network?: string; bridge?: string; tap?: string; hostfwd?: string[]; mtu?: number },
  index: number,
): NetRequest {
  const where = `nets[${index}]`;
  const base = { mac: n.mac, ...(n.mtu !== undefined ? { mtu: parseMtu(String(n.mtu), where) } : {}) };
  if (n.hostfwd && (n.network !== undefined || n.bridge !== undefined || n.tap !== undefined)) {
    throw new UserError(`${where}: hostfwd is for user-mode networking only (no network, bridge or tap)`);
  }
  if (n.network !== undefined) return { ...base, mode: 'bridge', network: n.network, tap: n.tap };
  if (n.bridge !== undefined) return { ...base, mode: 'bridge', bridge: n.bridge, tap: n.tap };
  if (n.tap !== undefined) return { ...base, mode: 'tap', tap: n.tap };
  return { ...base, mode: 'user', hostfwd: n.hostfwd?.map((h) => parseHostFwd(h, where)) };
}

/** FNV-1a, for a MAC that stays the same for a VM name and NIC index across runs. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** 02:xx:xx:xx:xx:xx (locally administered, unicast) from the VM name and the NIC's index. */
export function defaultMac(vmName: string, index: number): string {
  const h = fnv1a(vmName);
  const bytes = [0x02, 0x74, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff, index & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/**
 * Give every NIC a MAC and check them: well-formed, unicast, not all zero, no two alike. Resolves
 * `network=NAME` to its bridge with `lookupNetwork`.
 */
export function resolveNets(
  reqs: NetRequest[],
  vmName: string,
  lookupNetwork: (name: string, what: string) => string,
): NetSpec[] {
  const seen = new Map<string, number>();
  return reqs.map((r, i) => {
    const what = describeNet(r, i);
    const mac = (r.mac ?? defaultMac(vmName, i)).toLowerCase();
    if (!MAC_TEXT.test(mac)) throw new UserError(`${what}: mac=${r.mac}: expected a MAC address like 02:00:00:00:00:01`);
    const b = macBytes(mac);
    if (b[0] & 1) throw new UserError(`${what}: mac=${mac} is a multicast address; a NIC needs a unicast one (first byte even, e.g. 02:...)`);
    if (b.every((x) => x === 0)) throw new UserError(`${what}: mac=${mac} is not a usable address`);
    const other = seen.get(mac);
    if (other !== undefined) throw new UserError(`${what}: mac=${mac} is already the MAC of --net #${other + 1}`);
    seen.set(mac, i);
    const spec: NetSpec = { ...r, mac };
    if (r.network !== undefined) spec.bridge = lookupNetwork(r.network, what);
    return spec;
  });
}

/** Name of the TAP created for NIC `index` of VM `vmName` on a bridge; the kernel fills in %d. */
export function bridgeTapPattern(vmName: string): string {
  const stem = vmName.replace(/[^A-Za-z0-9]/g, '').slice(0, 7) || 'vm';
  return `tv${stem}%d`;
}

/** Open the host side of one NIC. */
export async function openNetBackend(n: NetSpec, index: number, vmName: string): Promise<NetBackend> {
  const what = describeNet(n, index);
  if (n.mode === 'user') return startPasst({ mtu: nicMtu(n), hostfwd: n.hostfwd ?? [], what });
  if (n.mode === 'tap') {
    const t = openTap(n.tap!, what);
    try {
      if (n.mtu !== undefined) ip(what, ['link', 'set', t.name, 'mtu', String(n.mtu)]);
    } catch (e) {
      closeSync(t.fd);
      throw e;
    }
    return new TapBackend(t.fd, t.name);
  }
  const br = n.bridge!;
  if (!isBridge(br)) {
    throw new UserError(
      `${what}: there is no bridge '${br}' on this host` +
        (n.network !== undefined ? ` (the network's bridge is gone; destroy and create network ${n.network} again)` : ' (create it, or use typevisor network create)'),
    );
  }
  const t = openTap(n.tap ?? bridgeTapPattern(vmName), what);
  try {
    const mtu = n.mtu !== undefined ? ['mtu', String(n.mtu)] : [];
    ip(what, ['link', 'set', t.name, ...mtu, 'master', br, 'up']);
  } catch (e) {
    closeSync(t.fd);
    throw e;
  }
  return new TapBackend(t.fd, t.name);
}

/** Open every NIC's backend, in order; on an error, close the ones already open. */
export async function openNetBackends(nets: NetSpec[], vmName: string): Promise<NetBackend[]> {
  const out: NetBackend[] = [];
  try {
    for (const [i, n] of nets.entries()) out.push(await openNetBackend(n, i, vmName));
  } catch (e) {
    for (const b of out) b.close();
    throw e;
  }
  return out;
}

// Host networks, as libvirt's default network: a Linux bridge holding the host's address on the
// subnet, and one dnsmasq per network that hands out the rest of the subnet by DHCP. Guests join
// with `--net network=NAME` (a TAP on the bridge). State, in DIR/NAME/ (DIR is the state directory's
// networks/ folder):
//   network.json     { name, bridge, address, prefix, range, dnsmasqArgs, created }
//   dnsmasq.pid      dnsmasq's pid (written by dnsmasq)
//   dnsmasq.leases   its lease file
//   dnsmasq.log      its output

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from './errors.js';
import { ip, isBridge, linkKind } from './tap.js';

export interface NetworkRecord {
  name: string;
  bridge: string;
  /** The bridge's (host's) address and the prefix length. */
  address: string;
  prefix: number;
  /** DHCP range handed to guests. */
  range: [string, string];
  dnsmasqArgs: string[];
  created: string;
}

export const NETWORK_NAME = /^[a-z0-9][a-z0-9_-]{0,11}$/;

function ipToInt(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return undefined;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * `ADDRESS/PREFIX` (the bridge's own address, e.g. 10.77.0.1/24) -> the address, prefix, netmask and
 * the DHCP range: the larger run of the subnet's host addresses beside the bridge's own.
 */
export function parseSubnet(text: string): { address: string; prefix: number; mask: string; range: [string, string] } {
  const bad = (why: string): never => {
    throw new UserError(`--subnet ${text}: ${why}; expected the bridge's address and prefix, e.g. 10.77.0.1/24`);
  };
  const [addrText, prefixText, ...rest] = text.split('/');
  if (rest.length > 0 || prefixText === undefined) bad('not ADDRESS/PREFIX');
  const addr = ipToInt(addrText);
  if (addr === undefined) bad(`'${addrText}' is not an IPv4 address`);
  const prefix = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefix < 8 || prefix > 29) bad('the prefix must be from 8 to 29');
  const mask = prefix === 0 ? 0 : (0xffff_ffff << (32 - prefix)) >>> 0;
  const net = (addr! & mask) >>> 0;
  const bcast = (net | ~mask) >>> 0;
  if (addr === net || addr === bcast) bad(`${addrText} is the subnet's ${addr === net ? 'network' : 'broadcast'} address`);
  const below = addr! - 1 - net;
  const above = bcast - 1 - addr!;
  const range: [string, string] =
    above >= below ? [intToIp(addr! + 1), intToIp(bcast - 1)] : [intToIp(net + 1), intToIp(addr! - 1)];
  return { address: addrText, prefix, mask: intToIp(mask), range };
}

export function bridgeName(network: string): string {
  return `tv-${network}`;
}

function paths(dir: string, name: string) {
  const d = join(dir, name);
  return {
    dir: d,
    record: join(d, 'network.json'),
    pid: join(d, 'dnsmasq.pid'),
    leases: join(d, 'dnsmasq.leases'),
    log: join(d, 'dnsmasq.log'),
  };
}

function checkName(name: string): void {
  if (!NETWORK_NAME.test(name)) {
    throw new UserError(`network name '${name}': expected 1 to 12 of a-z, 0-9, _ and - (starting with a letter or digit)`);
  }
}

export function readNetwork(dir: string, name: string): NetworkRecord | undefined {
  try {
    return JSON.parse(readFileSync(paths(dir, name).record, 'utf8')) as NetworkRecord;
  } catch {
    return undefined;
  }
}

export function listNetworks(dir: string): NetworkRecord[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((n) => readNetwork(dir, n))
    .filter((r): r is NetworkRecord => r !== undefined);
}

/** dnsmasq's pid while it runs (the pid file's, checked against /proc so a reused pid is not taken). */
export function dnsmasqPid(dir: string, rec: NetworkRecord): number | undefined {
  try {
    const pid = Number(readFileSync(paths(dir, rec.name).pid, 'utf8').trim());
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('dnsmasq') && cmd.includes(`--interface=${rec.bridge}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Leases dnsmasq handed out: "expiry MAC IP hostname clientid" lines. */
export function networkLeases(dir: string, name: string): { mac: string; ip: string; hostname: string }[] {
  try {
    return readFileSync(paths(dir, name).leases, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const f = l.split(' ');
        return { mac: f[1], ip: f[2], hostname: f[3] };
      });
  } catch {
    return [];
  }
}

/** The bridge of network `name`, for `--net network=NAME`. */
export function lookupNetwork(dir: string, name: string, what: string): string {
  const rec = readNetwork(dir, name);
  if (!rec) throw new UserError(`${what}: there is no network '${name}' (see typevisor network list; create it with typevisor network create)`);
  return rec.bridge;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function createNetwork(dir: string, name: string, subnetText: string): Promise<NetworkRecord> {
  checkName(name);
  const sub = parseSubnet(subnetText);
  const p = paths(dir, name);
  const bridge = bridgeName(name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    mkdirSync(p.dir, { mode: 0o700 });
  } catch {
    throw new UserError(`network ${name} already exists (typevisor network destroy ${name} removes it)`);
  }
  const what = `network ${name}`;
  let bridgeMade = false;
  try {
    if (linkKind(bridge) !== undefined) {
      throw new UserError(`${what}: a host interface named ${bridge} already exists`);
    }
    ip(what, ['link', 'add', bridge, 'type', 'bridge']);
    bridgeMade = true;
    ip(what, ['addr', 'add', `${sub.address}/${sub.prefix}`, 'dev', bridge]);
    ip(what, ['link', 'set', bridge, 'up']);
    // libvirt's way: dnsmasq only on this bridge, DHCP only (no DNS: port 0), no ping before an offer.
    const dnsmasqArgs = [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--except-interface=lo',
      `--interface=${bridge}`,
      '--bind-interfaces',
      `--listen-address=${sub.address}`,
      `--dhcp-range=${sub.range[0]},${sub.range[1]},${sub.mask},1h`,
      `--dhcp-leasefile=${p.leases}`,
      '--dhcp-authoritative',
      '--no-resolv',
      '--port=0',
      '--no-ping',
      `--pid-file=${p.pid}`,
    ];
    const rec: NetworkRecord = {
      name,
      bridge,
      address: sub.address,
      prefix: sub.prefix,
      range: sub.range,
      dnsmasqArgs,
      created: new Date().toISOString(),
    };
    const log = openSync(p.log, 'a');
    let exited: string | undefined;
    try {
      const child = spawn('dnsmasq', dnsmasqArgs, { detached: true, stdio: ['ignore', log, log] });
      child.once('error', (e: NodeJS.ErrnoException) => {
        exited = e.code === 'ENOENT' ? 'dnsmasq is not installed (Debian: apt-get install dnsmasq-base)' : e.message;
      });
      child.once('exit', (c, sig) => (exited ??= `dnsmasq exited (${c ?? sig})`));
      child.unref();
    } finally {
      closeSync(log);
    }
    writeFileSync(p.record, JSON.stringify(rec, null, 2) + '\n');
    // Ready once it has written its pid file (after binding); bounded wait.
    for (let i = 0; i < 100 && exited === undefined && dnsmasqPid(dir, rec) === undefined; i++) await sleep(50);
    if (dnsmasqPid(dir, rec) === undefined) {
      const out = (() => {
        try {
          return readFileSync(p.log, 'utf8').trim().split('\n').slice(-3).join('; ');
        } catch {
          return '';
        }
      })();
      throw new UserError(`${what}: the DHCP server did not start: ${exited ?? 'no pid file after 5 s'}${out ? `: ${out}` : ''}`);
    }
    return rec;
  } catch (e) {
    if (bridgeMade) {
      try {
        ip(what, ['link', 'del', bridge]);
      } catch {
        // already gone
      }
    }
    const rec = readNetwork(dir, name);
    if (rec) {
      const pid = dnsmasqPid(dir, rec);
      if (pid) process.kill(pid, 'SIGTERM');
    }
    rmSync(p.dir, { recursive: true, force: true });
    throw e;
  }
}

/** Stop dnsmasq, delete the bridge (and with it the guests' ports on it), remove the state. */
export async function destroyNetwork(dir: string, name: string): Promise<void> {
  checkName(name);
  const rec = readNetwork(dir, name);
  if (!rec) throw new UserError(`there is no network '${name}' (see typevisor network list)`);
  const pid = dnsmasqPid(dir, rec);
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 40 && dnsmasqPid(dir, rec) !== undefined; i++) await sleep(50);
  }
  if (isBridge(rec.bridge)) ip(`network ${name}`, ['link', 'del', rec.bridge]);
  rmSync(paths(dir, name).dir, { recursive: true, force: true });
}

// Network namespaces for the networking tests: the skip reason when this host cannot make them (or
// lacks ip, passt, dnsmasq), and a namespace that a test creates and close() removes with every
// process still in it.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const typevisor = join(resolve(import.meta.dirname, '..', '..', '..'), 'bin', 'typevisor');

export function which(cmd: string): string {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
}

function have(cmd: string): boolean {
  return which(cmd) !== '';
}

export let netnsSkipReason: string | false = false;
if (process.getuid?.() !== 0) netnsSkipReason = 'needs root (network namespaces, bridges, TAP devices)';
else if (!have('ip') || !have('passt') || !have('dnsmasq'))
  netnsSkipReason = 'needs ip, passt and dnsmasq (scripts/setup.sh installs them)';
else if (spawnSync('ip', ['netns', 'add', `tvprobe${process.pid}`]).status !== 0)
  netnsSkipReason = 'cannot create a network namespace here';
else spawnSync('ip', ['netns', 'delete', `tvprobe${process.pid}`]);
let nsCount = 0;
/** ip by its full path: one test runs typevisor with a PATH that lacks it. */
export const IP = which('ip') || 'ip';

/** A network namespace with loopback up; `sh` runs commands in it. Removed (and its processes ended) by close(). */
/**
 * The shell commands, run in a namespace, that give it an uplink for user-mode networking (the tests'
 * and `npm run bench -- net`'s): a veth pair with the host address 10.55.0.15/24 (passt gives the
 * guest that address) and a default route through 10.55.0.1. The gateway's address is the
 * namespace's own too (a /32 on the peer, after the route, so that passt still picks 10.55.0.15),
 * so that it answers the echo requests passt relays through ping sockets, which are allowed for
 * every group, as Debian's systemd allows them.
 */
export const UPLINK_SCRIPT =
  'ip link add tvup0 type veth peer name tvup1 && ip addr add 10.55.0.15/24 dev tvup0 && ' +
  'ip link set tvup0 up && ip link set tvup1 up && ip route add default via 10.55.0.1 dev tvup0 && ' +
  'ip addr add 10.55.0.1/32 dev tvup1 && sysctl -qw net.ipv4.ping_group_range="0 2147483647"';

export class Netns {
  readonly name = `tvtest${process.pid}x${nsCount++}`;
  readonly state = mkdtempSync(join(tmpdir(), 'typevisor-net-'));
  private readonly children: ChildProcess[] = [];

  constructor() {
    execFileSync('ip', ['netns', 'add', this.name]);
    this.sh('ip link set lo up');
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, TYPEVISOR_STATE_DIR: this.state };
  }

  /** A default route, which passt needs to find the host's "external" interface (UPLINK_SCRIPT). */
  addUplink(): void {
    this.sh(UPLINK_SCRIPT);
  }

  sh(script: string): string {
    return execFileSync('ip', ['netns', 'exec', this.name, 'sh', '-c', script], {
      encoding: 'utf8',
      env: this.env,
    });
  }

  /** Run `typevisor ARGS` to completion in the namespace. */
  typevisor(
    args: string[],
    env: NodeJS.ProcessEnv = this.env,
  ): { code: number | null; out: string; err: string } {
    const r = spawnSync(IP, ['netns', 'exec', this.name, typevisor, ...args], {
      encoding: 'utf8',
      env,
      timeout: 60_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  spawn(cmd: string[]): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.name, ...cmd], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: this.env,
    });
    this.children.push(p);
    return p;
  }

  close(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    // Anything still in the namespace was started by this test (dnsmasq, passt): end it by pid.
    const pids = spawnSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' })
      .stdout.split(/\s+/)
      .filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    spawnSync('ip', ['netns', 'delete', this.name]);
    rmSync(this.state, { recursive: true, force: true });
  }
}

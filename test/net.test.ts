// Guest networking end to end, each test inside a network namespace it creates (ip netns), with the
// real passt, dnsmasq and Linux bridge: a guest takes a DHCP lease on a `typevisor network` and pings
// the host side, two guests on it exchange a file over TCP; a user-mode guest fetches a file from an
// HTTP server on the host and the host reaches the guest's server through hostfwd; and the bad-input
// errors come before the guest starts. Guests are driven through `typevisor run` with the console on
// a pipe; each guest command prints a marker line ("@@key=value") whose value comes from the guest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDefaultImage, NIC_ADDRESS_MARKER } from '../src/image/build.js';
import { defaultMac } from '../src/vmm/net.js';
import { apiRequest } from '../src/api/client.js';
import { haveCrossToolchain, tinyGuestImage, until } from './helpers/toolstack-guest.js';
import { IP, Netns, netnsSkipReason as skipReason, which } from './helpers/netns.js';

const root = resolve(import.meta.dirname, '..', '..');
const typevisor = join(root, 'bin', 'typevisor');
const BOOT_TIMEOUT_MS = 20 * 60 * 1000;

let imageError: string | false = false;
if (!skipReason) {
  try {
    await buildDefaultImage({ log: () => {} });
  } catch (e) {
    imageError = `the default guest image cannot be built here: ${(e as Error).message}`;
  }
}

/** A guest booted with `typevisor run` in a namespace; commands are typed on its console. */
class Guest {
  out = '';
  err = '';
  private readonly p: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(ns: Netns, args: string[]) {
    this.p = ns.spawn([typevisor, 'run', '--memory', '256', ...args]);
    this.p.stdout!.on('data', (d: Buffer) => (this.out += d.toString('latin1')));
    this.p.stderr!.on('data', (d: Buffer) => (this.err += d.toString('latin1')));
    this.exited = new Promise((r) => this.p.on('close', (code) => r(code)));
  }

  send(line: string): void {
    this.p.stdin!.write(line + '\n');
  }

  /** Wait (bounded) for a console line matching `re`; returns its match. */
  async waitFor(re: RegExp, what: string): Promise<RegExpMatchArray> {
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    for (;;) {
      for (const line of this.out.split(/\r?\n/)) {
        const m = re.exec(line.trim());
        if (m) return m;
      }
      if (this.p.exitCode !== null || Date.now() > deadline) {
        throw new Error(`${what}: not seen (${this.p.exitCode !== null ? 'guest exited' : 'timed out'}); console:\n${this.out.slice(-3000)}\n--- stderr ---\n${this.err}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Type `cmd` (which echoes "@@key=...") and return the value the guest printed. */
  async marker(key: string, cmd: string): Promise<string> {
    this.send(cmd);
    return (await this.waitFor(new RegExp(`^@@${key}=(.*)$`), `@@${key}`))[1].trim();
  }

  async address(): Promise<string> {
    // The line may follow the shell prompt on the same line: DHCP finishes in the background.
    return (await this.waitFor(new RegExp(`${NIC_ADDRESS_MARKER}0 ([0-9.]+)/(\\d+)$`), 'eth0 DHCP address'))[1];
  }

  async poweroff(): Promise<number | null> {
    this.send('poweroff -f');
    return this.exited;
  }
}

const SKIP = skipReason || imageError;

test('typevisor network: DHCP lease, ping to the bridge, two guests exchange a file over TCP; destroy cleans up', { skip: SKIP, timeout: 3 * BOOT_TIMEOUT_MS }, async () => {
  const ns = new Netns();
  try {
    const created = ns.typevisor(['network', 'create', 'lan', '--subnet', '10.77.0.1/24']);
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, /network lan: bridge tv-lan 10\.77\.0\.1\/24, DHCP 10\.77\.0\.2-10\.77\.0\.254/);
    const again = ns.typevisor(['network', 'create', 'lan', '--subnet', '10.77.0.1/24']);
    assert.equal(again.code, 2);
    assert.match(again.err, /network lan already exists/);

    const a = new Guest(ns, ['--name', 'neta', '--net', 'network=lan']);
    // B's NIC and TAP have a jumbo MTU; the bridge carries frames up to its smallest port's (A's 1500),
    // and TCP between the two keeps to it.
    const b = new Guest(ns, ['--name', 'netb', '--net', 'network=lan,mtu=9000']);
    const [ipA, ipB] = await Promise.all([a.address(), b.address()]);
    assert.match(ipA, /^10\.77\.0\.\d+$/);
    assert.match(ipB, /^10\.77\.0\.\d+$/);
    assert.notEqual(ipA, ipB);
    // dnsmasq's leases name the guests' MACs (derived from their names).
    const list = ns.typevisor(['network', 'list']);
    assert.match(list.out, /^lan\s+tv-lan\s+10\.77\.0\.1\/24\s+10\.77\.0\.2-10\.77\.0\.254\s+2$/m);
    const leases = ns.sh(`cat ${join(ns.state, 'networks', 'lan', 'dnsmasq.leases')}`);
    assert.match(leases, new RegExp(`${defaultMac('neta', 0)} ${ipA.replace(/\./g, '\\.')} `));

    assert.equal(await a.marker('mtu', 'echo "@@mtu=$(cat /sys/class/net/eth0/mtu)"'), '1500', 'Ethernet MTU on a bridge');
    assert.equal(await b.marker('mtu', 'echo "@@mtu=$(cat /sys/class/net/eth0/mtu)"'), '9000', 'the MTU mtu= gave');
    assert.match(ns.sh('ip -o link show master tv-lan'), /mtu 9000/, "B's TAP has its MTU");
    assert.equal(await a.marker('ping', 'ping -c 2 -W 5 10.77.0.1 >/dev/null; echo "@@ping=$?"'), '0');
    const sum = await a.marker(
      'sum',
      'mkdir -p /www && dd if=/dev/urandom of=/www/blob bs=1024 count=768 2>/dev/null && echo "@@sum=$(md5sum < /www/blob)"',
    );
    assert.equal(await a.marker('httpd', 'httpd -p 8080 -h /www; echo "@@httpd=$?"'), '0');
    const got = await b.marker('got', `echo "@@got=$(wget -q -O - http://${ipA}:8080/blob | md5sum)"`);
    assert.equal(got, sum, 'guest B received exactly the bytes guest A served');

    assert.equal(await a.poweroff(), 0, a.err);
    assert.equal(await b.poweroff(), 0, b.err);
    const destroyed = ns.typevisor(['network', 'destroy', 'lan']);
    assert.equal(destroyed.code, 0, destroyed.err);
    assert.equal(spawnSync('ip', ['netns', 'exec', ns.name, 'ip', 'link', 'show', 'tv-lan']).status, 1, 'bridge deleted');
    assert.doesNotMatch(ns.typevisor(['network', 'list']).out, /lan/);
    // dnsmasq's command line names its lease file in this test's state directory.
    assert.equal(spawnSync('pgrep', ['-f', `dnsmasq.*${ns.state}`]).status, 1, 'dnsmasq stopped');
  } finally {
    ns.close();
  }
});

test('--net user: the guest fetches from an HTTP server on the host, the host reaches the guest through hostfwd', { skip: SKIP, timeout: 3 * BOOT_TIMEOUT_MS }, async () => {
  const ns = new Netns();
  try {
    ns.addUplink();
    const server = ns.spawn([
      process.execPath,
      '-e',
      "require('http').createServer((q, s) => s.end(q.url === '/file' ? 'host says ' + (6 * 7) : 'no')).listen(18000, '127.0.0.1', () => console.log('listening'))",
    ]);
    await new Promise<void>((r) => server.stdout!.once('data', () => r()));
    const g = new Guest(ns, ['--name', 'usr', '--net', 'user,hostfwd=tcp::18080-:8080']);
    assert.equal(await g.address(), '10.55.0.15', 'passt gives the guest the host uplink address');
    assert.equal(await g.marker('mtu', 'echo "@@mtu=$(cat /sys/class/net/eth0/mtu)"'), '65520', "passt's MTU (USER_MTU)");
    const fetched = await g.marker(
      'fetched',
      'echo "@@fetched=$(wget -q -O - http://$(ip route | awk \'/default/ {print $3}\'):18000/file)"',
    );
    assert.equal(fetched, 'host says 42');
    // ICMP through passt: echo requests to the gateway are answered (passt relays them)
    assert.equal(
      await g.marker('ping', 'ping -c 2 -W 5 $(ip route | awk \'/default/ {print $3}\') >/dev/null; echo "@@ping=$?"'),
      '0',
    );
    assert.equal(
      await g.marker('httpd', 'mkdir -p /www && echo "guest says $((6*9))" > /www/g && httpd -p 8080 -h /www; echo "@@httpd=$?"'),
      '0',
    );
    const viaFwd = ns.sh(
      `${process.execPath} -e "fetch('http://127.0.0.1:18080/g').then(r => r.text()).then(t => process.stdout.write(t))"`,
    );
    assert.equal(viaFwd.trim(), 'guest says 54');
    assert.equal(await g.poweroff(), 0, g.err);
  } finally {
    ns.close();
  }
});

test('--net errors name the NIC and come before the guest starts', { skip: skipReason, timeout: 120_000 }, () => {
  const ns = new Netns();
  const bin = mkdtempSync(join(tmpdir(), 'typevisor-nopasst-'));
  try {
    // Any file as the kernel: every one of these fails before it is loaded (as an arm64 Image it would not).
    const k = ['--arch', 'aarch64', '--kernel', process.execPath];
    const cases: [string[], RegExp][] = [
      [['--net', 'user,mac=02:00:00:00:00'], /--net #1 \(user\): mac=02:00:00:00:00: expected a MAC address/],
      [['--net', 'user,mac=03:00:00:00:00:01'], /--net #1 \(user\): mac=03:00:00:00:00:01 is a multicast address/],
      [['--net', 'user,mac=02:00:00:00:00:01', '--net', 'tap=tvx0,mac=02:00:00:00:00:01'], /--net #2 \(tap=tvx0\): mac=02:00:00:00:00:01 is already the MAC of --net #1/],
      [['--net', 'bridge=nobr'], /--net #1 \(bridge=nobr\): there is no bridge 'nobr'/],
      [['--net', 'network=nonet'], /--net #1 \(network=nonet\): there is no network 'nonet'/],
      [['--net', 'user,hostfwd=tcp::80'], /--net #1 'user,hostfwd=tcp::80': hostfwd=tcp::80: expected/],
      [['--net', 'wifi'], /--net #1 'wifi': expected user, tap=IFNAME, bridge=BRIDGE or network=NAME/],
      [['--net', 'user,mtu=67'], /--net #1 'user,mtu=67': mtu=67: expected an MTU from 68 to 65520/],
      [['--net', 'tap=tvx0,mtu=65521'], /--net #1 'tap=tvx0,mtu=65521': mtu=65521: expected an MTU from 68 to 65520/],
      [['--net', 'bridge=br0,mtu=jumbo'], /--net #1 'bridge=br0,mtu=jumbo': mtu=jumbo: expected an MTU/],
    ];
    for (const [args, re] of cases) {
      const r = ns.typevisor(['run', ...k, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: exit status; stderr: ${r.err}`);
      assert.match(r.err, re);
      assert.doesNotMatch(r.err, /internal error|is an ELF file/);
    }
    // No passt on PATH (only what bin/typevisor itself runs).
    symlinkSync(process.execPath, join(bin, 'node'));
    for (const tool of ['dirname', 'readlink']) symlinkSync(which(tool), join(bin, tool));
    const r = ns.typevisor(['run', ...k, '--net', 'user'], { ...ns.env, PATH: bin });
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--net #1 \(user\): user-mode networking needs passt, which is not installed/);
    // No permission for /dev/net/tun (an unprivileged user).
    const p = spawnSync(
      'ip',
      ['netns', 'exec', ns.name, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', typevisor, 'run', ...k, '--net', 'tap=tvx0'],
      { encoding: 'utf8', env: { ...ns.env, TYPEVISOR_STATE_DIR: join(tmpdir(), `typevisor-nobody-${process.pid}`) }, timeout: 60_000 },
    );
    assert.equal(p.status, 2, p.stderr);
    assert.match(p.stderr, /--net #1 \(tap=tvx0\): .*(no permission|needs CAP_NET_ADMIN)/);
  } finally {
    rmSync(bin, { recursive: true, force: true });
    ns.close();
  }
});

test('Firecracker API: PUT /network-interfaces/{id} before InstanceStart adds a NIC on a TAP; refused after', { skip: skipReason || (!haveCrossToolchain() && 'aarch64-linux-gnu-gcc is not installed'), timeout: 120_000 }, async () => {
  const ns = new Netns();
  try {
    const c = ns.typevisor(['create', '-p', '--kernel', tinyGuestImage('idle'), '--name', 'fc', '--memory', '64']);
    assert.equal(c.code, 0, c.err);
    const sock = join(ns.state, 'fc', 'control.sock');
    const put = (id: string, body: unknown) => apiRequest(sock, 'PUT', `/network-interfaces/${id}`, body);
    const fault = (r: { body: unknown }) => (r.body as { fault_message: string }).fault_message;
    let r = await put('eth0', { iface_id: 'eth0', host_dev_name: 'tvapi0', guest_mac: '01:00:00:00:00:01' });
    assert.equal(r.status, 400);
    assert.match(fault(r), /network interface eth0: .*multicast/);
    r = await put('eth0', { iface_id: 'eth1', host_dev_name: 'tvapi0' });
    assert.equal(r.status, 400);
    assert.match(fault(r), /iface_id/);
    r = await put('eth0', { iface_id: 'eth0', host_dev_name: 'tvapi0', guest_mac: '02:00:00:00:00:42' });
    assert.equal(r.status, 204, JSON.stringify(r.body));
    assert.equal((await apiRequest(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).status, 204);
    // The VM process opened the TAP (a new one, since none existed).
    await until(() => spawnSync(IP, ['netns', 'exec', ns.name, 'ip', 'link', 'show', 'tvapi0']).status === 0, 'TAP tvapi0');
    r = await put('eth1', { iface_id: 'eth1', host_dev_name: 'tvapi1' });
    assert.equal(r.status, 400);
    assert.match(fault(r), /not supported after starting/);
    assert.equal((await apiRequest(sock, 'PUT', '/destroy')).status, 204);
    // The TAP was the VM's (not persistent): it goes with the VM process.
    await until(() => spawnSync(IP, ['netns', 'exec', ns.name, 'ip', 'link', 'show', 'tvapi0']).status !== 0, 'TAP tvapi0 removed');
  } finally {
    ns.close();
  }
});

// `npm run bench -- net`: TCP throughput guest -> host and host -> guest, and ping round-trip time,
// over user-mode networking (passt) and over a bridge (a `typevisor network`), for typevisor's
// virtio-net and for Debian's qemu-system-aarch64 (-device virtio-net-device) with the same kernel,
// initramfs and backend (passt over QEMU's stream netdev; a TAP on the same bridge), in one run.
// Everything happens in a network namespace the benchmark creates (root needed); traffic stays in it.
//
// The guest end is bench/programs/netstream.c (64 KiB writes of a known stream; busybox nc writes
// 1 KiB at a time and would measure nc); the host end checks what arrived by its digest. Throughput
// is timed by the host, from the first byte to the last. Beside each figure: the CPU time the VM
// process (typevisor's node, QEMU) used per MiB, which the other jobs of a shared host disturb less
// than wall time. Size: TYPEVISOR_BENCH_NET_MIB (default 16). The last line is the issue's target,
// bridge, guest to host: `net: typevisor X MB/s, qemu Y MB/s, ratio R`.

import { execFileSync, spawnSync } from 'node:child_process';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDefaultImage, NIC_ADDRESS_MARKER } from '../src/image/build.js';
import { UPLINK_SCRIPT } from '../test/helpers/netns.js';
import { USER_MTU } from '../src/vmm/net.js';
import { spawnWithPasstSocket } from '../src/host/passt.js';
import { guestToHost, hostToGuest, initrdWithNetstream, NetGuest, type Transfer } from './netstream.js';
import { qemuVirtArgs, repoRoot, sleep, typevisorRunArgs } from './util.js';

const MEMORY_MIB = 256;
const MIB = Number(process.env.TYPEVISOR_BENCH_NET_MIB ?? 16);
const SIZE = MIB * 1048576;
const BRIDGE_HOST = '10.79.0.1';
const SINK_PORT = 5001;
const GUEST_PORT = 5002;
/** Host port forwarded to GUEST_PORT in user mode. */
const FWD_PORT = 15002;
const CMDLINE = 'console=ttyAMA0 rdinit=/init';
const SEED = 0x5eed;

interface Result {
  g2h: Transfer;
  h2g: Transfer;
  rttMs: number;
}

async function measure(
  g: NetGuest,
  ns: string,
  mode: 'user' | 'bridge',
  fwdPort = FWD_PORT,
): Promise<Result> {
  try {
    process.stderr.write(`bench net: booting ${g.name}...\n`);
    await g.waitFor(new RegExp(`${NIC_ADDRESS_MARKER}0 ([0-9.]+)/`), 'eth0 address', 0, 900_000);
    const guestAddr = /@@addr=([0-9.]+)/;
    const gw = (
      await g.waitFor(
        /@@gw=([0-9.]+)/,
        'default gateway',
        g.type(`echo "@@gw=$(ip route | awk '/default/ {print $3}')"`),
      )
    )[1];
    const peer = mode === 'bridge' ? BRIDGE_HOST : gw;
    const pingAt = g.type(`ping -c 10 -i 0.2 -W 2 ${peer}`);
    await g.waitFor(/packets transmitted/, 'ping', pingAt, 120_000);
    await sleep(500);
    // NaN when no reply came.
    const rtt = /round-trip min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(g.out.slice(pingAt));
    process.stderr.write(`bench net: ${g.name}: guest -> host, ${MIB} MiB\n`);
    const g2h = await guestToHost(g, ns, mode === 'bridge' ? BRIDGE_HOST : '127.0.0.1', peer, {
      size: SIZE,
      seed: SEED,
      port: SINK_PORT,
    });
    process.stderr.write(`bench net: ${g.name}: host -> guest, ${MIB} MiB\n`);
    let h2g: Transfer;
    if (mode === 'bridge') {
      const addr = (
        await g.waitFor(
          guestAddr,
          'guest address',
          g.type(`echo "@@addr=$(ip -4 addr show eth0 | awk '/inet / {split($2, a, "/"); print a[1]}')"`),
        )
      )[1];
      h2g = await hostToGuest(g, ns, addr, GUEST_PORT, { size: SIZE, seed: SEED, port: GUEST_PORT });
    } else {
      h2g = await hostToGuest(g, ns, '127.0.0.1', fwdPort, { size: SIZE, seed: SEED, port: GUEST_PORT });
    }
    return { g2h, h2g, rttMs: rtt ? Number(rtt[1]) : NaN };
  } finally {
    await g.stop();
  }
}

/** passt in the namespace over a socketpair (it forks away once ready); returns this process's end. */
async function passtForQemu(ns: string, forward: string): Promise<Socket> {
  // The socket typevisor gives its own passt (PASST_SOCKET_BUFFER), so that both VMMs get the same passt.
  const { sock, child: p } = spawnWithPasstSocket(
    'ip',
    ['netns', 'exec', ns, 'passt', '-q', '--fd', '3', '-m', String(USER_MTU), '-t', forward],
    'ignore',
  );
  sock.pause();
  const code = await new Promise((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`passt for QEMU exited with status ${code}`);
  return sock;
}

/** QEMU with one NIC on `netdev`; `mtu`: the MTU its virtio-net offers (host_mtu), as typevisor's does. */
function qemuCmd(kernel: string, initrd: string, netdev: string, mtu?: number): string[] {
  return [
    'qemu-system-aarch64',
    ...qemuVirtArgs({ kernel, initrd, cmdline: CMDLINE, memoryMiB: MEMORY_MIB }),
    '-netdev',
    netdev,
    '-device',
    `virtio-net-device,netdev=n0,mac=02:51:00:00:00:01${mtu === undefined ? '' : `,host_mtu=${mtu}`}`,
  ];
}

export async function benchNet(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench net needs root (network namespace, bridge, TAP)');
  const img = await buildDefaultImage({ log: (m) => process.stderr.write(`bench net: ${m}\n`) });
  const ns = `tvbench${process.pid}`;
  const state = mkdtempSync(join(tmpdir(), 'typevisor-bench-'));
  const initrd = initrdWithNetstream(img.initrd, state);
  const env = { ...process.env, TYPEVISOR_STATE_DIR: state };
  const tv = join(repoRoot, 'bin', 'typevisor');
  const sh = (script: string): string =>
    execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', script], { encoding: 'utf8', env });
  const tvCmd = (net: string): string[] => [
    tv,
    ...typevisorRunArgs({ kernel: img.kernel, initrd, cmdline: CMDLINE, memoryMiB: MEMORY_MIB }),
    '--name',
    'bench',
    '--net',
    net,
  ];
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    // Loopback; an uplink with a default route for passt, as the tests have it.
    sh(`ip link set lo up && ${UPLINK_SCRIPT}`);
    execFileSync(
      'ip',
      ['netns', 'exec', ns, tv, 'network', 'create', 'bench', '--subnet', `${BRIDGE_HOST}/24`],
      { env, stdio: 'inherit' },
    );
    sh('ip tuntap add tvq0 mode tap vnet_hdr && ip link set tvq0 master tv-bench up');
    const results: Record<string, Result> = {};
    // QEMU over passt as typevisor runs it (src/host/passt.ts): over a socketpair, QEMU's end as its
    // fd 3, at the MTU typevisor's user NICs have (USER_MTU); with its own forwarded host port
    // (typevisor's passt binds FWD_PORT).
    results['qemu user'] = await measure(
      new NetGuest(
        'qemu (user)',
        ns,
        qemuCmd(img.kernel, initrd, 'stream,id=n0,server=off,addr.type=fd,addr.str=3', USER_MTU),
        env,
        undefined,
        await passtForQemu(ns, `${FWD_PORT + 1}:${GUEST_PORT}`),
      ),
      ns,
      'user',
      FWD_PORT + 1,
    );
    results['typevisor user'] = await measure(
      new NetGuest('typevisor (user)', ns, tvCmd(`user,hostfwd=tcp::${FWD_PORT}-:${GUEST_PORT}`), env),
      ns,
      'user',
    );
    results['qemu bridge'] = await measure(
      new NetGuest(
        'qemu (bridge)',
        ns,
        qemuCmd(img.kernel, initrd, 'tap,id=n0,ifname=tvq0,script=no,downscript=no'),
        env,
      ),
      ns,
      'bridge',
    );
    results['typevisor bridge'] = await measure(
      new NetGuest('typevisor (bridge)', ns, tvCmd('network=bench'), env),
      ns,
      'bridge',
    );

    const row = (label: string, pick: (r: Result) => Transfer): string => {
      const t = pick(results[`typevisor ${label.split(' ')[0]}`]);
      const q = pick(results[`qemu ${label.split(' ')[0]}`]);
      return (
        `${label.padEnd(22)} ${t.mbps.toFixed(2).padStart(8)} MB/s (${t.cpuPerMiB.toFixed(2)} CPU s/MiB)  ` +
        `${q.mbps.toFixed(2).padStart(8)} MB/s (${q.cpuPerMiB.toFixed(2)} CPU s/MiB)  ratio ${(q.mbps / t.mbps).toFixed(2)}, CPU ratio ${(t.cpuPerMiB / q.cpuPerMiB).toFixed(2)}\n`
      );
    };
    process.stdout.write(`bench net: ${MIB} MiB each way; typevisor, then qemu; ratio = qemu / typevisor\n`);
    for (const b of ['user', 'bridge']) {
      process.stdout.write(row(`${b} guest -> host`, (r) => r.g2h));
      process.stdout.write(row(`${b} host -> guest`, (r) => r.h2g));
      const t = results[`typevisor ${b}`].rttMs;
      const q = results[`qemu ${b}`].rttMs;
      process.stdout.write(
        `${`${b} ping rtt`.padEnd(22)} ${t.toFixed(2).padStart(8)} ms  ${q.toFixed(2).padStart(8)} ms  ratio ${(t / q).toFixed(2)}\n`,
      );
    }
    const t = results['typevisor bridge'].g2h.mbps;
    const q = results['qemu bridge'].g2h.mbps;
    process.stdout.write(
      `net: typevisor ${t.toFixed(2)} MB/s, qemu ${q.toFixed(2)} MB/s, ratio ${(q / t).toFixed(2)}\n`,
    );
  } finally {
    spawnSync('ip', ['netns', 'exec', ns, tv, 'network', 'destroy', 'bench'], { env });
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .stdout.split(/\s+/)
      .filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync('ip', ['netns', 'delete', ns]);
    rmSync(state, { recursive: true, force: true });
  }
}

// `npm run bench -- net`: TCP throughput from a guest to the host over a bridge (a `typevisor
// network`), typevisor's virtio-net against Debian's qemu-system-aarch64 (-device virtio-net-device on
// a TAP on the same bridge), the same kernel and initramfs, in the same run. Everything happens in a
// network namespace the benchmark creates (root needed). The guest sends SIZE bytes with busybox nc;
// a sink on the host side times them from the first byte to the last.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDefaultImage, NIC_ADDRESS_MARKER } from '../src/image/build.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const MEMORY_MIB = 256;
const SIZE = 16 * 1024 * 1024;
const HOST = '10.79.0.1';
const PORT = 5001;
const CMDLINE = 'console=ttyAMA0 rdinit=/init';

function sh(ns: string, script: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', script], { encoding: 'utf8' });
}

/** The sink: prints "RESULT bytes seconds" once SIZE bytes arrived on one connection. */
const SINK = `
const net = require('net');
net.createServer((s) => {
  let n = 0, t0 = 0;
  s.on('data', (d) => {
    if (!t0) t0 = process.hrtime.bigint();
    n += d.length;
    if (n >= ${SIZE}) {
      console.log('RESULT ' + n + ' ' + Number(process.hrtime.bigint() - t0) / 1e9);
      s.destroy();
    }
  });
}).listen(${PORT}, '${HOST}', () => console.log('listening'));
`;

interface Guest {
  p: ChildProcess;
  out: string;
}

function startGuest(ns: string, cmd: string[], env: NodeJS.ProcessEnv): Guest {
  const g: Guest = { p: spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['pipe', 'pipe', 'pipe'], env }), out: '' };
  g.p.stdout!.on('data', (d: Buffer) => (g.out += d.toString('latin1')));
  g.p.stderr!.on('data', (d: Buffer) => (g.out += d.toString('latin1')));
  return g;
}

async function waitFor(g: Guest, re: RegExp, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!re.test(g.out)) {
    if (g.p.exitCode !== null || Date.now() > end) throw new Error(`${what}: not seen; output:\n${g.out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Boot, wait for the DHCP address, send SIZE bytes to the sink; MB/s. */
async function measure(name: string, ns: string, cmd: string[], env: NodeJS.ProcessEnv, bootMs: number): Promise<number> {
  const sink = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
  let sinkOut = '';
  sink.stdout!.on('data', (d: Buffer) => (sinkOut += d.toString()));
  const g = startGuest(ns, cmd, env);
  try {
    process.stderr.write(`bench net: booting ${name}...\n`);
    await waitFor(g, new RegExp(`${NIC_ADDRESS_MARKER}0 `), `${name}: eth0 address`, bootMs);
    process.stderr.write(`bench net: ${name}: sending ${SIZE >> 20} MiB\n`);
    g.p.stdin!.write(`dd if=/dev/zero bs=65536 count=${SIZE / 65536} 2>/dev/null | nc ${HOST} ${PORT}; echo "@@sent"\n`);
    const end = Date.now() + 600_000;
    while (!/RESULT/.test(sinkOut)) {
      if (Date.now() > end || g.p.exitCode !== null) throw new Error(`${name}: transfer did not finish; guest:\n${g.out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const [, bytes, secs] = /RESULT (\d+) ([\d.e-]+)/.exec(sinkOut)!;
    return Number(bytes) / 1e6 / Number(secs);
  } finally {
    g.p.stdin!.write('poweroff -f\n');
    await Promise.race([new Promise((r) => g.p.once('close', r)), new Promise((r) => setTimeout(r, 20_000))]);
    if (g.p.exitCode === null) g.p.kill('SIGKILL');
    sink.kill('SIGKILL');
  }
}

export async function benchNet(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench net needs root (network namespace, bridge, TAP)');
  const img = await buildDefaultImage({ log: (m) => process.stderr.write(`bench net: ${m}\n`) });
  const ns = `tvbench${process.pid}`;
  const state = mkdtempSync(join(tmpdir(), 'typevisor-bench-'));
  const env = { ...process.env, TYPEVISOR_STATE_DIR: state };
  const tv = join(repoRoot, 'bin', 'typevisor');
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    sh(ns, 'ip link set lo up');
    execFileSync('ip', ['netns', 'exec', ns, tv, 'network', 'create', 'bench', '--subnet', `${HOST}/24`], { env, stdio: 'inherit' });
    // QEMU's side: a TAP on the same bridge.
    sh(ns, 'ip tuntap add tvq0 mode tap vnet_hdr && ip link set tvq0 master tv-bench up');
    const qemu = await measure(
      'qemu',
      ns,
      ['qemu-system-aarch64', '-M', 'virt,gic-version=3', '-cpu', 'cortex-a53', '-accel', 'tcg', '-m', String(MEMORY_MIB),
        '-smp', '1', '-nographic', '-no-reboot', '-kernel', img.kernel, '-initrd', img.initrd, '-append', CMDLINE,
        '-netdev', 'tap,id=n0,ifname=tvq0,script=no,downscript=no', '-device', 'virtio-net-device,netdev=n0,mac=02:51:00:00:00:01'],
      env,
      300_000,
    );
    const typevisor = await measure(
      'typevisor',
      ns,
      [tv, 'run', '--kernel', img.kernel, '--initrd', img.initrd, '--cmdline', CMDLINE, '--memory', String(MEMORY_MIB),
        '--no-rng', '--name', 'bench', '--net', 'network=bench'],
      env,
      900_000,
    );
    process.stdout.write(`net: typevisor ${typevisor.toFixed(2)} MB/s, qemu ${qemu.toFixed(2)} MB/s, ratio ${(qemu / typevisor).toFixed(2)}\n`);
  } finally {
    spawnSync('ip', ['netns', 'exec', ns, tv, 'network', 'destroy', 'bench'], { env });
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
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

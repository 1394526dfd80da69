// The host's half of bench/programs/netstream.c (a static guest program): the same pseudo-random
// stream (xorshift64 words, little-endian) and the same 64-bit FNV-1a digest over its words, in
// 32-bit halves (no BigInt in the loop), plus building the program into an initramfs appended to the
// default one; and the two transfers (guest -> host, host -> guest) with a guest driven on its
// console, each checked by digest on both ends. Used by `npm run bench -- net` and by test/net-transfer.test.ts.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { writeInitramfsWith } from '../src/boot/initramfs.js';
import { ConsoleGuest, repoRoot, sleep } from './util.js';

/** Where the program is in the guest. */
export const NETSTREAM_GUEST_PATH = '/bin/netstream';

/** Compile netstream.c (aarch64-linux-gnu-gcc, static) and write `initrd` + it as a new initramfs in `dir`. */
export function initrdWithNetstream(initrd: string, dir: string): string {
  const bin = join(dir, 'netstream');
  execFileSync('aarch64-linux-gnu-gcc', [
    '-O2',
    '-static',
    '-o',
    bin,
    join(repoRoot, 'bench', 'programs', 'netstream.c'),
  ]);
  const out = join(dir, 'initramfs-netstream.cpio.gz');
  writeInitramfsWith(initrd, out, { [NETSTREAM_GUEST_PATH.slice(1)]: bin });
  return out;
}

/** The stream from a seed, chunk by chunk, with its digest and sha256 as it goes. */
export class Stream {
  private hi: number;
  private lo: number;
  private hHi = 0xcbf29ce4;
  private hLo = 0x84222325;
  private readonly sha: Hash = createHash('sha256');
  bytes = 0;

  constructor(seed: number) {
    // As the C program: the seed as a 64-bit number with its lowest bit set.
    this.hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.lo = (seed | 1) >>> 0;
  }

  /** The next `n` bytes (a multiple of 8). */
  next(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let { hi, lo } = this;
    for (let o = 0; o < n; o += 8) {
      // s ^= s << 13
      hi = (hi ^ ((hi << 13) | (lo >>> 19))) >>> 0;
      lo = (lo ^ (lo << 13)) >>> 0;
      // s ^= s >> 7
      lo = (lo ^ ((lo >>> 7) | (hi << 25))) >>> 0;
      hi = (hi ^ (hi >>> 7)) >>> 0;
      // s ^= s << 17
      hi = (hi ^ ((hi << 17) | (lo >>> 15))) >>> 0;
      lo = (lo ^ (lo << 17)) >>> 0;
      out.writeUInt32LE(lo, o);
      out.writeUInt32LE(hi, o + 4);
    }
    this.hi = hi;
    this.lo = lo;
    this.update(out);
    return out;
  }

  /** A partial word of the bytes given to update() so far. */
  private pending = Buffer.alloc(0);

  /** Fold bytes that were sent or received (any length) into the digests. */
  update(chunk: Uint8Array): void {
    this.sha.update(chunk);
    this.bytes += chunk.length;
    const b = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const whole = b.length & ~7;
    this.pending = Buffer.from(b.subarray(whole));
    const dv = new DataView(b.buffer, b.byteOffset, whole);
    let { hHi, hLo } = this;
    for (let o = 0; o < whole; o += 8) {
      const xl = (hLo ^ dv.getUint32(o, true)) >>> 0;
      const xh = (hHi ^ dv.getUint32(o + 4, true)) >>> 0;
      // (x * 0x100000001b3) mod 2^64 = x * 0x1b3 + (x << 40)
      const pl = xl * 0x1b3;
      const carry = Math.floor(pl / 0x1_0000_0000);
      hLo = pl >>> 0;
      hHi = (xh * 0x1b3 + carry + ((xl << 8) >>> 0)) >>> 0;
    }
    this.hHi = hHi;
    this.hLo = hLo;
  }

  /** FNV-1a 64 over the words so far, as netstream prints it (16 hex digits). */
  get digest(): string {
    return this.hHi.toString(16).padStart(8, '0') + this.hLo.toString(16).padStart(8, '0');
  }

  sha256(): string {
    return this.sha.digest('hex');
  }
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** A guest driven through its console (typevisor run or QEMU with the console on stdio), in a namespace. */
export class NetGuest extends ConsoleGuest {
  constructor(
    name: string,
    ns: string,
    cmd: string[],
    env: NodeJS.ProcessEnv,
    stepMs = 600_000,
    /** Given to the guest's process as its fd 3 (and closed here). */
    fd3?: Socket,
  ) {
    const p = spawn('ip', ['netns', 'exec', ns, ...cmd], {
      stdio: ['pipe', 'pipe', 'pipe', fd3 ?? 'ignore'],
      env,
    });
    fd3?.destroy();
    // A netstream error line fails a wait at once.
    super(name, p, stepMs, /^netstream: .*$/m);
  }

  cpu(): number {
    return cpuSeconds(this.p.pid!);
  }
}

export interface Transfer {
  mbps: number;
  /** Seconds from the first byte to the last, as the host saw them. */
  secs: number;
  /** VM-process CPU seconds per MiB moved. */
  cpuPerMiB: number;
}

/** `node` running an ES module script in the namespace (this process is outside it), with bench/netstream.js as `Stream`. */
function nodeInNs(ns: string, body: string): ChildProcess {
  const mod = fileURLToPath(import.meta.url);
  const script = `import net from 'node:net'; import { Stream } from ${JSON.stringify(mod)};\n${body}`;
  return spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Run `p` until it prints a JSON line; returns it parsed. */
async function jsonLine<T>(p: ChildProcess, started: () => Promise<void> = async () => {}): Promise<T> {
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise((r) => p.once('close', r));
  await started();
  await closed;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`a host end of the transfer failed: ${out}`);
  return JSON.parse(line) as T;
}

/** Guest -> host: a host listener in the namespace, the guest's netstream sends to `dest`. */
export interface StreamOptions {
  size: number;
  seed: number;
  /** Guest -> host: the host listener's port; host -> guest: the guest listener's port. */
  port: number;
}

export async function guestToHost(
  g: NetGuest,
  ns: string,
  listenAddr: string,
  dest: string,
  o: StreamOptions,
): Promise<Transfer> {
  const { size: SIZE, seed: SEED, port: SINK_PORT } = o;
  const sink = nodeInNs(
    ns,
    `const srv = net.createServer((s) => {
       const got = new Stream(0); let t0 = 0n;
       s.on('data', (d) => { if (!t0) t0 = process.hrtime.bigint(); got.update(d); });
       s.on('end', () => {
         const secs = Number(process.hrtime.bigint() - t0) / 1e9;
         console.log(JSON.stringify({ n: got.bytes, secs, sha: got.sha256(), digest: got.digest }));
         s.end(); srv.close();
       });
     }).listen(${SINK_PORT}, '${listenAddr}', () => console.log('listening'));`,
  );
  let cpu = 0;
  let m: RegExpExecArray | undefined;
  const r = await jsonLine<{ n: number; secs: number; sha: string; digest: string }>(sink, async () => {
    let seen = '';
    sink.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    while (!seen.includes('listening')) {
      if (sink.exitCode !== null) throw new Error('the host listener did not start');
      await sleep(50);
    }
    const cpu0 = g.cpu();
    const at = g.type(`netstream send ${dest} ${SINK_PORT} ${SIZE} ${SEED}`);
    m = await g.waitFor(/@@netstream=(\d+) ([0-9a-f]{16}) /, 'guest -> host transfer', at);
    cpu = g.cpu() - cpu0;
  });
  const want = new Stream(SEED);
  for (let left = SIZE; left > 0; left -= Math.min(left, 1 << 20)) want.next(Math.min(left, 1 << 20));
  if (r.n !== SIZE || r.sha !== want.sha256() || r.digest !== m![2]) {
    throw new Error(
      `${g.name}: guest -> host: ${r.n} bytes arrived (digest ${r.digest}), not the ${SIZE} bytes the guest sent (digest ${m![2]})`,
    );
  }
  return { mbps: SIZE / 1e6 / r.secs, secs: r.secs, cpuPerMiB: cpu / (SIZE / 1048576) };
}

/** Host -> guest: the guest's netstream listens on o.port; a sender in the namespace connects to `addr:port`. */
export async function hostToGuest(
  g: NetGuest,
  ns: string,
  addr: string,
  port: number,
  o: StreamOptions,
): Promise<Transfer> {
  const { size: SIZE, seed: SEED, port: GUEST_PORT } = o;
  const at = g.type(`netstream recv ${GUEST_PORT} ${SIZE} ${SEED}`);
  await g.waitFor(/@@netstream-listening=/, 'guest listener', at);
  const sender = nodeInNs(
    ns,
    `const st = new Stream(${SEED}); let left = ${SIZE}, t0 = 0n;
     const s = net.connect(${port}, '${addr}', () => { t0 = process.hrtime.bigint(); pump(); });
     function pump() {
       while (left > 0) { const n = Math.min(left, 65536); left -= n; if (!s.write(st.next(n))) return void s.once('drain', pump); }
       s.end();
     }
     s.on('close', () => console.log(JSON.stringify({ secs: Number(process.hrtime.bigint() - t0) / 1e9, digest: st.digest })));
     s.on('error', (e) => { console.error(e.message); process.exit(1); });`,
  );
  let cpu = 0;
  let m: RegExpExecArray | undefined;
  const r = await jsonLine<{ secs: number; digest: string }>(sender, async () => {
    const cpu0 = g.cpu();
    // Up to the blank after the second word: the console may have delivered only part of the digest.
    m = await g.waitFor(/@@netstream=(\S+) (\S+)\s/, 'host -> guest transfer', at);
    cpu = g.cpu() - cpu0;
  });
  if (m![1] !== String(SIZE) || m![2] !== r.digest) {
    throw new Error(
      `${g.name}: host -> guest: the guest reports ${m![0]}, expected ${SIZE} bytes with digest ${r.digest}`,
    );
  }
  return { mbps: SIZE / 1e6 / r.secs, secs: r.secs, cpuPerMiB: cpu / (SIZE / 1048576) };
}

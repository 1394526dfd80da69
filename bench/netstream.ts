// The host's half of bench/programs/netstream.c (a static guest program): the same pseudo-random
// stream (xorshift64 words, little-endian) and the same 64-bit FNV-1a digest over its words, in
// 32-bit halves (no BigInt in the loop), plus building the program into an initramfs appended to the
// default one. Used by `npm run bench -- net` and by test/net-transfer.test.ts.

import { execFileSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CpioWriter } from '../src/boot/initramfs.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
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
  const extra = new CpioWriter();
  extra.file(NETSTREAM_GUEST_PATH.slice(1), readFileSync(bin), 0o755);
  const out = join(dir, 'initramfs-netstream.cpio.gz');
  writeFileSync(out, Buffer.concat([readFileSync(initrd), extra.toGzip()]));
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

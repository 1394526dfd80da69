// How much of a large buffer is resident in this process's memory (Linux): what TYPEVISOR_STATS
// reports as "guest RAM in use", so that the VMM's own memory is peak RSS minus it.
//
// Matching /proc/self/smaps entries by size is not enough: the kernel merges adjacent anonymous
// mappings, and the guest RAM's mapping is sometimes merged with malloc's. So the buffer's address
// is found instead (a random sentinel written into its first bytes, searched for through
// /proc/self/mem at the ends of each large anonymous mapping, [heap] included), and its pages are
// counted in /proc/self/pagemap (present and exclusive bits; readable without privileges). No
// library does this.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const PAGE = 4096;
const SENTINEL = 16;
// A writable anonymous mapping (inode 0), named or not: malloc serves a buffer below its mmap
// threshold (which grows up to 32 MiB as large blocks are freed) from [heap] or a thread arena.
const ANON_RW = /^([0-9a-f]+)-([0-9a-f]+) rw.p [0-9a-f]+ [0-9a-f:]+ 0\s*(\[heap\]|\[anon:[^\]]*\])?\s*$/;

/** Bytes of `buf` in resident pages (pages it shares with neighbours count whole), or undefined. */
export function residentBytes(buf: Uint8Array): number | undefined {
  if (process.platform !== 'linux' || buf.byteLength < SENTINEL) return undefined;
  const saved = buf.slice(0, SENTINEL);
  try {
    for (let i = 0; i < SENTINEL; i++) buf[i] = (Math.random() * 256) | 0;
    const addr = findAddress(buf);
    return addr === undefined ? undefined : presentBytes(addr, buf.byteLength);
  } catch {
    return undefined;
  } finally {
    buf.set(saved, 0);
  }
}

/** Address of buf[0]: its sentinel, looked for in every large enough anonymous mapping. */
function findAddress(buf: Uint8Array): number | undefined {
  const want = buf.subarray(0, SENTINEL);
  const fd = openSync('/proc/self/mem', 'r');
  try {
    const maps: [number, number][] = [];
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = ANON_RW.exec(line);
      if (m && parseInt(m[2], 16) - parseInt(m[1], 16) >= buf.byteLength)
        maps.push([parseInt(m[1], 16), parseInt(m[2], 16)]);
    }
    const look = (from: number, size: number, window: Buffer): number | undefined => {
      let n: number;
      try {
        n = readSync(fd, window, 0, size, from);
      } catch {
        return undefined; // unmapped since /proc/self/maps was read (a freed buffer): skip it
      }
      const at = window.subarray(0, n).indexOf(want);
      return at >= 0 ? from + at : undefined;
    };
    // Usually the buffer is a mapping of its own, or at one end of a merged one: look near the ends
    // first (only pages the buffer's first bytes can be on: reading maps the zero page).
    const small = Buffer.alloc(2 * PAGE);
    for (const [start, end] of maps) {
      const lastStart = Math.floor((end - buf.byteLength) / PAGE) * PAGE;
      const found = look(start, PAGE, small) ?? look(Math.max(start, lastStart - PAGE), 2 * PAGE, small);
      if (found !== undefined && verify(fd, buf, found)) return found;
    }
    // Otherwise read the mappings through (a second or so for a few GiB).
    const big = Buffer.alloc(1 << 20);
    for (const [start, end] of maps) {
      for (let from = start; from < end; from += big.length - SENTINEL) {
        const found = look(from, Math.min(big.length, end - from), big);
        if (found !== undefined && verify(fd, buf, found)) return found;
      }
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Whether `addr` is buf[0]: a second sentinel written into buf is read back there. */
function verify(fd: number, buf: Uint8Array, addr: number): boolean {
  for (let i = 0; i < SENTINEL; i++) buf[i] = (Math.random() * 256) | 0;
  const back = Buffer.alloc(SENTINEL);
  return readSync(fd, back, 0, SENTINEL, addr) === SENTINEL && back.equals(buf.subarray(0, SENTINEL));
}

/** Bytes in pages of [addr, addr + len) that are present and this process's own. */
function presentBytes(addr: number, len: number): number {
  const first = Math.floor(addr / PAGE);
  const last = Math.floor((addr + len - 1) / PAGE);
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const chunk = Buffer.alloc(8 * 65536);
    let present = 0;
    for (let p = first; p <= last;) {
      const count = Math.min(65536, last - p + 1);
      const n = readSync(fd, chunk, 0, count * 8, p * 8);
      if (n !== count * 8) throw new Error('short read of /proc/self/pagemap');
      // Bit 63 of each little-endian entry: page present; bit 56: mapped by this process alone. A
      // page the guest only read is the kernel's shared zero page: present, not exclusive, and not
      // in RSS either.
      for (let i = 0; i < count; i++) if ((chunk[i * 8 + 7] & 0x81) === 0x81) present++;
      p += count;
    }
    return present * PAGE;
  } finally {
    closeSync(fd);
  }
}

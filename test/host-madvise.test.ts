// dropPages: pages of guest RAM really go back to the host (resident memory falls) and read zero
// afterwards, for every kind of buffer guest RAM can live in: an ArrayBuffer, a SharedArrayBuffer,
// a shared WebAssembly.Memory (private anonymous memory: MADV_DONTNEED) and a MAP_SHARED mapping
// (where MADV_DONTNEED would bring the old bytes back: MADV_REMOVE).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dropMethod, dropPages, hostPageSize } from '../src/host/madvise.js';
import { residentBytes } from '../src/host/resident.js';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE, sysMmap, sysMunmap } from '../src/host/sys.js';

const skip = process.platform !== 'linux' ? 'needs Linux madvise and /proc/self/pagemap' : false;
const MiB = 1 << 20;

function fillPattern(u8: Uint8Array): void {
  const u32 = new Uint32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2);
  for (let i = 0; i < u32.length; i++) u32[i] = (i * 2654435761) | 1; // never zero
}

function allZero(u8: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (u8[i] !== 0) return false;
  return true;
}

/** Fill 64 MiB, drop the middle 32 MiB (at an offset that is not page-aligned), check the result. */
function dropHalf(u8: Uint8Array, resident: () => number | undefined): { before: number; after: number } {
  fillPattern(u8);
  const before = resident();
  assert.ok(before !== undefined && before >= 63 * MiB, `all 64 MiB resident after the fill (${before})`);
  const off = 16 * MiB + 100;
  const len = 32 * MiB;
  const d = dropPages(u8, off, len);
  const page = hostPageSize();
  assert.ok(d.start >= off && d.start - off < page, 'the dropped part starts at the first whole host page');
  assert.ok(d.end <= off + len && off + len - d.end < page, 'and ends at the last whole host page');
  const after = resident();
  assert.ok(after !== undefined);
  assert.ok(allZero(u8, d.start, d.end), 'the dropped range reads zero');
  assert.notEqual(u8[d.start - 1], 0, 'the byte before it is kept');
  assert.notEqual(u8[d.end], 0, 'the byte after it is kept');
  assert.notEqual(u8[off], 0, 'the partial page at the start is not touched');
  return { before, after };
}

test('an ArrayBuffer: 32 MiB dropped with MADV_DONTNEED, resident memory falls, reads zero', { skip }, () => {
  const u8 = new Uint8Array(new ArrayBuffer(64 * MiB));
  const { before, after } = dropHalf(u8, () => residentBytes(u8));
  assert.ok(before - after >= 32 * MiB - 2 * hostPageSize(), `resident ${before} -> ${after}`);
  assert.equal(dropMethod(u8), 'dontneed');
  // Touching a dropped page again gives a fresh zero page that is resident once written.
  u8[20 * MiB] = 5;
  assert.equal(residentBytes(u8), after + hostPageSize());
});

test('a SharedArrayBuffer: pages dropped and read zero', { skip }, () => {
  const u8 = new Uint8Array(new SharedArrayBuffer(64 * MiB));
  const { before, after } = dropHalf(u8, () => residentBytes(u8));
  assert.ok(before - after >= 32 * MiB - 2 * hostPageSize(), `resident ${before} -> ${after}`);
  assert.ok(dropMethod(u8) === 'dontneed' || dropMethod(u8) === 'remove');
});

test('a shared WebAssembly.Memory: pages dropped and read zero', { skip }, () => {
  const mem = new WebAssembly.Memory({ initial: 1024, maximum: 1024, shared: true }); // 64 MiB
  const u8 = new Uint8Array(mem.buffer);
  const { before, after } = dropHalf(u8, () => residentBytes(u8));
  assert.ok(before - after >= 32 * MiB - 2 * hostPageSize(), `resident ${before} -> ${after}`);
  assert.ok(dropMethod(u8) === 'dontneed' || dropMethod(u8) === 'remove');
});

/** This process's resident shared memory (RssShmem in /proc/self/status), in bytes. */
function rssShmem(): number {
  const m = /^RssShmem:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  assert.ok(m, 'RssShmem in /proc/self/status');
  return Number(m[1]) * 1024;
}

test('a MAP_SHARED mapping: MADV_REMOVE (MADV_DONTNEED would keep the bytes), pages freed', { skip }, () => {
  const map = sysMmap(64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 'test mapping');
  try {
    const u8 = new Uint8Array(map.buffer);
    const { before, after } = dropHalf(u8, rssShmem);
    assert.ok(before - after >= 32 * MiB - 2 * hostPageSize(), `RssShmem ${before} -> ${after}`);
    assert.equal(dropMethod(u8), 'remove');
  } finally {
    sysMunmap(map);
  }
});

test('ranges inside one host page drop nothing; bad ranges throw', { skip }, () => {
  const u8 = new Uint8Array(new ArrayBuffer(8 * MiB));
  u8.fill(1);
  const d = dropPages(u8, 10, hostPageSize() - 20);
  assert.equal(d.start, d.end);
  assert.ok(
    u8.every((x) => x === 1),
    'nothing changed',
  );
  assert.throws(() => dropPages(u8, 8 * MiB - 10, 20), RangeError);
  assert.throws(() => dropPages(u8, -1, 20), RangeError);
});

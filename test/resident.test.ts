// residentBytes: the "guest RAM in use" of TYPEVISOR_STATS. It counts the pages of a buffer that
// were written, not those only read (the kernel's shared zero page), and leaves the buffer as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { residentBytes } from '../src/host/resident.js';

const skip = process.platform !== 'linux' ? 'needs Linux /proc/self/pagemap' : false;
const PAGE = 4096;

test('counts the pages written into a large buffer, not the pages only read', { skip }, () => {
  const buf = new Uint8Array(new ArrayBuffer(64 << 20)); // large: a mapping of its own
  buf[1] = 0xaa;
  const base = residentBytes(buf);
  assert.ok(base !== undefined, 'the buffer was found');
  assert.equal(base, PAGE, 'only the first page (written above) is in use');
  let sum = 0;
  for (let i = 0; i < 1000; i++) sum += buf[(i + 1) * 5 * PAGE + 7];
  assert.equal(sum, 0);
  assert.equal(residentBytes(buf), PAGE, 'pages only read are not counted');
  for (let i = 0; i < 300; i++) buf[(i + 1) * 3 * PAGE + 5] = 1;
  assert.equal(residentBytes(buf), 301 * PAGE);
  assert.equal(buf[1], 0xaa, 'the first bytes are restored');
  assert.equal(buf[0], 0);
});

test('finds each of several large buffers, wherever the kernel merged their mappings', { skip }, () => {
  // Anonymous mappings made one after another are often merged into one; a buffer can then sit in
  // the middle of a mapping. 40 MiB is above glibc's largest mmap threshold (32 MiB), so each buffer
  // is a fresh mapping whatever was freed before (smaller ones can come from [heap]: the next test).
  const bufs = [0, 1, 2, 3].map(() => new Uint8Array(new ArrayBuffer(40 << 20)));
  bufs.forEach((b, k) => {
    for (let i = 0; i < 10 * (k + 1); i++) b[i * 2 * PAGE + 9] = k + 1;
  });
  bufs.forEach((b, k) => assert.equal(residentBytes(b), 10 * (k + 1) * PAGE, `buffer ${k}`));
});

test('finds a view in the middle of a mapping', { skip }, () => {
  const whole = new Uint8Array(new ArrayBuffer(48 << 20));
  const mid = whole.subarray(16 << 20, 32 << 20);
  for (let i = 0; i < 7; i++) mid[i * 5 * PAGE + 100] = 1;
  for (let i = 0; i < 5; i++) whole[(40 << 20) + i * PAGE] = 1; // beyond the view
  assert.equal(residentBytes(mid), 7 * PAGE);
});

test('finds buffers that malloc served from [heap]', { skip }, () => {
  // glibc's mmap threshold grows up to 32 MiB as large blocks are freed; this child starts with it
  // there, so its 16 MiB buffers sit inside [heap] (CI once hit this by chance).
  const script = `
    import { residentBytes } from ${JSON.stringify(new URL('../src/host/resident.js', import.meta.url).href)};
    import { readFileSync } from 'node:fs';
    const bufs = [0, 1, 2].map(() => new Uint8Array(new ArrayBuffer(16 << 20)));
    bufs.forEach((b, k) => { for (let i = 0; i < 5 * (k + 1); i++) b[i * 3 * 4096 + 1] = 1; });
    const heap = readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.endsWith('[heap]'));
    const [lo, hi] = heap.split(' ')[0].split('-').map((h) => parseInt(h, 16));
    const got = bufs.map((b) => residentBytes(b));
    bufs[1].fill(7); // every page of the middle buffer now in use
    console.log(JSON.stringify({ heap: hi - lo, got, filled: residentBytes(bufs[1]) }));`;
  // When something was mapped right after [heap], malloc falls back to mmap: try again then.
  let out = { heap: 0, got: [] as (number | null)[], filled: 0 };
  for (let attempt = 0; attempt < 5 && out.heap < 48 << 20; attempt++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: String(32 << 20), MALLOC_ARENA_MAX: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    out = JSON.parse(r.stdout);
  }
  const { heap, got, filled } = out;
  assert.ok(heap >= 48 << 20, `the buffers are in [heap] (${heap} bytes) in one of 5 tries`);
  // Heap pages malloc used before stay resident, so each count is at least the pages written.
  got.forEach((n: number | null, k: number) =>
    assert.ok(n !== null && n >= 5 * (k + 1) * PAGE && n <= 16 << 20, `buffer ${k}: ${n}`),
  );
  // A buffer malloc placed off a page boundary spans one page more, counted whole.
  assert.ok(
    filled === 16 << 20 || filled === (16 << 20) + PAGE,
    `a buffer written throughout counts whole: ${filled}`,
  );
});

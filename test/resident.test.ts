// residentBytes: the "guest RAM in use" of TYPEVISOR_STATS. It counts the pages of a buffer that
// were written, not those only read (the kernel's shared zero page), and leaves the buffer as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
  // the middle of a mapping.
  const bufs = [0, 1, 2, 3].map(() => new Uint8Array(new ArrayBuffer(16 << 20)));
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

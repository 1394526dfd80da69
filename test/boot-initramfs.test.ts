// cpio newc writer, checked by extracting with the system's cpio.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CpioWriter } from '../src/boot/initramfs.js';

function sample(): CpioWriter {
  const w = new CpioWriter();
  w.mtime = 1_700_000_000;
  w.dir('bin');
  w.file('bin/busybox', Buffer.from('#!fake busybox\n'), 0o755);
  w.symlink('bin/sh', 'busybox');
  w.file('init', '#!/bin/sh\necho hi\n', 0o755);
  w.file('etc/deep/nested/file.txt', 'x'.repeat(1001)); // parents created implicitly
  w.file('empty', new Uint8Array(0));
  w.charDevice('dev/console', 5, 1, 0o600);
  w.blockDevice('dev/vda', 254, 0, 0o660);
  return w;
}

test('cpio: newc header of the first entry', () => {
  const b = Buffer.from(sample().toBytes());
  const h = b.subarray(0, 110).toString('latin1');
  assert.equal(h.slice(0, 6), '070701');
  assert.equal(parseInt(h.slice(14, 22), 16), 0o040755, 'mode of bin/');
  assert.equal(parseInt(h.slice(46, 54), 16), 1_700_000_000, 'mtime');
  assert.equal(parseInt(h.slice(94, 102), 16), 4, 'namesize of "bin" + NUL');
  assert.equal(b.subarray(110, 113).toString(), 'bin');
  assert.ok(b.subarray(-124).toString('latin1').includes('TRAILER!!!'));
  assert.equal(b.length % 4, 0);
});

test('cpio: the system cpio lists and extracts the archive', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-cpio-'));
  const gz = sample().toGzip();
  const raw = gunzipSync(gz);
  const list = execFileSync('cpio', ['-itv', '--quiet'], { input: raw }).toString();
  assert.match(list, /^crw-------\s+1 root\s+root\s+5,\s+1 .* dev\/console$/m);
  assert.match(list, /^brw-rw----\s+1 root\s+root\s+254,\s+0 .* dev\/vda$/m);
  assert.match(list, /^lrwxrwxrwx .* bin\/sh -> busybox$/m);
  assert.match(list, /^-rwxr-xr-x .* init$/m);
  assert.match(list, /^drwxr-xr-x .* etc\/deep\/nested$/m);
  // Extract everything except device nodes (mknod may be refused in a container).
  execFileSync('cpio', ['-idv', '--quiet', '--no-absolute-filenames', '-f', 'dev/*'], {
    input: raw,
    cwd: dir,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  assert.equal(fs.readFileSync(path.join(dir, 'bin/busybox'), 'utf8'), '#!fake busybox\n');
  assert.equal(fs.readlinkSync(path.join(dir, 'bin/sh')), 'busybox');
  assert.equal(fs.statSync(path.join(dir, 'init')).mode & 0o777, 0o755);
  assert.equal(fs.readFileSync(path.join(dir, 'etc/deep/nested/file.txt'), 'utf8'), 'x'.repeat(1001));
  assert.equal(fs.statSync(path.join(dir, 'empty')).size, 0);
});

test('cpio: duplicate and unsafe paths are refused', () => {
  const w = new CpioWriter();
  w.file('a', 'x');
  assert.throws(() => w.file('a', 'y'), /added twice/);
  assert.throws(() => w.file('../etc/passwd', 'y'), /contains '..'/);
  w.dir('d');
  w.dir('d', 0o700); // re-declaring a directory updates it
});

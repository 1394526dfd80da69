// Default guest image: busybox applet table, /init, module dependency order, and the full build
// from Debian packages (integration: skipped, with the reason, when apt cannot fetch).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  busyboxApplets,
  buildDefaultImage,
  initScript,
  INIT_READY_MARKER,
  GUEST_MODULES,
} from '../src/image/build.js';
import { ModuleTree, moduleName } from '../src/image/kmod.js';
import { readArm64Image } from '../src/boot/arm64-image.js';

test('image: busybox applet table is found in the binary', () => {
  const bin = Buffer.concat([
    Buffer.from([1, 2, 3, 0]),
    Buffer.from('[\0[[\0ash\0cat\0sh\0zcat\0\0', 'latin1'),
    Buffer.alloc(8, 0xff),
  ]);
  assert.deepEqual(busyboxApplets(bin), ['[', '[[', 'ash', 'cat', 'sh', 'zcat']);
  const none = busyboxApplets(Buffer.alloc(100));
  assert.ok(none.includes('sh') && none.includes('cttyhack') && none.includes('setsid'), 'fallback list');
});

test('image: /init mounts, loads modules in the given order, prints the marker, starts a shell', () => {
  const s = initScript('6.1.0-test', ['kernel/a.ko', 'kernel/fs/b.ko']);
  assert.ok(s.startsWith('#!/bin/sh\n'));
  for (const m of [
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'mount -t devtmpfs devtmpfs /dev',
    'mount -t devpts devpts /dev/pts',
  ]) {
    assert.ok(s.includes(m), m);
  }
  const a = s.indexOf('insmod $M/kernel/a.ko');
  const b = s.indexOf('insmod $M/kernel/fs/b.ko');
  const ready = s.indexOf(`echo "${INIT_READY_MARKER}"`);
  const shell = s.indexOf('setsid cttyhack /bin/sh');
  assert.ok(a > 0 && a < b && b < ready && ready < shell);
  assert.ok(s.includes('M=/lib/modules/6.1.0-test'));
  assert.equal(INIT_READY_MARKER, 'typevisor: init ready');
});

test('image: module names', () => {
  assert.equal(moduleName('kernel/drivers/char/hw_random/virtio-rng.ko'), 'virtio_rng');
  assert.equal(moduleName('x/crc32c_generic.ko.xz'), 'crc32c_generic');
});

function debianModules(): string | undefined {
  try {
    for (const r of fs.readdirSync('/tmp/debs/k/lib/modules')) return path.join('/tmp/debs/k/lib/modules', r);
  } catch {
    return undefined;
  }
  return undefined;
}

test('image: module dependency closure of a Debian kernel (skipped when none is unpacked here)', (t) => {
  const dir = debianModules();
  if (!dir) {
    t.skip('no unpacked Debian kernel in /tmp/debs/k');
    return;
  }
  const tree = new ModuleTree(dir);
  const { order, missing } = tree.closure(GUEST_MODULES);
  assert.deepEqual(missing, []);
  const names = order.map((m) => m.name);
  for (const n of [
    'virtio_mmio',
    'virtio_blk',
    'virtio_rng',
    'virtio_console',
    'virtio_balloon',
    'ext4',
    'jbd2',
    'mbcache',
    'crc16',
  ]) {
    assert.ok(names.includes(n), n);
  }
  // Every module comes after the modules it depends on.
  for (const m of order)
    for (const d of m.depends)
      if (names.includes(d)) assert.ok(names.indexOf(d) < names.indexOf(m.name), `${d} before ${m.name}`);
  assert.equal(new Set(names).size, names.length, 'no duplicates');
});

/** Why the integration test cannot run here, or undefined when it can. */
function aptUnavailable(): string | undefined {
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'mkfs.ext4']) {
    if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
  }
  const r = spawnSync('apt-cache', ['policy', 'busybox-static:arm64'], { encoding: 'utf8' });
  if (!/Candidate:\s*[^(\s]/.test(r.stdout ?? ''))
    return 'apt has no arm64 packages (needs dpkg --add-architecture arm64 && apt-get update)';
  return undefined;
}

test('image: build the default arm64 guest from Debian packages (integration)', async (t) => {
  const why = aptUnavailable();
  if (why) {
    t.skip(`apt cannot fetch: ${why}`);
    return;
  }
  const dir = path.join(os.tmpdir(), 'typevisor-image-test', 'default-arm64');
  const lines: string[] = [];
  let img;
  try {
    img = await buildDefaultImage({ dir, log: (m) => lines.push(m) });
  } catch (e) {
    const msg = (e as Error).message;
    if (/apt-get download failed|apt-get update failed/.test(msg)) {
      t.skip(`apt cannot fetch: ${msg.split('\n')[0]}`);
      return;
    }
    throw e;
  }
  // Kernel: a little-endian arm64 Image.
  const k = readArm64Image(img.kernel);
  assert.equal(k.header.bigEndian, false);
  // initramfs: busybox, applet links, /init, modules.
  const list = execFileSync('cpio', ['-it', '--quiet'], { input: gunzipSync(fs.readFileSync(img.initrd)) })
    .toString()
    .split('\n');
  for (const f of [
    'init',
    'bin/busybox',
    'bin/sh',
    'bin/setsid',
    'bin/cttyhack',
    'bin/insmod',
    'dev/console',
  ])
    assert.ok(list.includes(f), f);
  assert.ok(list.some((f) => f.endsWith('/virtio_mmio.ko')));
  assert.ok(list.some((f) => f.endsWith('/ext4.ko')));
  // Disk: 64 MiB ext4 (superblock magic 0xEF53 at byte 1080).
  const disk = fs.readFileSync(img.disk);
  assert.equal(disk.length, 64 << 20);
  assert.equal(disk.readUInt16LE(1080), 0xef53);
  assert.match(img.manifest.kernelRelease, /-arm64$/);
  assert.ok(img.manifest.modules.includes('ext4'));
  // A second call finds the manifest and does nothing.
  const again: string[] = [];
  const img2 = await buildDefaultImage({ dir, log: (m) => again.push(m) });
  assert.deepEqual(again, []);
  assert.equal(img2.manifest.created, img.manifest.created);
});

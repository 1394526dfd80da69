// VmConfig -> xl .cfg, read back by the xl importer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportXl } from '../src/config/export.js';
import { importXl } from '../src/config/xl.js';
import { loadConfig } from '../src/config/load.js';
import type { VmConfig } from '../src/config/vmconfig.js';

const FIX = fileURLToPath(new URL('../../test/fixtures/configs/', import.meta.url));

test('native fixture -> xl -> VmConfig keeps what xl can say', () => {
  const { config } = loadConfig(join(FIX, 'native.json'));
  const text = exportXl(config);
  assert.match(text, /^name = "web"$/m);
  assert.match(text, /^type = "pvh"$/m);
  assert.match(
    text,
    /# typevisor settings xl has no key for: arch aarch64; accel tcg; console serial; rng on; balloon \{"targetMiB":512\}/,
  );
  const back = importXl(text, '/elsewhere/web.cfg');
  assert.deepEqual(back.warnings, []);
  const c = back.config;
  assert.equal(c.name, 'web');
  assert.equal(c.memoryMiB, 512);
  assert.equal(c.maxMemoryMiB, 1024);
  assert.equal(c.cpus, 2);
  assert.equal(c.kernel, config.kernel);
  assert.equal(c.initrd, config.initrd);
  assert.equal(c.cmdline, config.cmdline);
  assert.deepEqual(c.disks, [
    { path: config.disks![0]!.path, readOnly: false, id: 'xvda' },
    { path: '/srv/ro.img', readOnly: true, id: 'xvdb' },
  ]);
  assert.deepEqual(c.nets, [{ mac: '02:00:00:00:00:01', tap: 'tap0' }]);
  assert.equal(c.onCrash, 'preserve');
});

test('seed 003 round-trips through export', () => {
  const { config } = loadConfig(join(FIX, 'xen-guest-bundle.cfg'));
  const back = importXl(exportXl(config), '/x/y.cfg').config;
  assert.deepEqual({ ...back, warnings: undefined }, { ...config, warnings: undefined });
});

test('quotes, commas and odd characters survive', () => {
  const c: VmConfig = {
    name: 'q',
    cmdline: 'say "hi" \\ there',
    disks: [{ path: "/d/it's,odd.img", readOnly: false, id: 'data' }],
  };
  const back = importXl(exportXl(c), '/x/q.cfg').config;
  assert.equal(back.cmdline, 'say "hi" \\ there');
  assert.equal(back.disks![0]!.path, "/d/it's,odd.img");
  assert.equal(back.disks![0]!.id, 'xvda');
});

// Fuchsia guest configs, all three generations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/config/errors.js';
import { importFuchsia, parseFuchsiaSize, FUCHSIA_DEFAULT_MAC } from '../src/config/fuchsia.js';
import { loadConfig } from '../src/config/load.js';

const FIX = fileURLToPath(new URL('../../test/fixtures/configs/', import.meta.url));

function throwsConfig(fn: () => unknown, message: RegExp): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.match(caught.message, message);
  return caught;
}

test('seed 000: the JSON guest config schema (every value a string)', () => {
  const { config, warnings, format } = loadConfig(join(FIX, 'fuchsia-seed000.json'));
  assert.equal(format, 'fuchsia');
  assert.deepEqual(warnings, []);
  assert.equal(config.kernel, join(FIX, 'kernel'), '/pkg/data/ is the package data next to the config');
  assert.equal(config.initrd, join(FIX, 'ramdisk'));
  assert.deepEqual(config.disks, [{ path: join(FIX, 'disk.img'), readOnly: false, id: 'block0' }]);
  assert.equal(config.cmdline, 'console=hvc0 root=/dev/vda rw');
  // 5678 pages of 4 KiB = 22.2 MiB -> 23 MiB
  assert.deepEqual(config.balloon, { demandPage: true, intervalS: 1234, thresholdMiB: 23 });
});

test('generation 1: flat --key=value flags', () => {
  const r = importFuchsia(require_text('fuchsia-guest-flags.cfg'), join(FIX, 'fuchsia-guest-flags.cfg'));
  assert.equal(r.generation, 1);
  const c = r.config;
  assert.equal(c.kernel, join(FIX, 'Image'));
  assert.equal(c.initrd, join(FIX, 'initrd'));
  assert.deepEqual(c.disks, [
    { path: join(FIX, 'rootfs.img'), readOnly: true, id: 'block0' },
    { path: join(FIX, 'scratch.img'), readOnly: false, volatile: true, id: 'block1' },
  ]);
  assert.equal(c.cmdline, 'console=ttyAMA0 root=/dev/vda loglevel=8');
  assert.equal(c.cpus, 4);
  assert.equal(c.memoryMiB, 1024);
  assert.deepEqual(c.balloon, { demandPage: true, intervalS: 30, thresholdMiB: 1 });
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /'dtb-overlay': device tree overlays are not supported/);
});

test('generation 1: key=value lines', () => {
  const { config, format } = loadConfig(join(FIX, 'fuchsia-guest-kv.cfg'));
  assert.equal(format, 'fuchsia');
  assert.equal(config.kernel, join(FIX, 'Image'));
  assert.equal(config.cmdline, 'console=hvc0 quiet');
  assert.equal(config.memoryMiB, 2048);
  assert.equal(config.cpus, 2);
});

test('generation 3: linux key, lists, virtio-* switches, default-net', () => {
  const r = importFuchsia(require_text('fuchsia-linux-gen3.json'), join(FIX, 'fuchsia-linux-gen3.json'));
  assert.equal(r.generation, 3);
  const c = r.config;
  assert.equal(c.kernel, join(FIX, 'Image'));
  assert.equal(c.cmdline, 'console=hvc0 root=/dev/vda rw');
  assert.deepEqual(c.disks, [
    { path: join(FIX, 'stateful.img'), readOnly: false, id: 'block0' },
    { path: join(FIX, 'extras.img'), readOnly: true, id: 'block1' },
  ]);
  assert.equal(c.cpus, 4);
  assert.equal(c.memoryMiB, 2048);
  assert.deepEqual(c.nets, [{ mac: FUCHSIA_DEFAULT_MAC }]);
  assert.deepEqual(c.balloon, {});
  assert.equal(c.console, 'virtio');
  assert.equal(c.rng, true);
  assert.deepEqual(c.vsock, { cid: 3 }, "virtio-vsock: Fuchsia's guest CID");
  assert.deepEqual(r.warnings, [
    "Fuchsia option 'virtio-gpu': virtio-gpu (and its virtio-input) is not supported by typevisor; ignored",
  ]);
});

test('JSON booleans and numbers are accepted as well as strings', () => {
  const r = importFuchsia(
    '{"linux":"Image","cpus":2,"virtio-rng":false,"virtio-balloon":false,"balloon-interval":5}',
    '/x/g.json',
  );
  assert.equal(r.config.cpus, 2);
  assert.equal(r.config.rng, false);
  assert.equal(r.config.balloon, undefined, 'virtio-balloon false removes the balloon');
  assert.equal(r.config.name, 'g');
});

test('Zircon guests are refused with a clear error', () => {
  throwsConfig(
    () => loadConfig(join(FIX, 'fuchsia-zircon.json')),
    /fuchsia-zircon\.json: zircon: Zircon guests are not supported: typevisor boots Linux guests only/,
  );
  throwsConfig(
    () => importFuchsia('--zircon=/pkg/data/zircon.bin\n', 'guest.cfg'),
    /^guest\.cfg:1: zircon: Zircon guests are not supported/,
  );
});

test('sizes: bytes and k/M/G suffixes', () => {
  assert.equal(parseFuchsiaSize('1024M'), 1024 * 1024 * 1024);
  assert.equal(parseFuchsiaSize('2G'), 2 * 1024 ** 3);
  assert.equal(parseFuchsiaSize('65536k'), 64 * 1024 * 1024);
  assert.equal(parseFuchsiaSize('1073741824'), 1024 ** 3);
  assert.equal(parseFuchsiaSize('1T'), undefined);
  assert.equal(importFuchsia('{"memory":"1073741824"}', 'g.json').config.memoryMiB, 1024);
  const regions = importFuchsia('{"memory":["0,512M","80000000,512M,cached"]}', 'g.json');
  assert.equal(regions.config.memoryMiB, 1024);
  assert.ok(regions.warnings.some((w) => /memory regions are merged/.test(w)));
});

test('errors name file, line (flat) or key path (JSON), and the expectation', () => {
  throwsConfig(
    () => importFuchsia('{"memory":"1024"}', 'g.json'),
    /^g\.json: memory: "1024" is 1024 bytes, less than 16 MiB \(a bare number is bytes; write e\.g\. 1024M\)/,
  );
  throwsConfig(
    () => importFuchsia('{"memory":"lots"}', 'g.json'),
    /^g\.json: memory: expected a size in bytes or with a k, M or G suffix/,
  );
  throwsConfig(
    () => importFuchsia('{"cpus":"four"}', 'g.json'),
    /^g\.json: cpus: expected a number of vCPUs, got "four"/,
  );
  throwsConfig(
    () => importFuchsia('{"ramdsk":"x"}', 'g.json'),
    /^g\.json: ramdsk: unknown Fuchsia guest option \(did you mean 'ramdisk'\?\)/,
  );
  throwsConfig(
    () => importFuchsia('{"block":["a.img", 3, {}]}', 'g.json'),
    /^g\.json: block\[2\]: expected a string, got an object/,
  );
  throwsConfig(
    () => importFuchsia('{"kernel":["a","b"]}', 'g.json'),
    /^g\.json: kernel: expected a string, got a list/,
  );
  throwsConfig(
    () => importFuchsia('{"block":["/a.img,qcow"]}', 'g.json'),
    /^g\.json: block\[0\]: qcow images are not supported/,
  );
  throwsConfig(
    () => importFuchsia('{"block":"ro"}', 'g.json'),
    /^g\.json: block: expected PATH\[,ro\|rw\|volatile\], got "ro" \(no path\)/,
  );
  throwsConfig(() => importFuchsia('{"net":"02:1a"}', 'g.json'), /^g\.json: net: expected a MAC address/);
  throwsConfig(
    () => importFuchsia('{"virtio-gpu":"maybe"}', 'g.json'),
    /^g\.json: virtio-gpu: expected true or false, got "maybe"/,
  );
  throwsConfig(
    () => importFuchsia('["kernel"]', 'g.json'),
    /^g\.json: expected a JSON object of guest options/,
  );
  throwsConfig(
    () => importFuchsia('# c\n--kernel=Image\n--cpuss=2\n', 'guest.cfg'),
    /^guest\.cfg:3: cpuss: unknown Fuchsia guest option \(did you mean 'cpus'\?\)/,
  );
  throwsConfig(
    () => importFuchsia('--balloon-interval=soon\n', 'guest.cfg'),
    /^guest\.cfg:1: balloon-interval: expected a number of seconds, got "soon"/,
  );
  throwsConfig(() => importFuchsia('--gic=4\n', 'guest.cfg'), /gic: expected a GIC version, 2 or 3/);
});

test('flat flags: several per line, quoted values, comments', () => {
  const r = importFuchsia(
    '--kernel=Image --cmdline="console=hvc0 quiet" # trailing\n--virtio-rng=false --gic=2\n',
    '/x/guest.cfg',
  );
  assert.equal(r.config.kernel, '/x/Image');
  assert.equal(r.config.cmdline, 'console=hvc0 quiet');
  assert.equal(r.config.rng, false);
  assert.match(r.warnings.join('\n'), /GICv2 is not supported/);
});

test('more cpus than typevisor runs: clamped with a warning; no kernel: a warning', () => {
  const r = importFuchsia('{"cpus":"24"}', 'g.json');
  assert.equal(r.config.cpus, 16);
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[1]!, /no kernel in the Fuchsia config/);
});

import { readFileSync } from 'node:fs';
function require_text(name: string): string {
  return readFileSync(join(FIX, name), 'utf8');
}

// Format auto-detection and the --from override.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/config/errors.js';
import { detectFormat } from '../src/config/detect.js';
import { loadConfig, loadConfigText } from '../src/config/load.js';

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

test('every fixture is detected as its format', () => {
  const expected: Record<string, string> = {
    'native.json': 'native',
    'xen-guest-bundle.cfg': 'xl',
    'xl-manpage-pv.cfg': 'xl',
    'xl-arm-pvh.cfg': 'xl',
    'xl-qcow2.cfg': 'xl',
    'fuchsia-seed000.json': 'fuchsia',
    'fuchsia-guest-flags.cfg': 'fuchsia',
    'fuchsia-guest-kv.cfg': 'fuchsia',
    'fuchsia-linux-gen3.json': 'fuchsia',
    'fuchsia-zircon.json': 'fuchsia',
    'microvm-seed004.json': 'microvm',
    'microvm-nested.json': 'microvm',
    'microvm-top.json': 'microvm',
    'memshare.nix': 'microvm',
    'microvm-options.nix': 'microvm',
    'cma34cr.camkes': 'camkes',
    'camkes-literal.camkes': 'camkes',
  };
  for (const [f, fmt] of Object.entries(expected)) {
    const p = join(FIX, f);
    assert.equal(detectFormat(readFileSync(p, 'utf8'), p).format, fmt, f);
  }
});

test('CAmkES text is detected without the .camkes extension', () => {
  const text = 'component VM {\n  configuration {\n    vm0.guest_ram_mb = 128;\n  }\n}\n';
  assert.equal(detectFormat(text, 'vm.txt').format, 'camkes');
  assert.equal(detectFormat('vm0.guest_ram_mb = 128;\n', 'vm.conf').format, 'camkes');
});

test('JSON: typevisor keys vs Fuchsia keys vs microvm keys', () => {
  assert.equal(detectFormat('{"name":"a","memoryMiB":256}', 'a.json').format, 'native');
  assert.equal(
    detectFormat('{"kernel":"Image"}', 'a.json').format,
    'native',
    'only shared keys: typevisor JSON',
  );
  assert.equal(detectFormat('{"kernel":"Image","ramdisk":"initrd"}', 'a.json').format, 'fuchsia');
  assert.equal(detectFormat('{"linux":"Image"}', 'a.json').format, 'fuchsia');
  assert.equal(detectFormat('{"mem":512,"vcpu":2}', 'a.json').format, 'microvm');
  assert.equal(detectFormat('{"microvm":{"mem":512},"name":"x"}', 'a.json').format, 'microvm');
  assert.equal(
    detectFormat('{"bogus":1}', 'a.json').format,
    'native',
    'the native validator reports unknown keys best',
  );
});

test('ambiguous JSON: an error listing the candidates and --from', () => {
  throwsConfig(
    () => detectFormat('{"memoryMiB":512,"ramdisk":"initrd"}', 'a.json'),
    /^a\.json: cannot tell the config format: it could be native \(typevisor JSON: memoryMiB\) or fuchsia \(Fuchsia guest config: ramdisk\); choose one with --from native\|fuchsia$/,
  );
  throwsConfig(
    () => detectFormat('{"kernel":"Image","cpus":"2"}', 'a.json'),
    /could be native .* or fuchsia/,
  );
  throwsConfig(() => detectFormat('{"mem":512,"memory":"512M"}', 'a.json'), /could be microvm .* or fuchsia/);
});

test('text: xl vs Fuchsia flags vs ambiguous', () => {
  assert.equal(detectFormat('name = "a"\nmemory = 512\n', 'a.cfg').format, 'xl');
  assert.equal(detectFormat('kernel = "Image"\n', 'a.cfg').format, 'xl');
  assert.equal(detectFormat('--kernel=Image\n', 'a.cfg').format, 'fuchsia');
  assert.equal(detectFormat('kernel=Image\n', 'a.cfg').format, 'fuchsia');
  throwsConfig(
    () => detectFormat('memory = 512\ncpus = 2\n', 'a.cfg'),
    /^a\.cfg: cannot tell the config format: it could be xl \(Xen xl \.cfg: KEY = NUMBER lines\) or fuchsia \(Fuchsia guest config: keys memory, cpus\); choose one with --from xl\|fuchsia$/,
  );
  throwsConfig(() => detectFormat('# nothing\n\n', 'a.cfg'), /^a\.cfg: the file has no settings/);
  throwsConfig(
    () => detectFormat('hello world\n', 'a.txt'),
    /^a\.txt: cannot tell the config format: expected typevisor or Fuchsia JSON/,
  );
  throwsConfig(() => detectFormat('kernel: Image\n', 'a.json'), /^a\.json: expected a JSON object/);
});

test('--from overrides detection, and wins over an ambiguity', () => {
  // Fuchsia reads a bare memory number as bytes: the override makes that the error.
  throwsConfig(
    () => loadConfigText('memory = 512\ncpus = 2\n', '/x/a.cfg', { from: 'fuchsia' }),
    /^\/x\/a\.cfg:1: memory: "512" is 512 bytes/,
  );
  const r = loadConfigText('memory = 512M\ncpus = 2\n', '/x/a.cfg', { from: 'fuchsia' });
  assert.equal(r.format, 'fuchsia');
  assert.equal(r.config.memoryMiB, 512);
  const x = loadConfigText('memory = 512\nvcpus = 2\n', '/x/a.cfg', { from: 'xl' });
  assert.equal(x.config.memoryMiB, 512);
  assert.equal(x.config.cpus, 2);
  // Forcing the wrong format gives that format's error.
  throwsConfig(
    () => loadConfig(join(FIX, 'native.json'), { from: 'fuchsia' }),
    /native\.json: name: unknown Fuchsia guest option/,
  );
  throwsConfig(
    () => loadConfig(join(FIX, 'xen-guest-bundle.cfg'), { from: 'native' }),
    /xen-guest-bundle\.cfg:1: invalid JSON/,
  );
});

test('imported configs pass the native validator and carry their warnings', () => {
  for (const f of ['xl-manpage-pv.cfg', 'fuchsia-linux-gen3.json', 'microvm-seed004.json']) {
    const r = loadConfig(join(FIX, f));
    assert.ok(r.warnings.length > 0, f);
    assert.deepEqual(r.config.warnings, r.warnings, f);
  }
});

// typevisor JSON: validation, error messages, path resolution, loadConfig.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, closest } from '../src/config/errors.js';
import { validateConfig, formatConfig, loadConfig, type VmConfig } from '../src/config/vmconfig.js';
import { loadConfigText, parseFormat } from '../src/config/load.js';
import { UserError } from '../src/host/errors.js';

const FIX = fileURLToPath(new URL('../../test/fixtures/configs/', import.meta.url));

function throwsConfig(fn: () => unknown, message: RegExp | string): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  if (typeof message === 'string') assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  return caught;
}

test('the native fixture loads with paths resolved next to the file', () => {
  const { config, warnings, format } = loadConfig(join(FIX, 'native.json'));
  assert.equal(format, 'native');
  assert.deepEqual(warnings, []);
  assert.equal(config.name, 'web');
  assert.equal(config.arch, 'aarch64');
  assert.equal(config.cpus, 2);
  assert.equal(config.memoryMiB, 512);
  assert.equal(config.maxMemoryMiB, 1024);
  assert.equal(config.kernel, join(FIX, 'Image'));
  assert.equal(config.initrd, join(FIX, 'initramfs.cpio.gz'));
  assert.deepEqual(config.disks, [
    { path: join(FIX, 'disk.img'), readOnly: false },
    { path: '/srv/ro.img', readOnly: true, id: 'data' },
  ]);
  assert.deepEqual(config.nets, [{ mac: '02:00:00:00:00:01', tap: 'tap0' }]);
  assert.deepEqual(config.balloon, { targetMiB: 512 });
  assert.equal(config.onCrash, 'preserve');
  assert.equal(config.controlSocket, join(FIX, 'web.sock'));
});

test('the example from the brief: disks[1].path not a string', () => {
  const obj = {
    disks: [
      { path: 'a.img', readOnly: false },
      { path: 42, readOnly: true },
    ],
  };
  const e = throwsConfig(
    () => validateConfig(obj, 'vm.json'),
    'vm.json: disks[1].path: expected a string, got 42',
  );
  assert.equal(e.file, 'vm.json');
  assert.equal(e.key, 'disks[1].path');
  assert.ok(e instanceof UserError, 'a ConfigError is a UserError (no stack trace in the CLI)');
  assert.equal(e.name, 'ConfigError');
});

test('unknown keys are errors with a did-you-mean suggestion', () => {
  throwsConfig(() => validateConfig({ memorySize: 512 }, 'vm.json'), /^vm\.json: memorySize: unknown key/);
  throwsConfig(
    () => validateConfig({ memoryMib: 512 }, 'vm.json'),
    /^vm\.json: memoryMib: unknown key \(did you mean 'memoryMiB'\?\)/,
  );
  throwsConfig(
    () => validateConfig({ disks: [{ path: 'x', readonly: true }] }, 'vm.json'),
    /^vm\.json: disks\[0\]\.readonly: unknown key \(did you mean 'readOnly'\?\)/,
  );
  throwsConfig(
    () => validateConfig({ balloon: { target: 1 } }, 'vm.json'),
    /balloon\.target: unknown key \(did you mean 'targetMiB'\?\)/,
  );
  throwsConfig(
    () => validateConfig({ kernal: 'Image' }, 'vm.json'),
    /kernal: unknown key \(did you mean 'kernel'\?\)/,
  );
  const e = throwsConfig(
    () => validateConfig({ zzz: 1 }, 'vm.json'),
    /zzz: unknown key; expected one of name, arch/,
  );
  assert.doesNotMatch(e.message, /did you mean/);
});

test('every field type error names the key and the expectation', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ name: 7 }, /^vm\.json: name: expected a string, got 7$/],
    [{ name: 'has space' }, /^vm\.json: name: expected a name of 1 to 64/],
    [{ arch: 'arm64' }, /^vm\.json: arch: expected one of 'aarch64', 'x86_64', got "arm64"/],
    [{ accel: 'hvf' }, /^vm\.json: accel: expected one of 'tcg', 'kvm', 'auto', got "hvf"/],
    [{ cpus: 17 }, /^vm\.json: cpus: expected an integer from 1 to 16 \(the aarch64 limit\), got 17$/],
    [{ cpus: 0 }, /^vm\.json: cpus: expected an integer from 1 to 16/],
    [{ cpus: 1.5 }, /^vm\.json: cpus: expected an integer/],
    [{ cpus: '2' }, /^vm\.json: cpus: expected an integer from 1 to 16 \(the aarch64 limit\), got "2"$/],
    [{ memoryMiB: 4 }, /^vm\.json: memoryMiB: expected an integer from 16 to 1048576, got 4$/],
    [
      { memoryMiB: 512, maxMemoryMiB: 256 },
      /^vm\.json: maxMemoryMiB: expected at least memoryMiB \(512\), got 256$/,
    ],
    [{ kernel: '' }, /^vm\.json: kernel: expected a non-empty string/],
    [{ initrd: ['a'] }, /^vm\.json: initrd: expected a string, got a list/],
    [{ cmdline: 1 }, /^vm\.json: cmdline: expected a string, got 1$/],
    [{ console: 'hvc' }, /^vm\.json: console: expected one of 'serial', 'virtio', got "hvc"/],
    [{ disks: {} }, /^vm\.json: disks: expected a list, got an object/],
    [{ disks: ['a.img'] }, /^vm\.json: disks\[0\]: expected an object, got "a\.img"$/],
    [
      { disks: [{ readOnly: true }] },
      /^vm\.json: disks\[0\]\.path: missing; expected the path of a raw disk image$/,
    ],
    [
      { disks: [{ path: 'a', readOnly: 'yes' }] },
      /^vm\.json: disks\[0\]\.readOnly: expected true or false, got "yes"$/,
    ],
    [{ nets: [{ mac: '02:00:00:00:00' }] }, /^vm\.json: nets\[0\]\.mac: expected a MAC address/],
    [
      { nets: [{ mtu: 9000.5 }] },
      /^vm\.json: nets\[0\]\.mtu: expected an integer from 68 to 65520 bytes, got 9000\.5$/,
    ],
    [
      { nets: [{ mtu: 40 }] },
      /^vm\.json: nets\[0\]\.mtu: expected an integer from 68 to 65520 bytes, got 40$/,
    ],
    [{ balloon: true }, /^vm\.json: balloon: expected an object, got true$/],
    [
      { memoryMiB: 256, balloon: { targetMiB: 512 } },
      /^vm\.json: balloon\.targetMiB: expected an integer from 1 to 256, got 512$/,
    ],
    [{ rng: 1 }, /^vm\.json: rng: expected true or false, got 1$/],
    [
      { onReboot: 'reboot' },
      /^vm\.json: onReboot: expected one of 'destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart', got "reboot"/,
    ],
    [{ onCrash: 'restar' }, /did you mean 'restart'\?/],
    [{ warnings: [1] }, /^vm\.json: warnings\[0\]: expected a string, got 1$/],
  ];
  for (const [obj, re] of cases) throwsConfig(() => validateConfig(obj, 'vm.json'), re);
  assert.deepEqual(validateConfig({ nets: [{ bridge: 'br0', mtu: 9000 }] }, 'vm.json').nets, [
    { bridge: 'br0', mtu: 9000 },
  ]);
  throwsConfig(() => validateConfig([], 'vm.json'), /^vm\.json: expected an object, got an empty list$/);
  throwsConfig(() => validateConfig(null, 'vm.json'), /^vm\.json: expected an object, got null$/);
});

test('x86_64 allows more vCPUs than aarch64', () => {
  assert.equal(validateConfig({ arch: 'x86_64', cpus: 16 }, 'vm.json').cpus, 16);
});

test('defaults: name from the file, nothing else invented', () => {
  const c = validateConfig({}, '/etc/typevisor/my-guest.json');
  assert.deepEqual(c, { name: 'my-guest' });
});

test('keepRelativePaths and baseDir', () => {
  assert.equal(validateConfig({ kernel: 'Image' }, 'x/vm.json', { keepRelativePaths: true }).kernel, 'Image');
  assert.equal(validateConfig({ kernel: 'Image' }, 'x/vm.json', { baseDir: '/opt' }).kernel, '/opt/Image');
});

test('JSON syntax errors name the file and line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-cfg-'));
  const p = join(dir, 'bad.json');
  writeFileSync(p, '{\n  "name": "x",\n  "cpus": 2,,\n}\n');
  throwsConfig(
    () => loadConfig(p),
    new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: invalid JSON`),
  );
});

test('missing files and directories are config errors', () => {
  throwsConfig(() => loadConfig('/nonexistent/vm.json'), '/nonexistent/vm.json: file not found');
  throwsConfig(() => loadConfig(FIX), /expected a config file, got a directory/);
});

test('--from: aliases, unknown format with suggestion', () => {
  assert.equal(parseFormat('xen'), 'xl');
  assert.equal(parseFormat('JSON'), 'native');
  throwsConfig(() => parseFormat('fuchia'), /unknown config format 'fuchia' \(did you mean 'fuchsia'\?\)/);
  throwsConfig(() => loadConfig(join(FIX, 'native.json'), { from: 'yaml' }), /unknown config format 'yaml'/);
});

test('a native config keeps its recorded warnings and returns them', () => {
  const r = loadConfigText(
    '{"name":"a","warnings":["xl key \'vnc\' is not supported by typevisor; ignored"]}',
    '/x/a.json',
  );
  assert.deepEqual(r.warnings, ["xl key 'vnc' is not supported by typevisor; ignored"]);
});

test('formatConfig round-trips through validateConfig', () => {
  const { config } = loadConfig(join(FIX, 'native.json'));
  const again = validateConfig(JSON.parse(formatConfig(config)), join(FIX, 'native.json'));
  assert.deepEqual(again, config);
  const keys = Object.keys(JSON.parse(formatConfig({ warnings: [], cpus: 1, name: 'a' } as VmConfig)));
  assert.deepEqual(keys, ['name', 'cpus']);
});

test('closest() only suggests near misses', () => {
  assert.equal(closest('memmory', ['memory', 'cpus']), 'memory');
  assert.equal(closest('foo', ['memory', 'cpus']), undefined);
});

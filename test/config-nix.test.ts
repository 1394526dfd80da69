// microvm.nix options written as Nix (seed 004's own spelling), through the literal Nix reader.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/config/errors.js';
import { parseNixAttrs } from '../src/config/nix.js';
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

test('seed 004 as a Nix module: same result as the JSON spelling', () => {
  const nix = loadConfig(join(FIX, 'memshare.nix'));
  const json = loadConfig(join(FIX, 'microvm-seed004.json'));
  assert.equal(nix.format, 'microvm');
  assert.deepEqual(nix.config, { ...json.config });
  assert.deepEqual(nix.warnings, json.warnings);
  assert.equal(nix.config.memoryMiB, 2512);
});

test('bare bindings, nested sets, lists of sets, quoted attribute names, comments', () => {
  const { config, warnings, format } = loadConfig(join(FIX, 'microvm-options.nix'));
  assert.equal(format, 'microvm');
  assert.equal(config.name, 'nixvm');
  assert.equal(config.memoryMiB, 1024);
  assert.equal(config.cpus, 2);
  assert.equal(config.cmdline, 'console=hvc0 quiet');
  assert.deepEqual(config.disks, [{ path: join(FIX, 'var.img'), readOnly: false, id: '/var' }]);
  assert.deepEqual(config.nets, [{ mac: '02:00:00:00:00:0a', tap: 'vm-a' }]);
  assert.equal(config.controlSocket, join(FIX, 'a.sock'));
  assert.deepEqual(config.balloon, {}, '"-device" "virtio-balloon" as two list items');
  assert.deepEqual(warnings, []);
});

test('detection of Nix text without the .nix extension', () => {
  const r = loadConfigText('microvm.mem = 640;\nmicrovm.vcpu = 3;\n', '/x/vm.conf');
  assert.equal(r.format, 'microvm');
  assert.equal(r.config.memoryMiB, 640);
  assert.equal(loadConfigText('{ microvm.mem = 640; }', '/x/vm.conf').config.memoryMiB, 640);
});

test('values: numbers, strings with escapes, indented strings, booleans, null, paths', () => {
  const v = parseNixAttrs(
    [
      'a = 1; b = -2; c = 1.5;',
      'd = "x\\"y\\n";',
      "e = ''",
      '    line one',
      '      line two',
      "  '';",
      'f = true; g = false; h = null;',
      'i = ./disk.img; j = /abs/path;',
      'k.l."m-n" = [ 1 "two" [ 3 ] { x = 4; } ];',
      'k.o = { p = 5; };',
    ].join('\n'),
    'v.nix',
  );
  assert.deepEqual(v, {
    a: 1,
    b: -2,
    c: 1.5,
    d: 'x"y\n',
    e: 'line one\n  line two\n',
    f: true,
    g: false,
    h: null,
    i: './disk.img',
    j: '/abs/path',
    k: { l: { 'm-n': [1, 'two', [3], { x: 4 }] }, o: { p: 5 } },
  });
});

test('anything needing evaluation is an error with file:line and attribute', () => {
  throwsConfig(
    () => parseNixAttrs('\nmicrovm.kernel = pkgs.linux;', 'v.nix'),
    /^v\.nix:2: microvm\.kernel: 'pkgs\.linux' needs Nix evaluation; write a literal value/,
  );
  throwsConfig(
    () => parseNixAttrs('a = "x${y}";', 'v.nix'),
    /^v\.nix:1: a: string interpolation \$\{\.\.\.\} needs Nix evaluation/,
  );
  throwsConfig(() => parseNixAttrs('a = 1 + 2;', 'v.nix'), /^v\.nix:1: a: operators need Nix evaluation/);
  throwsConfig(
    () => parseNixAttrs('a = { b = 1; } // { c = 2; };', 'v.nix'),
    /operators need Nix evaluation/,
  );
  throwsConfig(() => parseNixAttrs('inherit (pkgs) foo;', 'v.nix'), /'inherit' needs evaluation/);
  throwsConfig(() => parseNixAttrs('a = 1;\na = 2;', 'v.nix'), /^v\.nix:2: a: is set twice/);
  throwsConfig(() => parseNixAttrs('a = 1', 'v.nix'), /^v\.nix:1: a: expected ';', got the end of the file/);
  throwsConfig(() => parseNixAttrs('a = [ 1 2', 'v.nix'), /unterminated list/);
  throwsConfig(() => parseNixAttrs('{ a = 1;', 'v.nix'), /unterminated attribute set/);
  throwsConfig(() => parseNixAttrs('a = "abc', 'v.nix'), /^v\.nix:1: a: unterminated string/);
  throwsConfig(
    () => loadConfigText('microvm.mem = "lots";', '/x/m.nix'),
    /^\/x\/m\.nix: microvm\.mem: expected an integer from 16/,
  );
});

// CAmkES VM attributes (seed 002).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/config/errors.js';
import { importCamkes } from '../src/config/camkes.js';
import { sniffKernelArch } from '../src/config/common.js';
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

const SEED_CMDLINE = 'console=ttyS0,115200 root=/dev/mem';

test('seed 002 as written: the macro is an error asking for the literal or a definition', () => {
  const e = throwsConfig(
    () => loadConfig(join(FIX, 'cma34cr.camkes')),
    /cma34cr\.camkes:23: vm0\.kernel_cmdline: VM_GUEST_CMDLINE is a preprocessor macro whose value is not in this file; write the literal value \(vm0\.kernel_cmdline = "\.\.\.";\) or define it \(-D VM_GUEST_CMDLINE=VALUE\)/,
  );
  assert.equal(e.line, 23);
  assert.equal(e.key, 'vm0.kernel_cmdline');
});

test('seed 002 with -D definitions: bzImage selects x86_64, other attributes warn', () => {
  const { config, warnings, format } = loadConfig(join(FIX, 'cma34cr.camkes'), {
    defines: {
      VM_GUEST_CMDLINE: JSON.stringify(SEED_CMDLINE),
      KERNEL_IMAGE: '"bzimage"',
      ROOTFS: '"rootfs.cpio"',
    },
  });
  assert.equal(format, 'camkes');
  assert.equal(config.name, 'cma34cr');
  assert.equal(config.memoryMiB, 128);
  assert.equal(config.cmdline, SEED_CMDLINE);
  assert.equal(config.kernel, join(FIX, 'bzimage'));
  assert.equal(config.initrd, join(FIX, 'rootfs.cpio'));
  assert.equal(config.arch, 'x86_64');
  assert.deepEqual(warnings, [
    "CAmkES attribute 'vm0.simple_untyped24_pool' is not supported by typevisor; ignored",
    "CAmkES attribute 'vm0.heap_size' is not supported by typevisor; ignored",
    "CAmkES attribute 'vm0.kernel_relocs' (relocation data for the seL4 VMM's loader) is not needed by typevisor; ignored",
    "CAmkES attribute 'vm0.iospace_domain' is not supported by typevisor; ignored",
  ]);
});

test('string literals, joined literals, several VMs, macros from an included header', () => {
  const file = join(FIX, 'camkes-literal.camkes');
  const r0 = importCamkes(readText(file), file);
  assert.equal(r0.config.name, 'vm0');
  assert.equal(r0.config.memoryMiB, 128);
  assert.equal(
    r0.config.cmdline,
    'console=ttyS0,115200 console=tty0 root=/dev/mem i8042.nokbd=y i8042.nomux=y',
  );
  assert.equal(r0.config.arch, 'x86_64');
  assert.match(r0.warnings[0]!, /configures 2 VMs \(vm0, vm1\); importing vm0/);
  const r1 = importCamkes(readText(file), file, { vm: 'vm1' });
  assert.equal(r1.config.name, 'vm1');
  assert.equal(r1.config.memoryMiB, 256);
  assert.equal(
    r1.config.cmdline,
    'earlyprintk=ttyS0,115200 console=ttyS0,115200 i8042.nokbd=y i8042.nomux=y i8042.noaux=y io_delay=udelay noisapnp pci=nomsi debug root=/dev/mem',
  );
  assert.equal(r1.config.kernel, join(FIX, 'bzimage'));
  assert.ok(
    r1.warnings.includes("CAmkES attribute 'vm1.untyped_mmios' is not supported by typevisor; ignored"),
  );
  throwsConfig(
    () => importCamkes(readText(file), file, { vm: 'vm2' }),
    /no VM named 'vm2' \(did you mean 'vm0'\?\); the file configures vm0, vm1/,
  );
});

test('#define in the same file; numbers in hex; comments', () => {
  const r = importCamkes(
    [
      '#define RAM 0x100',
      '#define CMD "console=ttyS0" " quiet"',
      'configuration {',
      '  /* vm0.guest_ram_mb = 1; */',
      '  vm0.guest_ram_mb = RAM; // MiB',
      '  vm0.kernel_cmdline = CMD;',
      '  vm0.kernel_image = "Image";',
      '}',
    ].join('\n'),
    '/x/a.camkes',
  );
  assert.equal(r.config.memoryMiB, 256);
  assert.equal(r.config.cmdline, 'console=ttyS0 quiet');
  assert.equal(r.config.arch, undefined, 'an Image that is not there says nothing about the arch');
});

test('errors: types, ranges, missing semicolon, no VM at all', () => {
  throwsConfig(
    () => importCamkes('vm0.guest_ram_mb = "lots";', 'a.camkes'),
    /^a\.camkes:1: vm0\.guest_ram_mb: expected a number, got '"lots"'/,
  );
  throwsConfig(
    () => importCamkes('vm0.guest_ram_mb = 4;', 'a.camkes'),
    /^a\.camkes:1: vm0\.guest_ram_mb: expected a number of MiB from 16/,
  );
  throwsConfig(
    () => importCamkes('\nvm0.kernel_cmdline = 42;', 'a.camkes'),
    /^a\.camkes:2: vm0\.kernel_cmdline: expected a string literal like "\.\.\.", got '42'/,
  );
  throwsConfig(
    () => importCamkes('vm0.kernel_image = "";', 'a.camkes'),
    /kernel_image: expected a file name, got an empty string/,
  );
  throwsConfig(
    () => importCamkes('vm0.guest_ram_mb = 128', 'a.camkes'),
    /^a\.camkes:1: vm0\.guest_ram_mb: expected ';' after the value/,
  );
  throwsConfig(
    () => importCamkes('assembly { composition { component VM vm; } }', 'a.camkes'),
    /^a\.camkes: no VM attributes found/,
  );
  throwsConfig(
    () => importCamkes('vm0.kernel_cmdline = "abc;', 'a.camkes'),
    /^a\.camkes:1: unterminated string/,
  );
  throwsConfig(
    () => importCamkes('#define A B\n#define B A\nvm0.kernel_cmdline = A;', 'a.camkes'),
    /expands recursively/,
  );
});

test('kernel arch sniffing: HdrS magic, ARM64 magic, names', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-kern-'));
  const x86 = Buffer.alloc(0x400);
  x86.write('HdrS', 0x202, 'latin1');
  writeFileSync(join(dir, 'kernel-x'), x86);
  const arm = Buffer.alloc(0x400);
  arm.writeUInt32LE(0x644d5241, 0x38);
  writeFileSync(join(dir, 'bzImage-but-arm'), arm);
  assert.equal(sniffKernelArch(join(dir, 'kernel-x')), 'x86_64');
  assert.equal(sniffKernelArch(join(dir, 'bzImage-but-arm')), 'aarch64', 'contents win over the name');
  assert.equal(sniffKernelArch('/nowhere/bzImage'), 'x86_64');
  assert.equal(sniffKernelArch('/nowhere/Image'), undefined);
  const r = importCamkes(`vm0.kernel_image = "kernel-x";`, join(dir, 'a.camkes'));
  assert.equal(r.config.arch, 'x86_64');
});

import { readFileSync } from 'node:fs';
function readText(p: string): string {
  return readFileSync(p, 'utf8');
}

// microvm.nix-style options (JSON) and the microvm-* runner scripts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/config/errors.js';
import { importMicrovm, expandDotted } from '../src/config/microvm.js';
import { writeMicrovmRunner, shellQuote, RUNNER_SCRIPTS } from '../src/config/microvm-runner.js';
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

test('seed 004: dotted microvm.* keys, mem + balloonMem, vcpu 17, extraArgs', () => {
  const { config, warnings, format } = loadConfig(join(FIX, 'microvm-seed004.json'));
  assert.equal(format, 'microvm');
  assert.equal(config.name, 'memshare');
  assert.equal(config.memoryMiB, 2512, 'the runner passes -m mem+balloonMem');
  assert.deepEqual(config.balloon, {});
  assert.equal(config.cpus, 16);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /microvm\.vcpu 17: typevisor runs at most 16 vCPUs; the guest gets 16/);
  assert.equal(
    warnings[1],
    'microvm microvm.qemu.extraArgs: QEMU-specific arguments are not interpreted by typevisor; ignored: "--option 1 --option 2"',
  );
});

test('nested "microvm" object: volumes, interfaces, shares, socket, kernelParams', () => {
  const { config, warnings } = loadConfig(join(FIX, 'microvm-nested.json'));
  assert.equal(config.name, 'netvm');
  assert.equal(config.memoryMiB, 768);
  assert.equal(config.cpus, 2);
  assert.equal(config.kernel, join(FIX, 'Image'));
  assert.equal(config.initrd, join(FIX, 'initrd'));
  assert.equal(config.cmdline, 'console=hvc0 root=/dev/vda');
  assert.deepEqual(config.disks, [
    { path: join(FIX, 'var.img'), readOnly: false, id: '/var' },
    { path: join(FIX, 'ro.img'), readOnly: true, id: '/ro' },
  ]);
  assert.deepEqual(config.nets, [
    { mac: '02:00:00:00:00:01', tap: 'vm-net0' },
    { mac: '02:00:00:00:00:02', bridge: 'br0', tap: 'vm-net1' },
  ]);
  assert.equal(config.controlSocket, join(FIX, 'netvm.sock'));
  const all = warnings.join('\n');
  assert.match(
    all,
    /microvm\.volumes\[0\]: .*var\.img does not exist; microvm\.nix would create it \(1024 MiB\) but typevisor does not/,
  );
  assert.doesNotMatch(all, /ro\.img does not exist/, 'autoCreate false: no warning');
  assert.doesNotMatch(all, /interfaces/, 'tap and bridge interfaces are supported');
  assert.match(
    all,
    /microvm option 'microvm\.shares' \(shared directories \(9p\/virtiofs\)\) is not supported by typevisor; ignored/,
  );
});

test('options at top level; the obvious QEMU arguments are mapped, the rest warned about', () => {
  const { config, warnings } = loadConfig(join(FIX, 'microvm-top.json'));
  assert.equal(config.name, 'microvm-top');
  assert.equal(config.memoryMiB, 768);
  assert.equal(config.cpus, 4);
  assert.equal(config.rng, true);
  assert.equal(config.controlSocket, join(FIX, 'top.sock'));
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /^microvm qemu\.extraArgs: QEMU-specific arguments are not interpreted by typevisor; ignored: "-object memory-backend-file,id=mem1,mem-path=\/dev\/shm\/virtio_pmem\.img" "-device virtio-pmem-pci,memdev=mem1,id=nv1"$/,
  );
});

test('newer balloon options: balloon, initialBalloonMem, deflateOnOOM', () => {
  const r = importMicrovm(
    '{"microvm":{"mem":1024,"balloon":true,"initialBalloonMem":256,"deflateOnOOM":true}}',
    '/x/b.json',
  );
  assert.equal(r.config.memoryMiB, 1024);
  assert.deepEqual(r.config.balloon, { targetMiB: 768, demandPage: true });
});

test('dotted keys expand into nested objects', () => {
  assert.deepEqual(
    expandDotted({ 'microvm.qemu.extraArgs': ['a'], 'microvm.mem': 1, microvm: { vcpu: 2 } }, 'f'),
    {
      microvm: { qemu: { extraArgs: ['a'] }, mem: 1, vcpu: 2 },
    },
  );
  throwsConfig(
    () => expandDotted({ 'microvm.mem': 1, 'microvm.mem.x': 2 }, 'f.json'),
    /^f\.json: microvm\.mem\.x: conflicts with 'microvm\.mem'/,
  );
});

test('errors name the file, the option path and the expectation', () => {
  throwsConfig(
    () => importMicrovm('{"microvm":{"mem":"512"}}', 'm.json'),
    /^m\.json: microvm\.mem: expected an integer from 16 to 1048576 \(MiB\), got "512"$/,
  );
  throwsConfig(() => importMicrovm('{"mem":4}', 'm.json'), /^m\.json: mem: expected an integer from 16/);
  throwsConfig(
    () => importMicrovm('{"microvm":{"vcpu":0}}', 'm.json'),
    /^m\.json: microvm\.vcpu: expected an integer from 1/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"volumes":[{"mountPoint":"/var"}]}}', 'm.json'),
    /^m\.json: microvm\.volumes\[0\]\.image: missing; expected the path of a raw disk image$/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"volumes":[{"image":"a","mountpoint":"/var"}]}}', 'm.json'),
    /^m\.json: microvm\.volumes\[0\]\.mountpoint: unknown option \(did you mean 'mountPoint'\?\)/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"interfaces":[{"type":"tap"}]}}', 'm.json'),
    /^m\.json: microvm\.interfaces\[0\]\.id: missing; a tap interface needs/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"interfaces":[{"type":"macvtap","id":"x","macvtap":{"link":"eth0"}}]}}', 'm.json'),
    /^m\.json: microvm\.interfaces\[0\]\.type: macvtap is not supported by typevisor .*use type = "bridge"/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"interfaces":[{"type":"vde","id":"x"}]}}', 'm.json'),
    /interfaces\[0\]\.type: expected one of 'user', 'tap', 'macvtap', 'bridge', got "vde"/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"interfaces":[{"type":"tap","id":"t","mac":"zz"}]}}', 'm.json'),
    /interfaces\[0\]\.mac: expected a MAC address/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"kernelParams":"console=hvc0"}}', 'm.json'),
    /^m\.json: microvm\.kernelParams: expected a list, got "console=hvc0"/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"qemu":{"extraArgs":[1]}}}', 'm.json'),
    /^m\.json: microvm\.qemu\.extraArgs\[0\]: expected a string, got 1/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":5}', 'm.json'),
    /^m\.json: microvm: expected an object of microvm options, got 5/,
  );
  throwsConfig(
    () => importMicrovm('{"name":"a b","microvm":{}}', 'm.json'),
    /^m\.json: name: expected a name/,
  );
  throwsConfig(
    () => importMicrovm('{"microvm":{"mem":1024,"initialBalloonMem":2048}}', 'm.json'),
    /initialBalloonMem: expected less than/,
  );
});

test('unknown options are warnings with a suggestion; unknown hypervisor is a warning', () => {
  const r = importMicrovm('{"microvm":{"memm":512,"hypervisor":"qemuu","user":"microvm"}}', '/x/m.json');
  assert.deepEqual(r.warnings, [
    "microvm hypervisor 'qemuu' is unknown (did you mean 'qemu'?); typevisor runs the VM itself",
    "microvm option 'microvm.memm' is unknown (did you mean 'mem'?); ignored",
    "microvm option 'microvm.user' (running as another user) is not supported by typevisor; ignored",
  ]);
});

test('shellQuote', () => {
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(
    execFileSync('bash', ['-c', `printf %s ${shellQuote('a \'b\' $HOME "c"')}`]).toString(),
    'a \'b\' $HOME "c"',
  );
});

test('runner scripts: written, executable, bash -n clean, the expected command lines', () => {
  const out = mkdtempSync(join(tmpdir(), 'tv-runner-'));
  const cfg = join(FIX, 'microvm-nested.json');
  const r = writeMicrovmRunner(cfg, out);
  assert.equal(r.binDir, join(out, 'bin'));
  assert.equal(r.name, 'netvm');
  assert.equal(r.controlSocket, join(FIX, 'netvm.sock'));
  assert.deepEqual(
    r.scripts,
    RUNNER_SCRIPTS.map((s) => join(out, 'bin', s)),
  );
  for (const p of r.scripts) {
    assert.equal(statSync(p).mode & 0o777, 0o755, p);
    execFileSync('bash', ['-n', p]);
    assert.match(readFileSync(p, 'utf8'), /^#!\/usr\/bin\/env bash\n/);
    assert.match(readFileSync(p, 'utf8'), /TYPEVISOR="\$\{TYPEVISOR:-typevisor\}"/);
  }
  const text = (s: string): string => readFileSync(join(out, 'bin', s), 'utf8');
  assert.match(
    text('microvm-run'),
    new RegExp(`exec "\\$TYPEVISOR" launch '${cfg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' "\\$@"\\n`),
  );
  assert.match(text('microvm-run'), /Control socket \(from the config\): .*netvm\.sock/);
  assert.match(text('microvm-shutdown'), /exec "\$TYPEVISOR" shutdown -w 'netvm'\n/);
  assert.match(text('microvm-balloon'), /exec "\$TYPEVISOR" balloon 'netvm' "\$1"\n/);
  assert.match(text('microvm-console'), /exec "\$TYPEVISOR" console 'netvm'\n/);

  // Run them against a stand-in typevisor that prints its arguments.
  const fake = join(out, 'fake-typevisor');
  writeFileSync(fake, '#!/usr/bin/env bash\nprintf "%s|" "$@"\n', { mode: 0o755 });
  const run = (s: string, args: string[] = []): string =>
    execFileSync(join(out, 'bin', s), args, { env: { ...process.env, TYPEVISOR: fake } }).toString();
  assert.equal(run('microvm-run'), `launch|${cfg}|`);
  assert.equal(run('microvm-shutdown'), 'shutdown|-w|netvm|');
  assert.equal(run('microvm-balloon', ['512']), 'balloon|netvm|512|');
  assert.equal(run('microvm-console'), 'console|netvm|');
  assert.throws(
    () =>
      execFileSync(join(out, 'bin', 'microvm-balloon'), ['lots'], {
        env: { ...process.env, TYPEVISOR: fake },
        stdio: 'pipe',
      }),
    /usage: microvm-balloon SIZE_MIB/,
  );
});

test('runner for an xl config and for a config whose path needs quoting', () => {
  const dir = mkdtempSync(join(tmpdir(), "tv runner 'q' "));
  const cfg = join(dir, 'web.cfg');
  writeFileSync(cfg, 'name = "web"\nkernel = "Image"\n');
  const r = writeMicrovmRunner(cfg, join(dir, 'out'));
  const fake = join(dir, 'fake');
  writeFileSync(fake, '#!/usr/bin/env bash\nprintf "%s|" "$@"\n', { mode: 0o755 });
  for (const p of r.scripts) execFileSync('bash', ['-n', p]);
  assert.equal(
    execFileSync(r.scripts[0]!, { env: { ...process.env, TYPEVISOR: fake } }).toString(),
    `launch|${cfg}|`,
  );
  assert.equal(
    execFileSync(r.scripts[1]!, { env: { ...process.env, TYPEVISOR: fake } }).toString(),
    'shutdown|-w|web|',
  );
});

test('runner: a bad config is a ConfigError and writes nothing', () => {
  const out = mkdtempSync(join(tmpdir(), 'tv-runner-'));
  throwsConfig(
    () => writeMicrovmRunner(join(FIX, 'fuchsia-zircon.json'), out),
    /Zircon guests are not supported/,
  );
  assert.throws(() => statSync(join(out, 'bin')));
});

test('interfaces of type user are user-mode networking, imported without a warning', () => {
  const { config, warnings } = importMicrovm(
    '{"microvm":{"interfaces":[{"type":"user","id":"qemu","mac":"02:00:00:00:00:09"}]}}',
    'm.json',
  );
  assert.deepEqual(config.nets, [{ mac: '02:00:00:00:00:09' }]);
  assert.deepEqual(warnings, []);
});

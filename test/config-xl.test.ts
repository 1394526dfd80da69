// xl .cfg import: seed 003's bundled guest, xl.cfg(5) / xl-disk-configuration(5) /
// xl-network-configuration(5) examples, errors with file:line and key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/config/errors.js';
import { importXl, parseXl, parseXlDisk, parseXlVif } from '../src/config/xl.js';
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

const W = { file: 'g.cfg', line: 1, key: 'disk[0]' };

test('seed 003: the Yocto bundled guest config', () => {
  const { config, warnings, format } = loadConfig(join(FIX, 'xen-guest-bundle.cfg'));
  assert.equal(format, 'xl');
  assert.equal(config.name, 'xen-guest');
  assert.equal(config.memoryMiB, 512);
  assert.equal(config.cpus, 1);
  assert.equal(config.kernel, join(FIX, 'Image'));
  assert.equal(config.cmdline, 'root=/dev/xvda ro console=hvc0 ip=dhcp');
  assert.deepEqual(config.disks, [
    { path: join(FIX, 'xen-guest-image-minimal-qemuarm64.rootfs.ext4'), readOnly: false, id: 'xvda' },
  ]);
  assert.deepEqual(config.nets, [{ bridge: 'xenbr0' }]);
  // Everything in it is supported (the vif is a TAP on bridge xenbr0): no warnings.
  assert.deepEqual(warnings, []);
});

test('xl.cfg(5)-style PV guest: root/extra, maxmem, maxvcpus, disks, vifs, actions, unsupported keys', () => {
  const { config, warnings } = loadConfig(join(FIX, 'xl-manpage-pv.cfg'));
  assert.equal(config.name, 'example-pv');
  assert.equal(config.kernel, '/boot/vmlinuz-guest');
  assert.equal(config.initrd, '/boot/initrd-guest.img');
  assert.equal(config.cmdline, 'root=/dev/xvda1 ro console=hvc0 earlyprintk=xen');
  assert.equal(config.memoryMiB, 128);
  assert.equal(config.maxMemoryMiB, 256);
  assert.deepEqual(config.balloon, { targetMiB: 128 });
  assert.equal(config.cpus, 2);
  assert.equal(config.arch, 'x86_64', 'a vmlinuz kernel is x86');
  assert.deepEqual(config.disks, [
    { path: '/dev/vg/guest-volume', readOnly: false, id: 'hda' },
    { path: '/root/image.iso', readOnly: true, id: 'hdc' },
    { path: '/srv/data,with,commas.img', readOnly: true, id: 'xvdb' },
  ]);
  assert.deepEqual(config.nets, [
    { mac: '00:16:3e:74:3d:76', bridge: 'xenbr0' },
    { tap: 'vif-guest', model: 'virtio' },
  ]);
  assert.equal(config.onPoweroff, 'destroy');
  assert.equal(config.onReboot, 'restart');
  assert.equal(config.onCrash, 'coredump-restart');
  const all = warnings.join('\n');
  assert.match(all, /xl type 'pv' is not supported by typevisor/);
  assert.match(all, /maxvcpus 4 > vcpus 2/);
  assert.match(all, /disk\[1\]: cdrom devices are attached as read-only/);
  assert.match(all, /vif\[0\]: ip=10\.0\.0\.2 not supported/);
  for (const k of ['vnc', 'sdl', 'pci', 'device_model_version']) {
    assert.ok(warnings.includes(`xl key '${k}' is not supported by typevisor; ignored`), k);
  }
});

test('arm pvh guest: cmdline wins over root, device_tree, prefixes, ; separators', () => {
  const { config, warnings } = loadConfig(join(FIX, 'xl-arm-pvh.cfg'));
  assert.equal(config.cmdline, 'console=hvc0 earlycon=xenboot root=/dev/xvda');
  assert.equal(config.dtb, join(FIX, 'guest.dtb'));
  assert.equal(config.memoryMiB, 256);
  assert.equal(config.cpus, 2);
  assert.deepEqual(config.disks, [
    { path: '/dev/loop0', readOnly: false, id: 'xvda' },
    { path: join(FIX, 'disk2.img'), readOnly: true, id: 'xvdb' },
    { path: join(FIX, 'disk3.img'), readOnly: false, id: 'xvdc' },
  ]);
  assert.ok(warnings.some((w) => /'root' is ignored because 'cmdline' is set/.test(w)));
  assert.ok(warnings.includes("xl key 'gic_version' is not supported by typevisor; ignored"));
  assert.ok(!warnings.some((w) => /type 'pvh'/.test(w)));
});

test('qcow2 disks: a clear error that only raw is supported', () => {
  throwsConfig(
    () => loadConfig(join(FIX, 'xl-qcow2.cfg')),
    /xl-qcow2\.cfg:3: disk\[0\]: format 'qcow2' is not supported: typevisor reads raw disk images only/,
  );
  throwsConfig(
    () => importXl("disk = ['qcow2:/a.img,xvda,w']", 'g.cfg'),
    /^g\.cfg:1: disk\[0\]: format 'qcow2' is not supported/,
  );
  throwsConfig(() => importXl("disk = ['/a.img,qcow2,xvda,w']", 'g.cfg'), /format 'qcow2' is not supported/);
});

test('xl-disk-configuration(5): the equivalent spellings parse alike', () => {
  const a = [
    '/dev/vg/guest-volume,,hda',
    '/dev/vg/guest-volume,raw,hda,rw',
    'format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume',
    'raw:/dev/vg/guest-volume,hda,w',
  ];
  for (const s of a) {
    const d = parseXlDisk(s, W);
    assert.deepEqual(
      [d.target, d.format, d.vdev, d.readOnly, d.cdrom],
      ['/dev/vg/guest-volume', 'raw', 'hda', false, false],
      s,
    );
  }
  const b = [
    '/root/image.iso,,hdc,cdrom',
    '/root/image.iso,,hdc,,cdrom',
    '/root/image.iso,raw,hdc,devtype=cdrom',
    'format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso',
    'raw:/root/image.iso,hdc:cdrom,ro',
  ];
  for (const s of b) {
    const d = parseXlDisk(s, W);
    assert.deepEqual(
      [d.target, d.format, d.vdev, d.readOnly, d.cdrom],
      ['/root/image.iso', 'raw', 'hdc', true, true],
      s,
    );
  }
  const c = parseXlDisk('tap:aio:/img/x.img,xvda,w,backendtype=qdisk,discard', W);
  assert.deepEqual([c.target, c.vdev, c.readOnly], ['/img/x.img', 'xvda', false]);
  assert.equal(parseXlDisk('phy:/dev/sdb,xvdb,r', W).readOnly, true);
});

test('disk spec errors name the disk and the problem', () => {
  throwsConfig(
    () => parseXlDisk('/a.img,xvda,maybe', W),
    /^g\.cfg:1: disk\[0\]: access: expected ro, r, rw or w, got 'maybe'/,
  );
  throwsConfig(() => parseXlDisk('/a.img,xvda,w,colour=red', W), /unknown disk parameter 'colour'/);
  throwsConfig(() => parseXlDisk('nbd:host:1234,xvda,w', W), /'nbd:' disks .* are not supported/);
  throwsConfig(() => parseXlDisk('/a.img,raw,xvda,w,extra', W), /too many positional parameters/);
  throwsConfig(() => parseXlDisk('/a.img,xvda,w,devtype=floppy', W), /devtype: expected 'cdrom'/);
  throwsConfig(() => importXl("disk = [',xvda,w']", 'g.cfg'), /^g\.cfg:1: disk\[0\]: missing the target/);
  const r = importXl("disk = [',hdc:cdrom,r']", 'g.cfg');
  assert.deepEqual(r.config.disks, []);
  assert.match(r.warnings[0]!, /empty cdrom drive is not supported/);
});

test('xl-network-configuration(5): vif keys', () => {
  const v = parseXlVif(
    'mac=00:16:3e:01:02:03, bridge=xenbr1, model=e1000, type=ioemu, vifname=web0, script=vif-bridge, rate=10Mb/s',
    { ...W, key: 'vif[0]' },
  );
  assert.deepEqual(v.net, { mac: '00:16:3e:01:02:03', bridge: 'xenbr1', model: 'e1000', tap: 'web0' });
  assert.deepEqual(v.ignored, ['rate=10Mb/s'], 'script=vif-bridge is what the bridge backend does');
  assert.deepEqual(parseXlVif('bridge=br0,script=/etc/xen/scripts/vif-route', { ...W, key: 'vif[0]' }).ignored, [
    'script=/etc/xen/scripts/vif-route',
  ]);
  throwsConfig(
    () => parseXlVif('mac=00:16:3e', { ...W, key: 'vif[0]' }),
    /^g\.cfg:1: vif\[0\]: mac: expected a MAC address/,
  );
  throwsConfig(() => parseXlVif('bridgee=br0', { ...W, key: 'vif[0]' }), /unknown vif parameter 'bridgee'/);
  throwsConfig(() => parseXlVif('xenbr0', { ...W, key: 'vif[0]' }), /expected KEY=VALUE, got 'xenbr0'/);
  throwsConfig(() => parseXlVif('type=tap', { ...W, key: 'vif[0]' }), /type: expected vif or ioemu/);
  assert.deepEqual(parseXlVif('bridge=br0,mtu=9000', { ...W, key: 'vif[0]' }).net, { bridge: 'br0', mtu: 9000 });
  throwsConfig(
    () => parseXlVif('bridge=br0,mtu=70000', { ...W, key: 'vif[0]' }),
    /vif\[0\]: mtu: expected an MTU from 68 to 65520, got '70000'/,
  );
});

test('parser: quotes, escapes, numbers, multi-line lists, +=, comments, later settings win', () => {
  const s = parseXl(
    [
      'name = "a"  # comment',
      "kernel = 'x \\'y\\''",
      'memory = 0x100',
      'disk = [',
      "  '/a.img,xvda,w',  # first",
      '',
      "  '/b.img,xvdb,r',",
      ']',
      "disk += ['/c.img,xvdc,w']",
      'extra = "one"',
      'extra += " two"',
      'name = "b"',
    ].join('\n'),
    'g.cfg',
  );
  assert.deepEqual(s.get('name')!.value, { kind: 'string', value: 'b', line: 12 });
  assert.equal((s.get('kernel')!.value as { value: string }).value, "x 'y'");
  assert.equal((s.get('memory')!.value as { value: number }).value, 256);
  const disk = s.get('disk')!.value;
  assert.equal(disk.kind, 'list');
  assert.deepEqual(disk.kind === 'list' && disk.items.map((i) => [(i as { value: unknown }).value, i.line]), [
    ['/a.img,xvda,w', 5],
    ['/b.img,xvdb,r', 7],
    ['/c.img,xvdc,w', 9],
  ]);
  assert.equal((s.get('extra')!.value as { value: string }).value, 'one two');
});

test('parser errors carry file:line and key', () => {
  throwsConfig(
    () => importXl('name = "a"\nmemory = lots\n', 'g.cfg'),
    /^g\.cfg:2: memory: expected a quoted string, a number or a list, got "lots"/,
  );
  throwsConfig(() => importXl('name = "a\n', 'g.cfg'), /^g\.cfg:1: name: unterminated string/);
  throwsConfig(() => importXl('disk = [ "a",\n "b"\n', 'g.cfg'), /^g\.cfg:1: disk: unterminated list/);
  throwsConfig(() => importXl('\n\nmemory 512\n', 'g.cfg'), /^g\.cfg:3: expected '=' after 'memory'/);
  throwsConfig(
    () => importXl('memory = 512 1024\n', 'g.cfg'),
    /^g\.cfg:1: memory: unexpected "1024" after the value/,
  );
  throwsConfig(() => importXl('= 3\n', 'g.cfg'), /^g\.cfg:1: expected a setting 'KEY = VALUE'/);
  throwsConfig(() => importXl('disk = [["a"]]\n', 'g.cfg'), /lists inside lists/);
});

test('importer value errors: types, ranges, actions', () => {
  throwsConfig(
    () => importXl('memory = "lots"', 'g.cfg'),
    /^g\.cfg:1: memory: expected a number from 16 to 1048576 \(MiB\), got "lots"/,
  );
  throwsConfig(() => importXl('memory = 8', 'g.cfg'), /memory: expected a number from 16/);
  throwsConfig(
    () => importXl('memory = 512\nmaxmem = 256', 'g.cfg'),
    /^g\.cfg:2: maxmem: expected at least memory \(512\), got 256/,
  );
  throwsConfig(() => importXl('kernel = 5', 'g.cfg'), /^g\.cfg:1: kernel: expected a quoted string, got 5/);
  throwsConfig(() => importXl('vcpus = 0', 'g.cfg'), /vcpus: expected a number from 1/);
  throwsConfig(
    () => importXl('on_crash = "explode"', 'g.cfg'),
    /^g\.cfg:1: on_crash: expected one of destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart, soft-reset, got 'explode'/,
  );
  throwsConfig(() => importXl('type = "kvm"', 'g.cfg'), /^g\.cfg:1: type: expected 'pv', 'pvh' or 'hvm'/);
  throwsConfig(
    () => importXl('disk = [1]', 'g.cfg'),
    /^g\.cfg:1: disk\[0\]: expected a quoted string, got 1/,
  );
  throwsConfig(() => importXl('name = "bad name"', 'g.cfg'), /^g\.cfg:1: name: expected a name/);
});

test('more vCPUs than typevisor runs: clamped with a warning; soft-reset; hvm', () => {
  const r = importXl('vcpus = 24\non_reboot = "soft-reset"\ntype = "hvm"\nbuilder = "hvm"', '/x/big.cfg');
  assert.equal(r.config.cpus, 16);
  assert.equal(r.config.name, 'big');
  assert.equal(r.config.onReboot, 'restart');
  assert.equal(r.warnings.length, 4);
});

test('a string number is accepted where xl accepts one', () => {
  assert.equal(importXl('memory = "256"', 'g.cfg').config.memoryMiB, 256);
});

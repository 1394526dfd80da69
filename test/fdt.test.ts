// FDT writer and reader, checked against the system's dtc (device tree compiler).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { empty, node, phandle, regProp, strList, u32, u64, writeDtb } from '../src/boot/fdt.js';
import { parseDtb, patchDtb, readChosen, readMemory } from '../src/boot/fdt-parse.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-fdt-'));

function dtc(args: string[], input: Uint8Array | string): string {
  return execFileSync('dtc', args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
}

function sample(): Uint8Array {
  const root = node(
    '',
    {
      '#address-cells': 2,
      '#size-cells': 2,
      compatible: ['linux,dummy-virt'],
      'interrupt-parent': phandle(1),
    },
    [
      node('chosen', { bootargs: 'console=ttyAMA0 rdinit=/init', 'stdout-path': '/pl011@9000000' }),
      node('memory@40000000', { device_type: 'memory', reg: regProp(2, 2, [0x4000_0000, 0x2000_0000]) }),
      node('cpus', { '#address-cells': 1, '#size-cells': 0 }, [
        node('cpu@0', { device_type: 'cpu', compatible: 'arm,cortex-a57', reg: 0, 'enable-method': 'psci' }),
      ]),
      node('intc@8000000', {
        compatible: 'arm,gic-v3',
        '#interrupt-cells': 3,
        'interrupt-controller': empty(),
        reg: u64(0x800_0000, 0x1_0000, 0x80a_0000, 0x2_0000),
        phandle: phandle(1),
      }),
      node('virtio_mmio@a000000', {
        compatible: 'virtio,mmio',
        reg: u64(0xa00_0000, 0x200),
        interrupts: u32(0, 16, 1),
        'dma-coherent': empty(),
      }),
    ],
  );
  return writeDtb(root, { memReserve: [{ address: 0x4800_0000, size: 0x1000 }], bootCpuId: 0 });
}

test('fdt: header fields and layout', () => {
  const b = sample();
  const dv = new DataView(b.buffer);
  assert.equal(dv.getUint32(0), 0xd00dfeed);
  assert.equal(dv.getUint32(4), b.length, 'totalsize');
  assert.equal(dv.getUint32(20), 17, 'version');
  assert.equal(dv.getUint32(24), 16, 'last_comp_version');
  assert.equal(dv.getUint32(16), 40, 'memory reservation block right after the header');
  // Reservation block: one entry then the terminator.
  assert.equal(dv.getBigUint64(40), 0x4800_0000n);
  assert.equal(dv.getBigUint64(48), 0x1000n);
  assert.equal(dv.getBigUint64(56), 0n);
  assert.equal(dv.getBigUint64(64), 0n);
  assert.equal(dv.getUint32(8), 72, 'structure block follows');
  assert.equal(dv.getUint32(8 + 0) % 4, 0);
});

test('fdt: strings block stores each property name once', () => {
  const b = sample();
  const dv = new DataView(b.buffer);
  const off = dv.getUint32(12);
  const size = dv.getUint32(32);
  const names = Buffer.from(b.subarray(off, off + size))
    .toString('latin1')
    .split('\0')
    .slice(0, -1);
  assert.equal(new Set(names).size, names.length, 'no duplicates');
  for (const n of ['compatible', 'reg', '#address-cells', 'device_type', 'phandle', 'interrupts'])
    assert.ok(names.includes(n), n);
});

test('fdt: dtc decompiles the blob to the expected source', () => {
  const dts = dtc(['-I', 'dtb', '-O', 'dts'], sample());
  assert.match(dts, /\/memreserve\/\s+0x0*48000000 0x0*1000;/);
  assert.match(dts, /compatible = "linux,dummy-virt";/);
  assert.match(dts, /bootargs = "console=ttyAMA0 rdinit=\/init";/);
  assert.match(dts, /memory@40000000 \{[^}]*reg = <0x00 0x40000000 0x00 0x20000000>;/s);
  assert.match(dts, /device_type = "memory";/);
  assert.match(dts, /cpu@0 \{[^}]*reg = <0x00>;/s);
  assert.match(dts, /interrupt-controller;/);
  assert.match(dts, /reg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0x20000>;/);
  assert.match(dts, /interrupts = <0x00 0x10 0x01>;/);
  assert.match(dts, /dma-coherent;/);
  assert.match(dts, /phandle = <0x01>;/);
  assert.match(dts, /interrupt-parent = <0x01>;/);
});

test('fdt: string lists and dtc round trip (dts -> dtb -> our reader)', () => {
  assert.deepEqual(Buffer.from(strList(['a,b', 'c'])), Buffer.from('a,b\0c\0'));
  const src = `/dts-v1/;
/memreserve/ 0x1000 0x2000;
/ {
  #address-cells = <2>;
  #size-cells = <2>;
  memory@48000000 { device_type = "memory"; reg = <0x0 0x48000000 0x0 0x20000000>; };
  chosen {
    bootargs = "earlycon console=ttyAMA0";
    linux,initrd-start = <0x0 0x54000000>;
    linux,initrd-end = <0x0 0x54200000>;
  };
  psci { compatible = "arm,psci-0.2", "arm,psci"; method = "hvc"; };
};
`;
  const blob = execFileSync('dtc', ['-I', 'dts', '-O', 'dtb'], { input: src });
  const d = parseDtb(blob, 'test.dtb');
  assert.deepEqual(d.memReserve, [{ address: 0x1000n, size: 0x2000n }]);
  assert.deepEqual(readMemory(d.root), [{ base: 0x4800_0000n, size: 0x2000_0000n }]);
  const c = readChosen(d.root);
  assert.equal(c.bootargs, 'earlycon console=ttyAMA0');
  assert.equal(c.initrdStart, 0x5400_0000n);
  assert.equal(c.initrdEnd, 0x5420_0000n);
  // Our writer reproduces a blob that dtc decompiles to the same source as the original.
  const again = writeDtb(d.root, { memReserve: d.memReserve, bootCpuId: d.bootCpuId });
  assert.equal(dtc(['-I', 'dtb', '-O', 'dts'], again), dtc(['-I', 'dtb', '-O', 'dts'], blob));
});

test('fdt: patching /chosen of a user DTB (bootargs and initrd replaced, other nodes kept)', () => {
  const src = `/dts-v1/;
/ {
  #address-cells = <2>; #size-cells = <2>;
  memory@48000000 { device_type = "memory"; reg = <0x0 0x48000000 0x0 0x20000000>; };
  chosen { bootargs = "old"; linux,initrd-start = <0x54000000>; linux,initrd-end = <0x54100000>; };
};`;
  const blob = execFileSync('dtc', ['-I', 'dts', '-O', 'dtb'], { input: src });
  const patched = patchDtb(blob, {
    bootargs: 'console=ttyAMA0 rdinit=/init',
    initrd: { start: 0x5400_0000, end: 0x5433_0000 },
  });
  const dts = dtc(['-I', 'dtb', '-O', 'dts'], patched);
  assert.match(dts, /bootargs = "console=ttyAMA0 rdinit=\/init";/);
  assert.match(dts, /linux,initrd-start = <0x00 0x54000000>;/);
  assert.match(dts, /linux,initrd-end = <0x00 0x54330000>;/);
  assert.match(dts, /memory@48000000/);
  // A DTB without /chosen gets one.
  const bare = execFileSync('dtc', ['-I', 'dts', '-O', 'dtb'], { input: '/dts-v1/;\n/ { };' });
  const p2 = parseDtb(patchDtb(bare, { bootargs: 'x' }));
  assert.equal(readChosen(p2.root).bootargs, 'x');
});

test('fdt: reader rejects garbage with a message naming the file', () => {
  assert.throws(
    () => parseDtb(new Uint8Array(100), 'guest.dtb'),
    /guest.dtb: not a valid device tree blob: magic is 0x0/,
  );
  const b = sample();
  assert.throws(() => parseDtb(b.subarray(0, 60), 'cut.dtb'), /cut.dtb: .*header says/);
  fs.writeFileSync(path.join(tmp, 'x.dtb'), b);
});

test("fdt: QEMU virt's own DTB survives our reader and writer unchanged (skipped without qemu-system-aarch64)", (t) => {
  const out = path.join(tmp, 'virt.dtb');
  const r = spawnSync(
    'qemu-system-aarch64',
    [
      '-M',
      `virt,gic-version=3,dumpdtb=${out}`,
      '-cpu',
      'cortex-a57',
      '-m',
      '512',
      '-smp',
      '2',
      '-nographic',
      '-nic',
      'none',
    ],
    { stdio: 'ignore', timeout: 30_000 },
  );
  if (r.error || !fs.existsSync(out)) {
    t.skip(
      `qemu-system-aarch64 did not dump its virt DTB (${r.error ? r.error.message : `exit status ${r.status}`})`,
    );
    return;
  }
  const blob = fs.readFileSync(out);
  const d = parseDtb(blob, out);
  assert.ok(readMemory(d.root).some((m) => m.base === 0x4000_0000n && m.size === 512n << 20n));
  const again = writeDtb(d.root, { memReserve: d.memReserve, bootCpuId: d.bootCpuId });
  assert.equal(dtc(['-I', 'dtb', '-O', 'dts'], again), dtc(['-I', 'dtb', '-O', 'dts'], blob));
  const patched = patchDtb(
    blob,
    { bootargs: 'console=ttyAMA0', initrd: { start: 0x4800_0000, end: 0x4810_0000 } },
    out,
  );
  const c = readChosen(parseDtb(patched).root);
  assert.equal(c.bootargs, 'console=ttyAMA0');
  assert.equal(c.initrdStart, 0x4800_0000n);
});

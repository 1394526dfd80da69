// x86 Linux boot: bzImage and ELF loaders, boot_params (zero page), e820, MP table, and the
// 64-bit direct boot path through KVM with a stand-in kernel.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseBzImage } from '../src/boot/x86-bzimage.js';
import { parseElfKernel } from '../src/boot/x86-elf.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { BOOT_LAYOUT, loadLinux } from '../src/machine/x86-boot.js';
import { buildMpTable } from '../src/machine/x86-mptable.js';
import { guestKernelFile, startVm, x86Spec } from './helpers/x86-vm.js';
import { buildGuestElf, kvmMissing, toolsMissing } from './fixtures/x86/build.js';

/** A Debian amd64 bzImage fetched with apt-get download (cached in the temp dir), or why not. */
function debianKernel(): { path?: string; why?: string } {
  const dir = path.join(os.tmpdir(), 'typevisor-debian-amd64-kernel');
  const cached = fs.existsSync(dir)
    ? fs.readdirSync(path.join(dir, 'x/boot')).find((f) => f.startsWith('vmlinuz-'))
    : undefined;
  if (cached) return { path: path.join(dir, 'x/boot', cached) };
  try {
    fs.mkdirSync(dir, { recursive: true });
    const deps = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
    const pkg = /Depends: (linux-image-[0-9][^\s]*-amd64)/.exec(deps)?.[1];
    if (!pkg) return { why: 'apt-cache does not name the versioned linux-image package' };
    execFileSync('apt-get', ['download', pkg], { cwd: dir, stdio: 'pipe', timeout: 300_000 });
    const deb = fs.readdirSync(dir).find((f) => f.startsWith(pkg) && f.endsWith('.deb'));
    if (!deb) return { why: `apt-get download ${pkg} produced no .deb` };
    execFileSync('dpkg-deb', ['-x', path.join(dir, deb), path.join(dir, 'x')], { stdio: 'pipe' });
    fs.rmSync(path.join(dir, deb));
    const k = fs.readdirSync(path.join(dir, 'x/boot')).find((f) => f.startsWith('vmlinuz-'));
    return k ? { path: path.join(dir, 'x/boot', k) } : { why: 'no vmlinuz in the package' };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    return { why: `cannot fetch a Debian kernel with apt-get: ${(e as Error).message.split('\n')[0]}` };
  }
}

const deb = debianKernel();

test(
  'bzImage: a Debian amd64 kernel is parsed and boot_params are written',
  { skip: deb.why && `skipped: ${deb.why}` },
  () => {
    const img = new Uint8Array(fs.readFileSync(deb.path!));
    const bz = parseBzImage(img);
    assert.ok(bz.version >= 0x020c, `protocol 0x${bz.version.toString(16)}`);
    assert.equal(bz.entry64, 0x100200);
    const mem = new GuestMemory(0, 256 << 20);
    const initrd = new Uint8Array(100_000).fill(0x5a);
    const cmdline = 'console=ttyS0 virtio_mmio.device=512@0xd0000000:5';
    const info = loadLinux(mem, { kernel: img, initrd, cmdline, cpus: 2, levelIrqs: [5] });
    assert.equal(info.format, 'bzImage');
    assert.equal(info.entry, 0x100200);
    const zp = BOOT_LAYOUT.ZERO_PAGE;
    const dv = mem.dv;
    assert.equal(dv.getUint16(zp + 0x1fe, true), 0xaa55);
    assert.equal(dv.getUint32(zp + 0x202, true), 0x53726448, 'HdrS copied');
    assert.equal(dv.getUint16(zp + 0x206, true), bz.version);
    assert.equal(mem.u8[zp + 0x210], 0xff, 'type_of_loader');
    assert.equal(mem.u8[zp + 0x211] & 0x81, 0x81, 'LOADED_HIGH | CAN_USE_HEAP');
    assert.equal(dv.getUint16(zp + 0x236, true) & 1, 1, 'XLF_KERNEL_64');
    const cmdPtr = dv.getUint32(zp + 0x228, true);
    assert.equal(cmdPtr, BOOT_LAYOUT.CMDLINE);
    assert.equal(
      Buffer.from(mem.u8.subarray(cmdPtr, cmdPtr + cmdline.length + 1)).toString('latin1'),
      cmdline + '\0',
    );
    const rd = dv.getUint32(zp + 0x218, true);
    assert.equal(dv.getUint32(zp + 0x21c, true), initrd.length);
    assert.equal(rd % 4096, 0);
    assert.ok(rd + initrd.length <= Math.min(256 << 20, bz.initrdAddrMax + 1));
    assert.ok(rd >= info.kernelEnd);
    assert.equal(mem.u8[rd], 0x5a);
    assert.equal(mem.u8[zp + 0x1e8], 3, 'e820 entries');
    const e820 = [0, 1, 2].map((i) => {
      const o = zp + 0x2d0 + i * 20;
      return [
        Number(dv.getBigUint64(o, true)),
        Number(dv.getBigUint64(o + 8, true)),
        dv.getUint32(o + 16, true),
      ];
    });
    assert.deepEqual(e820, [
      [0, 0x9fc00, 1],
      [0x9fc00, 0x100000 - 0x9fc00, 2],
      [0x100000, (256 << 20) - 0x100000, 1],
    ]);
    const setup = (bz.setupSects + 1) * 512;
    assert.deepEqual(
      mem.u8.subarray(0x100000, 0x100000 + 64),
      img.subarray(setup, setup + 64),
      'protected-mode kernel at 1 MiB',
    );
    assert.equal(
      Buffer.from(mem.u8.subarray(BOOT_LAYOUT.MPTABLE, BOOT_LAYOUT.MPTABLE + 4)).toString(),
      '_MP_',
    );
  },
);

test('bzImage: clear errors for what cannot boot', () => {
  assert.throws(() => parseBzImage(new Uint8Array(1024)), /not a bzImage/);
  const img = new Uint8Array(0x4000);
  const dv = new DataView(img.buffer);
  dv.setUint16(0x1fe, 0xaa55, true);
  dv.setUint32(0x202, 0x53726448, true);
  dv.setUint16(0x206, 0x020a, true);
  assert.throws(() => parseBzImage(img), /too old/);
  dv.setUint16(0x206, 0x020f, true);
  assert.throws(() => parseBzImage(img), /XLF_KERNEL_64/);
});

test('MP table: checksums, processors, IOAPIC and level-triggered virtio IRQs', () => {
  const t = buildMpTable(0x9fc00, { cpus: 4, levelIrqs: [5] });
  const sum = (a: Uint8Array) => a.reduce((s, b) => (s + b) & 0xff, 0);
  assert.equal(sum(t.subarray(0, 16)), 0);
  const dv = new DataView(t.buffer);
  assert.equal(dv.getUint32(4, true), 0x9fc10);
  const len = dv.getUint16(16 + 4, true);
  assert.equal(sum(t.subarray(16, 16 + len)), 0);
  assert.equal(Buffer.from(t.subarray(16, 20)).toString(), 'PCMP');
  assert.equal(dv.getUint16(16 + 34, true), 4 + 2 + 16 + 2);
  const procs = [0, 1, 2, 3].map((i) => t[60 + i * 20 + 1]);
  assert.deepEqual(procs, [0, 1, 2, 3]);
  assert.equal(t[60 + 3] & 2, 2, 'BSP flag on CPU 0');
  const irq5 = 60 + 4 * 20 + 16 + 5 * 8;
  assert.equal(t[irq5], 3);
  assert.equal(dv.getUint16(irq5 + 2, true), 0x0d);
});

test('ELF vmlinux: segments at their physical addresses, entry translated', { skip: toolsMissing() }, () => {
  const elf = buildGuestElf('kernel64', 0x1000000);
  const k = parseElfKernel(elf);
  assert.equal(k.entry, 0x1000000);
  assert.ok(k.segments.some((s) => s.paddr <= 0x1000000 && 0x1000000 < s.paddr + s.memsz));
  assert.ok(k.low >= 0x100000);
  assert.throws(() => parseElfKernel(new Uint8Array(100)), /not an ELF/);
});

test(
  '64-bit direct boot through KVM: the kernel gets boot_params in %rsi',
  { skip: kvmMissing() ?? toolsMissing() },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-x86-boot-'));
    const disk = path.join(dir, 'd.img');
    fs.writeFileSync(disk, Buffer.alloc(4096));
    try {
      const { text, exit } = await startVm(
        x86Spec(guestKernelFile('kernel64'), { disks: [{ path: disk, readOnly: true }] }),
      );
      // The stand-in kernel exits through the debug port with 0 when the loader set type_of_loader.
      assert.deepEqual(await exit, { reason: 'poweroff', exitCode: 0, message: 'guest powered off' });
      assert.equal(text(), 'console=ttyS0 virtio_mmio.device=512@0xd0000000:5|3\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a 2-vCPU x86 guest that never stops is stopped by destroy',
  { skip: kvmMissing() ?? toolsMissing() },
  async () => {
    const { vm, exit } = await startVm(x86Spec(guestKernelFile('spin64'), { cpus: 2, memoryMiB: 32 }));
    setTimeout(() => vm.destroy(), 300);
    const r = await exit;
    assert.equal(r.reason, 'destroyed');
    assert.equal(vm.state, 'shutdown');
  },
);

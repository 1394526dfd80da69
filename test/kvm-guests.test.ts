// The KVM backend through the real KVM API, with small guests assembled from test/fixtures/x86.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { X86Machine } from '../src/machine/x86-microvm.js';
import { buildGuest, kvmMissing, toolsMissing } from './fixtures/x86/build.js';

const skip = kvmMissing() ?? toolsMissing();

function machine(opts: Partial<ConstructorParameters<typeof X86Machine>[0]> = {}) {
  const out: number[] = [];
  const m = new X86Machine({ memoryMiB: 16, output: (b) => out.push(...b), ...opts });
  return { m, text: () => Buffer.from(out).toString('latin1') };
}

test('guest (a): real mode -> long mode with paging writes to COM1', { skip }, async () => {
  const { m, text } = machine({ irqchip: false });
  try {
    m.load(0x1000, buildGuest('hello'));
    m.setupRealMode(0, 0x1000);
    const r = await m.run();
    assert.deepEqual(r, { reason: 'exit', code: 0 });
    assert.equal(text(), 'Hello from 64-bit long mode\n');
  } finally {
    m.close();
  }
});

test('guest (b): virtio-blk over virtio-mmio writes and reads back a sector', { skip }, async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { VirtioBlk } = await import('../src/devices/virtio/blk.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-kvm-blk-'));
  const disk = path.join(dir, 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(64 * 1024));
  const { m, text } = machine();
  try {
    const blk = new VirtioBlk({ path: disk });
    const slot = m.addVirtio(blk);
    assert.equal(slot.base, 0xd0000000);
    assert.equal(m.virtioCmdline(), 'virtio_mmio.device=512@0xd0000000:5');
    m.load(0x1000, buildGuest('blk'));
    m.setupRealMode(0, 0x1000);
    const r = await m.run();
    assert.deepEqual(r, { reason: 'exit', code: 0 }, text());
    assert.equal(text(), 'virtio-blk ok\n');
    assert.equal(blk.stats.writes, 1);
    assert.equal(blk.stats.reads, 1);
    m.close();
    const onDisk = fs.readFileSync(disk).subarray(512, 1024);
    for (let i = 0; i < 512; i++) assert.equal(onDisk[i], (i * 7 + 3) & 0xff, `disk byte ${i}`);
    assert.equal(
      fs
        .readFileSync(disk)
        .subarray(0, 512)
        .every((b) => b === 0),
      true,
    );
  } finally {
    m.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('guest (c): an interrupt delivered through irqfd reaches the guest IDT', { skip }, async () => {
  const { eventfdSignal } = await import('../src/host/sys.js');
  const { m } = machine({ mode: 'async' });
  try {
    const efd = m.vm.irqfd(5);
    let vector = -1;
    let ready = false;
    m.addPorts(0x502, 1, 'ready', {
      out: () => {
        ready = true;
        // Signal from the event loop while the vCPU runs on its own thread.
        setTimeout(() => eventfdSignal(efd), 5);
      },
    });
    m.addPorts(0x503, 1, 'report', { out: (_p, _s, v) => (vector = v) });
    m.load(0x1000, buildGuest('irq'));
    m.setupRealMode(0, 0x1000);
    const r = await m.run();
    assert.equal(ready, true);
    assert.deepEqual(r, { reason: 'exit', code: 0 });
    assert.equal(vector, 0x25, 'IRQ 5 through the PIC at base 0x20');
  } finally {
    m.close();
  }
});

test('guest (d): a second vCPU started with INIT-SIPI through the in-kernel LAPIC', { skip }, async () => {
  const { m } = machine({ cpus: 2 });
  try {
    let apicId = -1;
    let apDone = false;
    m.addPorts(0x503, 1, 'report', { out: (_p, _s, v) => (apicId = v) });
    m.addPorts(0x504, 1, 'ap-done', {
      out: () => {
        apDone = true;
        m.parkVcpu(1);
      },
    });
    m.load(0x1000, buildGuest('smp'));
    m.setupRealMode(0, 0x1000);
    const r = await m.run();
    assert.deepEqual(r, { reason: 'exit', code: 0 });
    assert.equal(apDone, true);
    assert.equal(apicId, 1);
  } finally {
    m.close();
  }
});

test('guest (e): reset through the i8042 is reported as a reboot', { skip }, async () => {
  const { m, text } = machine();
  try {
    m.load(0x1000, buildGuest('reset'));
    m.setupRealMode(0, 0x1000);
    const r = await m.run();
    assert.deepEqual(r, { reason: 'reboot' });
    assert.equal(text(), 'rebooting\n');
    assert.equal(m.i8042.resetRequested, true);
  } finally {
    m.close();
  }
});

test('a vCPU halted inside KVM is interrupted so the VM stops cleanly', { skip }, async () => {
  const { m } = machine({ cpus: 2 });
  try {
    m.load(0x1000, buildGuest('smphang'));
    m.setupRealMode(0, 0x1000);
    const r = await m.run();
    assert.deepEqual(r, { reason: 'exit', code: 0 });
  } finally {
    m.close();
  }
});

test('KVM_IOEVENTFD: matching port writes signal the eventfd instead of exiting', { skip }, async () => {
  const { eventfdRead } = await import('../src/host/sys.js');
  const { m } = machine({ irqchip: false });
  try {
    const fd = m.vm.ioeventfd({ addr: 0x600, len: 1, pio: true, datamatch: 0x42n });
    const seen: number[] = [];
    m.addPorts(0x600, 1, 'probe', { out: (_p, _s, v) => seen.push(v) });
    m.load(0x1000, buildGuest('ioevt'));
    m.setupRealMode(0, 0x1000);
    assert.deepEqual(await m.run(), { reason: 'exit', code: 0 });
    assert.deepEqual(seen, [0x43]);
    assert.equal(eventfdRead(fd), 3n);
    assert.equal(eventfdRead(fd), 0n);
  } finally {
    m.close();
  }
});

// The device manager (machine/virtio-slots.ts): one registration gives a device its slot, window
// and interrupt on either board, and is what the guest is told (device tree or command line).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Arm64VirtMachine, VIRT } from '../src/machine/arm64-virt.js';
import { buildArm64Dt } from '../src/machine/arm64-dt.js';
import { cells } from '../src/boot/fdt-parse.js';
import { VirtioRng } from '../src/devices/virtio/rng.js';
import { VirtioBalloon } from '../src/devices/virtio/balloon.js';
import { REG, VIRTIO_ID, VIRTIO_MMIO_MAGIC } from '../src/devices/virtio/mmio.js';
import type { Machine } from '../src/machine/machine.js';
import { kvmMissing } from './fixtures/x86/build.js';

/** Register entropy then balloon, and read what a driver probing the first three slots sees. */
function probe(m: Machine): { ids: number[]; magic: number; placed: { base: number; irq: number; name: string }[] } {
  m.virtio.add('virtio-rng', new VirtioRng());
  m.virtio.add('virtio-balloon', new VirtioBalloon({ deflateOnOom: true }));
  const { base, stride } = m.virtio.layout;
  return {
    magic: m.mem.readPhys(base + REG.MagicValue, 4),
    ids: [0, 1, 2].map((slot) => (slot < 2 ? m.mem.readPhys(base + slot * stride + REG.DeviceID, 4) : -1)),
    placed: m.virtio.devices.map(({ base, irq, name }) => ({ base, irq, name })),
  };
}

test('arm64-virt: devices take slots in order, on SPI 16+n, and every slot is in the device tree', () => {
  const m = new Arm64VirtMachine({ cpus: 1, memoryBytes: 16 << 20 });
  const p = probe(m);
  assert.equal(p.magic, VIRTIO_MMIO_MAGIC);
  assert.deepEqual(p.ids.slice(0, 2), [VIRTIO_ID.RNG, VIRTIO_ID.BALLOON]);
  // An empty slot answers as QEMU's do: a transport with device ID 0.
  assert.equal(m.mem.readPhys(VIRT.VIRTIO + 2 * VIRT.VIRTIO_STRIDE + REG.MagicValue, 4), VIRTIO_MMIO_MAGIC);
  assert.equal(m.mem.readPhys(VIRT.VIRTIO + 2 * VIRT.VIRTIO_STRIDE + REG.DeviceID, 4), 0);
  assert.deepEqual(p.placed, [
    { base: 0x0a00_0000, irq: 48, name: 'virtio-rng' },
    { base: 0x0a00_0200, irq: 49, name: 'virtio-balloon' },
  ]);
  assert.equal(m.virtio.cmdline(), '', 'the device tree announces them, not the command line');
  const dt = buildArm64Dt({ cpus: 1, ramBase: VIRT.RAM, ramSize: 16 << 20, cmdline: '', serialConsole: true });
  const nodes = dt.children.filter((n) => n.name.startsWith('virtio_mmio@'));
  assert.equal(nodes.length, VIRT.VIRTIO_SLOTS);
  for (const d of m.virtio.devices) {
    const n = nodes.find((x) => x.name === `virtio_mmio@${d.base.toString(16)}`);
    assert.ok(n, `a node for ${d.name}`);
    // interrupts = <GIC_SPI n IRQ_TYPE_EDGE_RISING>: INTID = 32 + n.
    assert.equal(cells(n.props.get('interrupts'))[1] + 32, d.irq);
  }
  // The slot's interrupt line reaches the GIC's SPI of the registration.
  m.virtio.raise(1, true);
  const pending = m.gic.distributor().read(0x200 + 4 * (49 >>> 5), 4);
  assert.ok(pending & (1 << (49 & 31)));
});

test('x86-microvm: devices take slots 4 KiB apart on GSI 5+n, each named on the command line', { skip: kvmMissing() }, async () => {
  const { X86Machine } = await import('../src/machine/x86-microvm.js');
  const m = new X86Machine({ memoryMiB: 16 });
  try {
    const p = probe(m);
    assert.equal(p.magic, VIRTIO_MMIO_MAGIC);
    assert.deepEqual(p.ids.slice(0, 2), [VIRTIO_ID.RNG, VIRTIO_ID.BALLOON]);
    assert.deepEqual(p.placed, [
      { base: 0xd000_0000, irq: 5, name: 'virtio-rng' },
      { base: 0xd000_1000, irq: 6, name: 'virtio-balloon' },
    ]);
    assert.equal(
      m.virtio.cmdline(),
      'virtio_mmio.device=512@0xd0000000:5 virtio_mmio.device=512@0xd0001000:6',
    );
    // Past the board's last slot (GSI 23): a clear error naming the device.
    for (let i = 2; i < m.virtio.layout.count; i++) m.virtio.add(`rng${i}`, new VirtioRng());
    assert.equal(m.virtio.devices.at(-1)?.irq, 23);
    assert.throws(() => m.virtio.add('one-too-many', new VirtioRng()), /one-too-many: no free virtio-mmio slot \(this machine has 19\)/);
  } finally {
    m.close();
  }
});

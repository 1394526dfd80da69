// The device manager of both boards: virtio-mmio slots. One registration (`add`) gives a device its
// slot, MMIO window and interrupt line, and is what the guest is told about it: arm64-virt lists
// every slot in the device tree (as QEMU's virt board does; arm64-dt.ts reads `layout`), x86-microvm
// names each occupied slot on the kernel command line (`virtio_mmio.device=`, as Firecracker does).

import type { GuestMemory, MmioDevice } from '../memory/guest-memory.js';
import { EMPTY_VIRTIO_MMIO, VirtioMmioTransport, type VirtioDevice } from '../devices/virtio/mmio.js';

export interface VirtioSlotLayout {
  /** MMIO address of slot 0, and the distance between slots. */
  base: number;
  stride: number;
  /** Bytes of a slot's register window. */
  size: number;
  /** How many slots the board has. */
  count: number;
  /** The board's interrupt line of a slot (arm64-virt: a GIC INTID; x86-microvm: a GSI). */
  irq(slot: number): number;
  /**
   * How the guest learns of the devices: 'device-tree' (every slot is described, an empty one
   * answers as a transport with no device) or 'cmdline' (occupied slots only).
   */
  announce: 'device-tree' | 'cmdline';
}

/** A device in a slot. */
export interface SlotDevice {
  slot: number;
  name: string;
  base: number;
  irq: number;
  dev: MmioDevice;
}

/** A device whose state a snapshot can carry (plain JSON). */
export interface SavesState {
  saveState(): unknown;
  restoreState(state: never): void;
}

const savesState = (d: unknown): d is SavesState =>
  typeof (d as SavesState).saveState === 'function' && typeof (d as SavesState).restoreState === 'function';

/** An occupied slot in a snapshot. */
export interface SlotState {
  slot: number;
  name: string;
  state: unknown;
}

export class VirtioSlots {
  readonly devices: SlotDevice[] = [];
  /** Board-wide window of all slots ('device-tree' layouts): an access finds its slot by address. */
  private readonly window: MmioDevice[] | undefined;

  constructor(
    private readonly mem: GuestMemory,
    readonly layout: VirtioSlotLayout,
    /** Drive a board interrupt line (level). */
    private readonly setIrq: (irq: number, level: boolean) => void,
  ) {
    if (layout.announce === 'device-tree') {
      const window = new Array<MmioDevice>(layout.count).fill(EMPTY_VIRTIO_MMIO);
      const { stride } = layout;
      mem.addMmio(layout.base, stride * layout.count, 'virtio-mmio', {
        read: (offset, size) => window[Math.floor(offset / stride)].read(offset % stride, size),
        write: (offset, size, value) => window[Math.floor(offset / stride)].write(offset % stride, size, value),
      });
      this.window = window;
    }
  }

  /** Put a virtio device behind a new virtio-mmio transport in the next free slot. */
  add(name: string, dev: VirtioDevice, log?: (msg: string) => void): SlotDevice & { transport: VirtioMmioTransport } {
    const slot = this.nextSlot(name);
    const irq = this.layout.irq(slot);
    const transport = new VirtioMmioTransport(this.mem, dev, { setIrq: (level) => this.setIrq(irq, level), log });
    return { ...this.place(slot, name, transport), transport };
  }

  /** Put any MMIO device model in the next free slot (tests; a device that drives its own line with `raise`). */
  addRaw(name: string, dev: MmioDevice): SlotDevice {
    return this.place(this.nextSlot(name), name, dev);
  }

  /** Drive the interrupt line of `slot`. */
  raise(slot: number, level: boolean): void {
    this.setIrq(this.layout.irq(slot), level);
  }

  /** The kernel command-line entries that announce the occupied slots ('cmdline' layouts). */
  cmdline(): string {
    if (this.layout.announce !== 'cmdline') return '';
    return this.devices
      .map((d) => `virtio_mmio.device=${this.layout.size}@0x${d.base.toString(16)}:${d.irq}`)
      .join(' ');
  }

  /** Each occupied slot's device state, in slot order. Throws, naming the device, for one that cannot be saved. */
  saveState(): SlotState[] {
    return this.devices.map(({ slot, name, dev }) => {
      if (!savesState(dev)) throw new Error(`${name} cannot be saved in a snapshot`);
      return { slot, name, state: dev.saveState() };
    });
  }

  /** Throw, naming both lists, unless `saved` has the devices this machine has, in the same slots. */
  checkState(saved: SlotState[]): void {
    const names = (l: { slot: number; name: string }[]): string => l.map((d) => `${d.slot}:${d.name}`).join(', ') || 'none';
    if (names(saved) !== names(this.devices))
      throw new Error(`the snapshot's virtio devices are ${names(saved)}, this machine's ${names(this.devices)}`);
  }

  /** Load each slot's saved state (checkState first); an error names the device. */
  restoreState(saved: SlotState[]): void {
    this.checkState(saved);
    saved.forEach((d, i) => {
      const dev = this.devices[i].dev;
      if (!savesState(dev)) throw new Error(`${d.name} cannot be restored from a snapshot`);
      try {
        (dev.restoreState as (state: unknown) => void)(d.state);
      } catch (e) {
        throw new Error(`${d.name}: ${(e as Error).message}`);
      }
    });
  }

  private nextSlot(name: string): number {
    const slot = this.devices.length;
    if (slot >= this.layout.count)
      throw new Error(`${name}: no free virtio-mmio slot (this machine has ${this.layout.count})`);
    return slot;
  }

  private place(slot: number, name: string, dev: MmioDevice): SlotDevice {
    const base = this.layout.base + slot * this.layout.stride;
    if (this.window) this.window[slot] = dev;
    else this.mem.addMmio(base, this.layout.size, `${name}@${base.toString(16)}`, dev);
    const d = { slot, name, base, irq: this.layout.irq(slot), dev };
    this.devices.push(d);
    return d;
  }
}

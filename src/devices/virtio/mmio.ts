// Virtio over MMIO, version 2 (virtio 1.2, "Virtio Over MMIO"): the register block a driver sees at
// a virtio-mmio slot, little-endian. One transport wraps one device model (blk, rng, console,
// balloon...). The machine maps the transport with GuestMemory.addMmio() and wires `setIrq` to the
// slot's GIC SPI.
//
// Processing is synchronous: a QueueNotify write runs the device's queue handler before the
// guest's store completes (the VMM is single-threaded). A device never throws out of here: any
// exception from a device model is caught and turns into DEVICE_NEEDS_RESET plus a configuration
// change interrupt, as does a queue that the driver corrupted (see queue.ts).

import type { GuestMemory, MmioDevice } from '../../memory/guest-memory.js';
import { joinAddr, Virtqueue, type VirtqueueState } from './queue.js';

export const VIRTIO_MMIO_MAGIC = 0x7472_6976; // "virt"
export const VIRTIO_MMIO_VERSION = 2;
/** "QEMU" as the vendor id, as Linux and other VMMs commonly report it. */
export const VIRTIO_VENDOR_ID = 0x554d_4551;

/** Register offsets of the MMIO transport. */
export const REG = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

export const STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

export const VIRTIO_F_INDIRECT_DESC = 28n;
export const VIRTIO_F_EVENT_IDX = 29n;
export const VIRTIO_F_VERSION_1 = 32n;

/** Malformed requests logged per device before going quiet (a broken driver could flood the log). */
const MAX_MALFORMED_LOGS = 10;

export const INT_USED_BUFFER = 1;
export const INT_CONFIG_CHANGE = 2;

/** Device IDs (virtio 1.2, "Device Types"). */
export const VIRTIO_ID = { NET: 1, BLOCK: 2, CONSOLE: 3, RNG: 4, BALLOON: 5, VSOCK: 19 } as const;

/**
 * A virtio-mmio slot with no device behind it, as QEMU's virt board shows its unused transports:
 * magic, version and vendor read as on a populated slot, device ID 0 ("no device": the driver's
 * probe skips it), every other register reads zero and writes are ignored.
 */
export const EMPTY_VIRTIO_MMIO: MmioDevice = {
  read(offset: number, size: number): number {
    if ((size !== 1 && size !== 2 && size !== 4) || offset < 0 || (offset & (size - 1)) !== 0) return 0;
    const word = offset & ~3;
    const v =
      word === REG.MagicValue
        ? VIRTIO_MMIO_MAGIC
        : word === REG.Version
          ? VIRTIO_MMIO_VERSION
          : word === REG.VendorID
            ? VIRTIO_VENDOR_ID
            : 0;
    return size === 4 ? v : (v >>> ((offset & 3) * 8)) & (size === 1 ? 0xff : 0xffff);
  },
  write(): void {},
};

/** What the transport gives a device model. */
export interface VirtioHost {
  readonly mem: GuestMemory;
  readonly queues: readonly Virtqueue[];
  /** Features the driver accepted (valid once FEATURES_OK is set). */
  readonly driverFeatures: bigint;
  /** True while the driver has set DRIVER_OK and the device does not need a reset. */
  readonly active: boolean;
  /** Used buffers were added to queue `q`: interrupt the driver if it wants that. */
  usedBuffers(q: number): void;
  /** The device's configuration space changed: bump ConfigGeneration and interrupt. */
  configChanged(): void;
  /** The device hit an error it cannot recover from: set DEVICE_NEEDS_RESET. */
  needsReset(reason: string): void;
}

/** A device model behind the transport. */
export interface VirtioDevice {
  readonly deviceId: number;
  /** Maximum size of each queue; the array length is the number of queues. */
  readonly queueMax: readonly number[];
  /** Device-specific feature bits offered (the transport adds VERSION_1, INDIRECT_DESC, EVENT_IDX). */
  readonly features: bigint;
  /** The device-specific configuration space (little-endian fields), read at 0x100 and up. */
  readonly config: Uint8Array;
  /** A driver write to the configuration space (optional; ignored when absent). */
  configWrite?(offset: number, size: number, value: number): void;
  attach(host: VirtioHost): void;
  /** The driver notified queue `q`. */
  notify(q: number): void;
  /** The driver set DRIVER_OK. */
  activate?(): void;
  /** The driver reset the device (Status = 0). */
  reset(): void;
  /** Device-specific state for snapshots (plain JSON); config space is saved by the transport. */
  saveState?(): unknown;
  restoreState?(state: unknown): void;
}

/** The transport's state for snapshots (plain JSON; feature words as hex strings). */
export interface VirtioMmioState {
  deviceId: number;
  status: number;
  driverFeatures: string;
  interruptStatus: number;
  configGeneration: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  queueSel: number;
  config: number[];
  queues: VirtqueueState[];
  device?: unknown;
}

export interface VirtioMmioOptions {
  /** Interrupt line level (level-triggered: high while InterruptStatus is non-zero). */
  setIrq: (level: boolean) => void;
  /** Diagnostics: driver errors (malformed rings, rejected features). */
  log?: (msg: string) => void;
  /** Offer VIRTIO_RING_F_EVENT_IDX (default true). */
  eventIdx?: boolean;
  /** Offer VIRTIO_RING_F_INDIRECT_DESC (default true). */
  indirectDesc?: boolean;
}

export class VirtioMmioTransport implements MmioDevice, VirtioHost {
  readonly queues: Virtqueue[];
  readonly offeredFeatures: bigint;
  driverFeatures = 0n;
  status = 0;
  interruptStatus = 0;
  configGeneration = 0;
  /** Malformed descriptor chains seen (each failed its request). */
  malformedChains = 0;
  /** Last reason for DEVICE_NEEDS_RESET (diagnostics). */
  lastError: string | undefined;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private shmSel = 0;
  private irqLevel = false;
  private readonly setIrq: (level: boolean) => void;
  private readonly log: (msg: string) => void;

  constructor(
    readonly mem: GuestMemory,
    readonly device: VirtioDevice,
    opts: VirtioMmioOptions,
  ) {
    this.setIrq = opts.setIrq;
    this.log = opts.log ?? (() => {});
    this.queues = device.queueMax.map((max, i) => {
      const q = new Virtqueue(mem, max);
      q.onBroken = (reason) => this.needsReset(`queue ${i}: ${reason}`);
      q.onMalformed = (reason) => {
        this.malformedChains++;
        if (this.malformedChains <= MAX_MALFORMED_LOGS) {
          this.log(
            `virtio device ${device.deviceId}: queue ${i}: malformed request failed: ${reason}` +
              (this.malformedChains === MAX_MALFORMED_LOGS ? ' (further ones are not logged)' : ''),
          );
        }
      };
      return q;
    });
    let f = device.features | (1n << VIRTIO_F_VERSION_1);
    if (opts.indirectDesc ?? true) f |= 1n << VIRTIO_F_INDIRECT_DESC;
    if (opts.eventIdx ?? true) f |= 1n << VIRTIO_F_EVENT_IDX;
    this.offeredFeatures = f;
    device.attach(this);
  }

  get active(): boolean {
    return (this.status & STATUS.DRIVER_OK) !== 0 && (this.status & STATUS.DEVICE_NEEDS_RESET) === 0;
  }

  hasFeature(bit: bigint): boolean {
    return ((this.driverFeatures >> bit) & 1n) === 1n;
  }

  // ---- VirtioHost ------------------------------------------------------------------------------

  usedBuffers(q: number): void {
    const vq = this.queues[q];
    if (vq && vq.shouldInterrupt()) this.raise(INT_USED_BUFFER);
  }

  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (this.status & STATUS.DRIVER_OK) this.raise(INT_CONFIG_CHANGE);
  }

  needsReset(reason: string): void {
    this.lastError = reason;
    this.log(`virtio device ${this.device.deviceId}: needs reset: ${reason}`);
    if (this.status & STATUS.DEVICE_NEEDS_RESET) return;
    this.status |= STATUS.DEVICE_NEEDS_RESET;
    if (this.status & STATUS.DRIVER_OK) this.raise(INT_CONFIG_CHANGE);
  }

  private raise(bits: number): void {
    this.interruptStatus |= bits;
    this.updateIrq();
  }

  private updateIrq(): void {
    const level = this.interruptStatus !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  // ---- MmioDevice --------------------------------------------------------------------------------

  read(offset: number, size: number): number {
    if (offset >= REG.Config) {
      const cfg = this.device.config;
      const o = offset - REG.Config;
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + (o + i < cfg.length ? cfg[o + i] : 0);
      return v >>> 0;
    }
    if (size !== 4 || offset & 3) return 0; // registers are 32-bit only
    const q = this.queues[this.queueSel];
    switch (offset) {
      case REG.MagicValue:
        return VIRTIO_MMIO_MAGIC;
      case REG.Version:
        return VIRTIO_MMIO_VERSION;
      case REG.DeviceID:
        return this.device.deviceId;
      case REG.VendorID:
        return VIRTIO_VENDOR_ID;
      case REG.DeviceFeatures:
        return this.deviceFeaturesSel > 1
          ? 0
          : Number((this.offeredFeatures >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn) >>> 0;
      case REG.QueueNumMax:
        return q ? q.maxSize : 0;
      case REG.QueueNum:
        return q ? q.size : 0;
      case REG.QueueReady:
        return q && q.ready ? 1 : 0;
      case REG.InterruptStatus:
        return this.interruptStatus;
      case REG.Status:
        return this.status;
      case REG.QueueDescLow:
        return q ? q.descAddr >>> 0 : 0;
      case REG.QueueDescHigh:
        return q ? Math.floor(q.descAddr / 0x1_0000_0000) >>> 0 : 0;
      case REG.QueueDriverLow:
        return q ? q.driverAddr >>> 0 : 0;
      case REG.QueueDriverHigh:
        return q ? Math.floor(q.driverAddr / 0x1_0000_0000) >>> 0 : 0;
      case REG.QueueDeviceLow:
        return q ? q.deviceAddr >>> 0 : 0;
      case REG.QueueDeviceHigh:
        return q ? Math.floor(q.deviceAddr / 0x1_0000_0000) >>> 0 : 0;
      case REG.SHMLenLow:
      case REG.SHMLenHigh:
        return 0xffff_ffff; // no shared memory regions
      case REG.SHMBaseLow:
      case REG.SHMBaseHigh:
        return 0xffff_ffff;
      case REG.ConfigGeneration:
        return this.configGeneration;
      default:
        return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    value >>>= 0;
    if (offset >= REG.Config) {
      if (this.device.configWrite)
        this.guard(() => this.device.configWrite!(offset - REG.Config, size, value));
      return;
    }
    if (size !== 4 || offset & 3) return;
    const q = this.queues[this.queueSel];
    switch (offset) {
      case REG.DeviceFeaturesSel:
        this.deviceFeaturesSel = value;
        return;
      case REG.DriverFeatures:
        if (this.status & STATUS.FEATURES_OK || this.driverFeaturesSel > 1) return;
        {
          const shift = BigInt(32 * this.driverFeaturesSel);
          this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(value) << shift);
        }
        return;
      case REG.DriverFeaturesSel:
        this.driverFeaturesSel = value;
        return;
      case REG.QueueSel:
        this.queueSel = value;
        return;
      case REG.QueueNum:
        if (q && !q.ready) q.size = value;
        return;
      case REG.QueueReady:
        if (!q) return;
        if (value & 1) {
          if (q.ready) return;
          const err = q.validate();
          if (err) {
            this.needsReset(`queue ${this.queueSel}: ${err}`);
            return;
          }
          q.eventIdx = this.hasFeature(VIRTIO_F_EVENT_IDX);
          q.indirect = this.hasFeature(VIRTIO_F_INDIRECT_DESC);
          q.enable();
        } else {
          q.ready = false;
        }
        return;
      case REG.QueueNotify:
        this.notify(value & 0xffff);
        return;
      case REG.InterruptACK:
        this.interruptStatus &= ~value;
        this.updateIrq();
        return;
      case REG.Status:
        this.writeStatus(value & 0xff);
        return;
      case REG.QueueDescLow:
        if (q && !q.ready) q.descAddr = joinAddr(value, Math.floor(q.descAddr / 0x1_0000_0000));
        return;
      case REG.QueueDescHigh:
        if (q && !q.ready) q.descAddr = joinAddr(q.descAddr, value);
        return;
      case REG.QueueDriverLow:
        if (q && !q.ready) q.driverAddr = joinAddr(value, Math.floor(q.driverAddr / 0x1_0000_0000));
        return;
      case REG.QueueDriverHigh:
        if (q && !q.ready) q.driverAddr = joinAddr(q.driverAddr, value);
        return;
      case REG.QueueDeviceLow:
        if (q && !q.ready) q.deviceAddr = joinAddr(value, Math.floor(q.deviceAddr / 0x1_0000_0000));
        return;
      case REG.QueueDeviceHigh:
        if (q && !q.ready) q.deviceAddr = joinAddr(q.deviceAddr, value);
        return;
      case REG.SHMSel:
        this.shmSel = value;
        return;
      default:
        return;
    }
  }

  private writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.status;
    let next = value | (old & STATUS.DEVICE_NEEDS_RESET);
    if (next & STATUS.FEATURES_OK && !(old & STATUS.FEATURES_OK)) {
      const extra = this.driverFeatures & ~this.offeredFeatures;
      if (extra !== 0n) {
        this.log(
          `virtio device ${this.device.deviceId}: driver accepted features it was not offered (0x${extra.toString(16)})`,
        );
        next &= ~STATUS.FEATURES_OK;
      } else if (!this.hasFeature(VIRTIO_F_VERSION_1)) {
        this.log(
          `virtio device ${this.device.deviceId}: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported)`,
        );
        next &= ~STATUS.FEATURES_OK;
      }
    }
    this.status = next;
    if (next & STATUS.DRIVER_OK && !(old & STATUS.DRIVER_OK)) {
      this.guard(() => this.device.activate?.());
      // Pick up buffers the driver queued before DRIVER_OK.
      for (let i = 0; i < this.queues.length; i++) if (this.queues[i].ready) this.notify(i);
    }
  }

  /** Run the device's handler for queue `q` (also usable by the VMM to poll a device). */
  notify(q: number): void {
    const vq = this.queues[q];
    if (!vq || !vq.ready || this.status & STATUS.DEVICE_NEEDS_RESET) return;
    this.guard(() => this.device.notify(q));
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.needsReset(`device model error: ${(e as Error).message}`);
    }
  }

  saveState(): VirtioMmioState {
    return {
      deviceId: this.device.deviceId,
      status: this.status,
      driverFeatures: this.driverFeatures.toString(16),
      interruptStatus: this.interruptStatus,
      configGeneration: this.configGeneration,
      deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeaturesSel: this.driverFeaturesSel,
      queueSel: this.queueSel,
      config: Array.from(this.device.config),
      queues: this.queues.map((q) => q.saveState()),
      device: this.device.saveState?.(),
    };
  }

  /** Restore a snapshot taken from a transport with the same kind of device (and guest RAM). */
  restoreState(s: VirtioMmioState): void {
    if (s.deviceId !== this.device.deviceId || s.queues.length !== this.queues.length) {
      throw new Error(
        `virtio snapshot is for device ${s.deviceId} with ${s.queues.length} queues, not device ${this.device.deviceId}`,
      );
    }
    this.status = s.status;
    this.driverFeatures = BigInt('0x' + s.driverFeatures);
    this.interruptStatus = s.interruptStatus;
    this.configGeneration = s.configGeneration;
    this.deviceFeaturesSel = s.deviceFeaturesSel;
    this.driverFeaturesSel = s.driverFeaturesSel;
    this.queueSel = s.queueSel;
    this.device.config.set(s.config.slice(0, this.device.config.length));
    s.queues.forEach((q, i) => this.queues[i].restoreState(q));
    if (s.device !== undefined) this.device.restoreState?.(s.device);
    this.irqLevel = !(this.interruptStatus !== 0);
    this.updateIrq();
  }

  /** Device reset (driver wrote 0 to Status, or the machine resets). */
  reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = this.shmSel = 0;
    this.interruptStatus = 0;
    this.lastError = undefined;
    for (const q of this.queues) q.reset();
    this.guard(() => this.device.reset());
    this.updateIrq();
  }
}

// Split virtqueue (virtio 1.2, "Split Virtqueues"): descriptor table, available ring, used ring,
// indirect descriptor tables and event-index notification suppression.
//
// The guest is untrusted. Every address, length and index read from guest memory is checked here:
// - the queue size must be a power of two no larger than the device's maximum (checked by the
//   transport before the queue becomes ready), and the three ring areas must lie in guest RAM;
// - a head or `next` index must be below the queue size, a chain may hold at most `size`
//   descriptors (direct) plus at most `size` descriptors of one indirect table, so loops end;
// - an indirect table must have a length that is a non-zero multiple of 16, must lie in RAM, may
//   not be nested and may not be chained after other descriptors;
// - every buffer must lie entirely inside guest RAM.
// A chain that breaks one of these rules comes back from pop() with `error` set: the device fails
// that request (returns the head in the used ring with whatever status it can still write). A
// driver that breaks the ring itself (a head index out of range, an available index that runs
// ahead by more than the queue size) makes the queue `broken`: the transport then sets
// DEVICE_NEEDS_RESET and the queue is left alone until the driver resets the device.
// Nothing here throws for guest-controlled input.

import type { GuestMemory } from '../../memory/guest-memory.js';

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** One guest buffer of a chain: guest-physical address and length, known to lie in guest RAM. */
export interface Segment {
  addr: number;
  len: number;
}

/** A descriptor chain taken from the available ring. */
export interface Chain {
  /** Head descriptor index (what goes back into the used ring). */
  head: number;
  /** Device-readable buffers, in chain order. */
  readable: Segment[];
  /** Device-writable buffers, in chain order. */
  writable: Segment[];
  readableLen: number;
  writableLen: number;
  /** Set when the chain is malformed; the segments gathered before the fault are kept. */
  error?: string;
}

/** Combine two 32-bit register halves into a Number; undefined when not a safe integer. */
export function joinAddr(lo: number, hi: number): number {
  return (hi >>> 0) * 0x1_0000_0000 + (lo >>> 0);
}

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** A virtqueue's state for snapshots (plain JSON). */
export interface VirtqueueState {
  size: number;
  ready: boolean;
  descAddr: number;
  driverAddr: number;
  deviceAddr: number;
  lastAvail: number;
  usedIdx: number;
  eventIdx: boolean;
  indirect: boolean;
  broken?: string;
  signalledUsed: number;
  signalledValid: boolean;
}

export class Virtqueue {
  /** Queue size chosen by the driver (QueueNum). */
  size = 0;
  ready = false;
  descAddr = 0;
  driverAddr = 0;
  deviceAddr = 0;
  /** Next available-ring index the device will read. */
  lastAvail = 0;
  /** Next used-ring index the device will write. */
  usedIdx = 0;
  /** VIRTIO_RING_F_EVENT_IDX negotiated. */
  eventIdx = false;
  /** VIRTIO_RING_F_INDIRECT_DESC negotiated. */
  indirect = false;
  /** Set when the driver corrupted the ring; the queue is not processed until reset. */
  broken: string | undefined;
  /** usedIdx at the time of the last interrupt decision (event-idx). */
  private signalledUsed = 0;
  private signalledValid = false;

  constructor(
    readonly mem: GuestMemory,
    readonly maxSize: number,
  ) {
    this.size = maxSize;
  }

  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.descAddr = this.driverAddr = this.deviceAddr = 0;
    this.lastAvail = this.usedIdx = 0;
    this.broken = undefined;
    this.signalledUsed = 0;
    this.signalledValid = false;
  }

  saveState(): VirtqueueState {
    return {
      size: this.size,
      ready: this.ready,
      descAddr: this.descAddr,
      driverAddr: this.driverAddr,
      deviceAddr: this.deviceAddr,
      lastAvail: this.lastAvail,
      usedIdx: this.usedIdx,
      eventIdx: this.eventIdx,
      indirect: this.indirect,
      broken: this.broken,
      signalledUsed: this.signalledUsed,
      signalledValid: this.signalledValid,
    };
  }

  /** Restore a saved state; a ready queue is checked again against this memory. */
  restoreState(s: VirtqueueState): void {
    this.size = s.size;
    this.descAddr = s.descAddr;
    this.driverAddr = s.driverAddr;
    this.deviceAddr = s.deviceAddr;
    this.lastAvail = s.lastAvail & 0xffff;
    this.usedIdx = s.usedIdx & 0xffff;
    this.eventIdx = s.eventIdx;
    this.indirect = s.indirect;
    this.broken = s.broken;
    this.signalledUsed = s.signalledUsed & 0xffff;
    this.signalledValid = s.signalledValid;
    this.ready = s.ready;
    if (this.ready) {
      const err = this.validate();
      if (err) throw new Error(`virtqueue snapshot does not fit this machine: ${err}`);
    }
  }

  /**
   * Check the configuration the driver wrote before it sets QueueReady. Returns an error message or
   * undefined when the queue can be used.
   */
  validate(): string | undefined {
    const n = this.size;
    if (!isPow2(n) || n > this.maxSize || n > 32768) {
      return `queue size ${n} is not a power of two from 1 to ${this.maxSize}`;
    }
    if (this.descAddr % 16 !== 0 || !this.mem.isRam(this.descAddr, 16 * n)) {
      return `descriptor table at 0x${this.descAddr.toString(16)} is not 16-byte aligned guest RAM`;
    }
    if (this.driverAddr % 2 !== 0 || !this.mem.isRam(this.driverAddr, 6 + 2 * n)) {
      return `available ring at 0x${this.driverAddr.toString(16)} is not 2-byte aligned guest RAM`;
    }
    if (this.deviceAddr % 4 !== 0 || !this.mem.isRam(this.deviceAddr, 6 + 8 * n)) {
      return `used ring at 0x${this.deviceAddr.toString(16)} is not 4-byte aligned guest RAM`;
    }
    return undefined;
  }

  /** Mark the queue ready (after validate()); the device starts with the driver's current indices. */
  enable(): void {
    this.ready = true;
    this.broken = undefined;
    this.lastAvail = 0;
    this.usedIdx = 0;
    this.signalledValid = false;
  }

  private off(pa: number): number {
    return pa - this.mem.ramBase;
  }

  private rd16(pa: number): number {
    return this.mem.dv.getUint16(this.off(pa), true);
  }

  private wr16(pa: number, v: number): void {
    const o = this.off(pa);
    this.mem.dv.setUint16(o, v & 0xffff, true);
    this.mem.noteWrite(o, 2);
  }

  /** The driver's available index. */
  availIdx(): number {
    return this.rd16(this.driverAddr + 2);
  }

  availFlags(): number {
    return this.rd16(this.driverAddr);
  }

  /** Number of chains the driver has made available that the device has not taken yet. */
  pending(): number {
    if (!this.ready || this.broken) return 0;
    const n = (this.availIdx() - this.lastAvail) & 0xffff;
    if (n > this.size) {
      this.fail(`available index ran ${n} entries ahead of the device (queue size ${this.size})`);
      return 0;
    }
    return n;
  }

  /** Called for each malformed chain (the request fails; diagnostics only). */
  onMalformed: (reason: string) => void = () => {};

  /** Called once when the driver corrupts the ring (the transport sets DEVICE_NEEDS_RESET). */
  onBroken: (reason: string) => void = () => {};

  private fail(reason: string): void {
    if (this.broken) return;
    this.broken = reason;
    this.onBroken(reason);
  }

  /** Take the next available chain, or undefined when there is none (or the queue is broken). */
  pop(): Chain | undefined {
    if (this.pending() === 0) return undefined;
    const slot = this.lastAvail % this.size;
    const head = this.rd16(this.driverAddr + 4 + 2 * slot);
    if (head >= this.size) {
      this.fail(`available ring entry ${slot} holds descriptor index ${head}, queue size is ${this.size}`);
      return undefined;
    }
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.eventIdx) this.setAvailEvent(this.lastAvail);
    const chain = this.walk(head);
    if (chain.error) this.onMalformed(chain.error);
    return chain;
  }

  /** Tell the driver (VIRTIO_RING_F_EVENT_IDX) to notify once it publishes index `idx`. */
  setAvailEvent(idx: number): void {
    this.wr16(this.deviceAddr + 4 + 8 * this.size, idx);
  }

  private walk(head: number): Chain {
    const chain: Chain = { head, readable: [], writable: [], readableLen: 0, writableLen: 0 };
    const dv = this.mem.dv;
    let table = this.descAddr;
    let tableSize = this.size;
    let idx = head;
    let inIndirect = false;
    // At most `size` descriptors in the direct chain plus `tableSize` in one indirect table.
    let budget = this.size;
    for (;;) {
      if (budget-- <= 0) {
        chain.error = 'descriptor chain is longer than the queue (a loop?)';
        return chain;
      }
      const o = this.off(table + 16 * idx);
      const addr = joinAddr(dv.getUint32(o, true), dv.getUint32(o + 4, true));
      const len = dv.getUint32(o + 8, true);
      const flags = dv.getUint16(o + 12, true);
      const next = dv.getUint16(o + 14, true);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.indirect) {
          chain.error = 'indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC';
          return chain;
        }
        if (inIndirect) {
          chain.error = 'nested indirect descriptor table';
          return chain;
        }
        if (chain.readable.length + chain.writable.length > 0 || flags & VIRTQ_DESC_F_NEXT) {
          chain.error = 'indirect descriptor chained with other descriptors';
          return chain;
        }
        if (len === 0 || len % 16 !== 0 || !this.mem.isRam(addr, len)) {
          chain.error = `indirect table at 0x${addr.toString(16)} length ${len} is not guest RAM of a non-zero multiple of 16 bytes`;
          return chain;
        }
        table = addr;
        tableSize = len / 16;
        idx = 0;
        inIndirect = true;
        budget = tableSize;
        continue;
      }
      if (len === 0) {
        // An empty buffer touches no memory; skip it.
      } else if (!this.mem.isRam(addr, len)) {
        // Keep walking (the status buffer of the request may still be usable), but drop this one.
        chain.error ??= `buffer at 0x${addr.toString(16)} length ${len} is not in guest RAM`;
      } else if (flags & VIRTQ_DESC_F_WRITE) {
        chain.writable.push({ addr, len });
        chain.writableLen += len;
      } else {
        if (chain.writable.length > 0) {
          chain.error = 'device-readable descriptor after a device-writable one';
          return chain;
        }
        chain.readable.push({ addr, len });
        chain.readableLen += len;
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) return chain;
      if (next >= tableSize) {
        chain.error = `next descriptor index ${next} is out of range (table of ${tableSize})`;
        return chain;
      }
      idx = next;
    }
  }

  /** Return a chain to the driver with `len` bytes written into its writable buffers. */
  push(head: number, len: number): void {
    if (!this.ready || this.broken) return;
    const slot = this.usedIdx % this.size;
    const e = this.off(this.deviceAddr + 4 + 8 * slot);
    this.mem.dv.setUint32(e, head >>> 0, true);
    this.mem.dv.setUint32(e + 4, len >>> 0, true);
    this.mem.noteWrite(e, 8);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.wr16(this.deviceAddr + 2, this.usedIdx);
  }

  /**
   * Whether the driver wants an interrupt for the used entries added since the last call
   * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with VIRTIO_RING_F_EVENT_IDX).
   */
  shouldInterrupt(): boolean {
    if (!this.ready || this.broken) return false;
    const newIdx = this.usedIdx;
    if (!this.eventIdx) {
      const v = this.signalledValid && this.signalledUsed === newIdx;
      this.signalledUsed = newIdx;
      this.signalledValid = true;
      if (v) return false;
      return (this.availFlags() & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    const old = this.signalledUsed;
    const valid = this.signalledValid;
    this.signalledUsed = newIdx;
    this.signalledValid = true;
    if (!valid) return true;
    if (old === newIdx) return false;
    const usedEvent = this.rd16(this.driverAddr + 4 + 2 * this.size);
    // vring_need_event: notify when used_event lies in [old, new).
    return ((newIdx - usedEvent - 1) & 0xffff) < ((newIdx - old) & 0xffff);
  }

  // ---- buffer helpers -------------------------------------------------------------------------

  /** Copy up to `max` bytes of the chain's readable buffers, starting `skip` bytes in. */
  readBytes(chain: Chain, skip = 0, max = Infinity): Uint8Array {
    const total = Math.max(0, Math.min(chain.readableLen - skip, max));
    const out = new Uint8Array(total);
    let pos = 0;
    let s = skip;
    for (const seg of chain.readable) {
      if (pos >= total) break;
      if (s >= seg.len) {
        s -= seg.len;
        continue;
      }
      const n = Math.min(seg.len - s, total - pos);
      const view = this.mem.slice(seg.addr + s, n);
      if (!view) break;
      out.set(view, pos);
      pos += n;
      s = 0;
    }
    return out;
  }

  /** Copy `data` into the chain's writable buffers starting `skip` bytes in; returns bytes written. */
  writeBytes(chain: Chain, data: Uint8Array, skip = 0): number {
    let pos = 0;
    let s = skip;
    for (const seg of chain.writable) {
      if (pos >= data.length) break;
      if (s >= seg.len) {
        s -= seg.len;
        continue;
      }
      const n = Math.min(seg.len - s, data.length - pos);
      const view = this.mem.sliceForWrite(seg.addr + s, n);
      if (!view) break;
      view.set(data.subarray(pos, pos + n));
      pos += n;
      s = 0;
    }
    return pos;
  }
}

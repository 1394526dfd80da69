// A hand-written virtio driver for device-model tests: it writes descriptor tables and rings into a
// GuestMemory by hand, following the virtio 1.2 layouts, and drives a VirtioMmioTransport.

import assert from 'node:assert/strict';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { VirtioMmioTransport, type VirtioDevice } from '../../src/devices/virtio/mmio.js';

export const RAM = 0x4000_0000;
export const RAM_SIZE = 4 << 20;
export const F = { INDIRECT: 28n, EVENT_IDX: 29n, VERSION_1: 32n };
export const S = { ACK: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8, NEEDS_RESET: 64 };
export const D_NEXT = 1;
export const D_WRITE = 2;
export const D_INDIRECT = 4;

export interface Buf {
  addr: number;
  len: number;
  write?: boolean;
}

/** A hand-written virtio driver: enough to feed descriptor chains to a device. */
export class Driver {
  readonly mem: GuestMemory;
  readonly t: VirtioMmioTransport;
  irq = false;
  irqEdges = 0;
  qsize: number[] = [];
  private nextDesc: number[] = [];
  private availIdx: number[] = [];
  private seenUsed: number[] = [];
  /** Free data area for buffers. */
  private heap = RAM + 0x10_0000;

  constructor(
    readonly dev: VirtioDevice,
    opts: { eventIdx?: boolean; indirect?: boolean; ramSize?: number } = {},
  ) {
    this.mem = new GuestMemory(RAM, opts.ramSize ?? RAM_SIZE);
    this.t = new VirtioMmioTransport(this.mem, dev, {
      setIrq: (l) => {
        if (l && !this.irq) this.irqEdges++;
        this.irq = l;
      },
      eventIdx: opts.eventIdx,
      indirectDesc: opts.indirect,
    });
  }

  r(off: number): number {
    return this.t.read(off, 4);
  }
  w(off: number, v: number): void {
    this.t.write(off, 4, v);
  }

  deviceFeatures(): bigint {
    this.w(0x14, 0);
    const lo = BigInt(this.r(0x10));
    this.w(0x14, 1);
    const hi = BigInt(this.r(0x10));
    return (hi << 32n) | lo;
  }

  /** Status handshake and queue setup; `accept` masks the features the driver takes. */
  init(accept: bigint = ~0n, qsize = 8): void {
    this.w(0x70, 0);
    this.w(0x70, S.ACK);
    this.w(0x70, S.ACK | S.DRIVER);
    const f = this.deviceFeatures() & accept;
    this.w(0x24, 0);
    this.w(0x20, Number(f & 0xffff_ffffn));
    this.w(0x24, 1);
    this.w(0x20, Number(f >> 32n));
    this.w(0x70, S.ACK | S.DRIVER | S.FEATURES_OK);
    assert.ok(this.r(0x70) & S.FEATURES_OK, 'FEATURES_OK accepted');
    const nq = this.dev.queueMax.length;
    for (let q = 0; q < nq; q++) {
      this.w(0x30, q);
      assert.equal(this.r(0x44), 0);
      const max = this.r(0x34);
      const n = Math.min(qsize, max);
      this.qsize[q] = n;
      this.w(0x38, n);
      const base = this.ringBase(q);
      this.mem.u8.fill(0, base - RAM, base - RAM + 0x4000); // fresh rings, as a driver allocates them
      this.w(0x80, base);
      this.w(0x84, 0);
      this.w(0x90, base + 0x1000);
      this.w(0x94, 0);
      this.w(0xa0, base + 0x2000);
      this.w(0xa4, 0);
      this.w(0x44, 1);
      assert.equal(this.r(0x44), 1, `queue ${q} ready`);
      this.nextDesc[q] = 0;
      this.availIdx[q] = 0;
      this.seenUsed[q] = 0;
    }
    this.w(0x70, S.ACK | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  }

  ringBase(q: number): number {
    return RAM + q * 0x4000;
  }

  alloc(len: number): number {
    const a = this.heap;
    this.heap += (len + 15) & ~15;
    return a;
  }

  /** Write a 16-byte descriptor into table `table` at index `i`. */
  desc(table: number, i: number, addr: number, len: number, flags: number, next: number): void {
    const dv = this.mem.dv;
    const o = table - RAM + 16 * i;
    dv.setUint32(o, addr % 0x1_0000_0000, true);
    dv.setUint32(o + 4, Math.floor(addr / 0x1_0000_0000), true);
    dv.setUint32(o + 8, len, true);
    dv.setUint16(o + 12, flags, true);
    dv.setUint16(o + 14, next, true);
  }

  /** Put a chain of buffers in the descriptor table; returns the head index. */
  chain(q: number, bufs: Buf[]): number {
    const n = this.qsize[q];
    const head = this.nextDesc[q] % n;
    for (let k = 0; k < bufs.length; k++) {
      const i = (head + k) % n;
      const last = k === bufs.length - 1;
      this.desc(
        this.ringBase(q),
        i,
        bufs[k].addr,
        bufs[k].len,
        (bufs[k].write ? D_WRITE : 0) | (last ? 0 : D_NEXT),
        (i + 1) % n,
      );
    }
    this.nextDesc[q] = (head + bufs.length) % n;
    return head;
  }

  /** Put an indirect table holding `bufs`; returns the head index. */
  indirectChain(q: number, bufs: Buf[]): number {
    const table = this.alloc(16 * bufs.length);
    bufs.forEach((b, k) =>
      this.desc(table, k, b.addr, b.len, (b.write ? D_WRITE : 0) | (k < bufs.length - 1 ? D_NEXT : 0), k + 1),
    );
    const n = this.qsize[q];
    const head = this.nextDesc[q] % n;
    this.desc(this.ringBase(q), head, table, 16 * bufs.length, D_INDIRECT, 0);
    this.nextDesc[q] = (head + 1) % n;
    return head;
  }

  /** Publish `head` in the available ring. */
  avail(q: number, head: number): void {
    const n = this.qsize[q];
    const a = this.ringBase(q) + 0x1000 - RAM;
    this.mem.dv.setUint16(a + 4 + 2 * (this.availIdx[q] % n), head, true);
    this.availIdx[q] = (this.availIdx[q] + 1) & 0xffff;
    this.mem.dv.setUint16(a + 2, this.availIdx[q], true);
  }

  setAvailFlags(q: number, flags: number): void {
    this.mem.dv.setUint16(this.ringBase(q) + 0x1000 - RAM, flags, true);
  }

  setUsedEvent(q: number, v: number): void {
    this.mem.dv.setUint16(this.ringBase(q) + 0x1000 - RAM + 4 + 2 * this.qsize[q], v, true);
  }

  availEvent(q: number): number {
    return this.mem.dv.getUint16(this.ringBase(q) + 0x2000 - RAM + 4 + 8 * this.qsize[q], true);
  }

  kick(q: number): void {
    this.w(0x50, q);
  }

  /** New used-ring entries since the last call. */
  used(q: number): { id: number; len: number }[] {
    const u = this.ringBase(q) + 0x2000 - RAM;
    const idx = this.mem.dv.getUint16(u + 2, true);
    const out = [];
    while (this.seenUsed[q] !== idx) {
      const e = u + 4 + 8 * (this.seenUsed[q] % this.qsize[q]);
      out.push({ id: this.mem.dv.getUint32(e, true), len: this.mem.dv.getUint32(e + 4, true) });
      this.seenUsed[q] = (this.seenUsed[q] + 1) & 0xffff;
    }
    return out;
  }

  ack(): number {
    const s = this.r(0x60);
    this.w(0x64, s);
    return s;
  }

  bytes(addr: number, len: number): Uint8Array {
    return this.mem.u8.slice(addr - RAM, addr - RAM + len);
  }

  put(addr: number, data: Uint8Array): void {
    this.mem.u8.set(data, addr - RAM);
  }
}

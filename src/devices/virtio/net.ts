// virtio-net (virtio 1.2, "Network Device"): one queue pair, receiveq (0) and transmitq (1), over a
// host backend (passt's socket, a TAP device: src/host/). Features: MAC, STATUS (link up), MTU and
// MRG_RXBUF; no checksum or segmentation offloads, so every frame is at most MTU + 14 bytes and the
// 12-byte virtio_net_hdr (VERSION_1 layout) is all zeroes apart from num_buffers.
//
// Receive: a frame from the backend is copied once, straight into the guest's posted buffers. With
// MRG_RXBUF a frame may span several buffers (num_buffers says how many); without it, one buffer
// must hold it (Linux posts 1518 + 12 bytes, which an MTU of 1500 always fits). Frames wait in a
// bounded backlog while the guest has no buffers; when it is full the backend is paused (passt's
// socket stops being read, so TCP backs off) and frames a backend still pushes are dropped.
// Transmit: the guest's buffers go to the backend as views of guest RAM (no copy here); while the
// backend cannot take more, the transmit queue is left alone until it can.
//
// The guest is untrusted: a malformed chain, a frame larger than the MTU allows, a buffer too small
// for the header: that packet is dropped and its buffer returned, counted in `stats`.

import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';
import type { Chain } from './queue.js';

export const VIRTIO_NET_F_MTU = 3;
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_S_LINK_UP = 1;

/** virtio_net_hdr with VERSION_1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
export const VIRTIO_NET_HDR_BYTES = 12;
/** Ethernet header plus an 802.1Q tag. */
const ETH_OVERHEAD = 18;
export const DEFAULT_MTU = 1500;
const RX = 0;
const TX = 1;
const QUEUE_SIZE = 256;
/** Frames held for a guest that has posted no receive buffers. */
export const RX_BACKLOG = 256;

/**
 * The host end of a NIC. A backend hands received frames to the device through the `receive`
 * callback given to start(); pause()/resume() are flow control from the device. start() may be
 * called again (a new device after a reboot): the new callbacks replace the old ones. The backend
 * belongs to whoever opened it, which closes it.
 */
export interface NetBackend {
  /** Frames on this backend carry the 12-byte virtio_net_hdr (a TAP with IFF_VNET_HDR). */
  readonly vnetHdr: boolean;
  /** Begin delivering frames; `txReady` is called when a backend that refused a frame can take more. */
  start(receive: (frame: Uint8Array) => void, txReady: () => void): void;
  /**
   * Send one frame given as pieces (views of guest RAM, valid only during the call). Returns false
   * when the backend cannot take more now (the frame was taken; send no more until txReady).
   */
  transmit(pieces: Uint8Array[], length: number): boolean;
  pause(): void;
  resume(): void;
  close(): void;
}

export interface VirtioNetOptions {
  mac: Uint8Array;
  backend: NetBackend;
  mtu?: number;
  /** Called when the device needs the run loop to wake (frames for an idle guest). */
  kick?: () => void;
}

export class VirtioNet extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.NET;
  readonly queueMax = [QUEUE_SIZE, QUEUE_SIZE];
  readonly features =
    (1n << BigInt(VIRTIO_NET_F_MTU)) |
    (1n << BigInt(VIRTIO_NET_F_MAC)) |
    (1n << BigInt(VIRTIO_NET_F_MRG_RXBUF)) |
    (1n << BigInt(VIRTIO_NET_F_STATUS));
  readonly mtu: number;
  readonly backend: NetBackend;
  /** Packet counters (diagnostics and tests). */
  readonly stats = { rxFrames: 0, rxBytes: 0, rxDropped: 0, txFrames: 0, txBytes: 0, txErrors: 0 };
  private readonly backlog: Uint8Array[] = [];
  private paused = false;
  private txBlocked = false;
  private readonly kick: () => void;
  private readonly hdr = new Uint8Array(VIRTIO_NET_HDR_BYTES);

  constructor(opts: VirtioNetOptions) {
    super(12);
    if (opts.mac.length !== 6) throw new Error('virtio-net: a MAC address has 6 bytes');
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    this.backend = opts.backend;
    this.kick = opts.kick ?? (() => {});
    // Config: mac[6] @0, status le16 @6, max_virtqueue_pairs le16 @8, mtu le16 @10.
    this.config.set(opts.mac, 0);
    this.cfg.setUint16(6, VIRTIO_NET_S_LINK_UP, true);
    this.cfg.setUint16(8, 1, true);
    this.cfg.setUint16(10, this.mtu, true);
    this.backend.start(
      (frame) => this.receive(frame),
      () => {
        this.txBlocked = false;
        if (this.attached && this.host.active) {
          this.notify(TX);
          this.kick();
        }
      },
    );
  }

  /** Largest frame (without the virtio header) the guest can be given or may send. */
  get maxFrame(): number {
    return this.mtu + ETH_OVERHEAD;
  }

  get backlogged(): number {
    return this.backlog.length;
  }

  /** A frame from the backend (with its virtio header when the backend has one). */
  receive(frame: Uint8Array): void {
    const len = frame.length - (this.backend.vnetHdr ? VIRTIO_NET_HDR_BYTES : 0);
    if (!this.attached || !this.host.active || len <= 0 || len > this.maxFrame) {
      // No driver yet (a real NIC drops too), or a frame the guest was told it never gets.
      this.stats.rxDropped++;
      return;
    }
    if (this.backlog.length >= RX_BACKLOG) {
      this.stats.rxDropped++;
      return;
    }
    this.backlog.push(frame);
    this.deliver();
    if (this.backlog.length >= RX_BACKLOG && !this.paused) {
      this.paused = true;
      this.backend.pause();
    }
    // Wake a guest idling in WFI: for the interrupt just raised, or to post more buffers.
    this.kick();
  }

  /** Move backlogged frames into the guest's receive buffers while it has some. */
  private deliver(): void {
    if (!this.host.active) return;
    const vq = this.queue(RX);
    if (!vq.ready) return;
    let any = false;
    while (this.backlog.length > 0) {
      const r = this.deliverOne(this.backlog[0]);
      if (r === 'wait') break;
      any = true;
      this.backlog.shift();
    }
    if (any) this.host.usedBuffers(RX);
    if (this.paused && this.backlog.length <= RX_BACKLOG / 2) {
      this.paused = false;
      this.backend.resume();
    }
  }

  /**
   * Write one frame into the guest's buffers: 'done' (delivered or dropped) or 'wait' (not enough
   * buffers posted yet; nothing was consumed).
   */
  private deliverOne(frame: Uint8Array): 'done' | 'wait' {
    const vq = this.queue(RX);
    const mrg = this.negotiated(VIRTIO_NET_F_MRG_RXBUF);
    const body = this.backend.vnetHdr ? frame.subarray(VIRTIO_NET_HDR_BYTES) : frame;
    const total = VIRTIO_NET_HDR_BYTES + body.length;
    const start = vq.lastAvail;
    const used: { head: number; len: number }[] = [];
    let pos = 0;
    let first: Chain | undefined;
    const fail = (extra?: Chain): 'done' => {
      // Return every buffer taken for this frame empty (the driver counts a length error), drop it.
      for (const u of used) vq.push(u.head, 0);
      if (extra) vq.push(extra.head, 0);
      this.stats.rxDropped++;
      return 'done';
    };
    while (pos < total) {
      const chain = vq.pop();
      if (!chain) {
        // Every buffer the queue can hold is too little: this frame never fits.
        if (used.length >= vq.size) return fail();
        // Not enough buffers: put them back (nothing is visible to the driver before push()).
        vq.lastAvail = start;
        if (vq.eventIdx) vq.setAvailEvent(start);
        return 'wait';
      }
      if (chain.error) return fail(chain);
      if (!first && chain.writableLen < (mrg ? VIRTIO_NET_HDR_BYTES : total)) return fail(chain);
      // The header goes in last, once num_buffers is known; the first chain starts with room for it.
      const skip = first ? 0 : VIRTIO_NET_HDR_BYTES;
      first ??= chain;
      const n = vq.writeBytes(chain, body.subarray(pos - (pos === 0 ? 0 : VIRTIO_NET_HDR_BYTES)), skip);
      if (pos === 0) pos = VIRTIO_NET_HDR_BYTES;
      pos += n;
      used.push({ head: chain.head, len: n + skip });
      if (n + skip === 0) return fail(); // an empty chain would make this loop long
    }
    this.hdr.fill(0);
    this.hdr[10] = used.length & 0xff;
    this.hdr[11] = used.length >> 8;
    vq.writeBytes(first!, this.hdr);
    for (const u of used) vq.push(u.head, u.len);
    this.stats.rxFrames++;
    this.stats.rxBytes += body.length;
    return 'done';
  }

  notify(q: number): void {
    if (q === RX) {
      this.deliver();
      return;
    }
    if (q !== TX || this.txBlocked) return;
    const vq = this.queue(TX);
    const mem = this.host.mem;
    let any = false;
    for (;;) {
      const chain = vq.pop();
      if (!chain) break;
      any = true;
      const len = chain.readableLen - VIRTIO_NET_HDR_BYTES;
      if (chain.error || len <= 0 || len > this.maxFrame) {
        this.stats.txErrors++;
        vq.push(chain.head, 0);
        continue;
      }
      // The frame as views of guest RAM. No offloads were offered, so a backend that takes a
      // virtio header gets zeroes whatever the driver wrote there.
      const pieces: Uint8Array[] = this.backend.vnetHdr ? [ZERO_HDR] : [];
      let skip = VIRTIO_NET_HDR_BYTES;
      for (const seg of chain.readable) {
        if (skip >= seg.len) {
          skip -= seg.len;
          continue;
        }
        const view = mem.slice(seg.addr + skip, seg.len - skip);
        skip = 0;
        if (view) pieces.push(view);
      }
      const more = this.backend.transmit(pieces, len + (this.backend.vnetHdr ? VIRTIO_NET_HDR_BYTES : 0));
      vq.push(chain.head, 0);
      this.stats.txFrames++;
      this.stats.txBytes += len;
      if (!more) {
        this.txBlocked = true;
        break;
      }
    }
    if (any) this.host.usedBuffers(TX);
  }

  activate(): void {
    this.backlog.length = 0;
  }

  override reset(): void {
    this.backlog.length = 0;
    this.txBlocked = false;
    if (this.paused) {
      this.paused = false;
      this.backend.resume();
    }
  }

  /**
   * Snapshots carry no frames: those waiting for the guest's buffers are dropped (as a busy link
   * drops them; the guest's protocols resend), and the host side is opened afresh on restore.
   */
  saveState(): unknown {
    return {};
  }

  restoreState(): void {
    this.reset();
  }

  /** This device is gone (the machine stopped or rebooted): frames from the backend are dropped. */
  detach(): void {
    this.backend.start(
      () => {},
      () => {},
    );
  }
}

const ZERO_HDR = new Uint8Array(VIRTIO_NET_HDR_BYTES);

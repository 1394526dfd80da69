// virtio-net (virtio 1.2, "Network Device"): one queue pair, receiveq (0) and transmitq (1), over a
// host backend (passt's socket, a TAP device: src/host/). Features: MAC, STATUS (link up), MTU and
// MRG_RXBUF; and, over a backend that carries the virtio_net_hdr itself (a TAP with IFF_VNET_HDR),
// the checksum and TCP segmentation offloads in both directions (CSUM, HOST_TSO4/6/ECN, GUEST_CSUM,
// GUEST_TSO4/6/ECN), as QEMU offers them over a TAP: the guest then hands over 64 KiB TCP segments
// with the checksum left to the host's kernel, and receives the same, which spares the guest's
// (software) CPU most of its per-packet and per-byte work. Without offloads every frame is at most
// MTU + 18 bytes and the 12-byte header (VERSION_1 layout) is all zeroes apart from num_buffers.
//
// Receive: a frame from the backend is copied once, straight into the guest's posted buffers. With
// MRG_RXBUF a frame may span several buffers (num_buffers says how many); without it, one buffer
// must hold it (Linux posts 1518 + 12 bytes, which an MTU of 1500 always fits, or 64 KiB chains
// with GUEST_TSO). Frames wait in a bounded backlog while the guest has no buffers; when it is full
// the backend is paused (passt's socket stops being read, so TCP backs off) and frames a backend
// still pushes are dropped. A frame whose header asks for an offload the guest did not accept (one
// the backend read before it was told) is dropped.
// Transmit: the guest's buffers go to the backend as views of guest RAM (no copy here); while the
// backend cannot take more, the transmit queue is left alone until it can. With offloads the
// guest's header goes to the TAP as it is (the host kernel checks it and refuses a bad one).
//
// The guest is untrusted: a malformed chain, a frame larger than the MTU (or 64 KiB with TSO)
// allows, a buffer too small for the header, a segmentation type it did not negotiate: that packet
// is dropped and its buffer returned, counted in `stats`.

import { ETH_OVERHEAD, MAX_GSO_FRAME, type NetBackend, type RxOffloads } from '../../host/net-backend.js';

export { MAX_GSO_FRAME, type NetBackend, type RxOffloads } from '../../host/net-backend.js';
import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';
import type { Chain } from './queue.js';

export const VIRTIO_NET_F_CSUM = 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1;
export const VIRTIO_NET_F_MTU = 3;
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_GUEST_TSO4 = 7;
export const VIRTIO_NET_F_GUEST_TSO6 = 8;
export const VIRTIO_NET_F_GUEST_ECN = 9;
export const VIRTIO_NET_F_HOST_TSO4 = 11;
export const VIRTIO_NET_F_HOST_TSO6 = 12;
export const VIRTIO_NET_F_HOST_ECN = 13;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_S_LINK_UP = 1;

/** virtio_net_hdr flags and gso_type values. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** virtio_net_hdr with VERSION_1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
export const VIRTIO_NET_HDR_BYTES = 12;
export const DEFAULT_MTU = 1500;
/**
 * The MTUs a NIC may be given (`mtu=`): IPv4's minimum, and the largest that passt takes (its own
 * default), which the 16-bit MTU field and the receive path (MRG_RXBUF chains) also carry.
 */
export const MIN_MTU = 68;
export const MAX_MTU = 65520;

/** An MTU written in decimal (an `mtu=` setting), or undefined when it is not one from MIN_MTU to MAX_MTU. */
export function mtuFromText(text: string): number | undefined {
  const n = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  return n >= MIN_MTU && n <= MAX_MTU ? n : undefined;
}
const RX = 0;
const TX = 1;
const QUEUE_SIZE = 256;
/** Frames held for a guest that has posted no receive buffers. */
export const RX_BACKLOG = 256;

const NO_OFFLOADS: RxOffloads = { csum: false, tso4: false, tso6: false, ecn: false };

/** Offered over a backend that carries them (QEMU's set over a TAP, less UFO). */
const OFFLOAD_FEATURES = [
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_GUEST_TSO4,
  VIRTIO_NET_F_GUEST_TSO6,
  VIRTIO_NET_F_GUEST_ECN,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_HOST_ECN,
];

export interface VirtioNetOptions {
  mac: Uint8Array;
  backend: NetBackend;
  mtu?: number;
  /** Called when the device needs the run loop to wake (frames for an idle guest). */
  kick?: () => void;
}

/** What the driver negotiated, as the data path needs it (recomputed when the driver's features change). */
interface Mode {
  features: bigint;
  mrg: boolean;
  /** Largest frame (without the virtio header) the guest may be given / may send. */
  rxMax: number;
  txMax: number;
  /** The guest accepted GUEST_CSUM (and the backend gives offloads): received headers pass through. */
  rx: RxOffloads;
  /** The guest accepted CSUM over an offloading backend: its transmit headers pass through. */
  txCsum: boolean;
  txTso4: boolean;
  txTso6: boolean;
  txEcn: boolean;
}

export class VirtioNet extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.NET;
  readonly queueMax = [QUEUE_SIZE, QUEUE_SIZE];
  readonly features: bigint;
  readonly mtu: number;
  readonly backend: NetBackend;
  /** Packet counters (diagnostics and tests). */
  readonly stats = { rxFrames: 0, rxBytes: 0, rxDropped: 0, txFrames: 0, txBytes: 0, txErrors: 0 };
  private readonly backlog: Uint8Array[] = [];
  private paused = false;
  private txBlocked = false;
  private readonly kick: () => void;
  private readonly hdr = new Uint8Array(VIRTIO_NET_HDR_BYTES);
  /** The backend carries offloads in its virtio header (so they are offered). */
  private readonly offloads: boolean;
  private modeCache: Mode | undefined;
  /** Scratch for the buffers of the frame being received and the pieces of the one being sent. */
  private readonly rxHeads = new Uint16Array(QUEUE_SIZE);
  private readonly rxLens = new Uint32Array(QUEUE_SIZE);
  private readonly txPieces: Uint8Array[] = [];

  constructor(opts: VirtioNetOptions) {
    super(12);
    if (opts.mac.length !== 6) throw new Error('virtio-net: a MAC address has 6 bytes');
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    this.backend = opts.backend;
    this.offloads = this.backend.vnetHdr && this.backend.setOffloads !== undefined;
    let f = 0n;
    const bits = [VIRTIO_NET_F_MTU, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_STATUS];
    if (this.offloads) bits.push(...OFFLOAD_FEATURES);
    for (const b of bits) f |= 1n << BigInt(b);
    this.features = f;
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

  /** Largest frame (without the virtio header) the guest can be given without segmentation offload. */
  get maxFrame(): number {
    return this.mtu + ETH_OVERHEAD;
  }

  get backlogged(): number {
    return this.backlog.length;
  }

  /** One line for diagnostics (TYPEVISOR_STATS): packet counts and what the driver negotiated. */
  describeStats(): string {
    const s = this.stats;
    const avg = (bytes: number, frames: number): string => (frames ? (bytes / frames).toFixed(0) : '-');
    const m = this.attached ? this.mode() : undefined;
    const on = m
      ? [
          m.mrg && 'mrg_rxbuf',
          m.txCsum && 'csum',
          m.txTso4 && 'host_tso4',
          m.txTso6 && 'host_tso6',
          m.rx.csum && 'guest_csum',
          m.rx.tso4 && 'guest_tso4',
          m.rx.tso6 && 'guest_tso6',
        ]
          .filter(Boolean)
          .join(',')
      : '';
    return (
      `tx ${s.txFrames} frames (${avg(s.txBytes, s.txFrames)} bytes on average), ${s.txErrors} errors; ` +
      `rx ${s.rxFrames} frames (${avg(s.rxBytes, s.rxFrames)} bytes on average), ${s.rxDropped} dropped; ` +
      `negotiated: ${on || 'none'}`
    );
  }

  private mode(): Mode {
    const features = this.host.driverFeatures;
    const c = this.modeCache;
    if (c && c.features === features) return c;
    const has = (bit: number): boolean => this.offloads && ((features >> BigInt(bit)) & 1n) === 1n;
    const csum = has(VIRTIO_NET_F_GUEST_CSUM);
    const rx: RxOffloads = csum
      ? {
          csum,
          tso4: has(VIRTIO_NET_F_GUEST_TSO4),
          tso6: has(VIRTIO_NET_F_GUEST_TSO6),
          ecn: has(VIRTIO_NET_F_GUEST_ECN),
        }
      : NO_OFFLOADS;
    const txCsum = has(VIRTIO_NET_F_CSUM);
    const txTso4 = txCsum && has(VIRTIO_NET_F_HOST_TSO4);
    const txTso6 = txCsum && has(VIRTIO_NET_F_HOST_TSO6);
    const m: Mode = {
      features,
      mrg: ((features >> BigInt(VIRTIO_NET_F_MRG_RXBUF)) & 1n) === 1n,
      rxMax: rx.tso4 || rx.tso6 ? MAX_GSO_FRAME : this.maxFrame,
      txMax: txTso4 || txTso6 ? MAX_GSO_FRAME : this.maxFrame,
      rx,
      txCsum,
      txTso4,
      txTso6,
      txEcn: (txTso4 || txTso6) && has(VIRTIO_NET_F_HOST_ECN),
    };
    this.modeCache = m;
    return m;
  }

  /** A frame from the backend (with its virtio header when the backend has one). */
  receive(frame: Uint8Array): void {
    const len = frame.length - (this.backend.vnetHdr ? VIRTIO_NET_HDR_BYTES : 0);
    if (!this.attached || !this.host.active || len <= 0 || len > this.mode().rxMax) {
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
    const m = this.mode();
    let any = false;
    while (this.backlog.length > 0) {
      const r = this.deliverOne(this.backlog[0], m);
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
   * The virtio header the guest gets for a frame from a vnet-header backend (into this.hdr, apart
   * from num_buffers); false when the frame needs an offload the guest did not accept.
   */
  private rxHeader(frame: Uint8Array, m: Mode): boolean {
    const flags = frame[0];
    const gso = frame[1];
    if (!m.rx.csum) {
      // No offloads: only a frame that needs nothing from the guest (DATA_VALID is only a hint).
      this.hdr.fill(0);
      return (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0 && gso === VIRTIO_NET_HDR_GSO_NONE;
    }
    const type = gso & ~VIRTIO_NET_HDR_GSO_ECN;
    if (
      type !== VIRTIO_NET_HDR_GSO_NONE &&
      !(type === VIRTIO_NET_HDR_GSO_TCPV4 ? m.rx.tso4 : type === VIRTIO_NET_HDR_GSO_TCPV6 && m.rx.tso6)
    ) {
      return false;
    }
    if (gso & VIRTIO_NET_HDR_GSO_ECN && !m.rx.ecn) return false;
    this.hdr.set(frame.subarray(0, VIRTIO_NET_HDR_BYTES - 2));
    return true;
  }

  /** Return the buffers taken so far for a frame empty (the driver counts a length error) and drop it. */
  private rxFail(n: number, extra: Chain | undefined): 'done' {
    const vq = this.queue(RX);
    for (let i = 0; i < n; i++) vq.push(this.rxHeads[i], 0);
    if (extra) vq.push(extra.head, 0);
    this.stats.rxDropped++;
    return 'done';
  }

  /**
   * Write one frame into the guest's buffers: 'done' (delivered or dropped) or 'wait' (not enough
   * buffers posted yet; nothing was consumed).
   */
  private deliverOne(frame: Uint8Array, m: Mode, retries = 4): 'done' | 'wait' {
    const vq = this.queue(RX);
    let body = frame;
    if (this.backend.vnetHdr) {
      if (!this.rxHeader(frame, m)) {
        this.stats.rxDropped++;
        return 'done';
      }
      body = frame.subarray(VIRTIO_NET_HDR_BYTES);
    } else {
      this.hdr.fill(0);
    }
    const total = VIRTIO_NET_HDR_BYTES + body.length;
    const start = vq.lastAvail;
    let n = 0;
    let pos = 0;
    let first: Chain | undefined;
    while (pos < total) {
      const chain = vq.pop();
      if (!chain) {
        // Every buffer the queue can hold is too little: this frame never fits.
        if (n >= vq.size) return this.rxFail(n, undefined);
        // Not enough buffers: put them back (nothing is visible to the driver before push()).
        vq.lastAvail = start;
        if (vq.eventIdx) {
          // Ask to be notified when the driver publishes more than it has now. (Not at `start`: when
          // some buffers were taken, the driver has published past it and would never notify again,
          // and a frame of several buffers, a 64 KiB one, waited until another frame came.)
          const published = vq.availIdx();
          vq.setAvailEvent(published);
          // A driver on another thread (kvm) may have published more meanwhile: look again.
          if (vq.availIdx() !== published && retries > 0) return this.deliverOne(frame, m, retries - 1);
        }
        return 'wait';
      }
      if (chain.error) return this.rxFail(n, chain);
      if (!first && chain.writableLen < (m.mrg ? VIRTIO_NET_HDR_BYTES : total)) return this.rxFail(n, chain);
      // The header goes in last, once num_buffers is known; the first chain starts with room for it.
      const skip = first ? 0 : VIRTIO_NET_HDR_BYTES;
      first ??= chain;
      const w = vq.writeBytes(chain, body.subarray(pos - (pos === 0 ? 0 : VIRTIO_NET_HDR_BYTES)), skip);
      if (pos === 0) pos = VIRTIO_NET_HDR_BYTES;
      pos += w;
      this.rxHeads[n] = chain.head;
      this.rxLens[n] = w + skip;
      n++;
      if (w + skip === 0) return this.rxFail(n, undefined); // an empty chain would make this loop long
    }
    this.hdr[10] = n & 0xff;
    this.hdr[11] = n >> 8;
    vq.writeBytes(first!, this.hdr);
    for (let i = 0; i < n; i++) vq.push(this.rxHeads[i], this.rxLens[i]);
    this.stats.rxFrames++;
    this.stats.rxBytes += body.length;
    return 'done';
  }

  /** Whether a transmitted chain's header asks only for offloads the guest negotiated. */
  private txHeaderOk(chain: Chain, m: Mode, len: number): boolean {
    const mem = this.host.mem;
    const seg = chain.readable[0];
    let flags: number;
    let gso: number;
    if (seg.len >= 2) {
      const o = seg.addr - mem.ramBase;
      flags = mem.u8[o];
      gso = mem.u8[o + 1];
    } else {
      const h = this.queue(TX).readBytes(chain, 0, 2);
      flags = h[0];
      gso = h[1];
    }
    if (flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) return false;
    const type = gso & ~VIRTIO_NET_HDR_GSO_ECN;
    if (type === VIRTIO_NET_HDR_GSO_NONE) return gso === type && len <= this.maxFrame;
    if (type === VIRTIO_NET_HDR_GSO_TCPV4 ? !m.txTso4 : type !== VIRTIO_NET_HDR_GSO_TCPV6 || !m.txTso6)
      return false;
    return (gso & VIRTIO_NET_HDR_GSO_ECN) === 0 || m.txEcn;
  }

  notify(q: number): void {
    if (q === RX) {
      this.deliver();
      return;
    }
    if (q !== TX || this.txBlocked) return;
    const vq = this.queue(TX);
    const mem = this.host.mem;
    const m = this.mode();
    const vnet = this.backend.vnetHdr;
    const pieces = this.txPieces;
    let any = false;
    for (;;) {
      const chain = vq.pop();
      if (!chain) break;
      any = true;
      const len = chain.readableLen - VIRTIO_NET_HDR_BYTES;
      if (chain.error || len <= 0 || len > m.txMax || (m.txCsum && !this.txHeaderOk(chain, m, len))) {
        this.stats.txErrors++;
        vq.push(chain.head, 0);
        continue;
      }
      // The frame as views of guest RAM. With offloads the guest's header goes along; otherwise a
      // backend that takes a virtio header gets zeroes whatever the driver wrote there.
      pieces.length = 0;
      let skip = VIRTIO_NET_HDR_BYTES;
      if (vnet) {
        if (m.txCsum) skip = 0;
        else pieces.push(ZERO_HDR);
      }
      for (const seg of chain.readable) {
        if (skip >= seg.len) {
          skip -= seg.len;
          continue;
        }
        const view = mem.slice(seg.addr + skip, seg.len - skip);
        skip = 0;
        if (view) pieces.push(view);
      }
      const more = this.backend.transmit(pieces, len + (vnet ? VIRTIO_NET_HDR_BYTES : 0));
      vq.push(chain.head, 0);
      this.stats.txFrames++;
      this.stats.txBytes += len;
      if (!more) {
        this.txBlocked = true;
        break;
      }
    }
    pieces.length = 0;
    if (any) this.host.usedBuffers(TX);
  }

  activate(): void {
    this.backlog.length = 0;
    if (this.offloads) this.backend.setOffloads!(this.mode().rx);
  }

  override reset(): void {
    this.backlog.length = 0;
    this.txBlocked = false;
    this.modeCache = undefined;
    if (this.offloads) this.backend.setOffloads!(NO_OFFLOADS);
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

  /** Take the frames the backend has ready now (the run loop calls this between vCPU slices). */
  poll(): void {
    if (this.backend.poll && this.attached && this.host.active) this.backend.poll();
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

// virtio-vsock (virtio 1.2, "Socket Device"): stream sockets between the guest (its CID in the
// config space) and the host (CID 2). Queues: rx (0) carries packets to the guest, tx (1) the
// guest's packets, event (2) the TRANSPORT_RESET event. Every packet starts with a 44-byte
// little-endian header; only the STREAM type exists here (no SEQPACKET).
//
// The host end of each connection is a byte stream (a node:stream Duplex, in practice a Unix
// socket; see host/vsock-uds.ts for Firecracker's convention). A guest connecting to host port P
// goes through `connectHost(P)`; the host side opens a connection to a guest port with
// connectToGuest().
//
// Flow control is credit based in both directions (each header carries the sender's buf_alloc and
// fwd_cnt):
// - guest -> host: we advertise BUF_ALLOC bytes per connection and count as forwarded (fwd_cnt)
//   only what the host stream has flushed, so at most BUF_ALLOC bytes of a connection wait in host
//   memory. A guest that sends beyond its credit breaks the protocol: that connection is reset.
// - host -> guest: we never send more than the guest's credit (its buf_alloc less what it has not
//   consumed yet); what the host writes meanwhile waits here, and the host stream is paused once
//   MAX_PENDING bytes wait, resumed when half of that has gone to the guest. With no credit left we
//   ask for an update (CREDIT_REQUEST).
// Control packets that wait for receive buffers are bounded too: past MAX_CONTROL the device stops
// taking the guest's tx queue until the guest posts receive buffers.
//
// The guest is untrusted: a malformed chain, a header with the wrong source CID, an unknown type or
// op, a length beyond the buffer fail that packet only (a reply RST where the protocol has one);
// nothing throws out of here.

import type { Duplex } from 'node:stream';
import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';
import type { Chain } from './queue.js';

export const VSOCK_HOST_CID = 2;
export const VSOCK_HDR_LEN = 44;
export const VSOCK_TYPE_STREAM = 1;
export const VSOCK_OP = {
  REQUEST: 1,
  RESPONSE: 2,
  RST: 3,
  SHUTDOWN: 4,
  RW: 5,
  CREDIT_UPDATE: 6,
  CREDIT_REQUEST: 7,
} as const;
/** SHUTDOWN flags: the sender will receive no more / send no more. */
export const VSOCK_SHUTDOWN_RCV = 1;
export const VSOCK_SHUTDOWN_SEND = 2;
export const VSOCK_EVENT_TRANSPORT_RESET = 0;
/** VIRTIO_VSOCK_F_STREAM (virtio 1.2): stream sockets (also implied when nothing is negotiated). */
export const VIRTIO_VSOCK_F_STREAM = 0;

/** Receive buffer we advertise per connection (guest -> host bytes not yet flushed to the host). */
export const VSOCK_BUF_ALLOC = 256 * 1024;
/** Host -> guest bytes held per connection before the host stream is paused. */
export const VSOCK_MAX_PENDING = 256 * 1024;
/** Largest payload of one packet to the guest (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
const MAX_PKT_PAYLOAD = 64 * 1024;
/** Control packets waiting for receive buffers before the tx queue is left alone. */
const MAX_CONTROL = 256;
/** Connections per device (a guest cannot make the host open sockets without bound). */
export const VSOCK_MAX_CONNECTIONS = 1024;
/** A host-initiated connection the guest neither accepts nor refuses in this time fails. */
const CONNECT_TIMEOUT_MS = 10_000;
/** After we shut a connection down both ways, the guest has this long to answer RST. */
const CLOSE_TIMEOUT_MS = 5_000;
/** Local ports for host-initiated connections are taken from here up (as Firecracker does). */
const FIRST_LOCAL_PORT = 1 << 30;

const RX = 0;
const TX = 1;
const EVT = 2;

/** The reason a CID cannot be a guest's, or undefined when it can (3 to 2^32-2). */
export function guestCidProblem(cid: number): string | undefined {
  if (!Number.isSafeInteger(cid) || cid < 3 || cid >= 0xffff_ffff) {
    return `expected a guest CID from 3 to ${0xffff_ffff - 1} (0 to 2 are reserved: hypervisor, loopback, host; ${0xffff_ffff} means any), got ${cid}`;
  }
  return undefined;
}

export interface VsockHeader {
  srcCid: number;
  dstCid: number;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

export function encodeVsockHeader(h: VsockHeader): Uint8Array {
  const b = new Uint8Array(VSOCK_HDR_LEN);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, h.srcCid >>> 0, true);
  dv.setUint32(4, Math.floor(h.srcCid / 0x1_0000_0000) >>> 0, true);
  dv.setUint32(8, h.dstCid >>> 0, true);
  dv.setUint32(12, Math.floor(h.dstCid / 0x1_0000_0000) >>> 0, true);
  dv.setUint32(16, h.srcPort >>> 0, true);
  dv.setUint32(20, h.dstPort >>> 0, true);
  dv.setUint32(24, h.len >>> 0, true);
  dv.setUint16(28, h.type, true);
  dv.setUint16(30, h.op, true);
  dv.setUint32(32, h.flags >>> 0, true);
  dv.setUint32(36, h.bufAlloc >>> 0, true);
  dv.setUint32(40, h.fwdCnt >>> 0, true);
  return b;
}

export function decodeVsockHeader(b: Uint8Array): VsockHeader {
  const dv = new DataView(b.buffer, b.byteOffset, VSOCK_HDR_LEN);
  const u64 = (o: number): number => dv.getUint32(o + 4, true) * 0x1_0000_0000 + dv.getUint32(o, true);
  return {
    srcCid: u64(0),
    dstCid: u64(8),
    srcPort: dv.getUint32(16, true),
    dstPort: dv.getUint32(20, true),
    len: dv.getUint32(24, true),
    type: dv.getUint16(28, true),
    op: dv.getUint16(30, true),
    flags: dv.getUint32(32, true),
    bufAlloc: dv.getUint32(36, true),
    fwdCnt: dv.getUint32(40, true),
  };
}

/** What the host side learns about a connection it asked for (connectToGuest). */
export interface GuestConnectHandlers {
  /** The guest accepted; called before any guest byte is written to the stream. */
  accepted(localPort: number): void;
  /** The guest refused (RST), did not answer, or the device went away; the stream is left to the caller. */
  refused(reason: string): void;
}

export interface VirtioVsockOptions {
  /** The guest's CID (3 to 2^32-2). */
  cid: number;
  /**
   * Open the host end for a guest connecting to host port `port`; rejects when nobody listens there
   * (the guest gets RST). Without it every guest connection is refused.
   */
  connectHost?: (port: number) => Promise<Duplex>;
  /** Called after host activity queued packets for the guest (wake a sleeping vCPU). */
  wake?: () => void;
  /** Diagnostics. */
  log?: (msg: string) => void;
}

type ConnState = 'connecting-in' | 'connecting-out' | 'established' | 'closing';

interface Conn {
  key: string;
  /** Host-side port (the guest's dst_port). */
  localPort: number;
  /** Guest-side port. */
  peerPort: number;
  state: ConnState;
  stream?: Duplex;
  /** guest -> host: bytes received, and bytes the host stream has taken (u32, wrapping). */
  rxCnt: number;
  fwdCnt: number;
  /** fwd_cnt as the guest last heard it. */
  fwdCntSent: number;
  creditUpdateQueued: boolean;
  /** host -> guest: bytes waiting, bytes sent (u32, wrapping), the guest's buffer and its fwd_cnt. */
  pending: Buffer[];
  pendingBytes: number;
  txCnt: number;
  peerBufAlloc: number;
  peerFwdCnt: number;
  creditRequested: boolean;
  paused: boolean;
  /** The host stream ended (no more host bytes) / closed entirely. */
  hostEnded: boolean;
  /** SHUTDOWN flags we sent and the guest sent. */
  shutdownSent: number;
  peerShutdown: number;
  timer?: NodeJS.Timeout;
  handlers?: GuestConnectHandlers;
}

interface Control {
  op: number;
  flags: number;
  /** For packets of a connection: its fields at the time the packet is written. */
  conn?: Conn;
  /** For a reply to a packet with no connection: the ports and CIDs, from the guest's header. */
  srcCid?: number;
  srcPort?: number;
  dstPort?: number;
}

export class VirtioVsock extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.VSOCK;
  readonly queueMax = [256, 256, 16];
  readonly features = 1n << BigInt(VIRTIO_VSOCK_F_STREAM);
  readonly cid: number;
  /** Packets the device refused (malformed, wrong CID, unknown op...): diagnostics and tests. */
  droppedPackets = 0;
  private readonly conns = new Map<string, Conn>();
  private readonly control: Control[] = [];
  private readonly connectHost?: (port: number) => Promise<Duplex>;
  private readonly wake: () => void;
  private readonly log: (msg: string) => void;
  private nextLocalPort = FIRST_LOCAL_PORT;
  private transportResetPending = false;
  private creditCheck: NodeJS.Immediate | undefined;
  /** Bumped on reset: a host connect that completes after a reset belongs to an older generation. */
  private generation = 0;
  private logged = 0;

  constructor(opts: VirtioVsockOptions) {
    super(8);
    const bad = guestCidProblem(opts.cid);
    if (bad) throw new Error(`virtio-vsock: ${bad}`);
    this.cid = opts.cid;
    this.connectHost = opts.connectHost;
    this.wake = opts.wake ?? (() => {});
    this.log = opts.log ?? (() => {});
    this.cfg.setUint32(0, opts.cid >>> 0, true);
    this.cfg.setUint32(4, 0, true);
  }

  /** Open connections (diagnostics and tests). */
  get connectionCount(): number {
    return this.conns.size;
  }

  // ---- host side -----------------------------------------------------------------------------------

  /**
   * Connect `stream` to the guest's listener on `port`. `handlers.accepted` runs when the guest
   * answers RESPONSE (the stream then carries the connection), `refused` on RST or no answer.
   */
  connectToGuest(port: number, stream: Duplex, handlers: GuestConnectHandlers): void {
    if (!this.attached || !this.host.active || !this.queue(RX).ready) {
      handlers.refused("the guest's vsock driver is not running");
      return;
    }
    if (this.conns.size >= VSOCK_MAX_CONNECTIONS) {
      handlers.refused(`too many vsock connections (at most ${VSOCK_MAX_CONNECTIONS})`);
      return;
    }
    const localPort = this.allocLocalPort(port >>> 0);
    const conn = this.newConn(localPort, port >>> 0, 'connecting-out');
    conn.handlers = handlers;
    conn.stream = stream;
    conn.timer = setTimeout(() => {
      if (this.conns.get(conn.key) !== conn || conn.state !== 'connecting-out') return;
      this.queueControl({ op: VSOCK_OP.RST, flags: 0, conn });
      this.forget(conn);
      handlers.refused(`the guest did not answer within ${CONNECT_TIMEOUT_MS / 1000} s`);
      this.flush();
    }, CONNECT_TIMEOUT_MS);
    conn.timer.unref?.();
    this.queueControl({ op: VSOCK_OP.REQUEST, flags: 0, conn });
    this.flush();
  }

  /** The VM stops: every host stream is closed. */
  close(): void {
    this.closeAll('the VM stopped');
  }

  /** Drop every connection and tell the guest (event queue TRANSPORT_RESET), e.g. after a restore. */
  transportReset(): void {
    this.closeAll('transport reset');
    this.transportResetPending = true;
    this.sendEvents();
  }

  private allocLocalPort(peerPort: number): number {
    for (;;) {
      const p = this.nextLocalPort;
      this.nextLocalPort = p >= 0xffff_fffe ? FIRST_LOCAL_PORT : p + 1;
      if (!this.conns.has(`${p}:${peerPort}`)) return p;
    }
  }

  private newConn(localPort: number, peerPort: number, state: ConnState): Conn {
    const conn: Conn = {
      key: `${localPort}:${peerPort}`,
      localPort,
      peerPort,
      state,
      rxCnt: 0,
      fwdCnt: 0,
      fwdCntSent: 0,
      creditUpdateQueued: false,
      pending: [],
      pendingBytes: 0,
      txCnt: 0,
      peerBufAlloc: 0,
      peerFwdCnt: 0,
      creditRequested: false,
      paused: false,
      hostEnded: false,
      shutdownSent: 0,
      peerShutdown: 0,
    };
    this.conns.set(conn.key, conn);
    return conn;
  }

  /** Start moving bytes between an established connection and its host stream. */
  private attachStream(conn: Conn): void {
    const s = conn.stream!;
    s.on('data', (chunk: Buffer | string) => {
      if (this.conns.get(conn.key) !== conn) return;
      if (conn.peerShutdown & VSOCK_SHUTDOWN_RCV) return; // the guest takes no more
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (b.length === 0) return;
      conn.pending.push(b);
      conn.pendingBytes += b.length;
      if (conn.pendingBytes >= VSOCK_MAX_PENDING && !conn.paused) {
        conn.paused = true;
        s.pause();
      }
      this.flush();
    });
    s.on('end', () => {
      conn.hostEnded = true;
      this.maybeShutdown(conn);
      this.flush();
    });
    s.on('close', () => {
      conn.hostEnded = true;
      if (this.conns.get(conn.key) !== conn) return;
      // The host end is gone: whatever still waits goes to the guest, then it hears of it.
      this.maybeShutdown(conn, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
      this.flush();
    });
    s.on('error', (e: Error) =>
      this.note(`vsock ${conn.localPort}<->${conn.peerPort}: host stream: ${e.message}`),
    );
    s.resume(); // a stream paused by its previous reader (the CONNECT line) flows from here
    if (s.destroyed || s.readableEnded) {
      // The host gave up while the guest was accepting: its events have passed already.
      conn.hostEnded = true;
      this.maybeShutdown(conn, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
    }
  }

  /** Tell the guest the host has finished sending (and, with RCV, receiving) once nothing waits. */
  private maybeShutdown(conn: Conn, flags = VSOCK_SHUTDOWN_SEND): void {
    if (this.conns.get(conn.key) !== conn || conn.state !== 'established') return;
    if (conn.pendingBytes > 0 && !(conn.peerShutdown & VSOCK_SHUTDOWN_RCV)) return;
    const closed = conn.stream?.destroyed ?? true;
    const want = (closed ? VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND : flags) | conn.shutdownSent;
    if (!conn.hostEnded || want === conn.shutdownSent) return;
    conn.shutdownSent = want;
    this.queueControl({ op: VSOCK_OP.SHUTDOWN, flags: want, conn });
    if (want === (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) this.startClosing(conn);
  }

  /** Shut down both ways: the guest answers RST; if it does not in time, we reset it. */
  private startClosing(conn: Conn): void {
    conn.state = 'closing';
    clearTimeout(conn.timer);
    conn.timer = setTimeout(() => {
      if (this.conns.get(conn.key) !== conn) return;
      this.queueControl({ op: VSOCK_OP.RST, flags: 0, conn });
      this.forget(conn);
      this.flush();
    }, CLOSE_TIMEOUT_MS);
    conn.timer.unref?.();
  }

  /** Remove a connection; its host stream is ended (what the guest sent is still flushed). */
  private forget(conn: Conn, destroy = false): void {
    if (this.conns.get(conn.key) !== conn) return;
    this.conns.delete(conn.key);
    clearTimeout(conn.timer);
    conn.pending = [];
    conn.pendingBytes = 0;
    const s = conn.stream;
    if (s && conn.state !== 'connecting-out') {
      // What the guest sent still goes to the host; then the stream is closed (the guest side is gone).
      if (destroy || s.writableFinished) s.destroy();
      else if (s.writableEnded) s.once('finish', () => s.destroy());
      else s.end(() => s.destroy());
    }
  }

  private closeAll(reason: string): void {
    this.generation++;
    if (this.creditCheck) clearImmediate(this.creditCheck);
    this.creditCheck = undefined;
    for (const conn of [...this.conns.values()]) {
      const h = conn.state === 'connecting-out' ? conn.handlers : undefined;
      this.forget(conn, true);
      h?.refused(reason);
    }
    this.control.length = 0;
  }

  // ---- guest side ----------------------------------------------------------------------------------

  notify(q: number): void {
    if (q === TX) this.processTx();
    else if (q === RX) this.flush(false);
    else if (q === EVT) this.sendEvents();
  }

  activate(): void {
    this.sendEvents();
  }

  override reset(): void {
    // The driver reset the device: every connection is gone on its side too.
    this.closeAll('the guest reset its vsock device');
    this.transportResetPending = false;
  }

  saveState(): unknown {
    // Connections live in host sockets that a snapshot cannot carry: after a restore the guest is
    // told (TRANSPORT_RESET) and drops them.
    return {};
  }

  restoreState(): void {
    this.closeAll('restored from a snapshot');
    this.transportResetPending = true;
    this.sendEvents();
  }

  private note(msg: string): void {
    if (this.logged++ < 20) this.log(msg + (this.logged === 20 ? ' (further ones are not logged)' : ''));
  }

  private drop(reason: string): void {
    this.droppedPackets++;
    this.note(`vsock: packet dropped: ${reason}`);
  }

  private processTx(): void {
    const vq = this.queue(TX);
    let any = false;
    while (this.control.length < MAX_CONTROL) {
      const chain = vq.pop();
      if (!chain) break;
      any = true;
      this.handleTx(chain);
      vq.push(chain.head, 0);
    }
    if (any) this.host.usedBuffers(TX);
    this.flush(false);
  }

  private handleTx(chain: Chain): void {
    const vq = this.queue(TX);
    if (chain.error) {
      this.droppedPackets++;
      return;
    }
    if (chain.readableLen < VSOCK_HDR_LEN) {
      this.drop(`${chain.readableLen} bytes is shorter than a packet header`);
      return;
    }
    const h = decodeVsockHeader(vq.readBytes(chain, 0, VSOCK_HDR_LEN));
    if (h.srcCid !== this.cid) {
      this.drop(`source CID ${h.srcCid} is not the guest's (${this.cid})`);
      return;
    }
    if (h.len > chain.readableLen - VSOCK_HDR_LEN) {
      this.drop(`length ${h.len} is beyond the ${chain.readableLen - VSOCK_HDR_LEN} bytes of the buffer`);
      return;
    }
    const reply = (op: number): void => {
      if (h.op !== VSOCK_OP.RST)
        this.queueControl({ op, flags: 0, srcCid: h.dstCid, srcPort: h.dstPort, dstPort: h.srcPort });
    };
    if (h.dstCid !== VSOCK_HOST_CID) {
      this.drop(`destination CID ${h.dstCid}: only the host (CID ${VSOCK_HOST_CID}) is reachable`);
      reply(VSOCK_OP.RST);
      return;
    }
    if (h.type !== VSOCK_TYPE_STREAM) {
      this.drop(`socket type ${h.type} (only STREAM, 1)`);
      reply(VSOCK_OP.RST);
      return;
    }
    const conn = this.conns.get(`${h.dstPort}:${h.srcPort}`);
    if (!conn) {
      if (h.op === VSOCK_OP.REQUEST) this.guestConnect(h);
      else if (h.op !== VSOCK_OP.RST) reply(VSOCK_OP.RST);
      return;
    }
    // Every header carries the guest's receive credit.
    conn.peerBufAlloc = h.bufAlloc;
    conn.peerFwdCnt = h.fwdCnt;
    conn.creditRequested = false;
    switch (h.op) {
      case VSOCK_OP.RESPONSE:
        if (conn.state !== 'connecting-out') return this.resetConn(conn, 'unexpected RESPONSE');
        clearTimeout(conn.timer);
        conn.state = 'established';
        conn.handlers?.accepted(conn.localPort);
        this.attachStream(conn);
        return;
      case VSOCK_OP.RW: {
        if (conn.state !== 'established' && conn.state !== 'closing')
          return this.resetConn(conn, 'data before the connection was established');
        if (conn.peerShutdown & VSOCK_SHUTDOWN_SEND)
          return this.drop('data after the guest shut down sending');
        const free = VSOCK_BUF_ALLOC - ((conn.rxCnt - conn.fwdCnt) >>> 0);
        if (h.len > free)
          return this.resetConn(conn, `the guest sent ${h.len} bytes with ${free} bytes of credit`);
        if (h.len === 0) return;
        const data = Buffer.from(vq.readBytes(chain, VSOCK_HDR_LEN, h.len));
        conn.rxCnt = (conn.rxCnt + data.length) >>> 0;
        const s = conn.stream;
        if (!s || s.destroyed || s.writableEnded) {
          // Nobody reads any more: count it as taken.
          this.forwarded(conn, data.length);
          return;
        }
        s.write(data, () => this.forwarded(conn, data.length));
        return;
      }
      case VSOCK_OP.CREDIT_UPDATE:
        return;
      case VSOCK_OP.CREDIT_REQUEST:
        this.queueCreditUpdate(conn);
        return;
      case VSOCK_OP.SHUTDOWN: {
        const f = h.flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
        conn.peerShutdown |= f;
        if (f & VSOCK_SHUTDOWN_RCV) {
          conn.pending = [];
          conn.pendingBytes = 0;
          if (conn.paused) {
            conn.paused = false;
            conn.stream?.resume();
          }
        }
        if (f & VSOCK_SHUTDOWN_SEND && conn.stream && !conn.stream.writableEnded) conn.stream.end();
        if (conn.peerShutdown === (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) {
          // Both ways shut: the connection is over; RST tells the guest it may forget it.
          this.queueControl({ op: VSOCK_OP.RST, flags: 0, conn });
          this.forget(conn);
        } else this.maybeShutdown(conn);
        return;
      }
      case VSOCK_OP.RST: {
        const h2 = conn.state === 'connecting-out' ? conn.handlers : undefined;
        this.forget(conn);
        h2?.refused('the guest refused the connection (nobody listens on that port)');
        return;
      }
      case VSOCK_OP.REQUEST:
        return this.resetConn(conn, 'REQUEST for a connection that exists');
      default:
        this.drop(`unknown op ${h.op}`);
    }
  }

  /** The host stream took `n` guest bytes: credit them back, telling the guest when it runs low. */
  private forwarded(conn: Conn, n: number): void {
    conn.fwdCnt = (conn.fwdCnt + n) >>> 0;
    if (this.conns.get(conn.key) !== conn || this.creditCheck) return;
    // Write callbacks come in bursts: decide once the burst is over, so one update carries it all.
    this.creditCheck = setImmediate(() => {
      this.creditCheck = undefined;
      let any = false;
      for (const c of this.conns.values()) {
        const guestSeesFree = VSOCK_BUF_ALLOC - ((c.rxCnt - c.fwdCntSent) >>> 0);
        if (c.fwdCnt !== c.fwdCntSent && guestSeesFree < VSOCK_BUF_ALLOC / 2) {
          this.queueCreditUpdate(c);
          any = true;
        }
      }
      if (any) this.flush();
    });
  }

  private queueCreditUpdate(conn: Conn): void {
    if (conn.creditUpdateQueued) return;
    conn.creditUpdateQueued = true;
    this.queueControl({ op: VSOCK_OP.CREDIT_UPDATE, flags: 0, conn });
  }

  private resetConn(conn: Conn, why: string): void {
    this.drop(`vsock ${conn.localPort}<->${conn.peerPort}: ${why}; connection reset`);
    this.queueControl({ op: VSOCK_OP.RST, flags: 0, conn });
    const h = conn.state === 'connecting-out' ? conn.handlers : undefined;
    this.forget(conn, true);
    h?.refused(why);
  }

  /** The guest connects to host port h.dstPort. */
  private guestConnect(h: VsockHeader): void {
    const rst = (): void =>
      this.queueControl({
        op: VSOCK_OP.RST,
        flags: 0,
        srcCid: VSOCK_HOST_CID,
        srcPort: h.dstPort,
        dstPort: h.srcPort,
      });
    if (!this.connectHost || this.conns.size >= VSOCK_MAX_CONNECTIONS) {
      rst();
      return;
    }
    const conn = this.newConn(h.dstPort, h.srcPort, 'connecting-in');
    conn.peerBufAlloc = h.bufAlloc;
    conn.peerFwdCnt = h.fwdCnt;
    const gen = this.generation;
    let p: Promise<Duplex>;
    try {
      p = this.connectHost(h.dstPort);
    } catch (e) {
      p = Promise.reject(e as Error);
    }
    p.then(
      (stream) => {
        if (gen !== this.generation || this.conns.get(conn.key) !== conn) {
          stream.destroy();
          return;
        }
        conn.stream = stream;
        conn.state = 'established';
        this.queueControl({ op: VSOCK_OP.RESPONSE, flags: 0, conn });
        this.attachStream(conn);
        this.flush();
      },
      (e: Error) => {
        if (gen !== this.generation || this.conns.get(conn.key) !== conn) return;
        this.note(`vsock: guest connection to host port ${h.dstPort} refused: ${e.message}`);
        this.queueControl({ op: VSOCK_OP.RST, flags: 0, conn });
        this.forget(conn);
        this.flush();
      },
    );
  }

  // ---- to the guest ----------------------------------------------------------------------------------

  private queueControl(c: Control): void {
    this.control.push(c);
  }

  private header(c: Conn | undefined, op: number, flags: number, len: number, ports?: Control): Uint8Array {
    return encodeVsockHeader({
      srcCid: ports?.srcCid ?? VSOCK_HOST_CID,
      dstCid: this.cid,
      srcPort: c ? c.localPort : (ports?.srcPort ?? 0),
      dstPort: c ? c.peerPort : (ports?.dstPort ?? 0),
      len,
      type: VSOCK_TYPE_STREAM,
      op,
      flags,
      bufAlloc: c ? VSOCK_BUF_ALLOC : 0,
      fwdCnt: c ? c.fwdCnt : 0,
    });
  }

  /** Bytes we may send the guest on `conn` now. */
  private credit(conn: Conn): number {
    const inFlight = (conn.txCnt - conn.peerFwdCnt) >>> 0;
    return Math.max(0, Math.min(conn.pendingBytes, conn.peerBufAlloc - inFlight));
  }

  /**
   * Write waiting packets into the guest's receive buffers: control packets first, then data,
   * one packet per connection in turn. `fromHost`: we were called from a host event (wake the vCPU).
   */
  private flush(fromHost = true): void {
    if (!this.attached || !this.host.active) return;
    const vq = this.queue(RX);
    if (!vq.ready) return;
    let any = false;
    let progress = true;
    while (progress) {
      progress = false;
      while (this.control.length > 0) {
        const chain = this.popRx();
        if (!chain) break;
        any = true;
        const c = this.control.shift()!;
        const conn = c.conn;
        if (conn) {
          if (c.op === VSOCK_OP.CREDIT_UPDATE) conn.creditUpdateQueued = false;
          conn.fwdCntSent = conn.fwdCnt;
        }
        const hdr = this.header(conn, c.op, c.flags, 0, c);
        vq.writeBytes(chain, hdr);
        vq.push(chain.head, VSOCK_HDR_LEN);
      }
      if (this.control.length > 0) break; // no receive buffers left
      for (const conn of this.conns.values()) {
        if (conn.state !== 'established' && conn.state !== 'closing') continue;
        if (conn.pendingBytes === 0) continue;
        const n0 = this.credit(conn);
        if (n0 === 0) {
          if (!conn.creditRequested) {
            conn.creditRequested = true;
            this.queueControl({ op: VSOCK_OP.CREDIT_REQUEST, flags: 0, conn });
            progress = true;
          }
          continue;
        }
        const chain = this.popRx();
        if (!chain) break;
        any = true;
        progress = true;
        const n = Math.min(n0, chain.writableLen - VSOCK_HDR_LEN, MAX_PKT_PAYLOAD);
        let off = VSOCK_HDR_LEN;
        let left = n;
        while (left > 0) {
          const b = conn.pending[0];
          const take = Math.min(left, b.length);
          vq.writeBytes(chain, b.subarray(0, take), off);
          off += take;
          left -= take;
          if (take === b.length) conn.pending.shift();
          else conn.pending[0] = b.subarray(take);
        }
        conn.pendingBytes -= n;
        conn.txCnt = (conn.txCnt + n) >>> 0;
        conn.fwdCntSent = conn.fwdCnt;
        vq.writeBytes(chain, this.header(conn, VSOCK_OP.RW, 0, n));
        vq.push(chain.head, VSOCK_HDR_LEN + n);
        if (conn.paused && conn.pendingBytes <= VSOCK_MAX_PENDING / 2) {
          conn.paused = false;
          conn.stream?.resume();
        }
        if (conn.pendingBytes === 0) this.maybeShutdown(conn);
      }
    }
    if (any) {
      this.host.usedBuffers(RX);
      if (fromHost) this.wake();
    }
    // Receive buffers freed room for control packets: take the tx queue again if it waited.
    if (this.control.length < MAX_CONTROL && this.queue(TX).ready && this.queue(TX).pending() > 0 && any) {
      this.processTx();
    }
  }

  /** The next receive buffer that can hold a header (others are returned unused). */
  private popRx(): Chain | undefined {
    const vq = this.queue(RX);
    for (;;) {
      const chain = vq.pop();
      if (!chain) return undefined;
      if (!chain.error && chain.writableLen >= VSOCK_HDR_LEN) return chain;
      if (!chain.error) this.drop(`receive buffer of ${chain.writableLen} bytes is smaller than a header`);
      else this.droppedPackets++;
      vq.push(chain.head, 0);
    }
  }

  private sendEvents(): void {
    if (!this.transportResetPending || !this.attached || !this.host.active) return;
    const vq = this.queue(EVT);
    if (!vq.ready) return;
    for (;;) {
      const chain = vq.pop();
      if (!chain) return;
      const ok = !chain.error && chain.writableLen >= 4;
      if (ok) vq.writeBytes(chain, Uint8Array.of(VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0));
      vq.push(chain.head, ok ? 4 : 0);
      this.host.usedBuffers(EVT);
      if (ok) {
        this.transportResetPending = false;
        this.wake();
        return;
      }
    }
  }
}

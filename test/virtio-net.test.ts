// virtio-net against a fake backend, driven by the hand-written driver of helpers/virtio-driver.ts:
// config space, transmit (with and without a virtio header on the backend), receive into one buffer
// and merged buffers, the bounded backlog with backend flow control, a malicious driver; and passt's
// stream framing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Driver, S } from './helpers/virtio-driver.js';
import { PasstBackend } from '../src/host/passt.js';
import {
  VirtioNet,
  RX_BACKLOG,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_GUEST_TSO4,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  type NetBackend,
  type RxOffloads,
} from '../src/devices/virtio/net.js';

const RX = 0;
const TX = 1;
const HDR = 12;

class FakeBackend implements NetBackend {
  sent: Uint8Array[] = [];
  paused = false;
  pauses = 0;
  accept = true;
  receive: (f: Uint8Array) => void = () => {};
  txReady: () => void = () => {};
  constructor(readonly vnetHdr = false) {}
  start(receive: (f: Uint8Array) => void, txReady: () => void): void {
    this.receive = receive;
    this.txReady = txReady;
  }
  transmit(pieces: Uint8Array[], length: number): boolean {
    this.sent.push(Buffer.concat(pieces));
    assert.equal(this.sent[this.sent.length - 1].length, length);
    return this.accept;
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  close(): void {}
}

const MAC = Uint8Array.of(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
const ALL = ~0n;
const NO_MRG = ~(1n << BigInt(VIRTIO_NET_F_MRG_RXBUF));

/** A TAP-like backend: virtio header and offloads. */
class OffloadBackend extends FakeBackend {
  offloads: RxOffloads[] = [];
  constructor() {
    super(true);
  }
  setOffloads(rx: RxOffloads): void {
    this.offloads.push(rx);
  }
}

function setup(opts: { vnetHdr?: boolean; accept?: bigint; qsize?: number; backend?: FakeBackend } = {}) {
  const be = opts.backend ?? new FakeBackend(opts.vnetHdr);
  const net = new VirtioNet({ mac: MAC, backend: be });
  const d = new Driver(net);
  d.init(opts.accept ?? ALL, opts.qsize ?? 8);
  return { be, net, d };
}

function frame(len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (i * 7 + seed) & 0xff;
  return f;
}

/** Post `n` receive buffers of `len` bytes each; returns their addresses by head. */
function postRx(d: Driver, n: number, len: number): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const addr = d.alloc(len);
    const head = d.chain(RX, [{ addr, len, write: true }]);
    d.avail(RX, head);
    m.set(head, addr);
  }
  d.kick(RX);
  return m;
}

test('virtio-net: features, MAC, link status and MTU in the config space', () => {
  const { d } = setup();
  const f = d.deviceFeatures();
  for (const bit of [VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VIRTIO_NET_F_MTU, VIRTIO_NET_F_MRG_RXBUF]) {
    assert.equal((f >> BigInt(bit)) & 1n, 1n, `feature ${bit} offered`);
  }
  assert.equal(d.r(0x008), 1, 'device id 1 (network)');
  const cfg = Array.from({ length: 12 }, (_, i) => d.t.read(0x100 + i, 1));
  assert.deepEqual(cfg.slice(0, 6), Array.from(MAC));
  assert.equal(d.t.read(0x106, 2), 1, 'link up');
  assert.equal(d.t.read(0x10a, 2), 1500, 'mtu');
});

test('virtio-net: transmit strips the header for a plain backend, zeroes it for a vnet-header one', () => {
  for (const vnetHdr of [false, true]) {
    const { be, d, net } = setup({ vnetHdr });
    const f = frame(1514, 3);
    // Header and the first bytes in one descriptor, the rest in a second (any layout is allowed).
    const a = d.alloc(HDR + 100);
    const b = d.alloc(1414);
    const hdr = new Uint8Array(HDR).fill(0xee); // garbage the host must not see
    d.put(a, Buffer.concat([hdr, f.subarray(0, 100)]));
    d.put(b, f.subarray(100));
    d.avail(TX, d.chain(TX, [{ addr: a, len: HDR + 100 }, { addr: b, len: 1414 }]));
    d.kick(TX);
    assert.equal(be.sent.length, 1);
    const expect = vnetHdr ? Buffer.concat([new Uint8Array(HDR), f]) : f;
    assert.deepEqual(be.sent[0], Buffer.from(expect));
    assert.deepEqual(d.used(TX).map((u) => u.len), [0]);
    assert.equal(net.stats.txFrames, 1);
  }
});

test('virtio-net: receive into one buffer per frame (no MRG_RXBUF), num_buffers 1', () => {
  const { be, d, net } = setup({ accept: NO_MRG });
  const bufs = postRx(d, 2, HDR + 1518);
  const f1 = frame(1514, 1);
  const f2 = frame(60, 2);
  be.receive(f1);
  be.receive(f2);
  const used = d.used(RX);
  assert.deepEqual(used.map((u) => u.len), [HDR + 1514, HDR + 60]);
  const got1 = d.bytes(bufs.get(used[0].id)!, HDR + 1514);
  assert.equal(got1[10] | (got1[11] << 8), 1, 'num_buffers');
  assert.deepEqual(got1.subarray(0, 10), new Uint8Array(10), 'no offload flags');
  assert.deepEqual(got1.subarray(HDR), f1);
  assert.deepEqual(d.bytes(bufs.get(used[1].id)!, HDR + 60).subarray(HDR), f2);
  assert.ok(d.ack() & 1, 'used-buffer interrupt');
  assert.equal(net.stats.rxFrames, 2);
});

test('virtio-net: a frame spans merged buffers with MRG_RXBUF and num_buffers counts them', () => {
  const { be, d } = setup();
  const bufs = postRx(d, 4, 600);
  const f = frame(1514, 9);
  be.receive(f);
  const used = d.used(RX);
  assert.deepEqual(used.map((u) => u.len), [600, 600, HDR + 1514 - 1200]);
  const joined = Buffer.concat(used.map((u) => d.bytes(bufs.get(u.id)!, u.len)));
  assert.equal(joined[10] | (joined[11] << 8), 3, 'num_buffers');
  assert.deepEqual(new Uint8Array(joined.subarray(HDR)), f);
});

test('virtio-net: frames wait for buffers in a bounded backlog; the backend is paused and resumed', () => {
  const { be, d, net } = setup({ qsize: 256 });
  for (let i = 0; i < RX_BACKLOG + 10; i++) be.receive(frame(100, i));
  assert.equal(net.backlogged, RX_BACKLOG);
  assert.ok(be.paused, 'backend paused when the backlog is full');
  assert.equal(net.stats.rxDropped, 10, 'frames beyond the backlog are dropped');
  // A merged frame that does not fit the buffers posted so far waits, consuming nothing.
  postRx(d, 1, 50);
  assert.deepEqual(d.used(RX), []);
  postRx(d, 200, 128);
  const used = d.used(RX);
  assert.equal(used.length, 201, '200 frames, the first in two buffers');
  assert.equal(net.backlogged, RX_BACKLOG - 200);
  assert.ok(!be.paused, 'resumed once the backlog drained below half');
  // In order: the first frame went into the 50-byte buffer and the next one.
  assert.equal(used[0].len, 50);
  assert.equal(used[1].len, HDR + 100 - 50);
});

test('virtio-net: a frame waiting for more buffers asks to be notified at the index the driver has published (EVENT_IDX)', () => {
  const { be, d, net } = setup();
  assert.equal((d.deviceFeatures() >> 29n) & 1n, 1n, 'EVENT_IDX offered (and accepted)');
  postRx(d, 1, 50);
  be.receive(frame(100, 1)); // header and frame: 112 bytes, more than the one buffer holds
  assert.deepEqual(d.used(RX), [], 'the frame waits, consuming nothing');
  // A driver notifies when the index it publishes passes avail_event: at 0 (where the frame's
  // buffers start) a driver that has published 1 would never notify again.
  assert.equal(d.availEvent(RX), 1, 'avail_event is the index the driver has published');
  postRx(d, 1, 128);
  assert.deepEqual(d.used(RX).map((u) => u.len), [50, HDR + 100 - 50], 'delivered across both buffers');
  assert.equal(net.backlogged, 0);
});

test('virtio-net: a malicious driver fails single packets and never the device', () => {
  const { be, d, net } = setup({ accept: NO_MRG });
  // Receive buffer too small for a full frame: the frame is dropped, the buffer returned empty.
  postRx(d, 1, 100);
  be.receive(frame(1000, 1));
  assert.deepEqual(d.used(RX).map((u) => u.len), [0]);
  // Receive buffer outside guest RAM.
  d.avail(RX, d.chain(RX, [{ addr: 0x1000, len: 2000, write: true }]));
  d.kick(RX);
  be.receive(frame(1000, 2));
  assert.deepEqual(d.used(RX).map((u) => u.len), [0]);
  // A frame larger than the MTU from the backend never reaches the guest.
  postRx(d, 1, 9000);
  be.receive(frame(9000, 3));
  assert.deepEqual(d.used(RX), []);
  assert.equal(net.stats.rxDropped, 3);
  // Transmit: shorter than the header, larger than the MTU allows, outside RAM.
  const small = d.alloc(8);
  d.avail(TX, d.chain(TX, [{ addr: small, len: 8 }]));
  const big = d.alloc(HDR + 9000);
  d.avail(TX, d.chain(TX, [{ addr: big, len: HDR + 9000 }]));
  d.avail(TX, d.chain(TX, [{ addr: 0x2000, len: 100 }]));
  d.kick(TX);
  assert.equal(d.used(TX).length, 3);
  assert.equal(net.stats.txErrors, 3);
  assert.equal(be.sent.length, 0);
  // The device still works.
  const ok = d.alloc(HDR + 60);
  d.put(ok + HDR, frame(60, 4));
  d.avail(TX, d.chain(TX, [{ addr: ok, len: HDR + 60 }]));
  d.kick(TX);
  assert.deepEqual(be.sent[0], Buffer.from(frame(60, 4)));
  assert.equal(d.r(0x70) & S.NEEDS_RESET, 0);
});

test('virtio-net: transmit stops while the backend is full and continues on txReady', () => {
  const { be, d } = setup();
  be.accept = false;
  for (let i = 0; i < 3; i++) {
    const a = d.alloc(HDR + 60);
    d.put(a + HDR, frame(60, i));
    d.avail(TX, d.chain(TX, [{ addr: a, len: HDR + 60 }]));
  }
  d.kick(TX);
  assert.equal(be.sent.length, 1, 'one frame taken, then the backend said stop');
  d.kick(TX);
  assert.equal(be.sent.length, 1, 'a notify while blocked sends nothing');
  be.accept = true;
  be.txReady();
  assert.equal(be.sent.length, 3);
  assert.deepEqual(be.sent[2], Buffer.from(frame(60, 2)));
});

test('passt backend: 4-byte big-endian length framing both ways, frames split across reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-passt-'));
  const path = join(dir, 's');
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  try {
    const peerP = new Promise<Socket>((r) => server.once('connection', r));
    const sock = connect(path);
    await new Promise((r) => sock.once('connect', r));
    const peer = await peerP;
    const be = new PasstBackend(sock);
    const got: Buffer[] = [];
    be.start((f) => got.push(Buffer.from(f)), () => {});
    const f1 = Buffer.from(frame(60, 1));
    const f2 = Buffer.from(frame(1514, 2));
    const len = (n: number) => Buffer.from([0, 0, n >> 8, n & 255]);
    const wire = Buffer.concat([len(60), f1, len(1514), f2]);
    // Split in awkward places: inside the first length, inside the second frame.
    peer.write(wire.subarray(0, 2));
    await new Promise((r) => setTimeout(r, 20));
    peer.write(wire.subarray(2, 700));
    await new Promise((r) => setTimeout(r, 20));
    peer.write(wire.subarray(700));
    for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, [f1, f2]);
    // Transmit: pieces are joined behind their length.
    const recv: Buffer[] = [];
    peer.on('data', (d: Buffer) => recv.push(d));
    be.transmit([f1.subarray(0, 10), f1.subarray(10)], 60);
    for (let i = 0; i < 100 && Buffer.concat(recv).length < 64; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(Buffer.concat(recv), Buffer.concat([len(60), f1]));
    be.close();
    peer.destroy();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('passt backend: a burst larger than the guest buffers and the backlog loses no frame (the rest of a read waits for resume)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-passt-'));
  const path = join(dir, 's');
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  let be: PasstBackend | undefined;
  let peer: Socket | undefined;
  try {
    const peerP = new Promise<Socket>((r) => server.once('connection', r));
    const sock = connect(path);
    await new Promise((r) => sock.once('connect', r));
    peer = await peerP;
    be = new PasstBackend(sock);
    const net = new VirtioNet({ mac: MAC, backend: be });
    const d = new Driver(net);
    d.init(ALL, 256);
    // One write of more frames than the backlog holds: they reach this process in a few large reads,
    // and the device pauses the backend in the middle of one.
    const N = 3 * RX_BACKLOG;
    const sent = Array.from({ length: N }, (_, i) => frame(100, i));
    const len = (n: number) => Buffer.from([0, 0, n >> 8, n & 255]);
    peer.write(Buffer.concat(sent.flatMap((f) => [len(f.length), f])));
    const got: Uint8Array[] = [];
    const bufs = new Map<number, number>();
    for (let round = 0; round < 500 && got.length < N; round++) {
      await new Promise((r) => setTimeout(r, 10));
      // The guest keeps 64 buffers posted.
      for (const [head, addr] of postRx(d, 64 - bufs.size, 128)) bufs.set(head, addr);
      for (const u of d.used(RX)) {
        got.push(d.bytes(bufs.get(u.id)! + HDR, u.len - HDR).slice());
        bufs.delete(u.id);
      }
    }
    assert.equal(net.stats.rxDropped, 0, 'no frame dropped');
    assert.equal(got.length, N, 'every frame arrived');
    got.forEach((f, i) => assert.deepEqual(f, sent[i], `frame ${i} in order`));
  } finally {
    be?.close();
    peer?.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('virtio-net: offloads are offered only over a backend that carries them; headers pass both ways as negotiated', () => {
  const bit = (b: number): bigint => 1n << BigInt(b);
  const offload = [VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_HOST_TSO4];
  for (const vnetHdr of [false, true]) {
    const f = setup({ vnetHdr }).d.deviceFeatures();
    for (const b of offload) assert.equal(f & bit(b), 0n, `feature ${b} not offered without offloading backend`);
  }
  // The guest takes everything but HOST_TSO6.
  const be = new OffloadBackend();
  const { d, net } = setup({ backend: be, accept: ~bit(VIRTIO_NET_F_HOST_TSO6), qsize: 64 });
  for (const b of offload) assert.equal((d.deviceFeatures() >> BigInt(b)) & 1n, 1n, `feature ${b} offered`);
  assert.deepEqual(be.offloads.at(-1), { csum: true, tso4: true, tso6: true, ecn: true }, 'TAP told what the guest receives');

  // Transmit: a 64 KiB TCPv4 segment with a partial checksum goes to the TAP with the guest's header.
  const hdr = new Uint8Array(HDR);
  hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  hdr[1] = VIRTIO_NET_HDR_GSO_TCPV4;
  const seg = frame(65000, 5);
  const a = d.alloc(HDR + seg.length);
  d.put(a, Buffer.concat([hdr, seg]));
  d.avail(TX, d.chain(TX, [{ addr: a, len: HDR + seg.length }]));
  // A TCPv6 segment (HOST_TSO6 was not accepted) is refused.
  hdr[1] = VIRTIO_NET_HDR_GSO_TCPV6;
  const b6 = d.alloc(HDR + 3000);
  d.put(b6, Buffer.concat([hdr, frame(3000, 6)]));
  d.avail(TX, d.chain(TX, [{ addr: b6, len: HDR + 3000 }]));
  d.kick(TX);
  assert.equal(be.sent.length, 1);
  assert.deepEqual(be.sent[0].subarray(0, 2), Buffer.from([VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4]));
  assert.deepEqual(be.sent[0].subarray(HDR), Buffer.from(seg));
  assert.equal(net.stats.txErrors, 1);

  // Receive: a GSO frame from the TAP reaches the guest, header and all, across merged buffers.
  const bufs = postRx(d, 40, 2048);
  const rxHdr = new Uint8Array(HDR);
  rxHdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  rxHdr[1] = VIRTIO_NET_HDR_GSO_TCPV4;
  rxHdr[4] = 0xa8; // gso_size 1448
  rxHdr[5] = 0x05;
  const big = frame(30000, 7);
  be.receive(Buffer.concat([rxHdr, big]));
  const used = d.used(RX);
  const joined = Buffer.concat(used.map((u) => d.bytes(bufs.get(u.id)!, u.len)));
  assert.deepEqual(joined.subarray(0, 10), Buffer.from(rxHdr.subarray(0, 10)));
  assert.equal(joined[10] | (joined[11] << 8), used.length, 'num_buffers');
  assert.deepEqual(new Uint8Array(joined.subarray(HDR)), big);

  // After a reset the TAP is told to stop, and a guest without GUEST_TSO4 never gets a GSO frame.
  const be2 = new OffloadBackend();
  const s2 = setup({ backend: be2, accept: ~bit(VIRTIO_NET_F_GUEST_TSO4), qsize: 64 });
  assert.deepEqual(be2.offloads.at(-1), { csum: true, tso4: false, tso6: true, ecn: true });
  postRx(s2.d, 40, 2048);
  be2.receive(Buffer.concat([rxHdr, frame(3000, 8)]));
  assert.deepEqual(s2.d.used(RX), []);
  assert.equal(s2.net.stats.rxDropped, 1);
  s2.d.w(0x70, 0);
  assert.deepEqual(be2.offloads.at(-1), { csum: false, tso4: false, tso6: false, ecn: false });
});

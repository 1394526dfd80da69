// virtio-vsock: the device model driven by a hand-written driver on GuestMemory (connections both
// ways, data both ways, credit limits in both directions, RST when nobody listens, clean close,
// malformed input), and the Unix-socket host side (Firecracker's CONNECT protocol) end to end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import { Driver, S } from './helpers/virtio-driver.js';
import {
  VirtioVsock,
  VSOCK_BUF_ALLOC,
  VSOCK_MAX_PENDING,
  VSOCK_OP as OP,
  VSOCK_SHUTDOWN_RCV,
  VSOCK_SHUTDOWN_SEND,
  decodeVsockHeader,
  encodeVsockHeader,
  guestCidProblem,
  type VsockHeader,
  type VirtioVsockOptions,
} from '../src/devices/virtio/vsock.js';
import { VsockUnixListener } from '../src/host/vsock-uds.js';

const GUEST = 7;
const HOST = 2;
const RX = 0;
const TX = 1;
const EVT = 2;

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The host end of a connection as the device sees it; the test plays the host program. */
class HostEnd extends Duplex {
  readonly received: Buffer[] = [];
  /** Hold write callbacks (the host program is not reading): the device must not credit them back. */
  hold = false;
  private held: (() => void)[] = [];
  finished = false;
  constructor() {
    super({ allowHalfOpen: true });
    this.on('finish', () => (this.finished = true));
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.received.push(chunk);
    if (this.hold) this.held.push(() => cb());
    else cb();
  }
  override _read(): void {}
  release(): void {
    this.hold = false;
    for (const cb of this.held.splice(0)) cb();
  }
  text(): string {
    return Buffer.concat(this.received).toString();
  }
}

interface Pkt {
  h: VsockHeader;
  data: Buffer;
}

/** A guest driver for the vsock device: posts receive buffers, sends packets, reads what came back. */
class Guest {
  readonly d: Driver;
  readonly dev: VirtioVsock;
  private readonly rxBufs = new Map<number, { hdr: number; buf: number; size: number }>();
  private readonly free: { hdr: number; buf: number; size: number }[] = [];

  constructor(opts: Partial<VirtioVsockOptions> = {}) {
    this.dev = new VirtioVsock({ cid: GUEST, ...opts });
    this.d = new Driver(this.dev);
    this.d.init(~0n, 64);
  }

  /** Post `n` receive buffers as Linux 6.1 does: a 44-byte header and a `size`-byte data buffer. */
  postRx(n: number, size = 4096): void {
    for (let i = 0; i < n; i++) {
      const k = this.free.findIndex((f) => f.size === size);
      const b = k >= 0 ? this.free.splice(k, 1)[0] : { hdr: this.d.alloc(44), buf: this.d.alloc(size), size };
      const head = this.d.chain(RX, [
        { addr: b.hdr, len: 44, write: true },
        { addr: b.buf, len: size, write: true },
      ]);
      this.rxBufs.set(head, b);
      this.d.avail(RX, head);
    }
    this.d.kick(RX);
  }

  /** Packets the device has put in the receive queue since the last call. */
  recv(): Pkt[] {
    return this.d.used(RX).map((u) => {
      const b = this.rxBufs.get(u.id)!;
      this.free.push(b);
      assert.ok(u.len >= 44, 'used length covers the header');
      const h = decodeVsockHeader(this.d.bytes(b.hdr, 44));
      assert.equal(u.len, 44 + h.len, 'used length is header plus payload');
      return { h, data: Buffer.from(this.d.bytes(b.buf, h.len)) };
    });
  }

  /** Send one packet on the tx queue (header and payload in one buffer). */
  send(h: Partial<VsockHeader>, payload: Uint8Array = new Uint8Array(0), extra: { len?: number } = {}): void {
    const full: VsockHeader = {
      srcCid: GUEST,
      dstCid: HOST,
      srcPort: 0,
      dstPort: 0,
      len: payload.length,
      type: 1,
      op: OP.RW,
      flags: 0,
      bufAlloc: 64 * 1024,
      fwdCnt: 0,
      ...h,
    };
    if (extra.len !== undefined) full.len = extra.len;
    const a = this.d.alloc(44 + payload.length);
    this.d.put(a, encodeVsockHeader(full));
    this.d.put(a + 44, payload);
    this.sendRaw([{ addr: a, len: 44 + payload.length }]);
  }

  sendRaw(bufs: { addr: number; len: number; write?: boolean }[]): void {
    const head = this.d.chain(TX, bufs);
    this.d.avail(TX, head);
    this.d.kick(TX);
    this.d.used(TX);
  }

  status(): number {
    return this.d.r(0x70);
  }
}

/** Open a guest->host connection on `guestPort` -> host `hostPort`; returns the host end. */
async function guestConnects(
  g: Guest,
  ends: HostEnd[],
  guestPort: number,
  hostPort: number,
  bufAlloc = 65536,
): Promise<HostEnd> {
  g.send({ op: OP.REQUEST, srcPort: guestPort, dstPort: hostPort, bufAlloc });
  await tick();
  const [resp] = g.recv();
  assert.equal(resp.h.op, OP.RESPONSE, 'RESPONSE to the REQUEST');
  return ends[ends.length - 1];
}

function listening(): { ends: HostEnd[]; ports: number[]; connectHost: (p: number) => Promise<Duplex> } {
  const ends: HostEnd[] = [];
  const ports: number[] = [];
  return {
    ends,
    ports,
    connectHost: async (p) => {
      ports.push(p);
      const e = new HostEnd();
      ends.push(e);
      return e;
    },
  };
}

test('virtio-vsock: device id 19, three queues, guest_cid in the config space; CIDs checked', () => {
  const g = new Guest();
  assert.equal(g.d.r(0x008), 19);
  assert.equal(g.d.t.read(0x100, 4), GUEST);
  assert.equal(g.d.t.read(0x104, 4), 0);
  assert.equal(g.dev.queueMax.length, 3);
  for (const bad of [0, 1, 2, 0xffff_ffff, 2 ** 40, 3.5, -1])
    assert.ok(guestCidProblem(bad), `CID ${bad} refused`);
  for (const ok of [3, 1000, 0xffff_fffe]) assert.equal(guestCidProblem(ok), undefined, `CID ${ok} accepted`);
  assert.throws(() => new VirtioVsock({ cid: 2 }), /guest CID from 3/);
});

test('virtio-vsock: guest connects to a host port, data both ways, guest closes cleanly', async () => {
  const l = listening();
  const g = new Guest({ connectHost: l.connectHost });
  g.postRx(8);
  const host = await guestConnects(g, l.ends, 40000, 1234);
  assert.deepEqual(l.ports, [1234], 'the host side was asked for port 1234');
  // Guest -> host.
  g.send({ op: OP.RW, srcPort: 40000, dstPort: 1234 }, Buffer.from('hello host\n'));
  assert.equal(host.text(), 'hello host\n');
  await tick(); // the write completes
  // Host -> guest.
  host.push(Buffer.from('hello guest\n'));
  await tick();
  const [rw] = g.recv();
  assert.equal(rw.h.op, OP.RW);
  assert.equal(rw.h.srcCid, HOST);
  assert.equal(rw.h.dstCid, GUEST);
  assert.equal(rw.h.srcPort, 1234);
  assert.equal(rw.h.dstPort, 40000);
  assert.equal(rw.h.bufAlloc, VSOCK_BUF_ALLOC);
  assert.equal(rw.h.fwdCnt, 'hello host\n'.length, 'fwd_cnt counts what the host took');
  assert.equal(rw.data.toString(), 'hello guest\n');
  // Guest closes: SHUTDOWN both ways -> the host stream ends, the guest gets RST.
  g.send({ op: OP.SHUTDOWN, srcPort: 40000, dstPort: 1234, flags: VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND });
  await tick();
  await tick();
  assert.ok(host.finished, 'host stream ended');
  const [rst] = g.recv();
  assert.equal(rst.h.op, OP.RST);
  assert.equal(g.dev.connectionCount, 0);
});

test('virtio-vsock: nobody listening on the host port gets RST; so do packets for unknown connections', async () => {
  const g = new Guest({ connectHost: () => Promise.reject(new Error('ENOENT')) });
  g.postRx(8);
  g.send({ op: OP.REQUEST, srcPort: 5, dstPort: 99 });
  await tick();
  let [p] = g.recv();
  assert.equal(p.h.op, OP.RST);
  assert.equal(p.h.srcPort, 99);
  assert.equal(p.h.dstPort, 5);
  assert.equal(g.dev.connectionCount, 0);
  // Without a host side at all.
  const g2 = new Guest();
  g2.postRx(4);
  g2.send({ op: OP.REQUEST, srcPort: 5, dstPort: 99 });
  assert.equal(g2.recv()[0].h.op, OP.RST);
  // Data for a connection that does not exist.
  g2.send({ op: OP.RW, srcPort: 5, dstPort: 99 }, Buffer.from('x'));
  [p] = g2.recv();
  assert.equal(p.h.op, OP.RST);
  // An RST for nothing is not answered.
  g2.send({ op: OP.RST, srcPort: 5, dstPort: 99 });
  assert.equal(g2.recv().length, 0);
});

test('virtio-vsock: host connects to a guest port; accepted, data both ways, host closes cleanly', async () => {
  const g = new Guest();
  g.postRx(8);
  const host = new HostEnd();
  let accepted: number | undefined;
  let refused: string | undefined;
  g.dev.connectToGuest(5000, host, { accepted: (p) => (accepted = p), refused: (r) => (refused = r) });
  const [req] = g.recv();
  assert.equal(req.h.op, OP.REQUEST);
  assert.equal(req.h.srcCid, HOST);
  assert.equal(req.h.dstCid, GUEST);
  assert.equal(req.h.dstPort, 5000);
  const local = req.h.srcPort;
  assert.ok(local >= 1 << 30, 'host-side port from the ephemeral range');
  g.send({ op: OP.RESPONSE, srcPort: 5000, dstPort: local, bufAlloc: 65536 });
  assert.equal(accepted, local);
  assert.equal(refused, undefined);
  host.push(Buffer.from('ping'));
  await tick();
  const [rw] = g.recv();
  assert.equal(rw.data.toString(), 'ping');
  g.send({ op: OP.RW, srcPort: 5000, dstPort: local }, Buffer.from('PONG'));
  assert.equal(host.text(), 'PONG');
  // The host program ends its side: the data before it arrives first, then SHUTDOWN(SEND).
  host.push(Buffer.from('last'));
  host.push(null);
  await tick();
  await tick();
  const pk = g.recv();
  assert.deepEqual(
    pk.map((p) => p.h.op),
    [OP.RW, OP.SHUTDOWN],
  );
  assert.equal(pk[0].data.toString(), 'last');
  assert.equal(pk[1].h.flags, VSOCK_SHUTDOWN_SEND);
  // The guest closes too: the host stream ends and the connection is gone.
  g.send({ op: OP.SHUTDOWN, srcPort: 5000, dstPort: local, flags: VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND });
  await tick();
  assert.ok(host.finished);
  assert.equal(g.recv()[0].h.op, OP.RST);
  assert.equal(g.dev.connectionCount, 0);
});

test('virtio-vsock: the guest refusing (RST) a host connection is reported; a stopped driver refuses at once', () => {
  const g = new Guest();
  g.postRx(4);
  const reasons: string[] = [];
  g.dev.connectToGuest(6000, new HostEnd(), {
    accepted: () => assert.fail('accepted'),
    refused: (r) => reasons.push(r),
  });
  const [req] = g.recv();
  g.send({ op: OP.RST, srcPort: 6000, dstPort: req.h.srcPort });
  assert.equal(reasons.length, 1);
  assert.match(reasons[0], /refused/);
  assert.equal(g.dev.connectionCount, 0);
  g.d.w(0x70, 0); // driver reset
  g.dev.connectToGuest(6000, new HostEnd(), {
    accepted: () => assert.fail('accepted'),
    refused: (r) => reasons.push(r),
  });
  assert.equal(reasons.length, 2);
  assert.match(reasons[1], /not running/);
});

test("virtio-vsock: host -> guest never exceeds the guest's credit; CREDIT_REQUEST when out, CREDIT_UPDATE resumes", async () => {
  const g = new Guest();
  g.postRx(16);
  const host = new HostEnd();
  g.dev.connectToGuest(7000, host, { accepted: () => {}, refused: () => assert.fail('refused') });
  const local = g.recv()[0].h.srcPort;
  const credit = 1000;
  g.send({ op: OP.RESPONSE, srcPort: 7000, dstPort: local, bufAlloc: credit, fwdCnt: 0 });
  const data = Buffer.alloc(2500, 0x61);
  host.push(data);
  await tick();
  let pk = g.recv();
  let got = pk.filter((p) => p.h.op === OP.RW).reduce((n, p) => n + p.data.length, 0);
  assert.equal(got, credit, 'exactly the credit was sent');
  assert.equal(pk[pk.length - 1].h.op, OP.CREDIT_REQUEST, 'then a credit request');
  g.postRx(4);
  assert.equal(g.recv().length, 0, 'nothing more without credit');
  // The guest consumed 600 bytes.
  g.send({ op: OP.CREDIT_UPDATE, srcPort: 7000, dstPort: local, bufAlloc: credit, fwdCnt: 600 });
  pk = g.recv();
  got = pk.filter((p) => p.h.op === OP.RW).reduce((n, p) => n + p.data.length, 0);
  assert.equal(got, 600, 'only the freed 600 bytes');
  g.send({ op: OP.CREDIT_UPDATE, srcPort: 7000, dstPort: local, bufAlloc: credit, fwdCnt: 1600 });
  pk = g.recv();
  got = pk.filter((p) => p.h.op === OP.RW).reduce((n, p) => n + p.data.length, 0);
  assert.equal(got, 900, 'the rest');
  // Packets never exceed what the guest's buffer holds.
  for (const p of pk) assert.ok(p.data.length <= 4096);
});

test('virtio-vsock: a host that writes faster than the guest reads is paused (bounded buffering) and resumed', async () => {
  const g = new Guest();
  g.postRx(8);
  const host = new HostEnd();
  g.dev.connectToGuest(7100, host, { accepted: () => {}, refused: () => assert.fail('refused') });
  const local = g.recv()[0].h.srcPort;
  g.send({ op: OP.RESPONSE, srcPort: 7100, dstPort: local, bufAlloc: 0 });
  for (let i = 0; i < 8 && !host.isPaused(); i++) {
    host.push(Buffer.alloc(64 * 1024, i));
    await tick();
  }
  assert.ok(host.isPaused(), 'the host stream was paused');
  assert.ok(host.readableLength > 0 || host.isPaused());
  // The guest grants a large buffer and reads: the stream resumes once half the backlog is gone.
  let fwd = 0;
  let total = 0;
  for (let round = 0; round < 200 && host.isPaused(); round++) {
    g.send({ op: OP.CREDIT_UPDATE, srcPort: 7100, dstPort: local, bufAlloc: 1 << 20, fwdCnt: fwd });
    g.postRx(8);
    for (const p of g.recv()) if (p.h.op === OP.RW) total += p.data.length;
    fwd = total;
    await tick();
  }
  assert.ok(!host.isPaused(), 'resumed');
  assert.ok(total >= VSOCK_MAX_PENDING / 2, `guest received ${total} bytes`);
});

test('virtio-vsock: guest -> host credit: fwd_cnt only counts what the host took; overrunning the credit resets', async () => {
  const l = listening();
  const g = new Guest({ connectHost: l.connectHost });
  g.postRx(8);
  const host = await guestConnects(g, l.ends, 41000, 80);
  host.hold = true; // the host program does not read
  const chunk = Buffer.alloc(64 * 1024, 0x42);
  for (let i = 0; i < VSOCK_BUF_ALLOC / chunk.length; i++)
    g.send({ op: OP.RW, srcPort: 41000, dstPort: 80 }, chunk);
  assert.equal(g.recv().length, 0, 'no credit update while the host holds the data');
  host.release();
  await tick();
  const upd = g.recv().filter((p) => p.h.op === OP.CREDIT_UPDATE);
  assert.equal(upd.length, 1, 'one credit update once the host took the bytes');
  assert.equal(upd[0].h.fwdCnt, VSOCK_BUF_ALLOC);
  // Held again; the guest fills the whole buffer and then sends one byte more than its credit.
  host.hold = true;
  for (let i = 0; i < VSOCK_BUF_ALLOC / chunk.length; i++)
    g.send({ op: OP.RW, srcPort: 41000, dstPort: 80 }, chunk);
  g.send({ op: OP.RW, srcPort: 41000, dstPort: 80 }, Buffer.from('!'));
  const rst = g.recv();
  assert.equal(rst.length, 1);
  assert.equal(rst[0].h.op, OP.RST, 'overrunning the credit resets the connection');
  assert.equal(g.dev.connectionCount, 0);
  assert.ok(host.destroyed, 'the reset closed the host stream');
  assert.ok(
    !Buffer.concat(host.received).includes(0x21),
    'the byte beyond the credit never reached the host',
  );
  // CREDIT_REQUEST is answered.
  const h2 = await guestConnects(g, l.ends, 41001, 80);
  g.send({ op: OP.CREDIT_REQUEST, srcPort: 41001, dstPort: 80 });
  const [cu] = g.recv();
  assert.equal(cu.h.op, OP.CREDIT_UPDATE);
  assert.equal(cu.h.bufAlloc, VSOCK_BUF_ALLOC);
  void h2;
});

test('virtio-vsock: malformed or misaddressed packets fail alone; the device keeps working', async () => {
  const l = listening();
  const g = new Guest({ connectHost: l.connectHost });
  g.postRx(16);
  const dropped0 = g.dev.droppedPackets;
  // Shorter than a header.
  const a = g.d.alloc(16);
  g.sendRaw([{ addr: a, len: 16 }]);
  // A buffer outside guest RAM.
  g.sendRaw([{ addr: 0x1000, len: 64 }]);
  // Wrong source CID: dropped without a reply.
  g.send({ op: OP.REQUEST, srcCid: 99, srcPort: 1, dstPort: 2 });
  // Length beyond the buffer.
  g.send({ op: OP.RW, srcPort: 1, dstPort: 2 }, Buffer.from('abc'), { len: 1 << 20 });
  assert.equal(g.recv().length, 0, 'none of these is answered');
  // Another destination CID, and a type other than STREAM: RST.
  g.send({ op: OP.REQUEST, dstCid: 5, srcPort: 1, dstPort: 2 });
  g.send({ op: OP.REQUEST, type: 2, srcPort: 1, dstPort: 2 });
  const rsts = g.recv();
  assert.deepEqual(
    rsts.map((p) => p.h.op),
    [OP.RST, OP.RST],
  );
  assert.equal(rsts[0].h.srcCid, 5, 'the RST comes from the CID the guest addressed');
  assert.equal(l.ports.length, 0, 'no host connection was attempted');
  // An unknown op on a live connection is dropped; the connection stays.
  const host = await guestConnects(g, l.ends, 3000, 4000);
  g.send({ op: 42, srcPort: 3000, dstPort: 4000 });
  assert.equal(g.recv().length, 0);
  g.send({ op: OP.RW, srcPort: 3000, dstPort: 4000 }, Buffer.from('still here'));
  assert.equal(host.text(), 'still here');
  // A receive buffer too small for a header is returned unused; the next one is used.
  const tiny = g.d.alloc(8);
  g.d.avail(RX, g.d.chain(RX, [{ addr: tiny, len: 8, write: true }]));
  assert.ok(g.dev.droppedPackets >= dropped0 + 6);
  assert.equal(g.status() & S.NEEDS_RESET, 0, 'no DEVICE_NEEDS_RESET');
});

test('virtio-vsock: driver reset closes host streams; TRANSPORT_RESET after a restore', async () => {
  const l = listening();
  const g = new Guest({ connectHost: l.connectHost });
  g.postRx(8);
  const host = await guestConnects(g, l.ends, 100, 200);
  g.d.w(0x70, 0);
  await tick();
  assert.ok(host.destroyed, 'host stream closed by the reset');
  assert.equal(g.dev.connectionCount, 0);
  // A restored device drops connections and posts TRANSPORT_RESET on the event queue.
  const g2 = new Guest({ connectHost: l.connectHost });
  g2.postRx(4);
  const evt = g2.d.alloc(4);
  g2.d.mem.u8.fill(0xff, evt - g2.d.mem.ramBase, evt - g2.d.mem.ramBase + 4);
  g2.d.avail(EVT, g2.d.chain(EVT, [{ addr: evt, len: 4, write: true }]));
  g2.d.kick(EVT);
  assert.equal(g2.d.used(EVT).length, 0, 'event buffers are held until there is an event');
  const h2 = await guestConnects(g2, l.ends, 100, 200);
  g2.d.t.restoreState(g2.d.t.saveState());
  const used = g2.d.used(EVT);
  assert.equal(used.length, 1);
  assert.equal(used[0].len, 4);
  assert.deepEqual([...g2.d.bytes(evt, 4)], [0, 0, 0, 0], 'VIRTIO_VSOCK_EVENT_TRANSPORT_RESET');
  assert.ok(h2.destroyed);
});

test('vsock Unix socket: CONNECT <port> reaches the guest listener, OK <hostport>, bytes both ways; bad lines and refusals close', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-vsock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const uds = path.join(dir, 'v.sock');
  const g: Guest = new Guest({ connectHost: (p: number): Promise<Duplex> => listener.connectHostPort(p) });
  const listener: VsockUnixListener = new VsockUnixListener(uds, g.dev);
  await listener.listen();
  t.after(() => listener.close());
  g.postRx(16);

  // A host program connects and asks for guest port 52; it sends data right after the line.
  const c = net.createConnection(uds);
  const got: Buffer[] = [];
  c.on('data', (b) => got.push(b));
  c.write('CONNECT 52\nearly bytes');
  let req: Pkt | undefined;
  for (let i = 0; i < 100 && !req; i++) {
    await new Promise((r) => setTimeout(r, 10));
    req = g.recv().find((p) => p.h.op === OP.REQUEST);
  }
  assert.ok(req, 'the guest got a REQUEST');
  assert.equal(req.h.dstPort, 52);
  const local = req.h.srcPort;
  g.send({ op: OP.RESPONSE, srcPort: 52, dstPort: local, bufAlloc: 65536 });
  g.send({ op: OP.RW, srcPort: 52, dstPort: local }, Buffer.from('from guest'));
  let rw: Pkt | undefined;
  for (let i = 0; i < 100 && (!rw || Buffer.concat(got).length < `OK ${local}\nfrom guest`.length); i++) {
    await new Promise((r) => setTimeout(r, 10));
    rw ??= g.recv().find((p) => p.h.op === OP.RW);
  }
  assert.equal(
    Buffer.concat(got).toString(),
    `OK ${local}\nfrom guest`,
    'OK line first, then the guest bytes',
  );
  assert.ok(rw, 'the bytes after CONNECT reached the guest');
  assert.equal(rw.data.toString(), 'early bytes');
  c.destroy();

  // The guest refuses: the socket is closed.
  const closedAfter = async (line: string, refuse: boolean): Promise<void> => {
    const s = net.createConnection(uds);
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.on('error', () => {});
    s.write(line);
    if (refuse) {
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 10));
        const q = g.recv().find((p) => p.h.op === OP.REQUEST);
        if (q) {
          g.send({ op: OP.RST, srcPort: q.h.dstPort, dstPort: q.h.srcPort });
          break;
        }
      }
    }
    await closed;
  };
  await closedAfter('CONNECT 53\n', true);
  await closedAfter('HELLO 53\n', false);
  await closedAfter('CONNECT 99999999999\n', false);

  // The guest connects to host port 1234: it reaches the listener on uds_1234.
  const hostSide: Buffer[] = [];
  const srv = net.createServer((s) => {
    s.on('data', (b) => hostSide.push(b));
    s.write('welcome');
  });
  await new Promise<void>((r) => srv.listen(`${uds}_1234`, () => r()));
  t.after(() => srv.close());
  g.send({ op: OP.REQUEST, srcPort: 999, dstPort: 1234 });
  const seen: Pkt[] = [];
  for (let i = 0; i < 100 && !seen.some((p) => p.h.op === OP.RESPONSE); i++) {
    await new Promise((r) => setTimeout(r, 10));
    seen.push(...g.recv());
  }
  assert.equal(seen[0]?.h.op, OP.RESPONSE, 'RESPONSE once uds_1234 accepted');
  g.send({ op: OP.RW, srcPort: 999, dstPort: 1234 }, Buffer.from('guest says hi'));
  for (let i = 0; i < 100 && (!seen.some((p) => p.h.op === OP.RW) || hostSide.length === 0); i++) {
    await new Promise((r) => setTimeout(r, 10));
    seen.push(...g.recv());
  }
  assert.equal(Buffer.concat(hostSide).toString(), 'guest says hi');
  assert.equal(seen.find((p) => p.h.op === OP.RW)?.data.toString(), 'welcome');
  // No listener on uds_1235: RST.
  g.send({ op: OP.REQUEST, srcPort: 998, dstPort: 1235 });
  let rst: Pkt | undefined;
  for (let i = 0; i < 100 && !rst; i++) {
    await new Promise((r) => setTimeout(r, 10));
    rst = g.recv().find((p) => p.h.op === OP.RST);
  }
  assert.equal(rst?.h.srcPort, 1235);
  g.dev.close();
});

test('vsock Unix socket: a live socket at the path is refused, a stale one replaced, a non-socket refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-vsock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const g = new Guest();
  const uds = path.join(dir, 'v.sock');
  const a = new VsockUnixListener(uds, g.dev);
  await a.listen();
  await assert.rejects(new VsockUnixListener(uds, g.dev).listen(), /another process is listening/);
  a.close();
  assert.ok(!fs.existsSync(uds), 'close removes the socket file');
  // A stale socket file: its server was killed without removing it.
  spawnSync(process.execPath, [
    '-e',
    `require('node:net').createServer().listen(${JSON.stringify(uds)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ]);
  assert.ok(fs.statSync(uds).isSocket(), 'a stale socket file is left');
  const b = new VsockUnixListener(uds, g.dev);
  await b.listen();
  b.close();
  fs.writeFileSync(uds, 'x');
  await assert.rejects(new VsockUnixListener(uds, g.dev).listen(), /not a socket/);
});

test('virtio-vsock: a host end that closes (even before the guest accepted) gets SHUTDOWN both ways, then the guest RST ends it', async () => {
  const g = new Guest();
  g.postRx(8);
  const early = new HostEnd();
  let accepted = false;
  g.dev.connectToGuest(8000, early, {
    accepted: () => (accepted = true),
    refused: () => assert.fail('refused'),
  });
  const local = g.recv()[0].h.srcPort;
  early.destroy();
  await tick();
  g.send({ op: OP.RESPONSE, srcPort: 8000, dstPort: local });
  assert.ok(accepted);
  const [sd] = g.recv();
  assert.equal(sd.h.op, OP.SHUTDOWN);
  assert.equal(sd.h.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
  g.send({ op: OP.RST, srcPort: 8000, dstPort: local });
  assert.equal(g.dev.connectionCount, 0);
  // An established connection whose host end closes with data still waiting: data first.
  const host = new HostEnd();
  g.dev.connectToGuest(8001, host, { accepted: () => {}, refused: () => assert.fail('refused') });
  const local2 = g.recv()[0].h.srcPort;
  g.send({ op: OP.RESPONSE, srcPort: 8001, dstPort: local2, bufAlloc: 4 });
  host.push(Buffer.from('12345678'));
  await tick();
  host.destroy();
  await tick();
  let pk = g.recv();
  assert.deepEqual(
    pk.map((p) => [p.h.op, p.data.toString()]),
    [
      [OP.RW, '1234'],
      [OP.CREDIT_REQUEST, ''],
    ],
    'only the credit; the rest waits',
  );
  g.send({ op: OP.CREDIT_UPDATE, srcPort: 8001, dstPort: local2, bufAlloc: 4, fwdCnt: 4 });
  pk = g.recv();
  assert.deepEqual(
    pk.map((p) => [p.h.op, p.data.toString(), p.h.flags]),
    [
      [OP.RW, '5678', 0],
      [OP.SHUTDOWN, '', VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND],
    ],
  );
  g.send({ op: OP.RST, srcPort: 8001, dstPort: local2 });
  assert.equal(g.dev.connectionCount, 0);
});

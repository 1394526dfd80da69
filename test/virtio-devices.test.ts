// Virtio over MMIO: transport registers, split virtqueue handling (direct, indirect, event-idx,
// malformed chains) and the blk, rng, console and balloon devices, driven by the hand-written driver
// of test/helpers/virtio-driver.ts (descriptor tables and rings written into a GuestMemory).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { VirtioDevice } from '../src/devices/virtio/mmio.js';
import {
  Driver,
  RAM,
  RAM_SIZE,
  F,
  S,
  D_NEXT,
  D_WRITE,
  D_INDIRECT,
  type Buf,
} from './helpers/virtio-driver.js';
import { VirtioRng } from '../src/devices/virtio/rng.js';
import { VirtioBlk } from '../src/devices/virtio/blk.js';
import { VirtioConsole } from '../src/devices/virtio/console.js';
import { VirtioBalloon } from '../src/devices/virtio/balloon.js';
import { xorshift32 } from './helpers/rng.js';
import { residentBytes } from '../src/host/resident.js';

// ---- transport -----------------------------------------------------------------------------------

test('mmio transport: identification registers and offered features', () => {
  const d = new Driver(new VirtioRng());
  assert.equal(d.r(0x000), 0x74726976);
  assert.equal(d.r(0x004), 2);
  assert.equal(d.r(0x008), 4);
  assert.equal(d.r(0x00c), 0x554d4551);
  const f = d.deviceFeatures();
  assert.equal((f >> F.VERSION_1) & 1n, 1n);
  assert.equal((f >> F.INDIRECT) & 1n, 1n);
  assert.equal((f >> F.EVENT_IDX) & 1n, 1n);
  d.w(0x30, 0);
  assert.equal(d.r(0x34), 64, 'QueueNumMax of queue 0');
  d.w(0x30, 1);
  assert.equal(d.r(0x34), 0, 'no queue 1');
});

test('mmio transport: FEATURES_OK refused without VERSION_1 or with unoffered bits', () => {
  const d = new Driver(new VirtioRng());
  d.w(0x70, S.ACK | S.DRIVER);
  d.w(0x24, 0);
  d.w(0x20, 0);
  d.w(0x24, 1);
  d.w(0x20, 0);
  d.w(0x70, S.ACK | S.DRIVER | S.FEATURES_OK);
  assert.equal(d.r(0x70) & S.FEATURES_OK, 0, 'legacy driver refused');
  d.w(0x70, 0);
  assert.equal(d.r(0x70), 0, 'reset');
  d.w(0x70, S.ACK | S.DRIVER);
  d.w(0x24, 1);
  d.w(0x20, 1 | (1 << 7)); // VERSION_1 plus bit 39, never offered
  d.w(0x70, S.ACK | S.DRIVER | S.FEATURES_OK);
  assert.equal(d.r(0x70) & S.FEATURES_OK, 0, 'unoffered feature refused');
});

test('mmio transport: zero or non-power-of-two queue size is refused with NEEDS_RESET', () => {
  for (const bad of [0, 3, 128]) {
    const d = new Driver(new VirtioRng());
    d.w(0x70, S.ACK | S.DRIVER);
    d.w(0x24, 1);
    d.w(0x20, 1);
    d.w(0x70, S.ACK | S.DRIVER | S.FEATURES_OK);
    d.w(0x30, 0);
    d.w(0x38, bad);
    d.w(0x80, RAM);
    d.w(0x90, RAM + 0x1000);
    d.w(0xa0, RAM + 0x2000);
    d.w(0x44, 1);
    assert.equal(d.r(0x44), 0, `size ${bad}: queue not ready`);
    assert.ok(d.r(0x70) & S.NEEDS_RESET, `size ${bad}: NEEDS_RESET`);
    // A reset clears it and the device can be used again.
    d.init();
    assert.equal(d.r(0x70) & S.NEEDS_RESET, 0);
  }
});

test('mmio transport: rings outside RAM are refused', () => {
  const d = new Driver(new VirtioRng());
  d.w(0x70, S.ACK | S.DRIVER);
  d.w(0x24, 1);
  d.w(0x20, 1);
  d.w(0x70, S.ACK | S.DRIVER | S.FEATURES_OK);
  d.w(0x30, 0);
  d.w(0x38, 8);
  d.w(0x80, 0x0900_0000); // the UART, not RAM
  d.w(0x90, RAM + 0x1000);
  d.w(0xa0, RAM + 0x2000);
  d.w(0x44, 1);
  assert.equal(d.r(0x44), 0);
  assert.ok(d.r(0x70) & S.NEEDS_RESET);
});

// ---- queue handling through virtio-rng ------------------------------------------------------------

test('virtqueue: direct chain of two writable buffers, interrupt and ack', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  const a = d.alloc(64);
  const b = d.alloc(32);
  const head = d.chain(0, [
    { addr: a, len: 64, write: true },
    { addr: b, len: 32, write: true },
  ]);
  d.avail(0, head);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: head, len: 96 }]);
  assert.ok(
    d.bytes(a, 64).some((x) => x !== 0),
    'random bytes written',
  );
  assert.ok(d.bytes(b, 32).some((x) => x !== 0));
  assert.equal(d.irq, true);
  assert.equal(d.ack(), 1, 'used buffer interrupt');
  assert.equal(d.irq, false);
});

test('virtqueue: indirect descriptor table', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  const a = d.alloc(16);
  const b = d.alloc(48);
  const head = d.indirectChain(0, [
    { addr: a, len: 16, write: true },
    { addr: b, len: 48, write: true },
  ]);
  d.avail(0, head);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: head, len: 64 }]);
});

test('virtqueue: indirect descriptor refused when the feature was not negotiated', () => {
  const d = new Driver(new VirtioRng());
  d.init(~(1n << F.INDIRECT));
  const a = d.alloc(16);
  const head = d.indirectChain(0, [{ addr: a, len: 16, write: true }]);
  d.avail(0, head);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: head, len: 0 }], 'request failed');
  assert.ok(
    d.bytes(a, 16).every((x) => x === 0),
    'buffer untouched',
  );
});

test('virtqueue: event-idx suppresses interrupts until used_event is reached and publishes avail_event', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  const buf = () => d.chain(0, [{ addr: d.alloc(8), len: 8, write: true }]);
  d.setUsedEvent(0, 0);
  d.avail(0, buf());
  d.kick(0);
  assert.equal(d.irqEdges, 1, 'first used buffer (used_event 0) interrupts');
  assert.equal(d.availEvent(0), 1, 'avail_event = next index the device reads');
  d.ack();
  // Ask for an interrupt only when used idx passes 3 (used_event = 3 means after entry 3).
  d.setUsedEvent(0, 3);
  d.avail(0, buf());
  d.kick(0);
  d.avail(0, buf());
  d.kick(0);
  assert.equal(d.irqEdges, 1, 'entries 1 and 2: no interrupt');
  d.avail(0, buf());
  d.kick(0);
  assert.equal(d.irqEdges, 2, 'entry 3 reaches used_event: interrupt');
  assert.equal(d.availEvent(0), 4);
  assert.equal(d.used(0).length, 4);
});

test('virtqueue: VIRTQ_AVAIL_F_NO_INTERRUPT without event-idx', () => {
  const d = new Driver(new VirtioRng());
  d.init(~(1n << F.EVENT_IDX));
  d.setAvailFlags(0, 1);
  d.avail(0, d.chain(0, [{ addr: d.alloc(8), len: 8, write: true }]));
  d.kick(0);
  assert.equal(d.used(0).length, 1);
  assert.equal(d.irqEdges, 0, 'suppressed');
  d.setAvailFlags(0, 0);
  d.avail(0, d.chain(0, [{ addr: d.alloc(8), len: 8, write: true }]));
  d.kick(0);
  assert.equal(d.irqEdges, 1);
});

/** After a malformed request, a good one must still work. */
function assertStillWorks(d: Driver): void {
  const a = d.alloc(8);
  const head = d.chain(0, [{ addr: a, len: 8, write: true }]);
  d.avail(0, head);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: head, len: 8 }], 'next request served');
  assert.equal(d.r(0x70) & S.NEEDS_RESET, 0);
}

test('virtqueue malformed: buffer outside guest RAM fails only that request', () => {
  for (const addr of [0x0900_0000, RAM + RAM_SIZE - 4, 0xffff_ffff_f000, 2 ** 63]) {
    const d = new Driver(new VirtioRng());
    d.init();
    const head = d.chain(0, [{ addr, len: 8, write: true }]);
    d.avail(0, head);
    d.kick(0);
    assert.deepEqual(d.used(0), [{ id: head, len: 0 }], `0x${addr.toString(16)}: failed`);
    assert.equal(d.t.malformedChains, 1);
    assertStillWorks(d);
  }
});

test('virtqueue malformed: descriptor loop terminates and fails the request', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  const a = d.alloc(8);
  // Descriptors 0 -> 1 -> 0 -> ...
  d.desc(d.ringBase(0), 0, a, 8, D_WRITE | D_NEXT, 1);
  d.desc(d.ringBase(0), 1, a, 8, D_WRITE | D_NEXT, 0);
  d.avail(0, 0);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: 0, len: 0 }]);
  // reuse slot 2 onwards
  (d as unknown as { nextDesc: number[] }).nextDesc[0] = 2;
  assertStillWorks(d);
});

test('virtqueue malformed: next index out of range fails the request', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  d.desc(d.ringBase(0), 0, d.alloc(8), 8, D_WRITE | D_NEXT, 200);
  d.avail(0, 0);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: 0, len: 0 }]);
  (d as unknown as { nextDesc: number[] }).nextDesc[0] = 1;
  assertStillWorks(d);
});

test('virtqueue malformed: nested indirect table and bad indirect length fail the request', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  const inner = d.alloc(16);
  d.desc(inner, 0, d.alloc(8), 8, D_WRITE, 0);
  const outer = d.alloc(16);
  d.desc(outer, 0, inner, 16, D_INDIRECT, 0);
  d.desc(d.ringBase(0), 0, outer, 16, D_INDIRECT, 0);
  d.avail(0, 0);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: 0, len: 0 }], 'nested indirect');
  d.desc(d.ringBase(0), 1, inner, 24, D_INDIRECT, 0);
  d.avail(0, 1);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: 1, len: 0 }], 'length not a multiple of 16');
  d.desc(d.ringBase(0), 2, RAM + RAM_SIZE - 16, 32, D_INDIRECT, 0);
  d.avail(0, 2);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: 2, len: 0 }], 'table runs past RAM');
  (d as unknown as { nextDesc: number[] }).nextDesc[0] = 3;
  assertStillWorks(d);
});

test('virtqueue malformed: indirect table with a loop is bounded', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  const t = d.alloc(32);
  const a = d.alloc(8);
  d.desc(t, 0, a, 8, D_WRITE | D_NEXT, 1);
  d.desc(t, 1, a, 8, D_WRITE | D_NEXT, 0);
  d.desc(d.ringBase(0), 0, t, 32, D_INDIRECT, 0);
  d.avail(0, 0);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: 0, len: 0 }]);
});

test('virtqueue malformed: head index out of range sets NEEDS_RESET and a config interrupt; reset recovers', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  d.avail(0, 9999);
  d.kick(0);
  assert.ok(d.r(0x70) & S.NEEDS_RESET);
  assert.equal(d.r(0x60) & 2, 2, 'configuration change interrupt');
  assert.deepEqual(d.used(0), []);
  d.init();
  assertStillWorks(d);
});

test('virtqueue malformed: available index running ahead of the queue sets NEEDS_RESET', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  d.mem.dv.setUint16(d.ringBase(0) + 0x1000 - RAM + 2, 500, true);
  d.kick(0);
  assert.ok(d.r(0x70) & S.NEEDS_RESET);
});

test('device model exceptions become NEEDS_RESET, never a throw', () => {
  const dev: VirtioDevice = {
    deviceId: 4,
    queueMax: [8],
    features: 0n,
    config: new Uint8Array(0),
    attach() {},
    notify() {
      throw new Error('boom');
    },
    reset() {},
  };
  const d = new Driver(dev);
  d.init();
  assert.doesNotThrow(() => d.kick(0));
  assert.ok(d.r(0x70) & S.NEEDS_RESET);
  assert.match(d.t.lastError ?? '', /boom/);
});

test('virtio-rng: large request is served', () => {
  const d = new Driver(new VirtioRng());
  d.init();
  const a = d.alloc(4096);
  const head = d.chain(0, [{ addr: a, len: 4096, write: true }]);
  d.avail(0, head);
  d.kick(0);
  assert.deepEqual(d.used(0), [{ id: head, len: 4096 }]);
  // 4096 random bytes: the chance that a given byte value is absent is negligible for 0..255 overall.
  const distinct = new Set(d.bytes(a, 4096)).size;
  assert.ok(distinct > 200, `bytes look random (${distinct} distinct values)`);
});

// ---- virtio-blk -------------------------------------------------------------------------------------

function tempImage(sectors: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-blk-'));
  const p = path.join(dir, 'disk.img');
  const data = Buffer.alloc(sectors * 512);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
  fs.writeFileSync(p, data);
  return p;
}

function blkHeader(d: Driver, type: number, sector: number): number {
  const h = d.alloc(16);
  const b = Buffer.alloc(16);
  b.writeUInt32LE(type, 0);
  b.writeBigUInt64LE(BigInt(sector), 8);
  d.put(h, b);
  return h;
}

function blkRequest(
  d: Driver,
  type: number,
  sector: number,
  data: Buf[],
): { status: number; used: { id: number; len: number }[] } {
  const h = blkHeader(d, type, sector);
  const st = d.alloc(1);
  d.put(st, Uint8Array.of(0xee));
  const head = d.chain(0, [{ addr: h, len: 16 }, ...data, { addr: st, len: 1, write: true }]);
  d.avail(0, head);
  d.kick(0);
  return { status: d.bytes(st, 1)[0], used: d.used(0) };
}

test('virtio-blk: config space, read, write, flush, get-id, unsupported type', () => {
  const img = tempImage(64);
  const orig = fs.readFileSync(img);
  const blk = new VirtioBlk({ path: img, serial: 'disk-serial-1' });
  const d = new Driver(blk);
  d.init();
  // capacity at config offset 0 (two 32-bit reads), blk_size at 20
  assert.equal(d.r(0x100), 64);
  assert.equal(d.r(0x104), 0);
  assert.equal(d.r(0x114), 512);
  const f = d.deviceFeatures();
  assert.equal((f >> 9n) & 1n, 1n, 'FLUSH');
  assert.equal((f >> 5n) & 1n, 0n, 'not RO');

  // Read sectors 3..4 into two buffers of 512 bytes.
  const a = d.alloc(512);
  const b = d.alloc(512);
  let r = blkRequest(d, 0, 3, [
    { addr: a, len: 512, write: true },
    { addr: b, len: 512, write: true },
  ]);
  assert.equal(r.status, 0);
  assert.equal(r.used[0].len, 1025);
  assert.deepEqual(Buffer.from(d.bytes(a, 512)), orig.subarray(3 * 512, 4 * 512));
  assert.deepEqual(Buffer.from(d.bytes(b, 512)), orig.subarray(4 * 512, 5 * 512));

  // Write sector 10.
  const w = d.alloc(512);
  d.put(w, Buffer.alloc(512, 0x5a));
  r = blkRequest(d, 1, 10, [{ addr: w, len: 512 }]);
  assert.equal(r.status, 0);
  assert.equal(r.used[0].len, 1);
  r = blkRequest(d, 4, 0, []);
  assert.equal(r.status, 0, 'flush');
  const now = fs.readFileSync(img);
  assert.deepEqual(now.subarray(10 * 512, 11 * 512), Buffer.alloc(512, 0x5a));
  assert.deepEqual(now.subarray(0, 10 * 512), orig.subarray(0, 10 * 512));

  // GET_ID: 20 bytes, NUL padded.
  const id = d.alloc(20);
  r = blkRequest(d, 8, 0, [{ addr: id, len: 20, write: true }]);
  assert.equal(r.status, 0);
  assert.equal(Buffer.from(d.bytes(id, 20)).toString('latin1'), 'disk-serial-1\0\0\0\0\0\0\0');

  // Unsupported type (DISCARD = 11): UNSUPP.
  r = blkRequest(d, 11, 0, []);
  assert.equal(r.status, 2);

  // Beyond capacity and unaligned length: IOERR, file unchanged.
  r = blkRequest(d, 0, 63, [{ addr: a, len: 1024, write: true }]);
  assert.equal(r.status, 1);
  r = blkRequest(d, 1, 0, [{ addr: w, len: 100 }]);
  assert.equal(r.status, 1);
  assert.deepEqual(fs.readFileSync(img), now);
  r = blkRequest(d, 0, 2 ** 40, [{ addr: a, len: 512, write: true }]);
  assert.equal(r.status, 1);
  blk.close();
});

test('virtio-blk: read-only disk offers VIRTIO_BLK_F_RO and fails writes with IOERR', () => {
  const img = tempImage(8);
  const orig = fs.readFileSync(img);
  const blk = new VirtioBlk({ path: img, readOnly: true });
  const d = new Driver(blk);
  d.init();
  assert.equal((d.deviceFeatures() >> 5n) & 1n, 1n);
  const w = d.alloc(512);
  d.put(w, Buffer.alloc(512, 0x11));
  const r = blkRequest(d, 1, 0, [{ addr: w, len: 512 }]);
  assert.equal(r.status, 1);
  assert.deepEqual(fs.readFileSync(img), orig);
  const a = d.alloc(512);
  assert.equal(blkRequest(d, 0, 1, [{ addr: a, len: 512, write: true }]).status, 0, 'reads still work');
  assert.equal(blkRequest(d, 4, 0, []).status, 0, 'flush is harmless');
  blk.close();
});

test('virtio-blk: malformed request (data buffer outside RAM) gets IOERR and the disk is untouched', () => {
  const img = tempImage(8);
  const orig = fs.readFileSync(img);
  const blk = new VirtioBlk({ path: img });
  const d = new Driver(blk);
  d.init();
  const r = blkRequest(d, 1, 0, [{ addr: 0x0800_0000, len: 512 }]);
  assert.equal(r.status, 1);
  assert.equal(r.used.length, 1);
  assert.deepEqual(fs.readFileSync(img), orig);
  const a = d.alloc(512);
  assert.equal(blkRequest(d, 0, 0, [{ addr: a, len: 512, write: true }]).status, 0);
  blk.close();
});

test('virtio-blk: a missing image file is a clear error', () => {
  assert.throws(
    () => new VirtioBlk({ path: '/nonexistent/disk.img' }),
    /disk \/nonexistent\/disk.img: cannot open: no such file/,
  );
});

// ---- virtio-console ---------------------------------------------------------------------------------

test('virtio-console: output, input with and without receive buffers, resize', () => {
  const out: string[] = [];
  const con = new VirtioConsole({ output: (b) => out.push(Buffer.from(b).toString()), cols: 100, rows: 40 });
  const d = new Driver(con);
  d.init();
  assert.equal(d.t.read(0x100, 2), 100);
  assert.equal(d.t.read(0x102, 2), 40);

  // Transmit: two readable buffers.
  const t1 = d.alloc(6);
  const t2 = d.alloc(7);
  d.put(t1, Buffer.from('hello '));
  d.put(t2, Buffer.from('world!\n'));
  const th = d.chain(1, [
    { addr: t1, len: 6 },
    { addr: t2, len: 7 },
  ]);
  d.avail(1, th);
  d.kick(1);
  assert.equal(out.join(''), 'hello world!\n');
  assert.deepEqual(d.used(1), [{ id: th, len: 0 }]);

  // No receive buffers: write() takes nothing.
  assert.equal(con.write(Buffer.from('abc')), 0);
  // push() queues the input.
  con.push(Buffer.from('ls -l\n'));
  assert.equal(con.queuedInput, 6);
  let spaceCalls = 0;
  con.onRxSpace = () => spaceCalls++;
  // Guest posts a 4-byte receive buffer: 4 bytes delivered, 2 stay queued.
  const r1 = d.alloc(4);
  d.avail(0, d.chain(0, [{ addr: r1, len: 4, write: true }]));
  d.kick(0);
  assert.equal(spaceCalls, 1);
  let u = d.used(0);
  assert.equal(u.length, 1);
  assert.equal(u[0].len, 4);
  assert.equal(Buffer.from(d.bytes(r1, 4)).toString(), 'ls -');
  assert.equal(con.queuedInput, 2);
  const r2 = d.alloc(16);
  d.avail(0, d.chain(0, [{ addr: r2, len: 16, write: true }]));
  d.kick(0);
  u = d.used(0);
  assert.equal(u[0].len, 2);
  assert.equal(Buffer.from(d.bytes(r2, 2)).toString(), 'l\n');
  assert.equal(con.queuedInput, 0);

  // write() with buffers posted returns what fit.
  const r3 = d.alloc(3);
  d.avail(0, d.chain(0, [{ addr: r3, len: 3, write: true }]));
  d.kick(0);
  assert.equal(con.write(Buffer.from('xyzw')), 3);
  assert.equal(Buffer.from(d.bytes(r3, 3)).toString(), 'xyz');

  d.ack();
  con.resize(132, 50);
  assert.equal(d.r(0x60) & 2, 2, 'config change interrupt');
  assert.equal(d.t.read(0x100, 2), 132);
  assert.equal(d.t.read(0x102, 2), 50);

  // Emergency write through config space.
  d.t.write(0x108, 4, 0x41);
  assert.equal(out.join('').slice(-1), 'A');
});

// ---- virtio-balloon ---------------------------------------------------------------------------------

test('virtio-balloon: target, inflate/deflate accounting, actual and stats', () => {
  const bal = new VirtioBalloon();
  const d = new Driver(bal);
  d.init();
  d.ack();
  bal.setTarget(3);
  assert.equal(d.r(0x100), 3, 'num_pages');
  assert.equal(d.r(0x60) & 2, 2, 'config change interrupt');
  const gen = d.r(0xfc);
  assert.ok(gen > 0, 'config generation moved');

  const pfn0 = RAM / 4096 + 0x200; // pages inside RAM
  const page = pfn0 * 4096;
  d.mem.u8.fill(0x77, page - RAM, page - RAM + 4096);
  const list = d.alloc(16);
  const lb = Buffer.alloc(16);
  lb.writeUInt32LE(pfn0, 0);
  lb.writeUInt32LE(pfn0 + 1, 4);
  lb.writeUInt32LE(pfn0 + 2, 8);
  lb.writeUInt32LE(0x10, 12); // outside RAM: ignored
  d.put(list, lb);
  d.avail(0, d.chain(0, [{ addr: list, len: 16 }]));
  d.kick(0);
  assert.equal(d.used(0).length, 1);
  assert.equal(bal.inflated.size, 3);
  assert.equal(bal.rejectedPages, 1);
  assert.ok(
    d.bytes(page, 4096).every((x) => x === 0),
    'inflated page discarded',
  );
  d.t.write(0x104, 4, 3);
  assert.equal(bal.actualPages, 3);

  const dl = d.alloc(4);
  d.put(
    dl,
    Uint8Array.from([
      (pfn0 + 1) & 0xff,
      ((pfn0 + 1) >> 8) & 0xff,
      ((pfn0 + 1) >> 16) & 0xff,
      (pfn0 + 1) >>> 24,
    ]),
  );
  d.avail(1, d.chain(1, [{ addr: dl, len: 4 }]));
  d.kick(1);
  assert.equal(bal.inflated.size, 2);
  assert.ok(!bal.inflated.has(pfn0 + 1));

  // Stats: the driver posts a buffer with two entries; the device keeps it until asked again.
  const sb = d.alloc(20);
  const s = Buffer.alloc(20);
  s.writeUInt16LE(4, 0);
  s.writeBigUInt64LE(123456n, 2);
  s.writeUInt16LE(5, 10);
  s.writeBigUInt64LE(999999n, 12);
  d.put(sb, s);
  const sh = d.chain(2, [{ addr: sb, len: 20 }]);
  d.avail(2, sh);
  d.kick(2);
  assert.deepEqual(bal.stats, { 'free-memory': 123456n, 'total-memory': 999999n });
  assert.deepEqual(d.used(2), []);
  assert.equal(bal.requestStats(), true);
  assert.deepEqual(d.used(2), [{ id: sh, len: 0 }]);
});

const BALLOON_F = { STATS: 1n, DEFLATE_ON_OOM: 2n, REPORTING: 5n };
const residentSkip = process.platform !== 'linux' ? 'needs Linux madvise and /proc/self/pagemap' : false;

/** Fill guest RAM [pa, pa+len) with a pattern that has no zero byte. */
function pattern(d: Driver, pa: number, len: number): void {
  for (let i = 0; i < len; i += 4) d.mem.dv.setUint32(pa - RAM + i, 0x01010101 + i, true);
}

function isZero(d: Driver, pa: number, len: number): boolean {
  return d.bytes(pa, len).every((x) => x === 0);
}

/** Send page frame numbers on the inflate (0) or deflate (1) queue, 256 to a buffer as Linux does. */
function sendPfns(d: Driver, q: number, pfns: number[]): void {
  for (let i = 0; i < pfns.length; i += 256) {
    const part = pfns.slice(i, i + 256);
    const buf = Buffer.alloc(4 * part.length);
    part.forEach((p, k) => buf.writeUInt32LE(p, 4 * k));
    const at = d.alloc(buf.length);
    d.put(at, buf);
    d.avail(q, d.chain(q, [{ addr: at, len: buf.length }]));
    d.kick(q);
    assert.equal(d.used(q).length, 1, 'the buffer comes back');
  }
}

test('virtio-balloon: inflation gives the pages back to the host; deflation hands them back zero', { skip: residentSkip }, () => {
  const bal = new VirtioBalloon();
  const d = new Driver(bal, { ramSize: 64 << 20 });
  d.init(~0n, 8);
  const region = RAM + (32 << 20);
  const pages = 4096; // 16 MiB
  pattern(d, region - 4096, (pages + 2) * 4096);
  const view = d.mem.u8.subarray(region - RAM, region - RAM + pages * 4096);
  const before = residentBytes(view)!;
  // A page of translated code inside the region is invalidated when it goes into the balloon.
  const codePage = (region - RAM) / 4096 + 77;
  d.mem.codePages[codePage] = 1;
  const invalidated: number[] = [];
  d.mem.onCodeWrite = (p) => invalidated.push(p);
  // Linux inflates in no particular order: shuffle the page numbers.
  const pfns = Array.from({ length: pages }, (_, i) => region / 4096 + i);
  const rnd = xorshift32(7);
  for (let i = pfns.length - 1; i > 0; i--) {
    const j = rnd() % (i + 1);
    [pfns[i], pfns[j]] = [pfns[j], pfns[i]];
  }
  sendPfns(d, 0, pfns);
  assert.equal(bal.inflated.size, pages);
  const after = residentBytes(view)!;
  assert.ok(before >= 16 << 20, `the region was resident (${before})`);
  assert.ok(after <= 2 * 4096, `resident ${before} -> ${after}: the 16 MiB went back (but the host pages it shares at its ends)`);
  assert.ok(isZero(d, region, pages * 4096), 'balloon pages read zero');
  assert.notEqual(d.mem.u8[region - RAM - 1], 0, 'the page before the balloon is kept');
  assert.notEqual(d.mem.u8[region - RAM + pages * 4096], 0, 'the page after it is kept');
  assert.ok(invalidated.includes(codePage), 'cached code on a dropped page is invalidated');

  // A single page between pages outside the balloon still reads zero afterwards.
  const lone = RAM + (8 << 20) + 5 * 4096;
  pattern(d, lone - 4096, 3 * 4096);
  sendPfns(d, 0, [lone / 4096]);
  assert.ok(isZero(d, lone, 4096));
  assert.notEqual(d.mem.u8[lone - RAM - 1], 0);
  assert.notEqual(d.mem.u8[lone - RAM + 4096], 0);

  // Deflate: the guest takes the pages back, zero, and uses them.
  sendPfns(d, 1, pfns.slice(0, 1000));
  assert.equal(bal.inflated.size, pages + 1 - 1000);
  assert.ok(isZero(d, region, pages * 4096), 'deflated pages read zero');
  d.mem.u8[region - RAM + 100] = 9;
  assert.equal(d.mem.u8[region - RAM + 100], 9);
});

test('virtio-balloon: queues follow the negotiated features; free page reporting drops what the guest reports', { skip: residentSkip }, () => {
  for (const withStats of [false, true]) {
    const bal = new VirtioBalloon();
    assert.equal(bal.queueMax.length, 4, 'inflate, deflate, stats, reporting offered');
    const d = new Driver(bal, { ramSize: 64 << 20 });
    const drop = withStats ? 0n : 1n << BALLOON_F.STATS;
    d.init(~drop, 8);
    assert.equal(bal.statsActive, withStats);
    // Linux numbers the reporting queue 3 with the stats queue, 2 without it.
    const rq = withStats ? 3 : 2;
    const region = RAM + (40 << 20);
    pattern(d, region, 8 << 20);
    const view = d.mem.u8.subarray(region - RAM, region - RAM + (8 << 20));
    const before = residentBytes(view)!;
    // Two 2 MiB blocks in one chain (device-writable buffers, as Linux adds them), one more alone.
    d.avail(rq, d.chain(rq, [
      { addr: region, len: 2 << 20, write: true },
      { addr: region + (4 << 20), len: 2 << 20, write: true },
    ]));
    d.avail(rq, d.chain(rq, [{ addr: region + (6 << 20), len: 2 << 20, write: true }]));
    d.kick(rq);
    assert.equal(d.used(rq).length, 2, 'both reports come back');
    assert.equal(bal.reportedBytes, 6 << 20);
    const after = residentBytes(view)!;
    assert.ok(before >= 8 << 20 && before - after >= (6 << 20) - 3 * 2 * 4096, `resident ${before} -> ${after}`);
    assert.ok(isZero(d, region + 4096, (2 << 20) - 2 * 4096), 'reported pages read zero');
    assert.notEqual(d.mem.u8[region - RAM + (3 << 20)], 0, 'memory not reported is kept');
    assert.equal(bal.inflated.size, 0, 'reported pages are not in the balloon');
    if (withStats) {
      // Statistics on queue 2: the device holds the buffer and returns it to ask for fresh ones.
      const sb = d.alloc(10);
      const s = Buffer.alloc(10);
      s.writeUInt16LE(6, 0);
      s.writeBigUInt64LE(300n << 20n, 2);
      d.put(sb, s);
      const head = d.chain(2, [{ addr: sb, len: 10 }]);
      d.avail(2, head);
      d.kick(2);
      assert.deepEqual(bal.stats, { 'available-memory': 300n << 20n });
      assert.equal(bal.requestStats(), true);
      assert.deepEqual(d.used(2), [{ id: head, len: 0 }]);
      assert.equal(bal.requestStats(), false, 'nothing to return until the driver adds the buffer again');
    } else {
      assert.equal(bal.requestStats(), false, 'no stats queue in use');
    }
  }
});

test('virtio-balloon: options leave features and queues out', () => {
  const bal = new VirtioBalloon({ stats: false, reporting: false, deflateOnOom: false });
  assert.equal(bal.features, 0n);
  assert.equal(bal.queueMax.length, 2);
});

// ---- fuzz: random rings never make a device model throw ------------------------------------------------

test('virtqueue fuzz: random descriptor tables and rings never throw out of a device model', () => {
  const rnd = xorshift32(0x1234_5678);
  const img = tempImage(16);
  const makers: (() => VirtioDevice)[] = [
    () => new VirtioRng(),
    () => new VirtioBlk({ path: img }),
    () => new VirtioConsole({ output: () => {} }),
    () => new VirtioBalloon(),
  ];
  for (let round = 0; round < 200; round++) {
    const dev = makers[round % makers.length]();
    const d = new Driver(dev);
    d.init();
    for (let q = 0; q < dev.queueMax.length; q++) {
      const base = d.ringBase(q) - RAM;
      // Descriptors: random flags/next/len, addresses mostly near RAM (some inside, some not).
      for (let i = 0; i < d.qsize[q]; i++) {
        const o = base + 16 * i;
        const r = rnd();
        const addr = r & 1 ? RAM + (rnd() % RAM_SIZE) : rnd() * (r & 2 ? 1 : 65536);
        d.mem.dv.setUint32(o, addr % 0x1_0000_0000, true);
        d.mem.dv.setUint32(o + 4, Math.floor(addr / 0x1_0000_0000), true);
        d.mem.dv.setUint32(o + 8, r & 4 ? rnd() % 4096 : rnd(), true);
        d.mem.dv.setUint16(o + 12, rnd() & 7, true);
        d.mem.dv.setUint16(o + 14, r & 8 ? rnd() % d.qsize[q] : rnd() & 0xffff, true);
      }
      const a = base + 0x1000;
      for (let i = 0; i < d.qsize[q]; i++) {
        d.mem.dv.setUint16(a + 4 + 2 * i, rnd() & 1 ? rnd() % d.qsize[q] : rnd() & 0xffff, true);
      }
      d.mem.dv.setUint16(a + 2, rnd() % (2 * d.qsize[q]), true);
      d.mem.dv.setUint16(a, rnd() & 1, true);
      assert.doesNotThrow(() => d.kick(q));
      assert.doesNotMatch(d.t.lastError ?? '', /device model error/, `round ${round} queue ${q}`);
    }
    if (dev instanceof VirtioConsole) assert.doesNotThrow(() => dev.write(Buffer.from('input')));
    if (dev instanceof VirtioBlk) dev.close();
  }
});

// ---- snapshots --------------------------------------------------------------------------------------

test('snapshot: transport, queues and console input survive save/restore into a fresh machine', () => {
  const out1: string[] = [];
  const c1 = new VirtioConsole({ output: (b) => out1.push(Buffer.from(b).toString()) });
  const d1 = new Driver(c1);
  d1.init();
  const r1 = d1.alloc(4);
  d1.avail(0, d1.chain(0, [{ addr: r1, len: 4, write: true }]));
  d1.kick(0);
  c1.push(Buffer.from('abcdefgh'));
  assert.equal(c1.queuedInput, 4);
  d1.used(0);
  const state = JSON.parse(JSON.stringify(d1.t.saveState()));

  const out2: string[] = [];
  const c2 = new VirtioConsole({ output: (b) => out2.push(Buffer.from(b).toString()) });
  const d2 = new Driver(c2);
  d2.mem.u8.set(d1.mem.u8);
  // Carry the test driver's own bookkeeping over as well.
  for (const k of ['qsize', 'nextDesc', 'availIdx', 'seenUsed', 'heap']) {
    (d2 as unknown as Record<string, unknown>)[k] = structuredClone(
      (d1 as unknown as Record<string, unknown>)[k],
    );
  }
  d2.t.restoreState(state);
  assert.equal(d2.r(0x70), d1.r(0x70), 'status');
  assert.equal(c2.queuedInput, 4);
  const r2 = d2.alloc(8);
  d2.avail(0, d2.chain(0, [{ addr: r2, len: 8, write: true }]));
  d2.kick(0);
  const u = d2.used(0);
  assert.equal(u.length, 1);
  assert.equal(u[0].len, 4);
  assert.equal(Buffer.from(d2.bytes(r2, 4)).toString(), 'efgh');
  // Output still flows.
  const t = d2.alloc(2);
  d2.put(t, Buffer.from('ok'));
  d2.avail(1, d2.chain(1, [{ addr: t, len: 2 }]));
  d2.kick(1);
  assert.equal(out2.join(''), 'ok');
  assert.throws(() => new Driver(new VirtioRng()).t.restoreState(state), /snapshot is for device 3/);
});

test('virtio-console: a corrupt receive ring found while delivering host input sets NEEDS_RESET', () => {
  const con = new VirtioConsole({ output: () => {} });
  const d = new Driver(con);
  d.init();
  d.avail(0, 4242); // head index out of range, published without a kick
  assert.equal(con.write(Buffer.from('x')), 0);
  assert.ok(d.r(0x70) & S.NEEDS_RESET);
  assert.equal(d.r(0x60) & 2, 2);
});

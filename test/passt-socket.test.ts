// The socket typevisor hands to passt: passt writes the frames for the guest without blocking and
// drops what the socket's buffer cannot take, so both ends get PASST_SOCKET_BUFFER of send buffer
// (up to net.core.wmem_max where the process may not force it), not the default that holds three
// 64 KiB frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, readFileSync, writeSync } from 'node:fs';
import { PASST_SOCKET_BUFFER, PasstBackend, passtSocketpair, socketFd } from '../src/host/passt.js';
import { sendBufferOf } from '../src/host/sys.js';

function sysctl(name: string): number {
  return Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8'));
}

test("passt's socketpair has a send buffer for a burst of 64 KiB frames on both ends, and carries bytes", async () => {
  const [ours, theirs] = passtSocketpair();
  try {
    const fd = socketFd(ours);
    assert.ok(fd >= 0, 'the socket has a descriptor');
    // The kernel doubles what it is given; unprivileged, it caps the request at wmem_max first.
    const least = 2 * Math.min(PASST_SOCKET_BUFFER, sysctl('wmem_max'));
    const dflt = sysctl('wmem_default');
    for (const [end, f] of [
      ['ours', fd],
      ['passt', theirs],
    ] as const) {
      const size = sendBufferOf(f);
      assert.ok(size >= least, `${end}: send buffer ${size} bytes, expected at least ${least}`);
      assert.ok(size > dflt, `${end}: send buffer ${size} bytes is no more than the default ${dflt}`);
    }
    // The pair is connected: what passt's end writes arrives on ours.
    const got = new Promise<Buffer>((resolve) => ours.once('data', resolve));
    writeSync(theirs, Buffer.from('frame'));
    assert.equal((await got).toString(), 'frame');
  } finally {
    ours.destroy();
    closeSync(theirs);
  }
});

/** Frames of `len` bytes numbered from `from`, each behind passt's 4-byte big-endian length. */
function framed(count: number, len: number, from: number): { frames: Buffer[]; wire: Buffer } {
  const frames = Array.from({ length: count }, (_, i) => {
    const f = Buffer.alloc(len, (from + i) & 255);
    f.writeUInt32BE(from + i, 0);
    return f;
  });
  const wire = Buffer.concat(frames.flatMap((f) => [Buffer.from([0, 0, len >> 8, len & 255]), f]));
  return { frames, wire };
}

test('passt backend: poll() hands a bulk of frames over at once, in order and whole, without the event loop; a trickle waits for it', async () => {
  const [ours, theirs] = passtSocketpair();
  const be = new PasstBackend(ours);
  try {
    const got: Buffer[] = [];
    be.start(
      (f) => got.push(Buffer.from(f)),
      () => {},
    );
    // 200 frames of 1514 bytes (about 300 KiB): more than one read of poll(), so a frame is split
    // across two reads.
    const bulk = framed(200, 1514, 0);
    writeSync(theirs, bulk.wire);
    be.poll(); // synchronously: the event loop has not turned since the write
    assert.equal(got.length, 200, 'poll() delivered the whole bulk');
    got.forEach((f, i) => assert.ok(f.equals(bulk.frames[i]), `frame ${i} whole and in order`));
    // One small frame is left to the event loop's read.
    const small = framed(1, 60, 200);
    writeSync(theirs, small.wire);
    be.poll();
    assert.equal(got.length, 200, 'poll() left a single small frame to the event loop');
    for (let i = 0; i < 100 && got.length < 201; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, 201, 'the event loop delivered it');
    assert.ok(got[200].equals(small.frames[0]));
  } finally {
    be.close();
    closeSync(theirs);
  }
});

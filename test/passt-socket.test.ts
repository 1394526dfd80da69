// The socket typevisor hands to passt: passt writes the frames for the guest without blocking and
// drops what the socket's buffer cannot take, so both ends get PASST_SOCKET_BUFFER of send buffer
// (up to net.core.wmem_max where the process may not force it), not the default that holds three
// 64 KiB frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, readFileSync, writeSync } from 'node:fs';
import { PASST_SOCKET_BUFFER, passtSocketpair } from '../src/host/passt.js';
import { sendBufferOf } from '../src/host/sys.js';

function sysctl(name: string): number {
  return Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8'));
}

test("passt's socketpair has a send buffer for a burst of 64 KiB frames on both ends, and carries bytes", async () => {
  const [ours, theirs] = passtSocketpair();
  try {
    const fd = (ours as unknown as { _handle: { fd: number } })._handle.fd;
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

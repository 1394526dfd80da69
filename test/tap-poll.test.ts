// TapBackend.poll(): frames its reader thread has posted are taken between run slices only once at
// least POLL_MIN_BYTES wait; less waits for the event loop. The reader reads any descriptor, so a
// socketpair stands in for the TAP device here (a stream: reads may join writes, so bytes are compared).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, writeSync } from 'node:fs';
import { TapBackend } from '../src/host/tap.js';
import { POLL_MIN_BYTES } from '../src/host/net-backend.js';
import { setSendBuffer, sysSocketpair } from '../src/host/sys.js';

/** Block this thread (the event loop does not turn) for `ms`. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

test('TAP backend: poll() leaves less than POLL_MIN_BYTES to the event loop, then takes everything waiting, in order', async () => {
  const [tapEnd, hostEnd] = sysSocketpair();
  setSendBuffer(hostEnd, 1 << 20);
  const be = new TapBackend(tapEnd, 'test0');
  const got: Buffer[] = [];
  try {
    be.start((f) => got.push(Buffer.from(f)));
    const small = Buffer.alloc(60, 7);
    writeSync(hostEnd, small);
    blockFor(300); // the reader posts it meanwhile
    be.poll();
    assert.equal(got.length, 0, 'poll() took a trickle that the event loop should have');
    const bulk = Buffer.alloc(POLL_MIN_BYTES + 4096);
    for (let i = 0; i < bulk.length; i += 4) bulk.writeUInt32LE(i, i);
    writeSync(hostEnd, bulk);
    blockFor(300);
    be.poll();
    assert.ok(
      Buffer.concat(got).equals(Buffer.concat([small, bulk])),
      'poll() took all that waited, in order',
    );
    // What poll() took no longer counts as waiting: the next trickle is the event loop's again.
    const small2 = Buffer.alloc(60, 9);
    writeSync(hostEnd, small2);
    blockFor(300);
    be.poll();
    assert.ok(Buffer.concat(got).equals(Buffer.concat([small, bulk])), 'poll() took the second trickle');
    for (let i = 0; i < 100 && Buffer.concat(got).length < small.length + bulk.length + small2.length; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.ok(
      Buffer.concat(got).equals(Buffer.concat([small, bulk, small2])),
      'the event loop delivered it, once',
    );
  } finally {
    be.close();
    closeSync(hostEnd);
  }
});

// The TAP backend under flow control (src/host/tap.ts TapBackend): once the device pauses it, the
// frames its reader thread had already read (the rest of a batch, batches on their way) are kept, not
// handed to the device (whose backlog is full) nor dropped, and they come first, in order, when the
// device resumes it. A child Node.js in a network namespace the test creates opens a TAP device there;
// UDP datagrams sent to an address behind the TAP are the frames the backend reads.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { Netns, netnsSkipReason } from './helpers/netns.js';

const DATAGRAMS = 300;
/** The device's stand-in pauses the backend after this many frames (as a full backlog would). */
const PAUSE_AFTER = 5;

interface Result {
  /** Sequence numbers received before the pause and while paused. */
  whilePaused: number[];
  /** Sequence numbers received in all, after the resume. */
  all: number[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** In the namespace: a TAP, its backend, the datagrams; prints `RESULT <json>`. */
async function child(): Promise<void> {
  const { openTap, ip, TapBackend } = await import('../src/host/tap.js');
  const what = 'tap-holdback';
  const t = openTap('tvhold0', what);
  ip(what, ['addr', 'add', '10.99.0.1/24', 'dev', t.name]);
  ip(what, ['link', 'set', t.name, 'up']);
  // A fixed neighbour: the datagrams go out as they are, no ARP first.
  ip(what, ['neigh', 'add', '10.99.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', t.name]);
  const be = new TapBackend(t.fd, t.name);
  const got: number[] = [];
  be.start((frame) => {
    // Frames are the virtio-net header and Ethernet; ours carry "TVSEQ:<n>;" (IPv6 chatter does not).
    const text = Buffer.from(frame).toString('latin1');
    const m = /TVSEQ:(\d+);/.exec(text);
    if (!m) return;
    got.push(Number(m[1]));
    if (got.length === PAUSE_AFTER) be.pause();
  });
  const sock = createSocket('udp4');
  for (let i = 0; i < DATAGRAMS; i++) {
    await new Promise<void>((resolve, reject) =>
      sock.send(`TVSEQ:${i};`, 9999, '10.99.0.2', (e) => (e ? reject(e) : resolve())),
    );
  }
  sock.close();
  await sleep(500);
  const whilePaused = [...got];
  be.resume();
  for (let i = 0; i < 100 && got.length < DATAGRAMS; i++) await sleep(50);
  be.close();
  process.stdout.write(`RESULT ${JSON.stringify({ whilePaused, all: got } satisfies Result)}\n`);
}

if (process.env.TV_TAP_HOLDBACK_CHILD === '1') {
  await child();
} else {
  test(
    'TAP backend: frames read before a pause are held, none delivered while paused, all delivered in order after resume',
    { skip: netnsSkipReason, timeout: 60_000 },
    async () => {
      const ns = new Netns();
      try {
        const p = ns.spawn([
          'env',
          'TV_TAP_HOLDBACK_CHILD=1',
          process.execPath,
          fileURLToPath(import.meta.url),
        ]);
        let out = '';
        let err = '';
        p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        const code = await new Promise<number | null>((r) => p.on('exit', r));
        assert.equal(code, 0, `child: ${err}`);
        const line = /^RESULT (.*)$/m.exec(out);
        assert.ok(line, `child printed its result: ${out} ${err}`);
        const r = JSON.parse(line[1]) as Result;
        const inOrder = Array.from({ length: DATAGRAMS }, (_, i) => i);
        assert.deepEqual(r.whilePaused, inOrder.slice(0, PAUSE_AFTER), 'nothing handed over while paused');
        assert.deepEqual(r.all, inOrder, 'every frame, once, in order, after the resume');
      } finally {
        ns.close();
      }
    },
  );
}

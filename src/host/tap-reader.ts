// Worker thread of a TAP backend (tap.ts): waits for frames with poll(2) (bounded, so that a stop
// request is seen within POLL_MS), reads each with one read(2), and posts them to the main thread
// in batches (transferred, not copied again) over the port it is given, which the main thread also
// drains between vCPU slices; flags[2] counts the bytes posted and not yet taken. While the main
// thread says "paused" it reads
// nothing and the kernel's TAP queue holds (or drops) the frames.

import { readSync } from 'node:fs';
import { workerData, type MessagePort } from 'node:worker_threads';
import { koffi, libcLibrary } from './sys.js';
import { batchBytes } from './net-backend.js';

const POLL_MS = 100;
const POLLIN = 1;
/** Frames posted in one message at most. */
const BATCH = 64;

const { fd, flags, max, port } = workerData as {
  fd: number;
  flags: Int32Array;
  max: number;
  port: MessagePort;
};
const lib = libcLibrary();
koffi().struct('pollfd', { fd: 'int', events: 'short', revents: 'short' });
const poll = lib.func('int poll(_Inout_ pollfd *fds, unsigned long n, int timeout)');

const buf = new Uint8Array(max);
const pfd = { fd, events: POLLIN, revents: 0 };

function readable(timeout: number): boolean {
  pfd.revents = 0;
  return poll(pfd, 1, timeout) > 0 && (pfd.revents & POLLIN) !== 0;
}

while (Atomics.load(flags, 0) === 0) {
  if (Atomics.load(flags, 1) === 1) {
    Atomics.wait(flags, 1, 1, POLL_MS);
    continue;
  }
  if (!readable(POLL_MS)) continue;
  const batch: ArrayBuffer[] = [];
  let failed = false;
  do {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch {
      n = -1;
    }
    if (n <= 0) {
      failed = true;
      break;
    }
    batch.push(buf.slice(0, n).buffer);
  } while (batch.length < BATCH && readable(0));
  if (batch.length > 0) {
    // Counted before the post, so the main thread never sees a batch it has not counted yet.
    Atomics.add(flags, 2, batchBytes(batch));
    port.postMessage(batch, batch);
  }
  // A read error (the interface went away): do not spin on it.
  if (failed) Atomics.wait(flags, 0, 0, POLL_MS);
}

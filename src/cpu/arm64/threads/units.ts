// Translated code shared between the threads of a machine's vCPUs. Each thread's code cache
// translates what its vCPU runs hot; the compiled module then goes to every other vCPU thread (a
// WebAssembly.Module posted to a MessagePort shares V8's compiled code, its later optimization
// included), whose code cache installs a unit when its vCPU enters the unit's head, if the page still
// holds the words the unit was translated from (CodeCache.offer/adopt). QEMU's vCPU threads share one
// cache of translated blocks the same way. Without it, a vCPU that runs code another vCPU ran (the
// kernel's, whenever a task moves) interprets it until it is hot and translates it again.
//
// Every two threads have a MessageChannel; a post bumps the receiver's UNITS word (link.ts), so a
// look at a thread's ports costs one shared read when nothing came.

import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { CodeCache, SharedUnits } from '../cpu.js';
import { V_UNITS, type VcpuLink } from './link.js';

export class UnitExchange {
  private seen = 0;

  constructor(
    private readonly link: VcpuLink,
    private readonly self: number,
    /** ports[id]: this thread's port to vCPU id's thread (none for itself). */
    private readonly ports: readonly (MessagePort | undefined)[],
  ) {}

  /** `code` hands what it compiles to the other threads, and takes theirs at take(). */
  attach(code: CodeCache): void {
    code.share = (s) => this.publish(s);
  }

  publish(s: SharedUnits): void {
    const i32 = this.link.i32;
    for (let id = 0; id < this.ports.length; id++) {
      const port = this.ports[id];
      if (port === undefined) continue;
      port.postMessage(s);
      Atomics.add(i32, this.link.at(id, V_UNITS), 1);
    }
  }

  /** Offer `code` what the other threads posted since the last look. */
  take(code: CodeCache): void {
    const n = this.link.get(this.self, V_UNITS);
    if (n === this.seen) return;
    this.seen = n;
    for (const port of this.ports) {
      if (port === undefined) continue;
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port))
        code.offer(m.message as SharedUnits);
    }
  }

  close(): void {
    for (const port of this.ports) port?.close();
  }
}

/** A channel between every two of `ncpus` vCPU threads: ports[i][j] is thread i's port to thread j. */
export function unitPorts(ncpus: number): (MessagePort | undefined)[][] {
  const ports = Array.from({ length: ncpus }, () =>
    new Array<MessagePort | undefined>(ncpus).fill(undefined),
  );
  for (let i = 0; i < ncpus; i++) {
    for (let j = i + 1; j < ncpus; j++) {
      const ch = new MessageChannel();
      ports[i][j] = ch.port1;
      ports[j][i] = ch.port2;
    }
  }
  return ports;
}

// virtio-rng (virtio 1.2, "Entropy Device"): one request queue; the device fills each writable
// buffer with bytes from the host's CSPRNG (node:crypto randomFillSync), or from the source it was
// given (a --deterministic VM's: host/deterministic.ts).

import { createRequire } from 'node:module';
import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';

/** Most bytes returned for one request (the driver asks again for more). */
const MAX_PER_REQUEST = 64 * 1024;

/**
 * node:crypto, loaded when the guest first asks for entropy rather than with this module: loading it
 * initialises OpenSSL, RSS that a VM without virtio-rng need not pay (node:crypto, node:zlib and
 * node:child_process together: 2 MiB of `typevisor run`'s peak RSS).
 */
let randomFill: ((buf: Uint8Array) => void) | undefined;
function fill(buf: Uint8Array): void {
  randomFill ??= (createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'))
    .randomFillSync;
  randomFill(buf);
}

export class VirtioRng extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.RNG;
  readonly queueMax = [64];
  readonly features = 0n;
  /** Bytes handed to the guest (diagnostics and tests). */
  bytesServed = 0;

  constructor(
    /** Where the bytes come from (default: the host's CSPRNG). */
    private readonly source: (buf: Uint8Array) => void = fill,
  ) {
    super(0);
  }

  notify(q: number): void {
    if (q !== 0) return;
    const vq = this.queue(0);
    const mem = this.host.mem;
    let any = false;
    for (let chain = vq.pop(); chain; chain = vq.pop()) {
      any = true;
      let written = 0;
      if (!chain.error) {
        for (const seg of chain.writable) {
          const n = Math.min(seg.len, MAX_PER_REQUEST - written);
          if (n <= 0) break;
          const view = mem.sliceForWrite(seg.addr, n);
          if (!view) break;
          this.source(view);
          written += n;
        }
      }
      this.bytesServed += written;
      vq.push(chain.head, written);
    }
    if (any) this.host.usedBuffers(0);
  }
}

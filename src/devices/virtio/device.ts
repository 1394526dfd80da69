// Shared plumbing for virtio device models: the transport hooks and a little-endian config space.

import type { VirtioDevice, VirtioHost } from './mmio.js';
import type { Chain, Virtqueue } from './queue.js';

export abstract class VirtioDeviceBase implements VirtioDevice {
  abstract readonly deviceId: number;
  abstract readonly queueMax: readonly number[];
  abstract readonly features: bigint;
  readonly config: Uint8Array;
  protected readonly cfg: DataView;
  private hostRef: VirtioHost | undefined;

  constructor(configSize: number) {
    this.config = new Uint8Array(configSize);
    this.cfg = new DataView(this.config.buffer);
  }

  attach(host: VirtioHost): void {
    this.hostRef = host;
  }

  get host(): VirtioHost {
    if (!this.hostRef) throw new Error('virtio device used before it was attached to a transport');
    return this.hostRef;
  }

  get attached(): boolean {
    return this.hostRef !== undefined;
  }

  /** Driver-accepted feature bit. */
  protected negotiated(bit: number): boolean {
    return ((this.host.driverFeatures >> BigInt(bit)) & 1n) === 1n;
  }

  protected queue(q: number): Virtqueue {
    return this.host.queues[q];
  }

  /** Return a chain's head to the used ring with `len` bytes written. */
  protected complete(q: number, chain: Chain, len: number): void {
    this.queue(q).push(chain.head, len);
  }

  abstract notify(q: number): void;

  reset(): void {}
}

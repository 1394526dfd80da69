// virtio-console (virtio 1.2, "Console Device"), single port: receiveq (0) carries input to the
// guest, transmitq (1) carries the guest's output. No multiport. VIRTIO_CONSOLE_F_SIZE reports the
// console size; VIRTIO_CONSOLE_F_EMERG_WRITE lets the driver print through the config space.
//
// Input never gets dropped: write() hands the guest as many bytes as its posted receive buffers can
// take and returns that count (the caller keeps the rest), while push() queues the bytes inside the
// device and delivers them as the guest posts buffers. `onRxSpace` fires when the guest posts
// receive buffers, so a caller using write() knows when to try again.

import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';

export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;

const RX = 0;
const TX = 1;

export interface VirtioConsoleOptions {
  /** Guest output. */
  output: (bytes: Uint8Array) => void;
  cols?: number;
  rows?: number;
}

export class VirtioConsole extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.CONSOLE;
  readonly queueMax = [128, 128];
  readonly features = (1n << BigInt(VIRTIO_CONSOLE_F_SIZE)) | (1n << BigInt(VIRTIO_CONSOLE_F_EMERG_WRITE));
  /** Called when the guest posts receive buffers (there may be room for input now). */
  onRxSpace: () => void = () => {};
  private readonly output: (bytes: Uint8Array) => void;
  private readonly pendingInput: Uint8Array[] = [];

  constructor(opts: VirtioConsoleOptions) {
    super(12);
    this.output = opts.output;
    // Config: cols u16 @0, rows u16 @2, max_nr_ports u32 @4, emerg_wr u32 @8.
    this.cfg.setUint16(0, opts.cols ?? 80, true);
    this.cfg.setUint16(2, opts.rows ?? 25, true);
    this.cfg.setUint32(4, 1, true);
  }

  /** Bytes queued by push() that the guest has not taken yet. */
  get queuedInput(): number {
    return this.pendingInput.reduce((s, b) => s + b.length, 0);
  }

  /** Change the console size reported to the guest (raises a configuration change interrupt). */
  resize(cols: number, rows: number): void {
    this.cfg.setUint16(0, cols & 0xffff, true);
    this.cfg.setUint16(2, rows & 0xffff, true);
    if (this.attached) this.host.configChanged();
  }

  configWrite(offset: number, size: number, value: number): void {
    // emerg_wr: the driver writes one character (any access size) at offset 8.
    if (offset === 8 && this.attached && this.negotiated(VIRTIO_CONSOLE_F_EMERG_WRITE)) {
      this.output(Uint8Array.of(value & 0xff));
    }
    void size;
  }

  /**
   * Give `data` to the guest now, as far as its posted receive buffers reach. Returns the number of
   * bytes taken (0 when the guest has posted no buffers); the caller keeps the rest.
   */
  write(data: Uint8Array): number {
    if (!this.attached || !this.host.active || data.length === 0) return 0;
    const vq = this.queue(RX);
    if (!vq.ready) return 0;
    let pos = 0;
    let any = false;
    while (pos < data.length) {
      const chain = vq.pop();
      if (!chain) break;
      any = true;
      if (chain.error) {
        vq.push(chain.head, 0);
        continue;
      }
      const n = vq.writeBytes(chain, data.subarray(pos));
      pos += n;
      vq.push(chain.head, n);
    }
    if (any) this.host.usedBuffers(RX);
    return pos;
  }

  /** Queue input inside the device; it is delivered as the guest posts receive buffers. */
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.pendingInput.push(Uint8Array.from(data));
    this.drain();
  }

  private drain(): void {
    while (this.pendingInput.length > 0) {
      const head = this.pendingInput[0];
      const n = this.write(head);
      if (n === 0) return;
      if (n >= head.length) this.pendingInput.shift();
      else this.pendingInput[0] = head.subarray(n);
    }
  }

  activate(): void {
    this.drain();
    this.onRxSpace();
  }

  notify(q: number): void {
    if (q === RX) {
      this.drain();
      this.onRxSpace();
      return;
    }
    if (q !== TX) return;
    const vq = this.queue(TX);
    let any = false;
    for (let chain = vq.pop(); chain; chain = vq.pop()) {
      any = true;
      if (!chain.error && chain.readableLen > 0) this.output(vq.readBytes(chain));
      vq.push(chain.head, 0);
    }
    if (any) this.host.usedBuffers(TX);
  }

  override reset(): void {
    // Queued input stays queued: it is delivered once the driver is back.
  }

  saveState(): unknown {
    return { pendingInput: Buffer.concat(this.pendingInput).toString('base64') };
  }

  restoreState(state: unknown): void {
    const s = state as { pendingInput?: string };
    this.pendingInput.length = 0;
    if (s.pendingInput) this.pendingInput.push(new Uint8Array(Buffer.from(s.pendingInput, 'base64')));
  }
}

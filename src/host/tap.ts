// TAP devices through /dev/net/tun (Documentation/networking/tuntap.rst), as a virtio-net backend:
// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR with a 12-byte header (TUNSETVNETHDRSZ), so the guest's
// virtio_net_hdr passes straight through, with its checksum and segmentation offloads; the offloads
// the guest accepts for receiving are given to the kernel with TUNSETOFFLOAD (without them it
// segments and checksums before handing frames over). Node has no ioctl, hence koffi for
// open/ioctl/poll.
//
// Node will not wrap a TAP fd in a net.Socket, and a non-blocking read from the main thread would
// have to poll; so a worker thread (tap-reader.ts) reads frames and posts them back in batches.
// Writes are synchronous from the main thread: one writev per frame, from views of guest RAM.
// A TAP this module creates (not TUNSETPERSIST) disappears when its fd is closed.

import { execFileSync } from 'node:child_process';
import { closeSync, writevSync } from 'node:fs';
import os from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { UserError } from './errors.js';
import { errnoName, lastErrno, O_CLOEXEC, O_RDWR, rawLibc } from './sys.js';
import {
  batchBytes,
  MAX_GSO_FRAME,
  POLL_MIN_BYTES,
  type NetBackend,
  type RxOffloads,
} from './net-backend.js';

const TUNSETIFF = 0x400454ca;
const TUNSETVNETHDRSZ = 0x400454d8;
const TUNSETOFFLOAD = 0x400454d0;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_TSO_ECN = 0x08;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
export const IFNAMSIZ = 16;
export const VNET_HDR_BYTES = 12;

/**
 * Open (or create) TAP `name` with a virtio header; a name ending in %d lets the kernel pick the
 * number. Returns the fd and the device's actual name. `what` names the NIC in errors.
 */
export function openTap(name: string, what: string): { fd: number; name: string } {
  if (Buffer.byteLength(name) >= IFNAMSIZ) {
    throw new UserError(`${what}: interface name '${name}' is longer than ${IFNAMSIZ - 1} bytes`);
  }
  const c = rawLibc();
  const fd = c.open('/dev/net/tun', O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const e = lastErrno();
    const why =
      e === os.constants.errno.ENOENT
        ? 'there is no /dev/net/tun on this host (load the tun module)'
        : e === os.constants.errno.EACCES || e === os.constants.errno.EPERM
          ? 'no permission to open /dev/net/tun (run as root, or use --net user which needs no privileges)'
          : `cannot open /dev/net/tun: ${errnoName(e)}`;
    throw new UserError(`${what}: ${why}`);
  }
  try {
    const ifr = new Uint8Array(40);
    ifr.set(Buffer.from(name), 0);
    new DataView(ifr.buffer).setUint16(16, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
    if (c.ioctlPtr(fd, TUNSETIFF, ifr) < 0) {
      const e = lastErrno();
      const why =
        e === os.constants.errno.EPERM || e === os.constants.errno.EACCES
          ? 'no permission to create or attach a TAP device (needs CAP_NET_ADMIN: run as root, or use --net user)'
          : e === os.constants.errno.EBUSY
            ? 'the TAP device is in use by another process'
            : e === os.constants.errno.EINVAL
              ? `'${name}' exists and is not a TAP device`
              : errnoName(e);
      throw new UserError(`${what}: TAP ${name}: ${why}`);
    }
    const end = ifr.indexOf(0);
    const actual = Buffer.from(ifr.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end)).toString();
    const sz = new Uint8Array(4);
    new DataView(sz.buffer).setInt32(0, VNET_HDR_BYTES, true);
    if (c.ioctlPtr(fd, TUNSETVNETHDRSZ, sz) < 0) {
      throw new UserError(`${what}: TAP ${actual}: TUNSETVNETHDRSZ failed: ${errnoName(lastErrno())}`);
    }
    return { fd, name: actual };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Run `ip ARGS...`; a failure is a UserError naming `what` with ip's own message. */
export function ip(what: string, args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT') throw new UserError(`${what}: the 'ip' command (iproute2) is not installed`);
    throw new UserError(`${what}: ip ${args.join(' ')}: ${(err.stderr ?? String(e)).trim()}`);
  }
}

/** What kind of link host interface `name` is ('bridge', 'tun', '' for a plain one), or undefined when there is none. */
export function linkKind(name: string): string | undefined {
  // ip rather than /sys/class/net: sysfs shows the namespace it was mounted in, not this process's.
  if (!/^[^/\s]{1,15}$/.test(name)) return undefined;
  try {
    const out = execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const links = JSON.parse(out) as { linkinfo?: { info_kind?: string } }[];
    return links[0]?.linkinfo?.info_kind ?? '';
  } catch {
    return undefined;
  }
}

/** Whether host interface `name` exists and is a Linux bridge. */
export function isBridge(name: string): boolean {
  return linkKind(name) === 'bridge';
}

/** A TAP device as a virtio-net backend (frames carry the 12-byte virtio header). */
export class TapBackend implements NetBackend {
  readonly vnetHdr = true;
  private worker: Worker | undefined;
  /**
   * Shared with the reader thread: [0] 1 = stop, [1] 1 = paused, [2] bytes of the frames it posted
   * that this thread has not taken off the port yet.
   */
  private readonly flags = new Int32Array(new SharedArrayBuffer(12));
  private closed = false;
  /**
   * Frames the reader posted after the device said pause(), handed over on resume(): the rest of the
   * batch being delivered and the batches already on their way (the reader stops reading once it
   * sees the flag, so at most a few batches of BATCH frames).
   */
  private held: ArrayBuffer[] = [];
  private delivering = false;

  constructor(
    readonly fd: number,
    readonly name: string,
  ) {}

  private receive: (frame: Uint8Array) => void = () => {};

  start(receive: (frame: Uint8Array) => void): void {
    this.receive = receive;
    this.resume();
    if (this.worker) return;
    // Frames come over a port of their own, which poll() can also drain synchronously.
    const { port1, port2 } = new MessageChannel();
    const w = new Worker(new URL('./tap-reader.js', import.meta.url), {
      workerData: { fd: this.fd, flags: this.flags, max: MAX_GSO_FRAME + VNET_HDR_BYTES, port: port2 },
      transferList: [port2],
    });
    port1.on('message', (frames: ArrayBuffer[]) => this.taken(frames));
    port1.unref();
    this.port = port1;
    w.on('error', (e) => process.stderr.write(`typevisor: TAP ${this.name}: reader stopped: ${e.message}\n`));
    w.unref();
    this.worker = w;
  }

  private port: MessagePort | undefined;

  /** A batch taken off the port (by the event loop or by poll()): no longer waiting. */
  private taken(frames: ArrayBuffer[]): void {
    Atomics.sub(this.flags, 2, batchBytes(frames));
    this.deliver(frames);
  }

  private deliver(frames: ArrayBuffer[]): void {
    if (this.closed) return;
    if (this.held.length > 0 || this.paused) {
      this.held.push(...frames);
      return;
    }
    this.handOver(frames);
  }

  private get paused(): boolean {
    return Atomics.load(this.flags, 1) === 1;
  }

  /** Give frames to the device until it pauses (a frame after that would reach a full backlog and be dropped); keep the rest. */
  private handOver(frames: ArrayBuffer[]): void {
    this.delivering = true;
    try {
      let i = 0;
      while (i < frames.length && !this.paused && !this.closed) this.receive(new Uint8Array(frames[i++]));
      if (i < frames.length) this.held = frames.slice(i).concat(this.held);
    } finally {
      this.delivering = false;
    }
  }

  /**
   * Frames the reader has posted and the event loop has not dispatched yet, taken now once
   * POLL_MIN_BYTES wait (net-backend.ts says why). `npm run bench -- net`, 64 MiB, bridge: taking
   * whatever waited at every slice, guest to host 40.9-43.8 MB/s and host to guest 64-67; never (the
   * event loop only), 48.9 and 35.6-39.1.
   */
  poll(): void {
    const port = this.port;
    if (!port || this.paused || Atomics.load(this.flags, 2) < POLL_MIN_BYTES) return;
    for (let i = 0; i < 16; i++) {
      const m = receiveMessageOnPort(port);
      if (!m) return;
      this.taken(m.message as ArrayBuffer[]);
    }
  }

  transmit(pieces: Uint8Array[]): boolean {
    if (this.closed) return true;
    try {
      writevSync(this.fd, pieces);
    } catch {
      // The interface is down or gone: the frame is lost, as on a cable that is unplugged.
    }
    return true;
  }

  /** What the kernel may hand over: partial checksums and TCP segments of up to 64 KiB (TUNSETOFFLOAD). */
  setOffloads(rx: RxOffloads): void {
    if (this.closed) return;
    let f = 0;
    if (rx.csum) {
      f |= TUN_F_CSUM;
      if (rx.tso4) f |= TUN_F_TSO4;
      if (rx.tso6) f |= TUN_F_TSO6;
      if (rx.ecn && (rx.tso4 || rx.tso6)) f |= TUN_F_TSO_ECN;
    }
    if (rawLibc().ioctlInt(this.fd, TUNSETOFFLOAD, f) < 0) {
      // Offloads not taken: the kernel keeps segmenting and checksumming for the guest.
      process.stderr.write(`typevisor: TAP ${this.name}: TUNSETOFFLOAD failed: ${errnoName(lastErrno())}\n`);
    }
  }

  pause(): void {
    Atomics.store(this.flags, 1, 1);
  }

  resume(): void {
    Atomics.store(this.flags, 1, 0);
    // Held frames first (unless the device answers from inside handOver, whose loop goes on).
    if (!this.delivering && this.held.length > 0) {
      const frames = this.held;
      this.held = [];
      this.handOver(frames);
    }
    if (!this.paused) Atomics.notify(this.flags, 1);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.flags, 0, 1);
    Atomics.notify(this.flags, 1);
    this.port?.close();
    const w = this.worker;
    // The reader leaves its poll loop within one poll timeout; the fd is closed after it has.
    if (w) w.once('exit', () => closeSync(this.fd));
    else closeSync(this.fd);
  }
}

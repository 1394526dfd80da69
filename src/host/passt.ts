// User-mode networking through Debian's passt(1), one process per NIC, as a virtio-net backend.
//
// passt gets one end of a socketpair as fd 3 (`--fd 3`) and speaks QEMU's stream framing on it: each
// Ethernet frame preceded by its length as a 4-byte big-endian integer. It is started without -f, so
// it forks into the background once it has set up (its forwarded ports bound): the first process's
// exit status says whether it could. It exits by itself when its socket closes, which close() does,
// as does the end of this process.
//
// The guest gets the host's address and routes by DHCP; the gateway address reaches the host's own
// loopback services. `-m MTU` keeps the MTU it advertises within what the NIC offers.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { UserError } from './errors.js';
import { POLL_MIN_BYTES, type NetBackend } from './net-backend.js';
import { rawLibc, setSendBuffer, sysSocketpair } from './sys.js';

export interface HostFwd {
  proto: 'tcp' | 'udp';
  /** Host address to listen on ('' for all). */
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}

/** Largest frame passt sends (its MTU is at most 65520, plus the Ethernet header). */
const MAX_FRAME = 65536;

/** passt's own lines that say nothing to a typevisor user (it runs without syslog, as nobody). */
const NOISE =
  /^(Failed to send \d+ bytes to syslog|Don't run as root\. Changing to nobody\.\.\.|No external routable interface for IPv6)$/;

/**
 * The send buffer of each end of passt's socket. passt writes the frames for the guest with one
 * non-blocking sendmsg and drops those the socket's buffer cannot take (its TCP resends them when
 * no ACK comes: after 2 s). Given `--fd`, it leaves the buffer as it is (it enlarges only sockets it
 * accepts itself), and the default (net.core.wmem_default, 208 KiB) holds three 64 KiB frames: host
 * to guest over hostfwd, 4 MiB, stalled for 2 s in 8 of 16 runs (0.7-1.8 MB/s against 12-14). With
 * 4 MiB: 15.9-20.1 MB/s in 11 of 11. Without CAP_NET_ADMIN the kernel caps it at net.core.wmem_max.
 */
export const PASST_SOCKET_BUFFER = 4 * 1048576;

/**
 * A socketpair for passt: [this process's end as a Socket, passt's end as an fd to hand to the child
 * (close it here once spawned)], both with PASST_SOCKET_BUFFER of send buffer.
 */
export function passtSocketpair(): [Socket, number] {
  const [ours, theirs] = sysSocketpair();
  try {
    setSendBuffer(ours, PASST_SOCKET_BUFFER);
    setSendBuffer(theirs, PASST_SOCKET_BUFFER);
  } catch (e) {
    closeSync(ours);
    closeSync(theirs);
    throw e;
  }
  return [new Socket({ fd: ours, readable: true, writable: true }), theirs];
}

/**
 * Run `command args` (passt, or a command that runs it) with passt's end of a passtSocketpair() as
 * its fd 3, closed here once the child has it; returns this process's end and the child.
 */
export function spawnWithPasstSocket(
  command: string,
  args: string[],
  stderr: 'pipe' | 'ignore',
): { sock: Socket; child: ChildProcess } {
  const [sock, theirs] = passtSocketpair();
  try {
    return { sock, child: spawn(command, args, { stdio: ['ignore', 'ignore', stderr, theirs] }) };
  } finally {
    closeSync(theirs);
  }
}

/** Start passt for one NIC; resolves once it is ready. `what` names the NIC in errors. */
export async function startPasst(opts: {
  mtu: number;
  hostfwd: HostFwd[];
  what: string;
}): Promise<PasstBackend> {
  const args = ['-q', '--fd', '3', '-m', String(opts.mtu)];
  for (const f of opts.hostfwd) {
    const spec = `${f.hostAddr ? `${f.hostAddr}/` : ''}${f.hostPort}:${f.guestPort}`;
    args.push(f.proto === 'tcp' ? '-t' : '-u', spec);
  }
  const { sock, child } = spawnWithPasstSocket('passt', args, 'pipe');
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4096)));
  const code = await new Promise<number | string>((resolve) => {
    child.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ENOENT' ? 'missing' : e.message));
    child.once('exit', (c, sig) => resolve(c ?? `killed by ${sig}`));
  });
  if (code !== 0) {
    sock.destroy();
    if (code === 'missing') {
      throw new UserError(
        `${opts.what}: user-mode networking needs passt, which is not installed (Debian: apt-get install passt)`,
      );
    }
    const lines = err
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !NOISE.test(l));
    throw new UserError(`${opts.what}: passt failed to start: ${lines.join('; ') || `exit status ${code}`}`);
  }
  return new PasstBackend(sock);
}

/**
 * The descriptor under a Socket made with net.Socket({ fd }), which Node keeps on its handle
 * (internal: -1 where it is not there).
 */
export function socketFd(sock: Socket): number {
  return (sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
}

const EMPTY = Buffer.alloc(0);
/**
 * poll(): bytes per read, and reads per call at most (the rest waits for the next slice). `npm run
 * bench -- net` at 64 MiB, user-mode, before poll(): guest to host 43-49 MB/s, host to guest 30-42;
 * reading whatever waits at every slice: 35-37 and 54-58 (the guest, sending, then took every ACK at
 * once); from POLL_MIN_BYTES: 43-48 and 51-52.
 */
const POLL_READ_BYTES = 256 * 1024;
const POLL_READS = 4;
/** ioctl: bytes waiting to be read on a socket (Linux, asm-generic/ioctls.h). */
const FIONREAD = 0x541b;

export class PasstBackend implements NetBackend {
  readonly vnetHdr = false;
  /**
   * Bytes read and not handed over yet: a frame (or its length) split across socket reads, or, while
   * the device has paused the backend, the rest of the read that filled its backlog (at most one read).
   */
  private partial: Buffer | undefined;
  private closed = false;
  /** The device said pause(): no frame is handed over until resume(). */
  private held = false;
  /** Inside onData's loop (the device may call resume() from receive()). */
  private parsing = false;

  /** The socket's descriptor, which poll() reads directly (-1: unknown, poll() does nothing). */
  private readonly fd: number;
  private scratch: Buffer | undefined;
  /** FIONREAD's answer, an int: the bytes waiting on the socket. */
  private readonly waiting = new Int32Array(1);
  private readonly waitingBytes = new Uint8Array(this.waiting.buffer);

  constructor(private readonly sock: Socket) {
    sock.pause();
    sock.on('error', () => {});
    this.fd = socketFd(sock);
  }

  /**
   * Read what passt has sent now, between the engine's run slices, instead of when the event loop
   * next turns, once at least POLL_MIN_BYTES wait (net-backend.ts says why). Only while Node has
   * nothing of this socket buffered and the device takes frames, so bytes are handed over in order.
   */
  poll(): void {
    if (this.fd < 0 || this.held || this.closed || this.sock.readableLength !== 0) return;
    if (rawLibc().ioctlPtr(this.fd, FIONREAD, this.waitingBytes) < 0) return;
    if (this.waiting[0] < POLL_MIN_BYTES) return;
    const buf = (this.scratch ??= Buffer.allocUnsafe(POLL_READ_BYTES));
    for (let i = 0; i < POLL_READS && !this.held && !this.closed; i++) {
      // The descriptor is non-blocking (libuv's): -1 with EAGAIN when nothing is waiting.
      const n = Number(rawLibc().read(this.fd, buf, buf.length));
      if (n <= 0) return;
      // A copy: the device's backlog may keep views of the frames.
      this.onData(Buffer.from(buf.subarray(0, n)));
      if (n < buf.length) return;
    }
  }

  private receive: (frame: Uint8Array) => void = () => {};
  private txReady: () => void = () => {};
  private listening = false;

  start(receive: (frame: Uint8Array) => void, txReady: () => void): void {
    this.receive = receive;
    this.txReady = txReady;
    if (!this.listening) {
      this.listening = true;
      this.sock.on('data', (chunk: Buffer) => this.onData(chunk));
      this.sock.on('drain', () => this.txReady());
    }
    this.resume();
  }

  private onData(chunk: Buffer): void {
    const buf = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    this.partial = undefined;
    let off = 0;
    this.parsing = true;
    try {
      off = this.frames(buf);
    } finally {
      this.parsing = false;
    }
    if (off < buf.length) this.partial = Buffer.from(buf.subarray(off));
  }

  /** Hand over the whole frames at the start of `buf` until the device pauses; returns the bytes used. */
  private frames(buf: Buffer): number {
    let off = 0;
    // A socket read holds many frames: those after a pause() wait here (partial) rather than reach a
    // full backlog, where they would be dropped (TCP then stalls on retransmissions).
    while (!this.held && !this.closed && buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > MAX_FRAME) {
        // Not passt's framing any more: stop rather than buffer without bound.
        process.stderr.write(`typevisor: passt sent a frame of ${len} bytes; its NIC is disconnected\n`);
        this.close();
        return buf.length;
      }
      if (buf.length - off - 4 < len) break;
      // A view of the chunk, no copy: the device copies it once into the guest's buffers.
      const frame = buf.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      this.receive(frame);
    }
    return off;
  }

  transmit(pieces: Uint8Array[], length: number): boolean {
    if (this.closed) return true;
    const out = Buffer.allocUnsafe(4 + length);
    out.writeUInt32BE(length, 0);
    let pos = 4;
    for (const p of pieces) {
      out.set(p, pos);
      pos += p.length;
    }
    return this.sock.write(out);
  }

  pause(): void {
    this.held = true;
    this.sock.pause();
  }

  resume(): void {
    if (this.closed) return;
    this.held = false;
    // Frames held back go first (unless this is the device answering from inside onData's loop,
    // which goes on by itself); the socket is read again only if they did not fill the backlog again.
    if (!this.parsing && this.partial) this.onData(EMPTY);
    if (!this.held) this.sock.resume();
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}

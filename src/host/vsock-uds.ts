// The host side of virtio-vsock as Firecracker and Cloud Hypervisor offer it: one Unix socket per
// VM (PATH).
// - Host to guest: a program connects to PATH and writes `CONNECT <port>\n`; once the guest's
//   listener on that port accepts, it reads `OK <hostport>\n` and the socket carries the stream.
//   If the guest refuses (nobody listens) the socket is closed.
// - Guest to host: a guest connecting to CID 2 port P reaches whatever listens on the Unix socket
//   `PATH_P` (created by the user's program).
// The device model (devices/virtio/vsock.ts) does the protocol; this module only handles sockets.

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { lstatSync, rmSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { UserError } from './errors.js';

/** What this module needs of the device: open a connection to a guest port. */
export interface VsockGuestConnector {
  connectToGuest(
    port: number,
    stream: Duplex,
    handlers: { accepted(localPort: number): void; refused(reason: string): void },
  ): void;
}

/** The longest `CONNECT <port>` line accepted (the port is at most 10 digits). */
const MAX_CONNECT_LINE = 32;
/** A client that has not sent its CONNECT line in this time is dropped. */
const CONNECT_LINE_TIMEOUT_MS = 10_000;

/** Is something answering on the Unix socket at `path`? */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class VsockUnixListener {
  private server: Server | undefined;
  private readonly waiting = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly guest: VsockGuestConnector,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  /** Listen on PATH; a stale socket file is replaced, a live one or any other file is an error. */
  async listen(): Promise<void> {
    const st = lstatSync(this.path, { throwIfNoEntry: false });
    if (st) {
      if (!st.isSocket())
        throw new UserError(`--vsock uds=${this.path}: the file exists and is not a socket`);
      if (await answers(this.path)) {
        throw new UserError(
          `--vsock uds=${this.path}: another process is listening on this socket (another VM?)`,
        );
      }
      rmSync(this.path, { force: true });
    }
    const server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new UserError(`--vsock uds=${this.path}: cannot listen: ${e.message}`)),
      );
      server.listen(this.path, () => resolve());
    });
    server.on('error', (e) => this.log(`vsock: ${this.path}: ${e.message}`));
    this.server = server;
  }

  /** Stop listening and remove the socket file; connections already made are the device's. */
  close(): void {
    for (const s of this.waiting) s.destroy();
    this.waiting.clear();
    if (!this.server) return;
    this.server.close();
    this.server = undefined;
    rmSync(this.path, { force: true });
  }

  /** Open the host listener for guest connections to host port `port` (PATH_port). */
  connectHostPort(port: number): Promise<Duplex> {
    const path = `${this.path}_${port}`;
    return new Promise((resolve, reject) => {
      const s = createConnection({ path, allowHalfOpen: true });
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => reject(new Error(`${path}: ${e.message}`)));
    });
  }

  /** A host program connected to PATH: read `CONNECT <port>\n`, then hand the socket to the device. */
  private accept(s: Socket): void {
    this.waiting.add(s);
    let line = Buffer.alloc(0);
    const timer = setTimeout(() => {
      this.log(
        `vsock: ${this.path}: a client sent no CONNECT line within ${CONNECT_LINE_TIMEOUT_MS / 1000} s`,
      );
      s.destroy();
    }, CONNECT_LINE_TIMEOUT_MS);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      this.waiting.delete(s);
      s.off('data', onData);
    };
    const onData = (chunk: Buffer): void => {
      line = Buffer.concat([line, chunk]);
      const nl = line.indexOf(0x0a);
      if (nl < 0) {
        if (line.length > MAX_CONNECT_LINE) {
          done();
          this.log(`vsock: ${this.path}: expected 'CONNECT <port>', got a longer line; connection closed`);
          s.destroy();
        }
        return;
      }
      done();
      s.pause();
      const text = line.subarray(0, nl).toString('latin1').replace(/\r$/, '');
      const rest = line.subarray(nl + 1);
      const m = /^CONNECT (\d{1,10})$/.exec(text);
      const port = m ? Number(m[1]) : NaN;
      if (!m || port > 0xffff_ffff) {
        this.log(
          `vsock: ${this.path}: expected 'CONNECT <port>', got ${JSON.stringify(text.slice(0, 40))}; connection closed`,
        );
        s.destroy();
        return;
      }
      if (rest.length > 0) s.unshift(rest);
      this.guest.connectToGuest(port, s, {
        accepted: (localPort) => {
          s.write(`OK ${localPort}\n`);
        },
        refused: (reason) => {
          this.log(`vsock: CONNECT ${port}: ${reason}`);
          s.destroy();
        },
      });
    };
    s.on('data', onData);
    s.on('error', () => s.destroy());
    s.on('close', () => done());
  }
}

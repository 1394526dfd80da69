// virtio-vsock with a real Linux guest: Debian's kernel and the default initramfs, plus a small
// static AF_VSOCK program (test/helpers/vsock-guest.c, built here with the cross compiler) in a
// second initramfs appended to the default one (Linux unpacks concatenated archives; gzip members
// concatenate). One boot of `typevisor run --vsock 3`, driven through its console, checks:
// - host -> guest: a host program connects to the VM's Unix socket (the path run prints), writes
//   `CONNECT 5000`, reads `OK <port>`, gets its line back in upper case, then sends 256 KiB and
//   gets the guest's byte count and checksum (credit flow control with Linux's driver);
// - CONNECT to a guest port nobody listens on: the socket is closed;
// - guest -> host: the guest connects to CID 2 port 6000 and reaches the host listener on
//   PATH_6000 (256 KiB and an answer back); port 6001 has no listener: the guest gets a reset.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDefaultImage, type DefaultImage } from '../src/image/build.js';
import { writeInitramfsWith } from '../src/boot/initramfs.js';
import { missingTool } from './helpers/tools.js';

const root = resolve(import.meta.dirname, '..', '..');
const typevisor = join(root, 'bin', 'typevisor');
const STEP_TIMEOUT_MS = 10 * 60 * 1000;
const BULK = 256 * 1024;

let image: DefaultImage | undefined;
let skipReason: string | false = missingTool('aarch64-linux-gnu-gcc');
if (!skipReason) {
  try {
    image = await buildDefaultImage({ log: () => {} });
    if (!image.manifest.modules.includes('vmw_vsock_virtio_transport'))
      skipReason = `the default image in ${image.dir} has no vsock modules`;
  } catch (e) {
    skipReason = `the default guest image cannot be built here: ${(e as Error).message}`;
  }
}

/** s = s*31 + byte mod 2^32, as the guest program computes it. */
function checksum(data: Buffer, s = 0): number {
  for (const b of data) s = (s * 31 + b) % 0x1_0000_0000;
  return s;
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7) & 0xff;
  return b;
}

/** Resolves with the first match of `re` in what `text()` returns, polling as output arrives. */
function waitFor(
  what: string,
  text: () => string,
  re: RegExp,
  ms = STEP_TIMEOUT_MS,
): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    const t0 = Date.now();
    const poll = (): void => {
      const m = re.exec(text());
      if (m) return resolvePromise(m);
      if (Date.now() - t0 > ms)
        return reject(new Error(`no ${re} in ${what} after ${ms / 1000} s:\n${text().slice(-3000)}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

/** Connect to the VM's socket, CONNECT to `port`, then send `after` once OK came; resolves with all bytes read until close. */
function hostConnect(uds: string, port: number, after: (s: net.Socket) => void): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const s = net.createConnection(uds);
    const got: Buffer[] = [];
    let sent = false;
    s.on('data', (b) => {
      got.push(b);
      if (!sent && Buffer.concat(got).includes(0x0a)) {
        sent = true;
        after(s);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolvePromise(Buffer.concat(got).toString('latin1')));
    s.write(`CONNECT ${port}\n`);
  });
}

test(
  'virtio-vsock with a Linux guest: host -> guest via CONNECT, guest -> host via PATH_PORT, refusals both ways',
  { skip: skipReason, timeout: 3 * STEP_TIMEOUT_MS },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'typevisor-vsock-'));
    const servers: net.Server[] = [];
    let vm: ReturnType<typeof spawn> | undefined;
    try {
      // The guest program, in an initramfs appended to the default one.
      const bin = join(dir, 'vsock-guest');
      execFileSync('aarch64-linux-gnu-gcc', [
        '-O2',
        '-static',
        '-o',
        bin,
        join(root, 'test', 'helpers', 'vsock-guest.c'),
      ]);
      const initrd = join(dir, 'initramfs.cpio.gz');
      writeInitramfsWith(image!.initrd, initrd, { 'bin/vsock-guest': bin });

      let out = '';
      let err = '';
      vm = spawn(typevisor, ['run', '--initrd', initrd, '--vsock', '3', '--name', 'vsock-test'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      vm.stdout!.on('data', (d: Buffer) => (out += d.toString('latin1')));
      vm.stderr!.on('data', (d: Buffer) => (err += d.toString('latin1')));
      const exited = new Promise<number | null>((r) => vm!.on('close', (code) => r(code)));
      const console = (): string => `${out}\n--- stderr ---\n${err}`;
      const type = (line: string): void => void vm!.stdin!.write(line + '\n');

      // `run` says where the host socket is.
      const uds = (await waitFor('stderr', () => err, /host socket (\S+) /))[1];
      assert.ok(existsSync(uds), `${uds} exists`);

      // The host listener for guest connections to port 6000: it answers with what it received.
      let hostReceived = Buffer.alloc(0);
      const srv = net.createServer({ allowHalfOpen: true }, (s) => {
        const parts: Buffer[] = [];
        s.on('data', (b) => parts.push(b));
        s.on('end', () => {
          hostReceived = Buffer.concat(parts);
          s.end(`thanks ${hostReceived.length} ${checksum(hostReceived)}\n`);
        });
      });
      await new Promise<void>((r) => srv.listen(`${uds}_6000`, () => r()));
      servers.push(srv);

      // Host -> guest.
      type('vsock-guest listen 5000 &');
      await waitFor('the console', () => out, /@@listening=5000/);
      const bulk = pattern(BULK);
      const reply = await hostConnect(uds, 5000, (s) => {
        s.write('hello guest\n');
        s.end(bulk);
      });
      const m = /^OK (\d+)\n([^\n]*)\nbytes=(\d+) sum=(\d+)\n$/.exec(reply);
      assert.ok(m, `reply over the vsock: ${JSON.stringify(reply.slice(0, 200))}`);
      assert.ok(Number(m[1]) > 0, 'OK names the host-side port');
      assert.equal(m[2], 'HELLO GUEST', 'the guest answered the line in upper case');
      assert.equal(Number(m[3]), BULK, 'the guest received every byte');
      assert.equal(Number(m[4]), checksum(bulk), 'in order, unchanged');
      assert.equal((await waitFor('the console', () => out, /@@served=(\d+)\r?\n/))[1], String(BULK));

      // Nobody listens on guest port 5001: the socket is closed without OK.
      assert.equal(await hostConnect(uds, 5001, () => {}), '', 'closed without an answer');

      // Guest -> host.
      type(`vsock-guest connect 6000 ${BULK}`);
      const hello = Buffer.concat([Buffer.from('hello host\n'), bulk]);
      const r = (await waitFor('the console', () => out, /@@reply=([^\r\n]*)\r?\n/))[1];
      assert.equal(
        r,
        `thanks ${hello.length} ${checksum(hello)}`,
        "the guest got the host listener's answer",
      );
      assert.ok(hostReceived.equals(hello), 'the host listener received what the guest sent');

      // Nobody listens on host port 6001: the guest's connect is reset.
      type('vsock-guest connect 6001 0');
      const e = (await waitFor('the console', () => out, /@@connect_error_6001=([^\r\n]*)\r?\n/))[1];
      assert.match(e, /reset|refused/i);

      type('poweroff -f');
      assert.equal(await exited, 0, console());
      vm = undefined;
      assert.ok(!existsSync(uds), 'the host socket is removed when the VM stops');
    } finally {
      vm?.kill('SIGKILL');
      for (const s of servers) s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

// `typevisor console NAME`: attach this terminal to a running guest's console (console.sock). The
// recent screen is replayed first. On a terminal, keys go to the guest in raw mode; Ctrl-] detaches
// and the guest keeps running. From a pipe, input is sent as it comes; at its end the console
// detaches half a second later (after showing what the guest answered).

import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { findVm } from '../api/client.js';
import { entryPaths, stateDir } from '../vmm/state.js';
import { ESCAPE_BYTE } from './run.js';

const HELP = `usage: typevisor console NAME

Attaches to the console of the running guest NAME (or its id). Ctrl-] detaches; the guest keeps
running. Several consoles may attach at once; each sees the guest's output.
`;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError('console: expected one guest name (typevisor console NAME)');
  const rec = await findVm(positionals[0]);
  return attachConsole(rec.name, entryPaths(rec.name, stateDir()).console);
}

/** Attach stdin/stdout to a console socket until Ctrl-], the end of input, or the guest stopping. */
export function attachConsole(name: string, socketPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    const sock = connect(socketPath);
    let done = false;
    let connected = false;
    let detaching = false;
    const finish = (code: number, message?: string): void => {
      if (done) return;
      done = true;
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stdin.unref?.();
      process.off('SIGINT', onSigint);
      sock.destroy();
      if (message) process.stderr.write(message);
      resolve(code);
    };
    const onData = (chunk: Buffer): void => {
      const i = chunk.indexOf(ESCAPE_BYTE);
      if (i >= 0) {
        // Send what came before Ctrl-], then wait for the VM process to close its side (so it has read
        // everything) before going.
        const msg = `\r\ntypevisor: detached from ${name}; the guest keeps running\n`;
        detaching = true;
        stdin.off('data', onData);
        if (i > 0) sock.write(chunk.subarray(0, i));
        sock.end();
        sock.once('close', () => finish(0, msg));
        setTimeout(() => finish(0, msg), 1000).unref();
        return;
      }
      sock.write(chunk);
    };
    const onEnd = (): void => {
      if (detaching) return;
      setTimeout(() => {
        detaching = true;
        sock.end();
        sock.once('close', () => finish(0));
        setTimeout(() => finish(0), 1000).unref();
      }, 500);
    };
    const onSigint = (): void => finish(0, `\r\ntypevisor: detached from ${name}; the guest keeps running\n`);
    sock.on('connect', () => {
      connected = true;
      if (stdin.isTTY) {
        stdin.setRawMode(true);
        process.stderr.write(`typevisor: attached to ${name} (Ctrl-] detaches)\r\n`);
      }
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      stdin.resume();
      process.on('SIGINT', onSigint);
    });
    sock.on('data', (d: Buffer) => {
      if (!detaching) process.stdout.write(d);
    });
    sock.on('end', () => {
      if (!detaching) finish(0, `\r\ntypevisor: ${name} stopped; console closed\n`);
    });
    sock.on('error', (e) => {
      if (!connected) reject(new UserError(`console: cannot attach to ${name}: ${e.message}`, 1));
      else finish(1, `\r\ntypevisor: console of ${name}: ${e.message}\n`);
    });
  });
}

// `npm run bench -- restore`: how soon a guest is usable again from a snapshot. The default guest
// (512 MiB, 1 vCPU) is created in the background, saved with `typevisor save --stop` once its shell
// answers; then the time from launching `typevisor restore FILE` until the restored shell answers a
// command is set beside QEMU's cold boot of the same guest to its init marker, in the same run.
// The snapshot file's size is printed too.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDefaultImage } from '../src/image/build.js';
import { qemuBootToInit, MEMORY_MIB } from './boot.js';
import { repoRoot } from './util.js';

const TYPEVISOR = join(repoRoot, 'bin', 'typevisor');

/** Run `typevisor ARGS` with the bench's state directory; rejects on a non-zero exit. */
function tv(stateDir: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(TYPEVISOR, args, {
      env: { ...process.env, TYPEVISOR_STATE_DIR: stateDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`typevisor ${args[0]}: ${err.trim()}`)),
    );
  });
}

/** Type a command on the guest's console until it answers "@@42" (within timeoutMs). */
function shellAnswers(consolePath: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect(consolePath);
    let out = '';
    const ask = (): boolean => sock.write('echo @@$((6*7))\n');
    const retry = setInterval(ask, 2000);
    const timer = setTimeout(() => {
      clearInterval(retry);
      sock.destroy();
      reject(
        new Error(
          `the guest's shell did not answer within ${timeoutMs / 1000} s; console:\n${out.slice(-2000)}`,
        ),
      );
    }, timeoutMs);
    sock.on('connect', ask);
    sock.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (/(^|\n)@@42\r?\n/.test(out)) {
        clearInterval(retry);
        clearTimeout(timer);
        sock.destroy();
        resolve();
      }
    });
    sock.on('error', (e) => {
      clearInterval(retry);
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function benchRestore(): Promise<void> {
  const img = await buildDefaultImage({ log: (m) => process.stderr.write(`bench restore: ${m}\n`) });
  const qemu = await qemuBootToInit(img, 'restore');
  const work = mkdtempSync(join(tmpdir(), 'typevisor-bench-restore-'));
  const state = join(work, 'state');
  const file = join(work, 'guest.snap');
  try {
    process.stderr.write(
      `bench restore: typevisor: booting the default guest (${MEMORY_MIB} MiB, 1 vCPU) to its shell and saving it...\n`,
    );
    await tv(state, ['create', '--name', 'saved', '--memory', String(MEMORY_MIB)]);
    await shellAnswers(join(state, 'saved', 'console.sock'), 900_000);
    await tv(state, ['save', '--stop', 'saved', file]);
    const mib = statSync(file).size / 1048576;
    process.stderr.write('bench restore: typevisor: restoring it...\n');
    const t0 = process.hrtime.bigint();
    await tv(state, ['restore', file, '--name', 'restored']);
    await shellAnswers(join(state, 'restored', 'console.sock'), 300_000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await tv(state, ['destroy', 'restored']);
    process.stdout.write(
      `snapshot: ${mib.toFixed(1)} MiB for the default guest (${MEMORY_MIB} MiB of RAM) at its shell prompt\n`,
    );
    process.stdout.write(
      `restore: typevisor ${seconds.toFixed(2)} s, qemu boot ${qemu.seconds.toFixed(2)} s, ratio ${(seconds / qemu.seconds).toFixed(2)}\n`,
    );
  } finally {
    await tv(state, ['destroy', 'saved']).catch(() => {});
    await tv(state, ['destroy', 'restored']).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

// A whole compiled AArch64 program (bench/programs/sortbench.c: quicksort + LZ77 match search) runs on
// the software CPU at EL0 and prints the same checksum as under qemu-aarch64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runUserProgram } from '../bench/usermode.js';
import { missingTool } from './helpers/tools.js';

const root = resolve(import.meta.dirname, '..', '..');


test('sortbench (1 round) computes the same checksum as qemu-aarch64', { skip: missingTool('aarch64-linux-gnu-gcc', 'qemu-aarch64') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-prog-'));
  try {
    const exe = join(dir, 'sortbench');
    execFileSync('aarch64-linux-gnu-gcc', [
      '-O2', '-static', '-nostdlib', '-ffreestanding', '-fno-stack-protector', '-DROUNDS=1',
      '-Wl,-Ttext-segment=0x40100000', '-o', exe, join(root, 'bench', 'programs', 'sortbench.c'),
    ]);
    const expected = execFileSync('qemu-aarch64', ['-cpu', 'cortex-a53', exe], { encoding: 'latin1' });
    assert.match(expected, /^[0-9a-f]{16}\n$/);
    const r = runUserProgram(exe, 1e9);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, expected);
    assert.ok(r.instructions > 1_000_000, `only ${r.instructions} instructions retired`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The library API: `import { Vm } from 'typevisor'`, and the README's example, run as written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { haveCrossToolchain, tinyGuestImage, GREETING } from './helpers/toolstack-guest.js';

const skip = haveCrossToolchain() ? false : 'aarch64-linux-gnu-gcc is not installed';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The first ```js block of README's "As a library" section. */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('### As a library');
  assert.ok(at >= 0, 'README has an "As a library" section');
  const m = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, 'the section has a js example');
  return m[1];
}

test('the package entry exports the library API', async () => {
  const lib = await import('typevisor');
  for (const name of [
    'Vm',
    'loadConfig',
    'vmSpecFromConfig',
    'createVm',
    'listGuests',
    'controlRequest',
    'VmHost',
  ]) {
    assert.ok(name in lib, name);
  }
  assert.equal(typeof lib.Vm, 'function');
});

test(
  "README's library example runs: start, console output, shut down",
  { skip, timeout: 60_000 },
  async () => {
    const code = readmeExample();
    assert.match(code, /import \{ Vm \} from 'typevisor'/);
    const dir = mkdtempSync(join(tmpdir(), 'typevisor-lib-'));
    try {
      // A project that depends on typevisor: node_modules/typevisor is this package.
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(ROOT, join(dir, 'node_modules', 'typevisor'), 'dir');
      writeFileSync(join(dir, 'example.mjs'), code);
      const out = await new Promise<{ err: Error | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [join(dir, 'example.mjs')],
          { cwd: dir, env: { ...process.env, KERNEL: tinyGuestImage(), READY: GREETING }, timeout: 30_000 },
          (err, stdout, stderr) => resolve({ err, stdout, stderr }),
        );
      });
      assert.equal(out.err, null, out.stderr);
      assert.ok(out.stdout.includes(GREETING), out.stdout);
      assert.match(out.stdout, /guest powered off\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'Vm in-process: console in and out, pause/resume, stats, destroy',
  { skip, timeout: 60_000 },
  async () => {
    const { Vm } = await import('typevisor');
    const vm = new Vm({
      name: 'lib',
      cpus: 1,
      memoryMiB: 64,
      kernel: tinyGuestImage(),
      console: 'serial',
      disks: [],
      rng: false,
      balloon: false,
    });
    let screen = '';
    vm.console.on('data', (d: Buffer) => (screen += d.toString()));
    const exits: unknown[] = [];
    vm.on('exit', (e) => exits.push(e));
    await vm.start();
    assert.equal(vm.state, 'running');
    const wait = async (s: string): Promise<void> => {
      const end = Date.now() + 10_000;
      while (!screen.includes(s)) {
        if (Date.now() > end) throw new Error(`no '${s}' on the console: ${JSON.stringify(screen)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await wait(GREETING);
    vm.input.write('echo-me');
    await wait('echo-me');
    vm.pause();
    assert.equal(vm.state, 'paused');
    const n = vm.stats().instructions;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(vm.stats().instructions, n);
    vm.resume();
    assert.equal(vm.state, 'running');
    assert.deepEqual({ ...vm.stats(), instructions: 0 }, { instructions: 0, cpus: 1, memoryMiB: 64 });
    vm.destroy();
    const exit = await vm.wait();
    assert.equal(exit.reason, 'destroyed');
    assert.equal(exits.length, 1);
    assert.equal(vm.state, 'shutdown');
  },
);

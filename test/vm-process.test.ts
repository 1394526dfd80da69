// The typevisor command (bin/typevisor) starts the CLI in a Node.js with the VM process's options
// and environment (src/host/vm-process.ts), in the same process (exec), and leaves a setting the
// user made alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VM_ENV, VM_NODE_OPTIONS, v8PoolSize } from '../src/host/vm-process.js';

const bin = fileURLToPath(new URL('../../bin/typevisor', import.meta.url));
const preload = fileURLToPath(new URL('../../test/fixtures/report-runtime.cjs', import.meta.url));

interface Runtime {
  pid: number;
  execArgv: string[];
  env: Record<string, string | undefined>;
}

function start(env: NodeJS.ProcessEnv): {
  pid: number;
  status: number | null;
  stdout: string;
  runtime: Runtime;
} {
  const r = spawnSync(bin, ['--help'], {
    encoding: 'utf8',
    env: { ...env, NODE_OPTIONS: `--require ${preload}`, TV_REPORT_ENV: Object.keys(VM_ENV).join(',') },
  });
  const line = /^runtime: (.*)$/m.exec(r.stderr);
  assert.ok(line, `the preload reported: ${r.stderr}`);
  return { pid: r.pid, status: r.status, stdout: r.stdout, runtime: JSON.parse(line[1]) as Runtime };
}

test('bin/typevisor runs the CLI with the VM process options', () => {
  const env = { ...process.env };
  for (const k of Object.keys(VM_ENV)) delete env[k];
  const r = start(env);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: typevisor <command>/);
  assert.deepEqual(r.runtime.execArgv, [...VM_NODE_OPTIONS]);
  assert.deepEqual(r.runtime.env, VM_ENV, 'the fixture reports each variable of VM_ENV');
  assert.equal(r.runtime.pid, r.pid, 'the shell exec()s Node.js: no process in between');
});

test('bin/typevisor keeps the malloc and thread pool settings the user made', () => {
  const mine = { MALLOC_ARENA_MAX: '4', MALLOC_TRIM_THRESHOLD_: '65536', UV_THREADPOOL_SIZE: '40' };
  const r = start({ ...process.env, ...mine });
  assert.deepEqual(r.runtime.env, mine);
});

test("bin/typevisor sizes V8's background threads by the host's cores as v8PoolSize() does", () => {
  // A fake `nproc` first on PATH makes the script see a host of that many cores.
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-nproc-'));
  try {
    for (const cores of [1, 2, 3, 16]) {
      writeFileSync(join(dir, 'nproc'), `#!/bin/sh\necho ${cores}\n`, { mode: 0o755 });
      const r = start({ ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` });
      assert.equal(r.status, 0);
      const pool = r.runtime.execArgv.filter((a) => a.startsWith('--v8-pool-size='));
      assert.deepEqual(pool, [`--v8-pool-size=${v8PoolSize(cores)}`], `${cores} cores`);
    }
    assert.equal(v8PoolSize(2), 1);
    assert.equal(v8PoolSize(16), 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// An x86_64 guest (a test kernel on /dev/kvm) managed by the toolstack like an arm64 one: create,
// list, console, pause/unpause, the control API, QMP, balloon target, save --stop / restore,
// shutdown -w.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tv, tempStateDir, alive } from './helpers/toolstack-guest.js';
import { apiRequest } from '../src/api/client.js';
import { kvmMissing, toolsMissing } from './fixtures/x86/build.js';
import { guestKernelFile } from './helpers/x86-vm.js';

const skip = kvmMissing() ?? toolsMissing();

/** One QMP command on a fresh connection (after the greeting and qmp_capabilities). */
function qmp(path: string, execute: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    let step = 0;
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
        buf = buf.slice(i + 1);
        if (step === 0) sock.write('{"execute":"qmp_capabilities"}\n');
        else if (step === 1) sock.write(JSON.stringify({ execute }) + '\n');
        else {
          sock.destroy();
          resolve(msg);
        }
        step++;
      }
    });
  });
}

test('toolstack: an x86_64 guest on kvm is created, listed, attached, paused, ballooned, saved, restored and shut down', { skip, timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempStateDir();
  try {
    const kernel = guestKernelFile('echo64');
    // 6 vCPUs: each holds a pool thread in KVM_RUN (the secondaries wait there for a startup IPI
    // forever), so this needs the VM process's pool size (VM_ENV) to leave one for the boot vCPU.
    const c = await tv(dir, ['create', '--arch', 'x86_64', '--kernel', kernel, '--name', 'x', '--memory', '64', '--cpus', '6', '--no-rng', '--balloon']);
    assert.equal(c.code, 0, c.stderr);
    const l = await tv(dir, ['list']);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout.split('\n')[1], /^x\s+1\s+64\s+6\s+r-----\s+[\d.]+$/);

    const con = await tv(dir, ['console', 'x'], { input: 'ping', keepOpenMs: 1500 });
    assert.equal(con.code, 0, con.stderr);
    assert.equal(con.stdout, 'echo64 ready\nping', 'the greeting from the ring buffer, then the echo');

    assert.equal((await tv(dir, ['pause', 'x'])).code, 0);
    assert.match((await tv(dir, ['list'])).stdout, /\nx\s+1\s+64\s+6\s+--p---/);
    const st = await qmp(join(dir, 'x', 'qmp.sock'), 'query-status');
    assert.deepEqual(st.return, { status: 'paused', running: false, singlestep: false });
    assert.equal((await tv(dir, ['unpause', 'x'])).code, 0);
    const vm = await apiRequest(join(dir, 'x', 'control.sock'), 'GET', '/vm');
    assert.equal((vm.body as { state: string }).state, 'running');

    assert.equal((await tv(dir, ['balloon', 'x', '32'])).code, 0);
    assert.match((await tv(dir, ['list'])).stdout, /\nx\s+1\s+32\s+6\s+r-----/);

    // save --stop, then restore as another VM: it carries on (echoes; no second boot greeting).
    const file = join(dir, '..', 'x.snap');
    const sv = await tv(dir, ['save', '--stop', 'x', file]);
    assert.equal(sv.code, 0, sv.stderr);
    assert.equal((await tv(dir, ['list'])).stdout.trim().split('\n').length, 1, 'x stopped after the save');
    const r = await tv(dir, ['restore', file, '--name', 'y']);
    assert.equal(r.code, 0, r.stderr);
    const con2 = await tv(dir, ['console', 'y'], { input: 'pong', keepOpenMs: 1500 });
    assert.equal(con2.code, 0, con2.stderr);
    assert.equal(con2.stdout, 'pong', 'the restored guest echoes, and did not boot again');

    const [{ pid }] = JSON.parse((await tv(dir, ['list', '-l'])).stdout) as { pid: number }[];
    assert.ok(alive(pid));
    const s = await tv(dir, ['shutdown', '-w', 'y']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(alive(pid), false, 'shutdown -w returns after the VM process exited');
    assert.equal((await tv(dir, ['list'])).stdout.trim().split('\n').length, 1, 'only the header is left');
  } finally {
    cleanup();
  }
});

test('toolstack: launch runs an x86_64 guest in the foreground, listed; destroy stops it', { skip, timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempStateDir();
  try {
    const kernel = guestKernelFile('echo64');
    // In the foreground: the console on stdio; 'q' makes the guest stop through its exit port.
    const l = await tv(dir, ['launch', '--arch', 'x86_64', '--kernel', kernel, '--name', 'fg', '--memory', '64'], {
      input: 'hi q',
      timeoutMs: 30_000,
    });
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stdout, 'echo64 ready\nhi q');
    assert.match(l.stderr, /guest powered off/);
    // Listed while it runs: destroy reaches it.
    const fg = tv(dir, ['launch', '--arch', 'x86_64', '--kernel', kernel, '--name', 'fg2', '--memory', '64'], {
      input: '',
      keepOpenMs: 60_000,
      timeoutMs: 60_000,
    });
    for (let i = 0; !(await tv(dir, ['list'])).stdout.includes('fg2'); i++) {
      assert.ok(i < 300, 'the launched guest shows in list');
      await new Promise((r) => setTimeout(r, 50));
    }
    const d = await tv(dir, ['destroy', 'fg2']);
    assert.equal(d.code, 0, d.stderr);
    const done = await fg;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, 'echo64 ready\n');
    assert.equal((await tv(dir, ['list'])).stdout.trim().split('\n').length, 1);
  } finally {
    cleanup();
  }
});

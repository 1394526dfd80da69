// Pieces of the toolstack without a VM process: the console ring buffer, xl's state letters, the
// state directory's ids, and QMP/HTTP servers on an in-process VmHost whose guest has not started.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleRing } from '../src/vmm/server.js';
import {
  claimId,
  ensureStateDir,
  releaseId,
  removeEntry,
  stateDir,
  pidAlive,
  pidStartTime,
} from '../src/vmm/state.js';
import { stateLetters } from '../src/cli/list.js';
import { createQmpServer } from '../src/api/qmp.js';
import { createControlServer } from '../src/api/control.js';
import { apiRequest } from '../src/api/client.js';
import { tempStateDir, unstartedHost } from './helpers/toolstack-guest.js';

test('console ring keeps the most recent bytes', () => {
  const r = new ConsoleRing(8);
  assert.equal(r.contents().toString(), '');
  r.write(Buffer.from('abc'));
  assert.equal(r.contents().toString(), 'abc');
  r.write(Buffer.from('defgh'));
  assert.equal(r.contents().toString(), 'abcdefgh');
  r.write(Buffer.from('ij'));
  assert.equal(r.contents().toString(), 'cdefghij');
  r.write(Buffer.from('0123456789xyz'));
  assert.equal(r.contents().toString(), '56789xyz');
  r.write(Buffer.from('!'));
  assert.equal(r.contents().toString(), '6789xyz!');
});

test('xl state letters', () => {
  assert.equal(stateLetters('running'), 'r-----');
  assert.equal(stateLetters('blocked'), '-b----');
  assert.equal(stateLetters('paused'), '--p---');
  assert.equal(stateLetters('not-started'), '--p---');
  assert.equal(stateLetters('shutdown'), '---s--');
  assert.equal(stateLetters('crashed'), '----c-');
  assert.equal(stateLetters(undefined), '------');
});

test('state directory: env precedence, lowest free ids, pid checks', () => {
  assert.equal(stateDir({ TYPEVISOR_STATE_DIR: '/a/b', XDG_RUNTIME_DIR: '/run/user/1' }), '/a/b');
  assert.equal(stateDir({ XDG_RUNTIME_DIR: '/run/user/1' }), '/run/user/1/typevisor');
  assert.match(stateDir({}), /^\/tmp\/typevisor-\d+$/);
  const { dir, cleanup } = tempStateDir();
  try {
    ensureStateDir(dir);
    for (const n of ['a', 'b', 'c']) mkdirSync(join(dir, n));
    assert.equal(claimId('a', dir), 1);
    assert.equal(claimId('b', dir), 2);
    assert.equal(claimId('c', dir), 3);
    releaseId(2, 'b', dir);
    assert.equal(claimId('c2', dir), 2);
    releaseId(1, 'not-a', dir); // only the owner releases
    assert.ok(existsSync(join(dir, '.ids', '1')));
    removeEntry('a', dir);
    assert.ok(!existsSync(join(dir, 'a')));
    assert.deepEqual(readdirSync(join(dir, '.ids')).sort(), ['1', '2', '3']); // a had no vm.json: its id stays claimed
    assert.ok(pidAlive(process.pid));
    assert.ok(pidAlive(process.pid, pidStartTime(process.pid)));
    assert.equal(
      pidAlive(process.pid, (pidStartTime(process.pid) ?? 0) + 1),
      false,
      'a reused pid is not the VM',
    );
    assert.equal(pidAlive(0), false);
  } finally {
    cleanup();
  }
});

test('QMP and the control API on a guest that has not started (-p); input split across writes', async () => {
  const { dir, cleanup } = tempStateDir();
  const host = unstartedHost(dir, 'unit', 7, 2);
  let sock: Socket | undefined;
  try {
    await host.listen(host.paths.qmp, createQmpServer(host));
    await host.listen(host.paths.control, createControlServer(host));
    const info = await apiRequest(host.paths.control, 'GET', '/');
    assert.equal((info.body as { state: string }).state, 'Not started');
    const vm = (await apiRequest(host.paths.control, 'GET', '/vm')).body as Record<string, unknown>;
    assert.equal(vm.domid, 7);
    assert.equal(vm.state, 'not-started');

    sock = connect(host.paths.qmp);
    let buf = '';
    sock.on('data', (d: Buffer) => (buf += d.toString()));
    const lines = async (n: number): Promise<Record<string, unknown>[]> => {
      const end = Date.now() + 5000;
      while (buf.split('\n').filter((l) => l.trim()).length < n) {
        if (Date.now() > end) throw new Error(`want ${n} lines, have ${JSON.stringify(buf)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return buf
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    await lines(1);
    sock.write('{"execute": "qmp_cap');
    await new Promise((r) => setTimeout(r, 50));
    sock.write('abilities", "id": "x{}"}{"execute":"query-status"}\n"a string"\n42\n');
    const got = await lines(5);
    assert.deepEqual(got[1], { return: {}, id: 'x{}' });
    assert.deepEqual(got[2], { return: { status: 'prelaunch', running: false, singlestep: false } });
    assert.deepEqual(got[3], { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } });
    assert.deepEqual(got[4], { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } });
    sock.write('{"execute":"system_reset"}\n');
    const reset = (await lines(6))[5];
    assert.deepEqual(reset, {
      error: { class: 'GenericError', desc: 'cannot reboot: the VM has not been started' },
    });
    // A long unterminated object is refused and forgotten, and the connection carries on.
    sock.write('{"execute": "' + 'x'.repeat(1024 * 1024 + 10));
    const big = (await lines(7))[6];
    assert.match((big.error as { desc: string }).desc, /JSON parse error, input longer than/);
    sock.write('\n{"execute":"query-name"}\n');
    assert.deepEqual((await lines(8)).at(-1), { return: { name: 'unit' } });
    sock.destroy();
  } finally {
    sock?.destroy();
    host.close(0);
    cleanup();
  }
});

// The control API (control.sock) of a real VM process: Firecracker-shaped answers and errors, and
// malformed requests leave the VM running.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  haveCrossToolchain,
  tinyGuestImage,
  tv,
  tempStateDir,
  until,
  alive,
  GREETING,
} from './helpers/toolstack-guest.js';
import { apiRequest } from '../src/api/client.js';
import { API_ROUTES } from '../src/api/control.js';

const skip = haveCrossToolchain() ? false : 'aarch64-linux-gnu-gcc is not installed';

/** Send raw bytes to a socket and collect the answer until it closes (or 2 s). */
function raw(path: string, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(path);
    let buf = '';
    s.on('data', (d: Buffer) => (buf += d.toString()));
    s.on('error', () => resolve(buf));
    s.on('close', () => resolve(buf));
    s.on('connect', () => s.write(text));
    setTimeout(() => s.destroy(), 2000).unref();
  });
}

test('openapi.yaml documents every path and method the server answers', () => {
  const yaml = readFileSync(fileURLToPath(new URL('../../src/api/openapi.yaml', import.meta.url)), 'utf8');
  assert.match(yaml, /^openapi: 3\./);
  const paths = yaml.slice(yaml.indexOf('\npaths:'), yaml.indexOf('\ncomponents:'));
  for (const [path, methods] of Object.entries(API_ROUTES)) {
    const at = paths.indexOf(`\n  ${path}:\n`);
    assert.ok(at >= 0, `${path} in openapi.yaml`);
    const next = paths.slice(at + 1).search(/\n  \/\S*:\n/);
    const block = next < 0 ? paths.slice(at) : paths.slice(at, at + 1 + next);
    for (const m of methods) assert.match(block, new RegExp(`\\n    ${m.toLowerCase()}:`), `${m} ${path}`);
  }
});

test(
  'control API: info, pause/resume, balloon, errors; the VM keeps running',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const c = await tv(dir, [
        'create',
        '--kernel',
        tinyGuestImage(),
        '--name',
        'api',
        '--memory',
        '128',
        '--cpus',
        '2',
        '--balloon',
      ]);
      assert.equal(c.code, 0, c.stderr);
      const sock = join(dir, 'api', 'control.sock');
      const req = (m: string, p: string, b?: unknown) => apiRequest(sock, m, p, b);

      let r = await req('GET', '/');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { id: 'api', state: 'Running', vmm_version: '0.1.0', app_name: 'typevisor' });
      r = await req('GET', '/machine-config');
      assert.deepEqual(r.body, { vcpu_count: 2, mem_size_mib: 128, smt: false, track_dirty_pages: false });
      r = await req('GET', '/vm');
      const vm = r.body as Record<string, unknown>;
      assert.equal(vm.domid, 1);
      assert.equal(vm.vcpu_count, 2);
      assert.equal(vm.boots, 1);

      // Pause / resume (Firecracker's PATCH /vm).
      assert.equal((await req('PATCH', '/vm', { state: 'Paused' })).status, 204);
      assert.equal(((await req('GET', '/')).body as { state: string }).state, 'Paused');
      assert.equal((await req('PATCH', '/vm', { state: 'Resumed' })).status, 204);
      assert.equal(((await req('GET', '/')).body as { state: string }).state, 'Running');

      // InstanceStart on a started VM is refused.
      r = await req('PUT', '/actions', { action_type: 'InstanceStart' });
      assert.equal(r.status, 400);
      assert.match((r.body as { fault_message: string }).fault_message, /already running/);
      assert.equal((await req('PUT', '/actions', { action_type: 'FlushMetrics' })).status, 204);

      // Balloon (Firecracker's shape: amount_mib is what the balloon takes).
      assert.equal((await req('PATCH', '/balloon', { amount_mib: 28 })).status, 204);
      r = await req('GET', '/balloon');
      assert.equal((r.body as { amount_mib: number }).amount_mib, 28);
      assert.equal((r.body as { target_mib: number }).target_mib, 100);
      assert.equal((r.body as { stats_polling_interval_s: number }).stats_polling_interval_s, 0);
      assert.equal((r.body as { deflate_on_oom: boolean }).deflate_on_oom, true);

      // Balloon statistics: off until a polling interval is set (this guest has no balloon driver,
      // so only the sizes come back).
      r = await req('GET', '/balloon/statistics');
      assert.equal(r.status, 400);
      assert.match((r.body as { fault_message: string }).fault_message, /not enabled/);
      assert.equal((await req('PATCH', '/balloon/statistics', { stats_polling_interval_s: 2 })).status, 204);
      r = await req('GET', '/balloon');
      assert.equal((r.body as { stats_polling_interval_s: number }).stats_polling_interval_s, 2);
      r = await req('GET', '/balloon/statistics');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { target_pages: 28 * 256, actual_pages: 0, target_mib: 28, actual_mib: 0 });
      r = await req('PATCH', '/balloon/statistics', { stats_polling_interval_s: -1 });
      assert.equal(r.status, 400);
      assert.match((r.body as { fault_message: string }).fault_message, /`stats_polling_interval_s`/);
      r = await req('PATCH', '/balloon/statistics', { interval: 1 });
      assert.match((r.body as { fault_message: string }).fault_message, /unknown field `interval`/);

      // Errors: Firecracker's {"fault_message"}, naming the field.
      const fault = (x: { body: unknown }) => (x.body as { fault_message: string }).fault_message;
      r = await req('PATCH', '/vm', '{"state": "Paused"');
      assert.equal(r.status, 400);
      assert.match(fault(r), /malformed JSON/);
      r = await req('PATCH', '/vm', { state: 'Paused', colour: 'red' });
      assert.equal(r.status, 400);
      assert.match(fault(r), /unknown field `colour`/);
      r = await req('PATCH', '/vm', { state: 7 });
      assert.equal(r.status, 400);
      assert.match(fault(r), /`state`.*string/);
      r = await req('PATCH', '/vm', { state: 'Sleeping' });
      assert.equal(r.status, 400);
      assert.match(fault(r), /`state`.*Paused/);
      r = await req('PATCH', '/vm', {});
      assert.match(fault(r), /missing field `state`/);
      r = await req('PATCH', '/vm', [1, 2]);
      assert.match(fault(r), /JSON object/);
      r = await req('PATCH', '/vm');
      assert.equal(r.status, 400);
      assert.match(fault(r), /empty/);
      r = await req('PATCH', '/balloon', { amount_mib: -1 });
      assert.match(fault(r), /`amount_mib`/);
      r = await req('PATCH', '/balloon', { amount_mib: 4096 });
      assert.match(fault(r), /`amount_mib`/);
      r = await req('PUT', '/actions', { action_type: 'Explode' });
      assert.match(fault(r), /`action_type`/);
      r = await req('GET', '/no/such/path');
      assert.equal(r.status, 404);
      assert.match(fault(r), /unknown path/);
      r = await req('DELETE', '/vm');
      assert.equal(r.status, 405);
      assert.match(fault(r), /DELETE.*GET, PATCH/);
      r = await req('POST', '/');
      assert.equal(r.status, 405);
      // Not HTTP at all.
      const junk = await raw(sock, 'hello there\r\n\r\n');
      assert.match(junk, /^HTTP\/1\.1 400/);
      assert.match(junk, /fault_message/);
      // A body too large.
      r = await req('PATCH', '/vm', JSON.stringify({ state: 'Paused', pad: 'x'.repeat(100_000) }));
      assert.equal(r.status, 413);

      // Still running, and the guest still answers on its console.
      assert.equal(((await req('GET', '/')).body as { state: string }).state, 'Running');
      const con = await tv(dir, ['console', 'api'], { input: 'still-here', keepOpenMs: 1000 });
      assert.ok(con.stdout.includes(GREETING) && con.stdout.includes('still-here'), con.stdout);

      // SendCtrlAltDel powers the guest off (the power key); the process exits and the entry goes.
      const pid = (vm.pid as number) ?? 0;
      assert.equal((await req('PUT', '/actions', { action_type: 'SendCtrlAltDel' })).status, 204);
      await until(() => !alive(pid), 'the VM process to exit after SendCtrlAltDel');
      assert.equal((await tv(dir, ['list'])).stdout.trim().split('\n').length, 1);
    } finally {
      cleanup();
    }
  },
);

test(
  'control API: a guest created paused starts with InstanceStart; destroy ends it',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const c = await tv(dir, [
        'create',
        '-p',
        '--kernel',
        tinyGuestImage(),
        '--name',
        'later',
        '--memory',
        '64',
      ]);
      assert.equal(c.code, 0, c.stderr);
      const sock = join(dir, 'later', 'control.sock');
      assert.equal(((await apiRequest(sock, 'GET', '/')).body as { state: string }).state, 'Not started');
      let r = await apiRequest(sock, 'GET', '/balloon');
      assert.equal(r.status, 400);
      assert.match((r.body as { fault_message: string }).fault_message, /No balloon device/);
      r = await apiRequest(sock, 'PUT', '/reboot');
      assert.equal(r.status, 400);
      assert.equal((await apiRequest(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).status, 204);
      assert.equal(((await apiRequest(sock, 'GET', '/')).body as { state: string }).state, 'Running');
      const pid = ((await apiRequest(sock, 'GET', '/vm')).body as { pid: number }).pid;
      assert.equal((await apiRequest(sock, 'PUT', '/destroy')).status, 204);
      await until(() => !alive(pid), 'the VM process to exit after PUT /destroy');
      assert.equal((await tv(dir, ['list'])).stdout.trim().split('\n').length, 1);
    } finally {
      cleanup();
    }
  },
);

// virtio-vsock settings everywhere a user gives them: `--vsock CID[,uds=PATH]`, typevisor JSON
// `vsock`, microvm.nix `vsock.cid`, Fuchsia's `virtio-vsock`, the xl export, and the control API's
// `PUT /vsock` (Firecracker's) before the VM starts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../src/config/errors.js';
import { validateConfig } from '../src/config/vmconfig.js';
import { importMicrovm } from '../src/config/microvm.js';
import { importFuchsia } from '../src/config/fuchsia.js';
import { exportXl } from '../src/config/export.js';
import { parseVsockOption, specFromOptions } from '../src/config/spec.js';
import { UserError } from '../src/host/errors.js';
import { VmHost } from '../src/vmm/server.js';
import { createControlServer } from '../src/api/control.js';
import { apiRequest } from '../src/api/client.js';
import { CLI, unstartedHost } from './helpers/toolstack-guest.js';

function throwsMatching(fn: () => unknown, cls: new (...a: never[]) => Error, re: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof cls, `expected a ${cls.name}, got ${String(caught)}`);
  assert.match((caught as Error).message, re);
}

test('--vsock CID[,uds=PATH]: parsed, CID and settings checked with clear messages', () => {
  assert.deepEqual(parseVsockOption('3'), { cid: 3 });
  assert.deepEqual(parseVsockOption('4294967294,uds=/run/v.sock'), { cid: 4294967294, uds: '/run/v.sock' });
  assert.equal(
    parseVsockOption('9,uds=rel.sock').uds,
    join(process.cwd(), 'rel.sock'),
    'a relative path is made absolute',
  );
  throwsMatching(
    () => parseVsockOption('2'),
    UserError,
    /^--vsock: expected a guest CID from 3 to 4294967294 .*got 2$/,
  );
  throwsMatching(() => parseVsockOption('4294967295'), UserError, /^--vsock: expected a guest CID/);
  throwsMatching(
    () => parseVsockOption('three'),
    UserError,
    /^--vsock: expected CID\[,uds=PATH\] with a numeric guest CID, got 'three'$/,
  );
  throwsMatching(
    () => parseVsockOption('3,path=/x'),
    UserError,
    /^--vsock 3,path=\/x: unknown setting 'path=\/x' \(expected uds=PATH\)$/,
  );
  throwsMatching(
    () => parseVsockOption(`3,uds=/${'x'.repeat(120)}`),
    UserError,
    /more than the 107 a Unix socket allows/,
  );
});

test('typevisor JSON vsock: cid and uds (resolved next to the file); errors name the key', () => {
  const c = validateConfig({ vsock: { cid: 5, uds: 'v.sock' } }, '/etc/tv/vm.json');
  assert.deepEqual(c.vsock, { cid: 5, uds: '/etc/tv/v.sock' });
  const cases: [unknown, RegExp][] = [
    [{ vsock: 3 }, /^vm\.json: vsock: expected an object, got 3$/],
    [{ vsock: {} }, /^vm\.json: vsock\.cid: missing; expected the guest's CID/],
    [{ vsock: { cid: 1 } }, /^vm\.json: vsock\.cid: expected a guest CID from 3 to 4294967294 .*got 1$/],
    [{ vsock: { cid: '3' } }, /^vm\.json: vsock\.cid: expected an integer from 3 to 4294967294, got "3"$/],
    [{ vsock: { cid: 3, port: 1 } }, /^vm\.json: vsock\.port: unknown key/],
  ];
  for (const [obj, re] of cases) throwsMatching(() => validateConfig(obj, 'vm.json'), ConfigError, re);
});

test('microvm.nix vsock.cid and Fuchsia virtio-vsock map to vsock; the xl export keeps it as a note', () => {
  assert.deepEqual(importMicrovm('{"microvm":{"vsock":{"cid":42}}}', '/x/m.json').config.vsock, { cid: 42 });
  const none = importMicrovm('{"microvm":{"vsock":{"cid":null}}}', '/x/m.json');
  assert.equal(none.config.vsock, undefined);
  assert.deepEqual(none.warnings, []);
  const ssh = importMicrovm('{"microvm.vsock.cid":7,"microvm.vsock.ssh.enable":true}', '/x/m.json');
  assert.deepEqual(ssh.config.vsock, { cid: 7 });
  assert.deepEqual(ssh.warnings, [
    "microvm option 'microvm.vsock.ssh' is not supported by typevisor; ignored",
  ]);
  throwsMatching(
    () => importMicrovm('{"microvm":{"vsock":{"cid":2}}}', '/x/m.json'),
    ConfigError,
    /vsock\.cid: expected a guest CID from 3/,
  );
  const f = importFuchsia('{"linux":"Image","virtio-vsock":"true"}', '/x/g.json');
  assert.deepEqual(f.config.vsock, { cid: 3 });
  assert.deepEqual(f.warnings, []);
  assert.equal(importFuchsia('{"linux":"Image","virtio-vsock":false}', '/x/g.json').config.vsock, undefined);
  assert.match(
    exportXl({ name: 'v', vsock: { cid: 9 } }),
    /typevisor settings xl has no key for: vsock \{"cid":9\}/,
  );
});

test('a config file with vsock reaches the VM spec; `run --vsock 2` is a usage error without a stack trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-vsock-cfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = join(dir, 'Image');
  writeFileSync(kernel, 'not really a kernel');
  const cfg = join(dir, 'vm.json');
  writeFileSync(cfg, JSON.stringify({ kernel: 'Image', vsock: { cid: 11, uds: 'vm.vsock' } }));
  const spec = await specFromOptions({}, cfg);
  assert.deepEqual(spec.vsock, { cid: 11, uds: join(dir, 'vm.vsock') });
  const over = await specFromOptions({ vsock: '12' }, cfg);
  assert.deepEqual(over.vsock, { cid: 12 }, 'the option overrides the config');
  const r = spawnSync(process.execPath, [CLI, 'run', '--kernel', kernel, '--vsock', '2'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--vsock: expected a guest CID from 3 to 4294967294/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('control API PUT /vsock before start: sets CID and socket (default in the state directory); bad input is a 400', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-vsock-api-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const host = unstartedHost(dir, 'v', 1, 1);
  await host.listen(host.paths.control, createControlServer(host));
  t.after(() => host.close(0));
  // A spec that names a CID but no socket gets NAME/vsock.sock in the state directory.
  const withCid = new VmHost({ ...host.record, spec: { ...host.record.spec, vsock: { cid: 9 } } }, dir);
  assert.deepEqual(withCid.record.spec.vsock, { cid: 9, uds: join(dir, 'v', 'vsock.sock') });
  const put = (body: unknown) => apiRequest(host.paths.control, 'PUT', '/vsock', body);
  let r = await put({ guest_cid: 3 });
  assert.equal(r.status, 204);
  assert.deepEqual(host.record.spec.vsock, { cid: 3, uds: join(dir, 'v', 'vsock.sock') });
  r = await put({ vsock_id: 'vsock0', guest_cid: 77, uds_path: join(dir, 'x.sock') });
  assert.equal(r.status, 204);
  assert.deepEqual(host.record.spec.vsock, { cid: 77, uds: join(dir, 'x.sock') });
  r = await put({ guest_cid: 2 });
  assert.equal(r.status, 400);
  assert.match(
    (r.body as { fault_message: string }).fault_message,
    /^invalid guest_cid: expected a guest CID from 3/,
  );
  r = await put({ guest_cid: 3, port: 5 });
  assert.equal(r.status, 400);
  assert.match((r.body as { fault_message: string }).fault_message, /unknown field `port`/);
  r = await put({ uds_path: '/x' });
  assert.equal(r.status, 400);
  assert.match((r.body as { fault_message: string }).fault_message, /missing field `guest_cid`/);
  // Once started (here the boot itself fails: there is no kernel), the device can no longer change.
  await assert.rejects(host.start());
  r = await put({ guest_cid: 5 });
  assert.equal(r.status, 400);
  assert.match(
    (r.body as { fault_message: string }).fault_message,
    /only be configured before the VM starts/,
  );
  assert.equal(host.record.spec.vsock?.cid, 77);
});

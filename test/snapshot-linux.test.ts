// Snapshot and restore of the default Linux guest (2 vCPUs, a read-only disk, vsock, balloon), end
// to end, with one boot: at the shell prompt the guest mounts a tmpfs, writes a file there and
// starts a background process that counts; then `typevisor save` (the guest runs on), `destroy`,
// `typevisor restore` under another name: the file is there, the same process counts on from where
// it was, both vCPUs run tasks, the disk reads, the guest's clock has not gone back and the console
// answers. The restored guest is then saved through QMP (`migrate` to a file: URI),
// loaded into a VM created paused through the control API (PUT /snapshot/load), saved again with
// `save --stop`, and brought up in the foreground with `run --restore`. Waits are bounded; no
// duration is asserted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tv, tempStateDir, until, alive } from './helpers/toolstack-guest.js';
import { apiRequest } from '../src/api/client.js';
import { buildDefaultImage } from '../src/image/build.js';

let skip: string | false = false;
try {
  await buildDefaultImage({ log: () => {} });
} catch (e) {
  skip = `the default guest image cannot be built here: ${(e as Error).message}`;
}

/** Bound for a guest step on the software CPU (a loaded host can be slow; this is no timing check). */
const STEP_MS = 5 * 60 * 1000;

/** The console of guest `name`: run(cmd, key) types cmd and waits for a line "@@key=VALUE". */
function consoleOf(
  dir: string,
  name: string,
): { run: (cmd: string, key: string) => Promise<string>; close: () => void } {
  const sock = connect(join(dir, name, 'console.sock'));
  let out = '';
  sock.on('data', (d: Buffer) => (out += d.toString('latin1')));
  sock.on('error', () => {});
  return {
    run: async (cmd, key) => {
      const from = out.length;
      sock.write(`${cmd}\n`);
      // The echo of the typed command holds the unexpanded text ($(...)), so it never matches.
      const re = new RegExp(`(?:^|\\n)@@${key}=([^\\s$]+)\\r?\\n`);
      const m = await until(
        () => re.exec(out.slice(from)),
        `@@${key} from ${name}; console:\n${out.slice(-2000)}`,
        STEP_MS,
      );
      return m![1];
    },
    close: () => sock.destroy(),
  };
}

/** A QMP session: each command's reply (events are skipped). */
async function qmp(
  path: string,
): Promise<{ cmd: (execute: string, args?: object) => Promise<Record<string, unknown>>; close: () => void }> {
  const sock: Socket = connect(path);
  let buf = '';
  const replies: Record<string, unknown>[] = [];
  sock.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const o = JSON.parse(line) as Record<string, unknown>;
      if (!('event' in o)) replies.push(o);
    }
  });
  sock.on('error', () => {});
  await until(() => replies.length > 0, 'the QMP greeting');
  replies.shift();
  const cmd = async (execute: string, args?: object): Promise<Record<string, unknown>> => {
    sock.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    await until(() => replies.length > 0, `the reply to ${execute}`, STEP_MS);
    return replies.shift()!;
  };
  await cmd('qmp_capabilities');
  return { cmd, close: () => sock.destroy() };
}

test(
  'linux guest: save, destroy, restore: tmpfs files kept, a background process counts on, the clock does not go back, the console answers; QMP, API and run --restore too',
  { skip, timeout: 6 * STEP_MS },
  async () => {
    const { dir, work, cleanup } = tempStateDir();
    const snap1 = join(work, 'one.snap');
    const snap2 = join(work, 'two.snap');
    const snap3 = join(work, 'three.snap');
    const cons: { close: () => void }[] = [];
    try {
      // A read-only disk the guest first reads after the restore (through the restored virtio-blk
      // queue), and a vsock and a balloon device to carry along.
      const disk = join(work, 'disk.img');
      const sector = Buffer.alloc(1024 * 1024);
      sector.write('snapshot-disk-ok\n');
      writeFileSync(disk, sector);
      const c = await tv(
        dir,
        [
          'create',
          '--name',
          'sv',
          '--memory',
          '256',
          '--cpus',
          '2',
          '--disk',
          `${disk},ro`,
          '--vsock',
          '3',
          '--balloon',
        ],
        {
          timeoutMs: 120_000,
        },
      );
      assert.equal(c.code, 0, c.stderr);
      const sv = consoleOf(dir, 'sv');
      cons.push(sv);
      assert.equal(await sv.run('echo @@up=$((40+2))', 'up'), '42');
      const pid = await sv.run(
        'mkdir -p /t && mount -t tmpfs tmpfs /t && echo kept-in-tmpfs > /t/f && ' +
          '(i=0; while true; do i=$((i+1)); echo $i > /t/count; sleep 1; done) & echo @@pid=$!',
        'pid',
      );
      const counted = Number(await sv.run('sleep 3; echo @@count=$(cat /t/count)', 'count'));
      assert.ok(counted >= 2, `the background process counts (${counted})`);
      const uptime = Number(await sv.run('echo @@uptime=$(cut -d" " -f1 /proc/uptime)', 'uptime'));

      // save: the guest is paused while the file is written, then runs on.
      const s = await tv(dir, ['save', 'sv', snap1], { timeoutMs: STEP_MS });
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stderr, /saved sv to .*one\.snap \(\d+\.\d MiB\)/);
      console.log(
        `snapshot of the default guest (256 MiB, 2 vCPUs) at its shell prompt: ${(statSync(snap1).size / 1048576).toFixed(1)} MiB`,
      );
      assert.equal(await sv.run('echo @@after=$((1+1))', 'after'), '2', 'the saved guest runs on');
      sv.close();
      assert.equal((await tv(dir, ['destroy', 'sv'])).code, 0);

      // restore under another name.
      const r = await tv(dir, ['restore', snap1, '--name', 'sv2'], { timeoutMs: STEP_MS });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /restored sv2 \(id \d+, pid \d+\) from .*one\.snap/);
      const sv2 = consoleOf(dir, 'sv2');
      cons.push(sv2);
      assert.equal(await sv2.run('echo @@file=$(cat /t/f)', 'file'), 'kept-in-tmpfs');
      assert.equal(await sv2.run('echo @@disk=$(head -c 16 /dev/vda)', 'disk'), 'snapshot-disk-ok');
      // Both vCPUs run on: a task started on each finishes.
      assert.equal(
        await sv2.run(
          'taskset 1 true && taskset 2 true && echo @@cpus=$(grep -c ^processor /proc/cpuinfo)',
          'cpus',
        ),
        '2',
      );
      assert.equal(
        await sv2.run(`kill -0 ${pid} && echo @@same=yes`, 'same'),
        'yes',
        'the counting process is the one started before the save',
      );
      const later = Number(await sv2.run('sleep 2; echo @@count=$(cat /t/count)', 'count'));
      assert.ok(later > counted, `the count went on from ${counted} to ${later}, not from 1`);
      const uptime2 = Number(await sv2.run('echo @@uptime=$(cut -d" " -f1 /proc/uptime)', 'uptime'));
      assert.ok(
        uptime2 >= uptime,
        `the guest's clock went on (uptime ${uptime} s before the save, ${uptime2} s after the restore)`,
      );

      // QMP: migrate to a file stops the guest and writes it.
      const q = await qmp(join(dir, 'sv2', 'qmp.sock'));
      assert.deepEqual(await q.cmd('migrate', { uri: `file:${snap2}` }), { return: {} });
      assert.deepEqual(await q.cmd('query-status'), {
        return: { status: 'paused', running: false, singlestep: false },
      });
      assert.equal(((await q.cmd('query-migrate')).return as { status: string }).status, 'completed');
      const bad = (await q.cmd('migrate', { uri: 'tcp:127.0.0.1:4444' })).error as { desc: string };
      assert.match(bad.desc, /file:PATH/);
      await q.cmd('quit');
      q.close();
      sv2.close();
      await until(() => !existsSync(join(dir, 'sv2', 'vm.json')), 'sv2 to go');

      // Firecracker's API: a VM created paused loads the snapshot and runs it.
      assert.equal(
        (await tv(dir, ['create', '-p', '--name', 'sv3', '--memory', '256', '--cpus', '2'])).code,
        0,
      );
      const ctl = join(dir, 'sv3', 'control.sock');
      const missing = await apiRequest(ctl, 'PUT', '/snapshot/load', {
        snapshot_path: join(work, 'none.snap'),
      });
      assert.equal(missing.status, 400);
      const load = await apiRequest(
        ctl,
        'PUT',
        '/snapshot/load',
        { snapshot_path: snap2, resume_vm: true },
        STEP_MS,
      );
      assert.equal(load.status, 204, JSON.stringify(load.body));
      const sv3 = consoleOf(dir, 'sv3');
      cons.push(sv3);
      assert.equal(await sv3.run('echo @@file=$(cat /t/f)', 'file'), 'kept-in-tmpfs');
      assert.equal(await sv3.run(`kill -0 ${pid} && echo @@same=yes`, 'same'), 'yes');
      const running = await apiRequest(ctl, 'PUT', '/snapshot/create', { snapshot_path: snap3 });
      assert.equal(running.status, 400, 'Firecracker creates snapshots of paused VMs only');
      assert.match(JSON.stringify(running.body), /paused/);
      const rec = JSON.parse(readFileSync(join(dir, 'sv3', 'vm.json'), 'utf8')) as { pid: number };
      const st = await tv(dir, ['save', '--stop', 'sv3', snap3], { timeoutMs: STEP_MS });
      assert.equal(st.code, 0, st.stderr);
      await until(() => !alive(rec.pid), 'the VM process of sv3 to exit after save --stop');
      sv3.close();

      // run --restore: the guest in the foreground.
      const fg = await tv(dir, ['run', '--restore', snap3, '--name', 'sv4'], {
        input: 'echo @@fg=$(cat /t/f)\npoweroff -f\n',
        timeoutMs: STEP_MS,
      });
      assert.equal(fg.code, 0, fg.stderr);
      assert.match(fg.stderr, /restoring sv4 from .*three\.snap/);
      assert.match(fg.stdout, /\n@@fg=kept-in-tmpfs\r?\n/);
    } finally {
      for (const c of cons) c.close();
      cleanup();
    }
  },
);

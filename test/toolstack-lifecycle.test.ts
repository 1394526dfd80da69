// The xl-style toolstack end to end: `create` starts a real detached VM process booting a tiny
// arm64 guest (built here with the cross toolchain), and list / console / shutdown / destroy /
// pause / reboot / balloon work on it through its sockets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  haveCrossToolchain,
  tinyGuestImage,
  tv,
  tempStateDir,
  until,
  alive,
  GREETING,
} from './helpers/toolstack-guest.js';
import { LIST_HEADER, formatRow } from '../src/cli/list.js';
import { apiRequest } from '../src/api/client.js';
import { VM_ENV, VM_NODE_OPTIONS } from '../src/host/vm-process.js';

const skip = haveCrossToolchain() ? false : 'aarch64-linux-gnu-gcc is not installed';

interface Row {
  name: string;
  id: number;
  mem: number;
  vcpus: number;
  state: string;
  time: number;
}

function parseList(out: string): Row[] {
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[0], LIST_HEADER);
  return lines.slice(1).map((l) => {
    const [name, id, mem, vcpus, state, time] = l.trim().split(/\s+/);
    return { name, id: Number(id), mem: Number(mem), vcpus: Number(vcpus), state, time: Number(time) };
  });
}

async function list(dir: string): Promise<Row[]> {
  const r = await tv(dir, ['list']);
  assert.equal(r.code, 0, r.stderr);
  return parseList(r.stdout);
}

function record(
  dir: string,
  name: string,
): { pid: number; id: number; name: string; spec: { memoryMiB: number } } {
  return JSON.parse(readFileSync(join(dir, name, 'vm.json'), 'utf8'));
}

/** Connect to a console socket and collect what arrives. */
function consoleClient(path: string): {
  text: () => string;
  write: (s: string) => void;
  close: () => void;
  ended: Promise<void>;
} {
  const sock = connect(path);
  let buf = '';
  sock.on('data', (d: Buffer) => (buf += d.toString('latin1')));
  sock.on('error', () => {});
  const ended = new Promise<void>((r) => sock.on('close', () => r()));
  return { text: () => buf, write: (s) => sock.write(s), close: () => sock.destroy(), ended };
}

test('list header and rows are formatted exactly like xl list', () => {
  // From seed 003 (xl list on a Xen host).
  assert.equal(
    LIST_HEADER,
    'Name                                        ID   Mem VCPUs      State   Time(s)',
  );
  assert.equal(
    formatRow('Domain-0', 0, 192, 4, 'r-----', 696.2),
    'Domain-0                                     0   192     4     r-----     696.2',
  );
  assert.equal(
    formatRow('xen-guest', 1, 512, 1, '-b----', 153.0),
    'xen-guest                                    1   512     1     -b----     153.0',
  );
});

test('create, list, console, shutdown -w', { skip, timeout: 60_000 }, async () => {
  const { dir, work, cleanup } = tempStateDir();
  try {
    const kernel = tinyGuestImage();
    const cfg = join(work, 'tiny.cfg');
    // An xl config, as in seed 003.
    writeFileSync(cfg, `name = "xen-guest"\nmemory = 96\nvcpus = 2\nkernel = "${kernel}"\n`);
    const c = await tv(dir, ['create', cfg, '--no-rng']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /created xen-guest \(id 1, pid \d+\)/);
    const rec = record(dir, 'xen-guest');
    assert.equal(rec.id, 1);
    assert.ok(alive(rec.pid));
    // The VM process runs in a Node.js set up for one (src/host/vm-process.ts).
    const argv = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
    for (const o of VM_NODE_OPTIONS)
      assert.ok(argv.includes(o), `VM process started with ${o}: ${argv.join(' ')}`);
    const environ = readFileSync(`/proc/${rec.pid}/environ`, 'utf8').split('\0');
    for (const [k, v] of Object.entries(VM_ENV))
      assert.ok(environ.includes(`${k}=${v}`), `VM process has ${k}=${v}`);
    for (const f of ['control.sock', 'qmp.sock', 'console.sock', 'vm.json'])
      assert.ok(existsSync(join(dir, 'xen-guest', f)), f);

    const rows = await list(dir);
    assert.equal(rows.length, 1);
    assert.deepEqual(
      { ...rows[0], time: 0 },
      { name: 'xen-guest', id: 1, mem: 96, vcpus: 2, state: 'r-----', time: 0 },
    );

    // A late attacher sees the greeting from the ring buffer; input is echoed by the guest.
    const con = await tv(dir, ['console', 'xen-guest'], { input: 'ping', keepOpenMs: 1500 });
    assert.equal(con.code, 0, con.stderr);
    assert.ok(con.stdout.includes(GREETING), con.stdout);
    assert.ok(con.stdout.includes('ping'), con.stdout);
    assert.ok(alive(rec.pid), 'the guest keeps running after the console detaches');
    // The guest has run (it printed its greeting), so it has used CPU time: `list -l` gives it
    // unrounded (the table's one decimal shows 0.0 for this small guest).
    const long = await tv(dir, ['list', '-l']);
    assert.equal(long.code, 0, long.stderr);
    const [entry] = JSON.parse(long.stdout) as { status: { cpu_time_s: number } }[];
    assert.ok(entry.status.cpu_time_s > 0, `cpu_time_s after the guest ran: ${entry.status.cpu_time_s}`);

    const s = await tv(dir, ['shutdown', '-w', 'xen-guest']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(alive(rec.pid), false, 'shutdown -w returns after the VM process exited');
    assert.deepEqual(await list(dir), []);
    assert.equal(existsSync(join(dir, 'xen-guest')), false);
  } finally {
    cleanup();
  }
});

test('destroy stops an idle (blocked) guest at once', { skip, timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempStateDir();
  try {
    const c = await tv(dir, [
      'create',
      '--kernel',
      tinyGuestImage('idle'),
      '--name',
      'idle',
      '--memory',
      '64',
      '--no-rng',
    ]);
    assert.equal(c.code, 0, c.stderr);
    const rec = record(dir, 'idle');
    await until(async () => (await list(dir))[0]?.state === '-b----', 'the idle guest to block in WFI');
    const d = await tv(dir, ['destroy', 'idle']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(alive(rec.pid), false);
    assert.deepEqual(await list(dir), []);
    const again = await tv(dir, ['destroy', 'idle']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no running guest named 'idle'/);
  } finally {
    cleanup();
  }
});

test(
  'pause / unpause change the state letters; create -p starts paused',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const kernel = tinyGuestImage();
      assert.equal((await tv(dir, ['create', '--kernel', kernel, '--name', 'a', '--memory', '64'])).code, 0);
      assert.equal((await list(dir))[0].state, 'r-----');
      assert.equal((await tv(dir, ['pause', 'a'])).code, 0);
      assert.equal((await list(dir))[0].state, '--p---');
      const t1 = (await list(dir))[0].time;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await list(dir))[0].time, t1, 'a paused guest retires no instructions');
      assert.equal((await tv(dir, ['unpause', 'a'])).code, 0);
      assert.equal((await list(dir))[0].state, 'r-----');

      // -p: nothing runs until unpause; the console then shows the greeting.
      const p = await tv(dir, ['create', '-p', '--kernel', kernel, '--name', 'b', '--memory', '64']);
      assert.equal(p.code, 0, p.stderr);
      const rows = await list(dir);
      assert.deepEqual(
        rows.map((r) => [r.name, r.id, r.state]),
        [
          ['a', 1, 'r-----'],
          ['b', 2, '--p---'],
        ],
      );
      const con = consoleClient(join(dir, 'b', 'console.sock'));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(con.text(), '');
      assert.equal((await tv(dir, ['unpause', 'b'])).code, 0);
      await until(() => con.text().includes(GREETING), 'the greeting after unpause');
      con.close();
      assert.equal((await list(dir)).find((r) => r.name === 'b')?.state, 'r-----');
    } finally {
      cleanup();
    }
  },
);

test('a VM process killed with SIGKILL leaves no stale entry', { skip, timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempStateDir();
  try {
    const kernel = tinyGuestImage();
    assert.equal(
      (await tv(dir, ['create', '--kernel', kernel, '--name', 'victim', '--memory', '64'])).code,
      0,
    );
    const rec = record(dir, 'victim');
    process.kill(rec.pid, 'SIGKILL');
    await until(() => !alive(rec.pid), 'the VM process to die');
    assert.deepEqual(await list(dir), []);
    assert.equal(existsSync(join(dir, 'victim')), false);
    assert.deepEqual(readdirSync(join(dir, '.ids')), [], 'its id is free again');
    // The name and the id can be used again.
    assert.equal(
      (await tv(dir, ['create', '--kernel', kernel, '--name', 'victim', '--memory', '64'])).code,
      0,
    );
    assert.equal(record(dir, 'victim').id, 1);
    // A dead entry is also cleared by other verbs (create of the same name after a SIGKILL).
    process.kill(record(dir, 'victim').pid, 'SIGKILL');
    await until(() => !alive(record(dir, 'victim').pid), 'the VM process to die');
    const again = await tv(dir, ['create', '--kernel', kernel, '--name', 'victim', '--memory', '64']);
    assert.equal(again.code, 0, again.stderr);
  } finally {
    cleanup();
  }
});

test(
  'two guests with one name are refused; config errors start nothing',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, work, cleanup } = tempStateDir();
    try {
      const kernel = tinyGuestImage();
      assert.equal(
        (await tv(dir, ['create', '--kernel', kernel, '--name', 'web', '--memory', '64'])).code,
        0,
      );
      const dup = await tv(dir, ['create', '--kernel', kernel, '--name', 'web', '--memory', '64']);
      assert.equal(dup.code, 1);
      assert.equal(dup.stderr.trim().split('\n').length, 1, dup.stderr);
      assert.match(dup.stderr, /^typevisor: a guest named 'web' is already running \(id 1, pid \d+\)/);
      const rows = await list(dir);
      assert.deepEqual(
        rows.map((r) => [r.name, r.state]),
        [['web', 'r-----']],
      );

      // Bad config: one clear line naming the file and key, non-zero, nothing started.
      const bad = join(work, 'bad.json');
      writeFileSync(bad, JSON.stringify({ name: 'bad', kernel, memoryMiB: 'lots' }));
      const b = await tv(dir, ['create', bad]);
      assert.equal(b.code, 2);
      assert.equal(b.stderr.trim().split('\n').length, 1, b.stderr);
      assert.match(b.stderr, /memoryMiB/);
      // Not a kernel (an empty file cannot even be a raw binary): refused before anything starts.
      const notImage = join(work, 'notimage');
      writeFileSync(notImage, '');
      const k = await tv(dir, ['create', '--kernel', notImage, '--name', 'bad2']);
      assert.equal(k.code, 2);
      assert.equal(k.stderr.trim().split('\n').length, 1, k.stderr);
      assert.match(k.stderr, /the file is empty; expected an arm64 Image, an ELF or a raw binary/);
      const m = await tv(dir, ['create', '--kernel', kernel, '--name', 'bad3', '--cpus', '99']);
      assert.equal(m.code, 2);
      assert.match(m.stderr, /--cpus/);
      assert.deepEqual(
        readdirSync(dir).filter((n) => !n.startsWith('.')),
        ['web'],
      );
    } finally {
      cleanup();
    }
  },
);

test(
  'reboot boots the guest again; balloon sets the target; console Ctrl-] detaches',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const kernel = tinyGuestImage();
      assert.equal(
        (await tv(dir, ['create', '--kernel', kernel, '--name', 'r', '--memory', '128', '--balloon'])).code,
        0,
      );
      const con = consoleClient(join(dir, 'r', 'console.sock'));
      await until(() => con.text().includes(GREETING), 'the greeting');
      assert.equal((await tv(dir, ['reboot', 'r'])).code, 0);
      await until(() => con.text().split(GREETING).length === 3, 'the greeting after the reboot');
      const vm = await apiRequest(join(dir, 'r', 'control.sock'), 'GET', '/vm');
      assert.equal((vm.body as { boots: number }).boots, 2);
      con.close();

      assert.equal((await tv(dir, ['balloon', 'r', '100'])).code, 0);
      assert.equal((await list(dir))[0].mem, 100);
      const bad = await tv(dir, ['balloon', 'r', '500']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /from 0 to 128 MiB/);

      // Ctrl-] (0x1d) detaches; what came before it reaches the guest (another attached console sees
      // the echo: several consoles share the guest).
      const watcher = consoleClient(join(dir, 'r', 'console.sock'));
      const c = await tv(dir, ['console', 'r'], { input: Buffer.from('xyz\x1d'), keepOpenMs: 10_000 });
      assert.equal(c.code, 0);
      assert.match(c.stderr, /detached from r; the guest keeps running/);
      await until(() => watcher.text().includes('xyz'), 'the echo of the input sent before Ctrl-]');
      watcher.close();
      assert.equal((await list(dir))[0].state, 'r-----');
    } finally {
      cleanup();
    }
  },
);

test(
  'autostart creates the guests of a directory once; launch runs a config in the foreground',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, work, cleanup } = tempStateDir();
    try {
      const kernel = tinyGuestImage();
      const auto = join(work, 'auto');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(auto);
      writeFileSync(join(auto, 'one.json'), JSON.stringify({ name: 'one', kernel, memoryMiB: 64 }));
      writeFileSync(join(auto, 'two.cfg'), `name = "two"\nmemory = 80\nkernel = "${kernel}"\n`);
      writeFileSync(join(auto, 'README'), 'not a config');
      const a = await tv(dir, ['autostart', auto]);
      assert.equal(a.code, 0, a.stderr);
      assert.deepEqual(
        (await list(dir)).map((r) => [r.name, r.mem]),
        [
          ['one', 64],
          ['two', 80],
        ],
      );
      const again = await tv(dir, ['autostart', auto]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /one .* is already running/);
      assert.equal((await list(dir)).length, 2);

      // launch: run in the foreground (console on stdio; '!' makes the tiny guest power off)...
      const l = await tv(dir, ['launch', join(auto, 'one.json'), '--name', 'fg'], {
        input: 'hi!',
        timeoutMs: 30_000,
      });
      assert.equal(l.code, 0, l.stderr);
      assert.ok(l.stdout.includes(GREETING));
      assert.ok(l.stdout.includes('hi'));
      assert.match(l.stderr, /guest powered off/);
      // ...registered while it runs: list, balloon and shutdown -w reach it.
      const fg = tv(dir, ['launch', join(auto, 'one.json'), '--name', 'fg2', '--balloon'], {
        input: '',
        keepOpenMs: 60_000,
        timeoutMs: 60_000,
      });
      await until(async () => (await list(dir)).some((r) => r.name === 'fg2'), 'the launched guest in list');
      assert.equal((await tv(dir, ['balloon', 'fg2', '48'])).code, 0);
      assert.equal((await list(dir)).find((r) => r.name === 'fg2')?.mem, 48);
      assert.equal((await tv(dir, ['shutdown', '-w', 'fg2'])).code, 0);
      const done = await fg;
      assert.equal(done.code, 0, done.stderr);
      assert.ok(done.stdout.includes(GREETING));
      assert.deepEqual(
        (await list(dir)).map((r) => r.name),
        ['one', 'two'],
      );
    } finally {
      cleanup();
    }
  },
);

test('microvm-runner scripts drive the toolstack', { skip, timeout: 60_000 }, async () => {
  const { dir, work, cleanup } = tempStateDir();
  try {
    const kernel = tinyGuestImage();
    const base = join(work, 'mvm');
    const { mkdirSync, chmodSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    mkdirSync(base);
    const cfg = join(base, 'vm.json');
    writeFileSync(cfg, JSON.stringify({ name: 'mvm', kernel, memoryMiB: 64, balloon: {} }));
    const r = await tv(dir, ['microvm-runner', cfg, '--out', join(base, 'out')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 4);
    const wrapper = join(base, 'typevisor');
    const { CLI } = await import('./helpers/toolstack-guest.js');
    writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(wrapper, 0o755);
    assert.equal((await tv(dir, ['create', cfg])).code, 0);
    const env = { ...process.env, TYPEVISOR: wrapper, TYPEVISOR_STATE_DIR: dir };
    execFileSync(join(base, 'out', 'bin', 'microvm-balloon'), ['32'], { env });
    assert.equal((await list(dir))[0].mem, 32);
    execFileSync(join(base, 'out', 'bin', 'microvm-shutdown'), [], { env });
    assert.deepEqual(await list(dir), []);
  } finally {
    cleanup();
  }
});

test(
  'on_poweroff = "preserve" keeps a powered-off guest listed (---s--) until destroy',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, work, cleanup } = tempStateDir();
    try {
      const cfg = join(work, 'keep.cfg');
      writeFileSync(
        cfg,
        `name = "keep"\nmemory = 64\nkernel = "${tinyGuestImage()}"\non_poweroff = "preserve"\n`,
      );
      assert.equal((await tv(dir, ['create', cfg])).code, 0);
      const rec = record(dir, 'keep');
      // '!' makes the tiny guest power off.
      const con = await tv(dir, ['console', 'keep'], { input: '!', keepOpenMs: 500 });
      assert.equal(con.code, 0);
      await until(async () => (await list(dir))[0]?.state === '---s--', 'the ---s-- state');
      assert.ok(alive(rec.pid));
      // The console still shows the last screen, then closes.
      const late = await tv(dir, ['console', 'keep'], { keepOpenMs: 5000 });
      assert.ok(late.stdout.includes(GREETING));
      assert.match(late.stderr, /keep stopped; console closed/);
      const p = await tv(dir, ['pause', 'keep']);
      assert.equal(p.code, 1);
      assert.match(p.stderr, /cannot pause: the VM has stopped/);
      assert.equal((await tv(dir, ['destroy', 'keep'])).code, 0);
      assert.equal(alive(rec.pid), false);
      assert.deepEqual(await list(dir), []);
    } finally {
      cleanup();
    }
  },
);

test(
  'commands name a guest by name or id; unknown guests get one clear line',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      assert.equal(
        (await tv(dir, ['create', '--kernel', tinyGuestImage('idle'), '--name', 'n1', '--memory', '64']))
          .code,
        0,
      );
      assert.equal(
        (await tv(dir, ['create', '--kernel', tinyGuestImage('idle'), '--name', 'n2', '--memory', '64']))
          .code,
        0,
      );
      const l = await tv(dir, ['list', 'n2']);
      assert.deepEqual(
        parseList(l.stdout).map((r) => [r.name, r.id]),
        [['n2', 2]],
      );
      assert.equal((await tv(dir, ['pause', '2'])).code, 0);
      assert.deepEqual(
        (await list(dir)).map((r) => r.state),
        ['-b----', '--p---'],
      );
      for (const verb of ['console', 'shutdown', 'reboot', 'destroy', 'pause', 'unpause']) {
        const r = await tv(dir, [verb, 'ghost']);
        assert.equal(r.code, 1, verb);
        assert.equal(r.stderr, "typevisor: no running guest named 'ghost' (see typevisor list)\n", verb);
      }
      const r = await tv(dir, ['list', 'ghost']);
      assert.equal(r.code, 1);
      assert.equal((await tv(dir, ['destroy', '1'])).code, 0);
      assert.deepEqual(
        (await list(dir)).map((x) => x.name),
        ['n2'],
      );
    } finally {
      cleanup();
    }
  },
);

test(
  'console on a terminal (raw mode): keys reach the guest, Ctrl-] detaches; create -c attaches',
  { skip, timeout: 60_000 },
  async (t) => {
    const { execFileSync, spawn } = await import('node:child_process');
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
    } catch {
      t.skip('script(1) is not installed (it provides the pseudo-terminal)');
      return;
    }
    const { dir, cleanup } = tempStateDir();
    let child: import('node:child_process').ChildProcess | undefined;
    try {
      const { CLI } = await import('./helpers/toolstack-guest.js');
      const kernel = tinyGuestImage();
      // create -c: the console follows the start; from a pipe, the end of input detaches.
      const c = await tv(dir, ['create', '-c', '--kernel', kernel, '--name', 'tty', '--memory', '64'], {
        input: 'first',
        keepOpenMs: 1000,
      });
      assert.equal(c.code, 0, c.stderr);
      assert.ok(c.stdout.includes(GREETING) && c.stdout.includes('first'), c.stdout);
      assert.equal((await list(dir))[0].state, 'r-----');

      // script(1) gives the console a pseudo-terminal: raw mode, so 0x1d arrives as a byte.
      const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
      child = spawn('script', ['-qec', `${q(process.execPath)} ${q(CLI)} console tty`, '/dev/null'], {
        env: { ...process.env, TYPEVISOR_STATE_DIR: dir },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const closed = new Promise<number | null>((r) => child!.on('close', r));
      await until(() => out.includes('Ctrl-] detaches'), 'the console to attach');
      child.stdin!.write('typed');
      await until(() => out.includes('typed'), 'the guest to echo the keys');
      child.stdin!.write('\x1d');
      await until(() => out.includes('the guest keeps running'), 'Ctrl-] to detach');
      child.stdin!.end();
      assert.equal(await closed, 0);
      assert.equal((await list(dir))[0].state, 'r-----');
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      cleanup();
    }
  },
);

test(
  'concurrent creates get distinct ids; of two with one name exactly one wins; SIGTERM cleans up',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const kernel = tinyGuestImage('idle');
      const args = (name: string) => ['create', '--kernel', kernel, '--name', name, '--memory', '64'];
      const results = await Promise.all([
        tv(dir, args('c1')),
        tv(dir, args('c2')),
        tv(dir, args('c3')),
        tv(dir, args('c3')),
      ]);
      assert.deepEqual(
        results.map((r) => r.code).sort(),
        [0, 0, 0, 1],
        results.map((r) => r.stderr).join(''),
      );
      const rows = await list(dir);
      assert.deepEqual(
        rows.map((r) => r.name),
        ['c1', 'c2', 'c3'].sort((a, b) => record(dir, a).id - record(dir, b).id),
      );
      assert.deepEqual(rows.map((r) => r.id).sort(), [1, 2, 3]);

      // SIGTERM: the VM process stops the guest and removes its own entry.
      const { pid, id: freed } = record(dir, 'c2');
      process.kill(pid, 'SIGTERM');
      await until(() => !alive(pid), 'the VM process to exit on SIGTERM');
      assert.equal(existsSync(join(dir, 'c2')), false);
      assert.deepEqual((await list(dir)).map((r) => r.name).sort(), ['c1', 'c3']);
      // The lowest free id is reused.
      assert.equal((await tv(dir, args('c4'))).code, 0);
      assert.equal(record(dir, 'c4').id, freed);
    } finally {
      cleanup();
    }
  },
);

test(
  'a state directory too long for unix sockets is one clear error',
  { skip, timeout: 30_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const deep = join(dir, 'x'.repeat(90));
      const r = await tv(deep, ['create', '--kernel', tinyGuestImage(), '--name', 'long']);
      assert.equal(r.code, 2);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /more than the 107 a unix socket allows; .*TYPEVISOR_STATE_DIR/);
    } finally {
      cleanup();
    }
  },
);

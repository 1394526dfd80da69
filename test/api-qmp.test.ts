// QMP on qmp.sock of a real VM process: greeting, negotiation, commands, events, and errors for
// malformed input that leave the VM running.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
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

const skip = haveCrossToolchain() ? false : 'aarch64-linux-gnu-gcc is not installed';

type Msg = Record<string, unknown>;

class Qmp {
  readonly messages: Msg[] = [];
  private buf = '';
  private waiters: (() => void)[] = [];
  private constructor(readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (line) this.messages.push(JSON.parse(line) as Msg);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static open(path: string): Promise<Qmp> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.on('connect', () => resolve(new Qmp(s)));
      s.on('error', reject);
    });
  }
  /** The next message that is not an event (removing it), waiting for it. */
  async next(pred: (m: Msg) => boolean = (m) => !('event' in m)): Promise<Msg> {
    const end = Date.now() + 10_000;
    for (;;) {
      const i = this.messages.findIndex(pred);
      if (i >= 0) return this.messages.splice(i, 1)[0];
      if (Date.now() > end) throw new Error(`no QMP answer; have ${JSON.stringify(this.messages)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
  send(text: string): void {
    this.sock.write(text);
  }
  async cmd(execute: string, args?: unknown, id?: unknown): Promise<Msg> {
    const o: Msg = { execute };
    if (args !== undefined) o.arguments = args;
    if (id !== undefined) o.id = id;
    this.send(JSON.stringify(o) + '\n');
    return this.next();
  }
  event(name: string): Promise<Msg> {
    return this.next((m) => m.event === name);
  }
  close(): void {
    this.sock.destroy();
  }
}

test(
  'QMP: negotiation, status, stop/cont, chardev, balloon, errors, reset, powerdown',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const c = await tv(dir, [
        'create',
        '--kernel',
        tinyGuestImage(),
        '--name',
        'q',
        '--memory',
        '128',
        '--balloon',
      ]);
      assert.equal(c.code, 0, c.stderr);
      const q = await Qmp.open(join(dir, 'q', 'qmp.sock'));
      const greeting = await q.next();
      assert.ok('QMP' in greeting);
      assert.deepEqual((greeting.QMP as { capabilities: unknown[] }).capabilities, []);

      // Before qmp_capabilities everything else is refused, as QEMU does.
      assert.deepEqual(await q.cmd('query-status'), {
        error: {
          class: 'CommandNotFound',
          desc: "Expecting capabilities negotiation with 'qmp_capabilities'",
        },
      });
      assert.deepEqual(await q.cmd('qmp_capabilities'), { return: {} });
      assert.equal(((await q.cmd('qmp_capabilities')).error as Msg).class, 'CommandNotFound');

      assert.deepEqual(await q.cmd('query-status', undefined, 'a1'), {
        return: { status: 'running', running: true, singlestep: false },
        id: 'a1',
      });
      assert.deepEqual(await q.cmd('stop'), { return: {} });
      await q.event('STOP');
      assert.equal(((await q.cmd('query-status')).return as Msg).status, 'paused');
      assert.deepEqual(await q.cmd('cont'), { return: {} });
      await q.event('RESUME');
      assert.deepEqual(((await q.cmd('query-status')).return as Msg).running, true);

      const chardevs = (await q.cmd('query-chardev')).return as { label: string; filename: string }[];
      assert.ok(
        chardevs.some((d) => d.label === 'console' && d.filename.includes(join(dir, 'q', 'console.sock'))),
      );

      assert.deepEqual(await q.cmd('query-balloon'), { return: { actual: 128 * 1024 * 1024 } });
      assert.deepEqual(await q.cmd('balloon', { value: 96 * 1024 * 1024 }), { return: {} });
      const list = await tv(dir, ['list']);
      assert.match(list.stdout, /\nq\s+1\s+96\s+1\s/);

      // Malformed input: clear errors, the connection and the VM carry on.
      const err = async (text: string): Promise<Msg> => {
        q.send(text);
        return (await q.next()).error as Msg;
      };
      let e = await err('{"execute": "stop"]\n');
      assert.match(e.desc as string, /JSON parse error/);
      e = await err('oops}\n');
      assert.equal(e.class, 'GenericError');
      assert.match(e.desc as string, /JSON parse error/);
      e = await err('not json at all\n');
      assert.match(e.desc as string, /JSON parse error/);
      e = await err('[1, 2]\n');
      assert.equal(e.desc, 'QMP input must be a JSON object');
      e = await err('{"arguments": {}}\n');
      assert.equal(e.desc, "QMP input lacks member 'execute'");
      e = await err('{"execute": "stop", "colour": 1}\n');
      assert.equal(e.desc, "QMP input member 'colour' is unexpected");
      e = await err('{"execute": 42}\n');
      assert.match(e.desc as string, /'execute' must be a string/);
      e = (await q.cmd('frobnicate')).error as Msg;
      assert.deepEqual(e, { class: 'CommandNotFound', desc: 'The command frobnicate has not been found' });
      e = (await q.cmd('balloon', { value: 'lots' })).error as Msg;
      assert.deepEqual(e, {
        class: 'GenericError',
        desc: "Invalid parameter type for 'value', expected: integer",
      });
      e = (await q.cmd('balloon', {})).error as Msg;
      assert.equal(e.desc, "Parameter 'value' is missing");
      e = (await q.cmd('stop', { now: true })).error as Msg;
      assert.equal(e.desc, "Parameter 'now' is unexpected");
      e = (await q.cmd('stop', [1])).error as Msg;
      assert.match(e.desc as string, /'arguments' must be an object/);
      // Two commands in one write, no newline between them: both answered, in order.
      q.send('{"execute":"query-name","id":1}{"execute":"query-status","id":2}');
      assert.deepEqual(await q.next(), { return: { name: 'q' }, id: 1 });
      assert.equal((await q.next()).id, 2);
      assert.equal(((await q.cmd('query-status')).return as Msg).status, 'running');

      // system_reset reboots (RESET event, the greeting again); system_powerdown powers off.
      const con = connect(join(dir, 'q', 'console.sock'));
      let screen = '';
      con.on('data', (d: Buffer) => (screen += d.toString()));
      con.on('error', () => {});
      await until(() => screen.includes(GREETING), 'the console replay');
      assert.deepEqual(await q.cmd('system_reset'), { return: {} });
      await q.event('RESET');
      await until(() => screen.split(GREETING).length === 3, 'the greeting after system_reset');
      const pid = JSON.parse((await tv(dir, ['list', '-l'])).stdout)[0].pid as number;
      assert.deepEqual(await q.cmd('system_powerdown'), { return: {} });
      await q.event('POWERDOWN');
      await q.event('SHUTDOWN');
      await until(() => !alive(pid), 'the VM process to exit after system_powerdown');
      q.close();
      con.destroy();
    } finally {
      cleanup();
    }
  },
);

test(
  'QMP: quit stops the VM; balloon without a device is DeviceNotActive',
  { skip, timeout: 60_000 },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      assert.equal(
        (await tv(dir, ['create', '--kernel', tinyGuestImage('idle'), '--name', 'qq', '--memory', '64']))
          .code,
        0,
      );
      const pid = JSON.parse((await tv(dir, ['list', '-l'])).stdout)[0].pid as number;
      const q = await Qmp.open(join(dir, 'qq', 'qmp.sock'));
      await q.next();
      assert.deepEqual(await q.cmd('qmp_capabilities', { enable: [] }), { return: {} });
      assert.equal(((await q.cmd('query-balloon')).error as Msg).class, 'DeviceNotActive');
      assert.equal(((await q.cmd('balloon', { value: 1 << 20 })).error as Msg).class, 'DeviceNotActive');
      assert.deepEqual(await q.cmd('quit'), { return: {} });
      await until(() => !alive(pid), 'the VM process to exit after quit');
      assert.equal((await tv(dir, ['list'])).stdout.trim().split('\n').length, 1);
      q.close();
    } finally {
      cleanup();
    }
  },
);

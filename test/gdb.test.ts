// The gdb stub (src/api/gdb.ts): the protocol over a raw TCP socket against an in-process machine,
// the --gdb option, and a real gdb-multiarch session against `typevisor run --gdb --gdb-wait` with a
// bare-metal AArch64 program built here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Arm64VirtMachine } from '../src/machine/arm64-virt.js';
import { serveGdb, framePacket, G_BYTES, type GdbServer } from '../src/api/gdb.js';
import { parseGdbOption, specFromOptions } from '../src/config/spec.js';
import { UserError } from '../src/host/errors.js';
import { missingTool } from './helpers/tools.js';

const RAM = 0x4000_0000;
const COUNTER = RAM + 0x1000;
// A loop that increments the word at X3: ldr w2, [x3]; add w2, w2, #1; str w2, [x3]; b .-12
const LOOP = [0xb9400062, 0x11000442, 0xb9000062, 0x17fffffd];

/** A VM as the stub sees it, around a machine run in this process. */
class FakeVm extends EventEmitter {
  readonly machine = new Arm64VirtMachine({ cpus: 2, memoryBytes: 64 << 20 });
  /** The machine's run loop: resolves with why it ended. */
  done: Promise<unknown> | undefined;
  boot(): void {
    const m = this.machine;
    LOOP.forEach((w, i) => m.mem.dv.setUint32(i * 4, w, true));
    m.boot(RAM, 0);
    m.cpus[0].setX(3, COUNTER, 0);
    this.emit('boot', m);
    this.done = m.run();
  }
  pause(): void {
    this.machine.pause();
  }
  resume(): void {
    this.machine.resume();
  }
  destroy(): void {
    this.machine.stop('stopped');
  }
  /** Stop the machine (if it still runs) and return why its run loop ended. */
  async stop(): Promise<unknown> {
    this.machine.stop('stopped');
    return this.done;
  }
}

/** A raw protocol client: sends framed packets, collects acks and replies. */
class Client {
  private buf = '';
  private waiters: (() => void)[] = [];
  private closed = false;
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d) => {
      this.buf += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static async connect(port: number): Promise<Client> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    return new Client(sock);
  }
  raw(s: string | Buffer): void {
    this.sock.write(s);
  }
  /** Wait until the buffer holds what `take` finds; it returns [result, chars consumed] or undefined. */
  private async next<T>(take: (b: string) => [T, number] | undefined, what: string): Promise<T> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = take(this.buf);
      if (r) {
        this.buf = this.buf.slice(r[1]);
        return r[0];
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`no ${what} from the stub; have '${this.buf}'`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
  }
  ack(): Promise<string> {
    return this.next((b) => (b.length > 0 && b[0] !== '$' ? [b[0], 1] : undefined), 'ack');
  }
  /** What packet() last consumed, acks before the packet included. */
  lastRaw = '';
  /** The next packet's data (checksum verified). */
  packet(): Promise<string> {
    return this.next((b) => {
      const m = /^\+*\$([^#]*)#([0-9a-f]{2})/.exec(b);
      if (!m) return undefined;
      let sum = 0;
      for (const c of Buffer.from(m[1], 'latin1')) sum = (sum + c) & 0xff;
      assert.equal(parseInt(m[2], 16), sum, `checksum of reply '${m[1]}'`);
      this.lastRaw = m[0];
      return [m[1], m[0].length];
    }, 'packet');
  }
  /** Send a command and return its reply (after the stub's +). */
  async cmd(data: string): Promise<string> {
    this.raw(framePacket(data));
    assert.equal(await this.ack(), '+', `ack for ${data}`);
    const r = await this.packet();
    this.raw('+');
    return r;
  }
}

async function withStub(fn: (c: Client, vm: FakeVm, srv: GdbServer) => Promise<void>): Promise<void> {
  const vm = new FakeVm();
  const srv = await serveGdb(vm, { host: '127.0.0.1', port: 0, wait: true });
  vm.boot();
  const c = await Client.connect(srv.port);
  try {
    await fn(c, vm, srv);
  } finally {
    c.sock.destroy();
    srv.close();
    await vm.stop();
  }
}

/** X<n> of a g reply (little-endian hex, 16 digits a register). */
function regOf(g: string, n: number): bigint {
  return Buffer.from(g.slice(16 * n, 16 * n + 16), 'hex').readBigUInt64LE(0);
}

test('gdb protocol: a bad checksum is NAKed and the packet taken when sent again', async () => {
  await withStub(async (c) => {
    c.raw('$qSupported#00');
    assert.equal(await c.ack(), '-', 'a wrong checksum is answered with -');
    const r = await c.cmd('qSupported:multiprocess+;swbreak+');
    assert.match(r, /PacketSize=[0-9a-f]+/);
    assert.match(r, /qXfer:features:read\+/);
    // A - from gdb makes the stub send its last reply again.
    c.raw('-');
    assert.equal(await c.packet(), r);
    c.raw('+');
  });
});

test('gdb protocol: registers, target description, memory through the MMU, unmapped reads', async () => {
  await withStub(async (c) => {
    assert.equal(await c.cmd('?'), 'T05thread:1;', 'the guest waits at its first instruction');
    const g = await c.cmd('g');
    assert.equal(g.length, 2 * G_BYTES);
    assert.equal(G_BYTES, 31 * 8 + 8 + 8 + 4 + 32 * 16 + 4 + 4, 'x0-x30, sp, pc, cpsr, v0-v31, fpsr, fpcr');
    assert.equal(regOf(g, 3), BigInt(COUNTER), 'x3');
    assert.equal(regOf(g, 32), BigInt(RAM), 'pc');
    assert.equal(await c.cmd('p20'), Buffer.from('0000004000000000', 'hex').toString('hex'), 'p 0x20 = pc');
    // Writing a register and reading it back.
    assert.equal(await c.cmd('P5=efbeadde00000000'), 'OK');
    assert.equal(await c.cmd('p5'), 'efbeadde00000000');
    const xml = await c.cmd('qXfer:features:read:target.xml:0,3fff');
    assert.match(xml, /^l/);
    assert.match(xml, /org\.gnu\.gdb\.aarch64\.core/);
    assert.match(xml, /org\.gnu\.gdb\.aarch64\.fpu/);
    assert.match(xml, /<reg name="fpcr" bitsize="32"/);
    // Memory: the program's first words, little-endian.
    assert.equal(await c.cmd(`m${RAM.toString(16)},8`), '620040b942040011');
    // Unbacked physical space (MMU off: VA = PA), a device and an address past the PA size: E14.
    assert.match(await c.cmd('m0,4'), /^E14$/);
    assert.match(await c.cmd('m9000000,4'), /^E14$/);
    assert.match(await c.cmd('m10000000000,4'), /^E14$/);
    // A write that lands on RAM, read back.
    assert.equal(await c.cmd(`M${COUNTER.toString(16)},4:2a000000`), 'OK');
    assert.equal(await c.cmd(`m${COUNTER.toString(16)},4`), '2a000000');
    assert.equal(await c.cmd('M0,4:00000000'), 'E14');
    assert.equal(await c.cmd('qfThreadInfo'), 'm1,2');
    assert.equal(await c.cmd('qsThreadInfo'), 'l');
    assert.equal(await c.cmd('T2'), 'OK');
    assert.equal(await c.cmd('T9'), 'E22');
    assert.equal(await c.cmd('vCont?'), 'vCont;c;C;s;S;t');
    assert.equal(await c.cmd('qAttached'), '1');
  });
});

test('gdb protocol: step, breakpoint, watchpoint and Ctrl-C stops', async () => {
  await withStub(async (c, vm) => {
    const cpu = vm.machine.cpus[0];
    assert.equal(await c.cmd('Hg1'), 'OK');
    // Single step: one instruction.
    assert.equal(await c.cmd('vCont;s:1'), 'T05thread:1;');
    assert.equal(cpu.pcLo, RAM + 4);
    // A breakpoint at the store: the stop is before it runs.
    assert.equal(await c.cmd(`Z0,${(RAM + 8).toString(16)},4`), 'OK');
    assert.equal(await c.cmd('c'), 'T05thread:1;');
    assert.equal(cpu.pcLo, RAM + 8);
    const before = vm.machine.mem.dv.getUint32(COUNTER - RAM, true);
    // Continuing from the breakpoint runs the loop once and stops there again.
    assert.equal(await c.cmd('c'), 'T05thread:1;');
    assert.equal(cpu.pcLo, RAM + 8);
    assert.equal(vm.machine.mem.dv.getUint32(COUNTER - RAM, true), before + 1);
    assert.equal(await c.cmd(`z0,${(RAM + 8).toString(16)},4`), 'OK');
    // A write watchpoint on the counter: the stop comes after the store, at the next instruction.
    assert.equal(await c.cmd(`Z2,${COUNTER.toString(16)},4`), 'OK');
    assert.equal(await c.cmd('c'), `T05thread:1;watch:${COUNTER.toString(16)};`);
    assert.equal(cpu.pcLo, RAM + 12);
    assert.equal(await c.cmd(`z2,${COUNTER.toString(16)},4`), 'OK');
    // A read watchpoint reports rwatch.
    assert.equal(await c.cmd(`Z3,${COUNTER.toString(16)},4`), 'OK');
    assert.equal(await c.cmd('c'), `T05thread:1;rwatch:${COUNTER.toString(16)};`);
    assert.equal(cpu.pcLo, RAM + 4);
    assert.equal(await c.cmd(`z3,${COUNTER.toString(16)},4`), 'OK');
    // Nothing set: the guest runs (translated code too) until Ctrl-C.
    c.raw(framePacket('c'));
    assert.equal(await c.ack(), '+');
    await new Promise((r) => setTimeout(r, 300));
    const icount = cpu.icount;
    c.raw(Buffer.of(0x03));
    assert.equal(await c.packet(), 'T02thread:1;');
    c.raw('+');
    assert.ok(icount > 1000, `the guest ran between c and Ctrl-C (${icount} instructions)`);
    // Detach: the guest runs on.
    assert.equal(await c.cmd('D'), 'OK');
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(cpu.icount > icount, 'running after detach');
    assert.equal(vm.machine.isPaused, false);
  });
});

test('gdb protocol: vCont holds the threads it does not resume', async () => {
  await withStub(async (c, vm) => {
    const [cpu0, cpu1] = vm.machine.cpus;
    // The second vCPU runs the same loop on the next word (as if PSCI had started it there).
    cpu1.off = false;
    cpu1.pcLo = RAM;
    cpu1.pcHi = 0;
    cpu1.setX(3, COUNTER + 4, 0);
    const count1 = (): number => vm.machine.mem.dv.getUint32(COUNTER + 4 - RAM, true);
    // Thread 2 runs to a breakpoint on the store (the loop's third instruction); thread 1 stays put.
    assert.equal(await c.cmd(`Z0,${(RAM + 8).toString(16)},4`), 'OK');
    const [icount0, pc0] = [cpu0.icount, cpu0.pcLo];
    assert.equal(await c.cmd('vCont;c:2'), 'T05thread:2;');
    assert.equal(cpu1.pcLo, RAM + 8);
    assert.equal(cpu0.icount, icount0, 'the held thread ran nothing');
    assert.equal(cpu0.pcLo, pc0);
    // Both run; the watchpoint on thread 2's counter stops them.
    assert.equal(await c.cmd(`z0,${(RAM + 8).toString(16)},4`), 'OK');
    assert.equal(await c.cmd(`Z2,${(COUNTER + 4).toString(16)},4`), 'OK');
    assert.equal(await c.cmd('vCont;c'), `T05thread:2;watch:${(COUNTER + 4).toString(16)};`);
    assert.equal(count1(), 1);
    assert.equal(cpu1.pcLo, RAM + 12, 'stopped after the store');
  });
});

test('gdb protocol: no-ack mode; the next connection starts with acks again', async () => {
  await withStub(async (c, _vm, srv) => {
    assert.equal(await c.cmd('QStartNoAckMode'), 'OK');
    c.raw(framePacket('qAttached'));
    assert.equal(await c.packet(), '1');
    assert.equal(c.lastRaw[0], '$', 'no + before the reply in no-ack mode');
    c.raw(framePacket('D'));
    assert.equal(await c.packet(), 'OK');
    c.sock.destroy();
    // The server takes the next debugger once the first has gone.
    let c2: Client | undefined;
    for (let i = 0; i < 50 && !c2; i++) {
      const t = await Client.connect(srv.port);
      t.raw(framePacket('qAttached'));
      const first = await t.ack().catch(() => 'closed');
      if (first === '+') c2 = t;
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(c2, 'a second connection is served');
    assert.equal(await c2.packet(), '1');
    c2.sock.destroy();
  });
});

test('gdb protocol: k stops the VM', async () => {
  const vm = new FakeVm();
  const srv = await serveGdb(vm, { host: '127.0.0.1', port: 0, wait: true });
  vm.boot();
  const c = await Client.connect(srv.port);
  try {
    assert.equal(await c.cmd('?'), 'T05thread:1;');
    c.raw(framePacket('k'));
    assert.equal(await c.ack(), '+');
    const closed = new Promise((resolve) => c.sock.once('close', resolve));
    c.sock.resume();
    await closed;
    const ended = await Promise.race([
      vm.done,
      new Promise((r) => setTimeout(() => r('still running'), 5000).unref()),
    ]);
    assert.equal(ended, 'stopped', 'the machine stopped');
  } finally {
    c.sock.destroy();
    srv.close();
    await vm.stop();
  }
});

test('--gdb option: [HOST:]PORT, --gdb-wait needs --gdb', () => {
  assert.deepEqual(parseGdbOption('1234', undefined), { host: '127.0.0.1', port: 1234, wait: false });
  assert.deepEqual(parseGdbOption('0.0.0.0:1', true), { host: '0.0.0.0', port: 1, wait: true });
  assert.deepEqual(parseGdbOption('[::1]:9000', false), { host: '::1', port: 9000, wait: false });
  assert.equal(parseGdbOption(undefined, undefined), undefined);
  assert.throws(() => parseGdbOption('x', undefined), UserError);
  assert.throws(() => parseGdbOption('70000', undefined), /port from 0 to 65535, got '70000'/);
  assert.throws(() => parseGdbOption(undefined, true), /--gdb-wait \(gdbWait in a config\): needs --gdb/);
});

test('gdb and gdbWait in a JSON config; --gdb overrides', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'typevisor-gdbcfg-'));
  try {
    fs.writeFileSync(path.join(dir, 'Image'), Buffer.alloc(64));
    const cfg = path.join(dir, 'vm.json');
    fs.writeFileSync(cfg, JSON.stringify({ kernel: 'Image', gdb: '[::1]:5000', gdbWait: true }));
    assert.deepEqual((await specFromOptions({}, cfg)).gdb, { host: '::1', port: 5000, wait: true });
    assert.deepEqual((await specFromOptions({ gdb: '6000' }, cfg)).gdb, {
      host: '127.0.0.1',
      port: 6000,
      wait: true,
    });
    fs.writeFileSync(cfg, JSON.stringify({ kernel: 'Image', gdb: 'localhost:99999' }));
    await assert.rejects(
      specFromOptions({}, cfg),
      /gdb: expected '\[HOST:\]PORT' with a port from 0 to 65535/,
    );
    fs.writeFileSync(cfg, JSON.stringify({ kernel: 'Image', gdbWait: true }));
    await assert.rejects(specFromOptions({}, cfg), /gdbWait in a config\): needs --gdb/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---- gdb-multiarch against `typevisor run` ----

const here = path.dirname(fileURLToPath(import.meta.url));
const typevisor = path.resolve(here, '../../bin/typevisor');

/** A bare-metal program: an arm64 Image header (booting.rst), a counter in .data, PL011 output, PSCI SYSTEM_OFF. */
function buildProgram(dir: string): { elf: string; image: string } {
  fs.writeFileSync(
    path.join(dir, 'head.S'),
    `.section .text.head, "ax"
.global _head
_head:
  b _start                 // code0
  .long 0                  // code1
  .quad 0x80000            // text_offset
  .quad _end - _head       // image_size
  .quad 0xa                // flags: little-endian, 4K pages, anywhere
  .quad 0, 0, 0
  .ascii "ARM\\x64"         // magic
  .long 0
.global _start
_start:
  ldr x1, =stack_top
  mov sp, x1
  bl cmain
  ldr x0, =0x84000008      // PSCI SYSTEM_OFF
  hvc #0
1: b 1b
`,
  );
  fs.writeFileSync(
    path.join(dir, 'prog.c'),
    `volatile unsigned int counter = 5;
static volatile unsigned int *const uart = (unsigned int *)0x09000000;
void tick(void) { counter = counter + 1; }
void cmain(void) {
  for (int i = 0; i < 3; i++) tick();
  for (const char *s = "gdb test done\\n"; *s; s++) *uart = *s;
}
`,
  );
  // Linked where the Image loader puts it: RAM base + text_offset.
  fs.writeFileSync(
    path.join(dir, 'link.ld'),
    `ENTRY(_head)
SECTIONS {
  . = 0x40080000;
  .text : { KEEP(*(.text.head)) *(.text*) }
  .rodata : { *(.rodata*) }
  .data : { *(.data*) }
  .bss : { *(.bss*) *(COMMON) }
  . = ALIGN(16);
  . = . + 0x1000;
  stack_top = .;
  _end = .;
}
`,
  );
  const elf = path.join(dir, 'prog.elf');
  const image = path.join(dir, 'prog.img');
  execFileSync('aarch64-linux-gnu-gcc', [
    ...['-nostdlib', '-static', '-ffreestanding', '-O1', '-g', '-mgeneral-regs-only'],
    ...['-T', path.join(dir, 'link.ld'), '-Wl,--build-id=none', '-Wl,--no-warn-rwx-segments'],
    ...['-o', elf, path.join(dir, 'head.S'), path.join(dir, 'prog.c')],
  ]);
  execFileSync('aarch64-linux-gnu-objcopy', ['-O', 'binary', elf, image]);
  return { elf, image };
}

test(
  'gdb-multiarch debugs a guest of typevisor run --gdb --gdb-wait',
  {
    skip: missingTool('gdb-multiarch', 'aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-objcopy'),
    timeout: 120_000,
  },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'typevisor-gdb-'));
    const vmProc = { p: undefined as ReturnType<typeof spawn> | undefined };
    try {
      const { elf, image } = buildProgram(dir);
      const args = ['run', '--kernel', image, '--memory', '64', '--cpus', '2', '--no-rng'];
      const p = spawn(typevisor, [...args, '--gdb', '127.0.0.1:0', '--gdb-wait'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      vmProc.p = p;
      let out = '';
      let err = '';
      p.stdout!.on('data', (d) => (out += d));
      p.stderr!.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no gdb stub line from typevisor: ${err}`)), 30_000);
        p.stderr!.on('data', () => {
          const m = /gdb stub on 127\.0\.0\.1:(\d+)/.exec(err);
          if (m) {
            clearTimeout(t);
            resolve(Number(m[1]));
          }
        });
      });
      assert.equal(out, '', 'the guest waits for gdb before its first instruction');
      const gdbArgs = [
        '-nx',
        '-batch',
        '-ex',
        'set architecture aarch64',
        '-ex',
        `target remote 127.0.0.1:${port}`,
      ];
      for (const cmd of [
        'info registers pc',
        'x/2wx $x0',
        'info threads',
        'break tick',
        'continue',
        'stepi',
        'info registers pc',
        'watch counter',
        'continue',
        'delete',
        'detach',
      ])
        gdbArgs.push('-ex', cmd);
      gdbArgs.push(elf);
      const gdb = spawn('gdb-multiarch', gdbArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
      let gout = '';
      gdb.stdout.on('data', (d) => (gout += d));
      gdb.stderr.on('data', (d) => (gout += d));
      const hung = setTimeout(() => gdb.kill('SIGKILL'), 90_000); // a bound, not a timing assertion
      const gcode = await new Promise<number | null>((resolve) => gdb.on('exit', resolve));
      clearTimeout(hung);
      assert.equal(gcode, 0, `gdb exited with ${gcode}:\n${gout}`);
      // pc at the entry (the Image's first byte), x0 = the device tree (its magic d00dfeed, big-endian).
      assert.match(gout, /pc\s+0x40080000\s+0x40080000 <_head>/, gout);
      assert.match(gout, /:\s+0xedfe0dd0\s+0x/, `x0 points at a device tree:\n${gout}`);
      assert.match(gout, /Thread 1 .*\n.*Thread 2 /, `one thread per vCPU:\n${gout}`);
      assert.match(gout, /Breakpoint 1, tick \(\) at .*prog\.c:3/, gout);
      assert.match(gout, /pc\s+0x4008006c\s+0x4008006c <tick\+4>/, `stepi ran one instruction:\n${gout}`);
      assert.match(gout, /Hardware watchpoint 2: counter\s+Old value = 5\s+New value = 6/, gout);
      assert.match(gout, /detached/, gout);
      // After the detach the guest runs to its end.
      const code = await exited;
      assert.equal(code, 0, err);
      assert.equal(out, 'gdb test done\n');
    } finally {
      vmProc.p?.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

// x86_64 guests as VMs through vmm/'s Vm on the kvm engine (the same object the CLI, the toolstack,
// the control API and QMP drive): console input and output, pause and resume, shutdown by
// Ctrl-Alt-Del, exit status, every spec device announced, and the spec fields the board refuses.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Vm } from '../src/vmm/vm.js';
import { kvmMissing, toolsMissing } from './fixtures/x86/build.js';
import { guestKernelFile, startVm, x86Spec } from './helpers/x86-vm.js';
import { until } from './helpers/toolstack-guest.js';

const skip = kvmMissing() ?? toolsMissing();

test('x86 VM: console echo, pause holds the guest, resume, exit status', { skip }, async () => {
  const { vm, text, exit } = await startVm(x86Spec(guestKernelFile('echo64'), { memoryMiB: 32 }));
  try {
    await until(() => text() === 'echo64 ready\n', 'the guest to say it is ready');
    // More than the 16-byte FIFO at once: the VM holds the rest and feeds it as the guest reads.
    const line = 'a line longer than the sixteen-byte receive FIFO\n'; // (no q: q ends the guest)
    vm.input.write(line);
    await until(() => text() === `echo64 ready\n${line}`, 'the echo of a line longer than the FIFO');
    vm.pause();
    assert.equal(vm.state, 'paused');
    vm.input.write('p');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(text(), `echo64 ready\n${line}`, 'a paused guest echoes nothing');
    vm.resume();
    assert.equal(vm.state, 'running');
    await until(() => text().endsWith('p'), 'the echo after resume');
    vm.input.write('q'); // the guest's exit port, status 0
    assert.deepEqual(await exit, { reason: 'poweroff', exitCode: 0, message: 'guest powered off' });
    assert.equal(vm.state, 'shutdown');
  } finally {
    vm.destroy();
  }
});

test('x86 VM: shutdown sends Ctrl-Alt-Del through the i8042; the guest reboots and the VM stops', { skip }, async () => {
  const { vm, text, exit } = await startVm(x86Spec(guestKernelFile('echo64'), { memoryMiB: 32 }));
  try {
    await until(() => text() === 'echo64 ready\n', 'the guest to say it is ready');
    vm.requestShutdown();
    const r = await exit;
    assert.equal(text(), 'echo64 ready\nctrl-alt-del\n', 'the guest saw the key sequence');
    assert.equal(r.reason, 'poweroff');
    assert.equal(r.exitCode, 0);
    assert.match(r.message, /rebooted after the shutdown request/);
    assert.equal(vm.boots, 1, 'it did not boot again');
  } finally {
    vm.destroy();
  }
});

test('x86 VM: a guest reboot without a shutdown request boots the guest again', { skip }, async () => {
  const { vm, text, exit } = await startVm(x86Spec(guestKernelFile('echo64'), { memoryMiB: 32 }));
  try {
    await until(() => text() === 'echo64 ready\n', 'the guest to say it is ready');
    const m = vm.machineForTests as import('../src/machine/x86-microvm.js').X86Machine;
    assert.equal(m.i8042.pressCtrlAltDel(), true);
    await until(() => vm.boots === 2 && text().endsWith('echo64 ready\n'), 'the second boot');
    assert.equal(text(), 'echo64 ready\nctrl-alt-del\necho64 ready\n');
    vm.destroy();
    assert.equal((await exit).reason, 'destroyed');
  } finally {
    vm.destroy();
  }
});

test('x86 VM: every device of the spec is announced to the guest on its command line', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-x86-devs-'));
  try {
    const disk = path.join(dir, 'd.img');
    fs.writeFileSync(disk, Buffer.alloc(4096));
    const { text, exit } = await startVm(
      x86Spec(guestKernelFile('kernel64'), {
        disks: [{ path: disk, readOnly: false }],
        rng: true,
        console: 'virtio',
        balloon: true,
        vsock: { cid: 3, uds: path.join(dir, 'v.sock') },
      }),
    );
    assert.equal((await exit).exitCode, 0);
    const entries = [...text().matchAll(/virtio_mmio\.device=512@0x([0-9a-f]+):(\d+)/g)].map((m) => [m[1], Number(m[2])]);
    // blk, rng, console, balloon, vsock: slots 0-4, GSIs 5-9.
    assert.deepEqual(entries, [0, 1, 2, 3, 4].map((i) => [(0xd0000000 + i * 0x1000).toString(16), 5 + i]));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('x86 VM: spec fields only the software CPU has are refused, naming the field', async () => {
  for (const [over, re] of [
    [{ dtb: '/x.dtb' }, /dtb: x86-microvm has no device tree/],
    [{ deterministic: true }, /deterministic: repeatable runs need the software CPU/],
    [{ vcpuThreads: 'single' as const }, /vcpu-threads: a software-CPU option/],
    [{ gdb: { host: '127.0.0.1', port: 0, wait: false } }, /gdb: the gdb stub serves aarch64 guests/],
    [{ accel: 'tcg' as const }, /accel tcg: the software CPU is AArch64/],
  ] as const) {
    const vm = new Vm(x86Spec('/nonexistent-kernel', over));
    await assert.rejects(vm.start(), re);
  }
  // And an aarch64 guest asked to run on kvm.
  const vm = new Vm({ ...x86Spec('/k'), arch: 'aarch64', accel: 'kvm' });
  await assert.rejects(vm.start(), /aarch64 guests on kvm need an arm64 host/);
});

test('x86 VM: a snapshot restored into a new VM carries on where the guest was (kvm state, RAM, COM1)', { skip }, async () => {
  const { SnapshotReader, specForRestore } = await import('../src/vmm/snapshot.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-x86-snap-'));
  const file = path.join(dir, 'x.snap');
  try {
    const a = await startVm(x86Spec(guestKernelFile('echo64'), { memoryMiB: 32, rng: true, balloon: true }));
    await until(() => a.text() === 'echo64 ready\n', 'the guest to say it is ready');
    a.vm.input.write('abc');
    await until(() => a.text().endsWith('abc'), 'the echo before the save');
    a.vm.pause();
    const stats = await a.vm.save(file);
    assert.ok(stats.nonZeroPages > 0);
    a.vm.destroy();
    await a.exit;

    const reader = new SnapshotReader(file);
    assert.equal(reader.header.spec.arch, 'x86_64');
    const vm = new Vm(specForRestore(reader.header, 'restored'));
    const chunks: Buffer[] = [];
    vm.console.on('data', (b: Buffer) => chunks.push(b));
    const text = (): string => Buffer.concat(chunks).toString('latin1');
    await vm.start({ restore: reader });
    const exit = vm.wait();
    vm.input.write('xyz');
    await until(() => text() === 'xyz', 'the restored guest to echo (it did not boot again)');
    vm.input.write('q');
    assert.equal((await exit).exitCode, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--cpus: each architecture its own limit (aarch64 16, x86_64 64), before anything is built', async () => {
  const { specFromOptions } = await import('../src/config/spec.js');
  await assert.rejects(
    specFromOptions({ arch: 'aarch64', kernel: '/nonexistent', cpus: '17' }),
    /--cpus: aarch64 guests run at most 16 vCPUs, got 17/,
  );
  await assert.rejects(specFromOptions({ arch: 'x86_64', kernel: '/nonexistent', cpus: '65' }), /--cpus: expected an integer from 1 to 64/);
  // 17 is within x86_64's limit: what fails next is the missing kernel file.
  await assert.rejects(specFromOptions({ arch: 'x86_64', kernel: '/nonexistent', cpus: '17' }), /--kernel/);
});

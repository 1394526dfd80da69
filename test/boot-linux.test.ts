// End-to-end: Debian's arm64 kernel + the default busybox initramfs boot on the software CPU, driven
// through `typevisor run` with the console on a pipe, as a user would script it. Each guest command
// prints a marker line ("@@key=value") whose value comes from the guest, so the echo of the typed
// command (which holds the unexpanded text) never matches.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDefaultImage, type DefaultImage } from '../src/image/build.js';
import { BOOT_TIMEOUT_MS, marker as one, runGuest } from './helpers/run-guest.js';

const root = resolve(import.meta.dirname, '..', '..');

let image: DefaultImage | undefined;
let skipReason: string | false = false;
try {
  image = await buildDefaultImage({ log: () => {} });
} catch (e) {
  skipReason = `the default guest image cannot be built here: ${(e as Error).message}`;
}

test('boots to a shell: uname -m, virtio devices, ext4 disk written and synced, read back on the next boot', { skip: skipReason, timeout: 3 * BOOT_TIMEOUT_MS }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-boot-'));
  try {
    const disk = join(dir, 'disk.ext4');
    copyFileSync(image!.disk, disk);
    const first = await runGuest(
      ['--disk', disk],
      [
        'echo "@@arch=$(uname -m)"',
        'echo "@@virtio=$(cat /sys/bus/virtio/devices/*/device | tr "\\n" " ")"',
        'mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo "@@mounted=$?"',
        'echo "written by typevisor test $((6*7))" > /mnt/hello.txt',
        'sync; umount /mnt; echo "@@umounted=$?"',
        'poweroff -f',
        '',
      ].join('\n'),
    );
    assert.equal(first.code, 0, `exit status ${first.code}; stderr: ${first.err}`);
    assert.equal(one(first, 'arch'), 'aarch64');
    // virtio ids: 0x0002 block, 0x0004 entropy
    const ids = one(first, 'virtio').split(/\s+/).filter(Boolean).sort();
    assert.deepEqual(ids, ['0x0002', '0x0004']);
    assert.equal(one(first, 'mounted'), '0');
    assert.equal(one(first, 'umounted'), '0');

    // Second boot: read-only disk, console on virtio-console (hvc0).
    const second = await runGuest(
      ['--disk', `${disk},ro`, '--console', 'virtio'],
      [
        'mkdir -p /mnt && mount -t ext4 -o ro /dev/vda /mnt',
        'echo "@@content=$(cat /mnt/hello.txt)"',
        'echo "@@tty=$(tty)"',
        'echo "@@virtio=$(cat /sys/bus/virtio/devices/*/device | tr "\\n" " ")"',
        'echo x > /mnt/new 2>/dev/null; echo "@@rowrite=$?"',
        'poweroff -f',
        '',
      ].join('\n'),
    );
    assert.equal(second.code, 0, second.err);
    assert.equal(one(second, 'content'), 'written by typevisor test 42');
    assert.equal(one(second, 'tty'), '/dev/hvc0');
    assert.deepEqual(one(second, 'virtio').split(/\s+/).filter(Boolean).sort(), ['0x0002', '0x0003', '0x0004']);
    assert.notEqual(one(second, 'rowrite'), '0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--cpus 4: nproc prints 4 and a parallel workload finishes on all CPUs', { skip: skipReason, timeout: BOOT_TIMEOUT_MS }, async () => {
  const r = await runGuest(
    ['--cpus', '4'],
    [
      'echo "@@nproc=$(nproc)"',
      'for n in 1 2 3 4; do (i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo "@@job=$n:$i") & done; wait',
      'echo "@@online=$(cat /sys/devices/system/cpu/online)"',
      'poweroff -f',
      '',
    ].join('\n'),
  );
  assert.equal(r.code, 0, r.err);
  assert.equal(one(r, 'nproc'), '4');
  assert.deepEqual((r.markers.get('job') ?? []).sort(), ['1:3000', '2:3000', '3:3000', '4:3000']);
  assert.equal(one(r, 'online'), '0-3');
});

test('--cpus 2 --vcpu-threads multi: vCPU 1 runs on its own thread; both take timer interrupts, and jobs run on both', { skip: skipReason, timeout: BOOT_TIMEOUT_MS }, async () => {
  const r = await runGuest(
    ['--cpus', '2', '--vcpu-threads', 'multi'],
    [
      'echo "@@online=$(cat /sys/devices/system/cpu/online)"',
      'for n in 1 2; do (i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo "@@job=$n:$i") & done; wait',
      'echo "@@timer=$(grep arch_timer /proc/interrupts | tr -s " " | cut -d" " -f3,4)"',
      'poweroff -f',
      '',
    ].join('\n'),
    BOOT_TIMEOUT_MS,
    { ...process.env, TYPEVISOR_STATS: '1' },
  );
  assert.equal(r.code, 0, r.err);
  assert.equal(one(r, 'online'), '0-1');
  assert.deepEqual((r.markers.get('job') ?? []).sort(), ['1:3000', '2:3000']);
  const [t0, t1] = one(r, 'timer').split(' ').map(Number);
  assert.ok(t0 > 0 && t1 > 0, `timer interrupts on both vCPUs: ${one(r, 'timer')}`);
  // The worker thread reports its own count when it ends.
  const m = /vCPU 1 thread: (\d+) instructions/.exec(r.err);
  assert.ok(m && Number(m[1]) > 1_000_000, `vCPU 1's thread ran guest code: ${r.err.slice(-2000)}`);
});

test("a user DTB with seed 001's layout boots (RAM at 0x48000000, initrd at 0x54000000, 4 CPUs)", { skip: skipReason, timeout: BOOT_TIMEOUT_MS }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-dtb-'));
  try {
    const dtb = join(dir, 'guest.dtb');
    execFileSync('dtc', ['-I', 'dts', '-O', 'dtb', '-o', dtb, join(root, 'test', 'fixtures', 'dts', 'seed001.dts')]);
    const r = await runGuest(
      ['--dtb', dtb, '--kernel', image!.kernel, '--initrd', image!.initrd],
      ['echo "@@arch=$(uname -m)"', 'echo "@@nproc=$(nproc)"', 'echo "@@mem=$(grep MemTotal /proc/meminfo)"', 'poweroff -f', ''].join('\n'),
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(one(r, 'arch'), 'aarch64');
    assert.equal(one(r, 'nproc'), '4');
    const kb = Number(/(\d+)/.exec(one(r, 'mem'))?.[1]);
    assert.ok(kb > 400_000 && kb <= 512 * 1024, `MemTotal ${kb} kB: expected the DTB's 512 MiB less the kernel`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--deterministic: two runs print the same console, timestamps, random bytes and date included', { skip: skipReason, timeout: 2 * BOOT_TIMEOUT_MS }, async () => {
  const script = [
    'echo "@@rand=$(head -c 16 /dev/hwrng | od -An -tx1 | tr -d \' \\n\')"',
    'echo "@@date=$(date +%s)"',
    'poweroff -f',
    '',
  ].join('\n');
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const r = await runGuest(['--deterministic', '--cpus', '2'], script);
    assert.equal(r.code, 0, r.err);
    runs.push(r);
  }
  const [a, b] = runs;
  assert.match(one(a, 'rand'), /^[0-9a-f]{32}$/, 'virtio-rng gave 16 bytes');
  // The RTC starts at 2026-01-01T00:00:00Z and follows the guest's counter.
  const date = Number(one(a, 'date'));
  assert.ok(date >= 1767225600 && date < 1767225600 + 600, `date ${date}: within minutes of 2026-01-01`);
  assert.equal(one(b, 'rand'), one(a, 'rand'), 'the same random bytes');
  assert.equal(one(b, 'date'), one(a, 'date'), 'the same date');
  const lines = (out: string): string[] => out.split('\n').filter((l) => /^\[\s*\d+\.\d+\]/.test(l));
  assert.ok(lines(a.out).length > 100, 'the kernel log was printed');
  assert.deepEqual(lines(b.out), lines(a.out), 'the same kernel log, timestamps included');
});

test('a guest reboot boots it again; a kernel panic exits with status 3', { skip: skipReason, timeout: 2 * BOOT_TIMEOUT_MS }, async () => {
  const { Vm } = await import('../src/vmm/vm.js');
  const vm = new Vm({
    name: 'reboot-test',
    cpus: 1,
    memoryMiB: 256,
    kernel: image!.kernel,
    initrd: image!.initrd,
    cmdline: 'console=ttyAMA0 rdinit=/init',
    console: 'serial',
    disks: [],
    rng: true,
    balloon: false,
  });
  let out = '';
  let readyCount = 0;
  let reboots = 0;
  vm.on('reboot', () => reboots++);
  await vm.start();
  vm.console.on('data', (d: Buffer) => {
    out += d.toString('latin1');
    const n = out.split('typevisor: init ready').length - 1;
    if (n > readyCount) {
      readyCount = n;
      vm.input.write(n === 1 ? 'reboot -f\n' : 'poweroff -f\n');
    }
  });
  const exit = await vm.wait();
  assert.equal(exit.reason, 'poweroff', out.slice(-2000));
  assert.equal(reboots, 1);
  assert.equal(readyCount, 2);

  const panic = await runGuest(['--memory', '256', '--cmdline', 'console=ttyAMA0 rdinit=/missing init=/missing'], '');
  assert.equal(panic.code, 3, `exit status ${panic.code}; stderr: ${panic.err}`);
  assert.match(panic.out, /Kernel panic - not syncing/);
  assert.match(panic.err, /guest kernel panicked/);
});

test('toolstack with Linux: create, list, console prompt, shutdown -w (SysRq fallback: busybox ignores the power key), gone from list', { skip: skipReason, timeout: BOOT_TIMEOUT_MS }, async () => {
  const { tv, tempStateDir, until } = await import('./helpers/toolstack-guest.js');
  const st = tempStateDir();
  try {
    const created = await tv(st.dir, ['create', '--name', 'linuxvm', '--cpus', '2', '--memory', '256', '--kernel', image!.kernel, '--initrd', image!.initrd], { timeoutMs: 60_000 });
    assert.equal(created.code, 0, created.stderr);
    const listed = await tv(st.dir, ['list']);
    assert.match(listed.stdout, /^Name\s+ID\s+Mem\s+VCPUs\s+State\s+Time\(s\)$/m);
    assert.match(listed.stdout, /^linuxvm\s+\d+\s+256\s+2\s+[rb-]{6}\s+[\d.]+$/m);
    // The console replays recent output to a new attacher; a newline brings a fresh prompt.
    await until(
      async () => (await tv(st.dir, ['console', 'linuxvm'], { input: '\n', keepOpenMs: 2000, timeoutMs: 10_000 })).stdout.includes('typevisor:/#'),
      'the shell prompt on the console',
      BOOT_TIMEOUT_MS / 2,
    );
    const down = await tv(st.dir, ['shutdown', '-w', '--grace', '2', 'linuxvm'], { timeoutMs: 120_000 });
    assert.equal(down.code, 0, down.stderr);
    const after = await tv(st.dir, ['list']);
    assert.doesNotMatch(after.stdout, /linuxvm/);
  } finally {
    st.cleanup();
  }
});

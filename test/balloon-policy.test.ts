// Balloon settings from configs reach the VM spec (Fuchsia's balloon-*, microvm.nix's balloonMem
// and initialBalloonMem, the native JSON), and Fuchsia's automatic policy sets the target from the
// guest's available memory at every statistics report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { specFromOptions } from '../src/config/spec.js';
import { BalloonPoller, balloonSpec, fuchsiaTarget } from '../src/vmm/balloon-policy.js';
import { VirtioBalloon } from '../src/devices/virtio/balloon.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import type { VirtioHost } from '../src/devices/virtio/mmio.js';

const MiB = 1024 * 1024;

function withFiles(files: Record<string, string>, f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-balloon-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('a Fuchsia config: balloon-interval, balloon-threshold and balloon-demand-page reach the spec', () =>
  withFiles(
    {
      Image: 'not a real kernel',
      'guest.cfg':
        '--linux=Image\n--memory=512M\n--balloon-interval=5\n--balloon-threshold=2560\n--balloon-demand-page\n',
    },
    async (dir) => {
      const spec = await specFromOptions({ arch: 'aarch64' }, join(dir, 'guest.cfg'));
      const b = balloonSpec(spec.balloon);
      assert.ok(b, 'a balloon');
      assert.equal(b.statsIntervalS, 5);
      assert.equal(b.autoThresholdMiB, 10, '2560 pages of 4 KiB');
      assert.equal(b.deflateOnOom, true);
      assert.equal(b.targetMiB, undefined);
    },
  ));

test('microvm.nix: mem + balloonMem is the RAM; initialBalloonMem is in the balloon from boot', () =>
  withFiles(
    {
      Image: 'not a real kernel',
      'vm.json': JSON.stringify({
        'microvm.hypervisor': 'qemu',
        'microvm.mem': 256,
        'microvm.balloonMem': 256,
        'microvm.initialBalloonMem': 128,
        'microvm.kernel': 'Image',
      }),
    },
    async (dir) => {
      const spec = await specFromOptions({ arch: 'aarch64', from: 'microvm' }, join(dir, 'vm.json'));
      assert.equal(spec.memoryMiB, 512);
      assert.equal(balloonSpec(spec.balloon)?.targetMiB, 384, 'the guest keeps 512 - 128 MiB');
    },
  ));

test('--balloon adds a default balloon; a config without one has none', () =>
  withFiles({ Image: 'x', 'g.json': JSON.stringify({ name: 'g', kernel: 'Image' }) }, async (dir) => {
    assert.equal(
      balloonSpec((await specFromOptions({ arch: 'aarch64' }, join(dir, 'g.json'))).balloon),
      undefined,
    );
    const s = await specFromOptions({ arch: 'aarch64', balloon: true }, join(dir, 'g.json'));
    assert.deepEqual(balloonSpec(s.balloon), {});
  }));

test("Fuchsia's target: current + available - threshold, within 0 and the RAM", () => {
  const ram = 512 * MiB;
  // 300 MiB available, 100 MiB threshold: 200 MiB more goes into the balloon.
  assert.equal(fuchsiaTarget(1000, 300n * BigInt(MiB), 100, ram), 1000 + 200 * 256);
  // Less available than the threshold: the balloon gives pages back.
  assert.equal(fuchsiaTarget(30_000, 40n * BigInt(MiB), 100, ram), 30_000 - 60 * 256);
  assert.equal(fuchsiaTarget(10, 0n, 100, ram), 0);
  assert.equal(fuchsiaTarget(100_000, 400n * BigInt(MiB), 0, ram), ram / 4096);
});

/** A transport stand-in: enough for the device's config space (no queues). */
function fakeHost(): VirtioHost & { configChanges: number } {
  return {
    mem: new GuestMemory(0x4000_0000, 512 * MiB),
    queues: [],
    driverFeatures: 0n,
    active: true,
    configChanges: 0,
    usedBuffers() {},
    configChanged() {
      this.configChanges++;
    },
    needsReset() {},
  };
}

test("the poller applies Fuchsia's policy when statistics arrive, only with a threshold and an interval", () => {
  const dev = new VirtioBalloon();
  const host = fakeHost();
  dev.attach(host);
  const report = (availableMiB: number) => {
    dev.stats = { 'available-memory': BigInt(availableMiB) * BigInt(MiB) };
    dev.statsAt++;
    dev.onChange();
  };
  const p = new BalloonPoller(dev, 512 * MiB, { statsIntervalS: 3600, autoThresholdMiB: 64 });
  try {
    assert.equal(p.intervalS, 3600);
    report(400);
    assert.equal(dev.targetPages, (400 - 64) * 256, 'the excess over the threshold goes into the balloon');
    assert.equal(host.configChanges, 1, 'the guest is told');
    report(64);
    assert.equal(dev.targetPages, (400 - 64) * 256, 'at the threshold nothing changes');
    assert.equal(host.configChanges, 1);
    report(14);
    assert.equal(dev.targetPages, (400 - 64 - 50) * 256, 'below it the guest gets pages back');
    p.setInterval(0);
    report(300);
    assert.equal(dev.targetPages, (400 - 64 - 50) * 256, 'polling off: no policy');
  } finally {
    p.close();
  }
  const plain = new BalloonPoller(dev, 512 * MiB, { statsIntervalS: 3600 });
  try {
    const before = dev.targetPages;
    report(300);
    assert.equal(dev.targetPages, before, 'without a threshold statistics only are kept');
  } finally {
    plain.close();
  }
});

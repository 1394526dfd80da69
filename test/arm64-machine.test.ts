// The arm64-virt board's own pieces: the device tree it writes (checked by decompiling with dtc),
// PSCI, and the PL061 power key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeArm64Dtb } from '../src/machine/arm64-dt.js';
import { Pl061 } from '../src/devices/pl061.js';
import { handlePsci, PSCI, PSCI_IMPLEMENTED, resetToEntry, type PsciMachine } from '../src/machine/psci.js';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';
import { Arm64Cpu, CodeCache } from '../src/cpu/arm64/cpu.js';
import { Arm64VirtMachine, VIRT } from '../src/machine/arm64-virt.js';
import { VirtioMmioTransport, VIRTIO_ID } from '../src/devices/virtio/mmio.js';
import { VirtioRng } from '../src/devices/virtio/rng.js';

function dtcAvailable(): string | false {
  try {
    execFileSync('dtc', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'dtc is not installed (run bash scripts/setup.sh)';
  }
}

test('generated device tree decompiles with dtc and has the virt board nodes', { skip: dtcAvailable() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-dt-'));
  try {
    const dtb = writeArm64Dtb({
      cpus: 3,
      ramBase: 0x4000_0000,
      ramSize: 256 * 1024 * 1024,
      cmdline: 'console=ttyAMA0 rdinit=/init',
      serialConsole: true,
      initrd: { start: 0x4800_0000, end: 0x4810_0000 },
    });
    writeFileSync(join(dir, 'v.dtb'), dtb);
    const dts = execFileSync('dtc', ['-I', 'dtb', '-O', 'dts', join(dir, 'v.dtb')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(dts, /memory@40000000 \{[^}]*reg = <0x00 0x40000000 0x00 0x10000000>/s);
    assert.match(dts, /bootargs = "console=ttyAMA0 rdinit=\/init"/);
    assert.match(dts, /stdout-path = "\/pl011@9000000"/);
    assert.match(dts, /linux,initrd-start = <0x00 0x48000000>/);
    assert.match(dts, /linux,initrd-end = <0x00 0x48100000>/);
    assert.equal((dts.match(/cpu@\d \{/g) ?? []).length, 3);
    assert.match(dts, /enable-method = "psci"/);
    assert.match(dts, /method = "hvc"/);
    assert.match(dts, /compatible = "arm,gic-v3"/);
    // GICR covers one 128 KiB frame pair per vCPU
    assert.match(dts, /reg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0x60000>/);
    assert.match(dts, /compatible = "arm,armv8-timer/);
    assert.match(dts, /pl031@9010000/);
    assert.match(dts, /virtio_mmio@a000000 \{[^}]*interrupts = <0x00 0x10 0x01>/s);
    assert.match(dts, /virtio_mmio@a000200 \{[^}]*interrupts = <0x00 0x11 0x01>/s);
    assert.match(dts, /virtio_mmio@a003e00 \{[^}]*interrupts = <0x00 0x2f 0x01>/s);
    assert.doesNotMatch(dts, /virtio_mmio@a004000/);
    assert.match(dts, /linux,code = <0x74>/); // KEY_POWER on the PL061
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PL061: an edge on the power-key line raises the interrupt until cleared; ID registers', () => {
  let irq = false;
  const g = new Pl061((l) => (irq = l));
  assert.equal(g.read(0xfe0, 4), 0x61);
  assert.equal(g.read(0xff0, 4), 0x0d);
  g.write(0x40c, 4, 1 << 3); // rising edge
  g.write(0x410, 4, 1 << 3); // enable
  g.setInput(3, true);
  assert.equal(irq, true);
  assert.equal(g.read(0x418, 4), 1 << 3);
  assert.equal(g.read(0x3fc, 4) & (1 << 3), 1 << 3); // data reads the line through the address mask
  assert.equal(g.read(0x004, 4), 0); // masked out by address bits
  g.write(0x41c, 4, 1 << 3);
  assert.equal(irq, false);
  g.setInput(3, false); // falling edge does not trigger a rising-edge line
  assert.equal(irq, false);
});

function psciMachine(n: number): { m: PsciMachine; cpus: Arm64Cpu[]; events: string[] } {
  const { mem } = makeCpu([]);
  const code = new CodeCache(mem);
  const cpus = Array.from({ length: n }, (_, i) => new Arm64Cpu(i, mem, code, { hvc: () => false, smc: () => false }));
  cpus.forEach((c, i) => (c.off = i !== 0));
  const events: string[] = [];
  const m: PsciMachine = {
    psciTargets: cpus,
    isRam: (pa, len) => mem.isRam(pa, len),
    systemOff: () => events.push('off'),
    systemReset: () => events.push('reset'),
    affinityOf: (c) => c.id,
    cpuOn: (t, entry, ctx) => resetToEntry(cpus[t.id], entry, ctx),
  };
  return { m, cpus, events };
}

test('PSCI: VERSION, FEATURES, CPU_ON starts a secondary at its entry with the context in x0, AFFINITY_INFO, CPU_OFF', () => {
  const { m, cpus, events } = psciMachine(2);
  const [c0, c1] = cpus;
  c0.setX(0, PSCI.VERSION | 0, 0);
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), 0x10001, 'PSCI 1.1');
  c0.setX(0, PSCI.FEATURES | 0, 0);
  c0.setX(1, PSCI.CPU_ON_64 | 0, 0);
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), 0);
  c0.setX(0, PSCI.FEATURES | 0, 0);
  c0.setX(1, 0x84000012 | 0, 0); // not a supported function
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), -1);
  // AFFINITY_INFO(1) = OFF
  c0.setX(0, PSCI.AFFINITY_INFO_64 | 0, 0);
  c0.setX(1, 1, 0);
  c0.setX(2, 0, 0);
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), 1);
  // CPU_ON(1, entry, ctx)
  c0.setX(0, PSCI.CPU_ON_64 | 0, 0);
  c0.setX(1, 1, 0);
  c0.setXBig(2, BigInt(RAM_BASE + 0x1000));
  c0.setXBig(3, 0x1234_5678_9abcn);
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), 0);
  assert.equal(c1.off, false);
  assert.equal(c1.pc, BigInt(RAM_BASE + 0x1000));
  assert.equal(c1.xBig(0), 0x1234_5678_9abcn);
  assert.equal(c1.el, 1);
  assert.equal(c1.daif, 0xf);
  // CPU_ON again: ALREADY_ON (-4); bad target: INVALID_PARAMETERS (-2); entry outside RAM: INVALID_ADDRESS (-9)
  c0.setX(0, PSCI.CPU_ON_64 | 0, 0);
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), -4);
  c0.setX(0, PSCI.CPU_ON_64 | 0, 0);
  c0.setX(1, 7, 0);
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), -2);
  c1.off = true;
  c0.setX(0, PSCI.CPU_ON_64 | 0, 0);
  c0.setX(1, 1, 0);
  c0.setX(2, 0x1000, 0);
  handlePsci(m, c0);
  assert.equal(c0.xlo(0), -9);
  // CPU_OFF on the caller; SYSTEM_OFF / SYSTEM_RESET reach the machine
  c0.setX(0, PSCI.CPU_OFF | 0, 0);
  handlePsci(m, c0);
  assert.equal(c0.off, true);
  c0.setX(0, PSCI.SYSTEM_OFF | 0, 0);
  handlePsci(m, c0);
  c0.setX(0, PSCI.SYSTEM_RESET | 0, 0);
  handlePsci(m, c0);
  assert.deepEqual(events, ['off', 'reset']);
});

/** Call `fn` on `cpu` with arguments; the 64-bit result as a signed number. */
function call(m: PsciMachine, cpu: Arm64Cpu, fn: number, ...args: bigint[]): number {
  cpu.setXBig(0, BigInt(fn >>> 0));
  args.forEach((a, i) => cpu.setXBig(i + 1, a));
  assert.equal(handlePsci(m, cpu), true);
  return Number(BigInt.asIntN(64, cpu.xBig(0)));
}

test('PSCI_FEATURES answers for each function id as QEMU 7.2 virt does', () => {
  const { m, cpus } = psciMachine(1);
  // What a bare-metal probe read from qemu-system-aarch64 7.2 -M virt -cpu cortex-a57 (0 = present).
  const qemu: [number, number][] = [
    [0x84000000, 0],
    [0x84000001, 0],
    [0xc4000001, 0],
    [0x84000002, 0],
    [0x84000003, 0],
    [0xc4000003, 0],
    [0x84000004, 0],
    [0xc4000004, 0],
    [0x84000005, -1],
    [0xc4000005, -1],
    [0x84000006, 0],
    [0x84000007, -1],
    [0xc4000007, -1],
    [0x84000008, 0],
    [0x84000009, 0],
    [0x8400000a, 0],
    [0x8400000b, -1],
    [0x8400000c, -1],
    [0xc400000c, -1],
    [0x8400000d, -1],
    [0xc400000d, -1],
    [0x8400000e, -1],
    [0xc400000e, -1],
    [0x8400000f, -1],
    [0x84000010, -1],
    [0x84000011, -1],
    [0xc4000011, -1],
    [0x84000012, -1],
    [0xc4000012, -1],
    [0x84000013, -1],
    [0x84000014, -1],
    [0xc4000014, -1],
    [0x84000015, -1],
    [0xc4000015, -1],
    [0x80000000, -1],
    [0x80000001, -1],
    [0x80008000, -1],
  ];
  for (const [fn, want] of qemu) {
    assert.equal(call(m, cpus[0], PSCI.FEATURES, BigInt(fn)), want, `PSCI_FEATURES(0x${fn.toString(16)})`);
  }
  assert.deepEqual(
    qemu.filter(([, v]) => v === 0).map(([f]) => f),
    [...PSCI_IMPLEMENTED].sort((a, b) => qemu.findIndex(([f]) => f === a) - qemu.findIndex(([f]) => f === b)),
  );
  // A function id with bits above 31 set is no function
  assert.equal(call(m, cpus[0], PSCI.FEATURES, 0x1_8400_0000n), -1);
});

test('PSCI 1.1 calls: MIGRATE_INFO_TYPE, CPU_SUSPEND as WFI, AFFINITY_INFO levels, unsupported functions', () => {
  const { m, cpus, events } = psciMachine(2);
  const c0 = cpus[0];
  assert.equal(call(m, c0, PSCI.VERSION), 0x10001);
  assert.equal(call(m, c0, PSCI.MIGRATE_INFO_TYPE), 2, 'no Trusted OS: migration not required');
  // CPU_SUSPEND (standby or power-down state id): SUCCESS, and the caller waits for an interrupt
  for (const fn of [PSCI.CPU_SUSPEND_32, PSCI.CPU_SUSPEND_64]) {
    c0.waiting = false;
    assert.equal(call(m, c0, fn, 0x1_0000n, BigInt(RAM_BASE), 0n), 0);
    assert.equal(c0.waiting, true, 'suspended until an interrupt');
    assert.equal(c0.off, false);
    c0.waiting = false;
    assert.equal(call(m, c0, fn, 0x100_0000n), -2, 'affinity level 1: INVALID_PARAMETERS');
    assert.equal(c0.waiting, false);
  }
  // AFFINITY_INFO: level 0 per vCPU, levels above 0 always ON, unknown MPIDR INVALID_PARAMETERS
  assert.equal(call(m, c0, PSCI.AFFINITY_INFO_64, 0n, 0n), 0);
  assert.equal(call(m, c0, PSCI.AFFINITY_INFO_32, 1n, 0n), 1);
  assert.equal(call(m, c0, PSCI.AFFINITY_INFO_64, 1n, 1n), 0);
  assert.equal(call(m, c0, PSCI.AFFINITY_INFO_64, 5n, 0n), -2);
  // Not offered, as on QEMU 7.2
  for (const fn of [
    PSCI.MIGRATE_32,
    PSCI.MIGRATE_64,
    PSCI.MIGRATE_INFO_UP_CPU_32,
    PSCI.MIGRATE_INFO_UP_CPU_64,
    PSCI.SYSTEM_SUSPEND_32,
    PSCI.SYSTEM_SUSPEND_64,
    PSCI.SYSTEM_RESET2_32,
    PSCI.SYSTEM_RESET2_64,
    PSCI.MEM_PROTECT,
    PSCI.SMCCC_VERSION,
  ]) {
    assert.equal(call(m, c0, fn, 0n, 0n, 0n), -1, `0x${fn.toString(16)}: NOT_SUPPORTED`);
  }
  assert.deepEqual(events, [], 'none of these powers off or resets');
});

test('all 32 virtio-mmio transports: an empty slot reads like QEMU\'s (magic, version 2, device 0, vendor QEMU) and ignores writes', () => {
  const m = new Arm64VirtMachine({ cpus: 1, memoryBytes: 16 * 1024 * 1024 });
  const t = new VirtioMmioTransport(m.mem, new VirtioRng(), { setIrq: () => {} });
  assert.equal(m.addSlotDevice('virtio-rng', t).slot, 0);
  const rd = (slot: number, off: number, size = 4): number => m.mem.readPhys(VIRT.VIRTIO + slot * VIRT.VIRTIO_STRIDE + off, size);
  assert.equal(rd(0, 0x008), VIRTIO_ID.RNG, 'slot 0 holds the device');
  for (const slot of [1, 2, 17, 31]) {
    assert.equal(rd(slot, 0x000), 0x74726976, `slot ${slot} magic`);
    assert.equal(rd(slot, 0x004), 2);
    assert.equal(rd(slot, 0x008), 0, 'device ID 0: no device');
    assert.equal(rd(slot, 0x00c), 0x554d4551);
    assert.equal(rd(slot, 0x000, 1), 0x76, 'a byte read gives the low byte, as on QEMU');
    for (let off = 0x010; off < 0x200; off += 4) assert.equal(rd(slot, off), 0, `slot ${slot} offset 0x${off.toString(16)}`);
    // Writes (status, queue select and size, notify) change nothing
    for (const [off, v] of [[0x070, 0xf], [0x030, 1], [0x038, 5], [0x050, 0], [0x000, 0]]) {
      m.mem.writePhys(VIRT.VIRTIO + slot * VIRT.VIRTIO_STRIDE + off, 4, v);
    }
    assert.equal(rd(slot, 0x070), 0);
    assert.equal(rd(slot, 0x030), 0);
    assert.equal(rd(slot, 0x000), 0x74726976);
  }
  assert.equal(rd(32, 0x000), 0, 'nothing past the 32nd slot');
});

test("the device tree lists the 32 virtio_mmio nodes as QEMU 7.2's virt does (skipped without qemu-system-aarch64 and dtc)", (t) => {
  const why = dtcAvailable();
  if (why) return t.skip(why);
  const dir = mkdtempSync(join(tmpdir(), 'tv-dt-'));
  try {
    const qemuDtb = join(dir, 'qemu.dtb');
    const r = spawnSync('qemu-system-aarch64', ['-M', `virt,gic-version=3,dumpdtb=${qemuDtb}`, '-cpu', 'cortex-a57', '-nographic', '-nic', 'none'], {
      stdio: 'ignore',
      timeout: 30_000,
    });
    if (r.error || !existsSync(qemuDtb)) return t.skip(`qemu-system-aarch64 did not dump its virt DTB (${r.error ? r.error.message : `exit status ${r.status}`})`);
    const ours = join(dir, 'ours.dtb');
    writeFileSync(ours, writeArm64Dtb({ cpus: 1, ramBase: 0x4000_0000, ramSize: 128 << 20, cmdline: '', serialConsole: true }));
    // Each virtio_mmio node in order: its name and its properties (dtc prints them in blob order,
    // which differs between writers; sorted here).
    const nodes = (file: string): string[] => {
      const dts = execFileSync('dtc', ['-I', 'dtb', '-O', 'dts', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      return [...dts.matchAll(/(virtio_mmio@[0-9a-f]+) \{([^}]*)\}/g)].map(
        (m) => `${m[1]}: ${m[2].split('\n').map((l) => l.trim()).filter(Boolean).sort().join(' ')}`,
      );
    };
    const q = nodes(qemuDtb);
    assert.equal(q.length, 32);
    assert.deepEqual(nodes(ours), q);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

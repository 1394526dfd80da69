// Snapshots without a Linux guest: each component's state survives save -> JSON -> load into a fresh
// one; a whole arm64-virt machine running a small program is written to a snapshot file, loaded into
// a fresh machine, and both run on to the same registers and memory; damaged files and snapshots that
// do not fit give errors naming what is wrong.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Arm64VirtMachine, VIRT, type Arm64VirtState } from '../src/machine/arm64-virt.js';
import { GicV3 } from '../src/devices/gicv3.js';
import { Pl011 } from '../src/devices/pl011.js';
import { Pl031 } from '../src/devices/pl031.js';
import { VirtioMmioTransport } from '../src/devices/virtio/mmio.js';
import { VirtioRng } from '../src/devices/virtio/rng.js';
import { SNAPSHOT_FORMAT, SnapshotReader, writeSnapshot } from '../src/vmm/snapshot.js';
import type { VmSpec } from '../src/vmm/vm.js';
import { connect } from 'node:net';
import { tempStateDir, tv, unstartedHost, until } from './helpers/toolstack-guest.js';
import { createControlServer } from '../src/api/control.js';
import { createQmpServer } from '../src/api/qmp.js';
import { apiRequest } from '../src/api/client.js';

const MiB = 1024 * 1024;
const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function tmp(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-snap-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// A loop that counts in x0 and stores each count at [x1]:  add x0, x0, #1; str x0, [x1]; b .-8
const PROGRAM = [0x91000400, 0xf9000020, 0x17fffffe];
const COUNT_AT = 0x1000;

function machine(opts: { cpus?: number; mib?: number; rng?: boolean } = {}): Arm64VirtMachine {
  const m = new Arm64VirtMachine({
    cpus: opts.cpus ?? 2,
    memoryBytes: (opts.mib ?? 16) * MiB,
    deterministic: true,
  });
  if (opts.rng ?? true) {
    let slot = -1;
    const t = new VirtioMmioTransport(m.mem, new VirtioRng(), { setIrq: (l) => m.slotIrq(slot, l) });
    slot = m.addSlotDevice('virtio-rng', t).slot;
  }
  return m;
}

function spec(mib = 16, cpus = 2): VmSpec {
  return {
    name: 'snap',
    cpus,
    memoryMiB: mib,
    kernel: '/nonexistent',
    console: 'serial',
    disks: [],
    rng: true,
    balloon: false,
    deterministic: true,
  };
}

/** A machine that has run the counting loop for `n` instructions, with state in every component. */
function running(n: number): Arm64VirtMachine {
  const m = machine();
  PROGRAM.forEach((w, i) => m.mem.dv.setUint32(i * 4, w, true));
  m.boot(VIRT.RAM, 0);
  const cpu = m.cpus[0];
  cpu.setX(1, VIRT.RAM + COUNT_AT, 0);
  cpu.setX(7, 0x1234_5678, 0x9abc_def0 | 0);
  cpu.vU8.fill(0x5a, 16, 32); // V1
  cpu.fpcr = 0x0300_0000;
  cpu.sys.TPIDR_EL1 = 0xfeed_beefn;
  cpu.sys.VBAR_EL1 = 0x4000_0800n;
  cpu.run(n);
  m.uart.receive(Uint8Array.from([0x41, 0x42]));
  m.gic.setSpi(32 + VIRT.UART_SPI, true);
  return m;
}

test('snapshot: a vCPU, its system registers, PMU and timers load into a fresh machine as they were saved', () => {
  const a = running(301);
  const saved = json(a.saveState());
  const b = machine();
  b.restoreState(saved);
  assert.deepEqual(json(b.saveState()).vcpus, saved.vcpus);
  assert.deepEqual(json(b.saveState()).timers, saved.timers);
  assert.equal(b.cpus[0].xlo(0), 101, 'x0 counted to 101 in 301 instructions');
  assert.equal(b.cpus[0].xhi(7) >>> 0, 0x9abc_def0);
  assert.equal(b.cpus[0].sys.TPIDR_EL1, 0xfeed_beefn);
  assert.deepEqual([...b.cpus[0].vU8.subarray(16, 32)], new Array(16).fill(0x5a));
  assert.equal(b.cpus[1].off, true, 'the secondary vCPU is still off');
  // The counter carries on from the saved count: it never goes back.
  assert.ok(b.timers[0].counter.current() >= saved.counter.ticks, 'counter not behind the saved one');
});

test('snapshot: GICv3, PL011 and PL031 state survive save -> JSON -> load', () => {
  const g = new GicV3(2);
  const d = g.distributor();
  d.write(0x0000, 4, 0x12); // GICD_CTLR: ARE_NS | EnableGrp1NS
  d.write(0x0084, 4, 0xffff_ffff); // IGROUPR1
  d.write(0x0104, 4, 0x0000_0006); // ISENABLER1: SPIs 33, 34
  d.write(0x0420, 4, 0x8040_2010); // IPRIORITYR8: SPIs 32-35
  g.setSpi(33, true);
  const s = json(g.saveState());
  const g2 = new GicV3(2);
  g2.restoreState(s);
  assert.deepEqual(json(g2.saveState()), s);
  assert.equal(d.read(0x0420, 4), g2.distributor().read(0x0420, 4));
  assert.throws(() => new GicV3(1).restoreState(s), /snapshot has 2 vCPUs/);

  const u = new Pl011();
  u.write(0x02c, 4, 0x70); // LCR_H: 8 bits, FIFOs on
  u.write(0x030, 4, 0x301); // UARTEN | TXE | RXE
  assert.equal(u.receive(Uint8Array.from([0x68, 0x69])), 2);
  const u2 = new Pl011();
  u2.restoreState(json(u.saveState()));
  assert.deepEqual(
    [u2.read(0x000, 4) & 0xff, u2.read(0x000, 4) & 0xff],
    [0x68, 0x69],
    'the RX FIFO came along',
  );
  assert.throws(
    () => u2.restoreState({ fields: { ...u.saveState().fields, cr: 'x' }, rx: [] } as never),
    /pl011: field cr/,
  );

  let now = 1_000_000;
  const r = new Pl031(
    () => {},
    () => now,
  );
  r.write(0x008, 4, 5000); // LR: DR reads 5000 now
  const r2 = new Pl031(
    () => {},
    () => now,
  );
  r2.restoreState(json(r.saveState()));
  now += 3000;
  assert.equal(r2.read(0x000, 4), 5003, 'the RTC keeps its offset and runs on');
  r.close();
  r2.close();
});

test('snapshot file: a running machine and its RAM, restored, run on exactly as the original', () => {
  const { dir, cleanup } = tmp();
  try {
    const a = running(301);
    const file = join(dir, 'a.snap');
    const stats = writeSnapshot(file, spec(), a.saveState(), a.mem);
    // Sparse: the program page and the counter page, not 16 MiB.
    assert.equal(stats.nonZeroPages, 2);
    assert.ok(stats.bytes < 64 * 1024, `file of ${stats.bytes} bytes`);
    const rd = new SnapshotReader(file);
    assert.equal(rd.header.spec.memoryMiB, 16);
    const b = machine();
    assert.equal(rd.loadRam(b.mem).pages, 2);
    b.restoreState(rd.header.machine as Arm64VirtState);
    for (const m of [a, b]) m.cpus[0].run(300);
    assert.equal(a.cpus[0].xlo(0), 201);
    assert.equal(b.cpus[0].xlo(0), 201, 'the restored vCPU ran on from where it was');
    // 601 instructions: 200 rounds of the loop and the add of the next one.
    assert.equal(b.mem.dv.getUint32(COUNT_AT, true), 200, 'and stored its count in restored RAM');
    assert.deepEqual(json(b.saveState()), json(a.saveState()));
    assert.ok(a.uart.rxLevel > 0);
    assert.equal(b.uart.rxLevel, a.uart.rxLevel, 'console input waiting in the PL011 came along');
  } finally {
    cleanup();
  }
});

test('snapshot: an interrupt a device raises as it is restored reaches the restored GIC', () => {
  // A slot device that, like vsock (TRANSPORT_RESET), interrupts the guest when it is restored.
  const withDevice = (): Arm64VirtMachine => {
    const m = machine({ rng: false });
    let slot = -1;
    const dev = {
      read: () => 0,
      write: () => {},
      saveState: () => ({}),
      restoreState: () => m.slotIrq(slot, true),
    };
    slot = m.addSlotDevice('raiser', dev).slot;
    return m;
  };
  const saved = json(withDevice().saveState());
  const b = withDevice();
  b.restoreState(saved);
  const intid = 32 + VIRT.VIRTIO_SPI; // slot 0
  const pending = b.gic.distributor().read(0x200 + 4 * (intid >>> 5), 4);
  assert.ok(pending & (1 << (intid & 31)), 'the SPI is pending after the restore');
});

test('snapshot file: truncated, foreign, other-version files and mismatched machines are named errors', () => {
  const { dir, cleanup } = tmp();
  try {
    const a = running(10);
    const file = join(dir, 'a.snap');
    writeSnapshot(file, spec(), a.saveState(), a.mem);
    const bytes = readFileSync(file);
    const variant = (name: string, f: (b: Buffer) => Buffer): string => {
      const p = join(dir, name);
      writeFileSync(p, f(Buffer.from(bytes)));
      return p;
    };
    // Cut inside the RAM records: the header reads, the RAM does not.
    const cut = variant('cut.snap', (b) => b.subarray(0, b.length - 100));
    assert.throws(
      () => new SnapshotReader(cut).loadRam(machine().mem),
      /cut\.snap is truncated: it ends at byte \d+/,
    );
    const short = variant('short.snap', (b) => b.subarray(0, 200));
    assert.throws(() => new SnapshotReader(short), /short\.snap is truncated/);
    const magic = variant('magic.snap', (b) => (b.write('NOTASNAP', 0, 'latin1'), b));
    assert.throws(() => new SnapshotReader(magic), /magic\.snap is not a typevisor snapshot/);
    const v99 = variant('v99.snap', (b) => (b.writeUInt32LE(99, 8), b));
    assert.throws(
      () => new SnapshotReader(v99),
      new RegExp(
        `v99\\.snap has format version 99; this typevisor \\(.*\\) reads format version ${SNAPSHOT_FORMAT} only`,
      ),
    );
    const rd = new SnapshotReader(file);
    assert.throws(() => rd.checkSpec(spec(32)), /does not fit this VM: memory \(MiB\): snapshot 16, now 32/);
    assert.throws(() => rd.loadRam(machine({ mib: 32 }).mem), /holds 16 MiB of RAM; this VM has 32 MiB/);
    assert.throws(
      () => machine({ cpus: 1 }).restoreState(rd.header.machine as Arm64VirtState),
      /vCPU count is 2, this machine's 1/,
    );
    assert.throws(
      () => machine({ rng: false }).restoreState(rd.header.machine as Arm64VirtState),
      /virtio devices are 0:virtio-rng, this machine's none/,
    );
    // A device that cannot be saved is named.
    const m = machine({ rng: false });
    m.addSlotDevice('mystery', { read: () => 0, write: () => {} });
    assert.throws(() => m.saveState(), /mystery cannot be saved in a snapshot/);
  } finally {
    cleanup();
  }
});

test('snapshot CLI: restore and run --restore refuse bad files and a different memory size with one clear line', async () => {
  const { dir, cleanup } = tmp();
  try {
    const a = running(10);
    const file = join(dir, 'a.snap');
    writeSnapshot(file, spec(), a.saveState(), a.mem);
    const state = join(dir, 'state');
    const mem = await tv(state, ['restore', file, '--memory', '512']);
    assert.equal(mem.code, 2);
    assert.match(mem.stderr, /--memory 512: the snapshot .*a\.snap was taken with 16 MiB/);
    assert.doesNotMatch(mem.stderr, /\n\s+at /, 'no stack trace');
    writeFileSync(join(dir, 'bad.snap'), 'TVSNAP\r\n');
    const bad = await tv(state, ['run', '--restore', join(dir, 'bad.snap')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.snap is truncated/);
    const mixed = await tv(state, ['run', '--restore', file, '--kernel', 'Image']);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /--kernel cannot be given with a snapshot/);
  } finally {
    cleanup();
  }
});

test('snapshot API: PUT /snapshot/load runs a saved machine in a VM created paused; /snapshot/create and QMP refuse what they cannot do', async () => {
  const { dir, cleanup } = tempStateDir();
  const host = unstartedHost(dir, 'api', 3, 2);
  try {
    await host.listen(host.paths.control, createControlServer(host));
    await host.listen(host.paths.qmp, createQmpServer(host));
    const ctl = (method: string, path: string, body?: unknown) =>
      apiRequest(host.paths.control, method, path, body);
    const file = join(dir, 'a.snap');
    const a = running(301);
    writeSnapshot(file, spec(), a.saveState(), a.mem);

    const early = await ctl('PUT', '/snapshot/create', { snapshot_path: join(dir, 'x.snap') });
    assert.equal(early.status, 400);
    assert.match(JSON.stringify(early.body), /has not been started/);
    const diff = await ctl('PUT', '/snapshot/load', { snapshot_path: file, enable_diff_snapshots: true });
    assert.equal(diff.status, 400);
    assert.match(JSON.stringify(diff.body), /diff snapshots are not supported/);
    const magic = join(dir, 'magic.snap');
    writeFileSync(magic, 'not a snapshot at all');
    const notSnap = await ctl('PUT', '/snapshot/load', { snapshot_path: magic });
    assert.equal(notSnap.status, 400);
    assert.match(JSON.stringify(notSnap.body), /magic\.snap is not a typevisor snapshot/);

    // Firecracker's clients send mem_backend too: accepted; the RAM comes from snapshot_path.
    const load = await ctl('PUT', '/snapshot/load', {
      snapshot_path: file,
      mem_backend: { backend_type: 'File', backend_path: file },
      resume_vm: false,
    });
    assert.equal(load.status, 204, JSON.stringify(load.body));
    assert.equal(((await ctl('GET', '/vm')).body as { state: string }).state, 'paused');
    assert.equal((host.vm.machineForTests as Arm64VirtMachine | undefined)?.cpus[0].xlo(0), 101, 'the loaded vCPU is where the saved one was');
    const again = await ctl('PUT', '/snapshot/load', { snapshot_path: file });
    assert.equal(again.status, 400, 'a second load into a started VM is refused');

    // Run on, pause, save: the new snapshot holds the count it had reached.
    await ctl('PATCH', '/vm', { state: 'Resumed' });
    await until(() => ((host.vm.machineForTests as Arm64VirtMachine | undefined)?.cpus[0].xlo(0) ?? 0) > 1000, 'the loop to count on');
    const running1 = await ctl('PUT', '/snapshot/create', { snapshot_path: join(dir, 'b.snap') });
    assert.equal(running1.status, 400, 'a running VM is paused first');
    await ctl('PATCH', '/vm', { state: 'Paused' });
    const created = await ctl('PUT', '/snapshot/create', {
      snapshot_path: join(dir, 'b.snap'),
      snapshot_type: 'Full',
    });
    assert.equal(created.status, 204, JSON.stringify(created.body));
    const saved = (new SnapshotReader(join(dir, 'b.snap')).header.machine as Arm64VirtState).vcpus[0].r[0];
    assert.equal(saved, (host.vm.machineForTests as Arm64VirtMachine | undefined)?.cpus[0].xlo(0));
    assert.ok(saved > 1000);

    // QMP: file: URIs only.
    const sock = connect(host.paths.qmp);
    let buf = '';
    sock.on('data', (d: Buffer) => (buf += d.toString()));
    sock.write(
      '{"execute":"qmp_capabilities"}\n{"execute":"migrate","arguments":{"uri":"tcp:127.0.0.1:4444"}}\n',
    );
    await until(() => buf.includes('Invalid migration URI'), 'the QMP error');
    assert.match(buf, /typevisor migrates to and from files only \(file:PATH\)/);
    sock.destroy();
  } finally {
    host.destroy();
    cleanup();
  }
});

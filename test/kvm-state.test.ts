// Saving and restoring a KVM VM's whole state (vCPU registers, FPU/XSAVE, XCRs, MSRs, LAPIC, events,
// MP state, debug registers; irqchip, PIT, clock) into a new VM, in this process and in another.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  decodeSregs,
  IRQCHIP_ID,
  KVM,
  KVM_CLOCK_DATA_SIZE,
  KVM_IRQCHIP_SIZE,
  KVM_LAPIC_SIZE,
  KVM_PIT_CHANNEL_SIZE,
  KVM_PIT_STATE2_SIZE,
  KVM_XCRS_SIZE,
  type KvmVcpuState,
  type KvmVmState,
  type Regs,
} from '../src/cpu/kvm/kvm.js';
import { X86Machine } from '../src/machine/x86-microvm.js';
import { buildGuest, kvmMissing, toolsMissing } from './fixtures/x86/build.js';

const skip = kvmMissing() ?? toolsMissing();

/** count64's ports: %rbx and the memory counter after each increment. */
const PORT_REG = 0x510;
const PORT_MEM = 0x511;

type Out = [port: number, value: number];

/**
 * Run count64 until it has written `n` to PORT_MEM (the end of round n), then save everything: the
 * vCPU, the VM and guest RAM, through JSON as a snapshot file would.
 */
async function runAndSave(n: number, opts: { waitMs?: number } = {}) {
  const m = new X86Machine({ memoryMiB: 16, mode: 'sync' });
  try {
    const seen: Out[] = [];
    m.addPorts(PORT_REG, 2, 'count', {
      out: (p, _s, v) => {
        seen.push([p, v]);
        if (p === PORT_MEM && v === n) m.requestStop({ reason: 'stopped', why: 'snapshot' });
      },
    });
    m.load(0x1000, buildGuest('count64'));
    m.setupRealMode(0, 0x1000);
    if (opts.waitMs) await new Promise((r) => setTimeout(r, opts.waitMs));
    assert.deepEqual(await m.run(), { reason: 'stopped', why: 'snapshot' });
    assert.deepEqual(seen.slice(-2), [
      [PORT_REG, n],
      [PORT_MEM, n],
    ]);
    const vcpu: KvmVcpuState = JSON.parse(JSON.stringify(m.vcpus[0].saveState()));
    const vm: KvmVmState = JSON.parse(JSON.stringify(m.vm.saveState()));
    return { vcpu, vm, ram: new Uint8Array(m.mem.u8), savedAt: process.hrtime.bigint() };
  } finally {
    m.close();
  }
}

/** A fresh machine with `ram` copied in and the states restored (VM first, then the vCPU). */
function restored(s: { vcpu: KvmVcpuState; vm: KvmVmState; ram: Uint8Array }): X86Machine {
  const m = new X86Machine({ memoryMiB: 16, mode: 'sync' });
  try {
    m.mem.u8.set(s.ram);
    m.vm.restoreState(s.vm);
    m.vcpus[0].restoreState(s.vcpu);
    return m;
  } catch (e) {
    m.close();
    throw e;
  }
}

/** Run `m` on for `rounds` more rounds of count64; returns what it wrote. */
async function runOn(m: X86Machine, rounds: number): Promise<Out[]> {
  const seen: Out[] = [];
  m.addPorts(PORT_REG, 2, 'count', {
    out: (p, _s, v) => {
      seen.push([p, v]);
      if (seen.length >= 2 * rounds) m.requestStop({ reason: 'stopped', why: 'enough' });
    },
  });
  assert.deepEqual(await m.run(), { reason: 'stopped', why: 'enough' });
  return seen;
}

function expectedRounds(from: number, rounds: number): Out[] {
  const out: Out[] = [];
  for (let i = from; i < from + rounds; i++) out.push([PORT_REG, i], [PORT_MEM, i]);
  return out;
}

function stateRegs(s: KvmVcpuState): Regs {
  return Object.fromEntries(Object.entries(s.regs).map(([k, v]) => [k, BigInt(v)])) as unknown as Regs;
}

const bytes = (b64: string) => Buffer.from(b64, 'base64');

test('snapshot ioctl numbers match the kernel headers', () => {
  // Values of the macros in include/uapi/linux/kvm.h (x86_64), as a C compiler computes them.
  const expect: Record<string, number> = {
    GET_MSR_INDEX_LIST: 0xc004ae02,
    GET_MSRS: 0xc008ae88,
    SET_MSRS: 0x4008ae89,
    GET_FPU: 0x81a0ae8c,
    SET_FPU: 0x41a0ae8d,
    GET_LAPIC: 0x8400ae8e,
    SET_LAPIC: 0x4400ae8f,
    GET_CPUID2: 0xc008ae91,
    GET_XSAVE: 0x9000aea4,
    SET_XSAVE: 0x5000aea5,
    GET_XSAVE2: 0x9000aecf,
    GET_XCRS: 0x8188aea6,
    SET_XCRS: 0x4188aea7,
    GET_VCPU_EVENTS: 0x8040ae9f,
    SET_VCPU_EVENTS: 0x4040aea0,
    GET_DEBUGREGS: 0x8080aea1,
    SET_DEBUGREGS: 0x4080aea2,
    GET_MP_STATE: 0x8004ae98,
    SET_MP_STATE: 0x4004ae99,
    GET_IRQCHIP: 0xc208ae62,
    SET_IRQCHIP: 0x8208ae63,
    GET_PIT2: 0x8070ae9f,
    SET_PIT2: 0x4070aea0,
    GET_CLOCK: 0x8030ae7c,
    SET_CLOCK: 0x4030ae7b,
  };
  for (const [name, v] of Object.entries(expect))
    assert.equal((KVM as Record<string, number>)[name], v, `KVM_${name} is 0x${v.toString(16)}`);
});

test('a guest saved partway runs on in a new VM exactly where it stopped', { skip }, async () => {
  const N = 1000;
  const s = await runAndSave(N);
  assert.equal(s.vcpu.id, 0);
  assert.ok(s.vcpu.msrs.length > 0, 'MSRs saved');
  assert.equal(bytes(s.vcpu.lapic!).length, KVM_LAPIC_SIZE);
  const m = restored(s);
  try {
    // The registers read back right after the restore are the saved ones.
    assert.deepEqual(m.vcpus[0].getRegs(), stateRegs(s.vcpu));
    assert.deepEqual(m.vcpus[0].getSregs(), decodeSregs(bytes(s.vcpu.sregs)));
    assert.equal(BigInt(s.vcpu.regs.rbx), BigInt(N), 'the register counter');
    // The count goes on from N + 1, in the register and in memory, with nothing repeated.
    assert.deepEqual(await runOn(m, 5), expectedRounds(N + 1, 5));
  } finally {
    m.close();
  }
});

test('a snapshot restored in another process runs on there', { skip }, async () => {
  const N = 300;
  const s = await runAndSave(N);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-kvm-state-'));
  try {
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ vcpu: s.vcpu, vm: s.vm }));
    fs.writeFileSync(path.join(dir, 'ram.bin'), s.ram);
    const machineUrl = pathToFileURL(path.resolve(import.meta.dirname, '../src/machine/x86-microvm.js')).href;
    const script = `
      import fs from 'node:fs';
      import { X86Machine } from ${JSON.stringify(machineUrl)};
      const dir = process.argv[1];
      const st = JSON.parse(fs.readFileSync(dir + '/state.json', 'utf8'));
      const m = new X86Machine({ memoryMiB: 16, mode: 'sync' });
      m.mem.u8.set(fs.readFileSync(dir + '/ram.bin'));
      m.vm.restoreState(st.vm);
      m.vcpus[0].restoreState(st.vcpu);
      const seen = [];
      m.addPorts(${PORT_REG}, 2, 'count', { out: (p, _s, v) => {
        seen.push([p, v]);
        if (seen.length >= 6) m.requestStop({ reason: 'stopped', why: 'enough' });
      } });
      await m.run();
      m.close();
      process.stdout.write(JSON.stringify(seen));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, dir], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.deepEqual(JSON.parse(out), expectedRounds(N + 1, 3));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('LAPIC, irqchip, PIT and clock survive a round trip into a fresh VM', { skip }, async () => {
  const s = await runAndSave(50, { waitMs: 200 });
  // What count64 programmed is in the saved state.
  const lapic = bytes(s.vcpu.lapic!);
  assert.equal(lapic.readUInt32LE(0x80), 0x20, 'LAPIC TPR');
  assert.equal(lapic.readUInt32LE(0xf0), 0x1ff, 'LAPIC spurious vector register');
  assert.equal(lapic.readUInt32LE(0x350), 0x700, 'LAPIC LVT LINT0');
  const master = bytes(s.vm.irqchip!.picMaster);
  assert.equal(master.readUInt32LE(0), IRQCHIP_ID.picMaster);
  assert.equal(master[8 + 2], 0xfa, 'PIC master IMR');
  assert.equal(master[8 + 5], 0x20, 'PIC master vector base');
  assert.equal(bytes(s.vm.irqchip!.picSlave)[8 + 5], 0x28, 'PIC slave vector base');
  const ioapic = bytes(s.vm.irqchip!.ioapic);
  // struct kvm_ioapic_state: base_address u64, ioregsel u32, id u32, irr u32, pad u32, redirtbl[24] u64.
  assert.equal(ioapic.readBigUInt64LE(8 + 24 + 9 * 8), 0x10039n, 'IOAPIC redirection entry 9');
  const pit = bytes(s.vm.pit!);
  const ch2 = 2 * KVM_PIT_CHANNEL_SIZE;
  assert.equal(pit.readUInt32LE(ch2), 0x1234, 'PIT channel 2 count');
  assert.equal(pit[ch2 + 13], 3, 'PIT channel 2 mode');
  const savedClock = bytes(s.vm.clock!).readBigUInt64LE(0);
  assert.ok(savedClock >= 200_000_000n, `the saved VM ran for 200 ms (clock ${savedClock} ns)`);

  const m = restored(s);
  try {
    const vm = m.vm.saveState();
    const vcpu = m.vcpus[0].saveState();
    const elapsed = process.hrtime.bigint() - s.savedAt;
    // The irqchip comes back byte for byte.
    assert.deepEqual(vm.irqchip, s.vm.irqchip);
    // The PIT too, but for each channel's count_load_time (offset 16): KVM reloads the counters
    // at the restore and stamps them with its own time.
    const pitOf = (b64: string) => {
      const b = bytes(b64);
      assert.equal(b.length, KVM_PIT_STATE2_SIZE);
      for (let c = 0; c < 3; c++) b.fill(0, c * KVM_PIT_CHANNEL_SIZE + 16, c * KVM_PIT_CHANNEL_SIZE + 24);
      return b;
    };
    assert.deepEqual(pitOf(vm.pit!), pitOf(s.vm.pit!));
    // The clock continues from the saved value: not behind it, and ahead by no more than the time
    // since the save. Its flags (and realtime/host_tsc) are KVM's to report and may differ.
    const clock = bytes(vm.clock!);
    assert.equal(clock.length, KVM_CLOCK_DATA_SIZE);
    const now = clock.readBigUInt64LE(0);
    assert.ok(now >= savedClock, `clock ${now} went back from ${savedClock}`);
    assert.ok(now - savedClock <= elapsed, `clock ${now} is more than ${elapsed} ns ahead of ${savedClock}`);
    // The vCPU's state reads back equal, but for MSR_IA32_TSC, which counts on.
    const tsc = (st: KvmVcpuState) => st.msrs.filter((x) => x.index !== 0x10);
    assert.deepEqual(tsc(vcpu), tsc(s.vcpu));
    assert.ok(
      BigInt(vcpu.msrs.find((x) => x.index === 0x10)!.value) >=
        BigInt(s.vcpu.msrs.find((x) => x.index === 0x10)!.value),
    );
    for (const k of [
      'lapic',
      'xsave',
      'fpu',
      'xcrs',
      'debugregs',
      'events',
      'sregs',
      'regs',
      'mpState',
      'cpuid',
    ] as const)
      assert.deepEqual(vcpu[k], s.vcpu[k], k);
    if (s.vcpu.xcrs) {
      // count64 set XCR0 = x87 | SSE when the CPU has XSAVE.
      const x = bytes(s.vcpu.xcrs);
      assert.equal(x.length, KVM_XCRS_SIZE);
      assert.equal(x.readUInt32LE(0), 1, 'one XCR');
      assert.equal(x.readBigUInt64LE(16), 3n, 'XCR0');
    }
  } finally {
    m.close();
  }
});

test('states that do not fit are refused with a message naming the part', { skip }, async () => {
  const s = await runAndSave(10);
  const m = new X86Machine({ memoryMiB: 16, mode: 'sync' });
  const bare = new X86Machine({ memoryMiB: 16, mode: 'sync', irqchip: false });
  try {
    const v = m.vcpus[0];
    const truncated = { ...s.vcpu, lapic: bytes(s.vcpu.lapic!).subarray(0, 1000).toString('base64') };
    assert.throws(() => v.restoreState(truncated), /KVM vCPU 0 state: lapic is 1000 bytes, expected 1024/);
    assert.throws(
      () => v.restoreState({ ...s.vcpu, id: 1 }),
      /KVM vCPU 0 state: .*vCPU id 1, not of vCPU id 0/,
    );
    assert.throws(
      () => v.restoreState({ ...s.vcpu, sregs: s.vcpu.sregs.slice(0, -8) }),
      /KVM vCPU 0 state: sregs is \d+ bytes, expected 312/,
    );
    assert.throws(() => v.restoreState({ ...s.vcpu, xsave: '*not base64*' }), /xsave is not valid base64/);
    const noRip: Record<string, unknown> = { ...s.vcpu, regs: { ...s.vcpu.regs, rip: undefined } };
    assert.throws(
      () => v.restoreState(noRip as unknown as KvmVcpuState),
      /regs\.rip is undefined, expected a hex string/,
    );
    assert.throws(
      () => v.restoreState({ ...s.vcpu, msrs: [{ index: 0x10, value: 12 as unknown as string }] }),
      /msrs\[0\]\.value is 12/,
    );
    const { sregs: _sregs, ...noSregs } = s.vcpu;
    assert.throws(() => v.restoreState(noSregs as KvmVcpuState), /KVM vCPU 0 state: sregs is missing/);
    assert.throws(() => v.restoreState({ ...s.vcpu, arch: 'arm64' as 'x86_64' }), /arch is "arm64"/);
    // The VM: truncated chips and a chip in the wrong place.
    const chip = { ...s.vm.irqchip! };
    assert.throws(
      () =>
        m.vm.restoreState({
          ...s.vm,
          irqchip: { ...chip, ioapic: bytes(chip.ioapic).subarray(0, 512).toString('base64') },
        }),
      new RegExp(`KVM VM state: irqchip.ioapic is 512 bytes, expected ${KVM_IRQCHIP_SIZE}`),
    );
    assert.throws(
      () => m.vm.restoreState({ ...s.vm, irqchip: { ...chip, picMaster: chip.picSlave } }),
      /irqchip.picMaster holds chip 1, expected 0/,
    );
    assert.throws(() => m.vm.restoreState({ ...s.vm, clock: '' }), /clock is 0 bytes, expected 48/);
    // A VM without an in-kernel irqchip (and PIT) takes no irqchip state, and no LAPIC.
    assert.throws(
      () => bare.vm.restoreState(s.vm),
      /irqchip: the saved VM has an in-kernel irqchip .* but this VM has none/,
    );
    assert.throws(
      () => bare.vcpus[0].restoreState(s.vcpu),
      /lapic: the saved vCPU has an in-kernel LAPIC but this VM has no/,
    );
    // Nothing was set by the refused restores: the fresh vCPU still sits at the reset vector.
    assert.equal(v.getRegs().rip, 0xfff0n);
  } finally {
    m.close();
    bare.close();
  }
});

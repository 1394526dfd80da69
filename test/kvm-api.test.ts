// The KVM bindings themselves, and clean failure of misbehaving guests (no leaked fds or mappings).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ioctlInt, SysError } from '../src/host/sys.js';
import { Kvm, KVM, KVM_API_VERSION, KVM_CAP } from '../src/cpu/kvm/kvm.js';
import { X86Machine } from '../src/machine/x86-microvm.js';
import { buildGuest, kvmMissing, toolsMissing } from './fixtures/x86/build.js';

const noKvm = kvmMissing();
const skip = noKvm ?? toolsMissing();

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}
/** Mappings of guest RAM (by start address) or of a vCPU's kvm_run that are still there. */
function leftoverMappings(ramAddr: bigint): string[] {
  const start = ramAddr.toString(16);
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${start}-`) || l.includes('kvm-vcpu') || l.includes('kvm-vm'));
}

test('ioctl numbers follow the kernel encoding', () => {
  assert.equal(KVM.GET_API_VERSION, 0xae00);
  assert.equal(KVM.CREATE_VM, 0xae01);
  assert.equal(KVM.RUN, 0xae80);
  assert.equal(KVM.SET_USER_MEMORY_REGION, 0x4020ae46);
  assert.equal(KVM.GET_REGS, 0x8090ae81);
  assert.equal(KVM.SET_SREGS, 0x4138ae84);
  assert.equal(KVM.GET_SUPPORTED_CPUID, 0xc008ae05);
  assert.equal(KVM.IRQFD, 0x4020ae76);
  assert.equal(KVM.IOEVENTFD, 0x4040ae79);
  assert.equal(KVM.CREATE_PIT2, 0x4040ae77);
});

test('API version, capabilities, supported CPUID', { skip: noKvm }, () => {
  const k = new Kvm();
  try {
    assert.equal(k.apiVersion(), KVM_API_VERSION);
    assert.ok(k.vcpuMmapSize() >= 4096);
    assert.ok(k.checkExtension(KVM_CAP.USER_MEMORY) > 0);
    const cpuid = k.supportedCpuid();
    assert.ok(cpuid.some((e) => e.function === 0));
    assert.ok(cpuid.some((e) => e.function === 1));
  } finally {
    k.close();
  }
});

test('a failing ioctl names itself and carries errno', { skip: noKvm }, () => {
  const k = new Kvm();
  try {
    // KVM_RUN on the system fd is not a system ioctl: the kernel answers EINVAL or ENOTTY.
    assert.throws(
      () => ioctlInt(k.fd, KVM.SET_TSS_ADDR, 'KVM_SET_TSS_ADDR', 0),
      (e: unknown) =>
        e instanceof SysError &&
        e.op === 'KVM_SET_TSS_ADDR' &&
        typeof e.errno === 'number' &&
        e.errno > 0 &&
        /KVM_SET_TSS_ADDR failed: E[A-Z]+/.test(e.message),
    );
  } finally {
    k.close();
  }
});

test('registers and segment registers round-trip', { skip: noKvm }, () => {
  const m = new X86Machine({ memoryMiB: 4, irqchip: false });
  try {
    const v = m.vcpus[0];
    v.setRegs({ rax: 0x1122334455667788n, rip: 0x1234n, rflags: 2n });
    const r = v.getRegs();
    assert.equal(r.rax, 0x1122334455667788n);
    assert.equal(r.rip, 0x1234n);
    m.setupLongMode(0, 0x100000, 0x7000);
    const s = v.getSregs();
    assert.equal(s.cs.l, 1);
    assert.equal(s.cs.selector, 0x10);
    assert.equal(s.efer & 0x500n, 0x500n);
    assert.equal(s.cr3, 0x9000n);
    assert.equal(v.getRegs().rsi, 0x7000n);
    v.setMsrs([{ index: 0x174, data: 0x10n }]); // IA32_SYSENTER_CS
  } finally {
    m.close();
  }
});

async function expectFailure(
  guest: string,
  opts: Partial<ConstructorParameters<typeof X86Machine>[0]>,
  re: RegExp,
) {
  const m = new X86Machine({ memoryMiB: 16, irqchip: false, ...opts });
  const ram = m.vm.regions[0].map.addr;
  try {
    m.load(0x1000, buildGuest(guest));
    m.setupRealMode(0, 0x1000);
    await assert.rejects(m.run(), (e: unknown) => e instanceof SysError && re.test(e.message));
  } finally {
    m.close();
  }
  assert.equal(m.isClosed, true);
  assert.deepEqual(leftoverMappings(ram), [], 'guest RAM or kvm_run still mapped');
}

test('misbehaving guests get a clear error and a clean stop; nothing leaks', { skip }, async () => {
  // Warm up (koffi, libc bindings, guest builds) before counting fds and mappings.
  for (const g of ['triple', 'oob', 'flood', 'hello']) buildGuest(g);
  const m0 = new X86Machine({ memoryMiB: 4 });
  m0.close();
  const fds = openFds();
  for (let round = 0; round < 3; round++) {
    await expectFailure('triple', {}, /guest shut down \(triple fault\) at rip 0x/);
    await expectFailure('oob', {}, /wrote to physical address 0xbffffffc, which is neither RAM/);
    await expectFailure('flood', { maxExits: 10000 }, /more than 10000 exits/);
  }
  assert.equal(openFds(), fds, 'file descriptors leaked');
  // And the process can still run the next VM.
  const out: number[] = [];
  const m = new X86Machine({ memoryMiB: 16, irqchip: false, output: (b) => out.push(...b) });
  try {
    m.load(0x1000, buildGuest('hello'));
    m.setupRealMode(0, 0x1000);
    assert.deepEqual(await m.run(), { reason: 'exit', code: 0 });
    assert.match(Buffer.from(out).toString(), /Hello/);
  } finally {
    m.close();
  }
});

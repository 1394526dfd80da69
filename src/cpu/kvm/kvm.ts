// The KVM API from TypeScript: the /dev/kvm system fd, a VM fd and vCPU fds, with the ioctls, the
// structures (kvm_regs, kvm_sregs, kvm_run, kvm_userspace_memory_region, kvm_cpuid2, kvm_msrs,
// kvm_irqfd, kvm_ioeventfd, kvm_pit_config, and for snapshots kvm_xsave, kvm_fpu, kvm_xcrs,
// kvm_lapic_state, kvm_vcpu_events, kvm_debugregs, kvm_mp_state, kvm_irqchip, kvm_pit_state2,
// kvm_clock_data) laid out by hand in little-endian buffers (x86_64 ABI). Sizes and ioctl numbers
// follow include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h.
//
// Snapshots: KvmVcpu.saveState/restoreState and KvmVm.saveState/restoreState move a VM's whole
// in-kernel state in and out as plain JSON (see "Snapshot state" below).

import {
  ioctlInt,
  ioctlIntRaw,
  ioctlPtr,
  koffi,
  SysError,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  type Mapping,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  sysClose,
  sysEventfd,
  sysMmap,
  sysMunmap,
  sysOpen,
} from '../../host/sys.js';

// vCPUs in async mode each occupy a libuv pool thread inside KVM_RUN. Ask for a larger pool when
// nobody chose a size (effective only if the pool has not started yet: VM processes get their size
// at start, host/vm-process.ts VM_ENV).
if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = '16';

/** An error of the KVM API itself (version, KVM_RUN); failing ioctls throw the SysError they raise. */
export class KvmError extends SysError {
  override name = 'KvmError';
}

// ioctl request encoding (asm-generic/ioctl.h): dir<<30 | size<<16 | type<<8 | nr.
const KVMIO = 0xae;
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
}
const io = (nr: number) => ioc(IOC_NONE, nr, 0);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

// Structure sizes (x86_64), from include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h.
/** struct kvm_regs: rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip rflags, 18 x u64. */
export const KVM_REGS_SIZE = 144;
/**
 * struct kvm_sregs: cs ds es fs gs ss tr ldt (struct kvm_segment, 24 bytes each), gdt and idt
 * (struct kvm_dtable: base u64, limit u16, padding[3] u16), cr0 cr2 cr3 cr4 cr8 efer apic_base
 * (u64 each), interrupt_bitmap[(KVM_NR_INTERRUPTS + 63) / 64] (4 x u64).
 */
export const KVM_SREGS_SIZE = 312;
/**
 * struct kvm_fpu: fpr[8][16], fcw u16, fsw u16, ftwx u8, pad1 u8, last_opcode u16, last_ip u64,
 * last_dp u64, xmm[16][16], mxcsr u32, pad2 u32.
 */
export const KVM_FPU_SIZE = 416;
/**
 * struct kvm_xsave: __u32 region[1024] (the XSAVE area: legacy region, header, extended state).
 * Where KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) answers more (dynamic features such as AMX), the
 * buffer is that size and is read with KVM_GET_XSAVE2 (the struct's flexible `extra[]`).
 */
export const KVM_XSAVE_SIZE = 4096;
/** KVM_MAX_XCRS: entries of kvm_xcrs.xcrs. */
export const KVM_MAX_XCRS = 16;
/**
 * struct kvm_xcrs: nr_xcrs u32, flags u32, xcrs[KVM_MAX_XCRS] (struct kvm_xcr: xcr u32,
 * reserved u32, value u64), padding[16] u64.
 */
export const KVM_XCRS_SIZE = 392;
/** struct kvm_lapic_state: char regs[KVM_APIC_REG_SIZE] (0x400, the APIC page's registers). */
export const KVM_LAPIC_SIZE = 1024;
/**
 * struct kvm_vcpu_events: exception {injected, nr, has_error_code, pending u8; error_code u32},
 * interrupt {injected, nr, soft, shadow u8}, nmi {injected, pending, masked, pad u8},
 * sipi_vector u32, flags u32, smi {smm, pending, smm_inside_nmi, latched_init u8},
 * triple_fault {pending u8}, reserved[26], exception_has_payload u8, exception_payload u64.
 */
export const KVM_VCPU_EVENTS_SIZE = 64;
/** struct kvm_debugregs: db[4] u64, dr6 u64, dr7 u64, flags u64, reserved[9] u64. */
export const KVM_DEBUGREGS_SIZE = 128;
/** struct kvm_mp_state: mp_state u32. */
export const KVM_MP_STATE_SIZE = 4;
/** struct kvm_msrs: nmsrs u32, pad u32, then entries[]. */
export const KVM_MSRS_HEADER_SIZE = 8;
/** struct kvm_msr_entry: index u32, reserved u32, data u64. */
export const KVM_MSR_ENTRY_SIZE = 16;
/** struct kvm_msr_list: nmsrs u32, then indices[] (u32). */
export const KVM_MSR_LIST_HEADER_SIZE = 4;
/** struct kvm_cpuid2: nent u32, padding u32, then entries[]. */
export const KVM_CPUID2_HEADER_SIZE = 8;
/** struct kvm_cpuid_entry2: function, index, flags, eax, ebx, ecx, edx, padding[3] (u32 each). */
export const KVM_CPUID_ENTRY2_SIZE = 40;
/**
 * struct kvm_irqchip: chip_id u32, pad u32, union { char dummy[512]; struct kvm_pic_state (16
 * bytes); struct kvm_ioapic_state (216 bytes) }.
 */
export const KVM_IRQCHIP_SIZE = 520;
/**
 * struct kvm_pit_state2: channels[3] (struct kvm_pit_channel_state, 24 bytes: count u32,
 * latched_count u16, count_latched, status_latched, status, read_state, write_state, write_latch,
 * rw_mode, mode, bcd, gate u8, count_load_time s64), flags u32, reserved[9] u32.
 */
export const KVM_PIT_STATE2_SIZE = 112;
/** struct kvm_pit_channel_state, within kvm_pit_state2. */
export const KVM_PIT_CHANNEL_SIZE = 24;
/** struct kvm_clock_data: clock u64, flags u32, pad0 u32, realtime u64, host_tsc u64, pad[4] u32. */
export const KVM_CLOCK_DATA_SIZE = 48;
/** struct kvm_pit_config: flags u32, pad[15] u32. */
const KVM_PIT_CONFIG_SIZE = 64;

export const KVM = {
  // System ioctls (the /dev/kvm fd).
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  GET_MSR_INDEX_LIST: iowr(0x02, KVM_MSR_LIST_HEADER_SIZE),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, KVM_CPUID2_HEADER_SIZE),
  // VM ioctls.
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, 32),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, 8),
  GET_IRQCHIP: iowr(0x62, KVM_IRQCHIP_SIZE),
  /** _IOR in kvm.h (a historical mistake the ABI keeps). */
  SET_IRQCHIP: ior(0x63, KVM_IRQCHIP_SIZE),
  IRQFD: iow(0x76, 32),
  CREATE_PIT2: iow(0x77, KVM_PIT_CONFIG_SIZE),
  IOEVENTFD: iow(0x79, 64),
  SET_CLOCK: iow(0x7b, KVM_CLOCK_DATA_SIZE),
  GET_CLOCK: ior(0x7c, KVM_CLOCK_DATA_SIZE),
  GET_PIT2: ior(0x9f, KVM_PIT_STATE2_SIZE),
  SET_PIT2: iow(0xa0, KVM_PIT_STATE2_SIZE),
  // vCPU ioctls.
  RUN: io(0x80),
  GET_REGS: ior(0x81, KVM_REGS_SIZE),
  SET_REGS: iow(0x82, KVM_REGS_SIZE),
  GET_SREGS: ior(0x83, KVM_SREGS_SIZE),
  SET_SREGS: iow(0x84, KVM_SREGS_SIZE),
  GET_MSRS: iowr(0x88, KVM_MSRS_HEADER_SIZE),
  SET_MSRS: iow(0x89, KVM_MSRS_HEADER_SIZE),
  GET_FPU: ior(0x8c, KVM_FPU_SIZE),
  SET_FPU: iow(0x8d, KVM_FPU_SIZE),
  GET_LAPIC: ior(0x8e, KVM_LAPIC_SIZE),
  SET_LAPIC: iow(0x8f, KVM_LAPIC_SIZE),
  SET_CPUID2: iow(0x90, KVM_CPUID2_HEADER_SIZE),
  GET_CPUID2: iowr(0x91, KVM_CPUID2_HEADER_SIZE),
  GET_MP_STATE: ior(0x98, KVM_MP_STATE_SIZE),
  SET_MP_STATE: iow(0x99, KVM_MP_STATE_SIZE),
  GET_VCPU_EVENTS: ior(0x9f, KVM_VCPU_EVENTS_SIZE),
  SET_VCPU_EVENTS: iow(0xa0, KVM_VCPU_EVENTS_SIZE),
  GET_DEBUGREGS: ior(0xa1, KVM_DEBUGREGS_SIZE),
  SET_DEBUGREGS: iow(0xa2, KVM_DEBUGREGS_SIZE),
  GET_XSAVE: ior(0xa4, KVM_XSAVE_SIZE),
  SET_XSAVE: iow(0xa5, KVM_XSAVE_SIZE),
  GET_XCRS: ior(0xa6, KVM_XCRS_SIZE),
  SET_XCRS: iow(0xa7, KVM_XCRS_SIZE),
  /** Encoded with sizeof(struct kvm_xsave); the buffer is KVM_CAP_XSAVE2's size. */
  GET_XSAVE2: ior(0xcf, KVM_XSAVE_SIZE),
} as const;

export const KVM_API_VERSION = 12;
export const KVM_CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  PIT2: 33,
  IRQFD: 32,
  IOEVENTFD: 36,
  NR_VCPUS: 9,
  MAX_VCPUS: 66,
  IMMEDIATE_EXIT: 136,
  MP_STATE: 14,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  DEBUGREGS: 50,
  XSAVE: 55,
  XCRS: 56,
  XSAVE2: 208,
} as const;

export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;
export const EXIT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(EXIT).map(([k, v]) => [v, k]),
);

const EINTR = 4;
const EAGAIN = 11;

/** One x86 segment register as KVM describes it (struct kvm_segment, 24 bytes). */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface Regs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}
const REG_NAMES = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'rflags',
] as const;

export interface Sregs {
  cs: Segment;
  ds: Segment;
  es: Segment;
  fs: Segment;
  gs: Segment;
  ss: Segment;
  tr: Segment;
  ldt: Segment;
  gdt: { base: bigint; limit: number };
  idt: { base: bigint; limit: number };
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
  interruptBitmap: bigint[];
}
const SEG_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;

function readSeg(dv: DataView, o: number): Segment {
  return {
    base: dv.getBigUint64(o, true),
    limit: dv.getUint32(o + 8, true),
    selector: dv.getUint16(o + 12, true),
    type: dv.getUint8(o + 14),
    present: dv.getUint8(o + 15),
    dpl: dv.getUint8(o + 16),
    db: dv.getUint8(o + 17),
    s: dv.getUint8(o + 18),
    l: dv.getUint8(o + 19),
    g: dv.getUint8(o + 20),
    avl: dv.getUint8(o + 21),
    unusable: dv.getUint8(o + 22),
  };
}
function writeSeg(dv: DataView, o: number, s: Segment): void {
  dv.setBigUint64(o, s.base, true);
  dv.setUint32(o + 8, s.limit >>> 0, true);
  dv.setUint16(o + 12, s.selector, true);
  const b = [s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable, 0];
  b.forEach((v, i) => dv.setUint8(o + 14 + i, v));
}

export function decodeSregs(buf: Uint8Array): Sregs {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const r: Partial<Sregs> = {};
  SEG_NAMES.forEach((n, i) => (r[n] = readSeg(dv, i * 24)));
  r.gdt = { base: dv.getBigUint64(192, true), limit: dv.getUint16(200, true) };
  r.idt = { base: dv.getBigUint64(208, true), limit: dv.getUint16(216, true) };
  const crs = [224, 232, 240, 248, 256, 264, 272].map((o) => dv.getBigUint64(o, true));
  [r.cr0, r.cr2, r.cr3, r.cr4, r.cr8, r.efer, r.apicBase] = crs;
  r.interruptBitmap = [0, 1, 2, 3].map((i) => dv.getBigUint64(280 + i * 8, true));
  return r as Sregs;
}

export function encodeSregs(s: Sregs): Uint8Array {
  const buf = new Uint8Array(KVM_SREGS_SIZE);
  const dv = new DataView(buf.buffer);
  SEG_NAMES.forEach((n, i) => writeSeg(dv, i * 24, s[n]));
  dv.setBigUint64(192, s.gdt.base, true);
  dv.setUint16(200, s.gdt.limit, true);
  dv.setBigUint64(208, s.idt.base, true);
  dv.setUint16(216, s.idt.limit, true);
  [s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.apicBase].forEach((v, i) =>
    dv.setBigUint64(224 + i * 8, v, true),
  );
  s.interruptBitmap.forEach((v, i) => dv.setBigUint64(280 + i * 8, v, true));
  return buf;
}

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

// ---------------------------------------------------------------- Snapshot state
//
// Plain JSON: byte buffers (the kernel's structures, exactly as the GET ioctls fill them) as base64
// strings, 64-bit values as hex strings ("0x..."), everything else as numbers. A state is restored
// into a vCPU / VM of a machine built the same way (same vCPU count, irqchip and PIT created or not,
// RAM slots registered; RAM contents are the caller's to copy, before the vCPUs are restored).
// Restoring the VM first and then each vCPU is the order Firecracker's snapshot restore uses.

/** Everything KVM holds for one x86_64 vCPU (see KvmVcpu.saveState). */
export interface KvmVcpuState {
  arch: 'x86_64';
  /** The vCPU id (KVM_CREATE_VCPU): a state is only restored into the vCPU with that id. */
  id: number;
  /** KVM_GET_CPUID2: the CPUID the vCPU was given, so that MSRs and XSAVE state that depend on it are accepted. */
  cpuid: CpuidEntry[];
  /** KVM_GET_MP_STATE (MP_STATE). */
  mpState: number;
  /** KVM_GET_REGS, by register name, as hex strings. */
  regs: Record<keyof Regs, string>;
  /** KVM_GET_SREGS: struct kvm_sregs (KVM_SREGS_SIZE bytes), base64. */
  sregs: string;
  /** KVM_GET_XSAVE / KVM_GET_XSAVE2: the XSAVE area (KVM_XSAVE_SIZE bytes, or KVM_CAP_XSAVE2's size), base64. Absent without KVM_CAP_XSAVE. */
  xsave?: string;
  /** KVM_GET_FPU: struct kvm_fpu (KVM_FPU_SIZE bytes), base64: only where KVM_CAP_XSAVE is absent. */
  fpu?: string;
  /** KVM_GET_XCRS: struct kvm_xcrs (KVM_XCRS_SIZE bytes), base64. Absent without KVM_CAP_XCRS. */
  xcrs?: string;
  /** KVM_GET_DEBUGREGS: struct kvm_debugregs (KVM_DEBUGREGS_SIZE bytes), base64. Absent without KVM_CAP_DEBUGREGS. */
  debugregs?: string;
  /** KVM_GET_LAPIC: struct kvm_lapic_state (KVM_LAPIC_SIZE bytes), base64. Only with an in-kernel irqchip. */
  lapic?: string;
  /** KVM_GET_MSRS of every MSR in KVM_GET_MSR_INDEX_LIST that this vCPU could read, in list order. */
  msrs: { index: number; value: string }[];
  /** MSRs of KVM_GET_MSR_INDEX_LIST that KVM_GET_MSRS refused for this vCPU (not saved; for diagnostics). */
  unreadableMsrs: number[];
  /** KVM_GET_VCPU_EVENTS: struct kvm_vcpu_events (KVM_VCPU_EVENTS_SIZE bytes), base64. Absent without KVM_CAP_VCPU_EVENTS. */
  events?: string;
}

/** A VM's in-kernel devices and clock (see KvmVm.saveState). */
export interface KvmVmState {
  arch: 'x86_64';
  /** KVM_GET_IRQCHIP of the PIC master (chip 0), PIC slave (1) and IOAPIC (2), struct kvm_irqchip (KVM_IRQCHIP_SIZE bytes) each, base64; null when the VM has no in-kernel irqchip. */
  irqchip: { picMaster: string; picSlave: string; ioapic: string } | null;
  /** KVM_GET_PIT2: struct kvm_pit_state2 (KVM_PIT_STATE2_SIZE bytes), base64; null when the VM has no in-kernel PIT. */
  pit: string | null;
  /** KVM_GET_CLOCK: struct kvm_clock_data (KVM_CLOCK_DATA_SIZE bytes) as read, base64; null without KVM_CAP_ADJUST_CLOCK. */
  clock: string | null;
}

/** KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC (kvm_irqchip.chip_id). */
export const IRQCHIP_ID = { picMaster: 0, picSlave: 1, ioapic: 2 } as const;
/** kvm_vcpu_events.flags bits KVM accepts on KVM_SET_VCPU_EVENTS (KVM_VCPUEVENT_VALID_*). */
const VCPUEVENT_VALID_ALL = 0x3f;
/** Offsets in struct kvm_vcpu_events / kvm_xcrs / kvm_debugregs / kvm_clock_data. */
const EVENTS_FLAGS_OFF = 20;
const XCRS_FLAGS_OFF = 4;
const DEBUGREGS_FLAGS_OFF = 48;
const CLOCK_FLAGS_OFF = 8;
/**
 * MAX_IO_MSRS in arch/x86/kvm/x86.c: KVM_GET_MSRS and KVM_SET_MSRS refuse nmsrs >= 256 with E2BIG,
 * so MSRs go in batches of at most 255.
 */
const MSR_BATCH = 255;
/** MSR_IA32_TSC_DEADLINE: restored after every other MSR (after MSR_IA32_TSC, as Firecracker does). */
const MSR_IA32_TSC_DEADLINE = 0x6e0;
const E2BIG = 7;

/** Base64 as Node writes it: groups of 4 characters of the standard alphabet, '=' padding. */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX64_RE = /^0x[0-9a-fA-F]{1,16}$/;

function b64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}
function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/** Checks of a state object's fields; every error names the state (`what`) and the field. */
class StateReader {
  constructor(readonly what: string) {}

  fail(msg: string): never {
    throw new Error(`${this.what}: ${msg}`);
  }

  object(v: unknown, field: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      this.fail(`${field} is missing or not an object`);
    return v as Record<string, unknown>;
  }

  /** A base64 field that must decode to `len` bytes (one of `len` when a list). */
  bytes(v: unknown, field: string, len: number | readonly number[]): Uint8Array {
    if (typeof v !== 'string') this.fail(`${field} is missing or not a base64 string`);
    if (!BASE64_RE.test(v)) this.fail(`${field} is not valid base64`);
    const b = new Uint8Array(Buffer.from(v, 'base64'));
    const lens = typeof len === 'number' ? [len] : len;
    if (!lens.includes(b.length))
      this.fail(
        `${field} is ${b.length} bytes, expected ${lens.join(' or ')} (a truncated or foreign state)`,
      );
    return b;
  }

  int(v: unknown, field: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      this.fail(`${field} is ${JSON.stringify(v)}, expected an integer in ${min}..${max}`);
    return v;
  }

  u64(v: unknown, field: string): bigint {
    if (typeof v !== 'string' || !HEX64_RE.test(v))
      this.fail(`${field} is ${JSON.stringify(v)}, expected a hex string 0x...`);
    return BigInt(v);
  }

  /**
   * A part the saved VM had or lacked (in-kernel irqchip, PIT) must be here or absent alike.
   * Returns whether it was saved.
   */
  sameBuild(saved: unknown, here: boolean, field: string, what: string, create: string): boolean {
    const had = saved !== null && saved !== undefined;
    if (!had && here) this.fail(`${field}: the saved VM had no in-kernel ${what} but this VM has one (build it without)`);
    if (had && !here)
      this.fail(`${field}: the saved VM has an in-kernel ${what} but this VM has none; create it (${create}) before restoring`);
    return had;
  }

  array(v: unknown, field: string, max: number): unknown[] {
    if (!Array.isArray(v)) this.fail(`${field} is missing or not an array`);
    if (v.length > max) this.fail(`${field} has ${v.length} entries, at most ${max} expected`);
    return v;
  }
}

function u32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}

/** A GET ioctl that fills a struct kvm_cpuid2 with room for `max` entries; its entries, checked. */
function cpuid2Ioctl(fd: number, req: number, name: string, max: number): CpuidEntry[] {
  const b = new Uint8Array(KVM_CPUID2_HEADER_SIZE + max * KVM_CPUID_ENTRY2_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, max, true);
  ioctlPtr(fd, req, name, b);
  const n = dv.getUint32(0, true);
  if (n > max) throw new KvmError(`${name} returned ${n} entries in room for ${max}`, name);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = KVM_CPUID2_HEADER_SIZE + i * KVM_CPUID_ENTRY2_SIZE;
    out.push({
      function: dv.getUint32(o, true),
      index: dv.getUint32(o + 4, true),
      flags: dv.getUint32(o + 8, true),
      eax: dv.getUint32(o + 12, true),
      ebx: dv.getUint32(o + 16, true),
      ecx: dv.getUint32(o + 20, true),
      edx: dv.getUint32(o + 24, true),
    });
  }
  return out;
}

/** The /dev/kvm system handle. */
export class Kvm {
  readonly fd: number;
  private closed = false;

  constructor(path = '/dev/kvm') {
    this.fd = sysOpen(path, O_RDWR | O_CLOEXEC);
    try {
      const v = this.apiVersion();
      if (v !== KVM_API_VERSION)
        throw new KvmError(`${path}: KVM API version ${v}, expected ${KVM_API_VERSION}`);
    } catch (e) {
      sysClose(this.fd);
      throw e;
    }
  }

  apiVersion(): number {
    return ioctlInt(this.fd, KVM.GET_API_VERSION, 'KVM_GET_API_VERSION');
  }

  checkExtension(cap: number): number {
    return ioctlInt(this.fd, KVM.CHECK_EXTENSION, 'KVM_CHECK_EXTENSION', cap);
  }

  private readonly capCache = new Map<number, number>();
  /** checkExtension, asked once per capability. */
  cap(cap: number): number {
    let v = this.capCache.get(cap);
    if (v === undefined) this.capCache.set(cap, (v = this.checkExtension(cap)));
    return v;
  }

  /**
   * Bytes of a vCPU's XSAVE state on this host: KVM_CAP_XSAVE2's answer when it has one (at least
   * KVM_XSAVE_SIZE), else KVM_XSAVE_SIZE; 0 without KVM_CAP_XSAVE (the state is then struct kvm_fpu).
   */
  xsaveSize(): number {
    if (this.cap(KVM_CAP.XSAVE) <= 0) return 0;
    return Math.max(KVM_XSAVE_SIZE, this.cap(KVM_CAP.XSAVE2));
  }

  private msrList: number[] | undefined;
  /**
   * KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a guest (those it emulates and
   * those of the host it passes on). Asked with nmsrs = 0 first: KVM answers E2BIG and the count.
   */
  msrIndexList(): number[] {
    if (this.msrList) return [...this.msrList];
    const probe = new Uint8Array(KVM_MSR_LIST_HEADER_SIZE);
    try {
      ioctlPtr(this.fd, KVM.GET_MSR_INDEX_LIST, 'KVM_GET_MSR_INDEX_LIST', probe);
    } catch (e) {
      if (!(e instanceof SysError && e.errno === E2BIG)) throw e;
    }
    const want = new DataView(probe.buffer).getUint32(0, true);
    if (want > 0x10000) throw new KvmError(`KVM_GET_MSR_INDEX_LIST: ${want} MSRs is not a plausible count`);
    const b = new Uint8Array(KVM_MSR_LIST_HEADER_SIZE + 4 * want);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, want, true);
    ioctlPtr(this.fd, KVM.GET_MSR_INDEX_LIST, 'KVM_GET_MSR_INDEX_LIST', b);
    const n = dv.getUint32(0, true);
    if (n > want) throw new KvmError(`KVM_GET_MSR_INDEX_LIST returned ${n} MSRs in room for ${want}`);
    const list: number[] = [];
    for (let i = 0; i < n; i++) list.push(dv.getUint32(KVM_MSR_LIST_HEADER_SIZE + 4 * i, true));
    this.msrList = list;
    return [...list];
  }

  vcpuMmapSize(): number {
    return ioctlInt(this.fd, KVM.GET_VCPU_MMAP_SIZE, 'KVM_GET_VCPU_MMAP_SIZE');
  }

  /** KVM_GET_SUPPORTED_CPUID: the CPUID leaves this host's KVM can offer a guest. */
  supportedCpuid(max = 256): CpuidEntry[] {
    return cpuid2Ioctl(this.fd, KVM.GET_SUPPORTED_CPUID, 'KVM_GET_SUPPORTED_CPUID', max);
  }

  createVm(): KvmVm {
    const fd = ioctlInt(this.fd, KVM.CREATE_VM, 'KVM_CREATE_VM', 0);
    return new KvmVm(this, fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sysClose(this.fd);
  }
}

export const IOEVENTFD_FLAG = { DATAMATCH: 1, PIO: 2, DEASSIGN: 4 } as const;

/** One guest RAM region: host anonymous memory registered with KVM. */
export interface RamRegion {
  slot: number;
  gpa: number;
  size: number;
  map: Mapping;
}

export class KvmVm {
  readonly vcpus: KvmVcpu[] = [];
  readonly regions: RamRegion[] = [];
  private readonly eventfds = new Set<number>();
  private closed = false;

  constructor(
    readonly kvm: Kvm,
    readonly fd: number,
  ) {}

  setTssAddr(addr: number): void {
    ioctlInt(this.fd, KVM.SET_TSS_ADDR, 'KVM_SET_TSS_ADDR', addr);
  }

  setIdentityMapAddr(addr: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(addr), true);
    ioctlPtr(this.fd, KVM.SET_IDENTITY_MAP_ADDR, 'KVM_SET_IDENTITY_MAP_ADDR', b);
  }

  createIrqchip(): void {
    ioctlInt(this.fd, KVM.CREATE_IRQCHIP, 'KVM_CREATE_IRQCHIP', 0);
    this.irqchipCreated = true;
  }

  /** KVM_CREATE_PIT2 with a dummy speaker port (flags = KVM_PIT_SPEAKER_DUMMY). */
  createPit2(): void {
    const b = new Uint8Array(KVM_PIT_CONFIG_SIZE);
    new DataView(b.buffer).setUint32(0, 1, true);
    ioctlPtr(this.fd, KVM.CREATE_PIT2, 'KVM_CREATE_PIT2', b);
    this.pitCreated = true;
  }

  private irqchipCreated = false;
  private pitCreated = false;
  /** Whether the in-kernel PIC/IOAPIC/LAPIC were created (createIrqchip). */
  get hasIrqchip(): boolean {
    return this.irqchipCreated;
  }

  /** KVM_GET_IRQCHIP of one chip (IRQCHIP_ID): struct kvm_irqchip. */
  getIrqchip(chip: number): Uint8Array {
    const b = new Uint8Array(KVM_IRQCHIP_SIZE);
    new DataView(b.buffer).setUint32(0, chip, true);
    ioctlPtr(this.fd, KVM.GET_IRQCHIP, 'KVM_GET_IRQCHIP', b);
    const got = u32(b, 0);
    if (got !== chip)
      throw new KvmError(`KVM_GET_IRQCHIP for chip ${chip} answered for chip ${got}`, 'KVM_GET_IRQCHIP');
    return b;
  }

  /** KVM_GET_PIT2: struct kvm_pit_state2. */
  getPit2(): Uint8Array {
    const b = new Uint8Array(KVM_PIT_STATE2_SIZE);
    ioctlPtr(this.fd, KVM.GET_PIT2, 'KVM_GET_PIT2', b);
    return b;
  }

  /** KVM_GET_CLOCK: struct kvm_clock_data (clock in ns at offset 0, flags at 8). */
  getClock(): Uint8Array {
    const b = new Uint8Array(KVM_CLOCK_DATA_SIZE);
    ioctlPtr(this.fd, KVM.GET_CLOCK, 'KVM_GET_CLOCK', b);
    return b;
  }

  /**
   * The VM-wide in-kernel state: the irqchip's three chips, the PIT and the KVM clock (those the
   * VM has). Call with every vCPU out of KVM_RUN. The vCPUs' own state is KvmVcpu.saveState's.
   */
  saveState(): KvmVmState {
    const irqchip = this.irqchipCreated
      ? {
          picMaster: b64(this.getIrqchip(IRQCHIP_ID.picMaster)),
          picSlave: b64(this.getIrqchip(IRQCHIP_ID.picSlave)),
          ioapic: b64(this.getIrqchip(IRQCHIP_ID.ioapic)),
        }
      : null;
    const pit = this.pitCreated ? b64(this.getPit2()) : null;
    const clock = this.kvm.cap(KVM_CAP.ADJUST_CLOCK) > 0 ? b64(this.getClock()) : null;
    return { arch: 'x86_64', irqchip, pit, clock };
  }

  /**
   * Load a state from saveState into this VM, which must have been built the same way (in-kernel
   * irqchip and PIT created or not; refused otherwise). Everything is checked before anything is
   * set. Order as Firecracker's VM restore: PIT, clock, PIC master, PIC slave, IOAPIC. Restore the
   * VM before its vCPUs.
   *
   * The clock is set to the saved value with flags 0, so the guest's kvmclock continues from where
   * it stopped: KVM_CLOCK_TSC_STABLE and KVM_CLOCK_HOST_TSC only describe a GET (kernels before 5.16
   * refuse any flag on a SET), and KVM_CLOCK_REALTIME would advance the clock by the wall-clock time
   * between save and restore.
   */
  restoreState(state: KvmVmState): void {
    const r = new StateReader('KVM VM state');
    const s = r.object(state, 'the state');
    if (s.arch !== 'x86_64') r.fail(`arch is ${JSON.stringify(s.arch)}, expected "x86_64"`);
    let chips: Uint8Array[] | undefined;
    if (r.sameBuild(s.irqchip, this.irqchipCreated, 'irqchip', 'irqchip (PIC, IOAPIC)', 'createIrqchip')) {
      const c = r.object(s.irqchip, 'irqchip');
      chips = (['picMaster', 'picSlave', 'ioapic'] as const).map((k) => {
        const b = r.bytes(c[k], `irqchip.${k}`, KVM_IRQCHIP_SIZE);
        if (u32(b, 0) !== IRQCHIP_ID[k])
          r.fail(`irqchip.${k} holds chip ${u32(b, 0)}, expected ${IRQCHIP_ID[k]}`);
        return b;
      });
    }
    let pit: Uint8Array | undefined;
    if (r.sameBuild(s.pit, this.pitCreated, 'pit', 'PIT', 'createPit2')) pit = r.bytes(s.pit, 'pit', KVM_PIT_STATE2_SIZE);
    let clock: Uint8Array | undefined;
    if (s.clock !== null && s.clock !== undefined) {
      if (this.kvm.cap(KVM_CAP.ADJUST_CLOCK) <= 0) r.fail('clock: this host has no KVM_CAP_ADJUST_CLOCK');
      clock = r.bytes(s.clock, 'clock', KVM_CLOCK_DATA_SIZE);
    }
    if (pit) ioctlPtr(this.fd, KVM.SET_PIT2, 'KVM_SET_PIT2', pit);
    if (clock) {
      const c = new Uint8Array(KVM_CLOCK_DATA_SIZE);
      c.set(clock.subarray(0, CLOCK_FLAGS_OFF)); // clock (ns); flags, realtime, host_tsc, padding: 0
      ioctlPtr(this.fd, KVM.SET_CLOCK, 'KVM_SET_CLOCK', c);
    }
    for (const b of chips ?? []) ioctlPtr(this.fd, KVM.SET_IRQCHIP, 'KVM_SET_IRQCHIP', b);
  }

  /** mmap anonymous memory and register it as guest RAM at `gpa`. */
  addRam(gpa: number, size: number): RamRegion {
    const map = sysMmap(
      size,
      PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      -1,
      `guest RAM ${size} bytes`,
    );
    const slot = this.regions.length;
    try {
      this.setUserMemoryRegion(slot, gpa, size, map.addr);
    } catch (e) {
      sysMunmap(map);
      throw e;
    }
    const r = { slot, gpa, size, map };
    this.regions.push(r);
    return r;
  }

  setUserMemoryRegion(slot: number, gpa: number, size: number, hostAddr: bigint, flags = 0): void {
    const b = new Uint8Array(32);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, slot, true);
    dv.setUint32(4, flags, true);
    dv.setBigUint64(8, BigInt(gpa), true);
    dv.setBigUint64(16, BigInt(size), true);
    dv.setBigUint64(24, hostAddr, true);
    ioctlPtr(this.fd, KVM.SET_USER_MEMORY_REGION, 'KVM_SET_USER_MEMORY_REGION', b);
  }

  /** KVM_IRQ_LINE: set an interrupt line (a GSI of the in-kernel PIC/IOAPIC) high or low. */
  irqLine(irq: number, level: boolean): void {
    const b = new Uint8Array(8);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, irq, true);
    dv.setUint32(4, level ? 1 : 0, true);
    ioctlPtr(this.fd, KVM.IRQ_LINE, 'KVM_IRQ_LINE', b);
  }

  /** A new eventfd owned by this VM (closed with it). */
  eventfd(): number {
    const fd = sysEventfd();
    this.eventfds.add(fd);
    return fd;
  }

  /** KVM_IRQFD: signalling `fd` raises GSI `gsi` (edge). Returns the eventfd. */
  irqfd(gsi: number, fd = this.eventfd(), deassign = false): number {
    const b = new Uint8Array(32);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, fd, true);
    dv.setUint32(4, gsi, true);
    dv.setUint32(8, deassign ? 1 : 0, true);
    ioctlPtr(this.fd, KVM.IRQFD, 'KVM_IRQFD', b);
    return fd;
  }

  /**
   * KVM_IOEVENTFD: a guest write of `len` bytes to `addr` (a port when `pio`) signals the eventfd in
   * the kernel instead of exiting to the VMM. With `datamatch`, only writes of that value do.
   */
  ioeventfd(opts: { addr: number; len: number; pio?: boolean; datamatch?: bigint; fd?: number }): number {
    const fd = opts.fd ?? this.eventfd();
    const b = new Uint8Array(64);
    const dv = new DataView(b.buffer);
    let flags = 0;
    if (opts.datamatch !== undefined) {
      flags |= IOEVENTFD_FLAG.DATAMATCH;
      dv.setBigUint64(0, opts.datamatch, true);
    }
    if (opts.pio) flags |= IOEVENTFD_FLAG.PIO;
    dv.setBigUint64(8, BigInt(opts.addr), true);
    dv.setUint32(16, opts.len, true);
    dv.setInt32(20, fd, true);
    dv.setUint32(24, flags, true);
    ioctlPtr(this.fd, KVM.IOEVENTFD, 'KVM_IOEVENTFD', b);
    return fd;
  }

  createVcpu(id: number): KvmVcpu {
    const fd = ioctlInt(this.fd, KVM.CREATE_VCPU, 'KVM_CREATE_VCPU', id);
    let map: Mapping;
    try {
      map = sysMmap(this.kvm.vcpuMmapSize(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, `kvm_run of vCPU ${id}`);
    } catch (e) {
      sysClose(fd);
      throw e;
    }
    const v = new KvmVcpu(this, id, fd, map);
    this.vcpus.push(v);
    return v;
  }

  /** Close vCPUs, eventfds and the VM fd, and unmap guest RAM. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const v of this.vcpus) v.close();
    for (const fd of this.eventfds) sysClose(fd);
    this.eventfds.clear();
    sysClose(this.fd);
    for (const r of this.regions) sysMunmap(r.map);
    this.regions.length = 0;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

export const MP_STATE = {
  RUNNABLE: 0,
  UNINITIALIZED: 1,
  INIT_RECEIVED: 2,
  HALTED: 3,
  SIPI_RECEIVED: 4,
} as const;

/** struct kvm_run offsets (x86_64). */
export const RUN = {
  requestInterruptWindow: 0,
  immediateExit: 1,
  exitReason: 8,
  readyForInjection: 12,
  ifFlag: 13,
  union: 32,
} as const;

export class KvmVcpu {
  /** The mmap'ed struct kvm_run. */
  readonly run: DataView;
  readonly runBytes: Uint8Array;
  private closed = false;

  constructor(
    readonly vm: KvmVm,
    readonly id: number,
    readonly fd: number,
    readonly runMap: Mapping,
  ) {
    this.run = new DataView(runMap.buffer);
    this.runBytes = new Uint8Array(runMap.buffer);
  }

  getRegs(): Regs {
    const b = new Uint8Array(KVM_REGS_SIZE);
    ioctlPtr(this.fd, KVM.GET_REGS, 'KVM_GET_REGS', b);
    const dv = new DataView(b.buffer);
    const r: Partial<Regs> = {};
    REG_NAMES.forEach((n, i) => (r[n] = dv.getBigUint64(i * 8, true)));
    return r as Regs;
  }

  setRegs(r: Partial<Regs>): void {
    const cur = this.getRegs();
    const all = { ...cur, ...r };
    const b = new Uint8Array(KVM_REGS_SIZE);
    const dv = new DataView(b.buffer);
    REG_NAMES.forEach((n, i) => dv.setBigUint64(i * 8, BigInt.asUintN(64, all[n]), true));
    ioctlPtr(this.fd, KVM.SET_REGS, 'KVM_SET_REGS', b);
  }

  getSregs(): Sregs {
    const b = new Uint8Array(KVM_SREGS_SIZE);
    ioctlPtr(this.fd, KVM.GET_SREGS, 'KVM_GET_SREGS', b);
    return decodeSregs(b);
  }

  setSregs(s: Sregs): void {
    ioctlPtr(this.fd, KVM.SET_SREGS, 'KVM_SET_SREGS', encodeSregs(s));
  }

  setCpuid(entries: CpuidEntry[]): void {
    const b = new Uint8Array(KVM_CPUID2_HEADER_SIZE + entries.length * KVM_CPUID_ENTRY2_SIZE);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, entries.length, true);
    entries.forEach((e, i) => {
      const o = KVM_CPUID2_HEADER_SIZE + i * KVM_CPUID_ENTRY2_SIZE;
      dv.setUint32(o, e.function, true);
      dv.setUint32(o + 4, e.index, true);
      dv.setUint32(o + 8, e.flags, true);
      dv.setUint32(o + 12, e.eax, true);
      dv.setUint32(o + 16, e.ebx, true);
      dv.setUint32(o + 20, e.ecx, true);
      dv.setUint32(o + 24, e.edx, true);
    });
    ioctlPtr(this.fd, KVM.SET_CPUID2, 'KVM_SET_CPUID2', b);
  }

  /** KVM_SET_MSRS; returns how many were set. */
  setMsrs(msrs: { index: number; data: bigint }[]): number {
    const b = new Uint8Array(8 + msrs.length * 16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, msrs.length, true);
    msrs.forEach((m, i) => {
      dv.setUint32(8 + i * 16, m.index, true);
      dv.setBigUint64(8 + i * 16 + 8, m.data, true);
    });
    const n = ioctlPtr(this.fd, KVM.SET_MSRS, 'KVM_SET_MSRS', b);
    if (n !== msrs.length) {
      throw new KvmError(
        `KVM_SET_MSRS set ${n} of ${msrs.length} MSRs (MSR 0x${msrs[n].index.toString(16)} refused)`,
        'KVM_SET_MSRS',
      );
    }
    return n;
  }

  getMpState(): number {
    const b = new Uint8Array(KVM_MP_STATE_SIZE);
    ioctlPtr(this.fd, KVM.GET_MP_STATE, 'KVM_GET_MP_STATE', b);
    return new DataView(b.buffer).getUint32(0, true);
  }

  setMpState(state: number): void {
    const b = new Uint8Array(KVM_MP_STATE_SIZE);
    new DataView(b.buffer).setUint32(0, state, true);
    ioctlPtr(this.fd, KVM.SET_MP_STATE, 'KVM_SET_MP_STATE', b);
  }

  /** KVM_GET_CPUID2: the CPUID entries this vCPU was given. */
  getCpuid(max = 256): CpuidEntry[] {
    return cpuid2Ioctl(this.fd, KVM.GET_CPUID2, 'KVM_GET_CPUID2', max);
  }

  /** A GET ioctl that fills a structure of `size` bytes. */
  private getStruct(req: number, name: string, size: number): Uint8Array {
    const b = new Uint8Array(size);
    ioctlPtr(this.fd, req, name, b);
    return b;
  }

  /**
   * KVM_GET_MSRS of `indices`, skipping those this vCPU cannot read. KVM_GET_MSRS processes the
   * entries in order and stops at the first MSR it cannot read, returning how many it read: entries
   * [0, n) hold values, entry n is the unreadable one. So each batch keeps its first n values,
   * records entry n as unreadable and goes on with the entries after it: every readable MSR is kept,
   * at the cost of one more ioctl per unreadable one. Batches hold at most MSR_BATCH entries.
   */
  readMsrs(indices: readonly number[]): { msrs: { index: number; data: bigint }[]; unreadable: number[] } {
    const msrs: { index: number; data: bigint }[] = [];
    const unreadable: number[] = [];
    for (let pos = 0; pos < indices.length;) {
      const batch = indices.slice(pos, pos + MSR_BATCH);
      const b = new Uint8Array(KVM_MSRS_HEADER_SIZE + batch.length * KVM_MSR_ENTRY_SIZE);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, batch.length, true);
      batch.forEach((index, i) => dv.setUint32(KVM_MSRS_HEADER_SIZE + i * KVM_MSR_ENTRY_SIZE, index, true));
      const n = ioctlPtr(this.fd, KVM.GET_MSRS, 'KVM_GET_MSRS', b);
      if (n > batch.length)
        throw new KvmError(`KVM_GET_MSRS read ${n} MSRs of ${batch.length} asked`, 'KVM_GET_MSRS');
      for (let i = 0; i < n; i++) {
        const o = KVM_MSRS_HEADER_SIZE + i * KVM_MSR_ENTRY_SIZE;
        const index = dv.getUint32(o, true);
        if (index !== batch[i])
          throw new KvmError(
            `KVM_GET_MSRS answered MSR 0x${index.toString(16)} for 0x${batch[i].toString(16)}`,
            'KVM_GET_MSRS',
          );
        msrs.push({ index, data: dv.getBigUint64(o + 8, true) });
      }
      if (n < batch.length) {
        unreadable.push(batch[n]);
        pos += n + 1;
      } else pos += batch.length;
    }
    return { msrs, unreadable };
  }

  /**
   * Complete the last exit. KVM finishes the instruction behind a KVM_EXIT_IO or KVM_EXIT_MMIO
   * (stores the data of a read, moves RIP past it) only on the next KVM_RUN, and that pending work
   * is in no state userspace can read: saved right after such an exit, the state would run the
   * instruction again (Documentation/virt/kvm/api.rst, KVM_RUN: userspace re-enters with
   * immediate_exit set to complete pending operations before saving). So: one KVM_RUN with
   * immediate_exit set, which completes the exit and returns EINTR before running guest code. Call
   * with the vCPU stopped (not in KVM_RUN on another thread) and its last exit handled.
   */
  completePendingExit(): void {
    const before = this.run.getUint8(RUN.immediateExit);
    this.run.setUint8(RUN.immediateExit, 1);
    let r: number;
    try {
      r = ioctlIntRaw(this.fd, KVM.RUN, 0);
    } finally {
      this.run.setUint8(RUN.immediateExit, before);
    }
    if (r >= 0) {
      // Completing the exit needed another one (a string I/O instruction's next round): the
      // instruction is not finished, and that exit must be handled by the run loop first.
      const reason = EXIT_NAMES[this.exitReason] ?? this.exitReason;
      throw new KvmError(
        `vCPU ${this.id}: completing its last exit made a new one (${reason}); run it on until it stops after a complete exit, then save`,
        'KVM_RUN',
      );
    }
    if (r !== -EINTR && r !== -EAGAIN)
      throw new KvmError(`KVM_RUN (immediate exit) on vCPU ${this.id} failed: errno ${-r}`, 'KVM_RUN', -r);
  }

  /**
   * Everything KVM holds for this vCPU, as plain JSON (KvmVcpuState). Call with the vCPU out of
   * KVM_RUN (the VM stopped or paused) and its last exit handled; the exit is completed first
   * (completePendingExit). With several vCPUs, stop them all first: KVM_GET_VCPU_EVENTS is not
   * consistent while others run.
   *
   * Order as Firecracker's vCPU save_state: MP state first (KVM_GET_MP_STATE runs
   * kvm_apic_accept_events, which can change vCPU and LAPIC state), then registers, FPU/XSAVE, XCRs,
   * debug registers, LAPIC, CPUID, MSRs, and the events last (the other GETs can change pending
   * events).
   */
  saveState(): KvmVcpuState {
    this.completePendingExit();
    const kvm = this.vm.kvm;
    const mpState = this.getMpState();
    const regsNow = this.getRegs();
    const regs = Object.fromEntries(REG_NAMES.map((n) => [n, hex(regsNow[n])])) as KvmVcpuState['regs'];
    const sregs = b64(this.getStruct(KVM.GET_SREGS, 'KVM_GET_SREGS', KVM_SREGS_SIZE));
    const state: KvmVcpuState = {
      arch: 'x86_64',
      id: this.id,
      cpuid: [],
      mpState,
      regs,
      sregs,
      msrs: [],
      unreadableMsrs: [],
    };
    const xsaveSize = kvm.xsaveSize();
    if (xsaveSize > KVM_XSAVE_SIZE)
      state.xsave = b64(this.getStruct(KVM.GET_XSAVE2, 'KVM_GET_XSAVE2', xsaveSize));
    else if (xsaveSize > 0) state.xsave = b64(this.getStruct(KVM.GET_XSAVE, 'KVM_GET_XSAVE', KVM_XSAVE_SIZE));
    else state.fpu = b64(this.getStruct(KVM.GET_FPU, 'KVM_GET_FPU', KVM_FPU_SIZE));
    if (kvm.cap(KVM_CAP.XCRS) > 0) {
      const x = this.getStruct(KVM.GET_XCRS, 'KVM_GET_XCRS', KVM_XCRS_SIZE);
      if (u32(x, 0) > KVM_MAX_XCRS)
        throw new KvmError(
          `KVM_GET_XCRS returned ${u32(x, 0)} XCRs, at most ${KVM_MAX_XCRS} fit`,
          'KVM_GET_XCRS',
        );
      state.xcrs = b64(x);
    }
    if (kvm.cap(KVM_CAP.DEBUGREGS) > 0)
      state.debugregs = b64(this.getStruct(KVM.GET_DEBUGREGS, 'KVM_GET_DEBUGREGS', KVM_DEBUGREGS_SIZE));
    if (this.vm.hasIrqchip) state.lapic = b64(this.getStruct(KVM.GET_LAPIC, 'KVM_GET_LAPIC', KVM_LAPIC_SIZE));
    state.cpuid = this.getCpuid();
    const { msrs, unreadable } = this.readMsrs(kvm.msrIndexList());
    state.msrs = msrs.map((m) => ({ index: m.index, value: hex(m.data) }));
    state.unreadableMsrs = unreadable;
    if (kvm.cap(KVM_CAP.VCPU_EVENTS) > 0)
      state.events = b64(this.getStruct(KVM.GET_VCPU_EVENTS, 'KVM_GET_VCPU_EVENTS', KVM_VCPU_EVENTS_SIZE));
    return state;
  }

  /**
   * Load a state from saveState (of this process or another) into this vCPU, which must have the
   * same id and belong to a VM built the same way (in-kernel irqchip or not), with guest RAM
   * registered and filled and the VM state (KvmVm.restoreState) restored first. Every field is
   * checked before anything is set; a field that is missing, of the wrong type, or whose buffer has
   * the wrong length is refused with an Error naming it.
   *
   * Order as Firecracker's vCPU restore_state (src/vmm/src/arch/x86_64/vcpu.rs; its comments give
   * the reasons): CPUID first (what MSRs and XSAVE features KVM accepts depends on it), MP state,
   * regs, sregs, XSAVE, XCRs, debug registers, LAPIC, MSRs, events.
   *  - SET_REGS clears a pending exception, so it comes before SET_VCPU_EVENTS, which restores it;
   *    the events come last (sregs carries a pending interrupt too, and the events override it).
   *  - SET_LAPIC after SET_SREGS: sregs restores the APIC base MSR (xAPIC/x2APIC mode), which decides
   *    how KVM reads the LAPIC page.
   *  - SET_LAPIC before SET_MSRS: the TSC deadline MSR only restores when the LAPIC timer is in
   *    TSC-deadline mode; and that MSR goes last among the MSRs, after MSR_IA32_TSC, since KVM
   *    compares the deadline with the TSC to arm the timer.
   */
  restoreState(state: KvmVcpuState): void {
    const kvm = this.vm.kvm;
    const r = new StateReader(`KVM vCPU ${this.id} state`);
    const s = r.object(state, 'the state');
    if (s.arch !== 'x86_64') r.fail(`arch is ${JSON.stringify(s.arch)}, expected "x86_64"`);
    const id = r.int(s.id, 'id', 0, 0xffffffff);
    if (id !== this.id) r.fail(`it is the state of vCPU id ${id}, not of vCPU id ${this.id}`);
    const cpuid = r.array(s.cpuid, 'cpuid', 256).map((e, i) => {
      const o = r.object(e, `cpuid[${i}]`);
      const f = (k: keyof CpuidEntry) => r.int(o[k], `cpuid[${i}].${k}`, 0, 0xffffffff);
      return {
        function: f('function'),
        index: f('index'),
        flags: f('flags'),
        eax: f('eax'),
        ebx: f('ebx'),
        ecx: f('ecx'),
        edx: f('edx'),
      };
    });
    const mpState = r.int(s.mpState, 'mpState', 0, 0xffffffff);
    const regsIn = r.object(s.regs, 'regs');
    const regs = Object.fromEntries(
      REG_NAMES.map((n) => [n, r.u64(regsIn[n], `regs.${n}`)]),
    ) as unknown as Regs;
    const sregs = r.bytes(s.sregs, 'sregs', KVM_SREGS_SIZE);
    const xsaveSize = kvm.xsaveSize();
    let xsave: Uint8Array | undefined;
    let fpu: Uint8Array | undefined;
    if (s.xsave !== undefined) {
      if (xsaveSize === 0) r.fail('xsave: this host has no KVM_CAP_XSAVE');
      xsave = r.bytes(s.xsave, 'xsave', xsaveSize);
    } else if (s.fpu !== undefined) fpu = r.bytes(s.fpu, 'fpu', KVM_FPU_SIZE);
    else r.fail('xsave (or fpu) is missing');
    let xcrs: Uint8Array | undefined;
    if (s.xcrs !== undefined) {
      if (kvm.cap(KVM_CAP.XCRS) <= 0) r.fail('xcrs: this host has no KVM_CAP_XCRS');
      xcrs = r.bytes(s.xcrs, 'xcrs', KVM_XCRS_SIZE);
      r.int(u32(xcrs, 0), 'xcrs.nr_xcrs', 0, KVM_MAX_XCRS);
      r.int(u32(xcrs, XCRS_FLAGS_OFF), 'xcrs.flags', 0, 0);
    }
    let debugregs: Uint8Array | undefined;
    if (s.debugregs !== undefined) {
      if (kvm.cap(KVM_CAP.DEBUGREGS) <= 0) r.fail('debugregs: this host has no KVM_CAP_DEBUGREGS');
      debugregs = r.bytes(s.debugregs, 'debugregs', KVM_DEBUGREGS_SIZE);
      r.int(u32(debugregs, DEBUGREGS_FLAGS_OFF), 'debugregs.flags', 0, 0);
    }
    let lapic: Uint8Array | undefined;
    if (s.lapic !== undefined) {
      if (!this.vm.hasIrqchip)
        r.fail(
          'lapic: the saved vCPU has an in-kernel LAPIC but this VM has no in-kernel irqchip; create it (createIrqchip) before restoring',
        );
      lapic = r.bytes(s.lapic, 'lapic', KVM_LAPIC_SIZE);
    } else if (this.vm.hasIrqchip)
      r.fail('lapic is missing (the saved VM had no in-kernel irqchip, this one has)');
    const msrs = r.array(s.msrs, 'msrs', 0x10000).map((m, i) => {
      const o = r.object(m, `msrs[${i}]`);
      return {
        index: r.int(o.index, `msrs[${i}].index`, 0, 0xffffffff),
        data: r.u64(o.value, `msrs[${i}].value`),
      };
    });
    let events: Uint8Array | undefined;
    if (s.events !== undefined) {
      if (kvm.cap(KVM_CAP.VCPU_EVENTS) <= 0) r.fail('events: this host has no KVM_CAP_VCPU_EVENTS');
      events = r.bytes(s.events, 'events', KVM_VCPU_EVENTS_SIZE);
      const flags = u32(events, EVENTS_FLAGS_OFF);
      if (flags & ~VCPUEVENT_VALID_ALL)
        r.fail(`events.flags 0x${flags.toString(16)} has bits KVM does not know`);
    }

    if (cpuid.length > 0) this.setCpuid(cpuid);
    this.setMpState(mpState);
    this.setRegs(regs);
    ioctlPtr(this.fd, KVM.SET_SREGS, 'KVM_SET_SREGS', sregs);
    if (xsave) ioctlPtr(this.fd, KVM.SET_XSAVE, 'KVM_SET_XSAVE', xsave);
    if (fpu) ioctlPtr(this.fd, KVM.SET_FPU, 'KVM_SET_FPU', fpu);
    if (xcrs) ioctlPtr(this.fd, KVM.SET_XCRS, 'KVM_SET_XCRS', xcrs);
    if (debugregs) ioctlPtr(this.fd, KVM.SET_DEBUGREGS, 'KVM_SET_DEBUGREGS', debugregs);
    if (lapic) ioctlPtr(this.fd, KVM.SET_LAPIC, 'KVM_SET_LAPIC', lapic);
    const deferred = msrs.filter((m) => m.index === MSR_IA32_TSC_DEADLINE);
    const first = msrs.filter((m) => m.index !== MSR_IA32_TSC_DEADLINE);
    for (const list of [first, deferred])
      for (let i = 0; i < list.length; i += MSR_BATCH) this.setMsrs(list.slice(i, i + MSR_BATCH));
    if (events) ioctlPtr(this.fd, KVM.SET_VCPU_EVENTS, 'KVM_SET_VCPU_EVENTS', events);
  }

  /** One KVM_RUN (blocking this thread). Returns 0, or -EINTR/-EAGAIN; throws on other errors. */
  runOnce(): number {
    const r = ioctlIntRaw(this.fd, KVM.RUN, 0);
    if (r < 0 && r !== -EINTR && r !== -EAGAIN) {
      throw new KvmError(`KVM_RUN on vCPU ${this.id} failed: errno ${-r}`, 'KVM_RUN', -r);
    }
    return r;
  }

  /** One KVM_RUN on a libuv pool thread, so the event loop (and other vCPUs) keep running. */
  runAsync(): Promise<number> {
    return new Promise((resolve, reject) => {
      runAsyncFn()(this.fd, KVM.RUN, 0, (err: unknown, r: number) => {
        if (err) reject(err as Error);
        else if (r < 0) {
          // errno is not carried across threads by koffi's async calls; report it generically.
          resolve(-EINTR);
        } else resolve(r);
      });
    });
  }

  get exitReason(): number {
    return this.run.getUint32(RUN.exitReason, true);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sysMunmap(this.runMap);
    sysClose(this.fd);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let asyncIoctl: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function runAsyncFn(): any {
  if (!asyncIoctl) {
    const lib = koffi().load('libc.so.6');
    asyncIoctl = lib.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']).async;
  }
  return asyncIoctl;
}

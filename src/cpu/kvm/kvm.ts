// The KVM API from TypeScript: the /dev/kvm system fd, a VM fd and vCPU fds, with the ioctls, the
// structures (kvm_regs, kvm_sregs, kvm_run, kvm_userspace_memory_region, kvm_cpuid2, kvm_msrs,
// kvm_irqfd, kvm_ioeventfd, kvm_pit_config) laid out by hand in little-endian buffers (x86_64 ABI).

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
// nobody chose a size (effective only if the pool has not started yet).
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

export const KVM = {
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, 8),
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, 32),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, 8),
  IRQFD: iow(0x76, 32),
  CREATE_PIT2: iow(0x77, 64),
  IOEVENTFD: iow(0x79, 64),
  RUN: io(0x80),
  GET_REGS: ior(0x81, 144),
  SET_REGS: iow(0x82, 144),
  GET_SREGS: ior(0x83, 312),
  SET_SREGS: iow(0x84, 312),
  SET_MSRS: iow(0x89, 8),
  SET_CPUID2: iow(0x90, 8),
  GET_MP_STATE: ior(0x98, 4),
  SET_MP_STATE: iow(0x99, 4),
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
  const buf = new Uint8Array(312);
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

  vcpuMmapSize(): number {
    return ioctlInt(this.fd, KVM.GET_VCPU_MMAP_SIZE, 'KVM_GET_VCPU_MMAP_SIZE');
  }

  /** KVM_GET_SUPPORTED_CPUID: the CPUID leaves this host's KVM can offer a guest. */
  supportedCpuid(max = 256): CpuidEntry[] {
    const buf = new Uint8Array(8 + max * 40);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, max, true);
    ioctlPtr(this.fd, KVM.GET_SUPPORTED_CPUID, 'KVM_GET_SUPPORTED_CPUID', buf);
    const n = dv.getUint32(0, true);
    const out: CpuidEntry[] = [];
    for (let i = 0; i < n; i++) {
      const o = 8 + i * 40;
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
  }

  /** KVM_CREATE_PIT2 with a dummy speaker port (flags = KVM_PIT_SPEAKER_DUMMY). */
  createPit2(): void {
    const b = new Uint8Array(64);
    new DataView(b.buffer).setUint32(0, 1, true);
    ioctlPtr(this.fd, KVM.CREATE_PIT2, 'KVM_CREATE_PIT2', b);
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
    const b = new Uint8Array(144);
    ioctlPtr(this.fd, KVM.GET_REGS, 'KVM_GET_REGS', b);
    const dv = new DataView(b.buffer);
    const r: Partial<Regs> = {};
    REG_NAMES.forEach((n, i) => (r[n] = dv.getBigUint64(i * 8, true)));
    return r as Regs;
  }

  setRegs(r: Partial<Regs>): void {
    const cur = this.getRegs();
    const all = { ...cur, ...r };
    const b = new Uint8Array(144);
    const dv = new DataView(b.buffer);
    REG_NAMES.forEach((n, i) => dv.setBigUint64(i * 8, BigInt.asUintN(64, all[n]), true));
    ioctlPtr(this.fd, KVM.SET_REGS, 'KVM_SET_REGS', b);
  }

  getSregs(): Sregs {
    const b = new Uint8Array(312);
    ioctlPtr(this.fd, KVM.GET_SREGS, 'KVM_GET_SREGS', b);
    return decodeSregs(b);
  }

  setSregs(s: Sregs): void {
    ioctlPtr(this.fd, KVM.SET_SREGS, 'KVM_SET_SREGS', encodeSregs(s));
  }

  setCpuid(entries: CpuidEntry[]): void {
    const b = new Uint8Array(8 + entries.length * 40);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, entries.length, true);
    entries.forEach((e, i) => {
      const o = 8 + i * 40;
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
    const b = new Uint8Array(4);
    ioctlPtr(this.fd, KVM.GET_MP_STATE, 'KVM_GET_MP_STATE', b);
    return new DataView(b.buffer).getUint32(0, true);
  }

  setMpState(state: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, state, true);
    ioctlPtr(this.fd, KVM.SET_MP_STATE, 'KVM_SET_MP_STATE', b);
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

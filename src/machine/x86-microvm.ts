// The x86-microvm machine on KVM: RAM from 0, COM1 (8250) at 0x3f8 on IRQ 4, an i8042 at 0x60/0x64
// whose reset command reboots, virtio-mmio slots at 0xd000_0000 + n*0x1000 on IRQ 5+n, the in-kernel
// PIC/IOAPIC/LAPIC and PIT. A guest starts either in real mode at a given address (the project's
// test guests) or in 64-bit mode at a Linux kernel's entry with boot_params (x86-boot.ts).
//
// Threading: with one vCPU, KVM_RUN is called synchronously on the calling thread (the fastest
// exit path). With several, each vCPU's KVM_RUN runs on a libuv pool thread (koffi async calls)
// and its exits are handled on the main thread, so device models need no locking.

import { GuestMemory } from '../memory/guest-memory.js';
import { I8042 } from '../devices/i8042.js';
import { Uart8250 } from '../devices/uart8250.js';
import { VirtioMmioTransport } from '../devices/virtio/mmio.js';
import type { VirtioDevice } from '../devices/virtio/mmio.js';
import { GuestError, PortBus, runLoopAsync, runLoopSync, type StopReason } from '../cpu/kvm/exits.js';
import { Kvm, KVM_CAP, RUN, type KvmVcpu, type KvmVm, type Segment, type Sregs } from '../cpu/kvm/kvm.js';
import { kickThreads } from '../host/sys.js';

export const X86_MEM = {
  COM1: 0x3f8,
  COM1_IRQ: 4,
  I8042_DATA: 0x60,
  I8042_CMD: 0x64,
  /** Test/debug port: a byte written here stops the VM with that exit code. */
  DEBUG_EXIT: 0x501,
  VIRTIO_BASE: 0xd000_0000,
  VIRTIO_STRIDE: 0x1000,
  VIRTIO_SIZE: 0x200,
  VIRTIO_IRQ0: 5,
  /** Memory above this is the PCI hole (32-bit devices, IOAPIC, LAPIC). */
  MMIO_HOLE: 0xc000_0000,
  TSS_ADDR: 0xfffb_d000,
  IDENTITY_MAP: 0xfffb_c000,
} as const;

export type X86StopReason = StopReason | { reason: 'exit'; code: number };

export interface X86MachineOptions {
  memoryMiB: number;
  cpus?: number;
  /** Create the in-kernel PIC/IOAPIC/LAPIC (default true). Without it, HLT exits to the VMM. */
  irqchip?: boolean;
  /** Create the in-kernel PIT (default: same as irqchip). */
  pit?: boolean;
  /** Bytes the guest wrote to COM1. */
  output?: (bytes: Uint8Array) => void;
  /** Stop the guest after this many exits to the VMM (default unlimited). */
  maxExits?: number;
  /** A guest access to a physical address that is neither RAM nor a device: 'error' stops the VM (default), 'ignore' reads 0. */
  unbackedMmio?: 'error' | 'ignore';
  /** Force the vCPU threading: 'sync' (one vCPU only) or 'async' (pool threads). */
  mode?: 'sync' | 'async';
}

/** A port handler the embedder (tests) can add. */
export type PortHandler = {
  in?: (port: number, size: number) => number;
  out?: (port: number, size: number, value: number) => void;
};

export class X86Machine {
  readonly kvm: Kvm;
  readonly vm: KvmVm;
  readonly mem: GuestMemory;
  readonly ports = new PortBus();
  readonly uart: Uart8250;
  readonly i8042: I8042;
  readonly vcpus: KvmVcpu[] = [];
  readonly virtio: VirtioMmioTransport[] = [];
  readonly memSize: number;
  readonly irqchip: boolean;
  readonly exitStats: Record<string, number> = {};
  private stop: X86StopReason | undefined;
  private closed = false;
  private readonly opts: X86MachineOptions;
  /** vCPUs that stopped on their own (the 'vcpu-done' port): their loop ends without stopping the VM. */
  private readonly parked = new Set<number>();

  constructor(opts: X86MachineOptions) {
    this.opts = opts;
    const cpus = opts.cpus ?? 1;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new Error(`cpus must be 1..64, got ${cpus}`);
    this.memSize = opts.memoryMiB * 1024 * 1024;
    if (!Number.isInteger(opts.memoryMiB) || opts.memoryMiB < 2 || this.memSize > X86_MEM.MMIO_HOLE) {
      throw new Error(`memory must be 2..${X86_MEM.MMIO_HOLE / 1048576} MiB, got ${opts.memoryMiB}`);
    }
    this.irqchip = opts.irqchip ?? true;
    // In async mode each vCPU holds a libuv pool thread while in KVM_RUN; keep one free for I/O.
    const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    if ((opts.mode ?? (cpus > 1 ? 'async' : 'sync')) === 'async' && cpus >= pool) {
      throw new Error(
        `${cpus} vCPUs need UV_THREADPOOL_SIZE of at least ${cpus + 1} (it is ${pool}); set it in the environment before starting typevisor`,
      );
    }
    this.kvm = new Kvm();
    try {
      this.vm = this.kvm.createVm();
    } catch (e) {
      this.kvm.close();
      throw e;
    }
    try {
      this.vm.setTssAddr(X86_MEM.TSS_ADDR);
      this.vm.setIdentityMapAddr(X86_MEM.IDENTITY_MAP);
      if (this.irqchip) this.vm.createIrqchip();
      if (opts.pit ?? this.irqchip) this.vm.createPit2();
      const ram = this.vm.addRam(0, this.memSize);
      this.mem = new GuestMemory(0, this.memSize, ram.map.buffer);
      this.uart = new Uart8250({
        output: opts.output ?? (() => {}),
        setIrq: (l) => this.setIrq(X86_MEM.COM1_IRQ, l),
      });
      this.ports.add(X86_MEM.COM1, 8, 'com1', this.uart.ports(X86_MEM.COM1));
      this.i8042 = new I8042(() => this.requestStop({ reason: 'reboot' }));
      this.ports.add(X86_MEM.I8042_DATA, 1, 'i8042-data', this.i8042.ports());
      this.ports.add(X86_MEM.I8042_CMD, 1, 'i8042-cmd', this.i8042.ports());
      this.ports.add(X86_MEM.DEBUG_EXIT, 1, 'debug-exit', {
        in: () => 0xff,
        out: (_p, _s, v) => this.requestStop({ reason: 'exit', code: v & 0xff }),
      });
      // Port 0x80 (POST codes) is written by many kernels as an I/O delay; swallow it.
      this.ports.add(0x80, 1, 'post', { in: () => 0xff, out: () => {} });
      const supported = this.kvm.supportedCpuid();
      for (let i = 0; i < cpus; i++) {
        const v = this.vm.createVcpu(i);
        this.vcpus.push(v);
        v.setCpuid(
          supported.map((e) => {
            const c = { ...e };
            if (c.function === 1) c.ebx = ((c.ebx & 0x00ffffff) | (i << 24)) >>> 0;
            if (c.function === 0xb || c.function === 0x1f) c.edx = i;
            return c;
          }),
        );
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Raise or lower an interrupt line (GSI) of the in-kernel PIC/IOAPIC. */
  setIrq(irq: number, level: boolean): void {
    if (this.irqchip && !this.closed) this.vm.irqLine(irq, level);
  }

  /** Add a virtio-mmio device in the next slot. Returns its transport, base address and IRQ. */
  addVirtio(dev: VirtioDevice): { transport: VirtioMmioTransport; base: number; irq: number } {
    const n = this.virtio.length;
    const base = X86_MEM.VIRTIO_BASE + n * X86_MEM.VIRTIO_STRIDE;
    const irq = X86_MEM.VIRTIO_IRQ0 + n;
    const t = new VirtioMmioTransport(this.mem, dev, { setIrq: (l) => this.setIrq(irq, l) });
    this.mem.addMmio(base, X86_MEM.VIRTIO_SIZE, `virtio-mmio@${base.toString(16)}`, t);
    this.virtio.push(t);
    return { transport: t, base, irq };
  }

  /** `virtio_mmio.device=` arguments announcing the virtio slots to Linux. */
  virtioCmdline(): string {
    return this.virtio
      .map(
        (_, n) =>
          `virtio_mmio.device=${X86_MEM.VIRTIO_SIZE}@0x${(X86_MEM.VIRTIO_BASE + n * X86_MEM.VIRTIO_STRIDE).toString(16)}:${X86_MEM.VIRTIO_IRQ0 + n}`,
      )
      .join(' ');
  }

  addPorts(base: number, size: number, name: string, h: PortHandler): void {
    this.ports.add(base, size, name, { in: h.in ?? (() => 0xff), out: h.out ?? (() => {}) });
  }

  /** Mark a vCPU as finished (its loop ends after the current exit; the VM goes on). */
  parkVcpu(id: number): void {
    this.parked.add(id);
  }

  requestStop(r: X86StopReason): void {
    if (!this.stop) this.stop = r;
  }

  /**
   * Stop a running VM from outside its vCPUs (a timeout, a management request): records the
   * reason and interrupts every vCPU thread in KVM_RUN. Only meaningful in async mode (in sync mode
   * the vCPU runs on this thread).
   */
  stopNow(r: X86StopReason): void {
    this.requestStop(r);
    if (this.closed) return;
    for (const v of this.vcpus) v.run.setUint8(RUN.immediateExit, 1);
    kickThreads();
  }

  /** Copy bytes into guest RAM. */
  load(addr: number, data: Uint8Array, what = 'image'): void {
    this.mem.load(addr, data, what);
  }

  /** Start vCPU `id` in real mode at physical address `entry` (CS base 0). */
  setupRealMode(id: number, entry: number): void {
    const v = this.vcpus[id];
    const s = v.getSregs();
    s.cs = { ...s.cs, base: 0n, selector: 0 };
    v.setSregs(s);
    v.setRegs({ rip: BigInt(entry), rflags: 2n, rsp: 0n });
  }

  /**
   * Start vCPU 0 in 64-bit mode with paging (identity map of the low 4 GiB with 2 MiB pages built at
   * `pageTables`, a flat GDT at `gdt`), at `entry`, with `rsi` = `bootParams` (the Linux x86_64 boot
   * protocol's 64-bit entry).
   */
  setupLongMode(id: number, entry: number, bootParams: number, pageTables = 0x9000, gdt = 0x500): void {
    const dv = this.mem.dv;
    // GDT: null, null, 0x10 code64, 0x18 data (the boot protocol's __BOOT_CS and __BOOT_DS).
    dv.setBigUint64(gdt, 0n, true);
    dv.setBigUint64(gdt + 8, 0n, true);
    dv.setBigUint64(gdt + 0x10, 0x00af9b000000ffffn, true);
    dv.setBigUint64(gdt + 0x18, 0x00cf93000000ffffn, true);
    // Page tables: PML4 -> PDPT -> 4 page directories of 2 MiB pages.
    const pml4 = pageTables;
    const pdpt = pageTables + 0x1000;
    const pd = pageTables + 0x2000;
    this.mem.u8.fill(0, pml4, pd + 0x4000);
    dv.setBigUint64(pml4, BigInt(pdpt | 3), true);
    for (let i = 0; i < 4; i++) dv.setBigUint64(pdpt + i * 8, BigInt((pd + i * 0x1000) | 3), true);
    for (let i = 0; i < 2048; i++) dv.setBigUint64(pd + i * 8, (BigInt(i) << 21n) | 0x83n, true);
    const v = this.vcpus[id];
    const s = v.getSregs();
    const code: Segment = {
      base: 0n,
      limit: 0xffffffff,
      selector: 0x10,
      type: 11,
      present: 1,
      dpl: 0,
      db: 0,
      s: 1,
      l: 1,
      g: 1,
      avl: 0,
      unusable: 0,
    };
    const data: Segment = { ...code, selector: 0x18, type: 3, l: 0, db: 1 };
    const ns: Sregs = {
      ...s,
      cs: code,
      ds: data,
      es: data,
      fs: data,
      gs: data,
      ss: data,
      gdt: { base: BigInt(gdt), limit: 0x1f },
      idt: { base: 0n, limit: 0 },
      cr0: 0x80000011n, // PG | ET | PE
      cr3: BigInt(pml4),
      cr4: 0x20n, // PAE
      efer: 0x500n, // LME | LMA
    };
    v.setSregs(ns);
    // MSRs a Linux entry expects in a defined state: SYSENTER, syscall targets, KERNEL_GS_BASE,
    // fast strings enabled in MISC_ENABLE.
    v.setMsrs([
      { index: 0x174, data: 0n }, // IA32_SYSENTER_CS
      { index: 0x175, data: 0n }, // IA32_SYSENTER_ESP
      { index: 0x176, data: 0n }, // IA32_SYSENTER_EIP
      { index: 0xc0000081, data: 0n }, // STAR
      { index: 0xc0000082, data: 0n }, // LSTAR
      { index: 0xc0000083, data: 0n }, // CSTAR
      { index: 0xc0000084, data: 0n }, // SFMASK
      { index: 0xc0000102, data: 0n }, // KERNEL_GS_BASE
      { index: 0x1a0, data: 1n }, // IA32_MISC_ENABLE: fast strings
    ]);
    v.setRegs({
      rip: BigInt(entry),
      rsi: BigInt(bootParams),
      rflags: 2n,
      rsp: 0n,
      rbp: 0n,
      rdi: 0n,
      rbx: 0n,
    });
  }

  private loopOptions(id: number) {
    return {
      ports: this.ports,
      mem: this.mem,
      maxExits: this.opts.maxExits,
      stats: this.exitStats,
      stopRequested: () => {
        if (this.stop) return this.stop as StopReason;
        if (this.parked.has(id)) return { reason: 'stopped', why: 'parked' } as StopReason;
        return undefined;
      },
    };
  }

  /** Check an MMIO access target before the device bus sees it. */
  private guardMmio(): void {
    if ((this.opts.unbackedMmio ?? 'error') !== 'error') return;
    const mem = this.mem;
    const orig = { read: mem.readPhys.bind(mem), write: mem.writePhys.bind(mem) };
    const check = (pa: number, size: number, what: string) => {
      if (!mem.isRam(pa, size) && !mem.findMmio(pa)) {
        throw new GuestError(
          `guest ${what} physical address 0x${pa.toString(16)}, which is neither RAM (0-0x${this.memSize.toString(16)}) nor a device; stopped`,
          'KVM_RUN',
        );
      }
    };
    mem.readPhys = (pa, size) => (check(pa, size, 'read from'), orig.read(pa, size));
    mem.writePhys = (pa, size, v) => (check(pa, size, 'wrote to'), orig.write(pa, size, v));
  }

  /**
   * Run all vCPUs until the VM stops. Resolves with the stop reason; rejects with a GuestError or
   * KvmError (triple fault, emulation failure, too many exits...). Does not close the machine.
   */
  async run(): Promise<X86StopReason> {
    if (this.closed) throw new Error('machine is closed');
    this.guardMmio();
    const mode = this.opts.mode ?? (this.vcpus.length === 1 ? 'sync' : 'async');
    if (mode === 'sync') {
      if (this.vcpus.length !== 1) throw new Error('sync mode runs one vCPU');
      const r = runLoopSync(this.vcpus[0], this.loopOptions(0));
      return this.stop ?? r;
    }
    const loops = this.vcpus.map((v, i) =>
      runLoopAsync(v, this.loopOptions(i)).then((r) => {
        if (r.reason === 'hlt' && !this.irqchip) this.requestStop(r);
        return r;
      }),
    );
    // The VM stops when any vCPU stops it (or fails); parked vCPUs just end their loop.
    const first = await Promise.race(
      loops.map((p, i) =>
        p.then(async (r) => {
          if (this.parked.has(i) && !this.stop) {
            // Wait for a vCPU that is not parked to finish instead.
            await new Promise<never>(() => {});
          }
          return r;
        }),
      ),
    ).catch((e: unknown) => {
      this.requestStop({ reason: 'stopped', why: String(e) });
      return e instanceof Error ? e : new Error(String(e));
    });
    // Bring every other vCPU out of KVM_RUN (it may sit in an in-kernel HLT forever): ask it not to
    // re-enter, then interrupt its thread until its loop has ended.
    const settled = loops.map(() => false);
    loops.forEach((p, i) =>
      p.then(
        () => (settled[i] = true),
        () => (settled[i] = true),
      ),
    );
    for (let tries = 0; settled.some((s) => !s); tries++) {
      for (const v of this.vcpus) v.run.setUint8(RUN.immediateExit, 1);
      kickThreads();
      await new Promise((r) => setTimeout(r, Math.min(50, 1 + tries)));
      if (tries > 2000)
        throw new GuestError('a vCPU did not leave KVM_RUN after being interrupted for 100 s', 'KVM_RUN');
    }
    for (const v of this.vcpus) v.run.setUint8(RUN.immediateExit, 0);
    if (first instanceof Error) throw first;
    return this.stop ?? first;
  }

  /** Close every fd and unmap guest memory. Idempotent; the machine is unusable afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.virtio) {
      const d = t.device as unknown as { close?: () => void };
      try {
        d.close?.();
      } catch {
        /* best effort */
      }
    }
    this.vm?.close();
    this.kvm.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether this host's KVM offers what this machine needs. */
  static hostCaps(): {
    irqchip: boolean;
    pit2: boolean;
    irqfd: boolean;
    ioeventfd: boolean;
    maxVcpus: number;
  } {
    const k = new Kvm();
    try {
      return {
        irqchip: k.checkExtension(KVM_CAP.IRQCHIP) > 0,
        pit2: k.checkExtension(KVM_CAP.PIT2) > 0,
        irqfd: k.checkExtension(KVM_CAP.IRQFD) > 0,
        ioeventfd: k.checkExtension(KVM_CAP.IOEVENTFD) > 0,
        maxVcpus: k.checkExtension(KVM_CAP.MAX_VCPUS),
      };
    } finally {
      k.close();
    }
  }
}

export interface RunX86GuestOptions {
  /** A bzImage or ELF vmlinux, as a path or bytes. */
  kernel: string | Uint8Array;
  initrd?: string | Uint8Array;
  cmdline: string;
  cpus: number;
  memoryMiB: number;
  disks: { path: string; readOnly: boolean }[];
  /** Console output (COM1). */
  output: (bytes: Uint8Array) => void;
  /** Console input source: call the returned function with bytes to type them into COM1. */
  onInput?: (feed: (bytes: Uint8Array) => void) => void;
  /** Stop the guest after this many exits to the VMM. */
  maxExits?: number;
  /** Stop the guest after this many milliseconds (reason 'stopped'). */
  timeoutMs?: number;
}

/**
 * Boot a Linux kernel on the x86-microvm machine through KVM. The console is COM1 (ttyS0); disks
 * are virtio-blk over virtio-mmio, announced on the command line. Resolves when the guest stops:
 * 'reboot' (i8042 reset or a reboot system event), 'poweroff', 'exit' (debug port).
 */
export async function runX86Guest(
  opts: RunX86GuestOptions,
): Promise<{ reason: string; code?: number; why?: string }> {
  const fs = await import('node:fs');
  const { VirtioBlk } = await import('../devices/virtio/blk.js');
  const { loadLinux } = await import('./x86-boot.js');
  const read = (f: string | Uint8Array, what: string) => {
    if (typeof f !== 'string') return f;
    try {
      return new Uint8Array(fs.readFileSync(f));
    } catch (e) {
      throw new Error(
        `${what} ${f}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  };
  const kernel = read(opts.kernel, 'kernel');
  const initrd = opts.initrd === undefined ? undefined : read(opts.initrd, 'initrd');
  const m = new X86Machine({
    memoryMiB: opts.memoryMiB,
    cpus: opts.cpus,
    output: opts.output,
    maxExits: opts.maxExits,
    unbackedMmio: 'ignore',
    mode: 'async',
  });
  try {
    const levelIrqs: number[] = [];
    for (const d of opts.disks)
      levelIrqs.push(m.addVirtio(new VirtioBlk({ path: d.path, readOnly: d.readOnly })).irq);
    opts.onInput?.((b) => m.uart.receive(b));
    const cmdline = [opts.cmdline, m.virtioCmdline()].filter((s) => s).join(' ');
    const info = loadLinux(m.mem, { kernel, initrd, cmdline, cpus: opts.cpus, levelIrqs });
    m.setupLongMode(0, info.entry, info.zeroPage);
    const timer = opts.timeoutMs
      ? setTimeout(
          () => m.stopNow({ reason: 'stopped', why: `timeout after ${opts.timeoutMs} ms` }),
          opts.timeoutMs,
        )
      : undefined;
    const r = await m.run().finally(() => clearTimeout(timer));
    if (r.reason === 'stopped') return { reason: 'stopped', why: r.why } as { reason: string };
    return r.reason === 'exit' ? { reason: 'exit', code: r.code } : { reason: r.reason };
  } finally {
    m.close();
  }
}

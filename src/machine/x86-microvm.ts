// The x86-microvm machine on KVM: RAM from 0, COM1 (8250) at 0x3f8 on IRQ 4, an i8042 at 0x60/0x64
// whose reset command reboots, virtio-mmio slots at 0xd000_0000 + n*0x1000 on IRQ 5+n, the in-kernel
// PIC/IOAPIC/LAPIC and PIT. A guest starts either in real mode at a given address (the project's
// test guests) or in 64-bit mode at a Linux kernel's entry with boot_params (x86-boot.ts).
//
// Its vCPUs run on the kvm engine (cpu/kvm/engine.ts): synchronously on this thread for one vCPU
// in 'sync' mode (test guests), else on libuv pool threads with exits handled on this thread.

import { GuestMemory } from '../memory/guest-memory.js';
import { I8042 } from '../devices/i8042.js';
import { Uart8250 } from '../devices/uart8250.js';
import type { VirtioMmioTransport, VirtioDevice } from '../devices/virtio/mmio.js';
import { GuestError, PortBus } from '../cpu/kvm/exits.js';
import { Kvm, KVM_CAP, type KvmVcpu, type KvmVm, type Segment, type Sregs } from '../cpu/kvm/kvm.js';
import { KvmEngine, type KvmStop } from '../cpu/kvm/engine.js';
import { BOARD_MAX_CPUS, type Machine } from './machine.js';
import type { X86MachineState } from './x86-state.js';
import { VirtioSlots, type VirtioSlotLayout } from './virtio-slots.js';

export const X86_MEM = {
  COM1: 0x3f8,
  COM1_IRQ: 4,
  I8042_DATA: 0x60,
  I8042_CMD: 0x64,
  /** The keyboard's interrupt line. */
  I8042_IRQ: 1,
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

export type X86StopReason = KvmStop;

/**
 * The virtio-mmio slots: 4 KiB apart, on GSIs 5-23 (the IOAPIC's pins after the legacy devices',
 * as Firecracker places them), each named on the kernel command line.
 */
export const X86_SLOTS: VirtioSlotLayout = {
  base: X86_MEM.VIRTIO_BASE,
  stride: X86_MEM.VIRTIO_STRIDE,
  size: X86_MEM.VIRTIO_SIZE,
  count: 24 - X86_MEM.VIRTIO_IRQ0,
  irq: (slot) => X86_MEM.VIRTIO_IRQ0 + slot,
  announce: 'cmdline',
};

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

export class X86Machine implements Machine {
  readonly board = 'x86-microvm';
  readonly sysrqPowerOffKey = 'b';
  readonly kvm: Kvm;
  readonly vm: KvmVm;
  readonly mem: GuestMemory;
  readonly ports = new PortBus();
  readonly uart: Uart8250;
  readonly i8042: I8042;
  readonly vcpus: KvmVcpu[] = [];
  readonly virtio: VirtioSlots;
  readonly engine: KvmEngine;
  readonly memSize: number;
  readonly irqchip: boolean;
  private closed = false;
  private readonly opts: X86MachineOptions;

  constructor(opts: X86MachineOptions) {
    this.opts = opts;
    const cpus = opts.cpus ?? 1;
    const max = BOARD_MAX_CPUS['x86-microvm'];
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > max) throw new Error(`cpus must be 1..${max}, got ${cpus}`);
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
      this.virtio = new VirtioSlots(this.mem, X86_SLOTS, (irq, level) => this.setIrq(irq, level));
      this.i8042 = new I8042(
        () => this.requestStop({ reason: 'reboot' }),
        (l) => this.setIrq(X86_MEM.I8042_IRQ, l),
      );
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
      this.engine = new KvmEngine(
        this.vcpus,
        { ports: this.ports, mem: this.mem, maxExits: opts.maxExits },
        opts.mode ?? (cpus > 1 ? 'async' : 'sync'),
        !this.irqchip,
      );
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
  addVirtio(dev: VirtioDevice, name = `virtio-${dev.deviceId}`): { transport: VirtioMmioTransport; base: number; irq: number } {
    return this.virtio.add(name, dev);
  }

  /** `virtio_mmio.device=` arguments announcing the virtio slots to Linux. */
  virtioCmdline(): string {
    return this.virtio.cmdline();
  }

  get serial(): Uart8250 {
    return this.uart;
  }

  get exitStats(): Record<string, number> {
    return this.engine.exitStats;
  }

  get exitCode(): number {
    const s = this.engine.stopped;
    return s?.reason === 'exit' ? s.code : 0;
  }

  /** Ctrl-Alt-Del through the i8042 (the guest reboots; see Machine.requestPowerOff). */
  requestPowerOff(): boolean {
    return this.i8042.pressCtrlAltDel();
  }

  addPorts(base: number, size: number, name: string, h: PortHandler): void {
    this.ports.add(base, size, name, { in: h.in ?? (() => 0xff), out: h.out ?? (() => {}) });
  }

  /** Every vCPU's, the in-kernel devices' and the VMM's devices' state (the engine held: Vm.save). */
  saveState(): X86MachineState {
    return {
      board: 'x86-microvm',
      cpus: this.vcpus.length,
      memSize: this.memSize,
      vcpus: this.vcpus.map((v) => v.saveState()),
      vm: this.vm.saveState(),
      uart: this.uart.saveState(),
      i8042: this.i8042.saveState(),
      slots: this.virtio.saveState(),
    };
  }

  /** Load a saved state into this machine, built from the same spec (guest RAM already loaded). */
  restoreState(s: X86MachineState): void {
    if (s.board !== 'x86-microvm') throw new Error(`the snapshot is of a ${String(s.board)} machine, this is x86-microvm`);
    if (s.cpus !== this.vcpus.length || s.vcpus.length !== this.vcpus.length)
      throw new Error(`the snapshot's vCPU count is ${s.cpus}, this machine's ${this.vcpus.length}`);
    if (s.memSize !== this.memSize)
      throw new Error(`the snapshot's RAM size is ${s.memSize / 1048576} MiB, this machine's ${this.memSize / 1048576} MiB`);
    this.virtio.checkState(s.slots);
    // The in-kernel irqchip, PIT and clock first, then each vCPU (its LAPIC belongs to the irqchip),
    // then the VMM's devices, whose interrupt lines then reach a restored irqchip.
    this.vm.restoreState(s.vm);
    s.vcpus.forEach((vs, i) => this.vcpus[i].restoreState(vs));
    this.uart.restoreState(s.uart as never);
    this.i8042.restoreState(s.i8042 as never);
    this.virtio.restoreState(s.slots);
  }

  /** Mark a vCPU as finished (its loop ends after the current exit; the VM goes on). */
  parkVcpu(id: number): void {
    this.engine.park(id);
  }

  requestStop(r: X86StopReason): void {
    this.engine.requestStop(r);
  }

  /**
   * Stop a running VM from outside its vCPUs (a timeout, a management request): records the
   * reason and interrupts every vCPU thread in KVM_RUN. Only meaningful in async mode (in sync mode
   * the vCPU runs on this thread).
   */
  stopNow(r: X86StopReason): void {
    if (this.closed) this.engine.requestStop(r);
    else this.engine.stop(r);
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
    return this.engine.runDetailed();
  }

  /**
   * Close every fd and unmap guest memory. Idempotent; the machine is unusable afterwards. The device
   * models in its slots belong to whoever made them (vmm/guest.ts closes them).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.engine?.detach();
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

// The arm64-virt board: QEMU `virt`-compatible memory map (see DESIGN.md), software AArch64 vCPUs
// (the tcg engine, cpu/arm64/engine.ts), GICv3, generic timer, PL011, PL031, PSCI over HVC and
// virtio-mmio slots.

import { DETERMINISTIC_EPOCH_MS } from '../host/deterministic.js';
import { GuestMemory } from '../memory/guest-memory.js';
import { Arm64Cpu, CodeCache, type Arm64CpuState } from '../cpu/arm64/cpu.js';
import { GicV3, type GicV3State } from '../devices/gicv3.js';
import {
  GenericTimer,
  TICKS_PER_MS,
  type GenericTimerState,
  type SystemCounterState,
} from '../cpu/arm64/timer.js';
import { TcgEngine } from '../cpu/arm64/engine.js';
import { ThreadedTcgEngine } from '../cpu/arm64/threads/engine.js';
import type { VcpuThreadState } from '../cpu/arm64/threads/worker.js';
import { BOARD_MAX_CPUS, type Machine, type StopReason } from './machine.js';
import { VirtioSlots, type SlotDevice, type SlotState, type VirtioSlotLayout } from './virtio-slots.js';
import { PPI_PMU } from '../cpu/arm64/pmu.js';
import { Pl011, type Pl011State } from '../devices/pl011.js';
import { Pl031 } from '../devices/pl031.js';
import { Pl061 } from '../devices/pl061.js';
import type { FieldState } from '../devices/state-fields.js';
import { handlePsci, resetToEntry, type PsciMachine, type PsciTarget } from './psci.js';
import type { MmioDevice } from '../memory/guest-memory.js';
import { collectGarbage } from '../host/gc.js';

export const VIRT = {
  GICD: 0x0800_0000,
  GICD_SIZE: 0x1_0000,
  GICR: 0x080a_0000,
  GICR_STRIDE: 0x2_0000,
  UART: 0x0900_0000,
  UART_SPI: 1,
  RTC: 0x0901_0000,
  RTC_SPI: 2,
  GPIO: 0x0903_0000,
  GPIO_SPI: 7,
  /** PL061 line wired to the gpio-keys power button (KEY_POWER), as on QEMU's virt board. */
  GPIO_POWER_LINE: 3,
  VIRTIO: 0x0a00_0000,
  VIRTIO_STRIDE: 0x200,
  VIRTIO_SPI: 16,
  VIRTIO_SLOTS: 32,
  RAM: 0x4000_0000,
  TIMER_PPI_VIRT: 27,
  TIMER_PPI_PHYS: 30,
  TIMER_PPI_SEC: 29,
  TIMER_PPI_HYP: 26,
  PMU_PPI: PPI_PMU,
} as const;

export type { StopReason } from './machine.js';

/** The board's virtio-mmio slots: SPI 16+n each, every slot in the device tree. */
export const VIRT_SLOTS: VirtioSlotLayout = {
  base: VIRT.VIRTIO,
  stride: VIRT.VIRTIO_STRIDE,
  size: VIRT.VIRTIO_STRIDE,
  count: VIRT.VIRTIO_SLOTS,
  irq: (slot) => 32 + VIRT.VIRTIO_SPI + slot,
  announce: 'device-tree',
};

export interface Arm64VirtOptions {
  cpus: number;
  memoryBytes: number;
  /** First RAM address (default 0x4000_0000). */
  ramBase?: number;
  /** Derive the generic counter from the instruction count (repeatable runs). */
  deterministic?: boolean;
  logUnimplemented?: boolean;
  /**
   * Run vCPUs 1..N-1 each on its own host thread (threads/engine.ts). Not with `deterministic` (one
   * thread runs every vCPU in turn then, so that runs repeat) nor with one vCPU.
   */
  threads?: boolean;
}

/** The parts of Arm64VirtState a snapshot reader checks are there before loading it. */
export const ARM64_VIRT_STATE_PARTS = {
  lists: ['vcpus', 'timers', 'slots'],
  objects: ['counter', 'gic', 'uart', 'rtc', 'gpio'],
} as const;

/** The machine's state in a snapshot (guest RAM is saved apart: see vmm/snapshot.ts). */
export interface Arm64VirtState {
  cpus: number;
  ramBase: number;
  ramSize: number;
  deterministic: boolean;
  counter: SystemCounterState;
  vcpus: Arm64CpuState[];
  timers: GenericTimerState[];
  gic: GicV3State;
  uart: Pl011State;
  rtc: FieldState;
  gpio: FieldState;
  /** Each occupied virtio-mmio slot, in slot order. */
  slots: SlotState[];
}

export class Arm64VirtMachine implements PsciMachine, Machine {
  readonly board = 'arm64-virt';
  readonly mem: GuestMemory;
  readonly code: CodeCache;
  readonly cpus: Arm64Cpu[];
  readonly gic: GicV3;
  readonly timers: GenericTimer[];
  readonly uart: Pl011;
  readonly rtc: Pl031;
  readonly gpio: Pl061;
  readonly virtio: VirtioSlots;
  readonly engine: TcgEngine | ThreadedTcgEngine;
  /** The engine when vCPUs run on several threads (opts.threads). */
  readonly threaded: ThreadedTcgEngine | undefined;
  readonly exitCode = 0;
  readonly sysrqPowerOffKey = 'o';
  /** Instructions retired by all vCPUs. */
  get instructions(): number {
    return this.engine.instructions;
  }
  get serial(): Pl011 {
    return this.uart;
  }
  /** The devices in virtio-mmio slots. */
  get slots(): SlotDevice[] {
    return this.virtio.devices;
  }

  constructor(readonly opts: Arm64VirtOptions) {
    const max = BOARD_MAX_CPUS['arm64-virt'];
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1 || opts.cpus > max) {
      throw new Error(`cpus: expected 1 to ${max} vCPUs, got ${opts.cpus}`);
    }
    const ramBase = opts.ramBase ?? VIRT.RAM;
    this.mem = new GuestMemory(ramBase, opts.memoryBytes);
    this.code = new CodeCache(this.mem);
    this.code.onSweep = collectGarbage;
    const hooks = {
      hvc: (cpu: Arm64Cpu) => handlePsci(this, cpu),
      smc: (cpu: Arm64Cpu) => handlePsci(this, cpu),
    };
    const threaded = !!opts.threads && opts.cpus > 1 && !opts.deterministic;
    this.cpus = [];
    // With threads, vCPUs 1..N-1 are built on their own threads (threads/worker.ts).
    for (let i = 0; i < (threaded ? 1 : opts.cpus); i++) {
      const cpu = new Arm64Cpu(i, this.mem, this.code, hooks);
      cpu.logUnimplemented = !!opts.logUnimplemented;
      cpu.off = i !== 0;
      this.cpus.push(cpu);
    }
    for (const c of this.cpus) c.peers = this.cpus;

    this.gic = new GicV3(opts.cpus);
    this.mem.addMmio(VIRT.GICD, VIRT.GICD_SIZE, 'gicv3-distributor', this.gic.distributor());
    this.mem.addMmio(
      VIRT.GICR,
      VIRT.GICR_STRIDE * opts.cpus,
      'gicv3-redistributors',
      this.gic.redistributors(),
    );
    for (const c of this.cpus) this.gic.attachCpu(c);

    this.timers = this.cpus.map(
      (c) => new GenericTimer(c, (intid, level) => this.gic.setPpi(c.id, intid, level), !!opts.deterministic),
    );
    if (threaded) {
      const gic = this.gic;
      this.threaded = new ThreadedTcgEngine(
        this.cpus[0],
        this.timers[0],
        opts.cpus,
        this.mem,
        {
          iccList: () => gic.iccList(),
          iccRead: (id, key) => gic.iccRead(id, key),
          iccWrite: (id, key, v) => gic.iccWrite(id, key, v),
          setPpi: (id, intid, level) => gic.setPpi(id, intid, level),
          ppiLevels: (id) => gic.ppiLevels(id),
          psci: (caller) => void handlePsci(this, caller),
        },
        { logUnimplemented: !!opts.logUnimplemented },
      );
      for (const r of this.threaded.remotes) gic.attachRemote(r.id, r);
      this.engine = this.threaded;
    } else this.engine = new TcgEngine(this.cpus, this.timers);
    for (const c of this.cpus) c.pmu.setIrq = (level) => this.gic.setPpi(c.id, VIRT.PMU_PPI, level);

    this.uart = new Pl011((level) => this.gic.setSpi(32 + VIRT.UART_SPI, level));
    this.mem.addMmio(VIRT.UART, 0x1000, 'pl011', this.uart);
    // Deterministic: the RTC's date follows the guest counter from a fixed start (host/deterministic.ts).
    const counter = this.timers[0].counter;
    this.rtc = new Pl031(
      (level) => this.gic.setSpi(32 + VIRT.RTC_SPI, level),
      opts.deterministic ? () => DETERMINISTIC_EPOCH_MS + counter.current() / TICKS_PER_MS : undefined,
    );
    this.mem.addMmio(VIRT.RTC, 0x1000, 'pl031', this.rtc);
    this.gpio = new Pl061((level) => this.gic.setSpi(32 + VIRT.GPIO_SPI, level));
    this.mem.addMmio(VIRT.GPIO, 0x1000, 'pl061', this.gpio);
    this.virtio = new VirtioSlots(this.mem, VIRT_SLOTS, (intid, level) => this.gic.setSpi(intid, level));
  }

  /** MPIDR affinity of a vCPU: Aff0 = index (one cluster: BOARD_MAX_CPUS). */
  affinityOf(cpu: PsciTarget): number {
    return cpu.id;
  }

  cpuOn(t: PsciTarget, entry: bigint, ctx: bigint): void {
    if (t.id < this.cpus.length) resetToEntry(this.cpus[t.id], entry, ctx);
    else this.threaded!.cpuOn(t.id, entry, ctx);
  }

  /** Every vCPU as PSCI sees it, those on other threads included. */
  get psciTargets(): readonly PsciTarget[] {
    return this.threaded ? [this.cpus[0], ...this.threaded.remotes] : this.cpus;
  }

  isRam(pa: number, len: number): boolean {
    return this.mem.isRam(pa, len);
  }

  /** Put an MMIO device model in the next free virtio-mmio slot (see VirtioSlots.addRaw). */
  addSlotDevice(name: string, dev: MmioDevice): { base: number; intid: number; slot: number } {
    const d = this.virtio.addRaw(name, dev);
    return { base: d.base, intid: d.irq, slot: d.slot };
  }

  /** Raise or lower the interrupt of a virtio slot. */
  slotIrq(slot: number, level: boolean): void {
    this.virtio.raise(slot, level);
  }

  /** Start the boot vCPU at `entry` with X0 = DTB address (Linux arm64 boot protocol). */
  boot(entry: number, dtbAddr: number): void {
    resetToEntry(this.cpus[0], BigInt(entry), BigInt(dtbAddr));
    for (let i = 1; i < this.cpus.length; i++) this.cpus[i].off = true;
  }

  /**
   * Every vCPU's and device's state, between run slices (pause the machine first). Throws, naming
   * the device, when a slot holds a device that cannot be saved.
   */
  saveState(): Arm64VirtState {
    const slots = this.virtio.saveState();
    const remote = this.remoteStates();
    return {
      cpus: this.opts.cpus,
      ramBase: this.mem.ramBase,
      ramSize: this.mem.ramSize,
      deterministic: !!this.opts.deterministic,
      counter: this.timers[0].counter.saveState(),
      vcpus: [...this.cpus.map((c) => c.saveState()), ...remote.map((r) => r.cpu)],
      timers: [...this.timers.map((t) => t.saveState()), ...remote.map((r) => r.timer)],
      gic: this.gic.saveState(),
      uart: this.uart.saveState(),
      rtc: this.rtc.saveState(),
      gpio: this.gpio.saveState(),
      slots,
    };
  }

  /**
   * Load a saved state into this machine, built from the same spec with its devices in the same
   * slots (guest RAM already loaded). Errors name the part that does not fit.
   */
  restoreState(s: Arm64VirtState): void {
    const differs = (what: string, saved: unknown, here: unknown): Error =>
      new Error(`the snapshot's ${what} is ${String(saved)}, this machine's ${String(here)}`);
    if (s.cpus !== this.opts.cpus || s.vcpus.length !== s.cpus || s.timers.length !== s.cpus)
      throw differs('vCPU count', s.cpus, this.opts.cpus);
    if (s.ramBase !== this.mem.ramBase)
      throw differs('RAM base', `0x${s.ramBase.toString(16)}`, `0x${this.mem.ramBase.toString(16)}`);
    if (s.ramSize !== this.mem.ramSize)
      throw differs('RAM size', `${s.ramSize / 1048576} MiB`, `${this.mem.ramSize / 1048576} MiB`);
    if (s.deterministic !== !!this.opts.deterministic)
      throw differs('deterministic counter setting', s.deterministic, !!this.opts.deterministic);
    this.virtio.checkState(s.slots);
    s.vcpus.forEach((cs, i) => {
      if (i < this.cpus.length) this.cpus[i].loadState(cs);
      else this.threaded!.loadState(i, { cpu: cs, timer: s.timers[i] });
    });
    this.timers.forEach((t, i) => t.loadState(s.timers[i]));
    this.timers[0].counter.loadState(s.counter);
    // The GIC drives the vCPUs' IRQ lines from the levels and latches it saved; the devices come
    // after it, so that an interrupt one raises as it is restored (vsock's TRANSPORT_RESET) gets through.
    this.gic.restoreState(s.gic);
    this.uart.restoreState(s.uart);
    this.rtc.restoreState(s.rtc);
    this.gpio.restoreState(s.gpio);
    this.virtio.restoreState(s.slots);
    this.code.invalidateAll();
  }

  /** The states of the vCPUs on other threads, as they held at the pause (vCPU 1 first). */
  private remoteStates(): VcpuThreadState[] {
    return this.threaded?.remotes.map((r) => this.threaded!.savedState(r.id)) ?? [];
  }

  /** Press and release the power button (the guest sees KEY_POWER if it runs gpio-keys). */
  pressPowerKey(): void {
    this.gpio.setInput(VIRT.GPIO_POWER_LINE, true);
    setTimeout(() => this.gpio.setInput(VIRT.GPIO_POWER_LINE, false), 100).unref();
    this.kick();
  }

  requestPowerOff(): boolean {
    this.pressPowerKey();
    return true;
  }

  systemOff(): void {
    this.stop('poweroff');
  }
  systemReset(): void {
    this.stop('reboot');
  }

  /** Nothing to release: guest RAM and the vCPUs are garbage-collected objects. */
  close(): void {}

  // The engine's controls, for the board's own users (tests, the gdb stub).
  stop(reason: StopReason): void {
    this.engine.stop(reason);
  }
  pause(): void {
    this.engine.pause();
  }
  resume(): void {
    this.engine.resume();
  }
  get isPaused(): boolean {
    return this.engine.isPaused;
  }
  kick(): void {
    this.engine.kick();
  }
  run(): Promise<StopReason> {
    return this.engine.run();
  }
  get stats(): { idleMs: number; idleSleeps: number } {
    return this.engine.stats;
  }
  get onSlice(): () => void {
    return this.engine.onSlice;
  }
  set onSlice(f: () => void) {
    this.engine.onSlice = f;
  }
  get onDebugStop(): ((cpu: Arm64Cpu) => void) | undefined {
    return this.engine.onDebugStop;
  }
  set onDebugStop(f: ((cpu: Arm64Cpu) => void) | undefined) {
    this.engine.onDebugStop = f;
  }
}

// The arm64-virt board: QEMU `virt`-compatible memory map (see DESIGN.md), software AArch64 vCPUs,
// GICv3, generic timer, PL011, PL031, PSCI over HVC and virtio-mmio slots. vCPUs share one thread
// and are scheduled round-robin in slices; the loop yields to Node's event loop regularly so that
// console input, timers and control requests are served.

import { GuestMemory } from '../memory/guest-memory.js';
import { Arm64Cpu, CodeCache, type Arm64CpuState } from '../cpu/arm64/cpu.js';
import { GicV3, type GicV3State } from '../devices/gicv3.js';
import {
  GenericTimer,
  NEAR_DEADLINE_SLICE,
  type GenericTimerState,
  type SystemCounterState,
} from '../cpu/arm64/timer.js';
import { monotonicMs } from '../host/clock.js';
import { PPI_PMU } from '../cpu/arm64/pmu.js';
import { Pl011, type Pl011State } from '../devices/pl011.js';
import { Pl031 } from '../devices/pl031.js';
import { Pl061 } from '../devices/pl061.js';
import type { FieldState } from '../devices/state-fields.js';
import { handlePsci, resetToEntry, type PsciMachine } from './psci.js';
import { EMPTY_VIRTIO_MMIO } from '../devices/virtio/mmio.js';
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

export type StopReason = 'poweroff' | 'reboot' | 'stopped';

export interface Arm64VirtOptions {
  cpus: number;
  memoryBytes: number;
  /** First RAM address (default 0x4000_0000). */
  ramBase?: number;
  /** Derive the generic counter from the instruction count (repeatable runs). */
  deterministic?: boolean;
  logUnimplemented?: boolean;
}

/**
 * The 32 virtio-mmio transports, one MMIO region (an access finds its slot by address, not by a
 * search through 32 regions). A slot with no device reads as QEMU's empty transports do.
 */
class VirtioMmioSlots implements MmioDevice {
  readonly devs: MmioDevice[] = new Array<MmioDevice>(VIRT.VIRTIO_SLOTS).fill(EMPTY_VIRTIO_MMIO);
  read(offset: number, size: number): number {
    return this.devs[Math.floor(offset / VIRT.VIRTIO_STRIDE)].read(offset % VIRT.VIRTIO_STRIDE, size);
  }
  write(offset: number, size: number, value: number): void {
    this.devs[Math.floor(offset / VIRT.VIRTIO_STRIDE)].write(offset % VIRT.VIRTIO_STRIDE, size, value);
  }
}

/** An MMIO device placed in a virtio slot, with its interrupt line. */
export interface SlotDevice {
  slot: number;
  name: string;
  dev: MmioDevice;
}

/** A device whose state a snapshot can carry (plain JSON). */
export interface SavesState {
  saveState(): unknown;
  restoreState(state: never): void;
}

const savesState = (d: unknown): d is SavesState =>
  typeof (d as SavesState).saveState === 'function' && typeof (d as SavesState).restoreState === 'function';

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
  slots: { slot: number; name: string; state: unknown }[];
}

export class Arm64VirtMachine implements PsciMachine {
  readonly mem: GuestMemory;
  readonly code: CodeCache;
  readonly cpus: Arm64Cpu[];
  readonly gic: GicV3;
  readonly timers: GenericTimer[];
  readonly uart: Pl011;
  readonly rtc: Pl031;
  readonly gpio: Pl061;
  readonly slots: SlotDevice[] = [];
  private readonly virtioSlots = new VirtioMmioSlots();
  private stopReason: StopReason | undefined;
  private paused = false;
  private wake: (() => void) | undefined;
  /** Instructions retired by all vCPUs. */
  get instructions(): number {
    return this.cpus.reduce((s, c) => s + c.icount, 0);
  }

  constructor(readonly opts: Arm64VirtOptions) {
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1 || opts.cpus > 8) {
      throw new Error(`cpus: expected 1 to 8 vCPUs, got ${opts.cpus}`);
    }
    const ramBase = opts.ramBase ?? VIRT.RAM;
    this.mem = new GuestMemory(ramBase, opts.memoryBytes);
    this.code = new CodeCache(this.mem);
    this.code.onSweep = collectGarbage;
    const hooks = {
      hvc: (cpu: Arm64Cpu) => handlePsci(this, cpu),
      smc: (cpu: Arm64Cpu) => handlePsci(this, cpu),
    };
    this.cpus = [];
    for (let i = 0; i < opts.cpus; i++) {
      const cpu = new Arm64Cpu(i, this.mem, this.code, hooks);
      cpu.logUnimplemented = !!opts.logUnimplemented;
      cpu.off = i !== 0;
      this.cpus.push(cpu);
    }
    for (const c of this.cpus) c.peers = this.cpus;

    this.gic = new GicV3(opts.cpus);
    this.mem.addMmio(VIRT.GICD, VIRT.GICD_SIZE, 'gicv3-distributor', this.gic.distributor());
    this.mem.addMmio(VIRT.GICR, VIRT.GICR_STRIDE * opts.cpus, 'gicv3-redistributors', this.gic.redistributors());
    for (const c of this.cpus) this.gic.attachCpu(c);

    this.insnsPerMs = this.cpus.map(() => 0);
    this.timers = this.cpus.map(
      (c) => new GenericTimer(c, (intid, level) => this.gic.setPpi(c.id, intid, level), !!opts.deterministic),
    );
    for (const c of this.cpus) c.pmu.setIrq = (level) => this.gic.setPpi(c.id, VIRT.PMU_PPI, level);

    this.uart = new Pl011((level) => this.gic.setSpi(32 + VIRT.UART_SPI, level));
    this.mem.addMmio(VIRT.UART, 0x1000, 'pl011', this.uart);
    this.rtc = new Pl031((level) => this.gic.setSpi(32 + VIRT.RTC_SPI, level));
    this.mem.addMmio(VIRT.RTC, 0x1000, 'pl031', this.rtc);
    this.gpio = new Pl061((level) => this.gic.setSpi(32 + VIRT.GPIO_SPI, level));
    this.mem.addMmio(VIRT.GPIO, 0x1000, 'pl061', this.gpio);
    this.mem.addMmio(VIRT.VIRTIO, VIRT.VIRTIO_STRIDE * VIRT.VIRTIO_SLOTS, 'virtio-mmio', this.virtioSlots);
  }

  /** MPIDR affinity of a vCPU: Aff0 = index (up to 8 vCPUs, one cluster). */
  affinityOf(cpu: Arm64Cpu): number {
    return cpu.id;
  }

  isRam(pa: number, len: number): boolean {
    return this.mem.isRam(pa, len);
  }

  /** Put a device in the next free virtio-mmio slot; returns the slot's base address and SPI. */
  addSlotDevice(name: string, dev: MmioDevice): { base: number; intid: number; slot: number } {
    const slot = this.slots.length;
    if (slot >= VIRT.VIRTIO_SLOTS) throw new Error(`too many virtio devices (at most ${VIRT.VIRTIO_SLOTS})`);
    const base = VIRT.VIRTIO + slot * VIRT.VIRTIO_STRIDE;
    this.virtioSlots.devs[slot] = dev;
    this.slots.push({ slot, name, dev });
    return { base, intid: 32 + VIRT.VIRTIO_SPI + slot, slot };
  }

  /** Raise or lower the interrupt of a virtio slot. */
  slotIrq(slot: number, level: boolean): void {
    this.gic.setSpi(32 + VIRT.VIRTIO_SPI + slot, level);
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
    const slots = this.slots.map(({ slot, name, dev }) => {
      if (!savesState(dev)) throw new Error(`${name} cannot be saved in a snapshot`);
      return { slot, name, state: dev.saveState() };
    });
    return {
      cpus: this.cpus.length,
      ramBase: this.mem.ramBase,
      ramSize: this.mem.ramSize,
      deterministic: !!this.opts.deterministic,
      counter: this.timers[0].counter.saveState(),
      vcpus: this.cpus.map((c) => c.saveState()),
      timers: this.timers.map((t) => t.saveState()),
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
    if (s.cpus !== this.cpus.length || s.vcpus.length !== this.cpus.length)
      throw differs('vCPU count', s.cpus, this.cpus.length);
    if (s.ramBase !== this.mem.ramBase) throw differs('RAM base', `0x${s.ramBase.toString(16)}`, `0x${this.mem.ramBase.toString(16)}`);
    if (s.ramSize !== this.mem.ramSize) throw differs('RAM size', `${s.ramSize / 1048576} MiB`, `${this.mem.ramSize / 1048576} MiB`);
    if (s.deterministic !== !!this.opts.deterministic) throw differs('deterministic counter setting', s.deterministic, !!this.opts.deterministic);
    const names = (l: { slot: number; name: string }[]): string => l.map((d) => `${d.slot}:${d.name}`).join(', ') || 'none';
    if (names(s.slots) !== names(this.slots)) throw differs('virtio devices', names(s.slots), names(this.slots));
    s.vcpus.forEach((cs, i) => this.cpus[i].loadState(cs));
    s.timers.forEach((ts, i) => this.timers[i].loadState(ts));
    this.timers[0].counter.loadState(s.counter);
    // The GIC drives the vCPUs' IRQ lines from the levels and latches it saved; the devices come
    // after it, so that an interrupt one raises as it is restored (vsock's TRANSPORT_RESET) gets through.
    this.gic.restoreState(s.gic);
    this.uart.restoreState(s.uart);
    this.rtc.restoreState(s.rtc);
    this.gpio.restoreState(s.gpio);
    s.slots.forEach((d, i) => {
      const dev = this.slots[i].dev;
      if (!savesState(dev)) throw new Error(`${d.name} cannot be restored from a snapshot`);
      try {
        (dev.restoreState as (state: unknown) => void)(d.state);
      } catch (e) {
        throw new Error(`${d.name}: ${(e as Error).message}`);
      }
    });
    this.code.invalidateAll();
  }

  /** Press and release the power button (the guest sees KEY_POWER if it runs gpio-keys). */
  pressPowerKey(): void {
    this.gpio.setInput(VIRT.GPIO_POWER_LINE, true);
    setTimeout(() => this.gpio.setInput(VIRT.GPIO_POWER_LINE, false), 100).unref();
    this.kick();
  }

  systemOff(): void {
    this.stop('poweroff');
  }
  systemReset(): void {
    this.stop('reboot');
  }

  stop(reason: StopReason): void {
    this.stopReason ??= reason;
    for (const c of this.cpus) c.off = true;
    this.kick();
  }

  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    this.kick();
  }
  get isPaused(): boolean {
    return this.paused;
  }

  /** Wake the run loop if it sleeps (input arrived, device state changed). */
  kick(): void {
    const w = this.wake;
    this.wake = undefined;
    if (w) w();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Run-loop statistics: wall time slept with every vCPU idle, and how often. */
  readonly stats = { idleMs: 0, idleSleeps: 0 };

  /** Hook called between slices (device polling by the VMM). */
  onSlice: () => void = () => {};
  /** Called when a vCPU stops for the host debugger (cpu.debug.stop says why); the machine is paused then. */
  onDebugStop: ((cpu: Arm64Cpu) => void) | undefined;

  /** Instructions per millisecond each vCPU ran at its fastest lately (slices end near timer deadlines). */
  private readonly insnsPerMs: number[];

  /**
   * Run until the guest powers off or resets, or stop() is called. Timers are polled between slices
   * (at most SLICE instructions apart; near a deadline slices shrink, see
   * GenericTimer.instructionsToDeadline: in deterministic mode a slice ends at the vCPU's next timer
   * deadline, so the interrupt comes at the exact count; in real-time mode at most NEAR_DEADLINE_SLICE
   * instructions after it); interrupts raised while a vCPU runs are taken within its run (see
   * Arm64Cpu.run).
   */
  async run(): Promise<StopReason> {
    const SLICE = 20_000;
    const yieldEveryMs = 8;
    while (this.stopReason === undefined) {
      if (this.paused) {
        await this.sleep(1000);
        continue;
      }
      const t0 = Date.now();
      let anyRan = false;
      do {
        anyRan = false;
        for (const c of this.cpus) {
          if (c.off) continue;
          // Polled right before the vCPU's turn (earlier vCPUs' slices took time): may raise its PPI
          // or end a WFE wait.
          const timer = this.timers[c.id];
          timer.poll();
          if (c.waiting && (c.irqLine || c.fiqLine)) c.waiting = false;
          if (c.waiting || c.debug.held) continue; // held: stopped by the host debugger while others run
          const t1 = monotonicMs();
          const ran = c.run(Math.min(SLICE, timer.instructionsToDeadline(this.insnsPerMs[c.id])));
          // The vCPU's peak rate: it follows a faster slice at once and decays slowly after a slower one.
          const ms = monotonicMs() - t1;
          if (ran >= NEAR_DEADLINE_SLICE && ms > 0) this.insnsPerMs[c.id] = Math.max(ran / ms, this.insnsPerMs[c.id] * 0.99);
          anyRan = true;
          if (c.debug.stop !== undefined) {
            this.paused = true;
            this.onDebugStop?.(c);
            break;
          }
        }
        this.onSlice();
      } while (anyRan && this.stopReason === undefined && !this.paused && Date.now() - t0 < yieldEveryMs);
      if (this.stopReason !== undefined) break;
      if (!anyRan) {
        // Every vCPU waits (WFI) or is off: sleep until the earliest timer deadline or a kick.
        let ms = 50;
        for (const t of this.timers) ms = Math.min(ms, t.nextDeadlineMs());
        if (ms > 0) {
          const t1 = Date.now();
          await this.sleep(Math.max(1, Math.ceil(ms)));
          this.stats.idleMs += Date.now() - t1;
          this.stats.idleSleeps++;
        }
        else await new Promise((r) => setImmediate(r));
      } else {
        await new Promise((r) => setImmediate(r));
      }
    }
    return this.stopReason ?? 'stopped';
  }
}

// The machine interface: what the VMM (vmm/) needs of a board, whichever it is (arm64-virt,
// x86-microvm) and whichever engine runs its vCPUs. Boot files and devices are placed by vmm/.

import type { GuestMemory } from '../memory/guest-memory.js';
import type { VcpuEngine } from '../cpu/engine.js';
import type { SerialConsole } from '../devices/serial.js';
import type { VirtioSlots } from './virtio-slots.js';

export type { StopReason, VcpuEngine } from '../cpu/engine.js';

/**
 * vCPUs each board takes. arm64-virt: one affinity cluster of 16 (Aff0 0-15: GICv3's SGI target
 * list is 16 bits, QEMU's virt board clusters vCPUs by 16 too), 16 GICv3 redistributor frames from
 * 0x080A_0000; x86-microvm: 64 (MP table, in-kernel LAPICs).
 */
export const BOARD_MAX_CPUS = { 'arm64-virt': 16, 'x86-microvm': 64 } as const;

/** A board's state in a snapshot: its own shape (Arm64VirtState, X86MachineState), plain JSON. */
export type MachineState = { board?: string } & object;

export interface Machine {
  readonly board: 'arm64-virt' | 'x86-microvm';
  readonly engine: VcpuEngine;
  readonly mem: GuestMemory;
  /** The device manager: virtio-mmio slots, their interrupts and how the guest learns of them. */
  readonly virtio: VirtioSlots;
  /** The console UART (PL011, 8250). */
  readonly serial: SerialConsole;
  /**
   * Ask the guest to power off the way the board can: arm64-virt presses its gpio-keys power
   * button; x86-microvm sends Ctrl-Alt-Del through the i8042 (as Firecracker's SendCtrlAltDel: the
   * guest reboots, and a VM asked to shut down stops when it does). False when the guest cannot
   * take it now.
   */
  requestPowerOff(): boolean;
  /** The exit status the guest gave when it stopped (a test device's exit port); 0 otherwise. */
  readonly exitCode: number;
  /**
   * The magic SysRq key that ends a guest ignoring requestPowerOff: 'o' (power off) where the board
   * can power off, 'b' (reboot) where it cannot (x86-microvm has no ACPI; the VM asked to shut down
   * then stops when the guest reboots).
   */
  readonly sysrqPowerOffKey: 'o' | 'b';
  /** Every vCPU's and device's state for a snapshot (plain JSON; guest RAM apart), with the engine held. */
  saveState(): MachineState;
  /** Load a saved state into this machine, built from the same spec (guest RAM already loaded). */
  restoreState(s: MachineState): void;
  /** Release host resources (KVM fds, mappings). Idempotent. */
  close(): void;
}

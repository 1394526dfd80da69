// The x86-microvm board's state in a snapshot (guest RAM is saved apart: see vmm/snapshot.ts).

import type { KvmVcpuState, KvmVmState } from '../cpu/kvm/kvm.js';
import type { SlotState } from './virtio-slots.js';

export interface X86MachineState {
  board: 'x86-microvm';
  cpus: number;
  memSize: number;
  /** Each vCPU through KVM's GET ioctls (registers, MSRs, LAPIC, events...). */
  vcpus: KvmVcpuState[];
  /** The VM's in-kernel irqchip, PIT and clock. */
  vm: KvmVmState;
  uart: unknown;
  i8042: unknown;
  slots: SlotState[];
}

/** The parts of X86MachineState a snapshot reader checks are there before loading it. */
export const X86_STATE_PARTS = {
  lists: ['vcpus', 'slots'],
  objects: ['vm', 'uart', 'i8042'],
} as const;

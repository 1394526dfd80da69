// PSCI 1.1 (Arm DEN0022) for the arm64-virt machine, reached through HVC (or SMC) like on KVM: the
// VMM implements the firmware interface. Function IDs and return codes are from the PSCI
// specification; the set of functions and the answers follow QEMU 7.2's virt board (target/arm/psci.c),
// checked side by side with a bare-metal probe under qemu-system-aarch64 -M virt: VERSION 1.1,
// FEATURES 0 for each function below and NOT_SUPPORTED for everything else (MIGRATE,
// MIGRATE_INFO_UP_CPU, SYSTEM_SUSPEND, SYSTEM_RESET2, MEM_PROTECT, SMCCC_VERSION, ...), CPU_SUSPEND
// as WFI returning SUCCESS, AFFINITY_INFO above level 0 always ON, MIGRATE_INFO_TYPE 2 (no Trusted OS).

import type { Arm64Cpu } from '../cpu/arm64/cpu.js';

export const PSCI = {
  VERSION: 0x84000000,
  CPU_SUSPEND_32: 0x84000001,
  CPU_SUSPEND_64: 0xc4000001,
  CPU_OFF: 0x84000002,
  CPU_ON_32: 0x84000003,
  CPU_ON_64: 0xc4000003,
  AFFINITY_INFO_32: 0x84000004,
  AFFINITY_INFO_64: 0xc4000004,
  MIGRATE_32: 0x84000005,
  MIGRATE_64: 0xc4000005,
  MIGRATE_INFO_TYPE: 0x84000006,
  MIGRATE_INFO_UP_CPU_32: 0x84000007,
  MIGRATE_INFO_UP_CPU_64: 0xc4000007,
  SYSTEM_OFF: 0x84000008,
  SYSTEM_RESET: 0x84000009,
  FEATURES: 0x8400000a,
  SYSTEM_SUSPEND_32: 0x8400000e,
  SYSTEM_SUSPEND_64: 0xc400000e,
  SYSTEM_RESET2_32: 0x84000012,
  SYSTEM_RESET2_64: 0xc4000012,
  MEM_PROTECT: 0x84000013,
  SMCCC_VERSION: 0x80000000,
} as const;

/** PSCI_VERSION's answer: major in bits 30:16, minor in 15:0. */
export const PSCI_VERSION_1_1 = 0x0001_0001;

export const PSCI_RET = {
  SUCCESS: 0,
  NOT_SUPPORTED: -1,
  INVALID_PARAMETERS: -2,
  ALREADY_ON: -4,
  INVALID_ADDRESS: -9,
} as const;
const { SUCCESS, NOT_SUPPORTED, INVALID_PARAMETERS, ALREADY_ON, INVALID_ADDRESS } = PSCI_RET;

/** The functions handled below: what PSCI_FEATURES reports as present (QEMU 7.2's list). */
export const PSCI_IMPLEMENTED: readonly number[] = [
  PSCI.VERSION,
  PSCI.CPU_SUSPEND_32,
  PSCI.CPU_SUSPEND_64,
  PSCI.CPU_OFF,
  PSCI.CPU_ON_32,
  PSCI.CPU_ON_64,
  PSCI.AFFINITY_INFO_32,
  PSCI.AFFINITY_INFO_64,
  PSCI.MIGRATE_INFO_TYPE,
  PSCI.SYSTEM_OFF,
  PSCI.SYSTEM_RESET,
  PSCI.FEATURES,
];

/** A vCPU as PSCI sees it: its index and whether it is off. */
export interface PsciTarget {
  readonly id: number;
  readonly off: boolean;
}

/** The caller of a PSCI function: its X registers, and its run state (CPU_SUSPEND, CPU_OFF). */
export interface PsciCaller {
  xlo(n: number): number;
  xhi(n: number): number;
  xBig(n: number): bigint;
  setX(n: number, lo: number, hi: number): void;
  waiting: boolean;
  off: boolean;
}

export interface PsciMachine {
  /** Every vCPU of the machine. */
  readonly psciTargets: readonly PsciTarget[];
  /** CPU_ON: start vCPU `t` (off now) at `entry` with X0 = `ctx` (resetToEntry). */
  cpuOn(t: PsciTarget, entry: bigint, ctx: bigint): void;
  /** Guest RAM range, to validate CPU_ON entry points. */
  isRam(pa: number, len: number): boolean;
  systemOff(): void;
  systemReset(): void;
  /** MPIDR affinity value (Aff0..Aff2 packed as in MPIDR_EL1 bits 23:0) of a vCPU. */
  affinityOf(cpu: PsciTarget): number;
}

/** Handle a PSCI call made by `cpu` (function ID in W0/X0, arguments in X1..X3). Returns false if not PSCI. */
export function handlePsci(m: PsciMachine, cpu: PsciCaller): boolean {
  const fn = cpu.xlo(0) >>> 0;
  const ret = (v: number): true => {
    cpu.setX(0, v | 0, v < 0 ? -1 : 0);
    return true;
  };
  switch (fn) {
    case PSCI.VERSION:
      return ret(PSCI_VERSION_1_1);
    case PSCI.MIGRATE_INFO_TYPE:
      return ret(2); // Trusted OS not present: migration not required
    case PSCI.FEATURES: {
      // 0 for CPU_SUSPEND too: the original power_state format, platform-coordinated mode.
      const q = cpu.xlo(1) >>> 0;
      return ret(PSCI_IMPLEMENTED.includes(q) && cpu.xhi(1) === 0 ? SUCCESS : NOT_SUPPORTED);
    }
    case PSCI.CPU_SUSPEND_32:
    case PSCI.CPU_SUSPEND_64: {
      // No power-down state: every suspend is a standby (WFI) that any interrupt ends, as on QEMU.
      // power_state bits above StateType (16) would name affinity levels, which are not supported.
      if ((cpu.xlo(1) >>> 0) & 0xfffe0000) return ret(INVALID_PARAMETERS);
      ret(SUCCESS);
      cpu.waiting = true;
      return true;
    }
    case PSCI.CPU_OFF:
      cpu.off = true;
      cpu.waiting = false;
      return true;
    case PSCI.CPU_ON_32:
    case PSCI.CPU_ON_64: {
      const is64 = fn === PSCI.CPU_ON_64;
      const target = (cpu.xlo(1) >>> 0) & 0xffffff;
      const entry = is64 ? cpu.xBig(2) : BigInt(cpu.xlo(2) >>> 0);
      const ctx = is64 ? cpu.xBig(3) : BigInt(cpu.xlo(3) >>> 0);
      const t = m.psciTargets.find((c) => m.affinityOf(c) === target);
      if (!t) return ret(INVALID_PARAMETERS);
      if (!t.off) return ret(ALREADY_ON);
      if (entry > BigInt(Number.MAX_SAFE_INTEGER) || !m.isRam(Number(entry), 4)) return ret(INVALID_ADDRESS);
      m.cpuOn(t, entry, ctx);
      return ret(SUCCESS);
    }
    case PSCI.AFFINITY_INFO_32:
    case PSCI.AFFINITY_INFO_64: {
      const target = (cpu.xlo(1) >>> 0) & 0xffffff;
      const level = cpu.xlo(2) >>> 0;
      if (level !== 0) return ret(0); // everything above level 0 is always ON (as QEMU answers)
      const t = m.psciTargets.find((c) => m.affinityOf(c) === target);
      if (!t) return ret(INVALID_PARAMETERS);
      return ret(t.off ? 1 : 0); // 0 ON, 1 OFF
    }
    case PSCI.SYSTEM_OFF:
      m.systemOff();
      return true;
    case PSCI.SYSTEM_RESET:
      m.systemReset();
      return true;
    default:
      // Other PSCI and SMCCC calls (SMCCC_VERSION included: PSCI_FEATURES says it is absent, so
      // callers assume SMCCC 1.0) are not supported.
      return ret(NOT_SUPPORTED);
  }
}

/** Put a vCPU in the state booting.rst / PSCI CPU_ON require: EL1h, MMU off, interrupts masked. */
export function resetToEntry(t: Arm64Cpu, entry: bigint, x0: bigint): void {
  for (let i = 0; i < 31; i++) t.setX(i, 0, 0);
  t.setXBig(0, x0);
  t.setElSp(1, 1);
  t.daif = 0xf;
  t.sys.SCTLR_EL1 = 0x30d00800n;
  t.mmu.onRegsChanged();
  t.setPc(entry);
  t.nextLo = t.pcLo;
  t.nextHi = t.pcHi;
  t.invalidateFetch();
  t.off = false;
  t.waiting = false;
}

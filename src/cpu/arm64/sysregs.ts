// System registers of the software CPU (EL0/EL1; no EL2/EL3). Values are BigInt: they are accessed far
// less often than general registers. MRS/MSR dispatch lives in insn/system.ts; devices that own
// registers (the GICv3 CPU interface, the generic timer) add them with define().

import type { Arm64Cpu } from './cpu.js';

/** Key of a system register from its MRS/MSR encoding fields. */
export const sysregKey = (op0: number, op1: number, crn: number, crm: number, op2: number): number =>
  (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;

/**
 * Accessors for a register owned by another module. A missing read or write makes that direction
 * UNDEF. An accessor may itself raise (e.g. cpu.raise(EC.SYSREG, ...)) to trap an access from EL0.
 */
export interface SysRegAccess {
  name: string;
  read?(cpu: Arm64Cpu): bigint;
  write?(cpu: Arm64Cpu, value: bigint): void;
}

export class SysRegs {
  SCTLR_EL1 = 0x30d00800n; // RES1 bits set, MMU and caches off
  TCR_EL1 = 0n;
  TTBR0_EL1 = 0n;
  TTBR1_EL1 = 0n;
  MAIR_EL1 = 0n;
  VBAR_EL1 = 0n;
  ELR_EL1 = 0n;
  SPSR_EL1 = 0n;
  ESR_EL1 = 0n;
  FAR_EL1 = 0n;
  PAR_EL1 = 0n;
  CONTEXTIDR_EL1 = 0n;
  TPIDR_EL0 = 0n;
  TPIDRRO_EL0 = 0n;
  TPIDR_EL1 = 0n;
  CPACR_EL1 = 0n;

  /** Registers defined by other modules (GIC CPU interface, timers), by sysregKey(). */
  readonly extra = new Map<number, SysRegAccess>();

  constructor(readonly cpu: Arm64Cpu) {}

  define(key: number, access: SysRegAccess): void {
    this.extra.set(key, access);
  }
}

// System registers of the software CPU (EL0/EL1; no EL2/EL3). Values are BigInt: they are accessed far
// less often than general registers. MRS/MSR dispatch lives in insn/system.ts.

import type { Arm64Cpu } from './cpu.js';

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

  constructor(readonly cpu: Arm64Cpu) {}
}

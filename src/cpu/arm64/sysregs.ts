// System registers of the software CPU (EL0/EL1; no EL2/EL3). Values are BigInt: they are accessed far
// less often than general registers (the hot ones, TPIDR_EL0/TPIDRRO_EL0/TPIDR_EL1, are also kept as
// int32 halves in `tp` and have dedicated MRS/MSR handlers in insn/system.ts, like NZCV, DAIF and
// SP_EL0). MRS/MSR dispatch lives in insn/system.ts: it looks up `sysRegTable` (the registers of this
// file, indexed by sysregKey) first, then `SysRegs.extra`; devices that own registers (the GICv3 CPU
// interface, the generic timer) add them with define().
//
// The core advertised is a plain ARMv8.0-A, Cortex-A53-like PE (MIDR 0x410FD034, r0p4):
// - AArch64 only at EL0 and EL1, no EL2/EL3, FP and AdvSIMD, GICv3 system registers, PMUv3 (pmu.ts), no SVE,
//   no crypto/CRC32/atomics/RDM/PAuth (ID_AA64ISAR* = 0), no v8.1+ memory features (no PAN, VHE, HAFDBS).
// - MPIDR_EL1 = (1 << 31) | Aff0 with Aff0 = cpu.id (Aff1..Aff3 = 0, U = 0, MT = 0): the same affinity
//   as the GICv3 redistributors (GICR_TYPER) and PSCI (arm64-virt affinityOf) use. One cluster, so at
//   most 256 vCPUs (the machine allows 8).
// - 40-bit PA, 16-bit ASIDs, 4 KiB granule only, little-endian only.
// - Caches as reported to software: L1 I 32 KiB 2-way, L1 D 32 KiB 4-way, L2 unified 512 KiB 16-way,
//   64-byte lines everywhere (CLIDR LoUIS = LoUU = 1, LoC = 2). CTR_EL0: PIPT I-cache, IDC = DIC = 0.
// - Debug: DebugVer v8.0, 6 breakpoints (the last 2 context-aware) and 4 watchpoints, as QEMU's
//   cortex-a57; breakpoint, watchpoint and software step exceptions and the OS lock work as debug.ts
//   describes.

import type { Arm64Cpu } from './cpu.js';
import { TP_OFF } from './wasm/layout.js';

/** Key of a system register from its MRS/MSR encoding fields (equals MRS/MSR instruction bits [20:5]). */
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

// ---- identification values ----
export const MIDR_VALUE = 0x410fd034n; // Arm, variant 0, architecture 0xF, Cortex-A53 (0xD03), revision 4
/** ID_AA64PFR0_EL1: EL0 = EL1 = 1 (AArch64 only), EL2 = EL3 = 0, FP = AdvSIMD = 0 (implemented), GIC = 1. */
export const ID_AA64PFR0_VALUE = 0x0100_0011n;
/** Breakpoints, watchpoints, and context-aware breakpoints among the breakpoints (the last ones). */
export const NUM_BRPS = 6;
export const NUM_WRPS = 4;
export const NUM_CTX_CMPS = 2;
/** ID_AA64DFR0_EL1: DebugVer = 6 (v8.0), PMUVer = 1 (PMUv3, pmu.ts), BRPs, WRPs and CTX_CMPs (each the count - 1). */
export const ID_AA64DFR0_VALUE = BigInt(
  6 | (1 << 8) | ((NUM_BRPS - 1) << 12) | ((NUM_WRPS - 1) << 20) | ((NUM_CTX_CMPS - 1) << 28),
);
/** ID_AA64MMFR0_EL1: PARange = 2 (40 bits), ASIDBits = 2 (16), TGran16 = 0 (no), TGran64 = 0xF (no), TGran4 = 0 (yes). */
export const ID_AA64MMFR0_VALUE = 0x0f00_0022n;
/** CTR_EL0: RES1 bit 31, CWG = ERG = DminLine = IminLine = 4 (64 bytes), L1Ip = PIPT, IDC = DIC = 0. */
export const CTR_VALUE = 0x8444_c004n;
/** CLIDR_EL1: Ctype1 = I+D, Ctype2 = unified, LoUIS = 1, LoC = 2, LoUU = 1. */
export const CLIDR_VALUE = 0x0a20_0023n;
/** CCSIDR_EL1 by CSSELR_EL1 (Level << 1 | InD): L1 D, L1 I, L2 (v8.0 format with WT/WB/RA/WA). */
export const CCSIDR_VALUES: Record<number, bigint> = {
  0: 0x700f_e01an, // 32 KiB, 4-way, 128 sets, 64-byte lines, WB RA WA
  1: 0x201f_e00an, // 32 KiB, 2-way, 256 sets, 64-byte lines, RA
  2: 0x703f_e07an, // 512 KiB, 16-way, 512 sets, 64-byte lines, WB RA WA
};
/** log2 of the DC ZVA block size in 4-byte words (DCZID_EL0.BS): 64 bytes. */
export const DCZID_BS = 4;
export const DC_ZVA_BYTES = 4 << DCZID_BS;

// ---- SCTLR_EL1 ----
/** Bits that are RES1 in ARMv8.0 (LSMAOE, nTLSMD, SPAN, EIS, TSCXT, EOS). */
export const SCTLR_RES1 = 0x30d0_0800;
/** Bits with a function in ARMv8.0 AArch64 (M A C SA SA0 CP15BEN ITD SED UMA I DZE UCT nTWI nTWE WXN UCI). */
export const SCTLR_RW = 0x040d_d3bf;
export const SCTLR_A = 1 << 1;
export const SCTLR_UMA = 1 << 9;
export const SCTLR_DZE = 1 << 14;
export const SCTLR_UCT = 1 << 15;
export const SCTLR_NTWI = 1 << 16;
export const SCTLR_NTWE = 1 << 18;
export const SCTLR_UCI = 1 << 26;

/** TCR_EL1 fields of ARMv8.0 (T0SZ .. TBI1, without bits 6 and 35 which are RES0). */
const TCR_RW = ((1n << 39n) - 1n) & ~(1n << 6n) & ~(1n << 35n);
/** SPSR_EL1 bits of ARMv8.0 AArch64: NZCV, SS, IL, DAIF, M[4:0]. */
const SPSR_RW = 0xf030_03dfn;
/** FPCR bits kept: AHP DN FZ RMode Stride Len (FP exception trapping is not supported: RAZ/WI). */
export const FPCR_RW = 0x07f7_0000;
/** FPSR bits of AArch64: QC and the cumulative exception flags. */
export const FPSR_RW = 0x0800_009f;
const M64 = (1n << 64n) - 1n;
const M32 = 0xffff_ffffn;

/** The plain 64-bit registers of SysRegs that a snapshot carries (CPACR_EL1 through its setter). */
const SAVED_SYSREGS = [
  'SCTLR_EL1',
  'TCR_EL1',
  'TTBR0_EL1',
  'TTBR1_EL1',
  'MAIR_EL1',
  'VBAR_EL1',
  'ELR_EL1',
  'SPSR_EL1',
  'ESR_EL1',
  'FAR_EL1',
  'PAR_EL1',
  'CONTEXTIDR_EL1',
  'AMAIR_EL1',
  'ACTLR_EL1',
  'AFSR0_EL1',
  'AFSR1_EL1',
  'CSSELR_EL1',
  'MDSCR_EL1',
  'MDCCINT_EL1',
  'OSDTRRX_EL1',
  'OSDTRTX_EL1',
  'OSECCR_EL1',
  'OSDLR_EL1',
  'DBGPRCR_EL1',
  'CPACR_EL1',
] as const;

/** SysRegs as saved in a snapshot. */
export interface SysRegsState {
  regs: Record<string, string>;
  tp: number[];
  osLock: number;
  dbgClaim: number;
  dbg: string[][];
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
  AMAIR_EL1 = 0n;
  ACTLR_EL1 = 0n;
  AFSR0_EL1 = 0n;
  AFSR1_EL1 = 0n;
  CSSELR_EL1 = 0n;
  // debug
  MDSCR_EL1 = 0n;
  MDCCINT_EL1 = 0n;
  OSDTRRX_EL1 = 0n;
  OSDTRTX_EL1 = 0n;
  OSECCR_EL1 = 0n;
  /** OS lock (OSLSR_EL1.OSLK): set at reset, cleared by software through OSLAR_EL1. */
  osLock = 1;
  OSDLR_EL1 = 0n;
  DBGPRCR_EL1 = 0n;
  dbgClaim = 0;
  readonly DBGBVR: bigint[] = new Array<bigint>(NUM_BRPS).fill(0n);
  readonly DBGBCR: bigint[] = new Array<bigint>(NUM_BRPS).fill(0n);
  readonly DBGWVR: bigint[] = new Array<bigint>(NUM_WRPS).fill(0n);
  readonly DBGWCR: bigint[] = new Array<bigint>(NUM_WRPS).fill(0n);

  /** Thread ID registers as int32 halves: TPIDR_EL0 lo/hi, TPIDRRO_EL0 lo/hi, TPIDR_EL1 lo/hi. */
  readonly tp: Int32Array;

  private cpacr = 0x30_0000n; // FPEN = 0b11, matching cpu.fpEn0/fpEn1 = true at construction

  /** Registers defined by other modules (GIC CPU interface, timers), by sysregKey(). */
  readonly extra = new Map<number, SysRegAccess>();

  constructor(readonly cpu: Arm64Cpu) {
    // In the state block, where translated code reads them (MRS TPIDR_*).
    this.tp = cpu.s32.subarray(TP_OFF >> 2, (TP_OFF >> 2) + 6);
  }

  define(key: number, access: SysRegAccess): void {
    this.extra.set(key, access);
  }

  private getTp(i: number): bigint {
    return (BigInt(this.tp[i + 1] >>> 0) << 32n) | BigInt(this.tp[i] >>> 0);
  }
  private setTp(i: number, v: bigint): void {
    this.tp[i] = Number(v & M32) | 0;
    this.tp[i + 1] = Number((v >> 32n) & M32) | 0;
  }
  get TPIDR_EL0(): bigint {
    return this.getTp(0);
  }
  set TPIDR_EL0(v: bigint) {
    this.setTp(0, v);
  }
  get TPIDRRO_EL0(): bigint {
    return this.getTp(2);
  }
  set TPIDRRO_EL0(v: bigint) {
    this.setTp(2, v);
  }
  get TPIDR_EL1(): bigint {
    return this.getTp(4);
  }
  set TPIDR_EL1(v: bigint) {
    this.setTp(4, v);
  }

  /** The registers' values for a snapshot (64-bit values as hex strings; plain JSON). */
  saveState(): SysRegsState {
    const hex = (v: bigint): string => v.toString(16);
    const regs: Record<string, string> = {};
    for (const k of SAVED_SYSREGS) regs[k] = hex(this[k]);
    return {
      regs,
      tp: Array.from(this.tp),
      osLock: this.osLock,
      dbgClaim: this.dbgClaim,
      dbg: [this.DBGBVR, this.DBGBCR, this.DBGWVR, this.DBGWCR].map((a) => a.map(hex)),
    };
  }

  /**
   * Load saved values. The caller then lets the MMU and the debug unit decode them again
   * (Arm64Cpu.loadState).
   */
  loadState(s: SysRegsState): void {
    const big = (v: unknown, what: string): bigint => {
      if (typeof v !== 'string' || !/^[0-9a-f]{1,16}$/.test(v))
        throw new Error(`system register ${what}: bad value ${String(v)}`);
      return BigInt('0x' + v);
    };
    for (const k of SAVED_SYSREGS) {
      if (!(k in s.regs)) throw new Error(`system register ${k} is missing from the snapshot`);
      this[k] = big(s.regs[k], k);
    }
    if (!Array.isArray(s.tp) || s.tp.length !== this.tp.length)
      throw new Error('thread ID registers: bad length');
    this.tp.set(s.tp.map((x) => Number(x) | 0));
    this.osLock = Number(s.osLock) & 1;
    this.dbgClaim = Number(s.dbgClaim) & 0xff;
    const arrays = [this.DBGBVR, this.DBGBCR, this.DBGWVR, this.DBGWCR];
    arrays.forEach((a, i) => {
      const src = s.dbg?.[i];
      if (!Array.isArray(src) || src.length !== a.length) throw new Error('debug registers: bad length');
      src.forEach((v, n) => (a[n] = big(v, `debug ${i}.${n}`)));
    });
  }

  /** CPACR_EL1 (TTA, FPEN); writing it updates cpu.fpEn0 / cpu.fpEn1. */
  get CPACR_EL1(): bigint {
    return this.cpacr;
  }
  set CPACR_EL1(v: bigint) {
    this.cpacr = v & 0x1030_0000n;
    const fpen = Number((v >> 20n) & 3n);
    this.cpu.fpEn1 = fpen === 1 || fpen === 3;
    this.cpu.fpEn0 = fpen === 3;
  }
}

// =====================================================================================
// The register table (registers implemented by the CPU itself)
// =====================================================================================

/** Result of an EL0 access check. */
export const EL0_OK = 0;
export const EL0_UNDEF = 1;
/** Trapped to EL1 with EC 0x18 and the ISS of the MRS/MSR. */
export const EL0_TRAP = 2;

export interface SysRegDef {
  name: string;
  /** Access from EL0: missing = UNDEF (an EL1 register). `read` tells the direction. */
  el0?: (cpu: Arm64Cpu, read: boolean) => number;
  /** Missing: the register is write-only (MRS is UNDEF). */
  read?: (cpu: Arm64Cpu) => bigint;
  /** Missing: the register is read-only (MSR is UNDEF). */
  write?: (cpu: Arm64Cpu, v: bigint) => void;
}

/**
 * Registers implemented here, by sysregKey, and the PMU's (pmu.ts adds its 28 through defineSysReg).
 * A Map: a 65536-slot array held 512 KiB of heap for 123 registers (the hot ones have handlers of
 * their own in insn/system.ts).
 */
export const sysRegTable = new Map<number, SysRegDef>();

const el0Rw = (): number => EL0_OK;
const el0Ro = (_cpu: Arm64Cpu, read: boolean): number => (read ? EL0_OK : EL0_UNDEF);

function def(op0: number, op1: number, crn: number, crm: number, op2: number, d: SysRegDef): void {
  const k = sysregKey(op0, op1, crn, crm, op2);
  if (sysRegTable.has(k)) throw new Error(`duplicate system register ${d.name}`);
  sysRegTable.set(k, d);
}
/** Add a register to the table from another CPU module (the PMU). */
export { def as defineSysReg };
/** A read-only EL1 register with a constant value. */
function constant(
  op0: number,
  op1: number,
  crn: number,
  crm: number,
  op2: number,
  name: string,
  v: bigint,
): void {
  def(op0, op1, crn, crm, op2, { name, read: () => v });
}
/** A plain EL1 read/write register kept in a SysRegs field, with the writable bits `mask`. */
function field(
  op0: number,
  op1: number,
  crn: number,
  crm: number,
  op2: number,
  name: string,
  key: keyof SysRegs,
  mask: bigint,
  after?: (cpu: Arm64Cpu) => void,
): void {
  def(op0, op1, crn, crm, op2, {
    name,
    read: (cpu) => cpu.sys[key] as bigint,
    write: (cpu, v) => {
      (cpu.sys as unknown as Record<string, bigint>)[key] = v & mask;
      if (after) after(cpu);
    },
  });
}
const mmuChanged = (cpu: Arm64Cpu): void => cpu.mmu.onRegsChanged();
const debugChanged = (cpu: Arm64Cpu): void => cpu.debug.update();
/**
 * DBGBVR/DBGWVR as addresses: bits [63:49] read as copies of bit 48 (RESS). Bits [1:0] are RES0 in
 * DBGWVR; DBGBVR keeps them, as its context-ID layout uses bits [31:0] (address matching ignores them).
 */
const debugVa = (v: bigint): bigint => BigInt.asUintN(64, BigInt.asIntN(49, v));

function buildTable(): void {
  // ---- identification (op0 = 3, op1 = 0, CRn = 0) ----
  constant(3, 0, 0, 0, 0, 'MIDR_EL1', MIDR_VALUE);
  def(3, 0, 0, 0, 5, { name: 'MPIDR_EL1', read: (cpu) => (1n << 31n) | BigInt(cpu.id & 0xff) });
  constant(3, 0, 0, 0, 6, 'REVIDR_EL1', 0n);
  for (const op2 of [1, 2, 3, 4, 7]) constant(3, 0, 0, 0, op2, `ID_RES_0_${op2}`, 0n);
  // CRm = 1..7: the AArch32 and AArch64 ID registers; every unassigned encoding is RAZ.
  const idNames: Record<string, string> = {
    '1,0': 'ID_PFR0_EL1',
    '1,1': 'ID_PFR1_EL1',
    '1,2': 'ID_DFR0_EL1',
    '1,3': 'ID_AFR0_EL1',
    '1,4': 'ID_MMFR0_EL1',
    '1,5': 'ID_MMFR1_EL1',
    '1,6': 'ID_MMFR2_EL1',
    '1,7': 'ID_MMFR3_EL1',
    '2,0': 'ID_ISAR0_EL1',
    '2,1': 'ID_ISAR1_EL1',
    '2,2': 'ID_ISAR2_EL1',
    '2,3': 'ID_ISAR3_EL1',
    '2,4': 'ID_ISAR4_EL1',
    '2,5': 'ID_ISAR5_EL1',
    '2,6': 'ID_MMFR4_EL1',
    '2,7': 'ID_ISAR6_EL1',
    '3,0': 'MVFR0_EL1',
    '3,1': 'MVFR1_EL1',
    '3,2': 'MVFR2_EL1',
    '3,4': 'ID_PFR2_EL1',
    '3,5': 'ID_DFR1_EL1',
    '3,6': 'ID_MMFR5_EL1',
    '4,0': 'ID_AA64PFR0_EL1',
    '4,1': 'ID_AA64PFR1_EL1',
    '4,4': 'ID_AA64ZFR0_EL1',
    '4,5': 'ID_AA64SMFR0_EL1',
    '5,0': 'ID_AA64DFR0_EL1',
    '5,1': 'ID_AA64DFR1_EL1',
    '5,4': 'ID_AA64AFR0_EL1',
    '5,5': 'ID_AA64AFR1_EL1',
    '6,0': 'ID_AA64ISAR0_EL1',
    '6,1': 'ID_AA64ISAR1_EL1',
    '6,2': 'ID_AA64ISAR2_EL1',
    '7,0': 'ID_AA64MMFR0_EL1',
    '7,1': 'ID_AA64MMFR1_EL1',
    '7,2': 'ID_AA64MMFR2_EL1',
  };
  const idValues: Record<string, bigint> = {
    ID_AA64PFR0_EL1: ID_AA64PFR0_VALUE,
    ID_AA64DFR0_EL1: ID_AA64DFR0_VALUE,
    ID_AA64MMFR0_EL1: ID_AA64MMFR0_VALUE,
  };
  for (let crm = 1; crm <= 7; crm++) {
    for (let op2 = 0; op2 < 8; op2++) {
      const name = idNames[`${crm},${op2}`] ?? `ID_RES_${crm}_${op2}`;
      constant(3, 0, 0, crm, op2, name, idValues[name] ?? 0n);
    }
  }
  // ---- cache identification ----
  def(3, 1, 0, 0, 0, {
    name: 'CCSIDR_EL1',
    read: (cpu) => CCSIDR_VALUES[Number(cpu.sys.CSSELR_EL1 & 0xfn)] ?? 0n,
  });
  constant(3, 1, 0, 0, 1, 'CLIDR_EL1', CLIDR_VALUE);
  constant(3, 1, 0, 0, 7, 'AIDR_EL1', 0n);
  field(3, 2, 0, 0, 0, 'CSSELR_EL1', 'CSSELR_EL1', 0xfn);
  def(3, 3, 0, 0, 1, {
    name: 'CTR_EL0',
    el0: (cpu, read) => (!read ? EL0_UNDEF : (cpu.mmu.sctlr & SCTLR_UCT) !== 0 ? EL0_OK : EL0_TRAP),
    read: () => CTR_VALUE,
  });
  def(3, 3, 0, 0, 7, {
    name: 'DCZID_EL0',
    el0: el0Ro,
    // DZP: DC ZVA prohibited (only ever at EL0, by SCTLR_EL1.DZE = 0)
    read: (cpu) => BigInt(DCZID_BS | (cpu.el === 0 && (cpu.mmu.sctlr & SCTLR_DZE) === 0 ? 16 : 0)),
  });

  // ---- system control ----
  def(3, 0, 1, 0, 0, {
    name: 'SCTLR_EL1',
    read: (cpu) => cpu.sys.SCTLR_EL1,
    write: (cpu, v) => {
      cpu.sys.SCTLR_EL1 = BigInt(((Number(v & M32) & SCTLR_RW) | SCTLR_RES1) >>> 0);
      cpu.mmu.onRegsChanged();
    },
  });
  field(3, 0, 1, 0, 1, 'ACTLR_EL1', 'ACTLR_EL1', M64);
  def(3, 0, 1, 0, 2, {
    name: 'CPACR_EL1',
    read: (cpu) => cpu.sys.CPACR_EL1,
    write: (cpu, v) => {
      cpu.sys.CPACR_EL1 = v;
    },
  });
  field(3, 0, 2, 0, 0, 'TTBR0_EL1', 'TTBR0_EL1', M64 & ~1n, mmuChanged); // CnP (v8.2) RES0
  field(3, 0, 2, 0, 1, 'TTBR1_EL1', 'TTBR1_EL1', M64 & ~1n, mmuChanged);
  field(3, 0, 2, 0, 2, 'TCR_EL1', 'TCR_EL1', TCR_RW, mmuChanged);
  field(3, 0, 10, 2, 0, 'MAIR_EL1', 'MAIR_EL1', M64, mmuChanged);
  field(3, 0, 10, 3, 0, 'AMAIR_EL1', 'AMAIR_EL1', M64);
  field(3, 0, 12, 0, 0, 'VBAR_EL1', 'VBAR_EL1', M64 & ~0x7ffn);
  constant(3, 0, 12, 0, 1, 'RVBAR_EL1', 0n); // EL1 is the highest Exception level
  def(3, 0, 12, 1, 0, {
    name: 'ISR_EL1',
    read: (cpu) => BigInt((cpu.irqLine ? 0x80 : 0) | (cpu.fiqLine ? 0x40 : 0)),
  });
  field(3, 0, 13, 0, 1, 'CONTEXTIDR_EL1', 'CONTEXTIDR_EL1', M32);

  // ---- exception state ----
  field(3, 0, 4, 0, 0, 'SPSR_EL1', 'SPSR_EL1', SPSR_RW);
  field(3, 0, 4, 0, 1, 'ELR_EL1', 'ELR_EL1', M64);
  field(3, 0, 5, 1, 0, 'AFSR0_EL1', 'AFSR0_EL1', M64);
  field(3, 0, 5, 1, 1, 'AFSR1_EL1', 'AFSR1_EL1', M64);
  field(3, 0, 5, 2, 0, 'ESR_EL1', 'ESR_EL1', M32);
  field(3, 0, 6, 0, 0, 'FAR_EL1', 'FAR_EL1', M64);
  field(3, 0, 7, 4, 0, 'PAR_EL1', 'PAR_EL1', M64);

  // ---- special-purpose registers (PSTATE views) ----
  def(3, 0, 4, 1, 0, {
    name: 'SP_EL0',
    read: (cpu) => {
      if (cpu.spsel === 0) cpu.undefinedInstruction(0);
      return cpu.getSpEl(0);
    },
    write: (cpu, v) => {
      if (cpu.spsel === 0) cpu.undefinedInstruction(0);
      cpu.setSpEl(0, v);
    },
  });
  def(3, 0, 4, 2, 0, {
    name: 'SPSel',
    read: (cpu) => BigInt(cpu.spsel),
    write: (cpu, v) => cpu.setElSp(cpu.el, Number(v & 1n)),
  });
  def(3, 0, 4, 2, 2, { name: 'CurrentEL', read: (cpu) => BigInt(cpu.el << 2) });
  def(3, 3, 4, 2, 0, {
    name: 'NZCV',
    el0: el0Rw,
    read: (cpu) => BigInt(cpu.nzcv << 28),
    write: (cpu, v) => {
      cpu.nzcv = Number((v >> 28n) & 0xfn);
    },
  });
  def(3, 3, 4, 2, 1, {
    name: 'DAIF',
    el0: (cpu) => ((cpu.mmu.sctlr & SCTLR_UMA) !== 0 ? EL0_OK : EL0_TRAP),
    read: (cpu) => BigInt(cpu.daif << 6),
    write: (cpu, v) => {
      cpu.daif = Number((v >> 6n) & 0xfn);
    },
  });
  def(3, 3, 4, 4, 0, {
    name: 'FPCR',
    el0: el0Rw,
    read: (cpu) => {
      cpu.checkFp();
      return BigInt(cpu.fpcr >>> 0);
    },
    write: (cpu, v) => {
      cpu.checkFp();
      cpu.fpcr = Number(v & M32) & FPCR_RW;
    },
  });
  def(3, 3, 4, 4, 1, {
    name: 'FPSR',
    el0: el0Rw,
    read: (cpu) => {
      cpu.checkFp();
      return BigInt(cpu.fpsr >>> 0);
    },
    write: (cpu, v) => {
      cpu.checkFp();
      cpu.fpsr = Number(v & M32) & FPSR_RW;
    },
  });

  // ---- thread ID ----
  def(3, 3, 13, 0, 2, {
    name: 'TPIDR_EL0',
    el0: el0Rw,
    read: (cpu) => cpu.sys.TPIDR_EL0,
    write: (cpu, v) => {
      cpu.sys.TPIDR_EL0 = v;
    },
  });
  def(3, 3, 13, 0, 3, {
    name: 'TPIDRRO_EL0',
    el0: el0Ro,
    read: (cpu) => cpu.sys.TPIDRRO_EL0,
    write: (cpu, v) => {
      cpu.sys.TPIDRRO_EL0 = v;
    },
  });
  def(3, 0, 13, 0, 4, {
    name: 'TPIDR_EL1',
    read: (cpu) => cpu.sys.TPIDR_EL1,
    write: (cpu, v) => {
      cpu.sys.TPIDR_EL1 = v;
    },
  });

  // ---- debug (op0 = 2); debug.ts gives the breakpoint, watchpoint, step and OS lock registers effect ----
  field(2, 0, 0, 0, 2, 'OSDTRRX_EL1', 'OSDTRRX_EL1', M32);
  field(2, 0, 0, 2, 0, 'MDCCINT_EL1', 'MDCCINT_EL1', 0x6000_0000n);
  field(2, 0, 0, 2, 2, 'MDSCR_EL1', 'MDSCR_EL1', M32, debugChanged);
  field(2, 0, 0, 3, 2, 'OSDTRTX_EL1', 'OSDTRTX_EL1', M32);
  field(2, 0, 0, 6, 2, 'OSECCR_EL1', 'OSECCR_EL1', M32);
  // DBG{B,W}{V,C}R<n>_EL1: op0 = 2, op1 = 0, CRn = 0, CRm = n, op2 = 4..7; one array each in SysRegs.
  const families: ['DBGBVR' | 'DBGBCR' | 'DBGWVR' | 'DBGWCR', number, number, (v: bigint) => bigint][] = [
    ['DBGBVR', 4, NUM_BRPS, debugVa],
    ['DBGBCR', 5, NUM_BRPS, (v) => v & 0x00ff_e1e7n], // BT LBN SSC HMC BAS PMC E
    ['DBGWVR', 6, NUM_WRPS, (v) => debugVa(v) & ~3n],
    ['DBGWCR', 7, NUM_WRPS, (v) => v & 0x1f1f_ffffn], // MASK WT LBN SSC HMC BAS LSC PAC E
  ];
  for (const [key, op2, count, mask] of families) {
    for (let n = 0; n < count; n++) {
      def(2, 0, 0, n, op2, {
        name: `${key}${n}_EL1`,
        read: (cpu) => cpu.sys[key][n],
        write: (cpu, v) => {
          cpu.sys[key][n] = mask(v);
          cpu.debug.update();
        },
      });
    }
  }
  constant(2, 0, 1, 0, 0, 'MDRAR_EL1', 0n);
  def(2, 0, 1, 0, 4, {
    name: 'OSLAR_EL1',
    write: (cpu, v) => {
      cpu.sys.osLock = Number(v & 1n);
      cpu.debug.update();
    },
  });
  // OSLM = 0b10 (OS lock implemented, bits 3 and 0), OSLK in bit 1
  def(2, 0, 1, 1, 4, { name: 'OSLSR_EL1', read: (cpu) => BigInt(8 | (cpu.sys.osLock << 1)) });
  field(2, 0, 1, 3, 4, 'OSDLR_EL1', 'OSDLR_EL1', 1n, debugChanged);
  field(2, 0, 1, 4, 4, 'DBGPRCR_EL1', 'DBGPRCR_EL1', 1n, debugChanged);
  def(2, 0, 7, 8, 6, {
    name: 'DBGCLAIMSET_EL1',
    read: () => 0xffn,
    write: (cpu, v) => {
      cpu.sys.dbgClaim |= Number(v & 0xffn);
    },
  });
  def(2, 0, 7, 9, 6, {
    name: 'DBGCLAIMCLR_EL1',
    read: (cpu) => BigInt(cpu.sys.dbgClaim),
    write: (cpu, v) => {
      cpu.sys.dbgClaim &= ~Number(v & 0xffn);
    },
  });
  constant(2, 0, 7, 14, 6, 'DBGAUTHSTATUS_EL1', 0n);
  // Debug communications channel: no external debugger; EL0 access unless MDSCR_EL1.TDCC.
  const dcc = (cpu: Arm64Cpu): number => ((cpu.sys.MDSCR_EL1 & (1n << 12n)) !== 0n ? EL0_TRAP : EL0_OK);
  def(2, 3, 0, 1, 0, {
    name: 'MDCCSR_EL0',
    el0: (cpu, read) => (read ? dcc(cpu) : EL0_UNDEF),
    read: () => 0n,
  });
  def(2, 3, 0, 4, 0, { name: 'DBGDTR_EL0', el0: dcc, read: () => 0n, write: () => {} });
  def(2, 3, 0, 5, 0, { name: 'DBGDTRRX_EL0', el0: dcc, read: () => 0n, write: () => {} }); // DBGDTRTX_EL0 on write
}

buildTable();

/** Name of the register at `key` (table or extra), for diagnostics and tests. */
export function sysRegName(sys: SysRegs, key: number): string | undefined {
  return sysRegTable.get(key)?.name ?? sys.extra.get(key)?.name;
}

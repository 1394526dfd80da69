// System instructions, exception generation and the system-register file of the software AArch64 CPU:
// SVC/HVC/SMC/BRK/UNDEF syndromes and vectors, ERET with stack-pointer banking, DAIF masking of IRQs,
// WFI/WFE/SEV, MRS/MSR round trips and EL0 traps, the ID registers of the advertised ARMv8.0 core,
// the CPACR_EL1 FP trap, DC ZVA, TLBI and AT through the real MMU.
//
// Encodings come from the cross assembler (aarch64-linux-gnu-as, -march=armv8.5-a), copied below
// with their source line. Expected values follow the Arm ARM (DDI 0487) field layouts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTiers, makeCpu, RAM_BASE, type TestCpu } from './helpers/arm64.js';
import type { Arm64Cpu, CpuHooks } from '../src/cpu/arm64/cpu.js';

// aarch64-linux-gnu-objdump -d of the listed source lines
const ENC: Record<string, number> = {
  'svc #0x1234': 0xd4024681,
  'svc #0': 0xd4000001,
  'hvc #0x5': 0xd40000a2,
  'smc #0x7': 0xd40000e3,
  'brk #0x3e8': 0xd4207d00,
  'hlt #1': 0xd4400020,
  dcps1: 0xd4a00001,
  eret: 0xd69f03e0,
  eretaa: 0xd69f0bff,
  drps: 0xd6bf03e0,
  nop: 0xd503201f,
  yield: 0xd503203f,
  wfe: 0xd503205f,
  wfi: 0xd503207f,
  sev: 0xd503209f,
  sevl: 0xd50320bf,
  'hint #34': 0xd503245f,
  paciasp: 0xd503233f,
  autiasp: 0xd50323bf,
  'bti c': 0xd503245f,
  esb: 0xd503221f,
  csdb: 0xd503229f,
  xpaclri: 0xd50320ff,
  'dsb sy': 0xd5033f9f,
  'dsb ish': 0xd5033b9f,
  'dmb ish': 0xd5033bbf,
  isb: 0xd5033fdf,
  clrex: 0xd5033f5f,
  ssbb: 0xd503309f,
  pssbb: 0xd503349f,
  sb: 0xd50330ff,
  'msr daifset, #2': 0xd50342df,
  'msr daifclr, #2': 0xd50342ff,
  'msr daifset, #0xf': 0xd5034fdf,
  'msr daifclr, #0xf': 0xd5034fff,
  'msr spsel, #0': 0xd50040bf,
  'msr spsel, #1': 0xd50041bf,
  'msr pan, #1': 0xd500419f,
  'msr uao, #1': 0xd500417f,
  'msr dit, #1': 0xd503415f,
  'msr ssbs, #1': 0xd503413f,
  cfinv: 0xd500401f,
  'mrs x1, tpidr_el0': 0xd53bd041,
  'msr tpidr_el0, x2': 0xd51bd042,
  'mrs x3, tpidrro_el0': 0xd53bd063,
  'msr tpidrro_el0, x4': 0xd51bd064,
  'mrs x5, tpidr_el1': 0xd538d085,
  'msr tpidr_el1, x6': 0xd518d086,
  'mrs x7, nzcv': 0xd53b4207,
  'msr nzcv, x8': 0xd51b4208,
  'mrs x9, daif': 0xd53b4229,
  'msr daif, x10': 0xd51b422a,
  'mrs x11, sp_el0': 0xd538410b,
  'msr sp_el0, x12': 0xd518410c,
  'mrs x13, sp_el1': 0xd53c410d,
  'msr sp_el1, x14': 0xd51c410e,
  'mrs x15, spsel': 0xd538420f,
  'msr spsel, x16': 0xd5184210,
  'mrs x17, currentel': 0xd5384251,
  'mrs x18, elr_el1': 0xd5384032,
  'msr elr_el1, x19': 0xd5184033,
  'mrs x20, spsr_el1': 0xd5384014,
  'msr spsr_el1, x21': 0xd5184015,
  'mrs x0, midr_el1': 0xd5380000,
  'mrs x0, mpidr_el1': 0xd53800a0,
  'mrs x0, revidr_el1': 0xd53800c0,
  'mrs x0, id_aa64pfr0_el1': 0xd5380400,
  'mrs x0, id_aa64pfr1_el1': 0xd5380420,
  'mrs x0, id_aa64dfr0_el1': 0xd5380500,
  'mrs x0, id_aa64dfr1_el1': 0xd5380520,
  'mrs x0, id_aa64isar0_el1': 0xd5380600,
  'mrs x0, id_aa64isar1_el1': 0xd5380620,
  'mrs x0, id_aa64isar2_el1': 0xd5380640,
  'mrs x0, id_aa64mmfr0_el1': 0xd5380700,
  'mrs x0, id_aa64mmfr1_el1': 0xd5380720,
  'mrs x0, id_aa64mmfr2_el1': 0xd5380740,
  'mrs x0, s3_0_c0_c4_4': 0xd5380480,
  'mrs x0, s3_0_c0_c4_5': 0xd53804a0,
  'mrs x0, id_pfr0_el1': 0xd5380100,
  'mrs x0, mvfr0_el1': 0xd5380300,
  'mrs x0, mvfr2_el1': 0xd5380340,
  'mrs x0, s3_0_c0_c7_7': 0xd53807e0,
  'mrs x0, ctr_el0': 0xd53b0020,
  'mrs x0, dczid_el0': 0xd53b00e0,
  'mrs x0, clidr_el1': 0xd5390020,
  'mrs x0, ccsidr_el1': 0xd5390000,
  'mrs x0, csselr_el1': 0xd53a0000,
  'msr csselr_el1, x1': 0xd51a0001,
  'mrs x0, sctlr_el1': 0xd5381000,
  'msr sctlr_el1, x1': 0xd5181001,
  'mrs x0, tcr_el1': 0xd5382040,
  'msr tcr_el1, x1': 0xd5182041,
  'mrs x0, ttbr0_el1': 0xd5382000,
  'msr ttbr0_el1, x1': 0xd5182001,
  'mrs x0, ttbr1_el1': 0xd5382020,
  'msr ttbr1_el1, x1': 0xd5182021,
  'mrs x0, mair_el1': 0xd538a200,
  'msr mair_el1, x1': 0xd518a201,
  'mrs x0, amair_el1': 0xd538a300,
  'msr amair_el1, x1': 0xd518a301,
  'mrs x0, vbar_el1': 0xd538c000,
  'msr vbar_el1, x1': 0xd518c001,
  'mrs x0, esr_el1': 0xd5385200,
  'msr esr_el1, x1': 0xd5185201,
  'mrs x0, far_el1': 0xd5386000,
  'msr far_el1, x1': 0xd5186001,
  'mrs x0, par_el1': 0xd5387400,
  'msr par_el1, x1': 0xd5187401,
  'mrs x0, afsr0_el1': 0xd5385100,
  'msr afsr0_el1, x1': 0xd5185101,
  'mrs x0, afsr1_el1': 0xd5385120,
  'msr afsr1_el1, x1': 0xd5185121,
  'mrs x0, contextidr_el1': 0xd538d020,
  'msr contextidr_el1, x1': 0xd518d021,
  'mrs x0, cpacr_el1': 0xd5381040,
  'msr cpacr_el1, x1': 0xd5181041,
  'mrs x0, actlr_el1': 0xd5381020,
  'msr actlr_el1, x1': 0xd5181021,
  'mrs x0, mdscr_el1': 0xd5300240,
  'msr mdscr_el1, x1': 0xd5100241,
  'msr oslar_el1, x1': 0xd5101081,
  'mrs x0, oslsr_el1': 0xd5301180,
  'mrs x0, osdlr_el1': 0xd5301380,
  'msr osdlr_el1, x1': 0xd5101381,
  'mrs x0, mdccint_el1': 0xd5300200,
  'msr mdccint_el1, x1': 0xd5100201,
  'mrs x0, dbgbvr0_el1': 0xd5300080,
  'msr dbgbvr1_el1, x1': 0xd5100181,
  'mrs x0, dbgbvr1_el1': 0xd5300180,
  'mrs x0, dbgbcr1_el1': 0xd53001a0,
  'msr dbgbcr1_el1, x1': 0xd51001a1,
  'msr dbgwvr1_el1, x1': 0xd51001c1,
  'mrs x0, dbgwvr1_el1': 0xd53001c0,
  'mrs x0, dbgbvr2_el1': 0xd5300280,
  'mrs x0, dbgbvr6_el1': 0xd5300680,
  'mrs x0, dbgwvr4_el1': 0xd53004c0,
  'mrs x0, fpcr': 0xd53b4400,
  'msr fpcr, x1': 0xd51b4401,
  'mrs x0, fpsr': 0xd53b4420,
  'msr fpsr, x1': 0xd51b4421,
  'mrs x0, isr_el1': 0xd538c100,
  'mrs x0, pmcr_el0': 0xd53b9c00,
  'msr pmuserenr_el0, x1': 0xd51b9e01,
  'mrs x0, pmccntr_el0': 0xd53b9d00,
  'mrs x0, s3_4_c1_c0_0': 0xd53c1000,
  'mrs x0, cntvct_el0': 0xd53be040,
  'fmov d0, x1': 0x9e670020,
  'dc zva, x2': 0xd50b7422,
  'dc civac, x2': 0xd50b7e22,
  'dc cvac, x2': 0xd50b7a22,
  'dc cvau, x2': 0xd50b7b22,
  'dc cvap, x2': 0xd50b7c22,
  'dc ivac, x2': 0xd5087622,
  'dc isw, x2': 0xd5087642,
  'dc csw, x2': 0xd5087a42,
  'dc cisw, x2': 0xd5087e42,
  'ic ivau, x2': 0xd50b7522,
  'ic iallu': 0xd508751f,
  'ic ialluis': 0xd508711f,
  'tlbi vmalle1': 0xd508871f,
  'tlbi vmalle1is': 0xd508831f,
  'tlbi vae1, x2': 0xd5088722,
  'tlbi vae1is, x2': 0xd5088322,
  'tlbi vale1, x2': 0xd50887a2,
  'tlbi vale1is, x2': 0xd50883a2,
  'tlbi vaae1, x2': 0xd5088762,
  'tlbi vaae1is, x2': 0xd5088362,
  'tlbi vaale1, x2': 0xd50887e2,
  'tlbi vaale1is, x2': 0xd50883e2,
  'tlbi aside1, x2': 0xd5088742,
  'tlbi aside1is, x2': 0xd5088342,
  'at s1e1r, x2': 0xd5087802,
  'at s1e1w, x2': 0xd5087822,
  'at s1e0r, x2': 0xd5087842,
  'at s1e0w, x2': 0xd5087862,
  'at s12e1r, x2': 0xd50c7882,
  'tlbi vmalls12e1': 0xd50c87df,
  'sys #0, c7, c5, #0': 0xd508751f,
  'sysl x0, #0, c7, c5, #0': 0xd5287500,
  'mov x0, #0': 0xd2800000,
  'ldr x1, [x2]': 0xf9400041,
  'ldxr x3, [x2]': 0xc85f7c43,
  'b .-8': 0x17fffffe,
  'b .-4': 0x17ffffff,
  'ldr w1, [x2]': 0xb9400041,
  'at s1e1w, x3': 0xd5087823,
  'mrs x2, oslsr_el1': 0xd5301182,
  'mrs x0, elr_el1': 0xd5384020,
  'mrs x0, nzcv': 0xd53b4200,
  'mrs x0, s3_0_c0_c0_1': 0xd5380020,
  'mrs x0, sp_el0': 0xd5384100,
  'mrs x0, spsr_el1': 0xd5384000,
  'mrs x0, tpidr_el0': 0xd53bd040,
  'mrs x0, tpidr_el1': 0xd538d080,
  'mrs x0, tpidrro_el0': 0xd53bd060,
  'msr daifset, #1': 0xd50341df,
  'msr elr_el1, x1': 0xd5184021,
  'msr nzcv, x1': 0xd51b4201,
  'msr sp_el0, x1': 0xd5184101,
  'msr spsr_el1, x1': 0xd5184001,
  'msr tpidr_el0, x1': 0xd51bd041,
  'msr tpidr_el1, x1': 0xd518d081,
  'msr tpidrro_el0, x1': 0xd51bd061,
  'tlbi vae1, x3': 0xd5088723,
};
const A = (s: string): number => {
  const w = ENC[s];
  if (w === undefined) throw new Error(`no encoding for '${s}'`);
  return w;
};

const VBAR = RAM_BASE + 0x10000;
const M64 = (1n << 64n) - 1n;
const EC_UNKNOWN = 0x00;
const EC_WFX = 0x01;
const EC_FP = 0x07;
const EC_SVC = 0x15;
const EC_SYSREG = 0x18;
const EC_DABT_CUR = 0x25;
const EC_BRK = 0x3c;
const esr = (ec: number, iss: number): bigint => BigInt(((ec << 26) | (1 << 25) | iss) >>> 0);
/** ISS of a trapped MRS/MSR/SYS: Op0 [21:20], Op2 [19:17], Op1 [16:14], CRn [13:10], Rt [9:5], CRm [4:1], Dir [0]. */
const sysIss = (
  op0: number,
  op1: number,
  crn: number,
  crm: number,
  op2: number,
  rt: number,
  read: boolean,
): number => (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | (read ? 1 : 0);

/** A CPU at EL1h with `asm` at RAM_BASE, VBAR_EL1 set. */
function setup(asm: (string | number)[], hooks: Partial<CpuHooks> = {}): TestCpu {
  const t = makeCpu(
    asm.map((s) => (typeof s === 'number' ? s : A(s))),
    { hooks },
  );
  t.cpu.sys.VBAR_EL1 = BigInt(VBAR);
  // NOPs in the vector table, so that a step that enters an exception and goes on is harmless
  for (let o = 0; o < 0x800; o += 4) t.mem.dv.setUint32(VBAR - RAM_BASE + o, 0xd503201f, true);
  return t;
}
/** Move to EL0 (SP_EL0 active) at the current PC. */
function toEl0(cpu: Arm64Cpu): void {
  cpu.setElSp(0, 0);
}
function x(cpu: Arm64Cpu, n: number): bigint {
  if (n === 31) return (BigInt(cpu.r[63] >>> 0) << 32n) | BigInt(cpu.r[62] >>> 0); // the active SP
  return cpu.xBig(n);
}
/** Run one instruction (or its exception). */
function step1(t: TestCpu): void {
  assert.equal(t.step(1), 1);
}
function assertUndef(t: TestCpu, at: number, msg: string): void {
  assert.equal(t.cpu.sys.ESR_EL1, esr(EC_UNKNOWN, 0), `${msg}: ESR = UNDEF`);
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(at), `${msg}: ELR = the instruction`);
}
/** Execute the single instruction `s` at EL1 (or EL0) and return whether it raised an exception. */
function run1(
  s: string | number,
  el = 1,
  prep?: (cpu: Arm64Cpu) => void,
): { t: TestCpu; took: boolean; vector: number } {
  const t = setup([s]);
  prep?.(t.cpu);
  if (el === 0) toEl0(t.cpu);
  // where a synchronous exception from this state goes
  const vector = VBAR + (t.cpu.el === 0 ? 0x400 : t.cpu.spsel === 1 ? 0x200 : 0);
  t.cpu.sys.ESR_EL1 = 0xdeadn;
  step1(t);
  const took = t.cpu.pcLo !== RAM_BASE + 4;
  return { t, took, vector };
}
function expectUndef(s: string | number, el = 1, prep?: (cpu: Arm64Cpu) => void): void {
  const { t, took, vector } = run1(s, el, prep);
  assert.ok(took, `${typeof s === 'string' ? s : s.toString(16)} at EL${el} must be UNDEF`);
  assertUndef(t, RAM_BASE, typeof s === 'string' ? s : s.toString(16));
  assert.equal(t.cpu.pcLo, vector);
}

// =====================================================================================
// Exception generation and return
// =====================================================================================

test('SVC from EL0: lower-EL vector, ESR, ELR = next instruction, SPSR, SP banking, ERET back', () => {
  const t = setup(['nop', 'svc #0x1234', 'nop']);
  const { cpu } = t;
  // EL1 stack and EL0 stack
  cpu.setSpEl(1, 0x4100_0000n);
  cpu.setSpEl(0, 0x1234_5678_9abc_def0n);
  toEl0(cpu);
  cpu.daif = 0;
  cpu.nzcv = 0b1010;
  step1(t); // nop
  step1(t); // svc
  assert.equal(cpu.el, 1);
  assert.equal(cpu.spsel, 1);
  assert.equal(cpu.pcLo, VBAR + 0x400, 'synchronous, lower EL using AArch64');
  assert.equal(cpu.pcHi, 0);
  assert.equal(cpu.sys.ESR_EL1, esr(EC_SVC, 0x1234));
  assert.equal(cpu.sys.ELR_EL1, BigInt(RAM_BASE + 8), 'preferred return: the next instruction');
  assert.equal(cpu.sys.SPSR_EL1, 0xa000_0000n, 'NZCV = 1010, DAIF clear, M = EL0t');
  assert.equal(cpu.daif, 0xf, 'all masked on entry');
  assert.equal(x(cpu, 31), 0x4100_0000n, 'SP is SP_EL1');
  // The handler sees SP_EL0 through MRS and returns with ERET
  cpu.mem.dv.setUint32(VBAR + 0x400 - RAM_BASE, A('mrs x11, sp_el0'), true);
  cpu.mem.dv.setUint32(VBAR + 0x404 - RAM_BASE, A('eret'), true);
  step1(t);
  assert.equal(x(cpu, 11), 0x1234_5678_9abc_def0n);
  cpu.r[62] = 0x4100_0010; // the handler moved its stack
  step1(t); // eret
  assert.equal(cpu.el, 0);
  assert.equal(cpu.pcLo, RAM_BASE + 8);
  assert.equal(cpu.nzcv, 0b1010);
  assert.equal(cpu.daif, 0);
  assert.equal(x(cpu, 31), 0x1234_5678_9abc_def0n, 'SP_EL0 is back');
  assert.equal(cpu.getSpEl(1), 0x4100_0010n, 'SP_EL1 was saved');
});

test('SVC from EL1: current-EL vectors 0x200 (SPx) and 0x000 (SP0); SPSR M field', () => {
  const t = setup(['svc #0']);
  t.cpu.daif = 0b0101;
  step1(t);
  assert.equal(t.cpu.pcLo, VBAR + 0x200);
  assert.equal(t.cpu.sys.ESR_EL1, esr(EC_SVC, 0));
  assert.equal(t.cpu.sys.SPSR_EL1, BigInt((0b0101 << 6) | 0b0101), 'DAIF, M = EL1h');
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(RAM_BASE + 4));

  const u = setup(['msr spsel, #0', 'svc #0']);
  u.cpu.setSpEl(1, 0x4080_0000n);
  u.cpu.setSpEl(0, 0x4070_0000n);
  step1(u);
  assert.equal(u.cpu.spsel, 0);
  assert.equal(x(u.cpu, 31), 0x4070_0000n, 'SP is SP_EL0 with SPSel = 0');
  step1(u);
  assert.equal(u.cpu.pcLo, VBAR + 0x000, 'current EL with SP0');
  assert.equal(u.cpu.sys.SPSR_EL1 & 0x1fn, 0b0100n, 'M = EL1t');
  assert.equal(x(u.cpu, 31), 0x4080_0000n, 'the handler runs on SP_EL1');
});

test('ERET to EL1 and to EL0 with the SPSR fields', () => {
  const t = setup(['eret']);
  const { cpu } = t;
  cpu.sys.ELR_EL1 = BigInt(RAM_BASE + 0x100);
  cpu.sys.SPSR_EL1 = BigInt((0b0110 << 28) | (0b1010 << 6) | 0b0100); // EL1t
  step1(t);
  assert.equal(cpu.el, 1);
  assert.equal(cpu.spsel, 0);
  assert.equal(cpu.pcLo, RAM_BASE + 0x100);
  assert.equal(cpu.nzcv, 0b0110);
  assert.equal(cpu.daif, 0b1010);
  // ERET at EL0 is UNDEF
  const u = setup(['eret']);
  toEl0(u.cpu);
  step1(u);
  assertUndef(u, RAM_BASE, 'eret at EL0');
  // ERETAA/ERETAB (pointer authentication) and DRPS are UNDEF
  expectUndef('eretaa');
  expectUndef('drps');
});

test('BRK, HLT, DCPS: syndromes', () => {
  const t = setup(['nop', 'brk #0x3e8']);
  step1(t);
  step1(t);
  assert.equal(t.cpu.sys.ESR_EL1, esr(EC_BRK, 0x3e8));
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(RAM_BASE + 4), 'preferred return: the BRK itself');
  assert.equal(t.cpu.pcLo, VBAR + 0x200);
  const u = setup(['brk #0x3e8']);
  toEl0(u.cpu);
  step1(u);
  assert.equal(u.cpu.pcLo, VBAR + 0x400);
  assert.equal(u.cpu.sys.ESR_EL1, esr(EC_BRK, 0x3e8));
  expectUndef('hlt #1');
  expectUndef('dcps1');
});

test('HVC and SMC: handled by the VMM hook from EL1, UNDEF otherwise', () => {
  const calls: [string, number][] = [];
  const t = setup(['hvc #0x5', 'smc #0x7', 'nop'], {
    hvc: (cpu, imm) => {
      calls.push(['hvc', imm]);
      cpu.setX(0, 42, 0);
      return true;
    },
    smc: (_cpu, imm) => {
      calls.push(['smc', imm]);
      return true;
    },
  });
  step1(t);
  assert.equal(t.cpu.pcLo, RAM_BASE + 4, 'continues after the HVC');
  assert.equal(x(t.cpu, 0), 42n);
  step1(t);
  assert.equal(t.cpu.pcLo, RAM_BASE + 8, 'continues after the SMC');
  assert.deepEqual(calls, [
    ['hvc', 5],
    ['smc', 7],
  ]);
  // A hook that declines: UNDEF, preferred return = the HVC
  for (const s of ['hvc #0x5', 'smc #0x7']) {
    const u = setup([s]);
    step1(u);
    assertUndef(u, RAM_BASE, s);
    assert.equal(u.cpu.pcLo, VBAR + 0x200);
  }
  // At EL0: UNDEF without asking the VMM
  let asked = false;
  const v = setup(['hvc #0x5'], {
    hvc: () => {
      asked = true;
      return true;
    },
  });
  toEl0(v.cpu);
  step1(v);
  assert.equal(asked, false);
  assertUndef(v, RAM_BASE, 'hvc at EL0');
  assert.equal(v.cpu.pcLo, VBAR + 0x400);
});

test('UNDEF syndrome and vectors for unallocated system encodings', () => {
  for (const s of [
    'msr pan, #1',
    'msr uao, #1',
    'msr dit, #1',
    'msr ssbs, #1',
    'cfinv',
    'sb',
    'mrs x13, sp_el1',
    'msr sp_el1, x14',
    'mrs x0, s3_4_c1_c0_0',
    'at s12e1r, x2',
    'tlbi vmalls12e1',
    'sysl x0, #0, c7, c5, #0',
    'mrs x0, dbgbvr6_el1', // 6 breakpoints (0..5)
    'mrs x0, dbgwvr4_el1', // 4 watchpoints (0..3)
  ]) {
    if (ENC[s] === undefined) continue;
    expectUndef(s);
  }
  // MRS of a write-only register and MSR of a read-only one
  expectUndef((A('msr oslar_el1, x1') | (1 << 21)) >>> 0); // MRS X1, OSLAR_EL1
  expectUndef(A('mrs x0, midr_el1') & ~(1 << 21)); // MSR MIDR_EL1, X0
  expectUndef(A('mrs x0, ctr_el0') & ~(1 << 21)); // MSR CTR_EL0, X0
});

// =====================================================================================
// Interrupt masking and WFI / WFE
// =====================================================================================

test('IRQ masking through DAIFSet/DAIFClr and MSR DAIF', () => {
  const t = setup(['msr daifset, #2', 'nop', 'msr daifclr, #2', 'nop']);
  const { cpu } = t;
  cpu.daif = 0;
  step1(t);
  assert.equal(cpu.daif, 0b0010);
  cpu.irqLine = true;
  step1(t); // nop: the IRQ is masked
  assert.equal(cpu.pcLo, RAM_BASE + 8);
  step1(t); // daifclr
  assert.equal(cpu.daif, 0);
  assert.equal(cpu.pcLo, RAM_BASE + 12);
  step1(t); // the IRQ is taken before the next instruction (which then executes at the vector)
  assert.equal(cpu.sys.ELR_EL1, BigInt(RAM_BASE + 12), 'IRQ: return to the unexecuted instruction');
  assert.equal(cpu.sys.SPSR_EL1, 0b0101n, 'DAIF were clear, EL1h');
  assert.equal(cpu.daif, 0xf);
  assert.equal(cpu.pcLo, VBAR + 0x280 + 4, 'IRQ, current EL with SPx (then one instruction ran)');

  const u = setup(['msr daif, x10', 'mrs x9, daif', 'msr daifset, #0xf', 'msr daifclr, #0xf']);
  u.cpu.setXBig(10, 0xffff_ffff_ffff_fe7fn); // D and I (bits 9, 7) set, A and F (8, 6) clear... bits 9..6 = 1001
  step1(u);
  assert.equal(u.cpu.daif, 0b1001);
  step1(u);
  assert.equal(x(u.cpu, 9), 0b1001n << 6n);
  step1(u);
  assert.equal(u.cpu.daif, 0xf);
  step1(u);
  assert.equal(u.cpu.daif, 0);
});

test('DAIF at EL0: trapped (EC 0x18) unless SCTLR_EL1.UMA', () => {
  let { t } = run1('msr daifset, #2', 0);
  assert.equal(t.cpu.sys.ESR_EL1, esr(EC_SYSREG, sysIss(0, 3, 4, 2, 6, 31, false)));
  assert.equal(t.cpu.pcLo, VBAR + 0x400);
  ({ t } = run1('mrs x9, daif', 0));
  assert.equal(t.cpu.sys.ESR_EL1, esr(EC_SYSREG, sysIss(3, 3, 4, 2, 1, 9, true)));
  ({ t } = run1('msr daif, x10', 0));
  assert.equal(t.cpu.sys.ESR_EL1, esr(EC_SYSREG, sysIss(3, 3, 4, 2, 1, 10, false)));
  // With UMA = 1 EL0 may use them
  const u = setup(['msr sctlr_el1, x1', 'msr daifclr, #0xf', 'mrs x9, daif', 'msr daifset, #1']);
  u.cpu.setXBig(1, 0x30d0_0800n | (1n << 9n));
  step1(u);
  toEl0(u.cpu);
  step1(u);
  assert.equal(u.cpu.daif, 0);
  step1(u);
  assert.equal(x(u.cpu, 9), 0n);
  step1(u);
  assert.equal(u.cpu.daif, 1);
  assert.equal(u.cpu.el, 0);
});

test('WFI: continues with an interrupt pending (even masked), otherwise waits', () => {
  const t = setup(['wfi', 'nop']);
  assert.equal(t.step(10), 1, 'stops after the WFI');
  assert.equal(t.cpu.waiting, true);
  assert.equal(t.cpu.pcLo, RAM_BASE + 4, 'resumes after the WFI');
  const u = setup(['wfi', 'nop']);
  u.cpu.irqLine = true; // masked (DAIF = 0xf at reset) but pending
  assert.equal(u.step(2), 2);
  assert.equal(u.cpu.waiting, false);
  // WFI at EL0 with SCTLR_EL1.nTWI = 0 traps (EC 0x01, CV = 1, COND = 0xE, TI = 0)
  const { t: v } = run1('wfi', 0);
  assert.equal(v.cpu.sys.ESR_EL1, esr(EC_WFX, (1 << 24) | (0xe << 20) | 0));
  assert.equal(v.cpu.sys.ELR_EL1, BigInt(RAM_BASE));
  const { t: w } = run1('wfe', 0);
  assert.equal(w.cpu.sys.ESR_EL1, esr(EC_WFX, (1 << 24) | (0xe << 20) | 1));
  // With nTWI = 1 it waits
  const { t: y, took } = run1('wfi', 0, (cpu) => {
    cpu.sys.SCTLR_EL1 = 0x30d0_0800n | (1n << 16n);
    cpu.mmu.onRegsChanged();
  });
  assert.equal(took, false);
  assert.equal(y.cpu.waiting, true);
});

test('WFE, SEV and SEVL: the event register, and SEV does not wake a CPU in WFI', () => {
  const a = setup(['sevl', 'wfe', 'wfe', 'nop']);
  step1(a);
  assert.equal(a.cpu.eventRegister, true);
  step1(a);
  assert.equal(a.cpu.eventRegister, false, 'WFE consumed the event');
  assert.equal(a.cpu.waiting, false);
  step1(a);
  assert.equal(a.cpu.waiting, true, 'no event: WFE waits');

  // Three CPUs: b waits in WFE, c waits in WFI, d executes SEV
  const b = setup(['wfe', 'nop']);
  const c = setup(['wfi', 'nop']);
  const d = setup(['sev', 'nop']);
  const peers = [b.cpu, c.cpu, d.cpu];
  for (const p of peers) p.peers = peers;
  b.step(5);
  c.step(5);
  assert.equal(b.cpu.waiting, true);
  assert.equal(c.cpu.waiting, true);
  step1(d);
  assert.equal(b.cpu.waiting, false, 'the WFE completes');
  assert.equal(c.cpu.waiting, true, 'the WFI does not');
  assert.equal(c.cpu.eventRegister, true, 'but its event register is set');
  assert.equal(d.cpu.eventRegister, true, 'SEV signals the issuing PE too');
  assert.equal(b.cpu.pcLo, RAM_BASE + 4);
});

test('a WFE spinning on an armed monitor, or a YIELD, gives up the slice when other vCPUs share the thread', () => {
  // The LDXR; WFE loop of Linux's spinlocks and smp_cond_load (the WFE completes at once: the
  // monitor is armed), and the YIELD of cpu_relax() loops. Alone on its thread the vCPU spins on;
  // sharing it (round-robin), it yields so that the vCPU it waits for can run: run() returns after
  // the WFE or YIELD, not at the end of the budget.
  const loops: [string, string[]][] = [
    ['WFE', ['ldxr x3, [x2]', 'wfe', 'b .-8']],
    ['YIELD', ['yield', 'b .-4']],
  ];
  for (const [what, asm] of loops) {
    for (const jit of [false, true]) {
      const spin = (shared: boolean): TestCpu => {
        const t = setup(asm);
        compareTiers(t.cpu, jit);
        t.cpu.setXBig(2, BigInt(RAM_BASE + 0x1000));
        if (shared) t.cpu.peers = [t.cpu, setup(['nop']).cpu];
        return t;
      };
      const alone = spin(false);
      for (let i = 0; i < 5; i++)
        assert.equal(alone.step(3000), 3000, `${what} alone, jit ${jit}: spins the whole budget`);
      assert.equal(alone.cpu.waiting, false);
      const shared = spin(true);
      for (let i = 0; i < 5; i++) {
        const n = shared.step(3000);
        assert.ok(
          n >= 1 && n <= 3,
          `${what} shared, jit ${jit}, run ${i}: ${n} instructions, then it yields`,
        );
        assert.equal(shared.cpu.waiting, false, 'it does not wait: the next slice goes on spinning');
      }
      if (jit) assert.ok(shared.cpu.code.jitStats.entries > 0, `${what}: the loop ran translated`);
    }
  }
});

// =====================================================================================
// MRS / MSR
// =====================================================================================

/** Write `v` with MSR then read it back with MRS at EL1; returns the value read. */
function roundTrip(name: string, v: bigint, prep?: (cpu: Arm64Cpu) => void): bigint {
  const t = setup([`msr ${name}, x1`, `mrs x0, ${name}`]);
  prep?.(t.cpu);
  t.cpu.setXBig(1, v & M64);
  t.cpu.setXBig(0, 0x5555n);
  step1(t);
  assert.equal(t.cpu.pcLo, RAM_BASE + 4, `msr ${name} executes`);
  step1(t);
  assert.equal(t.cpu.pcLo, RAM_BASE + 8, `mrs ${name} executes`);
  return x(t.cpu, 0);
}

test('MRS/MSR round trips with RES0/RES1 bits', () => {
  const all = 0xffff_ffff_ffff_ffffn;
  const pat = 0x0123_4567_89ab_cdefn;
  for (const name of ['ttbr0_el1', 'ttbr1_el1']) assert.equal(roundTrip(name, pat), pat & ~1n, name);
  for (const name of [
    'mair_el1',
    'amair_el1',
    'far_el1',
    'par_el1',
    'elr_el1',
    'afsr0_el1',
    'afsr1_el1',
    'actlr_el1',
  ]) {
    assert.equal(roundTrip(name, pat), pat, name);
  }
  assert.equal(roundTrip('vbar_el1', all), all & ~0x7ffn, 'VBAR_EL1 bits 10:0 are RES0');
  assert.equal(roundTrip('esr_el1', all), 0xffff_ffffn, 'ESR_EL1 bits 63:32 are RES0 in v8.0');
  assert.equal(roundTrip('contextidr_el1', all), 0xffff_ffffn);
  assert.equal(roundTrip('spsr_el1', all), 0xf030_03dfn, 'SPSR_EL1: NZCV SS IL DAIF M[4:0]');
  assert.equal(roundTrip('csselr_el1', all), 0xfn, 'CSSELR_EL1: Level, InD');
  assert.equal(roundTrip('mdscr_el1', 0x1000n), 0x1000n);
  assert.equal(roundTrip('osdlr_el1', all), 1n);
  // DBGBVR/DBGWVR: bits [63:49] are RESS (copies of bit 48, here 1); DBGWVR bits [1:0] are RES0
  // (DBGBVR keeps them: its context-ID layout uses bits [31:0])
  assert.equal(roundTrip('dbgbvr1_el1', pat), 0xffff_4567_89ab_cdefn);
  assert.equal(roundTrip('dbgwvr1_el1', pat), 0xffff_4567_89ab_cdecn);
  assert.equal(roundTrip('dbgwvr1_el1', 0x0000_8000_0000_1234n), 0x0000_8000_0000_1234n, 'bit 48 clear');
  // SCTLR_EL1: the RES1 bits read as one, RES0 bits (e.g. 6, 10, 21, 24, 25, 27, 30, 31, 63:32) as zero
  const s = roundTrip('sctlr_el1', 0n);
  assert.equal(s, 0x30d0_0800n, 'RES1: 29 28 23 22 20 11');
  const s2 = roundTrip('sctlr_el1', all & ~1n); // (M stays 0: no translation tables here)
  for (const b of [0, 6, 10, 17, 21, 24, 25, 27, 30, 31, 32, 40, 63])
    assert.equal((s2 >> BigInt(b)) & 1n, 0n, `bit ${b}`);
  for (const b of [1, 2, 3, 4, 12, 14, 15, 16, 18, 19, 26])
    assert.equal((s2 >> BigInt(b)) & 1n, 1n, `bit ${b}`);
  // TCR_EL1: bits 6 and 35 and everything above 38 are RES0 in v8.0 (no HA/HD/HPD/TBID/E0PD...)
  const tcr = roundTrip('tcr_el1', all);
  assert.equal(tcr, ((1n << 39n) - 1n) & ~(1n << 6n) & ~(1n << 35n));
  // TPIDR registers, NZCV, SP_EL0, FPCR/FPSR
  for (const name of ['tpidr_el0', 'tpidr_el1']) {
    assert.equal(roundTrip(name, pat), pat, name);
    assert.equal(roundTrip(name, all), all, name);
  }
  assert.equal(roundTrip('tpidrro_el0', pat), pat);
  assert.equal(roundTrip('nzcv', all), 0xf000_0000n);
  assert.equal(roundTrip('nzcv', 0x5000_0000n), 0x5000_0000n);
  assert.equal(roundTrip('sp_el0', pat), pat);
  assert.equal(roundTrip('fpcr', all), 0x07f7_0000n, 'AHP DN FZ RMode Stride Len; no trapped FP exceptions');
  assert.equal(roundTrip('fpsr', all), 0x0800_009fn, 'QC, IDC, IXC UFC OFC DZC IOC');
  assert.equal(roundTrip('cpacr_el1', all), 0x1030_0000n, 'TTA, FPEN');
});

test('Hot registers: TPIDR_EL1 / TPIDR_EL0 / TPIDRRO_EL0 and their BigInt views agree', () => {
  const t = setup([
    'msr tpidr_el1, x6',
    'mrs x5, tpidr_el1',
    'msr tpidr_el0, x2',
    'mrs x1, tpidr_el0',
    'msr tpidrro_el0, x4',
    'mrs x3, tpidrro_el0',
  ]);
  const { cpu } = t;
  cpu.setXBig(6, 0xffff_8000_1234_5678n);
  cpu.setXBig(2, 0x0000_ffff_0000_0001n);
  cpu.setXBig(4, 0x8000_0000_0000_0000n);
  t.step(6);
  assert.equal(x(cpu, 5), 0xffff_8000_1234_5678n);
  assert.equal(cpu.sys.TPIDR_EL1, 0xffff_8000_1234_5678n);
  assert.equal(x(cpu, 1), 0x0000_ffff_0000_0001n);
  assert.equal(cpu.sys.TPIDR_EL0, 0x0000_ffff_0000_0001n);
  assert.equal(x(cpu, 3), 0x8000_0000_0000_0000n);
  cpu.sys.TPIDR_EL1 = 7n;
  const u = setup(['mrs x5, tpidr_el1']);
  u.cpu.sys.TPIDR_EL1 = 0xabcdn;
  step1(u);
  assert.equal(x(u.cpu, 5), 0xabcdn);
});

test('PSTATE registers: CurrentEL, SPSel, SP_EL0 rules', () => {
  const t = setup(['mrs x17, currentel', 'mrs x15, spsel', 'msr spsel, x16', 'mrs x15, spsel']);
  const { cpu } = t;
  cpu.setSpEl(1, 0x4100_0000n);
  cpu.setSpEl(0, 0x4200_0000n);
  step1(t);
  assert.equal(x(cpu, 17), 1n << 2n, 'CurrentEL.EL = 1');
  step1(t);
  assert.equal(x(cpu, 15), 1n);
  cpu.setXBig(16, 0xfffen); // SPSel = 0
  step1(t);
  assert.equal(cpu.spsel, 0);
  assert.equal(x(cpu, 31), 0x4200_0000n);
  step1(t);
  assert.equal(x(cpu, 15), 0n);
  // SP_EL0 with SPSel = 0: UNDEF (both directions)
  for (const s of ['mrs x11, sp_el0', 'msr sp_el0, x12']) {
    expectUndef(s, 1, (c) => c.setElSp(1, 0));
  }
  // At EL0: CurrentEL, SPSel, SP_EL0, ELR/SPSR_EL1, TPIDR_EL1 are UNDEF; TPIDRRO_EL0 is read-only
  for (const s of [
    'mrs x17, currentel',
    'mrs x15, spsel',
    'msr spsel, x16',
    'msr spsel, #1',
    'mrs x11, sp_el0',
    'msr sp_el0, x12',
    'mrs x18, elr_el1',
    'msr spsr_el1, x21',
    'mrs x5, tpidr_el1',
    'msr tpidr_el1, x6',
    'msr tpidrro_el0, x4',
    'mrs x0, sctlr_el1',
    'msr vbar_el1, x1',
    'mrs x0, midr_el1',
    'mrs x0, id_aa64pfr0_el1',
    'mrs x0, isr_el1',
    'mrs x0, cpacr_el1',
    'mrs x0, mdscr_el1',
  ]) {
    expectUndef(s, 0);
  }
  // EL0 may use NZCV, TPIDR_EL0, and read TPIDRRO_EL0
  const u = setup([
    'msr nzcv, x8',
    'mrs x7, nzcv',
    'msr tpidr_el0, x2',
    'mrs x1, tpidr_el0',
    'mrs x3, tpidrro_el0',
  ]);
  u.cpu.sys.TPIDRRO_EL0 = 0x77n;
  toEl0(u.cpu);
  u.cpu.setXBig(8, 0x9000_0000n);
  u.cpu.setXBig(2, 0x1234n);
  assert.equal(u.step(5), 5);
  assert.equal(u.cpu.el, 0);
  assert.equal(x(u.cpu, 7), 0x9000_0000n);
  assert.equal(x(u.cpu, 1), 0x1234n);
  assert.equal(x(u.cpu, 3), 0x77n);
});

test('ID registers of the advertised ARMv8.0 core', () => {
  const read = (s: string, prep?: (cpu: Arm64Cpu) => void): bigint => {
    const { t, took } = run1(s, 1, prep);
    assert.equal(took, false, `${s} must read`);
    return x(t.cpu, 0);
  };
  assert.equal(read('mrs x0, midr_el1'), 0x410f_d034n, 'Arm Cortex-A53 r0p4');
  assert.equal(read('mrs x0, revidr_el1'), 0n);
  assert.equal(read('mrs x0, mpidr_el1'), 0x8000_0000n, 'RES1 bit 31, Aff0 = 0');
  // ID_AA64PFR0_EL1: EL0 = 1 [3:0], EL1 = 1 [7:4], EL2 = EL3 = 0, FP = 0 [19:16], AdvSIMD = 0 [23:20], GIC = 1 [27:24]
  assert.equal(read('mrs x0, id_aa64pfr0_el1'), (1n << 0n) | (1n << 4n) | (1n << 24n));
  // ID_AA64DFR0_EL1: DebugVer = 6, PMUVer [11:8] = 1 (PMUv3), BRPs [15:12] = 5 (6), WRPs [23:20] = 3 (4),
  // CTX_CMPs [31:28] = 1 (2): QEMU's cortex-a57 counts
  const dfr0 = read('mrs x0, id_aa64dfr0_el1');
  assert.equal(dfr0 & 0xfn, 6n);
  assert.equal((dfr0 >> 8n) & 0xfn, 1n, 'PMUv3');
  assert.equal(dfr0, 6n | (1n << 8n) | (5n << 12n) | (3n << 20n) | (1n << 28n));
  // ID_AA64MMFR0_EL1: PARange = 2, ASIDBits = 2, BigEnd = 0, TGran16 = 0, TGran64 = 0xF, TGran4 = 0
  assert.equal(read('mrs x0, id_aa64mmfr0_el1'), 2n | (2n << 4n) | (0xfn << 24n));
  for (const s of [
    'mrs x0, id_aa64pfr1_el1',
    'mrs x0, id_aa64dfr1_el1',
    'mrs x0, id_aa64isar0_el1',
    'mrs x0, id_aa64isar1_el1',
    'mrs x0, id_aa64isar2_el1',
    'mrs x0, id_aa64mmfr1_el1',
    'mrs x0, id_aa64mmfr2_el1',
    'mrs x0, s3_0_c0_c4_4', // ID_AA64ZFR0_EL1
    'mrs x0, s3_0_c0_c4_5', // ID_AA64SMFR0_EL1
    'mrs x0, id_pfr0_el1',
    'mrs x0, mvfr0_el1',
    'mrs x0, mvfr2_el1',
    'mrs x0, s3_0_c0_c7_7', // unassigned ID space: RAZ
  ]) {
    assert.equal(read(s), 0n, s);
  }
  // Every encoding op0 = 3, op1 = 0, CRn = 0, CRm = 0..7 reads (RAZ where unassigned)
  for (let crm = 0; crm <= 7; crm++) {
    for (let op2 = 0; op2 < 8; op2++) {
      const w = (0xd5380000 | (crm << 8) | (op2 << 5)) >>> 0; // MRS X0, S3_0_C0_C<crm>_<op2>
      const { t, took } = run1(w);
      assert.equal(took, false, `S3_0_C0_C${crm}_${op2}`);
      const known =
        (crm === 0 && (op2 === 0 || op2 === 5)) ||
        (crm === 4 && op2 === 0) ||
        (crm === 5 && op2 === 0) ||
        (crm === 7 && op2 === 0);
      if (!known) assert.equal(x(t.cpu, 0), 0n, `S3_0_C0_C${crm}_${op2} is zero`);
    }
  }
  // CTR_EL0: bit 31 RES1, CWG [27:24] = 4, ERG [23:20] = 4, DminLine [19:16] = 4, L1Ip [15:14] = PIPT, IminLine = 4
  assert.equal(
    read('mrs x0, ctr_el0'),
    (1n << 31n) | (4n << 24n) | (4n << 20n) | (4n << 16n) | (3n << 14n) | 4n,
  );
  assert.equal(read('mrs x0, dczid_el0'), 4n, 'BS = 4 (64 bytes), DZP = 0 at EL1');
  // CLIDR_EL1 and CCSIDR_EL1 agree: L1 I+D, L2 unified, 64-byte lines
  const clidr = read('mrs x0, clidr_el1');
  assert.equal(clidr & 7n, 3n, 'L1: separate I and D');
  assert.equal((clidr >> 3n) & 7n, 4n, 'L2: unified');
  assert.equal((clidr >> 6n) & 7n, 0n, 'no L3');
  for (const [sel, assoc, sets] of [
    [0, 4, 128],
    [1, 2, 256],
    [2, 16, 512],
  ]) {
    const c = read('mrs x0, ccsidr_el1', (cpu) => {
      cpu.sys.CSSELR_EL1 = BigInt(sel);
    });
    assert.equal(c & 7n, 2n, 'LineSize = log2(64) - 4');
    assert.equal(((c >> 3n) & 0x3ffn) + 1n, BigInt(assoc));
    assert.equal(((c >> 13n) & 0x7fffn) + 1n, BigInt(sets));
  }
  // Debug: OS lock set at reset, cleared through OSLAR_EL1; OSLM = 0b10
  const t = setup(['mrs x0, oslsr_el1', 'msr oslar_el1, x1', 'mrs x2, oslsr_el1']);
  t.cpu.setXBig(1, 0n);
  t.step(3);
  assert.equal(x(t.cpu, 0), 0b1010n);
  assert.equal(x(t.cpu, 2), 0b1000n);
  // The writes of read-only ID registers are UNDEF
  expectUndef((A('mrs x0, id_aa64pfr0_el1') & ~(1 << 21)) >>> 0);
});

test('MPIDR_EL1 Aff0 follows the vCPU id', async () => {
  const { GuestMemory } = await import('../src/memory/guest-memory.js');
  const { Arm64Cpu: Cpu, CodeCache } = await import('../src/cpu/arm64/cpu.js');
  const mem = new GuestMemory(RAM_BASE, 1 << 20);
  mem.dv.setUint32(0, A('mrs x0, mpidr_el1'), true);
  const cpu = new Cpu(5, mem, new CodeCache(mem), { hvc: () => false, smc: () => false });
  cpu.pcLo = RAM_BASE;
  cpu.run(1);
  assert.equal(cpu.xBig(0), 0x8000_0005n);
});

test('EL0 traps with EC 0x18: CTR_EL0 (UCT), DC ZVA and DCZID.DZP (DZE), cache maintenance (UCI)', () => {
  let r = run1('mrs x0, ctr_el0', 0);
  assert.equal(r.t.cpu.sys.ESR_EL1, esr(EC_SYSREG, sysIss(3, 3, 0, 0, 1, 0, true)));
  assert.equal(r.t.cpu.sys.ELR_EL1, BigInt(RAM_BASE));
  assert.equal(r.t.cpu.pcLo, VBAR + 0x400);
  const sctlr = (bits: number) => (cpu: Arm64Cpu) => {
    cpu.sys.SCTLR_EL1 = BigInt(0x30d0_0800 | bits);
    cpu.mmu.onRegsChanged();
  };
  r = run1('mrs x0, ctr_el0', 0, sctlr(1 << 15));
  assert.equal(r.took, false);
  assert.equal(x(r.t.cpu, 0) & 0xfn, 4n);
  // DCZID_EL0 is always readable; DZP shows whether EL0 may use DC ZVA
  r = run1('mrs x0, dczid_el0', 0);
  assert.equal(x(r.t.cpu, 0), 0x14n, 'DZP = 1, BS = 4');
  r = run1('mrs x0, dczid_el0', 0, sctlr(1 << 14));
  assert.equal(x(r.t.cpu, 0), 0x4n);
  r = run1('dc zva, x2', 0, (cpu) => cpu.setXBig(2, BigInt(RAM_BASE + 0x2000)));
  assert.equal(r.t.cpu.sys.ESR_EL1, esr(EC_SYSREG, sysIss(1, 3, 7, 4, 1, 2, false)));
  for (const [s, crm, op2] of [
    ['dc civac, x2', 14, 1],
    ['dc cvac, x2', 10, 1],
    ['dc cvau, x2', 11, 1],
    ['ic ivau, x2', 5, 1],
  ] as const) {
    r = run1(s, 0, (cpu) => cpu.setXBig(2, BigInt(RAM_BASE + 0x2000)));
    assert.equal(r.t.cpu.sys.ESR_EL1, esr(EC_SYSREG, sysIss(1, 3, 7, crm, op2, 2, false)), s);
    r = run1(s, 0, (cpu) => {
      cpu.setXBig(2, BigInt(RAM_BASE + 0x2000));
      sctlr(1 << 26)(cpu);
    });
    assert.equal(r.took, false, `${s} with UCI`);
  }
  // EL1-only maintenance is UNDEF at EL0
  for (const s of [
    'dc ivac, x2',
    'dc isw, x2',
    'dc csw, x2',
    'dc cisw, x2',
    'ic iallu',
    'ic ialluis',
    'tlbi vmalle1',
    'tlbi vae1is, x2',
    'at s1e1r, x2',
    'at s1e0r, x2',
  ]) {
    expectUndef(s, 0);
  }
});

test('CPACR_EL1.FPEN drives the FP trap (EC 0x07), FPCR/FPSR accesses included', () => {
  for (const [fpen, el0, el1] of [
    [0, true, true],
    [1, true, false],
    [2, true, true],
    [3, false, false],
  ] as const) {
    for (const el of [0, 1]) {
      for (const s of ['fmov d0, x1', 'mrs x0, fpcr', 'msr fpsr, x1']) {
        const { t, took } = run1(s, el, (cpu) => {
          cpu.sys.CPACR_EL1 = BigInt(fpen << 20);
        });
        const trapped = el === 0 ? el0 : el1;
        assert.equal(took, trapped, `FPEN=${fpen} EL${el} ${s}`);
        if (trapped) assert.equal(t.cpu.sys.ESR_EL1 >> 26n, BigInt(EC_FP), `FPEN=${fpen} EL${el} ${s}: EC`);
      }
    }
  }
  // through MSR CPACR_EL1
  const t = setup(['msr cpacr_el1, x1', 'fmov d0, x1']);
  t.cpu.setXBig(1, 0n);
  step1(t);
  assert.equal(t.cpu.fpEn1, false);
  assert.equal(t.cpu.fpEn0, false);
  step1(t);
  assert.equal(t.cpu.sys.ESR_EL1 >> 26n, BigInt(EC_FP));
  assert.equal(t.cpu.sys.ELR_EL1, BigInt(RAM_BASE + 4));
});

// =====================================================================================
// Hints and barriers
// =====================================================================================

test('Hints, barriers and CLREX', () => {
  for (const s of [
    'nop',
    'yield',
    'hint #34',
    'paciasp',
    'autiasp',
    'bti c',
    'esb',
    'csdb',
    'xpaclri',
    'dsb sy',
    'dsb ish',
    'dmb ish',
    'isb',
    'ssbb',
    'pssbb',
  ]) {
    for (const el of [0, 1]) {
      const { took } = run1(s, el);
      assert.equal(took, false, `${s} at EL${el}`);
    }
  }
  const t = setup(['ldxr x3, [x2]', 'clrex']);
  t.cpu.setXBig(2, BigInt(RAM_BASE + 0x3000));
  step1(t);
  assert.notEqual(t.cpu.exclAddr, -1, 'LDXR armed the monitor');
  step1(t);
  assert.equal(t.cpu.exclAddr, -1, 'CLREX cleared it');
  // ISB is a context synchronization event: the CPU drops its fetch cache
  let invalidated = 0;
  const u = setup(['isb']);
  const orig = u.cpu.invalidateFetch.bind(u.cpu);
  u.cpu.invalidateFetch = () => {
    invalidated++;
    orig();
  };
  step1(u);
  assert.ok(invalidated >= 1);
});

// =====================================================================================
// Cache and TLB maintenance, address translation
// =====================================================================================

test('DC ZVA zeroes the aligned 64-byte block', () => {
  const t = setup(['dc zva, x2']);
  const off = 0x4000;
  for (let i = 0; i < 256; i++) t.mem.u8[off + i] = 0xaa;
  t.cpu.setXBig(2, BigInt(RAM_BASE + off + 0x47)); // inside the block at 0x40
  step1(t);
  for (let i = 0; i < 256; i++)
    assert.equal(t.mem.u8[off + i], i >= 0x40 && i < 0x80 ? 0 : 0xaa, `byte ${i}`);
  // Outside RAM and MMIO: a data abort (synchronous external abort) at EL1
  const u = setup(['dc zva, x2']);
  u.cpu.setXBig(2, 0x1000n);
  step1(u);
  assert.equal(u.cpu.sys.ESR_EL1 >> 26n, BigInt(EC_DABT_CUR));
  assert.equal((u.cpu.sys.ESR_EL1 >> 6n) & 1n, 1n, 'WnR');
});

test('TLBI operands reach the MMU of this CPU or of every peer (IS)', () => {
  const t = setup(['tlbi vmalle1']);
  const peer = setup(['nop']);
  const peers = [t.cpu, peer.cpu];
  for (const p of peers) p.peers = peers;
  const log: string[] = [];
  for (const [i, p] of peers.entries()) {
    p.mmu.flushAll = () => log.push(`${i}:all`);
    p.mmu.flushAsid = (a: number) => log.push(`${i}:asid ${a}`);
    p.mmu.flushVa = (lo: number, hi: number, asid: number, last: boolean) =>
      log.push(`${i}:va ${hi.toString(16)}_${lo.toString(16)} ${asid} ${last}`);
  }
  const run = (s: string, xt: bigint, tcr = 0n): string[] => {
    log.length = 0;
    t.cpu.sys.TCR_EL1 = tcr;
    t.mem.dv.setUint32(0, A(s.startsWith('tlbi vmalle1') ? s : `${s}, x2`), true);
    t.cpu.code.invalidateAll();
    t.cpu.invalidateFetch();
    t.cpu.pcLo = RAM_BASE;
    t.cpu.setXBig(2, xt);
    step1(t);
    return [...log];
  };
  // Xt: ASID [63:48], VA[55:12] in [43:0]; the VA is sign-extended from bit 55 (model in BigInt)
  const vaOf = (v: bigint): string => {
    let va = (v & ((1n << 44n) - 1n)) << 12n;
    if ((va >> 55n) & 1n) va |= 0xffn << 56n;
    return `${(va >> 32n).toString(16)}_${(va & 0xffff_ffffn).toString(16)}`;
  };
  const hiVa = 0xfff_ffff_f812n; // upper half (bit 55 set)
  const xt = (0xabcdn << 48n) | hiVa;
  assert.equal(vaOf(xt), 'ffffffff_ff812000');
  assert.deepEqual(run('tlbi vmalle1', 0n), ['0:all']);
  assert.deepEqual(run('tlbi vmalle1is', 0n), ['0:all', '1:all']);
  const as16 = 1n << 36n;
  assert.deepEqual(run('tlbi aside1', xt, as16), [`0:asid ${0xabcd}`]);
  assert.deepEqual(run('tlbi aside1is', xt, 0n), [`0:asid ${0xcd}`, `1:asid ${0xcd}`], '8-bit ASIDs');
  assert.deepEqual(run('tlbi vae1', xt, as16), [`0:va ${vaOf(xt)} ${0xabcd} false`]);
  assert.deepEqual(run('tlbi vale1is', xt, as16), [
    `0:va ${vaOf(xt)} ${0xabcd} true`,
    `1:va ${vaOf(xt)} ${0xabcd} true`,
  ]);
  assert.deepEqual(run('tlbi vaae1', xt, as16), [`0:va ${vaOf(xt)} -1 false`]);
  assert.deepEqual(run('tlbi vaale1is', xt, as16), [`0:va ${vaOf(xt)} -1 true`, `1:va ${vaOf(xt)} -1 true`]);
  // A lower-half VA: 0x0000_8123_4567_8000
  const lo = 0x8_1234_5678n;
  assert.equal(vaOf(lo), '8123_45678000');
  assert.deepEqual(run('tlbi vaae1is', lo, 0n), [`0:va ${vaOf(lo)} -1 false`, `1:va ${vaOf(lo)} -1 false`]);
  assert.deepEqual(run('tlbi vae1is', (5n << 48n) | 0x40000n, as16), [
    '0:va 0_40000000 5 false',
    '1:va 0_40000000 5 false',
  ]);
});

/** Page tables: 39-bit VA (T0SZ = 25, level 1 start), 1 GiB identity block over RAM, one 4 KiB page at VA 0x8000_0000. */
function mmuSetup(asm: string[]) {
  const t = setup(asm, {});
  const { mem, cpu } = t;
  const L1 = 0x10_0000;
  const L2 = 0x10_1000;
  const L3 = 0x10_2000;
  const w64 = (off: number, v: bigint) => mem.dv.setBigUint64(off, v, true);
  const AF = 1n << 10n;
  const SH_IS = 3n << 8n;
  w64(L1 + 8 * 1, BigInt(RAM_BASE) | AF | SH_IS | 0b01n); // block, EL1 RW, AttrIdx 0
  w64(L1 + 8 * 2, BigInt(RAM_BASE + L2) | 0b11n);
  w64(L2 + 0, BigInt(RAM_BASE + L3) | 0b11n);
  const page = (pa: number) => BigInt(RAM_BASE + pa) | AF | SH_IS | 0b11n; // EL1 RW, no EL0 access
  w64(L3 + 0, page(0x20_0000));
  mem.dv.setUint32(0x20_0000, 0x1111_1111, true);
  mem.dv.setUint32(0x20_1000, 0x2222_2222, true);
  cpu.sys.MAIR_EL1 = 0xffn;
  cpu.sys.TCR_EL1 = 25n | (1n << 23n) | (2n << 32n); // T0SZ 25, EPD1, IPS 40 bits
  cpu.sys.TTBR0_EL1 = BigInt(RAM_BASE + L1);
  cpu.sys.SCTLR_EL1 = 0x30d0_0801n;
  cpu.mmu.onRegsChanged();
  return { ...t, L3, page, w64 };
}

test('TLBI VAE1 through the real MMU: a changed mapping is seen after the invalidation', () => {
  const m = mmuSetup([
    'ldr w1, [x2]',
    'tlbi vae1, x3',
    'dsb ish',
    'isb',
    'ldr w1, [x2]',
    'tlbi vmalle1',
    'ldr w1, [x2]',
  ]);
  const { cpu } = m;
  m.mem.dv.setUint32(0, 0xb9400041, true); // ldr w1, [x2]
  m.mem.dv.setUint32(16, 0xb9400041, true);
  m.mem.dv.setUint32(24, 0xb9400041, true);
  cpu.setXBig(2, 0x8000_0000n);
  cpu.setXBig(3, 0x8000_0000n >> 12n);
  step1(m);
  assert.equal(x(cpu, 1), 0x1111_1111n);
  m.w64(m.L3, m.page(0x20_1000)); // remap without maintenance
  m.step(4); // tlbi vae1, dsb, isb, ldr
  assert.equal(x(cpu, 1), 0x2222_2222n, 'the new mapping after TLBI VAE1');
  m.w64(m.L3, 0n); // unmap: after TLBI VMALLE1 the load faults
  m.step(2);
  assert.equal(cpu.sys.ESR_EL1 >> 26n, BigInt(EC_DABT_CUR));
  assert.equal(cpu.sys.ESR_EL1 & 0x3fn, 0x07n, 'translation fault, level 3');
  assert.equal(cpu.sys.FAR_EL1, 0x8000_0000n);
});

test('AT S1E1R/S1E0R write PAR_EL1 through the real MMU', () => {
  const m = mmuSetup(['at s1e1r, x2', 'mrs x0, par_el1', 'at s1e0r, x2', 'mrs x0, par_el1', 'at s1e1w, x3']);
  const { cpu } = m;
  // 'mrs x0, par_el1' is 0xd5387400
  cpu.setXBig(2, 0x8000_0123n);
  cpu.setXBig(3, 0x9000_0000n); // unmapped (L2 index 128 is invalid)
  m.step(2);
  const par = x(cpu, 0);
  assert.equal(par & 1n, 0n, 'F = 0');
  assert.equal(par & 0xffff_ffff_f000n, BigInt(RAM_BASE + 0x20_0000), 'PA');
  assert.equal(par >> 56n, 0xffn, 'ATTR from MAIR_EL1');
  assert.equal((par >> 7n) & 3n, 3n, 'SH: inner shareable');
  m.step(2);
  const par0 = x(cpu, 0);
  assert.equal(par0 & 1n, 1n, 'EL0 has no access: F = 1');
  assert.equal((par0 >> 1n) & 0x3fn, 0x0fn, 'FST: permission fault, level 3');
  m.step(1);
  assert.equal(cpu.sys.PAR_EL1 & 1n, 1n);
  assert.equal((cpu.sys.PAR_EL1 >> 1n) & 0x3fn, 0x06n, 'FST: translation fault, level 2');
  assert.equal(cpu.pcLo, RAM_BASE + 20, 'AT never raises');
});

test('IC IVAU / IC IALLU drop decoded instructions', () => {
  const t = setup(['nop', 'ic iallu', 'ic ivau, x2']);
  t.cpu.setXBig(2, BigInt(RAM_BASE));
  let all = 0;
  const pages: number[] = [];
  const code = t.cpu.code;
  const ia = code.invalidateAll.bind(code);
  const ip = code.invalidateRamPage.bind(code);
  code.invalidateAll = () => {
    all++;
    ia();
  };
  code.invalidateRamPage = (p: number) => {
    pages.push(p);
    ip(p);
  };
  assert.equal(t.step(3), 3);
  assert.equal(all, 1);
  assert.deepEqual(pages, [0]);
});

test('MRS/MSR fall back to registers defined by devices (GIC CPU interface, generic timer)', async () => {
  const { GicV3 } = await import('../src/devices/gicv3.js');
  const { GenericTimer } = await import('../src/cpu/arm64/timer.js');
  const { sysRegTable, sysregKey } = await import('../src/cpu/arm64/sysregs.js');
  const t = setup([
    0xd53be000, // mrs x0, cntfrq_el0
    0xd518cce1, // msr icc_igrpen1_el1, x1
    0xd538cce2, // mrs x2, icc_igrpen1_el1
  ]);
  const gic = new GicV3(1);
  gic.attachCpu(t.cpu);
  new GenericTimer(t.cpu, () => {}, true);
  // No key owned by a device shadows (or is shadowed by) the CPU's own table
  assert.ok(t.cpu.sys.extra.size > 10);
  for (const k of t.cpu.sys.extra.keys())
    assert.equal(sysRegTable.get(k), undefined, `key ${k.toString(16)}`);
  assert.ok(t.cpu.sys.extra.has(sysregKey(3, 3, 14, 0, 0)), "CNTFRQ_EL0 is the timer's");
  t.cpu.setXBig(1, 1n);
  assert.equal(t.step(3), 3);
  assert.equal(t.cpu.pcLo, RAM_BASE + 12);
  assert.equal(x(t.cpu, 0), 62_500_000n);
  assert.equal(x(t.cpu, 2), 1n);
});

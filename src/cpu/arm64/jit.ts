// What the executor and the translator (wasm/translate.ts) agree on about translated code: the
// longest basic block, which instructions end one, and how a unit is called.
//
// A basic block ends at a branch, at an instruction that changes state the executor must see at
// once (exception generation, MSR, TLBI, IC, WFI, ERET, ...; see STRAIGHT_SYSTEM for the system
// instructions that do not), at the end of its 4 KiB code page, or after MAX_BLOCK instructions.
//
// Contract with the executor: on entry cpu.pcLo/pcHi is the unit's first instruction. On a normal
// exit the unit leaves cpu.pcLo/pcHi at the next instruction and returns the number of instructions
// retired. An exception thrown inside (GUEST_EXCEPTION, or COUNT_SYNC from Arm64Cpu.exactRetired)
// leaves in cpu.regionPart how many of the unit's instructions ran before the one that threw (that
// one's address is in cpu.pcLo), so the executor's count is exact (the PMU counts from it). A unit
// also leaves at the end of a basic block when an unmasked interrupt is pending, so an interrupt
// raised by a store to a device, or by a system register write, is taken within MAX_BLOCK - 1
// instructions even in a loop that stays inside the unit.

import type { Handler } from './decode.js';
import type { Arm64Cpu } from './cpu.js';

/** Runs a translated unit; leaves at the first basic-block boundary after `limit` instructions. */
export type BlockFn = (cpu: Arm64Cpu, limit: number) => number;

/** Longest block, in instructions. */
export const MAX_BLOCK = 64;

/**
 * System instructions that a block may run through: hints, barriers and registers that change no
 * state the executor caches (translation, EL, the code cache), and no interrupt mask in a way that
 * lets an interrupt in (MSR DAIFSet only masks more).
 */
const STRAIGHT_SYSTEM = new Set([
  'NOP',
  'HINT',
  'DSB',
  'DMB',
  'ISB',
  'CLREX',
  'MRS_TPIDR_EL0',
  'MSR_TPIDR_EL0',
  'MRS_TPIDRRO_EL0',
  'MRS_TPIDR_EL1',
  'MSR_TPIDR_EL1',
  'MRS_NZCV',
  'MSR_NZCV',
  'MRS_DAIF',
  'MSR_DAIFSet',
  'MRS_CTR_EL0',
  'MRS_DCZID_EL0',
  'MRS_SP_EL0',
  'DC_CVAC',
  'DC_CVAU',
  'DC_CVAP',
  'DC_CIVAC',
  'DC_ZVA',
]);

let enders: Set<Handler> | undefined;

/** The handlers after which a block must end (every branch and system pattern but the straight ones). */
export function setBlockEnders(groups: {
  branch: { name: string; handler: Handler }[];
  system: { name: string; handler: Handler }[];
}): void {
  enders = new Set<Handler>();
  for (const p of groups.branch) enders.add(p.handler);
  for (const p of groups.system) if (!STRAIGHT_SYSTEM.has(p.name)) enders.add(p.handler);
}

/** True for the handlers after which a block must end. */
export function isBlockEnder(h: Handler): boolean {
  if (!enders) throw new Error('jit: setBlockEnders() was not called');
  return enders.has(h);
}

export interface DecodedInsn {
  name: string;
  handler: Handler;
  /** The handler's index in the decoder's handlerTable. */
  index: number;
}

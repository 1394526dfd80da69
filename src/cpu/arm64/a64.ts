// The A64 instruction set: every instruction group's patterns, in one list for the decoder.

import type { Pattern } from './decode.js';
import { patterns as dpImm } from './insn/dp_imm.js';
import { patterns as dpReg } from './insn/dp_reg.js';
import { patterns as branch } from './insn/branch.js';
import { patterns as ldst } from './insn/ldst.js';
import { patterns as fp } from './insn/fp.js';
import { patterns as simd } from './insn/simd.js';
import { patterns as system } from './insn/system.js';

export function a64Groups(): Pattern[][] {
  return [dpImm, dpReg, branch, ldst, fp, simd, system];
}

// A64 instruction group: branches. See decode.ts for the pattern format.
//
// B, BL, B.cond, CBZ, CBNZ, TBZ, TBNZ, BR, BLR, RET. The pointer-authentication forms (BRAA, BLRAA,
// RETAA, ...), the v8.8 BC.cond and the exception-generating/system instructions are not matched here.
// Branch targets are 64-bit: PC-relative offsets carry into (or borrow from) pcHi.

import type { Pattern } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import { conditionHolds } from '../int64.js';

const TWO32 = 4294967296;

/** next PC = PC + off (off: signed, |off| < 2^31). */
function jumpRel(cpu: Arm64Cpu, off: number): void {
  const s = (cpu.pcLo >>> 0) + off;
  cpu.nextLo = s >>> 0;
  cpu.nextHi = s >= TWO32 ? (cpu.pcHi + 1) >>> 0 : s < 0 ? (cpu.pcHi - 1) >>> 0 : cpu.pcHi >>> 0;
}

function b(cpu: Arm64Cpu, insn: number): void {
  jumpRel(cpu, (insn << 6) >> 4);
}

function bl(cpu: Arm64Cpu, insn: number): void {
  const r = cpu.r;
  r[60] = cpu.nextLo; // X30 = PC + 4
  r[61] = cpu.nextHi;
  jumpRel(cpu, (insn << 6) >> 4);
}

function bcond(cpu: Arm64Cpu, insn: number): void {
  if (conditionHolds(cpu, insn & 15)) jumpRel(cpu, ((insn << 8) >> 11) & ~3);
}

function bne(cpu: Arm64Cpu, insn: number): void {
  if (cpu.z === 0) jumpRel(cpu, ((insn << 8) >> 11) & ~3);
}

function beq(cpu: Arm64Cpu, insn: number): void {
  if (cpu.z !== 0) jumpRel(cpu, ((insn << 8) >> 11) & ~3);
}

function cbz64(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  if (t === 31 || (cpu.r[t << 1] | cpu.r[(t << 1) + 1]) === 0) jumpRel(cpu, ((insn << 8) >> 11) & ~3);
}

function cbnz64(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  if (t !== 31 && (cpu.r[t << 1] | cpu.r[(t << 1) + 1]) !== 0) jumpRel(cpu, ((insn << 8) >> 11) & ~3);
}

function cbz32(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  if (t === 31 || cpu.r[t << 1] === 0) jumpRel(cpu, ((insn << 8) >> 11) & ~3);
}

function cbnz32(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  if (t !== 31 && cpu.r[t << 1] !== 0) jumpRel(cpu, ((insn << 8) >> 11) & ~3);
}

/** TBZ / TBNZ: bit number b5:b40, op (bit 24) = 1 for TBNZ. */
function tbz(cpu: Arm64Cpu, insn: number): void {
  const t = insn & 31;
  const bit = ((insn >>> 26) & 32) | ((insn >>> 19) & 31);
  const v = t === 31 ? 0 : bit < 32 ? (cpu.r[t << 1] >>> bit) & 1 : (cpu.r[(t << 1) + 1] >>> (bit - 32)) & 1;
  if (v === ((insn >>> 24) & 1)) jumpRel(cpu, ((insn << 13) >> 16) & ~3);
}

function br(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  if (n === 31) {
    cpu.nextLo = 0;
    cpu.nextHi = 0;
    return;
  }
  const lo = cpu.r[n << 1] >>> 0;
  cpu.nextLo = lo;
  cpu.nextHi = cpu.r[(n << 1) + 1] >>> 0;
  // A misaligned target faults when it is fetched; the executor checks alignment on a fetch-page change.
  if ((lo & 3) !== 0) cpu.invalidateFetch();
}

function blr(cpu: Arm64Cpu, insn: number): void {
  const n = (insn >>> 5) & 31;
  const r = cpu.r;
  const lo = n === 31 ? 0 : r[n << 1] >>> 0;
  const hi = n === 31 ? 0 : r[(n << 1) + 1] >>> 0;
  r[60] = cpu.nextLo;
  r[61] = cpu.nextHi;
  cpu.nextLo = lo;
  cpu.nextHi = hi;
  if ((lo & 3) !== 0) cpu.invalidateFetch();
}

export const patterns: Pattern[] = [
  { bits: '000101 xxxxxxxxxxxxxxxxxxxxxxxxxx', name: 'B', handler: b },
  { bits: '100101 xxxxxxxxxxxxxxxxxxxxxxxxxx', name: 'BL', handler: bl },
  { bits: '01010100 xxxxxxxxxxxxxxxxxxx 0 xxxx', name: 'B_cond', handler: bcond },
  { bits: '01010100 xxxxxxxxxxxxxxxxxxx 0 0000', name: 'B_EQ', handler: beq },
  { bits: '01010100 xxxxxxxxxxxxxxxxxxx 0 0001', name: 'B_NE', handler: bne },
  { bits: '1 011010 0 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'CBZ_x', handler: cbz64 },
  { bits: '1 011010 1 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'CBNZ_x', handler: cbnz64 },
  { bits: '0 011010 0 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'CBZ_w', handler: cbz32 },
  { bits: '0 011010 1 xxxxxxxxxxxxxxxxxxx xxxxx', name: 'CBNZ_w', handler: cbnz32 },
  { bits: 'x 011011 x xxxxx xxxxxxxxxxxxxx xxxxx', name: 'TBZ_TBNZ', handler: tbz },
  // 1101011 opc op2=11111 op3=000000 Rn op4=00000
  { bits: '1101011 0000 11111 000000 xxxxx 00000', name: 'BR', handler: br },
  { bits: '1101011 0001 11111 000000 xxxxx 00000', name: 'BLR', handler: blr },
  { bits: '1101011 0010 11111 000000 xxxxx 00000', name: 'RET', handler: br },
];

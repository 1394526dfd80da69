// Differential testing of the software AArch64 CPU against QEMU (qemu-aarch64, user mode, -cpu cortex-a53).
//
//   npm run difftest -- --seed S --cases N [--class int|branch|ldst|fp|simd] [--max-report K] [--interp-only]
//   Each case runs on the interpreter and again translated to WebAssembly (src/cpu/arm64/wasm/), unless --interp-only.
//
// Random instruction sequences per encoding class run on QEMU (through scripts/difftest/harness.c, built
// here with Debian's aarch64 cross gcc) and on typevisor's CPU from the same registers and memory. X
// registers, SP, NZCV, V registers, FPSR and the scratch memory are compared; a fault must be the same
// signal at the same instruction with the same registers. QEMU's cortex-a53 model has CRC32 and the crypto
// extension, which typevisor does not advertise: those encodings are not generated.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { Arm64Cpu, CodeCache } from '../src/cpu/arm64/cpu.js';
import { MAX_BLOCK } from '../src/cpu/arm64/jit.js';

const CODE = 0x4000_0000;
const SCRATCH = 0x4002_0000;
const SCRATCH_SIZE = 0x1_0000;
const STATE_SIZE = 800;
const RAM_SIZE = 4 * 1024 * 1024;
const PT_BASE = 0x4030_0000;
const VBAR = 0x4038_0000;
const MAX_STEPS = 64;

export const CLASSES = ['int', 'branch', 'ldst', 'fp', 'simd'] as const;
export type ClassName = (typeof CLASSES)[number];

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (this file runs from dist/scripts). */
const root = resolve(here, '..', '..');

// ---------- random numbers (deterministic from --seed) ----------
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  }
  u32(): number {
    // xorshift32
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number {
    return this.u32() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.below(a.length)];
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
}

function scratchFill(seed: number): Uint8Array {
  const out = new Uint8Array(SCRATCH_SIZE);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < SCRATCH_SIZE; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x >>> 24;
  }
  return out;
}

// ---------- case generation ----------
export interface Case {
  cls: ClassName;
  insns: number[];
  state: Uint8Array; // STATE_SIZE bytes
  seed: number;
}

const SPECIAL64 = [
  0n,
  1n,
  2n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0xffffffffffffffffn,
  0xfffffffffffffffen,
];
const F64_SPECIAL = [
  0x0000000000000000n,
  0x8000000000000000n,
  0x3ff0000000000000n,
  0xbff0000000000000n,
  0x7ff0000000000000n,
  0xfff0000000000000n,
  0x7ff8000000000000n,
  0x7ff4000000000000n, // signalling NaN
  0x0000000000000001n, // subnormal
  0x000fffffffffffffn,
  0x7fefffffffffffffn,
  0x4330000000000000n,
  0x3fe0000000000000n,
  0x41dfffffffc00000n,
  0xc3e0000000000000n,
];
const F32_SPECIAL = [
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000, 0x00000001,
  0x007fffff, 0x7f7fffff, 0x4b000000, 0x3f000000, 0x4effffff, 0xcf000000, 0x3effffff,
];

function rand64(r: Rng): bigint {
  return (BigInt(r.u32()) << 32n) | BigInt(r.u32());
}

function setX(state: DataView, n: number, v: bigint): void {
  state.setBigUint64(n * 8, BigInt.asUintN(64, v), true);
}

function randomState(r: Rng, cls: ClassName): Uint8Array {
  const st = new Uint8Array(STATE_SIZE);
  const dv = new DataView(st.buffer);
  for (let i = 0; i < 31; i++) {
    let v: bigint;
    const k = r.below(4);
    if (k === 0) v = r.pick(SPECIAL64);
    else if (k === 1) v = BigInt(r.below(256));
    else if (k === 2) v = BigInt(r.u32());
    else v = rand64(r);
    // Index registers of loads/stores: small, or far out of range. A medium value could reach memory
    // that QEMU's own process happens to map next to the scratch area.
    if (cls === 'ldst') v = r.chance(0.7) ? BigInt(r.below(64)) : rand64(r) | (1n << 62n);
    setX(dv, i, v);
  }
  dv.setBigUint64(248, BigInt(SCRATCH + 0x8000 + 16 * r.below(64)), true);
  dv.setBigUint64(256, BigInt(r.below(16)) << 28n, true);
  let fpcr = 0;
  if ((cls === 'fp' || cls === 'simd') && r.chance(0.5)) {
    fpcr =
      (r.below(4) << 22) |
      (r.chance(0.3) ? 1 << 24 : 0) |
      (r.chance(0.3) ? 1 << 25 : 0) |
      (r.chance(0.2) ? 1 << 26 : 0);
  }
  dv.setBigUint64(264, BigInt(fpcr), true);
  dv.setBigUint64(272, 0n, true);
  for (let v = 0; v < 32; v++) {
    const base = 288 + v * 16;
    const k = r.below(4);
    for (let half = 0; half < 2; half++) {
      if (k === 0)
        dv.setBigUint64(
          base + half * 8,
          r.pick(F64_SPECIAL) ^ (r.chance(0.3) ? BigInt(r.below(8)) : 0n),
          true,
        );
      else if (k === 1) {
        dv.setUint32(base + half * 8, r.pick(F32_SPECIAL), true);
        dv.setUint32(base + half * 8 + 4, r.pick(F32_SPECIAL), true);
      } else if (k === 2) {
        // ordinary floating-point numbers of both sizes
        dv.setFloat64(base + half * 8, (r.u32() / 65536 - 32768) * (r.chance(0.5) ? 1 : 1e-3), true);
      } else dv.setBigUint64(base + half * 8, rand64(r), true);
    }
  }
  return st;
}

function bits(w: number, hi: number, lo: number): number {
  return (w >>> lo) & ((1 << (hi - lo + 1)) - 1);
}

/** Encodings of features QEMU's cortex-a53 has and typevisor does not advertise. */
function excluded(w: number): boolean {
  w >>>= 0;
  // CRC32/CRC32C: sf 0 0 11010110 Rm 010 C sz Rn Rd
  if ((w & 0x7fe0e000) >>> 0 === 0x1ac04000) return true;
  // AES, SHA two-register, SHA three-register, PMULL/PMULL2 with 64-bit elements
  if ((w & 0xff3e0c00) >>> 0 === 0x4e280800) return true;
  if ((w & 0xff3e0c00) >>> 0 === 0x5e280800) return true;
  if ((w & 0xff208c00) >>> 0 === 0x5e000000) return true;
  if ((w & 0xbfe0fc00) >>> 0 === 0x0ee0e000) return true;
  return false;
}

/** Data-processing (register) groups by bits 28:21 (mask, value): most random words would be unallocated. */
const DP_REG_GROUPS: [number, number][] = [
  [0xf8, 0x50], // 0 1010 xxx: logical (shifted register)
  [0xf8, 0x58], // 0 1011 xxx: add/sub shifted or extended register
  [0xff, 0xd0], // 1 1010 000: add/sub with carry
  [0xff, 0xd2], // 1 1010 010: conditional compare
  [0xff, 0xd4], // 1 1010 100: conditional select
  [0xff, 0xd6], // 1 1010 110: data processing 1 and 2 source
  [0xf8, 0xd8], // 1 1011 xxx: data processing 3 source
];

function genInt(r: Rng): number {
  for (;;) {
    let w = r.u32();
    const k = r.below(10);
    if (k < 4)
      w = ((w & ~(7 << 26)) | (4 << 26)) >>> 0; // data processing (immediate)
    else if (k < 5)
      w = ((w & ~(7 << 25)) | (5 << 25)) >>> 0; // anywhere in data processing (register)
    else {
      const [m, v] = r.pick(DP_REG_GROUPS);
      const field = ((bits(w, 28, 21) & ~m) | v) & 0xff;
      w = ((w & ~(0xff << 21)) | (field << 21)) >>> 0;
    }
    if (!excluded(w)) return w;
  }
}

/** A branch whose target is an instruction of the case or the end (forward only, so cases end). */
function genBranch(r: Rng, index: number, count: number, st: DataView, codeStart: number): number {
  const fwd = 1 + r.below(count - index); // 1..(count-index): the end is index+fwd == count
  const rt = r.below(31);
  switch (r.below(7)) {
    case 0:
      return (0x14000000 | fwd) >>> 0; // B
    case 1:
      return (0x94000000 | fwd) >>> 0; // BL
    case 2:
      return (0x54000000 | (fwd << 5) | r.below(16)) >>> 0; // B.cond (incl. AL/NV)
    case 3:
      return ((r.below(2) << 31) | 0x34000000 | (r.below(2) << 24) | (fwd << 5) | rt) >>> 0; // CBZ/CBNZ
    case 4: {
      const b = r.below(64);
      return (((b >> 5) << 31) | 0x36000000 | (r.below(2) << 24) | ((b & 31) << 19) | (fwd << 5) | rt) >>> 0;
    }
    default: {
      // BR / BLR / RET through a register loaded with the target address
      const reg = 1 + r.below(29);
      const target = BigInt(codeStart + 4 * (index + fwd));
      setX(st, reg, target);
      const opc = r.pick([0, 1, 2]); // BR, BLR, RET
      return (0xd61f0000 | (opc << 21) | (reg << 5)) >>> 0;
    }
  }
}

function genLdst(r: Rng, st: DataView, locked: ReadonlySet<number> = new Set()): number {
  for (;;) {
    let w = r.u32();
    w = ((w & ~(1 << 25)) | (1 << 27)) >>> 0; // op0 = x1x0: loads and stores
    // no PC-relative literal loads: their data would be the harness's own code
    if (bits(w, 29, 27) === 0b011 && bits(w, 25, 24) === 0b00) continue;
    const rn = r.chance(0.2) ? 31 : r.below(8);
    if (locked.has(rn)) continue; // another instruction of the case needs this base value
    w = ((w & ~(31 << 5)) | (rn << 5)) >>> 0;
    const rt = bits(w, 4, 0);
    const rt2 = bits(w, 14, 10);
    const rs = bits(w, 20, 16);
    // avoid CONSTRAINED UNPREDICTABLE register overlaps: writeback with Rn == Rt/Rt2, pairs with Rt == Rt2,
    // store-exclusive with Rs == Rt/Rn
    if (rn !== 31 && (rt === rn || rt2 === rn)) continue;
    if (bits(w, 29, 27) === 0b101 && rt === rt2) continue; // LDP/STP family
    const exclusive = bits(w, 29, 24) === 0b001000;
    if (exclusive && (rs === rt || rs === rn || rs === rt2)) continue;
    if (exclusive && bits(w, 21, 21) === 1 && rt === rt2) continue; // LDXP/LDAXP with Rt == Rt2
    // Exclusives get aligned addresses: qemu-aarch64 skips the architectural alignment check of a
    // store-exclusive whose monitor is not armed, typevisor does not.
    const misalign = !exclusive && r.chance(0.2) ? r.below(8) : 0;
    if (rn !== 31) setX(st, rn, BigInt(SCRATCH + 0x8000 + 16 * r.below(128) + misalign));
    return w;
  }
}

/** Scalar FP groups by bits 15:10 (mask, value) when bit 21 is set: most random words are unallocated. */
const FP_GROUPS: [number, number][] = [
  [0x3f, 0x00], // conversion between FP and integer
  [0x1f, 0x10], // data processing, 1 source
  [0x0f, 0x08], // compare
  [0x07, 0x04], // immediate (FMOV)
  [0x03, 0x01], // conditional compare
  [0x03, 0x02], // data processing, 2 source
  [0x03, 0x03], // conditional select
];

function genFp(r: Rng): number {
  for (;;) {
    let w = ((r.pick([0x1e, 0x1f, 0x9e, 0x1e, 0x1e]) << 24) | (r.u32() & 0xffffff)) >>> 0;
    if (r.chance(0.8)) {
      w = (w & ~(3 << 22)) | (r.below(2) << 22) | (1 << 21); // single or double, bit 21 set
      if (w >>> 24 !== 0x1f) {
        const [m, v] = r.pick(FP_GROUPS);
        const field = ((bits(w, 15, 10) & ~m) | v) & 0x3f;
        w = (w & ~(0x3f << 10)) | (field << 10);
      }
      w >>>= 0;
    }
    if (!excluded(w)) return w;
  }
}

/** AdvSIMD groups (mask, value) over the whole word: most random words in the space are unallocated. */
const SIMD_GROUPS: [number, number][] = [
  [0x9f200400, 0x0e200400], // three same
  [0x9f200c00, 0x0e200000], // three different
  [0x9f3e0c00, 0x0e200800], // two-register miscellaneous
  [0x9f3e0c00, 0x0e300800], // across lanes
  [0x9fe08400, 0x0e000400], // copy (DUP, INS, UMOV, SMOV)
  [0x9f800400, 0x0f000400], // shift by immediate (immh = 0 is modified immediate)
  [0x9f000400, 0x0f000000], // vector x indexed element
  [0xbf208c00, 0x0e000800], // permute
  [0xbfe08400, 0x2e000000], // EXT
  [0xbfe08c00, 0x0e000000], // TBL/TBX
  [0xdf200400, 0x5e200400], // scalar three same
  [0xdf3e0c00, 0x5e200800], // scalar two-register miscellaneous
  [0xdf3e0c00, 0x5e300800], // scalar pairwise
  [0xdf800400, 0x5f000400], // scalar shift by immediate
];

function genSimd(r: Rng): number {
  for (;;) {
    let w: number;
    if (r.chance(0.8)) {
      const [m, v] = r.pick(SIMD_GROUPS);
      w = ((r.u32() & ~m) | v) >>> 0;
    } else {
      const top = r.pick([0x0e, 0x0f, 0x2e, 0x2f, 0x4e, 0x4f, 0x6e, 0x6f, 0x5e, 0x5f, 0x7e, 0x7f]);
      w = ((top << 24) | (r.u32() & 0xffffff)) >>> 0;
    }
    if (!excluded(w)) return w;
  }
}

export function generateCase(r: Rng, cls: ClassName, codeStart: number): Case {
  const state = randomState(r, cls);
  const dv = new DataView(state.buffer);
  const n = 1 + r.below(cls === 'branch' ? 6 : 4);
  const insns: number[] = [];
  const locked = new Set<number>();
  for (let i = 0; i < n; i++) {
    switch (cls) {
      case 'int':
        insns.push(genInt(r));
        break;
      case 'branch':
        insns.push(genBranch(r, i, n, dv, codeStart));
        break;
      case 'ldst': {
        // An exclusive only comes first, while its base register still holds the aligned address
        // given here (an earlier load could make it misaligned; see genLdst).
        let w = genLdst(r, dv, locked);
        while (i > 0 && bits(w, 29, 24) === 0b001000) w = genLdst(r, dv, locked);
        if (i === 0 && bits(w, 29, 24) === 0b001000) locked.add(bits(w, 9, 5));
        insns.push(w);
        break;
      }
      case 'fp':
        insns.push(genFp(r));
        break;
      case 'simd':
        insns.push(genSimd(r));
        break;
    }
  }
  return { cls, insns, state, seed: r.u32() };
}

// ---------- outcomes ----------
export interface Outcome {
  signo: number;
  faultIndex: number;
  state: Uint8Array;
  diffs: Map<number, number>;
}

const SIGILL = 4;
const SIGTRAP = 5;
const SIGBUS = 7;
const SIGSEGV = 11;

/** Run cases on QEMU through the harness. */
async function runQemu(harness: string, cases: Case[], prologueWords: { n: number }): Promise<Outcome[]> {
  const parts: Buffer[] = [];
  for (const c of cases) {
    const h = Buffer.alloc(4 + c.insns.length * 4);
    h.writeUInt32LE(c.insns.length, 0);
    c.insns.forEach((w, i) => h.writeUInt32LE(w >>> 0, 4 + i * 4));
    const s = Buffer.alloc(4);
    s.writeUInt32LE(c.seed >>> 0, 0);
    parts.push(h, Buffer.from(c.state), s);
  }
  parts.push(Buffer.alloc(4));
  const input = Buffer.concat(parts);
  const out: Buffer = await new Promise((resolvePromise, reject) => {
    const p = spawn('qemu-aarch64', ['-cpu', 'cortex-a53', harness], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => chunks.push(d));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolvePromise(Buffer.concat(chunks))
        : reject(new Error(`qemu-aarch64 harness exited with ${code}`)),
    );
    p.stdin.end(input);
  });
  let o = 0;
  prologueWords.n = out.readUInt32LE(0);
  o = 4;
  const res: Outcome[] = [];
  for (let i = 0; i < cases.length; i++) {
    const signo = out.readUInt32LE(o);
    const faultIndex = out.readUInt32LE(o + 4);
    o += 8;
    const state = new Uint8Array(out.subarray(o, o + STATE_SIZE));
    o += STATE_SIZE;
    const nd = out.readUInt32LE(o);
    o += 4;
    const diffs = new Map<number, number>();
    for (let k = 0; k < nd; k++) {
      diffs.set(out.readUInt32LE(o), out.readUInt32LE(o + 4));
      o += 8;
    }
    res.push({ signo, faultIndex, state, diffs });
  }
  return res;
}

/** typevisor's side: one CPU at EL0 with an identity map of the harness's regions. */
export class TypevisorRunner {
  readonly mem = new GuestMemory(CODE, RAM_SIZE);
  readonly cpu: Arm64Cpu;

  constructor() {
    this.cpu = new Arm64Cpu(0, this.mem, new CodeCache(this.mem), { hvc: () => false, smc: () => false });
    const dv = this.mem.dv;
    const off = (pa: number): number => pa - CODE;
    // TTBR0 with T0SZ = 25 (39-bit VA): the walk starts at level 1. L1[1] -> L2 table, L2[0] -> L3 table
    // mapping 4 KiB pages over exactly what the harness maps under QEMU (code, state and scratch:
    // 0x4000_0000..0x4002_ffff): Normal memory (AttrIndx 0), AF, inner shareable, AP = 01 (EL0 and EL1
    // read/write), PXN.
    const l1 = PT_BASE;
    const l2 = PT_BASE + 0x1000;
    const l3 = PT_BASE + 0x2000;
    dv.setBigUint64(off(l1) + 8, BigInt(l2) | 3n, true);
    dv.setBigUint64(off(l2), BigInt(l3) | 3n, true);
    for (let p = 0; p < (SCRATCH + SCRATCH_SIZE - CODE) / 0x1000; p++) {
      dv.setBigUint64(
        off(l3) + p * 8,
        BigInt(CODE + p * 0x1000) | 3n | (1n << 10n) | (3n << 8n) | (1n << 6n) | (1n << 53n),
        true,
      );
    }
    const sys = this.cpu.sys;
    sys.MAIR_EL1 = 0xffn;
    // TBI0 as Linux sets it for user space: the top byte of a TTBR0 address is ignored.
    sys.TCR_EL1 = 25n | (1n << 23n) | (2n << 32n) | (1n << 8n) | (1n << 10n) | (3n << 12n) | (1n << 37n);
    sys.TTBR0_EL1 = BigInt(l1);
    sys.VBAR_EL1 = BigInt(VBAR);
    // M, C, I, plus EL0 access to CTR_EL0 (UCT), DC ZVA (DZE), cache maintenance (UCI) as Linux sets them.
    sys.SCTLR_EL1 = 0x30d00800n | 1n | (1n << 2n) | (1n << 12n) | (1n << 14n) | (1n << 15n) | (1n << 26n);
    sys.CPACR_EL1 = 3n << 20n;
    this.cpu.fpEn0 = true;
    this.cpu.fpEn1 = true;
    this.cpu.mmu.onRegsChanged();
  }

  /**
   * Run one case. `jit`: translate it to wasm units at once (wasm/translate.ts) and run them, instead of
   * interpreting one instruction at a time. A translated block runs on past the case's last word
   * into the zeroed rest of the page, where UDF #0 ends it: that UNDEF at the end address counts
   * as the case completing.
   */
  run(c: Case, prologueWords: number, jit = false): Outcome {
    const cpu = this.cpu;
    cpu.code.jit = jit;
    cpu.code.jitThreshold = 1;
    cpu.code.jitBatch = 1; // each unit compiled when its head gets hot
    cpu.code.wasmRegion = 512; // units of several basic blocks
    cpu.stopOnException = true;
    const mem = this.mem;
    const start = CODE + prologueWords * 4;
    const code = new Uint8Array(c.insns.length * 4);
    const cdv = new DataView(code.buffer);
    c.insns.forEach((w, i) => cdv.setUint32(i * 4, w >>> 0, true));
    // Clear the code page (the harness's prologue bytes do not matter: nothing reads them) and load the case.
    mem.load(CODE, new Uint8Array(0x1000), 'code');
    mem.load(start, code, 'case');
    const fill = scratchFill(c.seed);
    mem.load(SCRATCH, fill, 'scratch');
    const sdv = new DataView(c.state.buffer, c.state.byteOffset, STATE_SIZE);
    // registers
    cpu.setElSp(1, 1);
    cpu.setSpEl(0, sdv.getBigUint64(248, true));
    cpu.setElSp(0, 0);
    for (let i = 0; i < 31; i++) cpu.setXBig(i, sdv.getBigUint64(i * 8, true));
    cpu.nzcv = Number(sdv.getBigUint64(256, true) >> 28n) & 0xf;
    cpu.fpcr = Number(sdv.getBigUint64(264, true));
    cpu.fpsr = Number(sdv.getBigUint64(272, true));
    cpu.vU8.set(c.state.subarray(288, 800), 0);
    cpu.daif = 0;
    cpu.clearExclusive();
    cpu.waiting = false;
    cpu.off = false;
    cpu.setPc(BigInt(start));
    const end = start + c.insns.length * 4;
    let signo = 0;
    let faultIndex = 0;
    for (let steps = 0; steps < MAX_STEPS; steps++) {
      if (cpu.pcHi === 0 && cpu.pcLo === end) break;
      // A block runs only with MAX_BLOCK instructions of budget left (see Arm64Cpu.run).
      cpu.run(jit ? MAX_STEPS + MAX_BLOCK : 1);
      if (cpu.el !== 0) {
        const esr = Number(cpu.sys.ESR_EL1);
        const ec = esr >>> 26;
        const dfsc = esr & 0x3f;
        signo =
          ec === 0x00 || ec === 0x0e
            ? SIGILL
            : ec === 0x3c
              ? SIGTRAP
              : ec === 0x22 || ec === 0x26 || ((ec === 0x24 || ec === 0x25) && dfsc === 0x21)
                ? SIGBUS
                : SIGSEGV;
        faultIndex = Number((cpu.sys.ELR_EL1 - BigInt(start)) / 4n);
        if (jit && ec === 0 && faultIndex === c.insns.length) signo = 0; // the UDF after the case
        // registers as at the faulting instruction: back to EL0's view
        const spsr = Number(cpu.sys.SPSR_EL1);
        cpu.nzcv = spsr >>> 28;
        cpu.setElSp(0, 0);
        if (signo === 0) faultIndex = 0;
        break;
      }
      if (cpu.waiting) cpu.waiting = false;
    }
    const state = new Uint8Array(STATE_SIZE);
    const odv = new DataView(state.buffer);
    for (let i = 0; i < 31; i++) odv.setBigUint64(i * 8, cpu.xBig(i), true);
    odv.setBigUint64(248, cpu.getSpEl(0), true);
    odv.setBigUint64(256, BigInt(cpu.nzcv) << 28n, true);
    odv.setBigUint64(264, BigInt(cpu.fpcr >>> 0), true);
    odv.setBigUint64(272, BigInt(cpu.fpsr >>> 0), true);
    state.set(cpu.vU8.subarray(0, 512), 288);
    const diffs = new Map<number, number>();
    const now = mem.u8.subarray(SCRATCH - CODE, SCRATCH - CODE + SCRATCH_SIZE);
    for (let i = 0; i < SCRATCH_SIZE; i++) if (now[i] !== fill[i]) diffs.set(i, now[i]);
    return { signo, faultIndex, state, diffs };
  }
}

const REG_NAMES = [...Array.from({ length: 31 }, (_, i) => `x${i}`), 'sp', 'nzcv', 'fpcr', 'fpsr'];

/** Differences between QEMU's outcome and typevisor's, as text lines (empty when they agree). */
export function compare(q: Outcome, t: Outcome): string[] {
  const d: string[] = [];
  if (q.signo !== t.signo || (q.signo !== 0 && q.faultIndex !== t.faultIndex)) {
    d.push(
      `outcome: qemu ${q.signo ? `signal ${q.signo} at insn ${q.faultIndex}` : 'completed'}, typevisor ${t.signo ? `signal ${t.signo} at insn ${t.faultIndex}` : 'completed'}`,
    );
    return d;
  }
  const qd = new DataView(q.state.buffer, q.state.byteOffset);
  const td = new DataView(t.state.buffer, t.state.byteOffset);
  for (let i = 0; i < 35; i++) {
    if (i === 33) continue; // FPCR is input only
    if (i === 32 && q.signo !== 0) continue; // NZCV at a fault: both unchanged; harness reads PSTATE
    const a = qd.getBigUint64(i * 8, true);
    const b = td.getBigUint64(i * 8, true);
    if (a !== b) d.push(`${REG_NAMES[i]}: qemu 0x${a.toString(16)}, typevisor 0x${b.toString(16)}`);
  }
  for (let v = 0; v < 32; v++) {
    const a = Buffer.from(q.state.subarray(288 + v * 16, 304 + v * 16));
    const b = Buffer.from(t.state.subarray(288 + v * 16, 304 + v * 16));
    if (!a.equals(b))
      d.push(
        `v${v}: qemu ${Buffer.from(a).reverse().toString('hex')}, typevisor ${Buffer.from(b).reverse().toString('hex')}`,
      );
  }
  if (q.signo === 0) {
    const keys = new Set([...q.diffs.keys(), ...t.diffs.keys()]);
    const bad = [...keys].filter((k) => q.diffs.get(k) !== t.diffs.get(k)).sort((a, b) => a - b);
    if (bad.length) {
      d.push(
        `memory: ${bad.length} byte(s) differ, first at scratch+0x${bad[0].toString(16)}: qemu ${q.diffs.get(bad[0]) ?? 'unchanged'}, typevisor ${t.diffs.get(bad[0]) ?? 'unchanged'}`,
      );
    }
  }
  return d;
}

function describeCase(c: Case, prologueWords: number): string {
  const dv = new DataView(c.state.buffer, c.state.byteOffset);
  const regs = REG_NAMES.map((n, i) => `${n}=0x${dv.getBigUint64(i * 8, true).toString(16)}`).join(' ');
  const insns = c.insns.map((w) => (w >>> 0).toString(16).padStart(8, '0')).join(' ');
  return `  encodings: ${insns} (at 0x${(CODE + prologueWords * 4).toString(16)})\n  initial: ${regs}\n  scratch seed: ${c.seed}`;
}

/** Build the harness with the aarch64 cross compiler (cached by source mtime). */
export function buildHarness(): string {
  for (const tool of ['aarch64-linux-gnu-gcc', 'qemu-aarch64']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(
        `difftest needs ${tool}: run 'bash scripts/setup.sh' (installs gcc-aarch64-linux-gnu and qemu-user)`,
      );
    }
  }
  const src = join(root, 'scripts', 'difftest');
  const outDir = join(root, '.cache', 'difftest');
  mkdirSync(outDir, { recursive: true });
  const exe = join(outDir, 'harness');
  const inputs = [join(src, 'harness.c'), join(src, 'harness.S')];
  const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
  if (!existsSync(exe) || statSync(exe).mtimeMs < newest) {
    execFileSync('aarch64-linux-gnu-gcc', ['-static', '-O1', '-o', exe, ...inputs], { stdio: 'inherit' });
  }
  return exe;
}

export interface DiffResult {
  perClass: Map<ClassName, { passed: number; failed: number }>;
  passed: number;
  failed: number;
  /** Cases that ran to their end on QEMU (the rest raised a signal there). */
  completed: number;
  reports: string[];
}

/** Which executors each case runs on: the interpreter, and (by default) also as a translated block. */
export type Engines = 'interp' | 'both';

export async function difftest(
  seed: number,
  cases: number,
  classes: readonly ClassName[],
  maxReport: number,
  engines: Engines = 'both',
): Promise<DiffResult> {
  const harness = buildHarness();
  const r = new Rng(seed);
  const runner = new TypevisorRunner();
  const perClass = new Map<ClassName, { passed: number; failed: number }>();
  for (const c of classes) perClass.set(c, { passed: 0, failed: 0 });
  const reports: string[] = [];
  let passed = 0;
  let failed = 0;
  let completed = 0;
  const BATCH = 4000;
  let generated = 0;
  const pw = { n: 0 };
  await runQemu(harness, [], pw); // learn where case code starts (after the harness's prologue)
  const codeStart = CODE + pw.n * 4;
  while (generated < cases) {
    const batch: Case[] = [];
    for (let i = 0; i < BATCH && generated < cases; i++, generated++)
      batch.push(generateCase(r, classes[generated % classes.length], codeStart));
    const qs = await runQemu(harness, batch, pw);
    batch.forEach((c, i) => {
      if (qs[i].signo === 0) completed++;
      let t: Outcome;
      let diff: string[];
      try {
        t = runner.run(c, pw.n, false);
        diff = compare(qs[i], t);
        if (diff.length === 0 && engines !== 'interp') {
          t = runner.run(c, pw.n, true);
          diff = compare(qs[i], t).map((d) => `translated block: ${d}`);
        }
      } catch (e) {
        diff = [`typevisor threw: ${e instanceof Error ? e.message : String(e)}`];
      }
      const pc = perClass.get(c.cls)!;
      if (diff.length === 0) {
        pc.passed++;
        passed++;
      } else {
        pc.failed++;
        failed++;
        if (reports.length < maxReport)
          reports.push(`FAIL [${c.cls}]\n${describeCase(c, pw.n)}\n  diff:\n    ${diff.join('\n    ')}`);
      }
    });
  }
  return { perClass, passed, failed, completed, reports };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: '1' },
      cases: { type: 'string', default: '1000' },
      class: { type: 'string' },
      'max-report': { type: 'string', default: '100' },
      'interp-only': { type: 'boolean', default: false },
    },
  });
  const seed = Number(values.seed);
  const cases = Number(values.cases);
  if (!Number.isInteger(seed) || !Number.isInteger(cases) || cases < 1) {
    process.stderr.write('usage: npm run difftest -- --seed S --cases N [--class int|branch|ldst|fp|simd]\n');
    return 2;
  }
  let classes: readonly ClassName[] = CLASSES;
  if (values.class) {
    if (!(CLASSES as readonly string[]).includes(values.class)) {
      process.stderr.write(`--class: expected one of ${CLASSES.join(', ')}, got '${values.class}'\n`);
      return 2;
    }
    classes = [values.class as ClassName];
  }
  const res = await difftest(
    seed,
    cases,
    classes,
    Number(values['max-report']),
    values['interp-only'] ? 'interp' : 'both',
  );
  for (const rep of res.reports) process.stdout.write(rep + '\n');
  if (res.failed > res.reports.length)
    process.stdout.write(
      `(${res.failed - res.reports.length} more failures not shown; raise --max-report)\n`,
    );
  for (const [cls, c] of res.perClass)
    process.stdout.write(`${cls}: ${c.passed} passed, ${c.failed} failed\n`);
  process.stdout.write(
    `(${res.completed} of ${cases} cases ran to their end on QEMU; the others raised a signal there)\n`,
  );
  process.stdout.write(`${res.passed} passed, ${res.failed} failed\n`);
  return res.failed === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`difftest: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}

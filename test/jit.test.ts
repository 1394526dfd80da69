// The translator against the interpreter: for every instruction with a wasm emitter
// (src/cpu/arm64/wasm/emit.ts), random encodings of it run from random register states once through the interpreter
// and once as a translated block, and must leave the same registers, flags, memory, PC and exception
// state (V registers included; FP/SIMD disabled by CPACR_EL1 in one case of eight; every fourth case at
// EL0, with SCTLR_EL1's EL0 controls on or off at random; PSTATE.DAIF random, interrupt lines up at
// random where they start masked). Register values mix RAM addresses (so loads and stores mostly succeed), boundary values and
// random 64-bit numbers (carries, borrows, the multiply's high half).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';
import { xorshift32 } from './helpers/rng.js';
import { GUEST_EXCEPTION, type Arm64Cpu } from '../src/cpu/arm64/cpu.js';
import { a64Groups } from '../src/cpu/arm64/a64.js';
import { compilePattern } from '../src/cpu/arm64/decode.js';
import { emitters, enderEmitters, HANDLER } from '../src/cpu/arm64/wasm/emit.js';
import { Unit } from '../src/cpu/arm64/wasm/unit.js';
import { SCTLR_DZE, SCTLR_UCI, SCTLR_UCT, SCTLR_UMA } from '../src/cpu/arm64/sysregs.js';

const RAM = 1 << 20;
/**
 * SCTLR_EL1 bits each case sets or clears at random: SA (SP alignment checking at EL1: an access
 * through an SP that is not 16-byte aligned faults), then the EL0 controls: DC ZVA (DZE), CTR_EL0
 * (UCT), DAIF (UMA) and cache maintenance (UCI) allowed at EL0.
 */
const SCTLR_RANDOM = [1 << 3, SCTLR_DZE, SCTLR_UCT, SCTLR_UMA, SCTLR_UCI].map(BigInt);
/** B . */
const B_SELF = 0x14000000;
/** CBNZ XZR, .-4 (never taken). */
const CBNZ_XZR_BACK = 0xb5ffffff;
const CASES = 400;

const EDGES = [0, 1, -1, 0x7fffffff, 0x80000000 | 0, 0xfffffffe | 0, 8, 0xfff];
// Low halves whose product's low 32 bits are 0xffffffff: the multiply's double rounds up there.
const MUL_PAIR = [0xfffffffd | 0, 0xaaaaaaab | 0];

function randomState(cpu: Arm64Cpu, next: () => number): void {
  for (let i = 0; i < 32; i++) {
    const k = next() % 8;
    let lo: number;
    let hi: number;
    if (k < 4) {
      // an address in RAM, 8-byte aligned most of the time
      lo = (RAM_BASE + 0x1000 + (next() % (RAM - 0x3000))) & (k === 0 ? ~0 : ~7);
      hi = 0;
    } else if (k < 6) {
      lo = next() | 0;
      hi = next() | 0;
    } else if (k === 6) {
      lo = MUL_PAIR[i & 1];
      hi = next() | 0;
    } else {
      lo = EDGES[next() % EDGES.length];
      hi = EDGES[next() % EDGES.length];
    }
    cpu.r[i * 2] = lo;
    cpu.r[i * 2 + 1] = hi;
  }
  cpu.nzcv = next() & 15;
  cpu.daif = next() & 15;
  for (let i = 0; i < 128; i++) cpu.vU32[i] = next();
}

/**
 * In half the cases, the exclusive monitor armed as a load-exclusive of the instruction's size at
 * its Rn would leave it (the MMU is off: PA = VA), so that store-exclusives also succeed; else open.
 */
function armMonitor(cpu: Arm64Cpu, dv: DataView, insn: number, next: () => number): void {
  cpu.exclAddr = -1;
  const n = (insn >>> 5) & 31;
  const lo = cpu.r[n * 2] >>> 0;
  const off = lo - RAM_BASE;
  if (next() % 2 !== 0 || cpu.r[n * 2 + 1] !== 0 || off < 0 || off + 8 > RAM) return;
  const bytes = 1 << (insn >>> 30);
  const w = dv.getUint32(off, true);
  cpu.exclAddr = lo;
  cpu.exclSize = bytes;
  cpu.exclLo = bytes === 1 ? w & 0xff : bytes === 2 ? w & 0xffff : w;
  cpu.exclHi = bytes === 8 ? dv.getUint32(off + 4, true) : 0;
}

interface Snapshot {
  regs: number[];
  /** V0..V31. */
  v: number[];
  /** The exclusive monitor: address, size, value halves. */
  excl: number[];
  /** FP/SIMD enabled at EL1 (CPACR_EL1.FPEN): off in one case of eight, so that the trap is compared too. */
  fpOn: boolean;
  nzcv: number;
  /** PSTATE.{D,A,I,F} (random in the seed: MSR DAIFSet and MRS DAIF see every mask). */
  daif: number;
  pc: bigint;
  el: number;
  esr: bigint;
  far: bigint;
  ram: Buffer;
}

function snap(cpu: Arm64Cpu, ram: Uint8Array): Snapshot {
  return {
    regs: Array.from(cpu.r.subarray(0, 64)),
    v: Array.from(cpu.vU32.subarray(0, 128)),
    excl: [cpu.exclAddr, cpu.exclSize, cpu.exclLo, cpu.exclHi],
    fpOn: cpu.fpEn1,
    nzcv: cpu.nzcv,
    daif: cpu.daif,
    pc: cpu.pc,
    el: cpu.el,
    esr: cpu.sys.ESR_EL1,
    far: cpu.sys.FAR_EL1,
    ram: Buffer.from(ram.subarray(0, RAM)),
  };
}

/** Every pattern name with an emitter, with its compiled mask/value. */
function generatedPatterns(): { name: string; mask: number; value: number }[] {
  const out: { name: string; mask: number; value: number }[] = [];
  for (const group of a64Groups()) {
    for (const p of group) if (emitters.has(p.name) || enderEmitters.has(p.name)) out.push(compilePattern(p));
  }
  return out;
}

/** What the emitter of `name` answers for `insn` (true: it emitted code; a block ender's always does). */
function emits(name: string, insn: number): boolean | typeof HANDLER {
  const e = emitters.get(name);
  if (e === undefined) return enderEmitters.has(name);
  return e(new Unit(), insn);
}

test('jit: every emitter has a pattern to test', () => {
  const names = new Set(generatedPatterns().map((p) => p.name));
  for (const name of [...emitters.keys(), ...enderEmitters.keys()])
    assert.ok(names.has(name), `emitter ${name} matches no A64 pattern name`);
});

for (const pat of generatedPatterns()) {
  test(`jit: ${pat.name} as a translated block matches the interpreter (${CASES} random cases)`, () => {
    const t = makeCpu([], { ramSize: RAM });
    const { cpu, mem } = t;
    const code = cpu.code;
    code.jitBatch = 1; // translate() compiles the unit at once
    const next = xorshift32(0x9e3779b9 ^ pat.value);
    for (let i = 0; i < RAM; i += 4) mem.dv.setUint32(i, next(), true); // loads see random data
    let compared = 0;
    let generated = 0;
    for (let c = 0; c < CASES * 4 && compared < CASES; c++) {
      const insn = (pat.value | (next() & ~pat.mask)) >>> 0;
      if (code.decoder.decode(insn).name !== pat.name) continue; // a more specific pattern owns it
      // The code page: the instruction, then B . (a block ender); or, every other case, the
      // instruction then CBNZ XZR back to it (never taken), so that the translator takes it for a
      // loop's and emits its accesses with the inline TLB path, and B . after that.
      // (A block ender ends its block: it is always run alone.)
      const looped = compared % 2 === 1 && !enderEmitters.has(pat.name);
      mem.dv.setUint32(0, insn, true);
      mem.dv.setUint32(4, looped ? CBNZ_XZR_BACK : B_SELF, true);
      mem.dv.setUint32(8, B_SELF, true);
      code.invalidateAll();
      randomState(cpu, next);
      // In the cases without the loop (one instruction run), the interrupt lines up at random, each
      // masked in PSTATE.DAIF at the start: MSR DAIF may unmask one (taking it is the executor's).
      const lines = looped ? 0 : next() & 3;
      cpu.irqLine = (lines & 1) !== 0;
      cpu.fiqLine = (lines & 2) !== 0;
      cpu.daif |= ((lines & 1) << 1) | (lines >>> 1);
      cpu.sys.CPACR_EL1 = next() % 8 === 0 ? 0n : 3n << 20n;
      for (const bit of SCTLR_RANDOM)
        cpu.sys.SCTLR_EL1 = next() % 2 === 0 ? cpu.sys.SCTLR_EL1 | bit : cpu.sys.SCTLR_EL1 & ~bit;
      // every fourth case at EL0
      const el = compared % 4 === 2 ? 0 : 1;
      cpu.mmu.onRegsChanged();
      armMonitor(cpu, mem.dv, insn, next);
      const seed = snap(cpu, mem.u8);
      const runFrom = (jit: boolean): Snapshot => {
        cpu.r.set(seed.regs);
        cpu.vU32.set(seed.v);
        [cpu.exclAddr, cpu.exclSize, cpu.exclLo, cpu.exclHi] = seed.excl;
        cpu.sys.CPACR_EL1 = seed.fpOn ? 3n << 20n : 0n;
        cpu.nzcv = seed.nzcv;
        cpu.setElSp(el, el);
        cpu.r[62] = seed.regs[62];
        cpu.r[63] = seed.regs[63];
        cpu.daif = seed.daif;
        cpu.pcLo = RAM_BASE;
        cpu.pcHi = 0;
        cpu.sys.ESR_EL1 = 0n;
        cpu.sys.FAR_EL1 = 0n;
        mem.u8.set(seed.ram);
        code.invalidateAll();
        cpu.invalidateFetch();
        if (!jit) {
          cpu.stopOnException = true;
          cpu.run(looped ? 2 : 1);
          cpu.stopOnException = false;
        } else {
          const f = code.translate(code.page(RAM_BASE), 0);
          assert.notEqual(f, 0, 'the unit was translated');
          try {
            code.enter(cpu, f, 0);
            // the block ran on to the B . after it: where the interpreter stops
            assert.equal(cpu.pcLo, RAM_BASE + (looped ? 8 : 4));
          } catch (e) {
            if (e !== GUEST_EXCEPTION) throw e;
          }
        }
        return snap(cpu, mem.u8);
      };
      const a = runFrom(false);
      const b = runFrom(true);
      const what = `${pat.name} 0x${insn.toString(16).padStart(8, '0')} at EL${el} from x=${seed.regs.map((v) => (v >>> 0).toString(16)).join(',')} nzcv=${seed.nzcv}`;
      assert.deepEqual(b.regs, a.regs, `registers after ${what}`);
      assert.deepEqual(b.v, a.v, `V registers after ${what}`);
      assert.deepEqual(b.excl, a.excl, `exclusive monitor after ${what}`);
      assert.equal(b.nzcv, a.nzcv, `NZCV after ${what}`);
      assert.equal(b.daif, a.daif, `DAIF after ${what}`);
      assert.equal(b.pc, a.pc, `PC after ${what}`);
      assert.equal(b.el, a.el, `EL after ${what}`);
      assert.equal(b.esr, a.esr, `ESR after ${what}`);
      assert.equal(b.far, a.far, `FAR after ${what}`);
      assert.ok(b.ram.equals(a.ram), `memory after ${what}`);
      // The emitter must emit code for every encoding the interpreter does not reject as UNDEF (or
      // leave it to the handler on purpose): an emitter that gave up would pass the comparison
      // above through the handler call the translator falls back to.
      const undef = a.esr >> 26n === 0n && a.esr !== 0n;
      if (!undef) assert.notEqual(emits(pat.name, insn), false, `emitter of ${what} gave up`);
      compared++;
      if (a.el === 1 && a.esr === 0n) generated++; // ran without an exception
    }
    assert.ok(compared >= CASES / 2, `only ${compared} encodings of ${pat.name} decoded to it`);
    assert.ok(generated > 0, `no case of ${pat.name} ran without an exception`);
  });
}

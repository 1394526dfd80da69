// Unaligned loads and stores in translated code (wasm/runtime.ts): with SCTLR_EL1.A clear, one that
// stays in its page is made in wasm like an aligned one (no call of the MMU's JavaScript path); one
// across two pages takes that path and reads and writes both; with SCTLR_EL1.A set, the same
// translated code raises the alignment fault at the same instruction as the interpreter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  noAssembler,
  RECORDING_VECTORS,
  assemble,
  compareTiers,
  makeCpu,
  runToWfi,
  type TestCpu,
} from './helpers/arm64.js';

const BUF = 0x10000; // offset in RAM of the loop's data (RAM_BASE + BUF = 0x4001_0000)
// `bump` adds 1 to the 8-byte word at x1 and moves 4-byte and 2-byte pieces around it, 100 times;
// called with x1 at BUF + 3 (unaligned, in one page), then at BUF + 0xffc (the word crosses into the
// next page); x12 = 1: then SCTLR_EL1.A = 1 and bump again at BUF + 3. x20/x21: ESR and ELR of an
// exception taken to EL1.
const PROGRAM = `
    .text
_start:
    adr x8, vectors
    msr vbar_el1, x8
    movz x1, #0x4001, lsl #16
    add x1, x1, #3
    bl bump
    movz x1, #0x4001, lsl #16
    add x1, x1, #0xffc
    bl bump
    cbz x12, 1f
    mrs x9, sctlr_el1
    orr x9, x9, #2
    msr sctlr_el1, x9
    isb
    movz x1, #0x4001, lsl #16
    add x1, x1, #3
    bl bump
1:  wfi
bump:
    mov x3, #100
2:  ldr x0, [x1]
    add x0, x0, #1
    str x0, [x1]
    ldur w4, [x1, #9]
    add w4, w4, #3
    stur w4, [x1, #9]
    ldurh w5, [x1, #17]
    add w5, w5, #5
    sturh w5, [x1, #17]
    subs x3, x3, #1
    b.ne 2b
    ret
${RECORDING_VECTORS}
`;

function run(jit: boolean, x12 = 0): { t: TestCpu; n: number; reads: number; writes: number } {
  const { words } = assemble(PROGRAM);
  const t = makeCpu(words);
  compareTiers(t.cpu, jit);
  t.cpu.setX(12, x12, 0);
  // The MMU's JavaScript accesses (interpreter and translated code's slow path alike), counted.
  const mmu = t.cpu.mmu;
  let reads = 0;
  let writes = 0;
  for (const k of ['read16', 'read32', 'read64'] as const) {
    const f = mmu[k].bind(mmu);
    mmu[k] = (lo: number, hi: number, flags?: number): number => {
      reads++;
      return f(lo, hi, flags);
    };
  }
  for (const k of ['write16', 'write32'] as const) {
    const f = mmu[k].bind(mmu);
    mmu[k] = (lo: number, hi: number, v: number, flags?: number): void => {
      writes++;
      f(lo, hi, v, flags);
    };
  }
  const w64 = mmu.write64.bind(mmu);
  mmu.write64 = (lo: number, hi: number, vlo: number, vhi: number, flags?: number): void => {
    writes++;
    w64(lo, hi, vlo, vhi, flags);
  };
  for (let i = 0; i < 64; i++) {
    t.mem.u8[BUF + i] = 0x11 * (i & 15);
    t.mem.u8[BUF + 0xfe0 + i] = 0x0f * (i & 15) + 1;
  }
  const n = runToWfi(t, 100_000, 10);
  return { t, n, reads, writes };
}

test(
  "unaligned accesses in one page run in translated code; the results and count are the interpreter's",
  { skip: noAssembler },
  () => {
    const a = run(false);
    const b = run(true);
    const data = (r: { t: TestCpu }): string =>
      Buffer.from(r.t.mem.u8.subarray(BUF, BUF + 0x1040)).toString('hex');
    assert.equal(data(b), data(a), 'the same bytes in both pages');
    assert.equal(b.n, a.n, 'the same instruction count');
    // What the loop computes, from the initial bytes (little endian), at the in-page address:
    const init = Buffer.from(Array.from({ length: 64 }, (_, i) => 0x11 * (i & 15)));
    const w = init.readBigUInt64LE(3) + 100n;
    assert.equal(a.t.mem.dv.getBigUint64(BUF + 3, true), w, 'the word at +3: 100 increments');
    const across = b.t.mem.dv.getBigUint64(BUF + 0xffc, true);
    assert.equal(across, a.t.mem.dv.getBigUint64(BUF + 0xffc, true), 'the word across the pages');
    assert.equal(b.t.cpu.xBig(20), 0n, 'no exception');
    // interpreted: every access of the loops goes through the MMU's JavaScript (3 reads, 3 writes an
    // iteration); translated: the 100 words across the pages, and a few first iterations and TLB
    // misses (before unaligned accesses in a page ran in wasm: 404 each).
    assert.ok(a.reads >= 600 && a.writes >= 600, `interpreted: ${a.reads} reads, ${a.writes} writes`);
    assert.ok(
      b.reads < 150 && b.writes < 150,
      `translated: the in-page loop without the slow path (${b.reads} reads, ${b.writes} writes)`,
    );
    // TYPEVISOR_STATS counts the same: the 100 words across the pages read and written there
    const slow = b.t.cpu.code.jitStats.slow;
    assert.ok(slow >= 200 && slow < 300, `the stats' slow-path count: ${slow}`);
  },
);

test(
  "with SCTLR_EL1.A set, translated code raises the alignment fault at the interpreter's instruction",
  { skip: noAssembler },
  () => {
    const a = run(false, 1);
    const b = run(true, 1);
    const { sym } = assemble(PROGRAM);
    for (const r of [a, b]) {
      // EC 0x25 (data abort, same EL), IL, DFSC 0x21 (alignment)
      assert.equal(r.t.cpu.xBig(20), (0x25n << 26n) | (1n << 25n) | 0x21n, 'ESR_EL1: alignment fault');
      assert.equal(r.t.cpu.xBig(21), BigInt(0x4000_0000 + sym.bump + 4), 'ELR_EL1: the first ldr of bump');
    }
    assert.equal(b.n, a.n, 'the same instruction count');
  },
);

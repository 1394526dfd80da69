// Block enders with an inline path in translated code (wasm/emit.ts enderEmitters): MSR DAIF and
// IC IVAU. MSR DAIF that unmasks a pending interrupt leaves the unit right after it (where the
// interpreter takes the interrupt), one that leaves it masked runs on, and neither calls the
// handler at EL1. IC IVAU on a page another unit was translated from drops that code (the handler);
// on a page without code, once the TLB has it, it is done inline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RAM_BASE, countingHandlers, makeCpu, type TestCpu } from './helpers/arm64.js';

const MSR_DAIF_X1 = 0xd51b4221;
const ADD_X2_1 = 0x91000442; // add x2, x2, #1
const B_SELF = 0x14000000;
const IC_IVAU_X3 = 0xd50b7523;

/**
 * Interpret `n` instructions from word `idx` of the page at RAM offset `off` (the translator takes
 * only words that ran), then leave PC there.
 */
function warm(t: TestCpu, off: number, idx: number, n: number): void {
  t.cpu.code.jit = false;
  t.cpu.pcLo = RAM_BASE + off + idx * 4;
  t.cpu.pcHi = 0;
  t.step(n);
  t.cpu.code.jit = true;
}

/** Translate the unit at word `idx` of the page at RAM offset `off`, and run it (at most `limit` instructions). */
function enterUnit(t: TestCpu, off: number, idx: number, limit: number): number {
  const code = t.cpu.code;
  code.jitBatch = 1;
  const f = code.translate(code.page(RAM_BASE + off), idx);
  assert.notEqual(f, 0, 'the unit was translated');
  t.cpu.pcLo = RAM_BASE + off + idx * 4;
  t.cpu.pcHi = 0;
  return code.enter(t.cpu, f, limit);
}

for (const { what, lines, x1, leaves } of [
  { what: 'IRQ up, DAIF cleared', lines: 1, x1: 0, leaves: true },
  { what: 'IRQ up, I set', lines: 1, x1: 0x80, leaves: false },
  { what: 'FIQ up, I set, F clear', lines: 2, x1: 0x80, leaves: true },
  { what: 'FIQ up, F set', lines: 2, x1: 0x40, leaves: false },
  { what: 'no line up, DAIF cleared', lines: 0, x1: 0, leaves: false },
]) {
  test(`translated MSR DAIF (${what}) ${leaves ? 'leaves for the interrupt at the next instruction' : 'runs on'}, without its handler`, () => {
    // An ADD before it (its block holds X2 in a local), and one after.
    const words = [ADD_X2_1, MSR_DAIF_X1, ADD_X2_1, B_SELF];
    const t = makeCpu(words);
    const { cpu } = t;
    cpu.setX(1, 0x3c0, 0);
    warm(t, 0, 0, 4);
    cpu.daif = 0xf;
    cpu.irqLine = (lines & 1) !== 0;
    cpu.fiqLine = (lines & 2) !== 0;
    cpu.setX(1, x1, 0);
    cpu.setX(2, 0, 0);
    const { calls } = countingHandlers(cpu, [MSR_DAIF_X1], () => enterUnit(t, 0, 0, 100));
    assert.equal(calls, 0, 'no handler call');
    assert.equal(cpu.daif, (x1 >>> 6) & 0xf, 'DAIF as written');
    assert.equal(cpu.interruptPending(), leaves);
    if (leaves) {
      assert.equal(cpu.pcLo, RAM_BASE + 8, 'left before the second ADD');
      assert.equal(cpu.xBig(2), 1n, 'the first ADD ran, the second did not');
    } else {
      assert.equal(cpu.pcLo, RAM_BASE + 12, 'ran on to the B .');
      assert.equal(cpu.xBig(2), 2n, 'both ADDs ran');
    }
    // The interpreter: the same instruction, then the interrupt taken or the ADD run.
    const i = makeCpu(words);
    i.cpu.daif = 0xf;
    i.cpu.irqLine = (lines & 1) !== 0;
    i.cpu.fiqLine = (lines & 2) !== 0;
    i.cpu.setX(1, x1, 0);
    i.cpu.setX(2, 0, 0);
    i.step(3);
    assert.equal(i.cpu.xBig(2), leaves ? 1n : 2n, 'the interpreter agrees on the ADDs');
  });
}

test('translated IC IVAU drops the code of the page it names; on a page without code it needs no handler once the TLB has it', () => {
  const t = makeCpu([IC_IVAU_X3, B_SELF]);
  const { cpu, mem } = t;
  // A unit on page 1 (RAM offset 0x1000).
  mem.dv.setUint32(0x1000, ADD_X2_1, true);
  mem.dv.setUint32(0x1004, B_SELF, true);
  warm(t, 0x1000, 0, 2);
  enterUnit(t, 0x1000, 0, 0);
  assert.notEqual(mem.codePages[1], 0, 'page 1 holds code');
  cpu.setX(3, RAM_BASE + 0x1010, 0);
  const first = countingHandlers(cpu, [IC_IVAU_X3], () => enterUnit(t, 0, 0, 0));
  assert.equal(first.calls, 1, 'the handler ran');
  assert.equal(mem.codePages[1], 0, 'page 1 holds no code any more');
  // Page 5: no code. The first IC IVAU there fills the TLB (handler); later ones are inline.
  cpu.setX(3, RAM_BASE + 0x5040, 0);
  const miss = countingHandlers(cpu, [IC_IVAU_X3], () => enterUnit(t, 0, 0, 0));
  assert.equal(miss.calls, 1, 'a TLB miss: the handler');
  const hit = countingHandlers(cpu, [IC_IVAU_X3], () => enterUnit(t, 0, 0, 0));
  assert.equal(hit.calls, 0, 'a TLB hit on a page without code: inline');
  assert.equal(cpu.pcLo, RAM_BASE + 4, 'on at the next instruction');
  // Page 1 again, translated again: the TLB hits, but the page holds code: the handler.
  warm(t, 0x1000, 0, 2);
  enterUnit(t, 0x1000, 0, 0);
  cpu.setX(3, RAM_BASE + 0x1000, 0);
  const again = countingHandlers(cpu, [IC_IVAU_X3], () => enterUnit(t, 0, 0, 0));
  assert.equal(again.calls, 1, 'the handler for a page with code, TLB hit or not');
  assert.equal(mem.codePages[1], 0, 'dropped again');
});

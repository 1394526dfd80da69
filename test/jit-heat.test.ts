// When a block head gets translated: its heat is the instructions the interpreter ran from it plus
// CodeCache.entryHeat for each entry, so a head entered often for a few instructions at a time is
// translated after fewer entries than its instructions alone would take.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENTRY_HEAT } from '../src/cpu/arm64/cpu.js';
import { makeCpu, runToWfi } from './helpers/arm64.js';

const N = 1000;
// One block of two instructions that branches back to itself: each iteration enters its head once.
const LOOP = [
  0xd2800001 | (N << 5), // movz x1, #N
  0xf1000421, // subs x1, x1, #1 (head)
  0x54ffffe1, // b.ne .-4
  0xd503207f, // wfi
];

/** Instructions the interpreter ran before the loop's head was translated. */
function interpretedWith(entryHeat: number): number {
  const t = makeCpu(LOOP);
  const code = t.cpu.code;
  code.jitThreshold = 100;
  code.jitBatch = 1;
  code.entryHeat = entryHeat;
  runToWfi(t, 100_000, 10);
  assert.equal(t.cpu.xlo(1), 0, 'the loop ran to its end');
  assert.equal(t.cpu.icount, 1 + 2 * N + 1, 'every instruction counted once');
  assert.equal(code.jitStats.blocks, 1, 'the head was translated');
  return t.cpu.icount - code.jitStats.insns;
}

test('an interpreted entry adds entryHeat to its head beyond the instructions it ran', () => {
  assert.ok(ENTRY_HEAT > 0, 'entries weigh more than their instructions by default');
  // Two instructions an entry: the head reaches 100 after 50 entries counting instructions alone,
  // after 4 at 25 an entry.
  const alone = interpretedWith(0);
  const weighted = interpretedWith(23);
  assert.ok(alone >= 99 && alone <= 110, `instructions alone: ${alone} interpreted`);
  assert.ok(weighted >= 7 && weighted <= 14, `with entry heat: ${weighted} interpreted`);
});

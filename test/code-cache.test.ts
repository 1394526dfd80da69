// The code cache's sweep: a code page no vCPU has entered for a whole sweep interval is dropped with
// its decoded words and translated blocks (so V8 can free them) when the cache holds more translated
// units than its budget, and with its decoded words alone otherwise; the page a vCPU is running in is
// kept however long it stays there, and code that comes back runs from what memory holds now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';

const PAGE_A = [
  0x91000400, // add x0, x0, #1
  0xd1000421, // sub x1, x1, #1
  0xb5ffffc1, // cbnz x1, .-8
  0x140003fd, // b .+0x1000-12 (page B)
];
const PAGE_B = [
  0x91000442, // add x2, x2, #1
  0xd1000463, // sub x3, x3, #1
  0xb5ffffc3, // cbnz x3, .-8
  0xd503207f, // wfi
];

function machine(threshold = 10): ReturnType<typeof makeCpu> {
  const t = makeCpu(PAGE_A);
  PAGE_B.forEach((w, i) => t.mem.dv.setUint32(0x1000 + i * 4, w, true));
  t.cpu.code.jitThreshold = threshold;
  t.cpu.code.jitBatch = 1; // each unit compiled when its head gets hot
  t.cpu.code.sweepInsns = 500;
  t.cpu.code.unitBudget = 0; // over budget from the first unit: cold pages go with their units
  return t;
}

function runLoops(t: ReturnType<typeof makeCpu>, a: number, b: number): void {
  t.cpu.waiting = false;
  t.cpu.pcLo = RAM_BASE;
  t.cpu.setX(0, 0, 0);
  t.cpu.setX(1, a, 0);
  t.cpu.setX(2, 0, 0);
  t.cpu.setX(3, b, 0);
  // In slices, as a machine runs its vCPUs: the cache sweeps between slices.
  for (let slice = 0; slice < 1000 && !t.cpu.waiting; slice++) t.cpu.run(200);
  assert.ok(t.cpu.waiting, 'the program reaches its WFI');
}

test('a sweep drops code pages left behind and keeps the page the vCPU runs in', () => {
  const t = machine();
  const code = t.cpu.code;
  runLoops(t, 100, 5000);
  assert.equal(t.cpu.xlo(0), 100);
  assert.equal(t.cpu.xlo(2), 5000);
  assert.ok(code.jitStats.blocks >= 2, `both loops translated (${code.jitStats.blocks})`);
  assert.ok(code.epoch > 10, `sweeps ran while in page B's loop (epoch ${code.epoch})`);
  assert.equal(code.jitStats.evicted, 1, 'page A dropped once');
  assert.equal(code.pageCount, 1, 'only page B is cached');
  assert.equal(t.cpu.heldCodePage?.ramWord, 1024, 'the vCPU runs in page B');
  assert.equal(t.mem.codePages[0], 0, 'stores to page A no longer call the code cache');
  assert.equal(t.mem.codePages[1], 1, 'stores to page B still invalidate its code');
  assert.equal(code.chunksInUse, 1, "page A's decoded words went back to the pool; page B's stay");
});

test('code run again after its page was dropped is decoded from memory as it is now', () => {
  const t = machine();
  runLoops(t, 100, 5000);
  assert.equal(t.cpu.code.jitStats.evicted, 1);
  // Page A is not watched any more: rewrite its first instruction behind the cache's back.
  t.mem.dv.setUint32(0, 0x91000800, true); // add x0, x0, #2
  runLoops(t, 100, 5000);
  assert.equal(t.cpu.xlo(0), 200, 'the new instruction ran, not a stale translation');
  assert.equal(t.cpu.xlo(2), 5000);
});

test('under the unit budget a cold page keeps its units; a cold page without units is dropped', () => {
  const t = machine();
  const code = t.cpu.code;
  code.unitBudget = 100;
  runLoops(t, 100, 5000);
  assert.ok(code.jitStats.blocks >= 2, `both loops translated (${code.jitStats.blocks})`);
  assert.equal(code.jitStats.evicted, 0, 'page A stays: it has a unit and the cache is under budget');
  assert.equal(code.pageCount, 2);
  assert.equal(t.mem.codePages[0], 1, 'stores to page A still invalidate its code');
  const translated = code.jitStats.blocks;
  runLoops(t, 100, 5000);
  assert.equal(t.cpu.xlo(0), 100);
  assert.equal(code.jitStats.blocks, translated, 'nothing was translated again');

  // A loop too short to get hot on page A: its page has no unit, and is dropped.
  const cold = machine(1000);
  cold.cpu.code.unitBudget = 100;
  runLoops(cold, 3, 5000);
  assert.equal(cold.cpu.code.jitStats.evicted, 1, 'page A, with decoded words only, dropped once');
  assert.equal(cold.cpu.code.pageCount, 1);
  assert.equal(cold.mem.codePages[0], 0, 'stores to page A no longer call the code cache');
});

test('with sweeps off nothing is dropped', () => {
  const t = machine();
  t.cpu.code.sweepInsns = 0;
  runLoops(t, 100, 5000);
  assert.equal(t.cpu.code.jitStats.evicted, 0);
  assert.equal(t.cpu.code.pageCount, 2);
  assert.equal(t.cpu.code.chunksInUse, 2);
});

test('the pool of decoded words grows past its first size and keeps what it held', () => {
  // 600 pages, one instruction each (add x0, x0, #1; the last one: wfi), chained by falling through
  // to the next page: more chunks than the pool starts with.
  const pages = 600;
  const t = makeCpu([], { ramSize: (pages + 1) * 4096 });
  for (let i = 0; i < pages; i++) {
    for (let w = 0; w < 1024; w++) t.mem.dv.setUint32(i * 4096 + w * 4, 0x91000400, true);
  }
  t.mem.dv.setUint32(pages * 4096, 0xd503207f, true); // wfi
  t.cpu.code.sweepInsns = 0;
  t.cpu.code.jit = false;
  const before = t.cpu.code.decoded.length;
  t.cpu.run(pages * 1024 + 1);
  assert.ok(t.cpu.waiting);
  assert.equal(t.cpu.xlo(0), pages * 1024);
  assert.ok(t.cpu.code.decoded.length > before, 'the pool grew');
  assert.equal(t.cpu.code.chunksInUse, pages * 16 + 1);
  // Run it all again from the decoded words.
  t.cpu.waiting = false;
  t.cpu.pcLo = RAM_BASE;
  t.cpu.run(pages * 1024 + 1);
  assert.equal(t.cpu.xlo(0), 2 * pages * 1024);
  assert.equal(t.cpu.code.chunksInUse, pages * 16 + 1);
});

// Units compiled several to a module (CodeCache.jitBatch, flushPending): block heads that get hot
// wait for a batch, which is translated and compiled as one module; a lone hot head does not wait for
// a full batch; a head whose page was dropped while it waited is not translated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCpu, RAM_BASE, runToWfi, type TestCpu } from './helpers/arm64.js';

const N = 2000;
// A loop of four blocks joined by taken branches, so four block heads that heat at the same rate.
const FOUR_HEADS = [
  0xd2800001 | (N << 5), // 0: movz x1, #N
  0x91000400, // 1: add x0, x0, #1   (head: b.ne's target)
  0x14000002, // 2: b 4
  0xd4200000, // 3: brk #0 (never run)
  0x91000442, // 4: add x2, x2, #1   (head)
  0x14000002, // 5: b 7
  0xd4200000, // 6: brk #0
  0x91000463, // 7: add x3, x3, #1   (head)
  0x14000002, // 8: b 10
  0xd4200000, // 9: brk #0
  0xf1000421, // 10: subs x1, x1, #1 (head)
  0x54fffec1, // 11: b.ne 1
  0xd503207f, // 12: wfi
];

const state = (t: TestCpu) => ({
  x: [0, 1, 2, 3].map((n) => t.cpu.xlo(n)),
  nzcv: [t.cpu.n, t.cpu.z, t.cpu.c, t.cpu.v],
  count: t.cpu.icount,
});

test('block heads that get hot together are translated as one module, with the interpreter results', () => {
  const interp = makeCpu(FOUR_HEADS);
  interp.cpu.code.jit = false;
  runToWfi(interp, 100_000, 10);
  assert.deepEqual(state(interp).x, [N, 0, N, N]);

  const t = makeCpu(FOUR_HEADS);
  const code = t.cpu.code;
  code.jitThreshold = 100;
  code.jitBatch = 4;
  runToWfi(t, 100_000, 10);
  assert.deepEqual(state(t), state(interp), 'registers, flags and count as interpreted');
  assert.equal(code.jitStats.blocks, 4, 'the four heads were translated');
  assert.equal(code.jitStats.modules, 1, 'in one module');
  assert.equal(code.pendingCount, 0);
  assert.ok(
    code.jitStats.insns > (N * 8) / 2,
    `translated code ran most of the loop (${code.jitStats.insns})`,
  );
});

test('a lone hot head does not wait for a full batch', () => {
  const loop = [
    0xd2800001 | (3000 << 5), // movz x1, #3000
    0x91000400, // add x0, x0, #1
    0xf1000421, // subs x1, x1, #1
    0x54ffffc1, // b.ne -8
    0xd503207f, // wfi
  ];
  const t = makeCpu(loop);
  const code = t.cpu.code;
  code.jitThreshold = 100;
  assert.ok(code.jitBatch > 1, 'batches are the default');
  const ran = runToWfi(t, 100_000, 1); // one run: the head must not wait for the run to end
  assert.equal(t.cpu.xlo(0), 3000);
  assert.equal(
    code.jitStats.modules,
    1,
    'compiled once its wait cost a threshold of interpreted instructions',
  );
  assert.ok(code.jitStats.insns > ran / 2, `and it ran most instructions (${code.jitStats.insns} of ${ran})`);
});

test('a head whose page was dropped while it waited is not translated; one on a live page is', () => {
  const t = makeCpu(FOUR_HEADS);
  const code = t.cpu.code;
  code.jitBatch = 16;
  const dropped = code.page(RAM_BASE + 0x1000);
  assert.equal(code.translate(dropped, 0), 0, 'pending: no unit yet');
  assert.equal(code.pendingCount, 1);
  code.sweep();
  code.sweep(); // not entered for a whole interval: dropped
  assert.notEqual(code.page(RAM_BASE + 0x1000), dropped, 'the page was dropped (a new one now)');
  const live = code.page(RAM_BASE);
  code.translate(live, 1);
  assert.equal(code.pendingCount, 2);
  code.flushPending();
  assert.equal(code.pendingCount, 0);
  assert.equal(code.jitStats.blocks, 1, 'only the live head got a unit');
  assert.equal(dropped.blocks.length, 0);
  assert.equal(live.blocks.length, 1);
  assert.notEqual(live.blockAt?.[1], 0);
});

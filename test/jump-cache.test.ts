// The jump cache and the dispatcher (src/cpu/arm64/wasm/dispatch.ts): translated units go on to the
// next unit without a return to the executor, give the interpreter's results and instruction count,
// and never run a unit whose code was rewritten. (TLB invalidation: test/cpu-mmu.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noAssembler, assemble, compareTiers, makeCpu, runToWfi, RAM_BASE, type TestCpu } from './helpers/arm64.js';

// A loop on one page calls a function on the next page 300 times; then it rewrites the function's
// first instruction (add #1 -> add #2) with a store, and calls it 300 times more.
const PROGRAM = `
    .text
_start:
    mov x0, #0
    adr x3, func
    mov x1, #300
1:  bl func
    subs x1, x1, #1
    b.ne 1b
    ldr w5, add2
    str w5, [x3]
    dsb ish
    ic ivau, x3
    dsb ish
    isb
    mov x1, #300
loop2:
2:  bl func
    subs x1, x1, #1
    b.ne 2b
    wfi
add2:
    add x0, x0, #2
    .org 0x1000
func:
    add x0, x0, #1
    ret
`;

function load(jit: boolean): TestCpu {
  const t = makeCpu(assemble(PROGRAM).words);
  compareTiers(t.cpu, jit);
  return t;
}

test('translated units chain through the jump cache and match the interpreter', { skip: noAssembler }, () => {
  const interp = load(false);
  const n0 = runToWfi(interp, 100_000, 100);
  const t = load(true);
  const n = runToWfi(t, 100_000, 100);
  assert.equal(interp.cpu.xlo(0), 300 + 600, 'the interpreter saw the rewritten function');
  assert.equal(t.cpu.xlo(0), 300 + 600, 'translated code ran the rewritten function, not its stale unit');
  assert.equal(n, n0, 'the same instruction count');
  assert.equal(t.cpu.pcLo, interp.cpu.pcLo);
  const s = t.cpu.code.jitStats;
  assert.ok(s.insns > n / 2, `most instructions ran translated (${s.insns} of ${n})`);
  // 600 calls and 600 returns cross from one unit to another: the executor saw a few of them.
  assert.ok(s.entries < 100, `the executor entered translated code ${s.entries} times for 1200 crossings`);
});

test('a store to a page whose units the jump cache names sends the vCPU back to the executor', { skip: noAssembler }, () => {
  const t = load(true);
  runToWfi(t, 100_000, 100);
  // Rewrite the function from outside (a device or the host), then run the second loop again.
  t.mem.writePhys(RAM_BASE + 0x1000, 4, 0x91000c00); // add x0, x0, #3
  const { sym } = assemble(PROGRAM);
  t.cpu.setX(0, 0, 0);
  t.cpu.setX(1, 300, 0);
  t.cpu.waiting = false;
  t.cpu.pcLo = RAM_BASE + sym.loop2;
  t.cpu.invalidateFetch();
  runToWfi(t, 100_000, 100);
  assert.equal(t.cpu.xlo(0), 900, 'every call ran the new instruction');
});

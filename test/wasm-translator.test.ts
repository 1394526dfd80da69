// The WebAssembly translator's memory and its background compilation: guest RAM, the registers and
// the TLB share one WebAssembly memory; units compiled in the background start running once ready
// and give the same results as the interpreter; a unit compiled for code that changed meanwhile is
// thrown away; RAM past what one 32-bit wasm memory holds is refused with the limit in the message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { makeCpu, RAM_BASE } from './helpers/arm64.js';
import { GuestMemory } from '../src/devices/memory.js';
import { MAX_WASM_RAM } from '../src/cpu/arm64/wasm/layout.js';

// x1 = N; loop: x0 += 1; x1 -= 1; b.ne loop; wfi
const loop = (n: number): number[] => [
  0xd2800001 | (n << 5), // movz x1, #n
  0x91000400, // add x0, x0, #1
  0xf1000421, // subs x1, x1, #1
  0x54ffffc1, // b.ne -8
  0xd503207f, // wfi
];

test('guest RAM, registers and the TLB live in one shared WebAssembly memory', () => {
  const t = makeCpu(loop(10));
  const mem = t.mem;
  assert.ok(mem.wasm instanceof WebAssembly.Memory);
  assert.ok(mem.ram instanceof SharedArrayBuffer);
  assert.equal(mem.u8.buffer, mem.wasm.buffer, 'RAM is a view of the wasm memory');
  assert.equal(t.cpu.r.buffer, mem.wasm.buffer, 'the registers too');
  assert.equal(mem.ramOffset % 65536, 0, 'RAM starts on a 64 KiB boundary (host pages can be dropped)');
  t.cpu.setX(5, 0x1234, 0x5678);
  const dv = new DataView(mem.wasm.buffer);
  assert.equal(dv.getBigUint64(t.cpu.st + 5 * 8, true), 0x0000567800001234n, 'X5 as one little-endian i64');
});

test('RAM past one 32-bit WebAssembly memory is refused, naming the limit', () => {
  const mib = MAX_WASM_RAM / (1 << 20);
  assert.throws(
    () => new GuestMemory(RAM_BASE, MAX_WASM_RAM + (1 << 20)),
    new RegExp(`at most ${mib} MiB \\(one 32-bit WebAssembly memory\\)`),
  );
});

test('units compiled in the background start running and match the interpreter', async () => {
  const interp = makeCpu(loop(3000));
  interp.cpu.code.jit = false;
  interp.step(100_000);
  const t = makeCpu(loop(3000));
  const code = t.cpu.code;
  code.asyncCompile = true;
  code.jitThreshold = 10;
  let ran = 0;
  for (let k = 0; k < 200 && !t.cpu.waiting; k++) {
    ran += t.step(100);
    await tick(); // compilation finishes on V8's threads; the unit is installed from the event loop
  }
  assert.ok(t.cpu.waiting, 'the loop ran to its WFI');
  assert.equal(t.cpu.xlo(0), 3000);
  assert.equal(ran, interp.cpu.icount, 'the same instruction count as the interpreter');
  assert.ok(code.jitStats.blocks > 0, 'a unit was installed');
  assert.ok(code.jitStats.insns > 0, 'and ran instructions');
  // Units that became hot late may still be compiling: they finish (no compile is lost or stuck).
  for (let k = 0; k < 500 && code.compiling > 0; k++) await sleep(10);
  assert.equal(code.compiling, 0, 'no compile is left after 5 s');
});

test('a unit whose code changed while it compiled is thrown away', async () => {
  const t = makeCpu(loop(50));
  const code = t.cpu.code;
  code.asyncCompile = true;
  code.jitThreshold = 1;
  t.step(70); // the first block head is entered: its unit (the loop with it) starts compiling
  assert.ok(code.compiling > 0, 'a unit is compiling');
  // The guest rewrites the loop body (add x0, x0, #2) while the unit compiles.
  t.mem.writePhys(RAM_BASE + 4, 4, 0x91000800);
  while (code.compiling > 0) await tick();
  assert.equal(code.jitStats.blocks, 0, 'the stale unit was not installed');
  t.cpu.setX(0, 0, 0);
  t.cpu.setX(1, 10, 0);
  t.cpu.pcLo = RAM_BASE + 4;
  t.cpu.invalidateFetch();
  t.step(1000);
  assert.equal(t.cpu.xlo(0), 20, 'the new instruction ran');
});

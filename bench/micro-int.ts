// Micro benchmark of the integer data-processing and branch handlers: two tight loops run on the
// software CPU (test helper makeCpu: EL1, MMU off), reported in MIPS, next to the same loops run by
// qemu-aarch64 (user mode) when the cross toolchain and QEMU are installed.
//
//   npx tsc -p . && node dist/bench/micro-int.js

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCpu, RAM_BASE } from '../test/helpers/arm64.js';

// words from aarch64-linux-gnu-as
const SIMPLE = [
  0x91000421, // loop: add x1, x1, #1
  0x8b010042, //       add x2, x2, x1
  0xf1000400, //       subs x0, x0, #1
  0x54ffffa1, //       b.ne loop
  0x14000000, //       b .
];
const MIX = [
  0xca010c63, // mix: eor x3, x3, x1, lsl #3
  0x92089c64, //      and x4, x3, #0xff00ff00ff00ff00
  0xd347fc85, //      lsr x5, x4, #7
  0xd3453c66, //      ubfx x6, x3, #5, #11
  0x9a86b0a7, //      csel x7, x5, x6, lt
  0xeb0200ff, //      cmp x7, x2
  0xaa070042, //      orr x2, x2, x7
  0x0b030108, //      add w8, w8, w3
  0x9343a909, //      sbfx x9, x8, #3, #40
  0x9b03292a, //      madd x10, x9, x3, x10
  0xb4000040, //      cbz x0, .+8
  0xf1000400, //      subs x0, x0, #1
  0x54fffe81, //      b.ne mix
  0x14000000, //      b .
];

const ASM_SIMPLE = `loop: add x1, x1, #1\n add x2, x2, x1\n subs x0, x0, #1\n b.ne loop\n`;
const ASM_MIX = `mix: eor x3, x3, x1, lsl #3\n and x4, x3, #0xff00ff00ff00ff00\n lsr x5, x4, #7\n ubfx x6, x3, #5, #11\n csel x7, x5, x6, lt\n cmp x7, x2\n orr x2, x2, x7\n add w8, w8, w3\n sbfx x9, x8, #3, #40\n madd x10, x9, x3, x10\n cbz x0, .+8\n subs x0, x0, #1\n b.ne mix\n`;

interface Loop {
  name: string;
  code: number[];
  perIter: number;
  iters: number;
  asm: string;
}

const LOOPS: Loop[] = [
  { name: 'add/add/subs/b.ne', code: SIMPLE, perIter: 4, iters: 5_000_000, asm: ASM_SIMPLE },
  { name: 'logic/shift/bitfield/csel/madd mix', code: MIX, perIter: 13, iters: 1_540_000, asm: ASM_MIX },
];

function runOurs(l: Loop): { mips: number; insns: number; ms: number } {
  const t = makeCpu(l.code, { ramSize: 1 << 20 });
  t.cpu.setXBig(0, BigInt(l.iters));
  const total = l.iters * l.perIter;
  const t0 = process.hrtime.bigint();
  let done = 0;
  while (done < total) done += t.step(Math.min(1_000_000, total - done));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (t.cpu.xBig(0) !== 0n || t.cpu.pc !== BigInt(RAM_BASE + (l.code.length - 1) * 4)) {
    throw new Error(`${l.name}: loop did not finish where expected (pc 0x${t.cpu.pc.toString(16)})`);
  }
  return { mips: total / ms / 1000, insns: total, ms };
}

/** The same loop under qemu-aarch64 user mode: a static program that runs it and exits. */
function runQemu(l: Loop): { mips: number; ms: number } | string {
  let dir = '';
  try {
    dir = mkdtempSync(join(tmpdir(), 'tv-micro-'));
    const src = join(dir, 'l.S');
    const exe = join(dir, 'l');
    writeFileSync(
      src,
      `.global _start\n_start:\n ldr x0, =${l.iters}\n mov x1, #0\n mov x2, #0\n${l.asm} mov x0, #0\n mov x8, #93\n svc #0\n`,
    );
    execFileSync('aarch64-linux-gnu-gcc', ['-static', '-nostdlib', '-o', exe, src], { stdio: 'pipe' });
    const t0 = process.hrtime.bigint();
    execFileSync('qemu-aarch64', [exe], { stdio: 'pipe' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { mips: (l.iters * l.perIter) / ms / 1000, ms };
  } catch (e) {
    return `unavailable (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

export function benchMicroInt(): void {
  for (const l of LOOPS) {
    const runs = [runOurs(l), runOurs(l), runOurs(l)];
    const best = runs.reduce((a, b) => (a.mips > b.mips ? a : b));
    const q = runQemu(l);
    const peer =
      typeof q === 'string' ? q : `${q.mips.toFixed(0)} MIPS (${q.ms.toFixed(0)} ms incl. process start)`;
    process.stdout.write(
      `${l.name}: ${best.insns} insns, typevisor ${best.mips.toFixed(1)} MIPS (best of 3: ${runs
        .map((r) => r.ms.toFixed(0))
        .join('/')} ms) | qemu-aarch64 ${peer}\n`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) benchMicroInt();

// Port-I/O exit loop: typevisor's KVM_RUN loop (koffi) vs the same loop in C (exitloop.c, compiled
// with gcc now). Both run the identical real-mode guest. Last line:
//   kvm-exits: typevisor X/s, c Y/s, ratio R      (R = Y / X)

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureRealModeExitRate, realModeExitLoopGuest } from '../src/machine/kvm-probe.js';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/programs/exitloop.c');

export async function benchKvmExits(
  opts: { exits?: number; log?: (s: string) => void } = {},
): Promise<{ typevisor: number; c: number; ratio: number }> {
  const n = opts.exits ?? Number(process.env.KVM_EXITS ?? 200_000);
  const log = opts.log ?? ((s: string) => console.log(s));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-kvm-exits-'));
  try {
    const exe = path.join(dir, 'exitloop');
    execFileSync('gcc', ['-O2', '-o', exe, SRC], { stdio: 'pipe' });
    const hex = Buffer.from(realModeExitLoopGuest(n)).toString('hex');
    // Warm up both (a first short run of each, not timed), then measure.
    const warm = Math.min(n, 10_000);
    await measureRealModeExitRate(warm);
    execFileSync(exe, [Buffer.from(realModeExitLoopGuest(warm)).toString('hex'), String(warm)], {
      encoding: 'utf8',
    });
    const tv = await measureRealModeExitRate(n);
    log(`typevisor: ${n} exits in ${tv.seconds.toFixed(3)} s = ${Math.round(tv.rate)}/s`);
    const out = execFileSync(exe, [hex, String(n)], { encoding: 'utf8' });
    const m = /rate (\d+)/.exec(out);
    if (!m) throw new Error(`exitloop printed: ${out}`);
    const c = Number(m[1]);
    log(`c reference: ${out.trim()}`);
    const ratio = c / tv.rate;
    log(`kvm-exits: typevisor ${Math.round(tv.rate)}/s, c ${c}/s, ratio ${ratio.toFixed(2)}`);
    return { typevisor: tv.rate, c, ratio };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  benchKvmExits().catch((e: unknown) => {
    console.error(`kvm-exits: ${(e as Error).message}`);
    process.exit(1);
  });
}

// SMP with a real Linux guest on 4 vCPUs: a static pthread program (test/helpers/smp-guest.c, built
// here with the cross compiler for armv8.0, so its atomics are LDAXR/STLXR loops and LDAR/STLR, not
// LSE) in a second initramfs appended to the default one (Linux unpacks concatenated archives; gzip
// members concatenate). A boot of `typevisor run --cpus 4`, driven through its console, checks:
// - 4 threads, one per vCPU, each add 1 to a counter N times with atomic_fetch_add and to another N
//   times under a pthread mutex: both end at exactly 4*N;
// - message passing (data words, then a flag with a store-release, or with a DMB between plain
//   stores; the reader loads the flag with load-acquire, or plain load then DMB, then the data)
//   never shows data older than the flag, over many rounds;
// - a ping-pong of 4-word messages between two vCPUs sees every word of every message exactly.
// It must hold as much for vCPUs run in turn on one thread as for vCPUs on their own host threads:
// one boot with the default (on a host with fewer than 4 cores: one thread), one with
// --vcpu-threads multi (4 threads, whatever the host's cores).

import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildDefaultImage, type DefaultImage } from '../src/image/build.js';
import { writeInitramfsWith } from '../src/boot/initramfs.js';
import { missingTool } from './helpers/tools.js';
import { BOOT_TIMEOUT_MS, marker, runGuest } from './helpers/run-guest.js';

const root = resolve(import.meta.dirname, '..', '..');
/** Increments per thread and counter: about 1 s of guest time on today's software CPU. */
const N = 200_000;
/** Rounds of each streamed message-passing variant. */
const MP_ROUNDS = 500_000;
/** Messages each way in the ping-pong. */
const PINGPONG_ROUNDS = 1000;
const THREADS = 4;

let image: DefaultImage | undefined;
let skipReason: string | false = missingTool('aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-objdump');
if (!skipReason) {
  try {
    image = await buildDefaultImage({ log: () => {} });
  } catch (e) {
    skipReason = `the default guest image cannot be built here: ${(e as Error).message}`;
  }
}
if (skipReason) process.stderr.write(`smp-guest.test: skipped: ${skipReason}\n`);

/** The instructions of one function in `objdump -d` output. */
function disassembly(dump: string, fn: string): string[] {
  const start = dump.indexOf(`<${fn}>:\n`);
  assert.ok(start >= 0, `no ${fn} in the program's disassembly`);
  const end = dump.indexOf('\n\n', start);
  return dump
    .slice(start, end < 0 ? undefined : end)
    .split('\n')
    .slice(1)
    .map((l) => /^\s*[0-9a-f]+:\s+(\S.*)$/.exec(l)?.[1] ?? '');
}

let dir: string | undefined;
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let built: string | undefined;
/** The program, built once and checked for exclusives, in an initramfs after the default one. */
function initrdWithProgram(): string {
  if (built) return built;
  dir = mkdtempSync(join(tmpdir(), 'typevisor-smp-'));
  // armv8.0 without outline atomics: the program's own atomics are inline exclusives (the
  // libgcc helpers that glibc links in pick LSE only on a CPU that has it, and ours has not).
  const bin = join(dir, 'smp-guest');
  execFileSync('aarch64-linux-gnu-gcc', [
    '-static',
    '-O2',
    '-pthread',
    '-march=armv8-a',
    '-mno-outline-atomics',
    '-o',
    bin,
    join(root, 'test', 'helpers', 'smp-guest.c'),
  ]);
  const dump = execFileSync('aarch64-linux-gnu-objdump', ['-d', '--no-show-raw-insn', bin], {
    encoding: 'latin1',
    maxBuffer: 256 * 1024 * 1024,
  });
  const lse = /^(ld(add|clr|eor|set|smax|smin|umax|umin)|st(add|clr|eor|set)|swp|cas)/;
  const wanted: Record<string, string[]> = {
    count: ['ldaxr', 'stlxr'], // atomic_fetch_add: an exclusive loop
    mp_writer: ['stlr'], // the flag's store-release
    mp_reader: ['ldar'], // the flag's load-acquire
    pingpong: ['ldar', 'stlr'],
  };
  for (const [fn, ops] of Object.entries(wanted)) {
    const insns = disassembly(dump, fn);
    assert.deepEqual(
      insns.filter((i) => lse.test(i)),
      [],
      `${fn} has no LSE atomics`,
    );
    for (const op of ops)
      assert.ok(
        insns.some((i) => i.startsWith(`${op} `) || i.startsWith(`${op}\t`)),
        `${fn} has ${op}`,
      );
  }

  const initrd = join(dir, 'initramfs.cpio.gz');
  writeInitramfsWith(image!.initrd, initrd, { 'bin/smp-guest': bin });
  built = initrd;
  return built;
}

async function checkGuest(t: TestContext, args: string[]): Promise<void> {
  const initrd = initrdWithProgram();
  const t0 = Date.now();
  const r = await runGuest(
    ['--cpus', '4', '--initrd', initrd, ...args],
    [
      // glibc's mutex takes CAS only when the CPU lists "atomics" (LSE); said in the diagnostic.
      'echo "@@features=$(grep -m1 Features /proc/cpuinfo | cut -d: -f2)"',
      `smp-guest ${N} ${MP_ROUNDS} ${PINGPONG_ROUNDS}; echo "@@status=$?"`,
      'poweroff -f',
      '',
    ].join('\n'),
  );
  t.diagnostic(
    `run: ${((Date.now() - t0) / 1000).toFixed(1)} s; in the guest: ${marker(r, 'seconds')}; ` +
      `${marker(r, 'mp_acqrel')}; dmb: ${marker(r, 'mp_dmb')}; CPU features: ${marker(r, 'features')}`,
  );
  const expected = String(THREADS * N);
  assert.equal(r.code, 0, r.err);
  assert.equal(marker(r, 'cpus'), '4', 'the program runs with 4 CPUs online');
  assert.equal(marker(r, 'expected'), expected);
  assert.equal(marker(r, 'atomic'), expected, 'atomic_fetch_add from 4 threads');
  assert.equal(marker(r, 'locked'), expected, 'increments under a pthread mutex from 4 threads');
  for (const v of ['mp_acqrel', 'mp_dmb']) {
    const m = /^checks (\d+) stale (\d+)$/.exec(marker(r, v));
    assert.ok(m, `${v}: ${marker(r, v)}`);
    assert.equal(m[2], '0', `${v}: no data older than the flag`);
  }
  assert.equal(marker(r, 'mp_stale'), '0');
  assert.equal(marker(r, 'pp_rounds'), String(PINGPONG_ROUNDS));
  assert.equal(marker(r, 'pp_stale'), '0', 'every ping-pong message seen whole');
  assert.equal(marker(r, 'smp_ok'), '1');
  assert.equal(marker(r, 'status'), '0', 'the program exits with status 0');
}

test(
  '--cpus 4, default vCPU threading: exclusives and a mutex count exactly from 4 threads; message passing never sees stale data',
  { skip: skipReason, timeout: BOOT_TIMEOUT_MS },
  (t) => checkGuest(t, []),
);

test(
  '--cpus 4 --vcpu-threads multi: the same on 4 vCPU threads',
  { skip: skipReason, timeout: BOOT_TIMEOUT_MS },
  (t) => checkGuest(t, ['--vcpu-threads', 'multi']),
);

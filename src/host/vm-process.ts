// How a VM process's Node.js is started: `bin/typevisor` (the command users run) and `typevisor
// create` (which spawns the VM server) both pass these. A VM process holds the guest RAM and one
// JavaScript heap that the software CPU fills with decoded and translated code at a high rate;
// these settings keep what V8 and malloc hold beyond that small. Measured booting the default
// guest to power-off (VMM memory beyond the guest RAM it touched, TYPEVISOR_STATS=1), two runs
// each on a 2-core host: 107-109 MiB and 5.6-5.7 s without them, 90-91 MiB and 4.9-5.1 s with them
// (stop 32; before the translator: 70.4 against 59.7-60.1 MiB).
//
// test/vm-process.test.ts checks that bin/typevisor passes the same ones.

import { availableParallelism } from 'node:os';

/**
 * V8's background threads (its optimizing compilers, for JavaScript and for WebAssembly, and its
 * concurrent collector) on a host with `cores` cores: one on a host of 2 cores or fewer, where more
 * would compete with the vCPU thread for the same cores (default guest's boot on 2 cores: 8.4-8.6 s
 * with Node's 4, 7.0-7.1 s with one), and fewer per-thread malloc arenas and stacks; four on larger
 * hosts, where every vCPU thread (threads/) warms up its own compiled code and one background thread
 * cannot keep up. Measured on a 16-core host: boot with 1 vCPU 12.6-12.9 s with one, 11.6 s with
 * four (VMM memory 4 MiB more); with --cpus 4 --vcpu-threads multi 17.5-19.7 s, 13.9-14.1 s.
 * bin/typevisor computes the same from `nproc` (test/vm-process.test.ts checks both).
 */
export function v8PoolSize(cores: number): number {
  return cores <= 2 ? 1 : 4;
}

/** Node.js/V8 options for a VM process. */
export const VM_NODE_OPTIONS: readonly string[] = [
  `--v8-pool-size=${v8PoolSize(availableParallelism())}`,
  // The young generation stays at 2 x 1 MiB (V8 would grow it to 2 x 16 MiB under the CPU's
  // allocation rate, and keep both resident).
  '--max-semi-space-size=1',
  // No baseline (Sparkplug) compiler: functions go from the bytecode interpreter straight to
  // TurboFan. The CPU's hot code is optimized either way; the baseline code of everything else was
  // 3 MiB of V8's code space (boot time unchanged).
  '--no-sparkplug',
  // V8's memory-over-speed mode (a slower-growing heap, GCs that give memory back sooner). Six
  // pairs of boots run side by side: 59.0-60.4 MiB beyond the guest, against 60.7-62.1 without;
  // boot time 38.4 s against 39.2 s (no slower).
  '--optimize-for-size',
];

/** Environment for a VM process (a variable the user has set is left as it is). */
export const VM_ENV: Readonly<Record<string, string>> = {
  // One malloc arena for all threads: freed compiler memory of the worker thread is reused by the
  // main thread instead of sitting in an arena of its own.
  MALLOC_ARENA_MAX: '1',
  // Give freed memory at the top of malloc's heap back at 128 KiB (glibc's default) for good. Setting
  // it turns off glibc's dynamic thresholds: once the 31 MiB kernel Image buffer was freed, they had
  // moved the trim threshold to 63 MiB, so compiler memory freed after a burst of translation
  // stayed resident. Measured (same boot, four runs without, two with): malloc's [heap] 7.3-8.7 MiB
  // at power-off, 5.3 MiB with it; VMM memory beyond the guest 62.0-63.4 MiB, 60.7-61.3 MiB with it.
  MALLOC_TRIM_THRESHOLD_: '131072',
  // The kvm engine runs each vCPU's KVM_RUN on a libuv pool thread (cpu/kvm/engine.ts), and a vCPU
  // waiting for its startup IPI holds its thread for good: with Node's 4 threads a 6-vCPU x86 guest
  // never ran its boot vCPU. The pool's size is fixed when it first starts, which may be before the
  // guest's config is read: 16 vCPUs and one thread for file I/O. (Threads start only if the pool
  // is used, with small stacks resident.)
  UV_THREADPOOL_SIZE: '17',
};

/** `env` with VM_ENV's defaults filled in. */
export function vmEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [k, v] of Object.entries(VM_ENV)) out[k] ??= v;
  return out;
}

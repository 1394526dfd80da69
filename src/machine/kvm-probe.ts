// Measuring this host's KVM: tiny 64-bit guests (hand-assembled, entered directly in long mode)
// that (1) make N port-I/O exits and (2) spin N times without exiting. Used by `doctor` and the
// kvm-exits benchmark.

import { X86Machine } from './x86-microvm.js';

const ENTRY = 0x100000;
const SINK_PORT = 0x10;

function imm32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** mov $n,%ecx; mov $0x10,%dx; 1: out %al,%dx; dec %ecx; jnz 1b; mov $0x501,%dx; out %al,%dx; hlt */
export function exitLoopGuest(n: number): Uint8Array {
  return Uint8Array.from([
    0xb9,
    ...imm32(n),
    0x66,
    0xba,
    SINK_PORT,
    0x00,
    0xee,
    0xff,
    0xc9,
    0x75,
    0xfb,
    0x66,
    0xba,
    0x01,
    0x05,
    0xee,
    0xf4,
  ]);
}

/** mov $n,%ecx; 1: dec %ecx; jnz 1b; mov $0x501,%dx; out %al,%dx; hlt */
export function computeLoopGuest(n: number): Uint8Array {
  return Uint8Array.from([0xb9, ...imm32(n), 0xff, 0xc9, 0x75, 0xfc, 0x66, 0xba, 0x01, 0x05, 0xee, 0xf4]);
}

export interface ProbeResult {
  count: number;
  seconds: number;
  /** count / seconds */
  rate: number;
}

/** Run a probe guest; it must make exactly `sinks` port-I/O exits to the sink port before it stops. */
async function runProbe(code: Uint8Array, count: number, sinks: number): Promise<ProbeResult> {
  const m = new X86Machine({ memoryMiB: 4, irqchip: false, mode: 'sync' });
  try {
    let sunk = 0;
    m.addPorts(SINK_PORT, 1, 'sink', { out: () => sunk++ });
    m.load(ENTRY, code, 'probe guest');
    m.setupLongMode(0, ENTRY, 0);
    const t0 = process.hrtime.bigint();
    const r = await m.run();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.reason !== 'exit') throw new Error(`probe guest stopped unexpectedly (${r.reason})`);
    if (sunk !== sinks) throw new Error(`probe guest made ${sunk} sink exits, expected ${sinks}`);
    return { count, seconds, rate: count / seconds };
  } finally {
    m.close();
  }
}

/** Port-I/O exits per second through typevisor's KVM_RUN loop. */
export function measureExitRate(n = 200_000): Promise<ProbeResult> {
  return runProbe(exitLoopGuest(n), n, n);
}

/** Guest loop iterations per second (two instructions each) with no exits. */
export function measureComputeRate(n = 200_000_000): Promise<ProbeResult> {
  return runProbe(computeLoopGuest(n), n, 0);
}

/** Real-mode exit loop at CS base 0 (the bench's guest, shared with its C reference). */
export function realModeExitLoopGuest(n: number): Uint8Array {
  return Uint8Array.from([
    0x66,
    0xb9,
    ...imm32(n),
    0xba,
    SINK_PORT,
    0x00,
    0xee,
    0x66,
    0x49,
    0x75,
    0xfb,
    0xba,
    0x01,
    0x05,
    0xee,
    0xf4,
  ]);
}

/** Run the real-mode exit loop at 0x1000 through typevisor's KVM_RUN loop. */
export async function measureRealModeExitRate(n: number): Promise<ProbeResult> {
  const m = new X86Machine({ memoryMiB: 2, irqchip: false, mode: 'sync' });
  try {
    let sunk = 0;
    m.addPorts(SINK_PORT, 1, 'sink', { out: () => sunk++ });
    m.load(0x1000, realModeExitLoopGuest(n), 'probe guest');
    m.setupRealMode(0, 0x1000);
    const t0 = process.hrtime.bigint();
    const r = await m.run();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.reason !== 'exit' || sunk !== n)
      throw new Error(`exit-loop guest stopped after ${sunk} of ${n} exits (${r.reason})`);
    return { count: n, seconds, rate: n / seconds };
  } finally {
    m.close();
  }
}

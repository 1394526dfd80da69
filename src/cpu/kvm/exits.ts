// The vCPU run loop: KVM_RUN, then dispatch the exit (port I/O to the port bus, MMIO to the guest's
// MMIO regions), until the guest stops or something asks the loop to stop.

import type { GuestMemory } from '../../memory/guest-memory.js';
import { EXIT, EXIT_NAMES, KvmError, type KvmVcpu, RUN } from './kvm.js';

export interface PortDevice {
  /** Read `size` bytes (1, 2 or 4) at `port`. */
  in(port: number, size: number): number;
  out(port: number, size: number, value: number): void;
}

/** x86 I/O port space: ranges of ports dispatched to devices. Unclaimed ports read all-ones. */
export class PortBus {
  private readonly ranges: { base: number; size: number; name: string; dev: PortDevice }[] = [];
  /** Accesses to unclaimed ports (diagnostics). */
  unhandled = 0;

  add(base: number, size: number, name: string, dev: PortDevice): void {
    for (const r of this.ranges) {
      if (base < r.base + r.size && r.base < base + size)
        throw new Error(`port range ${name} at 0x${base.toString(16)} overlaps ${r.name}`);
    }
    this.ranges.push({ base, size, name, dev });
  }

  find(port: number): { base: number; dev: PortDevice } | undefined {
    for (const r of this.ranges) if (port >= r.base && port < r.base + r.size) return r;
    return undefined;
  }

  in(port: number, size: number): number {
    const r = this.find(port);
    if (!r) {
      this.unhandled++;
      return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    }
    return r.dev.in(port, size);
  }

  out(port: number, size: number, value: number): void {
    const r = this.find(port);
    if (!r) {
      this.unhandled++;
      return;
    }
    r.dev.out(port, size, value);
  }
}

export type StopReason =
  | { reason: 'hlt' }
  | { reason: 'stopped'; why: string }
  | { reason: 'reboot' }
  | { reason: 'poweroff' }
  /** A test guest's exit port: the VM stops with this status. */
  | { reason: 'exit'; code: number };

export interface RunLoopOptions {
  ports: PortBus;
  mem: GuestMemory;
  /** Checked after every exit: a non-undefined value ends the loop with that reason. */
  stopRequested: () => StopReason | undefined;
  /** Before each KVM_RUN: a promise to wait for (the VM is paused), or undefined to enter at once. */
  gate?: () => Promise<void> | undefined;
  /** After each exit is handled (device polling). */
  afterExit?: () => void;
  /** Fail with a clear error after this many exits to the VMM (a guest flooding exits). */
  maxExits?: number;
  /** Count of exits by reason (filled in). */
  stats?: Record<string, number>;
}

export class GuestError extends KvmError {}

/** Handle the exit that is in kvm_run now. Returns a stop reason when the vCPU cannot go on. */
export function handleExit(v: KvmVcpu, o: RunLoopOptions): StopReason | undefined {
  const run = v.run;
  const reason = run.getUint32(RUN.exitReason, true);
  if (o.stats) {
    const k = EXIT_NAMES[reason] ?? String(reason);
    o.stats[k] = (o.stats[k] ?? 0) + 1;
  }
  switch (reason) {
    case EXIT.IO: {
      const dir = run.getUint8(32); // 1 = out
      const size = run.getUint8(33);
      const port = run.getUint16(34, true);
      const count = run.getUint32(36, true);
      let off = Number(run.getBigUint64(40, true));
      if (off + size * count > run.byteLength) throw new GuestError(`vCPU ${v.id}: bad port I/O data offset`);
      for (let i = 0; i < count; i++, off += size) {
        if (dir === 1) {
          const val =
            size === 1 ? run.getUint8(off) : size === 2 ? run.getUint16(off, true) : run.getUint32(off, true);
          o.ports.out(port, size, val);
        } else {
          const val = o.ports.in(port, size);
          if (size === 1) run.setUint8(off, val);
          else if (size === 2) run.setUint16(off, val, true);
          else run.setUint32(off, val >>> 0, true);
        }
      }
      return undefined;
    }
    case EXIT.MMIO: {
      const pa = Number(run.getBigUint64(32, true));
      const len = run.getUint32(48, true);
      const isWrite = run.getUint8(52) !== 0;
      if (isWrite) {
        if (len === 8) {
          o.mem.writePhys(pa, 4, run.getUint32(40, true));
          o.mem.writePhys(pa + 4, 4, run.getUint32(44, true));
        } else {
          const val =
            len === 1 ? run.getUint8(40) : len === 2 ? run.getUint16(40, true) : run.getUint32(40, true);
          o.mem.writePhys(pa, len, val);
        }
      } else if (len === 8) {
        run.setUint32(40, o.mem.readPhys(pa, 4), true);
        run.setUint32(44, o.mem.readPhys(pa + 4, 4), true);
      } else {
        const val = o.mem.readPhys(pa, len);
        for (let i = 0; i < len; i++) run.setUint8(40 + i, (val >>> (i * 8)) & 0xff);
      }
      return undefined;
    }
    case EXIT.HLT:
      return { reason: 'hlt' };
    case EXIT.INTR:
    case EXIT.IRQ_WINDOW_OPEN:
      return undefined;
    case EXIT.SHUTDOWN: {
      const rip = safeRip(v);
      throw new GuestError(`vCPU ${v.id}: guest shut down (triple fault) at rip ${rip}`, 'KVM_RUN');
    }
    case EXIT.FAIL_ENTRY: {
      const hw = run.getBigUint64(32, true);
      throw new GuestError(
        `vCPU ${v.id}: KVM could not enter the guest (hardware entry failure reason 0x${hw.toString(16)})`,
        'KVM_RUN',
      );
    }
    case EXIT.INTERNAL_ERROR: {
      const sub = run.getUint32(32, true);
      const what =
        sub === 1
          ? 'emulation failure'
          : sub === 2
            ? 'simultaneous exceptions'
            : sub === 3
              ? 'delivery event'
              : `suberror ${sub}`;
      throw new GuestError(`vCPU ${v.id}: KVM internal error: ${what} at rip ${safeRip(v)}`, 'KVM_RUN');
    }
    case EXIT.SYSTEM_EVENT: {
      const type = run.getUint32(32, true);
      return type === 2 ? { reason: 'reboot' } : { reason: 'poweroff' };
    }
    default:
      throw new GuestError(
        `vCPU ${v.id}: unexpected KVM exit ${EXIT_NAMES[reason] ?? reason} at rip ${safeRip(v)}`,
        'KVM_RUN',
      );
  }
}

function safeRip(v: KvmVcpu): string {
  try {
    return '0x' + v.getRegs().rip.toString(16);
  } catch {
    return '?';
  }
}

/** Run one vCPU on this thread until it stops. */
export function runLoopSync(v: KvmVcpu, o: RunLoopOptions): StopReason {
  const max = o.maxExits ?? Infinity;
  for (let n = 0; ; n++) {
    const stop = o.stopRequested();
    if (stop) return stop;
    if (n >= max)
      throw new GuestError(`vCPU ${v.id}: guest made more than ${max} exits to the VMM; stopped`, 'KVM_RUN');
    const r = v.runOnce();
    if (r < 0) continue;
    const s = handleExit(v, o);
    if (s) return s;
  }
}

/** Run one vCPU with KVM_RUN on a pool thread per entry; exits are handled on the main thread. */
export async function runLoopAsync(v: KvmVcpu, o: RunLoopOptions): Promise<StopReason> {
  const max = o.maxExits ?? Infinity;
  for (let n = 0; ; n++) {
    const stop = o.stopRequested();
    if (stop) return stop;
    if (n >= max)
      throw new GuestError(`vCPU ${v.id}: guest made more than ${max} exits to the VMM; stopped`, 'KVM_RUN');
    const gate = o.gate?.();
    if (gate) {
      await gate;
      continue; // the stop check again, after the pause
    }
    const r = await v.runAsync();
    if (r < 0) continue;
    const s = handleExit(v, o);
    o.afterExit?.();
    if (s) return s;
  }
}

// One VM's lifecycle: build the machine from a VmSpec, boot, run, pause, reboot, stop. This is also
// the library API (`import { Vm } from 'typevisor'`): console output is a readable stream, console
// input a writable one.

import { EventEmitter } from 'node:events';
import { residentBytes } from '../host/resident.js';
import { PassThrough, Writable } from 'node:stream';
import type { Machine, StopReason } from '../machine/machine.js';
import { Arm64VirtMachine } from '../machine/arm64-virt.js';
import { buildGuest, type GuestDevices } from './guest.js';
import { openNetBackends, type NetSpec } from './net.js';
import type { NetBackend } from '../devices/virtio/net.js';
import { BalloonPoller, balloonSpec, type BalloonSpec } from './balloon-policy.js';
import { SnapshotReader, writeSnapshot, type SnapshotStats } from './snapshot.js';
import { UserError } from '../host/errors.js';

export interface DiskSpec {
  path: string;
  readOnly: boolean;
}

export interface VsockSpec {
  /** The guest's context id (3 to 2^32-2). */
  cid: number;
  /** The host side's Unix socket; default: runtimeVsockPath() (VmHost: the VM's state directory). */
  uds?: string;
}

export interface VmSpec {
  name: string;
  /** Guest architecture (default aarch64) and engine (tcg: the software CPU; kvm: /dev/kvm). */
  arch?: 'aarch64' | 'x86_64';
  accel?: 'tcg' | 'kvm';
  cpus: number;
  memoryMiB: number;
  kernel: string;
  initrd?: string;
  dtb?: string;
  cmdline?: string;
  console: 'serial' | 'virtio';
  disks: DiskSpec[];
  /** virtio-net NICs, in order (eth0, eth1...). */
  nets?: NetSpec[];
  rng: boolean;
  /** A virtio-balloon: true for the defaults, or its settings. */
  balloon: boolean | BalloonSpec;
  /** Write the generated device tree here (before booting). */
  dumpDtb?: string;
  /** Derive the guest's counter from the instruction count (repeatable runs). */
  deterministic?: boolean;
  /**
   * Software CPU: each vCPU on its own host thread ('multi') or all on one ('single'; always with
   * `deterministic` and gdb); default: vcpuThreadsFor in arm64-guest.ts.
   */
  vcpuThreads?: 'multi' | 'single';
  /** Log each unimplemented instruction encoding once (stderr). */
  logUnimplemented?: boolean;
  /** virtio-vsock: the guest's CID and the host's Unix socket (Firecracker's convention). */
  vsock?: VsockSpec;
  /** What a guest reboot does: boot again (default) or stop. */
  onReboot?: 'restart' | 'destroy';
  /** Serve the GDB remote protocol here (src/api/gdb.ts); `wait`: hold the guest until gdb continues it. */
  gdb?: GdbSpec;
}

export interface GdbSpec {
  host: string;
  /** TCP port (0: any free one). */
  port: number;
  wait: boolean;
}

export interface BalloonInfo {
  targetMiB: number;
  balloonMiB: number;
  targetPages: number;
  actualPages: number;
  deflateOnOom: boolean;
  statsIntervalS: number;
  /** The guest's latest statistics by name (virtio 1.2 5.5.6.3; bytes or counts). */
  stats: Record<string, bigint>;
}

export type VmState = 'created' | 'running' | 'paused' | 'shutdown' | 'crashed';

export interface VmExit {
  /** error: the engine failed (a KVM error: triple fault, emulation failure). */
  reason: 'poweroff' | 'panic' | 'destroyed' | 'reboot' | 'error';
  /** Process exit code a CLI should use: 0 for a clean power-off. */
  exitCode: number;
  message: string;
}

const PANIC_MARKER = 'Kernel panic - not syncing';

export class Vm extends EventEmitter {
  /** Guest console output. */
  readonly console = new PassThrough();
  /** Guest console input (bytes are queued until the guest can take them; nothing is dropped). */
  readonly input: Writable;
  state: VmState = 'created';
  private machine: Machine | undefined;
  private devices: GuestDevices | undefined;
  /** The NICs' host side (passt, TAPs): opened before the first boot, kept across reboots. */
  private netBackends: NetBackend[] | undefined;
  private balloonPoller: BalloonPoller | undefined;
  private readonly inputQueue: Buffer[] = [];
  private panicSeen = false;
  private tail = '';
  private exitPromise: Promise<VmExit> | undefined;
  private destroyed = false;
  /** A shutdown was asked for: a guest reboot then ends the VM (x86's Ctrl-Alt-Del reboots). */
  private shutdownRequested = false;
  readonly startedAt = Date.now();
  boots = 0;

  constructor(readonly spec: VmSpec) {
    super();
    this.input = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.inputQueue.push(Buffer.from(chunk));
        this.machine?.engine.kick();
        cb();
      },
    });
  }

  /**
   * Build and boot the VM; resolves once the guest is running, or with `paused`, once it is ready to
   * run its first instruction (resume() starts it).
   */
  async start(opts: { paused?: boolean; restore?: SnapshotReader } = {}): Promise<void> {
    if (this.exitPromise) throw new Error(`VM ${this.spec.name} is already started`);
    try {
      await this.bootOnce(opts.restore);
    } catch (e) {
      this.closeNets();
      throw e;
    }
    if (opts.paused) this.pause();
    this.exitPromise = this.loop();
  }

  /** Resolves when the VM has stopped for good. */
  wait(): Promise<VmExit> {
    if (!this.exitPromise) throw new Error(`VM ${this.spec.name} is not started`);
    return this.exitPromise;
  }

  pause(): void {
    this.machine?.engine.pause();
    if (this.state === 'running') this.state = 'paused';
  }

  resume(): void {
    this.machine?.engine.resume();
    if (this.state === 'paused') this.state = 'running';
  }

  /**
   * Ask the guest to power off (like `xl shutdown`): the board's power-off request first (arm64-virt:
   * the power key; x86-microvm: Ctrl-Alt-Del, after which the guest's reboot ends the VM), then, for
   * guests that ignore it, after `graceMs` the kernel's own magic SysRq sync / remount read-only /
   * power off (x86-microvm, which has no ACPI power-off: reboot), sent over the console. Resolves at
   * once; use wait() for the power-off.
   */
  requestShutdown(graceMs = 5000): void {
    const boots = this.boots;
    this.shutdownRequested = true;
    const delivered = this.devices?.requestPowerOff() ?? false;
    const last = this.machine?.sysrqPowerOffKey ?? 'o';
    const t = setTimeout(
      () => {
        if (this.boots === boots && this.state === 'running') this.sysrqSequence(['s', 'u', last]);
      },
      delivered ? graceMs : 0,
    );
    t.unref();
  }

  /** Ask the guest to reboot: magic SysRq sync, remount read-only, reboot. */
  requestReboot(): void {
    this.sysrqSequence(['s', 'u', 'b']);
  }

  /** Send SysRq keys one after another, 500 ms apart, retrying while the console cannot take them. */
  private sysrqSequence(keys: string[]): void {
    const [k, ...rest] = keys;
    if (k === undefined || this.exitPromise === undefined || this.state === 'shutdown') return;
    const sent = this.devices?.sysrq(k) ?? false;
    this.machine?.engine.kick();
    setTimeout(() => this.sysrqSequence(sent ? rest : keys), sent ? 500 : 100).unref();
  }

  /** Set the balloon target: the memory the guest should keep, in MiB. False when there is no balloon. */
  setBalloonTarget(mib: number): boolean {
    const b = this.devices?.balloon;
    if (!b) return false;
    const pages = Math.max(0, Math.floor(((this.spec.memoryMiB - mib) * 1024 * 1024) / 4096));
    b.setTarget(pages);
    return true;
  }

  /** Balloon state (target the guest should keep and actual held by the balloon in MiB, statistics), if any. */
  balloonInfo(): BalloonInfo | undefined {
    const b = this.devices?.balloon;
    if (!b) return undefined;
    return {
      targetMiB: this.spec.memoryMiB - (b.targetPages * 4096) / 1048576,
      balloonMiB: (b.actualPages * 4096) / 1048576,
      targetPages: b.targetPages,
      actualPages: b.actualPages,
      deflateOnOom: balloonSpec(this.spec.balloon)?.deflateOnOom ?? true,
      statsIntervalS: this.balloonPoller?.intervalS ?? 0,
      stats: b.stats,
    };
  }

  /** Poll the balloon's statistics every `seconds` (0: stop). False when there is no balloon. */
  setBalloonStatsInterval(seconds: number): boolean {
    if (!this.balloonPoller) return false;
    this.balloonPoller.setInterval(seconds);
    return true;
  }

  /** Stop the VM at once (like `xl destroy`): the guest gets no chance to flush. */
  destroy(): void {
    this.destroyed = true;
    this.machine?.engine.stop('stopped');
  }

  /** Instructions retired (0 where the engine cannot count them: kvm) and vCPU count, for `list`. */
  stats(): { instructions: number; cpus: number; memoryMiB: number } {
    return {
      instructions: this.machine?.engine.instructions ?? 0,
      cpus: this.spec.cpus,
      memoryMiB: this.spec.memoryMiB,
    };
  }

  get machineForTests(): Machine | undefined {
    return this.machine;
  }

  get guestDevices(): GuestDevices | undefined {
    return this.devices;
  }

  /**
   * Write a snapshot of the VM to `path` (see snapshot.ts). The vCPUs are held at an instruction
   * boundary while it is written (a running VM is paused for it and resumed after); a paused VM
   * stays paused.
   */
  async save(path: string): Promise<SnapshotStats> {
    const m = this.machine;
    if (!m || (this.state !== 'running' && this.state !== 'paused'))
      throw new Error(`VM ${this.spec.name} is not running (${this.state}): there is nothing to save`);
    const wasPaused = m.engine.isPaused;
    m.engine.pause();
    try {
      await m.engine.held();
      return writeSnapshot(path, this.spec, m.saveState(), m.mem);
    } finally {
      if (!wasPaused) m.engine.resume();
    }
  }

  private async bootOnce(restore?: SnapshotReader): Promise<void> {
    this.devices?.close();
    this.machine?.close();
    if (restore) restore.checkSpec(this.spec);
    // Errors of a NIC's host side (no passt, no bridge, no permission) come before the guest starts.
    this.netBackends ??= await openNetBackends(this.spec.nets ?? [], this.spec.name);
    const { machine, devices } = await buildGuest(
      this.spec,
      (bytes) => this.output(bytes),
      this.netBackends,
      {
        restore: !!restore,
      },
    );
    if (restore) {
      try {
        restore.loadRam(machine.mem);
        machine.restoreState(restore.header.machine);
      } catch (e) {
        devices.close();
        if (e instanceof UserError) throw e;
        throw new UserError(`snapshot ${restore.path}: ${(e as Error).message}`);
      }
    }
    this.machine = machine;
    this.devices = devices;
    const interval = this.balloonPoller?.intervalS;
    this.balloonPoller?.close();
    this.balloonPoller = undefined;
    const bs = balloonSpec(this.spec.balloon);
    if (devices.balloon && bs) {
      // A reboot keeps the polling interval the VM had.
      this.balloonPoller = new BalloonPoller(devices.balloon, this.spec.memoryMiB * 1048576, {
        ...bs,
        statsIntervalS: interval ?? bs.statsIntervalS,
      });
    }
    machine.engine.onSlice = () => {
      this.pumpInput();
      // Frames a TAP's reader has ready reach a busy guest now, not when the run loop next yields.
      for (const n of devices.nets) n.poll();
    };
    this.boots++;
    this.state = 'running';
    // 'boot': a machine was built (at start and at each guest reboot), before it runs.
    this.emit('boot', machine);
  }

  private closeNets(): void {
    for (const b of this.netBackends ?? []) b.close();
    this.netBackends = undefined;
  }

  private output(bytes: Uint8Array): void {
    const buf = Buffer.from(bytes);
    this.console.write(buf);
    if (!this.panicSeen) {
      this.tail = (this.tail + buf.toString('latin1')).slice(-256);
      if (this.tail.includes(PANIC_MARKER)) {
        this.panicSeen = true;
        // Let the kernel print its panic message, then stop.
        setTimeout(() => this.machine?.engine.stop('stopped'), 500).unref();
      }
    }
  }

  private pumpInput(): void {
    const dev = this.devices;
    if (!dev) return;
    while (this.inputQueue.length > 0) {
      const head = this.inputQueue[0];
      const n = dev.consoleIn(head);
      if (n <= 0) break;
      if (n >= head.length) this.inputQueue.shift();
      else this.inputQueue[0] = head.subarray(n);
    }
  }

  private async loop(): Promise<VmExit> {
    for (;;) {
      let reason: StopReason;
      try {
        reason = await this.machine!.engine.run();
      } catch (e) {
        return this.finish('crashed', {
          reason: 'error',
          exitCode: 1,
          message: `the vCPU engine failed: ${(e as Error).message}`,
        });
      }
      if (this.panicSeen)
        return this.finish('crashed', { reason: 'panic', exitCode: 3, message: 'guest kernel panicked' });
      if (this.destroyed || reason === 'stopped') {
        return this.finish('shutdown', { reason: 'destroyed', exitCode: 0, message: 'VM destroyed' });
      }
      if (reason === 'poweroff') {
        const code = this.machine!.exitCode;
        return this.finish('shutdown', {
          reason: 'poweroff',
          exitCode: code,
          message: code === 0 ? 'guest powered off' : `guest powered off with exit status ${code}`,
        });
      }
      // reboot
      if (this.shutdownRequested)
        return this.finish('shutdown', {
          reason: 'poweroff',
          exitCode: 0,
          message: 'guest shut down (it rebooted after the shutdown request)',
        });
      if (this.spec.onReboot === 'destroy') {
        return this.finish('shutdown', {
          reason: 'reboot',
          exitCode: 0,
          message: 'guest rebooted; on_reboot=destroy',
        });
      }
      this.emit('reboot');
      await this.bootOnce();
    }
  }

  private finish(state: VmState, exit: VmExit): VmExit {
    if (process.env.TYPEVISOR_STATS && this.machine instanceof Arm64VirtMachine) {
      const m = this.machine;
      // What the guest touched of its RAM; everything else resident is the VMM's own memory.
      const guestMiB = (residentBytes(m.mem.u8) ?? NaN) / 1048576;
      const rssMiB = process.resourceUsage().maxRSS / 1024;
      // Instructions of the vCPUs on this thread (with vCPU threads, each worker says its own).
      const local = m.cpus.reduce((n, c) => n + c.icount, 0);
      process.stderr.write(
        `typevisor: stats: ${m.instructions} instructions in ${((Date.now() - this.startedAt) / 1000).toFixed(1)} s; ` +
          `idle ${m.stats.idleMs} ms in ${m.stats.idleSleeps} sleeps; peak RSS ${rssMiB.toFixed(1)} MiB, ` +
          `guest RAM in use ${guestMiB.toFixed(1)} MiB, VMM beyond it ${(rssMiB - guestMiB).toFixed(1)} MiB; ` +
          `${m.code.jitStats.blocks} regions translated (${m.code.jitStats.modules} modules` +
          (m.threaded ? `, ${m.code.jitStats.adopted} regions from the other vCPUs' threads` : '') +
          `) in ${m.code.jitStats.ms.toFixed(0)} ms ran ` +
          `${((100 * m.code.jitStats.insns) / Math.max(1, local)).toFixed(0)}% of the instructions ` +
          (m.threaded ? "of this thread's vCPU " : '') +
          `in ${m.code.jitStats.entries} entries from the executor, calling ${m.code.jitStats.calls} instruction handlers ` +
          `and the MMU's slow path ${m.code.jitStats.slow} times; ` +
          `${m.code.pageCount} code pages cached, ${m.code.jitStats.evicted} dropped by sweeps\n`,
      );
      for (const [i, n] of (this.devices?.nets ?? []).entries())
        process.stderr.write(`typevisor: stats: eth${i}: ${n.describeStats()}\n`);
    }
    this.state = state;
    this.balloonPoller?.close();
    this.devices?.close();
    this.machine?.close();
    this.closeNets();
    this.console.end();
    this.emit('exit', exit);
    return exit;
  }
}

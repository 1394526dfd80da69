// The VM process: builds the Vm from its state directory entry, keeps the console (a bounded ring
// buffer of recent output plus any number of attached clients on console.sock) and offers the
// control operations that the API servers (src/api) expose on control.sock and qmp.sock.
//
// The protocol servers are handed in by the caller (cli/vm-server.ts), so this layer does not
// import the API layer above it.

import { resolveNets, type NetRequest, type NetSpec } from './net.js';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync, readFileSync } from 'node:fs';
import { balloonSpec } from './balloon-policy.js';
import { Vm, type VmExit, type VmSpec } from './vm.js';
import { resolve } from 'node:path';
import {
  entryPaths,
  MAX_SOCKET_PATH,
  readRecord,
  removeEntry,
  stateDir,
  type EntryPaths,
  type VmRecord,
} from './state.js';
import { guestCidProblem } from '../devices/virtio/vsock.js';
import { SnapshotReader, specForRestore, type SnapshotStats } from './snapshot.js';

/** Guest CPU time for `list`: instructions retired at a nominal 1 GHz, one instruction per cycle. */
export const NOMINAL_HZ = 1e9;

/** The states a VM process reports (xl's letters: r b p s c; Firecracker's "Not started"). */
export type HostState = 'not-started' | 'running' | 'blocked' | 'paused' | 'shutdown' | 'crashed';

export interface HostStatus {
  name: string;
  id: number;
  state: HostState;
  vcpus: number;
  /** Configured memory (MiB). */
  memoryMiB: number;
  /** Memory the guest has now: configured memory less the balloon's target (MiB). */
  currentMiB: number;
  instructions: number;
  /** Guest CPU time in seconds (instructions / NOMINAL_HZ). */
  cpuTimeS: number;
  boots: number;
  uptimeS: number;
  pid: number;
}

/** A failed control request (e.g. pausing a stopped VM); the API layers turn it into their error. */
export class ControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlError';
  }
}

/** Recent console output, bounded: a late attacher sees the last `capacity` bytes. */
export class ConsoleRing {
  private buf: Buffer;
  private len = 0;
  private head = 0; // next write position
  constructor(readonly capacity = 64 * 1024) {
    this.buf = Buffer.alloc(capacity);
  }
  write(data: Buffer): void {
    if (data.length >= this.capacity) {
      data.copy(this.buf, 0, data.length - this.capacity);
      this.head = 0;
      this.len = this.capacity;
      return;
    }
    const first = Math.min(data.length, this.capacity - this.head);
    data.copy(this.buf, this.head, 0, first);
    if (first < data.length) data.copy(this.buf, 0, first);
    this.head = (this.head + data.length) % this.capacity;
    this.len = Math.min(this.capacity, this.len + data.length);
  }
  contents(): Buffer {
    if (this.len < this.capacity) return Buffer.from(this.buf.subarray(this.head - this.len, this.head));
    return Buffer.concat([this.buf.subarray(this.head), this.buf.subarray(0, this.head)]);
  }
}

/** A client that falls this far behind is dropped rather than letting the VM process grow without bound. */
const MAX_CLIENT_BACKLOG = 8 * 1024 * 1024;

export interface VmHostEvents {
  /** QMP-style events: STOP, RESUME, SHUTDOWN, RESET, POWERDOWN. */
  event: [name: string, data?: Record<string, unknown>];
  /** The process should exit with this code now (the VM is gone). */
  gone: [code: number];
}

/** CPU time this process has used, in seconds. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export class VmHost extends EventEmitter<VmHostEvents> {
  readonly vm: Vm;
  readonly paths: EntryPaths;
  readonly ring = new ConsoleRing();
  private readonly consoleClients = new Set<Socket>();
  private readonly servers: Server[] = [];
  private readonly connections = new Set<Socket>();
  private started = false;
  private stopped: VmExit | undefined;
  private closing = false;
  private earlierInstructions = 0;
  /** QMP's query-migrate: the last snapshot written through `migrate` (QEMU's MigrationInfo). */
  lastMigration: Record<string, unknown> | undefined;

  constructor(
    readonly record: VmRecord,
    readonly stateRoot = stateDir(),
  ) {
    super();
    this.paths = entryPaths(record.name, stateRoot);
    if (record.spec.vsock) record.spec.vsock.uds ??= this.paths.vsock;
    this.vm = new Vm(record.spec);
    this.vm.console.on('data', (chunk: Buffer) => this.output(chunk));
    this.vm.on('reboot', () => {
      // The next boot gets a new machine: keep the count of the one before (CPU time accumulates).
      this.earlierInstructions += this.vm.machineForTests?.engine.instructions ?? 0;
      this.emit('event', 'RESET', { guest: true, reason: 'guest-reset' });
    });
  }

  /** Read NAME's entry (vm.json, or spec.json while `create` has not written vm.json yet). */
  static fromEntry(name: string, stateRoot = stateDir()): VmHost {
    const paths = entryPaths(name, stateRoot);
    let record = readRecord(name, stateRoot);
    if (!record) {
      const spec = JSON.parse(readFileSync(paths.spec, 'utf8')) as { spec: VmSpec } & Partial<VmRecord>;
      record = { id: 0, created: new Date().toISOString(), ...spec, name, pid: process.pid };
    }
    return new VmHost(record, stateRoot);
  }

  get isStarted(): boolean {
    return this.started;
  }

  /**
   * Firecracker's PUT /network-interfaces/{id} before InstanceStart: add (or replace, by id) a NIC on
   * TAP device `tap`. A bad MAC, a MAC another NIC has, or a VM already started is refused.
   */
  setNetworkInterface(id: string, tap: string, mac: string | undefined): void {
    if (this.started) throw new ControlError('The requested operation is not supported after starting the microVM.');
    const spec = this.vm.spec;
    const nets = [...(spec.nets ?? [])];
    const at = nets.findIndex((n) => n.id === id);
    const req: NetRequest = { id, mode: 'tap', tap, mac };
    const reqs: NetRequest[] = nets.map((n) => ({ ...n }));
    if (at >= 0) reqs[at] = req;
    else reqs.push(req);
    let resolved: NetSpec[];
    try {
      // NICs given at create time keep the bridge their network resolved to then.
      resolved = resolveNets(reqs, spec.name, (name, what) => {
        const bridge = nets.find((n) => n.network === name)?.bridge;
        if (bridge === undefined) throw new Error(`${what}: network ${name} is unknown`);
        return bridge;
      });
    } catch (e) {
      throw new ControlError(`network interface ${id}: ${(e as Error).message}`);
    }
    spec.nets = resolved;
  }

  /** Boot the guest (InstanceStart), or restore it from the snapshot its record names. */
  async start(opts: { paused?: boolean } = {}): Promise<void> {
    if (this.started) throw new ControlError('The VM is already running');
    this.started = true;
    // A start that fails leaves the VM started (its config can no longer change), as before.
    const restore = this.record.restore ? new SnapshotReader(this.record.restore) : undefined;
    await this.vm.start({ paused: opts.paused ?? this.record.spec.gdb?.wait, restore });
    void this.vm.wait().then((exit) => this.onExit(exit));
  }

  /**
   * Write a snapshot of the guest to `path` (Firecracker's PUT /snapshot/create: the VM must be
   * paused). Returns the file's size.
   */
  async saveSnapshot(path: string): Promise<SnapshotStats> {
    this.requireLive('create a snapshot');
    if (!this.started) throw new ControlError('cannot create a snapshot: the VM has not been started');
    if (this.vm.state !== 'paused')
      throw new ControlError('a snapshot is created from a paused VM: pause it first (PATCH /vm {"state": "Paused"})');
    try {
      return await this.vm.save(resolve(path));
    } catch (e) {
      throw new ControlError(`cannot create the snapshot: ${(e as Error).message}`);
    }
  }

  /**
   * Firecracker's PUT /snapshot/load, before the VM starts: the guest becomes the one saved in
   * `path` (its config replaces this VM's; the name stays), paused unless `resume`.
   */
  async loadSnapshot(path: string, resume: boolean): Promise<void> {
    this.requireLive('load a snapshot');
    if (this.started) throw new ControlError('a snapshot can only be loaded before the VM starts');
    let reader: SnapshotReader;
    try {
      reader = new SnapshotReader(resolve(path));
    } catch (e) {
      throw new ControlError((e as Error).message);
    }
    const spec = specForRestore(reader.header, this.record.name);
    if (spec.vsock) spec.vsock.uds = this.paths.vsock;
    // The VM object holds this spec: change it in place.
    const target = this.record.spec as unknown as Record<string, unknown>;
    for (const k of Object.keys(target)) delete target[k];
    Object.assign(target, spec);
    this.record.restore = reader.path;
    try {
      await this.start({ paused: !resume });
    } catch (e) {
      throw new ControlError((e as Error).message);
    }
  }

  status(): HostStatus {
    const st = this.vm.stats();
    const instructions = this.earlierInstructions + st.instructions;
    const bal = this.vm.balloonInfo();
    return {
      name: this.record.name,
      id: this.record.id,
      state: this.state(),
      vcpus: st.cpus,
      memoryMiB: st.memoryMiB,
      currentMiB: bal ? Math.round(bal.targetMiB) : st.memoryMiB,
      instructions,
      // The kvm engine cannot count instructions: its vCPU threads' time is this process's CPU time.
      cpuTimeS: this.vm.machineForTests?.engine.kind === 'kvm' ? cpuSeconds() : instructions / NOMINAL_HZ,
      boots: this.vm.boots,
      uptimeS: (Date.now() - Date.parse(this.record.created)) / 1000,
      pid: process.pid,
    };
  }

  state(): HostState {
    if (this.stopped) return this.stopped.reason === 'panic' ? 'crashed' : 'shutdown';
    if (!this.started) return 'not-started';
    if (this.vm.state === 'paused') return 'paused';
    if (this.vm.state !== 'running') return 'shutdown';
    const m = this.vm.machineForTests;
    // r: a vCPU is executing; b: every vCPU waits for an interrupt (WFI) or is off.
    if (m?.engine.idle) return 'blocked';
    return 'running';
  }

  get running(): boolean {
    const s = this.state();
    return s === 'running' || s === 'blocked';
  }

  private requireLive(what: string): void {
    if (this.stopped) throw new ControlError(`cannot ${what}: the VM has stopped (${this.stopped.message})`);
  }

  pause(): void {
    this.requireLive('pause');
    if (!this.started) return; // a not-started VM is already paused
    if (this.vm.state === 'paused') return;
    this.vm.pause();
    this.emit('event', 'STOP');
  }

  async resume(): Promise<void> {
    this.requireLive('resume');
    if (!this.started) {
      await this.start();
      this.emit('event', 'RESUME');
      return;
    }
    if (this.vm.state !== 'paused') return;
    this.vm.resume();
    this.emit('event', 'RESUME');
  }

  /** Ask the guest to power off (power key, then SysRq after graceMs). */
  shutdown(graceMs?: number): void {
    this.requireLive('shut down');
    if (!this.started) {
      this.destroy();
      return;
    }
    if (this.vm.state === 'paused') this.vm.resume();
    this.emit('event', 'POWERDOWN');
    this.vm.requestShutdown(graceMs);
  }

  reboot(): void {
    this.requireLive('reboot');
    if (!this.started) throw new ControlError('cannot reboot: the VM has not been started');
    if (this.vm.state === 'paused') this.vm.resume();
    this.vm.requestReboot();
  }

  /** Stop at once and exit the process (xl destroy). */
  destroy(): void {
    if (this.stopped || !this.started) {
      this.onExit(this.stopped ?? { reason: 'destroyed', exitCode: 0, message: 'VM destroyed' }, true);
      return;
    }
    this.vm.destroy();
    // A paused machine's run loop wakes on the stop and then returns.
  }

  /** Configure virtio-vsock before the VM starts (Firecracker's PUT /vsock). */
  setVsock(cid: number, uds: string | undefined): void {
    this.requireLive('configure vsock');
    if (this.started)
      throw new ControlError('vsock can only be configured before the VM starts (InstanceStart)');
    const bad = guestCidProblem(cid);
    if (bad) throw new ControlError(`invalid guest_cid: ${bad}`);
    const path = resolve(uds ?? this.paths.vsock);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      throw new ControlError(
        `invalid uds_path: ${path} is longer than the ${MAX_SOCKET_PATH} bytes a Unix socket allows`,
      );
    }
    this.record.spec.vsock = { cid, uds: path };
  }

  balloon():
    | {
        targetMiB: number;
        actualMiB: number;
        memoryMiB: number;
        targetPages: number;
        actualPages: number;
        deflateOnOom: boolean;
        statsIntervalS: number;
        stats: Record<string, bigint>;
      }
    | undefined {
    const spec = balloonSpec(this.record.spec.balloon);
    if (!spec) return undefined;
    const b = this.vm.balloonInfo();
    const mem = this.record.spec.memoryMiB;
    return {
      targetMiB: b?.targetMiB ?? mem,
      actualMiB: mem - (b?.balloonMiB ?? 0),
      memoryMiB: mem,
      targetPages: b?.targetPages ?? 0,
      actualPages: b?.actualPages ?? 0,
      deflateOnOom: b?.deflateOnOom ?? spec.deflateOnOom ?? true,
      statsIntervalS: b?.statsIntervalS ?? spec.statsIntervalS ?? 0,
      stats: b?.stats ?? {},
    };
  }

  /** Poll the balloon's statistics every `seconds` (0: stop polling). */
  setBalloonStatsInterval(seconds: number): void {
    this.requireLive('set the balloon statistics interval');
    if (!this.record.spec.balloon) throw new ControlError('No balloon device configured');
    if (!this.started) throw new ControlError('cannot set the balloon statistics interval: the VM has not been started');
    this.vm.setBalloonStatsInterval(seconds);
  }

  /** Set the memory the guest should keep (MiB). */
  setBalloon(targetMiB: number): void {
    this.requireLive('set the balloon');
    if (!this.record.spec.balloon) throw new ControlError('No balloon device configured');
    if (!Number.isFinite(targetMiB) || targetMiB < 0 || targetMiB > this.record.spec.memoryMiB) {
      throw new ControlError(
        `balloon target ${targetMiB} MiB is outside 0 to ${this.record.spec.memoryMiB} MiB`,
      );
    }
    if (!this.started) throw new ControlError('cannot set the balloon: the VM has not been started');
    this.vm.setBalloonTarget(targetMiB);
  }

  // ---------------------------------------------------------------- console

  private output(chunk: Buffer): void {
    this.ring.write(chunk);
    for (const c of this.consoleClients) {
      if (c.writableLength > MAX_CLIENT_BACKLOG) {
        c.destroy();
        continue;
      }
      c.write(chunk);
    }
  }

  /** A console client: gets the recent screen, then live output; what it sends goes to the guest. */
  attachConsole(sock: Socket): void {
    this.consoleClients.add(sock);
    sock.on('close', () => this.consoleClients.delete(sock));
    sock.on('error', () => sock.destroy());
    const recent = this.ring.contents();
    if (recent.length > 0) sock.write(recent);
    if (this.stopped) {
      sock.end();
      return;
    }
    sock.on('data', (d: Buffer) => {
      if (!this.stopped) this.vm.input.write(d);
    });
  }

  // ---------------------------------------------------------------- sockets

  /** Listen on a unix socket (a stale socket file is removed first). */
  listen(path: string, server: Server): Promise<void> {
    rmSync(path, { force: true });
    this.servers.push(server);
    server.on('connection', (s: Socket) => {
      this.connections.add(s);
      s.on('close', () => this.connections.delete(s));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  consoleServer(): Server {
    return createServer((s) => this.attachConsole(s));
  }

  // ---------------------------------------------------------------- exit

  private onExit(exit: VmExit, forceGone = false): void {
    const first = !this.stopped;
    this.stopped = exit;
    if (first) {
      this.emit('event', 'SHUTDOWN', { guest: exit.reason !== 'destroyed', reason: exit.reason });
      // Wake console clients: the guest will write no more.
      for (const c of this.consoleClients) c.end();
    }
    const preserve =
      (exit.reason === 'panic' && this.record.onCrash === 'preserve') ||
      (exit.reason === 'poweroff' && this.record.onPoweroff === 'preserve');
    if (preserve && !forceGone) return; // stays listed (---s-- / ----c-) until destroyed
    this.close(exit.exitCode);
  }

  /** Remove the entry, close the sockets and tell the process to exit. */
  close(code: number): void {
    if (this.closing) return;
    this.closing = true;
    // Remove the entry first: once `shutdown -w` / `destroy` see the process gone, list is clean.
    try {
      const rec = readRecord(this.record.name, this.stateRoot);
      if (!rec || rec.pid === process.pid) removeEntry(this.record.name, this.stateRoot);
    } catch {
      // best effort
    }
    for (const s of this.servers) {
      s.close();
      // HTTP keep-alive connections would hold the process open.
      (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    }
    for (const c of this.consoleClients) c.destroy();
    // Clients still connected (QMP, HTTP) get a moment for the last replies, then are cut.
    setTimeout(() => {
      for (const c of this.connections) c.destroy();
    }, 50).unref();
    this.emit('gone', code);
  }
}

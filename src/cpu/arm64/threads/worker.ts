// A vCPU on its own thread (a worker_thread started by threads/engine.ts): an Arm64Cpu over the
// machine's shared WebAssembly memory, with its own code cache (which takes what the other vCPUs'
// threads translate: units.ts), TLB, generic timer and PMU. What
// belongs to the machine is reached through the VMM's thread: MMIO accesses, the GIC's CPU interface
// registers, PPI levels and PSCI calls are synchronous requests (threads/link.ts REQ_*); the GIC drives
// the IRQ line through the LINES word. Broadcast maintenance goes through threads/peers.ts.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { GuestMemory } from '../../../memory/guest-memory.js';
import { Arm64Cpu, CodeCache, type Arm64CpuState } from '../cpu.js';
import { GenericTimer, SystemCounter, peakRate, type GenericTimerState } from '../timer.js';
import { PPI_PMU } from '../pmu.js';
import { defineEl1Sysreg } from '../../../devices/gicv3.js';
import { collectGarbage } from '../../../host/gc.js';
import { monotonicMs } from '../../../host/clock.js';
import { ATTN_OFF } from '../wasm/layout.js';
import {
  CTRL_PAUSE,
  CTRL_STOP,
  IDLE,
  Req,
  RUNNING,
  V_CTRL,
  V_LINES,
  V_ON,
  V_PARKED,
  V_PPI,
  V_REQ_A,
  V_REQ_ACK,
  V_REQ_OP,
  V_REQ_R,
  V_REQ_SEQ,
  V_STATE,
  V_WAKE,
  VcpuLink,
} from './link.js';
import { ThreadPeers, applyInbox } from './peers.js';
import { UnitExchange } from './units.js';

/** What the VMM's thread hands a vCPU worker (structured-cloned; the memory and link are shared). */
export interface VcpuWorkerData {
  id: number;
  memory: WebAssembly.Memory;
  ramBase: number;
  ramSize: number;
  link: SharedArrayBuffer;
  ncpus: number;
  /** The system counter's start (monotonicMs at count 0) on the VMM's thread. */
  counterStartMs: number;
  mmio: { base: number; size: number; name: string }[];
  icc: { key: number; name: string; read: boolean; write: boolean }[];
  logUnimplemented: boolean;
  /** The code cache settings of vCPU 0's (CodeCache.jit, jitThreshold, entryHeat, jitBatch). */
  jit: boolean;
  jitThreshold: number;
  entryHeat: number;
  jitBatch: number;
  /** Post a line of statistics when the thread ends (TYPEVISOR_STATS). */
  stats: boolean;
  /** The vCPU's state to start from (a restored snapshot), else it starts off. */
  initial: VcpuThreadState | undefined;
  /** Ports to the other vCPUs' threads for translated code (units.ts; by vCPU id, none for itself). */
  unitPorts: (MessagePort | undefined)[];
}

/** A vCPU's part of a snapshot, as its thread gives it when it holds at a pause. */
export interface VcpuThreadState {
  cpu: Arm64CpuState;
  timer: GenericTimerState;
}

/** Looks at a request's answer before the worker sleeps on it (a few tens of microseconds). */
const REQUEST_SPIN = 5000;

/** Thrown out of a request when the VMM stops the machine meanwhile. */
const STOPPED = new Error('stopped');

/**
 * The longest slice between two looks at the inbox and the lines. Other vCPUs get this one out of
 * run() at once when they need it (ATTN), and timer deadlines end slices early
 * (instructionsToDeadline), so a slice is only a bound. Each look costs a few microseconds: two vCPUs
 * running a tight loop bare-metal, 3e9 iterations each, took 3.5 s with 1M-instruction slices and
 * no faster than on one thread with 20,000.
 */
const SLICE = 1_000_000;

function main(d: VcpuWorkerData): void {
  const id = d.id;
  const link = new VcpuLink(d.link, d.ncpus);
  const i32 = link.i32;
  const mem = new GuestMemory(d.ramBase, d.ramSize, d.memory);
  const code = new CodeCache(mem);
  code.onSweep = collectGarbage;
  code.jit = d.jit;
  code.jitThreshold = d.jitThreshold;
  code.entryHeat = d.entryHeat;
  code.jitBatch = d.jitBatch;
  const units = new UnitExchange(link, id, d.unitPorts);
  units.attach(code);

  const at = (w: number): number => link.at(id, w);
  let requests = 0;
  let requestMs = 0;
  /** A synchronous request to the VMM's thread; returns R0. */
  const request = (op: Req, ...args: number[]): number => {
    args.forEach((v, k) => (i32[at(V_REQ_A + k)] = v));
    i32[at(V_REQ_OP)] = op;
    const seq = Atomics.add(i32, at(V_REQ_SEQ), 1) + 1;
    requests++;
    const t0 = monotonicMs();
    peers.nudge(0);
    // Most requests are answered within microseconds: spin a little before sleeping, since waking
    // a sleeping thread on a busy host can take far longer than the answer.
    for (let spin = 0; spin < REQUEST_SPIN && Atomics.load(i32, at(V_REQ_ACK)) !== seq; spin++);
    for (;;) {
      const ack = Atomics.load(i32, at(V_REQ_ACK));
      if (ack === seq) break;
      if (Atomics.load(i32, at(V_CTRL)) === CTRL_STOP) throw STOPPED;
      Atomics.wait(i32, at(V_REQ_ACK), ack, 20);
    }
    requestMs += monotonicMs() - t0;
    // The request may have moved the IRQ line (an acknowledge, an end of interrupt, a PMR write):
    // the next instruction sees where it is now.
    syncLines();
    return i32[at(V_REQ_R)];
  };

  const cpu = new Arm64Cpu(id, mem, code, {
    hvc: (c) => psci(c),
    smc: (c) => psci(c),
  });
  const psci = (c: Arm64Cpu): boolean => {
    const args: number[] = [];
    for (let n = 0; n < 4; n++) args.push(c.xlo(n), c.xhi(n));
    request(Req.PSCI, ...args);
    c.setX(0, i32[at(V_REQ_R)], i32[at(V_REQ_R + 1)]);
    const flags = i32[at(V_REQ_R + 2)];
    if (flags & 1) c.waiting = true;
    if (flags & 2) {
      c.off = true;
      c.waiting = false;
    }
    return true;
  };
  cpu.off = true;
  cpu.logUnimplemented = d.logUnimplemented;
  const peers = new ThreadPeers(
    link,
    id,
    mem.stateBuffer,
    (k) => mem.cpuBlock(k),
    mem.codePages,
    () => applyInbox(link, cpu),
  );
  cpu.remote = peers;
  peers.watchCodeWrites(mem, code);
  for (const r of d.mmio) {
    mem.addMmio(r.base, r.size, r.name, {
      read: (off, size) => request(Req.MMIO_READ, r.base + off, 0, size),
      write: (off, size, v) => void request(Req.MMIO_WRITE, r.base + off, 0, size, v),
    });
  }
  for (const r of d.icc) {
    defineEl1Sysreg(
      cpu,
      r.key,
      r.name,
      r.read
        ? () => {
            request(Req.SYSREG_READ, r.key);
            return link.getWide(id, V_REQ_R);
          }
        : undefined,
      r.write
        ? (v) => {
            link.setWide(id, V_REQ_A + 1, v); // the value in A1/A2 (request() writes the key in A0)
            request(Req.SYSREG_WRITE, r.key);
          }
        : undefined,
    );
  }
  const counter = new SystemCounter([cpu], false, d.counterStartMs);
  // A PPI's level goes in the PPI word without a request (see link.ts): timer ticks cost none.
  const ppiWord = at(V_PPI);
  const setPpi = (intid: number, level: boolean): void => {
    const bit = 1 << (intid - 16);
    if (level) Atomics.or(i32, ppiWord, bit);
    else Atomics.and(i32, ppiWord, ~bit);
    peers.nudge(0);
  };
  const timer = new GenericTimer(cpu, setPpi, {
    counter,
  });
  cpu.pmu.setIrq = (level) => setPpi(PPI_PMU, level);

  function syncLines(): void {
    const lines = link.get(id, V_LINES);
    cpu.irqLine = (lines & 1) !== 0;
    cpu.fiqLine = (lines & 2) !== 0;
  }
  if (d.initial) {
    cpu.loadState(d.initial.cpu);
    timer.loadState(d.initial.timer);
  }
  const attn = new Int32Array(mem.stateBuffer, mem.cpuBlock(id) + ATTN_OFF, 1);
  let insnsPerMs = 0;
  let runMs = 0;
  const sleep = (seen: number, ms: number): void => {
    link.set(id, V_STATE, IDLE);
    Atomics.wait(i32, at(V_WAKE), seen, ms);
  };
  try {
    for (;;) {
      const seen = Atomics.load(i32, at(V_WAKE));
      const ctrl = link.get(id, V_CTRL);
      if (ctrl === CTRL_STOP) break;
      if (ctrl === CTRL_PAUSE) {
        if (link.get(id, V_PARKED) === 0) {
          // Held at an instruction boundary: the state goes first (a snapshot may want it), then PARKED.
          const state: VcpuThreadState = { cpu: cpu.saveState(), timer: timer.saveState() };
          parentPort!.postMessage({ parked: state });
          link.set(id, V_PARKED, 1);
          link.ringDoorbell();
        }
        sleep(seen, 1000);
        continue;
      }
      if (link.get(id, V_PARKED) !== 0) link.set(id, V_PARKED, 0);
      Atomics.store(attn, 0, 0);
      applyInbox(link, cpu);
      units.take(code);
      syncLines();
      if (cpu.off) {
        sleep(seen, 1000);
        continue;
      }
      timer.poll();
      if (cpu.waiting && (cpu.irqLine || cpu.fiqLine)) cpu.waiting = false;
      if (cpu.waiting) {
        sleep(seen, Math.max(0.05, Math.min(50, timer.nextDeadlineMs())));
        continue;
      }
      // RUNNING before the last look at the inbox: a broadcast either sees RUNNING and waits for this
      // vCPU, or posted before that look (threads/peers.ts).
      link.set(id, V_STATE, RUNNING);
      if (link.hasMail(id) || link.get(id, V_ON) !== 0 || link.get(id, V_CTRL) !== 0) {
        link.set(id, V_STATE, IDLE);
        continue;
      }
      const t1 = monotonicMs();
      const ran = cpu.run(Math.min(SLICE, timer.instructionsToDeadline(insnsPerMs)));
      link.set(id, V_STATE, IDLE);
      const ms = monotonicMs() - t1;
      runMs += ms;
      insnsPerMs = peakRate(insnsPerMs, ran, ms);
      link.setIcount(id, cpu.icount);
    }
  } catch (e) {
    link.set(id, V_STATE, IDLE);
    if (e === STOPPED) return;
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    parentPort!.postMessage({ error: `vCPU ${id}: ${msg}` });
    link.ringDoorbell();
    return;
  } finally {
    units.close();
  }
  link.setIcount(id, cpu.icount);
  if (d.stats) {
    const j = code.jitStats;
    parentPort!.postMessage({
      stats:
        `vCPU ${id} thread: ${cpu.icount} instructions, ${(runMs / 1000).toFixed(1)} s running, ` +
        `${((100 * j.insns) / Math.max(1, cpu.icount)).toFixed(0)}% translated (${j.blocks} regions, ` +
        `${j.adopted} of them from other vCPUs' threads, own ${j.modules} modules in ${j.ms.toFixed(0)} ms), ` +
        `${j.calls} handler calls, ${j.slow} slow-path accesses, ` +
        `${requests} requests (waited ${requestMs.toFixed(0)} ms), ${peers.stats.broadcasts} broadcasts (waited ${peers.stats.waitMs.toFixed(0)} ms), ` +
        `${peers.stats.codeNotes} code-page notes`,
    });
  }
}

main(workerData as VcpuWorkerData);

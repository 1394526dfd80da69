// A GDB remote serial protocol stub for tcg (software CPU) guests: `typevisor run --gdb [HOST:]PORT`,
// then `gdb-multiarch -ex 'target remote HOST:PORT'`. Written here because no maintained Node.js
// library serves the protocol for a target of our own.
//
// Protocol ("Remote Protocol" in the GDB manual): packets `$data#cs` with a two-digit hex checksum,
// acknowledged with + (or - for a bad checksum, which the sender answers by sending again) until
// QStartNoAckMode; a 0x03 byte outside a packet interrupts. All-stop mode: every vCPU (a thread, id =
// index + 1) stops when one stops. Supported: qSupported, qXfer:features:read (an aarch64 target
// description: the org.gnu.gdb.aarch64.core and .fpu features), ?, g/G, p/P, m/M/X (virtual
// addresses, translated by the selected vCPU's MMU without faulting it; only RAM: unmapped addresses
// and device registers answer E14), c/s/C/S, vCont (c, s, t), Z0/Z1 breakpoints and Z2/Z3/Z4
// watchpoints (host-side: the host debugger API of src/cpu/arm64/debug.ts), thread queries, D (detach) and k (kill).
// A watchpoint stops the vCPU after the access, at the next instruction (as QEMU's gdbstub does).

import * as net from 'node:net';
import type { Arm64Cpu } from '../cpu/arm64/cpu.js';
import type { HostResume, HostWatchKind } from '../cpu/arm64/debug.js';
import { Arm64VirtMachine } from '../machine/arm64-virt.js';
import type { GdbSpec, VmExit } from '../vmm/vm.js';
import { UserError } from '../host/errors.js';

const M32 = 0xffffffffn;
/** Largest packet we take or send (advertised as PacketSize, in hex). */
const PACKET_SIZE = 0x4000;
/** Bytes of memory one m packet returns at most (twice that in hex fits in a packet). */
const MAX_MEM_READ = (PACKET_SIZE - 16) >> 1;
const SIGINT = 2;
const SIGTRAP = 5;

// ---- registers: one table gives the g packet layout, p/P numbers and the target description ----

interface RegDef {
  name: string;
  bits: number;
  type: string;
  feature: 'core' | 'fpu';
  read(cpu: Arm64Cpu): Uint8Array;
  /** False when the value cannot be set (an invalid CPSR). */
  write(cpu: Arm64Cpu, b: Buffer): boolean;
}

function le64(lo: number, hi: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(lo >>> 0, 0);
  b.writeUInt32LE(hi >>> 0, 4);
  return b;
}
function le32(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function slotReg(name: string, slot: number, type: string): RegDef {
  return {
    name,
    bits: 64,
    type,
    feature: 'core',
    read: (cpu) => le64(cpu.r[2 * slot], cpu.r[2 * slot + 1]),
    write: (cpu, b) => {
      cpu.r[2 * slot] = b.readUInt32LE(0);
      cpu.r[2 * slot + 1] = b.readUInt32LE(4);
      return true;
    },
  };
}

export const REGISTERS: readonly RegDef[] = [
  // X0-X30, then SP: slot 31 holds the active stack pointer (cpu.ts).
  ...Array.from({ length: 31 }, (_, n) => slotReg(`x${n}`, n, 'int')),
  slotReg('sp', 31, 'data_ptr'),
  {
    name: 'pc',
    bits: 64,
    type: 'code_ptr',
    feature: 'core',
    read: (cpu) => le64(cpu.pcLo, cpu.pcHi),
    write: (cpu, b) => {
      cpu.pcLo = cpu.nextLo = b.readUInt32LE(0);
      cpu.pcHi = cpu.nextHi = b.readUInt32LE(4);
      cpu.invalidateFetch();
      return true;
    },
  },
  {
    name: 'cpsr',
    bits: 32,
    type: 'cpsr_flags',
    feature: 'core',
    read: (cpu) => le32(cpu.getPstate()),
    write: (cpu, b) => cpu.setPstate(b.readUInt32LE(0)),
  },
  ...Array.from({ length: 32 }, (_, n): RegDef => ({
    name: `v${n}`,
    bits: 128,
    type: 'aarch64v',
    feature: 'fpu',
    read: (cpu) => cpu.vU8.slice(16 * n, 16 * n + 16),
    write: (cpu, b) => {
      cpu.vU8.set(b.subarray(0, 16), 16 * n);
      return true;
    },
  })),
  {
    name: 'fpsr',
    bits: 32,
    type: 'int',
    feature: 'fpu',
    read: (cpu) => le32(cpu.fpsr),
    write: (cpu, b) => {
      cpu.fpsr = b.readUInt32LE(0);
      return true;
    },
  },
  {
    name: 'fpcr',
    bits: 32,
    type: 'int',
    feature: 'fpu',
    read: (cpu) => le32(cpu.fpcr),
    write: (cpu, b) => {
      cpu.fpcr = b.readUInt32LE(0);
      return true;
    },
  },
];

/** Bytes of a g packet's register block. */
export const G_BYTES = REGISTERS.reduce((s, r) => s + r.bits / 8, 0);

/** The target description (gdb's "Target Descriptions" appendix), from REGISTERS. */
export function targetXml(): string {
  const regs = (f: RegDef['feature']): string =>
    REGISTERS.filter((r) => r.feature === f)
      .map((r) => `    <reg name="${r.name}" bitsize="${r.bits}" type="${r.type}"/>\n`)
      .join('');
  const cpsrFields: [string, number, number][] = [
    ['SP', 0, 0],
    ['EL', 2, 3],
    ['nRW', 4, 4],
    ['F', 6, 6],
    ['I', 7, 7],
    ['A', 8, 8],
    ['D', 9, 9],
    ['V', 28, 28],
    ['C', 29, 29],
    ['Z', 30, 30],
    ['N', 31, 31],
  ];
  // The V registers' views: per element size, float (where there is one), unsigned and signed lanes.
  const lanes: [string, number, string | undefined][] = [
    ['d', 64, 'ieee_double'],
    ['s', 32, 'ieee_single'],
    ['h', 16, undefined],
    ['b', 8, undefined],
    ['q', 128, undefined],
  ];
  let vtypes = '';
  for (const [n, bits, float] of lanes) {
    const count = 128 / bits;
    if (float) vtypes += `    <vector id="v${count}f" type="${float}" count="${count}"/>\n`;
    vtypes += `    <vector id="v${count}u" type="uint${bits}" count="${count}"/>\n`;
    vtypes += `    <vector id="v${count}i" type="int${bits}" count="${count}"/>\n`;
    vtypes +=
      `    <union id="vn${n}">` +
      (float ? `<field name="f" type="v${count}f"/>` : '') +
      `<field name="u" type="v${count}u"/><field name="s" type="v${count}i"/></union>\n`;
  }
  vtypes += `    <union id="aarch64v">${lanes.map(([n]) => `<field name="${n}" type="vn${n}"/>`).join('')}</union>\n`;
  return (
    '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target>\n  <architecture>aarch64</architecture>\n' +
    '  <feature name="org.gnu.gdb.aarch64.core">\n    <flags id="cpsr_flags" size="4">\n' +
    cpsrFields.map(([n, s, e]) => `      <field name="${n}" start="${s}" end="${e}"/>\n`).join('') +
    '    </flags>\n' +
    regs('core') +
    '  </feature>\n  <feature name="org.gnu.gdb.aarch64.fpu">\n' +
    vtypes +
    regs('fpu') +
    '  </feature>\n</target>\n'
  );
}

// ---- packets ----

function checksum(b: Uint8Array): number {
  let s = 0;
  for (const x of b) s = (s + x) & 0xff;
  return s;
}

/** Undo the protocol's binary escape: '}' then the byte xor 0x20. */
function unescape(b: Buffer): Buffer {
  if (!b.includes(0x7d)) return b;
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) out.push(b[i] === 0x7d && i + 1 < b.length ? b[++i] ^ 0x20 : b[i]);
  return Buffer.from(out);
}

/** Frame a reply: escape $ # } * and add the checksum. */
export function framePacket(data: string | Buffer): Buffer {
  const raw = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const out: number[] = [];
  for (const x of raw) {
    if (x === 0x24 || x === 0x23 || x === 0x7d || x === 0x2a) out.push(0x7d, x ^ 0x20);
    else out.push(x);
  }
  const body = Buffer.from(out);
  return Buffer.concat([
    Buffer.from('$'),
    body,
    Buffer.from(`#${checksum(body).toString(16).padStart(2, '0')}`),
  ]);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** A hex number of a packet as a 64-bit address, or undefined when it is not one. */
function parseAddr(t: string | undefined): bigint | undefined {
  if (t === undefined || !/^[0-9a-fA-F]{1,16}$/.test(t)) return undefined;
  return BigInt(`0x${t}`);
}
function parseLen(t: string | undefined, max = 0x7fffffff): number | undefined {
  if (t === undefined || !/^[0-9a-fA-F]{1,8}$/.test(t)) return undefined;
  const n = parseInt(t, 16);
  return n <= max ? n : undefined;
}

const E_INVALID = 'E22';
const E_FAULT = 'E14';

// ---- the stub ----

/** What the stub needs of a VM (src/vmm/vm.ts's Vm has it; tests may give a bare machine). */
export interface GdbTarget {
  pause(): void;
  resume(): void;
  destroy(): void;
  on(event: 'boot', fn: (m: Arm64VirtMachine) => void): unknown;
  on(event: 'exit', fn: (exit: VmExit) => void): unknown;
}

/**
 * The protocol state for a VM and the debugger connected to it (one at a time). Feed it the bytes
 * gdb sends (receive()); it writes replies through `send`.
 */
export class GdbStub {
  private machine: Arm64VirtMachine | undefined;
  /** Breakpoints as `type:addr` (gdb's Z0 and Z1 are kept apart, as it inserts and removes them apart). */
  private readonly breaks = new Set<string>();
  /** Watchpoints, kept here too so that they carry over to a rebooted machine's vCPUs. */
  private readonly watches: { addr: bigint; len: number; kind: HostWatchKind }[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private noAck = false;
  private lastPacket: Buffer | undefined;
  /** Thread for g/G/p/P/m/M (Hg) and for a plain c/s (Hc); 0 = any. */
  private gThread = 1;
  private cThread = 0;
  /** vCPUs run (a c/s/vCont is waiting for its stop reply). */
  private running = false;
  private lastStop = `T${hex2(SIGTRAP)}thread:1;`;
  private attached = false;
  /** The VM has stopped for good (W sent). */
  private gone = false;

  constructor(
    private readonly target: GdbTarget,
    private readonly send: (b: Buffer) => void,
    private readonly close: () => void,
  ) {}

  /** Use this machine (at start and after a guest reboot): breakpoints and watchpoints carry over. */
  setMachine(m: Arm64VirtMachine): void {
    this.machine = m;
    m.onDebugStop = (cpu) => this.onStop(cpu);
    for (const c of m.cpus) {
      for (const k of this.breaks) c.debug.addHostBreakpoint(BigInt(k.slice(2)));
      for (const w of this.watches) c.debug.addHostWatchpoint(w.addr, w.len, w.kind);
    }
    if (!this.attached) return;
    // A rebooted guest keeps running under the debugger's breakpoints; one stopped by it stays stopped.
    if (!this.running) this.target.pause();
  }

  /** gdb connected: the VM stops (as QEMU's stub stops it), and '?' reports that. */
  attach(): void {
    this.attached = true;
    // A new connection starts from scratch: acks on, no partial packet, default threads.
    this.noAck = false;
    this.pending = Buffer.alloc(0);
    this.lastPacket = undefined;
    this.gThread = 1;
    this.cThread = 0;
    this.target.pause();
    this.running = false;
    this.lastStop = `T${hex2(SIGTRAP)}thread:${this.machine ? this.tid(this.firstCpu()) : '1'};`;
  }

  /** gdb went away (D or a closed connection): breakpoints go, the VM runs on. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.breaks.clear();
    this.watches.length = 0;
    for (const c of this.machine?.cpus ?? []) c.debug.clearHost();
    this.running = false;
    if (!this.gone) this.target.resume();
  }

  /** The VM stopped for good. */
  vmExited(exit: VmExit): void {
    if (this.gone) return;
    this.gone = true;
    if (this.attached) this.sendPacket(`W${hex2(exit.exitCode & 0xff)}`);
    this.attached = false;
    this.close();
  }

  receive(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length > 0) {
      const b = this.pending[0];
      if (b !== 0x24) {
        this.pending = this.pending.subarray(1);
        if (b === 0x03) this.interrupt();
        else if (b === 0x2d && this.lastPacket && !this.noAck) this.send(this.lastPacket); // '-': send again
        continue; // '+' and noise between packets
      }
      const h = this.pending.indexOf(0x23, 1);
      if (h < 0 || this.pending.length < h + 3) {
        if (this.pending.length > PACKET_SIZE * 2 + 16) {
          // No end in sight: drop it and ask again.
          this.pending = Buffer.alloc(0);
          if (!this.noAck) this.send(Buffer.from('-'));
        }
        return;
      }
      const body = this.pending.subarray(1, h);
      const cs = this.pending.subarray(h + 1, h + 3).toString('latin1');
      this.pending = this.pending.subarray(h + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(cs) || parseInt(cs, 16) !== checksum(body)) {
        if (!this.noAck) this.send(Buffer.from('-'));
        continue;
      }
      if (!this.noAck) this.send(Buffer.from('+'));
      let reply: string | undefined;
      try {
        reply = this.handle(unescape(Buffer.from(body)));
      } catch (e) {
        // A request this stub gets wrong fails alone; the VM goes on.
        process.stderr.write(`typevisor: gdb stub: ${(e as Error).message}\n`);
        reply = E_INVALID;
      }
      if (reply !== undefined) this.sendPacket(reply);
    }
  }

  private sendPacket(data: string): void {
    const p = framePacket(data);
    this.lastPacket = p;
    this.send(p);
  }

  private tid(cpu: Arm64Cpu): string {
    return (cpu.id + 1).toString(16);
  }

  private firstCpu(): Arm64Cpu {
    const cpus = this.machine!.cpus;
    return cpus.find((c) => !c.off) ?? cpus[0];
  }

  /** The vCPU of a thread id (hex; 0 and -1: the first running one), or undefined. */
  private cpuOf(t: number): Arm64Cpu | undefined {
    const cpus = this.machine?.cpus;
    if (!cpus) return undefined;
    if (t <= 0) return this.firstCpu();
    return cpus[t - 1];
  }

  private parseTid(t: string): number | undefined {
    if (t === '-1') return -1;
    if (!/^[0-9a-fA-F]{1,8}$/.test(t)) return undefined;
    const n = parseInt(t, 16);
    const cpus = this.machine?.cpus.length ?? 0;
    return n <= cpus ? n : undefined;
  }

  private interrupt(): void {
    if (!this.running) return;
    this.target.pause();
    this.running = false;
    const cpu = this.cpuOf(this.cThread)!;
    this.gThread = cpu.id + 1;
    this.lastStop = `T${hex2(SIGINT)}thread:${this.tid(cpu)};`;
    this.sendPacket(this.lastStop);
  }

  /** A vCPU stopped at a breakpoint, a watchpoint or after a step (the machine is paused). */
  private onStop(cpu: Arm64Cpu): void {
    const stop = cpu.debug.takeStop();
    if (!this.running || stop === undefined) return;
    this.target.pause();
    this.running = false;
    this.gThread = cpu.id + 1;
    let r = `T${hex2(SIGTRAP)}thread:${this.tid(cpu)};`;
    if (stop.reason === 'watchpoint') {
      const name: Record<HostWatchKind, string> = { write: 'watch', read: 'rwatch', access: 'awatch' };
      r += `${name[stop.kind]}:${stop.addr.toString(16)};`;
    }
    this.lastStop = r;
    this.sendPacket(r);
  }

  /** Resume the vCPUs with an action each (by index). */
  private resume(actions: HostResume[]): string | undefined {
    if (!actions.some((a) => a !== 'hold')) return this.lastStop; // nothing to run
    for (const c of this.machine!.cpus) c.debug.hostResume(actions[c.id]);
    this.running = true;
    this.target.resume();
    return undefined;
  }

  /** Handle one packet; returns the reply, or undefined when it comes later (a stop) or never (k). */
  handle(pkt: Buffer): string | undefined {
    const m = this.machine;
    if (!m || this.gone) return E_INVALID;
    const text = pkt.toString('latin1');
    const cmd = text[0];
    const args = text.slice(1);
    switch (cmd) {
      case '?':
        return this.lastStop;
      case 'g': {
        const cpu = this.cpuOf(this.gThread)!;
        return REGISTERS.map((r) => hex(r.read(cpu))).join('');
      }
      case 'G': {
        const cpu = this.cpuOf(this.gThread)!;
        const b = Buffer.from(args, 'hex');
        if (b.length !== G_BYTES || args.length !== 2 * G_BYTES) return E_INVALID;
        let off = 0;
        for (const r of REGISTERS) {
          const n = r.bits / 8;
          if (!r.write(cpu, b.subarray(off, off + n))) return E_INVALID;
          off += n;
        }
        return 'OK';
      }
      case 'p':
      case 'P': {
        const [nText, val] = args.split('=');
        const n = parseLen(nText);
        const r = n !== undefined ? REGISTERS[n] : undefined;
        if (!r) return E_INVALID;
        const cpu = this.cpuOf(this.gThread)!;
        if (cmd === 'p') return hex(r.read(cpu));
        const b = Buffer.from(val ?? '', 'hex');
        if (b.length !== r.bits / 8 || val.length !== 2 * b.length) return E_INVALID;
        return r.write(cpu, b) ? 'OK' : E_INVALID;
      }
      case 'm': {
        const [a, l] = args.split(',');
        const addr = parseAddr(a);
        const len = parseLen(l);
        if (addr === undefined || len === undefined) return E_INVALID;
        const data = this.readMem(addr, Math.min(len, MAX_MEM_READ));
        return data.length === 0 && len > 0 ? E_FAULT : hex(data);
      }
      case 'M':
      case 'X': {
        const colon = pkt.indexOf(0x3a);
        if (colon < 0) return E_INVALID;
        const [a, l] = text.slice(1, colon).split(',');
        const addr = parseAddr(a);
        const len = parseLen(l, PACKET_SIZE);
        if (addr === undefined || len === undefined) return E_INVALID;
        const data = cmd === 'X' ? pkt.subarray(colon + 1) : Buffer.from(text.slice(colon + 1), 'hex');
        if (data.length !== len || (cmd === 'M' && text.length - colon - 1 !== 2 * len)) return E_INVALID;
        return this.writeMem(addr, data) ? 'OK' : E_FAULT;
      }
      case 'c':
      case 's':
      case 'C':
      case 'S': {
        // c [addr], s [addr], C sig[;addr], S sig[;addr] (the signal is not delivered: there are none).
        const at = cmd === 'c' || cmd === 's' ? args : args.split(';')[1];
        const cpu = this.cpuOf(this.cThread)!;
        if (at) {
          const pc = parseAddr(at);
          if (pc === undefined) return E_INVALID;
          REGISTERS[32].write(cpu, Buffer.from(le64(Number(pc & M32), Number(pc >> 32n))));
        }
        const step = cmd === 's' || cmd === 'S';
        return this.resume(m.cpus.map((c) => (step && c === cpu ? 'step' : 'continue')));
      }
      case 'v':
        return this.handleV(text);
      case 'Z':
      case 'z': {
        const [type, a, k] = args.split(',');
        const addr = parseAddr(a);
        const kind = parseLen(k);
        if (addr === undefined || kind === undefined) return E_INVALID;
        const on = cmd === 'Z';
        if (type === '0' || type === '1') {
          const a = BigInt.asUintN(64, addr);
          if (on) this.breaks.add(`${type}:${a}`);
          else this.breaks.delete(`${type}:${a}`);
          // The address stays a breakpoint while either kind is set there.
          const set = this.breaks.has(`0:${a}`) || this.breaks.has(`1:${a}`);
          for (const c of m.cpus) {
            if (set) c.debug.addHostBreakpoint(a);
            else c.debug.removeHostBreakpoint(a);
          }
          return 'OK';
        }
        const wk: HostWatchKind | undefined = ({ '2': 'write', '3': 'read', '4': 'access' } as const)[
          type as '2'
        ];
        if (!wk) return '';
        return this.setWatch(addr, kind, wk, on) ? 'OK' : E_INVALID;
      }
      case 'H': {
        const t = this.parseTid(args.slice(1));
        if (t === undefined) return E_INVALID;
        if (args[0] === 'g') this.gThread = t;
        else if (args[0] === 'c') this.cThread = t;
        else return E_INVALID;
        return 'OK';
      }
      case 'T': {
        const t = this.parseTid(args);
        return t !== undefined && t > 0 ? 'OK' : E_INVALID;
      }
      case 'D':
        this.detach();
        return 'OK';
      case 'k':
        this.gone = true;
        this.target.destroy();
        this.close();
        return undefined;
      case 'q':
      case 'Q':
        return this.handleQuery(text);
      default:
        return '';
    }
  }

  private handleQuery(text: string): string {
    const [name, ...rest] = text.split(':');
    const arg = rest.join(':');
    const cpus = this.machine!.cpus;
    switch (name) {
      case 'qSupported':
        return `PacketSize=${PACKET_SIZE.toString(16)};qXfer:features:read+;vContSupported+;QStartNoAckMode+`;
      case 'QStartNoAckMode':
        // The + for this packet has gone out already; from here on, none either way.
        this.noAck = true;
        return 'OK';
      case 'qXfer': {
        // features:read:ANNEX:OFFSET,LENGTH
        const m = /^features:read:([^:]*):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(arg);
        if (!m) return '';
        if (m[1] !== 'target.xml') return 'E00';
        const xml = Buffer.from(targetXml(), 'latin1');
        const off = parseInt(m[2], 16);
        const len = Math.min(parseInt(m[3], 16), PACKET_SIZE - 16);
        if (off > xml.length) return E_INVALID;
        const part = xml.subarray(off, off + len).toString('latin1');
        return (off + len >= xml.length ? 'l' : 'm') + part;
      }
      case 'qC':
        return `QC${(this.gThread > 0 ? this.gThread : 1).toString(16)}`;
      case 'qfThreadInfo':
        return `m${cpus.map((c) => this.tid(c)).join(',')}`;
      case 'qsThreadInfo':
        return 'l';
      case 'qThreadExtraInfo': {
        const t = this.parseTid(arg.replace(/^,/, ''));
        const cpu = t !== undefined && t > 0 ? cpus[t - 1] : undefined;
        if (!cpu) return E_INVALID;
        const state = cpu.off ? 'off' : cpu.waiting ? 'waiting for an interrupt' : `EL${cpu.el}`;
        return Buffer.from(`vCPU ${cpu.id} (${state})`).toString('hex');
      }
      case 'qAttached':
        return '1';
      default:
        // qSymbol, qTStatus, qOffsets and the rest: not supported.
        if (text.startsWith('qThreadExtraInfo,'))
          return this.handleQuery(`qThreadExtraInfo:${text.slice(17)}`);
        return '';
    }
  }

  private handleV(text: string): string | undefined {
    if (text === 'vCont?') return 'vCont;c;C;s;S;t';
    if (!text.startsWith('vCont;')) return ''; // vMustReplyEmpty and the rest
    const cpus = this.machine!.cpus;
    const actions: (HostResume | undefined)[] = cpus.map(() => undefined);
    for (const item of text.slice(6).split(';')) {
      const [act, t] = item.split(':');
      const a =
        act[0] === 'c' || act[0] === 'C'
          ? 'continue'
          : act[0] === 's' || act[0] === 'S'
            ? 'step'
            : act[0] === 't'
              ? 'hold'
              : undefined;
      if (!a) return E_INVALID;
      const tid = t === undefined ? -1 : this.parseTid(t);
      if (tid === undefined) return E_INVALID;
      // The leftmost action that names a thread applies to it.
      for (const c of cpus)
        if ((tid <= 0 || tid === c.id + 1) && actions[c.id] === undefined) actions[c.id] = a;
    }
    // Threads that no action names stay stopped.
    return this.resume(actions.map((a) => a ?? 'hold'));
  }

  /** Z2-Z4 / z2-z4 on every vCPU; false for a length debug.ts does not take. */
  private setWatch(addr: bigint, len: number, kind: HostWatchKind, on: boolean): boolean {
    const a = BigInt.asUintN(64, addr);
    const i = this.watches.findIndex((w) => w.addr === a && w.len === len && w.kind === kind);
    for (const c of this.machine!.cpus) {
      if (!on) c.debug.removeHostWatchpoint(a, len, kind);
      else {
        try {
          c.debug.addHostWatchpoint(a, len, kind);
        } catch (e) {
          if (e instanceof RangeError) return false;
          throw e;
        }
      }
    }
    if (on && i < 0) this.watches.push({ addr: a, len, kind });
    if (!on && i >= 0) this.watches.splice(i, 1);
    return true;
  }

  /** Guest RAM at a virtual address of the selected vCPU, up to len bytes (fewer at an unmapped page). */
  private readMem(addr: bigint, len: number): Buffer {
    const cpu = this.cpuOf(this.gThread)!;
    const mem = this.machine!.mem;
    const parts: Buffer[] = [];
    let got = 0;
    while (got < len) {
      const va = (addr + BigInt(got)) & 0xffffffffffffffffn;
      const pa = debugTranslate(cpu, va);
      const n = Math.min(len - got, 4096 - Number(va & 0xfffn));
      if (pa === undefined || !mem.isRam(pa, n)) break;
      parts.push(Buffer.from(mem.u8.subarray(pa - mem.ramBase, pa - mem.ramBase + n)));
      got += n;
    }
    return Buffer.concat(parts);
  }

  /** Write guest RAM at a virtual address; false (and nothing written) when a page is not RAM. */
  private writeMem(addr: bigint, data: Buffer): boolean {
    const cpu = this.cpuOf(this.gThread)!;
    const mem = this.machine!.mem;
    const chunks: { pa: number; from: number; n: number }[] = [];
    for (let done = 0; done < data.length;) {
      const va = (addr + BigInt(done)) & 0xffffffffffffffffn;
      const pa = debugTranslate(cpu, va);
      const n = Math.min(data.length - done, 4096 - Number(va & 0xfffn));
      if (pa === undefined || !mem.isRam(pa, n)) return false;
      chunks.push({ pa, from: done, n });
      done += n;
    }
    for (const c of chunks) {
      mem.u8.set(data.subarray(c.from, c.from + c.n), c.pa - mem.ramBase);
      mem.noteWrite(c.pa - mem.ramBase, c.n); // drops decoded code of the page
    }
    return true;
  }
}

/** The physical address a vCPU's stage-1 translation gives `va` now (AT S1E1R: no fault, no TLB fill). */
function debugTranslate(cpu: Arm64Cpu, va: bigint): number | undefined {
  const lo = Number(va & M32);
  const par = cpu.mmu.at(lo, Number(va >> 32n), false, false);
  if ((par & 1n) !== 0n) return undefined;
  return Number(par & 0xfffffffff000n) + (lo & 0xfff);
}

/** serveGdb(), then say on stderr where it listens (for `run`, `launch` and `create`'s VM process). */
export async function serveGdbAnnounced(vm: GdbTarget, spec: GdbSpec): Promise<GdbServer> {
  const s = await serveGdb(vm, spec);
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  process.stderr.write(
    `typevisor: gdb stub on ${host}:${s.port}` +
      (spec.wait ? ' (the guest waits for gdb to continue it)' : '') +
      '\n',
  );
  return s;
}

/** A listening gdb stub for a VM: one debugger at a time. */
export interface GdbServer {
  /** The address it listens on (the port chosen when 0 was asked). */
  host: string;
  port: number;
  close(): void;
}

/**
 * Listen for gdb on spec.host:spec.port and serve the VM. Call before vm.start() (the stub needs
 * the VM's 'boot' event); with spec.wait, start the VM paused.
 */
export async function serveGdb(vm: GdbTarget, spec: GdbSpec): Promise<GdbServer> {
  let client: net.Socket | undefined;
  const server = net.createServer();
  const stub = new GdbStub(
    vm,
    (b) => client?.write(b),
    () => {
      client?.end();
      server.close();
    },
  );
  // The stub debugs the software CPU (the spec refuses --gdb for other engines).
  vm.on('boot', (m) => {
    if (m instanceof Arm64VirtMachine) stub.setMachine(m);
  });
  vm.on('exit', (exit) => stub.vmExited(exit));
  server.on('connection', (sock) => {
    if (client) {
      sock.end(); // one debugger at a time
      return;
    }
    client = sock;
    sock.setNoDelay(true);
    stub.attach();
    sock.on('data', (d) => stub.receive(d));
    const gone = (): void => {
      if (client !== sock) return;
      client = undefined;
      stub.detach();
    };
    sock.on('close', gone);
    sock.on('error', gone);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new UserError(
          `--gdb ${spec.host}:${spec.port}: cannot listen: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`,
        ),
      ),
    );
    server.listen(spec.port, spec.host, () => resolve());
  });
  server.unref(); // the VM keeps the process alive, not the stub
  const addr = server.address() as net.AddressInfo;
  return {
    host: spec.host,
    port: addr.port,
    close: () => {
      client?.destroy();
      server.close();
    },
  };
}

// A 16550A-compatible UART (the PC's COM1 at port 0x3f8, IRQ 4), after the 16550D datasheet and as
// Linux's 8250 driver uses it. Registers (offset from the base port): 0 RBR/THR (DLL with DLAB),
// 1 IER (DLM with DLAB), 2 IIR/FCR, 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR.
//
// Output is instant: a byte written to THR goes to `onTx` at once (THRE and TEMT always read 1).
//
// Input: a 16-entry receive FIFO when FIFOs are enabled (FCR bit 0), else the 1-byte holding
// register (RBR), filled whatever IER says so that a polling guest gets its input. Two ways in:
//  - receive(): a line that cannot be held back. With FIFOs on, a byte that finds the FIFO full is
//    lost; with them off, it overwrites the unread byte in RBR (as the datasheet says). Either way
//    LSR.OE is set (until the guest reads LSR).
//  - offerRx(): a flow-controlled source (the console): takes what fits while the guest listens and
//    the caller keeps the rest; it never overruns. "Listens" (as for the PL011, see pl011.ts) is one
//    of: the received-data interrupt enabled (IER bit 0) with OUT2 set in MCR (the PC's interrupt
//    gate, which Linux sets when it opens the port), DTR or RTS asserted in MCR, or the guest
//    polling LSR on an empty FIFO (POLLS_TO_LISTEN reads in a row with no other access to the UART
//    between). Never in loopback mode, where the receiver is disconnected from the line.
// sendBreak() receives a line break: a NUL byte with the break flag, which LSR reports (BI, bit 4)
// once that byte is at the head of the FIFO; Linux reads LSR, sees BI, then reads the NUL from RBR.
//
// Interrupts (IIR, highest priority first): receiver line status (IER bit 2: OE or BI pending in
// LSR), received data (IER bit 0: any byte waiting; the model delivers a burst at once, so the
// datasheet's character timeout is already due), THR empty (IER bit 1). Loopback (MCR bit 4) sends
// transmitted bytes to the receiver and reflects MCR's outputs in MSR.

import type { SerialConsole } from './serial.js';
import { loadFields, saveFields, type FieldState } from './state-fields.js';

const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IIR_NONE = 0x01;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_FIFO = 0xc0;
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_BI = 0x10;
export const LSR_THRE = 0x20;
export const LSR_TEMT = 0x40;
/** FIFO mode: an entry in the receive FIFO carries an error (here: a break). */
export const LSR_FIFOE = 0x80;
const LCR_DLAB = 0x80;
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

/** Receive FIFO entries of a 16550A with FIFOs enabled. */
export const UART8250_FIFO_DEPTH = 16;

/**
 * LSR reads on an empty receiver, with no other UART access between, after which the guest counts
 * as polling for input. Linux's console writes THR between its LSR reads; a polling loop reads LSR
 * thousands of times.
 */
export const UART8250_POLLS_TO_LISTEN = 16;

/** Entries the receiver holds with FIFO control `fcr`: the FIFO, or the 1-byte RBR with FIFOs off. */
const rxDepth = (fcr: number): number => (fcr & FCR_ENABLE ? UART8250_FIFO_DEPTH : 1);

/** Entry flag in the receive FIFO: the byte is a break (bits 7:0 hold the data). */
const RX_BREAK = 0x100;

/** The model's registers and latches, saved by name (state-fields.ts). */
const UART8250_FIELDS = [
  'ier',
  'lcr',
  'mcr',
  'scr',
  'dll',
  'dlm',
  'fcr',
  'thrEmptyPending',
  'lsrErr',
  'emptyPolls',
  'irqLevel',
  'txCount',
] as const;

/** A Uart8250's state for a snapshot (plain JSON). */
export interface Uart8250State {
  /** Registers (IER, LCR, MCR, SCR, divisor latch, FCR) and latches, by field name. */
  fields: FieldState;
  /** The receiver's entries, oldest first: a byte, or 0x100 | byte for a break. */
  rx: number[];
}

export interface Uart8250Options {
  /** Bytes the guest transmits (one per call); same as setting `onTx`. */
  output?: (bytes: Uint8Array) => void;
  /** Interrupt line level. */
  setIrq?: (level: boolean) => void;
}

export class Uart8250 implements SerialConsole {
  /** Called with each byte the guest transmits. */
  onTx: (byte: number) => void;

  private ier = 0;
  private lcr = 0x03;
  private mcr = MCR_OUT2;
  private scr = 0;
  private dll = 0x0c;
  private dlm = 0;
  private fcr = 0;
  private thrEmptyPending = true;
  /** Receive FIFO (ring), entries as RX_BREAK | byte. With FIFOs off only one entry is used. */
  private readonly rx = new Uint16Array(UART8250_FIFO_DEPTH);
  private rxHead = 0;
  private rxCount = 0;
  /** LSR error bits (OE, BI) latched until the guest reads LSR. */
  private lsrErr = 0;
  /** LSR reads on an empty receiver since the last other UART access. */
  private emptyPolls = 0;
  private irqLevel = false;
  private readonly setIrq: (level: boolean) => void;
  /** Bytes the guest transmitted (all of them, for tests and diagnostics). */
  txCount = 0;

  constructor(opts: Uart8250Options = {}) {
    const output = opts.output;
    this.onTx = output ? (b) => output(Uint8Array.of(b)) : () => {};
    this.setIrq = opts.setIrq ?? (() => {});
  }

  // ---------------------------------------------------------------- snapshot

  /** Registers, receive FIFO and latches for a snapshot (plain JSON). */
  saveState(): Uart8250State {
    const rx: number[] = [];
    for (let i = 0; i < this.rxCount; i++) rx.push(this.rx[(this.rxHead + i) % UART8250_FIFO_DEPTH]);
    return { fields: saveFields(this, UART8250_FIELDS), rx };
  }

  /**
   * Load a state from saveState. Everything is checked first (an Error names the first bad field)
   * and nothing changes when a check fails. The interrupt line is not driven: its level is the
   * interrupt controller's, saved and restored with it.
   */
  restoreState(s: Uart8250State): void {
    const what = 'uart8250';
    if (typeof s !== 'object' || s === null) throw new Error(`${what}: no saved state`);
    // Types through loadFields on a scratch model, ranges here, then the values move over.
    const probe = new Uart8250();
    loadFields(probe, UART8250_FIELDS, s.fields, what);
    const f = s.fields as Record<(typeof UART8250_FIELDS)[number], number | boolean>;
    // `mask`: the bits a register field may have set (none checked for counters).
    const range = (k: (typeof UART8250_FIELDS)[number], max: number, mask?: number) => {
      const v = f[k] as number;
      if (!Number.isInteger(v) || v < 0 || v > max || (mask !== undefined && (v & ~mask) !== 0))
        throw new Error(
          `${what}: field ${k} is ${v}, out of range (0..0x${max.toString(16)}${mask !== undefined ? `, bits 0x${mask.toString(16)}` : ''})`,
        );
    };
    for (const k of ['lcr', 'scr', 'dll', 'dlm'] as const) range(k, 0xff, 0xff);
    range('ier', 0x0f, 0x0f);
    range('mcr', 0x1f, 0x1f);
    range('fcr', 0xff, 0xf9); // the clear bits (1, 2) never stay set
    range('lsrErr', 0xff, LSR_OE | LSR_BI);
    range('emptyPolls', UART8250_POLLS_TO_LISTEN);
    range('txCount', Number.MAX_SAFE_INTEGER);
    const depth = rxDepth(f.fcr as number);
    if (!Array.isArray(s.rx) || s.rx.length > depth)
      throw new Error(
        `${what}: rx must be an array of at most ${depth} entries (FIFOs ${depth > 1 ? 'on' : 'off'})`,
      );
    s.rx.forEach((e, i) => {
      if (!Number.isInteger(e) || e < 0 || e > (RX_BREAK | 0xff))
        throw new Error(`${what}: rx[${i}] is ${JSON.stringify(e)}, expected a byte or 0x100 | byte (break)`);
    });
    loadFields(this, UART8250_FIELDS, s.fields, what);
    this.rx.fill(0);
    this.rx.set(s.rx);
    this.rxHead = 0;
    this.rxCount = s.rx.length;
  }

  // ---------------------------------------------------------------- host side

  private depth(): number {
    return rxDepth(this.fcr);
  }

  /** Free entries in the receiver (FIFO or holding register). */
  rxSpace(): number {
    return Math.max(0, this.depth() - this.rxCount);
  }

  /** Bytes waiting in the receiver. */
  get rxLevel(): number {
    return this.rxCount;
  }

  /**
   * Receive bytes from a line that cannot be held back. With FIFOs on, those that find the FIFO full
   * are lost; with FIFOs off, each overwrites an unread byte. Either is an overrun (LSR.OE). Returns
   * how many of `bytes` the guest can read (entered and not overwritten). Nothing enters in
   * loopback mode (the receiver listens to the transmitter, not the line).
   */
  receive(bytes: Uint8Array | ArrayLike<number>): number {
    if (this.mcr & MCR_LOOP) return 0;
    return this.take(bytes, bytes.length);
  }

  /**
   * Offer bytes from a flow-controlled source: takes what fits while the guest listens (see the
   * header) and returns how many it took; the caller keeps the rest. Never overruns.
   */
  offerRx(bytes: Uint8Array | ArrayLike<number>): number {
    if (!this.rxListening) return 0;
    return this.take(bytes, Math.min(bytes.length, this.rxSpace()));
  }

  /**
   * True when the guest wants input: not in loopback, and the received-data interrupt enabled with
   * OUT2, DTR or RTS asserted, or LSR polled on an empty receiver.
   */
  get rxListening(): boolean {
    if (this.mcr & MCR_LOOP) return false;
    return (
      ((this.ier & IER_RDI) !== 0 && (this.mcr & MCR_OUT2) !== 0) ||
      (this.mcr & (MCR_DTR | MCR_RTS)) !== 0 ||
      this.emptyPolls >= UART8250_POLLS_TO_LISTEN
    );
  }

  /**
   * Receive a break condition: a NUL byte that LSR reports with BI when it reaches the head of the
   * FIFO (Linux: a break then a key is a magic SysRq). False when the receiver is full (or in
   * loopback mode).
   */
  sendBreak(): boolean {
    if (this.mcr & MCR_LOOP || this.rxSpace() === 0) return false;
    this.put(RX_BREAK);
    this.update();
    return true;
  }

  private take(bytes: ArrayLike<number>, count: number): number {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const r = this.put(bytes[i] & 0xff);
      if (r === 'entered') n++;
      // FIFOs off: the byte replaced the unread one, which came from this call if any did.
      else if (r === 'replaced' && n === 0) n = 1;
    }
    this.update();
    return n;
  }

  /** One entry into the receiver, or an overrun when it is full. */
  private put(entry: number): 'entered' | 'replaced' | 'lost' {
    if (this.rxCount >= this.depth()) {
      this.lsrErr |= LSR_OE;
      if (this.fcr & FCR_ENABLE) return 'lost';
      // 16450 mode: the new character overwrites the one in RBR.
      this.rx[this.rxHead] = entry;
      this.headArrived();
      return 'replaced';
    }
    this.rx[(this.rxHead + this.rxCount) % UART8250_FIFO_DEPTH] = entry;
    this.rxCount++;
    if (this.rxCount === 1) this.headArrived();
    return 'entered';
  }

  /** A new entry is at the head of the receiver: its break flag shows in LSR. */
  private headArrived(): void {
    if (this.rx[this.rxHead] & RX_BREAK) this.lsrErr |= LSR_BI;
  }

  private pop(): number {
    if (this.rxCount === 0) return 0;
    const v = this.rx[this.rxHead] & 0xff;
    this.rxHead = (this.rxHead + 1) % UART8250_FIFO_DEPTH;
    this.rxCount--;
    if (this.rxCount > 0) this.headArrived();
    return v;
  }

  private clearRx(): void {
    this.rxHead = 0;
    this.rxCount = 0;
  }

  private lsr(): number {
    let v = LSR_THRE | LSR_TEMT | this.lsrErr;
    if (this.rxCount > 0) v |= LSR_DR;
    if (this.fcr & FCR_ENABLE) {
      for (let i = 0; i < this.rxCount; i++) {
        if (this.rx[(this.rxHead + i) % UART8250_FIFO_DEPTH] & RX_BREAK) {
          v |= LSR_FIFOE;
          break;
        }
      }
    }
    return v;
  }

  // ---------------------------------------------------------------- interrupts

  private iir(): number {
    const fifo = this.fcr & FCR_ENABLE ? IIR_FIFO : 0;
    if (this.ier & IER_RLSI && this.lsrErr) return IIR_RLSI | fifo;
    if (this.ier & IER_RDI && this.rxCount > 0) return IIR_RDI | fifo;
    if (this.ier & IER_THRI && this.thrEmptyPending) return IIR_THRI | fifo;
    return IIR_NONE | fifo;
  }

  private update(): void {
    const level = (this.iir() & IIR_NONE) === 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  // ---------------------------------------------------------------- guest side

  read(off: number): number {
    off &= 7;
    if (off === 5) {
      const v = this.lsr();
      if (this.rxCount === 0) {
        if (this.emptyPolls < UART8250_POLLS_TO_LISTEN) this.emptyPolls++;
      } else this.emptyPolls = 0;
      // Reading LSR clears its error bits (and so the line status interrupt).
      if (this.lsrErr) {
        this.lsrErr = 0;
        this.update();
      }
      return v;
    }
    this.emptyPolls = 0;
    let v = 0;
    switch (off) {
      case 0:
        if (this.lcr & LCR_DLAB) return this.dll;
        v = this.pop();
        break;
      case 1:
        return this.lcr & LCR_DLAB ? this.dlm : this.ier;
      case 2: {
        v = this.iir();
        if ((v & 0x0f) === IIR_THRI) this.thrEmptyPending = false;
        break;
      }
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 6:
        // Loopback: CTS <- RTS, DSR <- DTR, RI <- OUT1, DCD <- OUT2. Otherwise DCD, DSR and CTS asserted.
        if (this.mcr & MCR_LOOP) {
          const m = this.mcr;
          return ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
        }
        return 0xb0;
      case 7:
        return this.scr;
    }
    this.update();
    return v;
  }

  write(off: number, value: number): void {
    value &= 0xff;
    this.emptyPolls = 0;
    switch (off & 7) {
      case 0:
        if (this.lcr & LCR_DLAB) {
          this.dll = value;
          return;
        }
        this.txCount++;
        if (this.mcr & MCR_LOOP) this.put(value);
        else this.onTx(value);
        this.thrEmptyPending = true;
        break;
      case 1:
        if (this.lcr & LCR_DLAB) {
          this.dlm = value;
          return;
        }
        if (value & IER_THRI && !(this.ier & IER_THRI)) this.thrEmptyPending = true;
        this.ier = value & 0x0f;
        break;
      case 2:
        // Turning FIFOs on or off clears them, as does FCR bit 1.
        if ((value ^ this.fcr) & FCR_ENABLE || value & FCR_CLEAR_RX) this.clearRx();
        this.fcr = value & ~0x06; // the clear bits are self-clearing
        break;
      case 3:
        this.lcr = value;
        return;
      case 4:
        this.mcr = value & 0x1f;
        break;
      case 7:
        this.scr = value;
        return;
      default:
        return;
    }
    this.update();
  }

  /** A PortDevice view at `base` (8 ports). */
  ports(base: number): {
    in(port: number, size: number): number;
    out(port: number, size: number, value: number): void;
  } {
    return {
      in: (port) => this.read(port - base),
      out: (port, _size, value) => this.write(port - base, value),
    };
  }
}

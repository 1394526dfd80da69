// ARM PrimeCell UART (PL011), after the PL011 Technical Reference Manual (r1p5) and as Linux's
// amba-pl011 driver and its earlycon use it.
//
// Output is instant: a byte written to DR goes to `onTx` at once, so the TX FIFO is always empty
// (FR.TXFE = 1, TXFF = 0, BUSY = 0). Because every write drains through the TX trigger level at once,
// the TX interrupt (RIS.TX) is raised by every DR write and whenever IMSC unmasks TXIM; it stays
// until ICR clears it (the driver then only unmasks TXIM when it has more to send). Transmission
// happens whatever CR says (like QEMU's model: firmware and earlycon may write before enabling).
//
// Input: a receive FIFO of 32 entries when LCR_H.FEN is set, else a one-character holding register,
// filled whatever the interrupt mask, so a program that polls FR.RXFE and reads DR gets its input.
// Two ways in:
//  - receive(): a line that cannot be held back. A character arriving at a full FIFO is lost: an
//    overrun (RSR.OE and RIS.OE at once, DR.OE on the next character that enters the FIFO).
//  - offerRx(): a flow-controlled source (the console): it takes what fits while the guest listens
//    and the caller keeps the rest, so nothing is lost. "Listens" is the receiver enabled (CR.RXE)
//    and one of: the UART enabled (CR.UARTEN) with an RX or RX-timeout interrupt unmasked, the
//    modem-control outputs RTS or DTR asserted (Linux raises them once a tty has opened the port),
//    or the guest polling FR on an empty FIFO (POLLS_TO_LISTEN reads in a row with no other access
//    to the UART between). Without that hold-back, input that arrives during boot would sit in the
//    FIFO until Linux opens the port, and its open (pl011_enable_interrupts) reads and discards up
//    to two FIFOs' worth as a workaround for a hardware erratum: a script piped into the console
//    would lose its first line. (Linux unmasks RX in pl011_hwinit while UARTEN is still clear, and
//    sets UARTEN only just before that drain.)
// sendBreak() receives a line break (a NUL with DR.BE, RSR.BE and RIS.BE).
//
// Interrupts (TRM 2.8): RIS.RX is set when the FIFO fill reaches the IFLS trigger level (FIFO off:
// one character) and cleared by ICR or by reads that take it below the level. RIS.RT (receive
// timeout) is raised when characters arrive (the model delivers a burst at once, so the line is idle
// after it) and holds until ICR clears it or the FIFO drains.

import type { SerialConsole } from './serial.js';
import type { MmioDevice } from '../memory/guest-memory.js';
import { loadFields, saveFields, type FieldState } from './state-fields.js';

const FIFO_DEPTH = 32;

// Interrupt bits (RIS/MIS/IMSC/ICR)
export const PL011_INT_RX = 1 << 4;
export const PL011_INT_TX = 1 << 5;
export const PL011_INT_RT = 1 << 6;
export const PL011_INT_BE = 1 << 9;
export const PL011_INT_OE = 1 << 10;
const INT_MASK = 0x7ff;

// FR bits
export const FR_BUSY = 1 << 3;
export const FR_RXFE = 1 << 4;
export const FR_TXFF = 1 << 5;
export const FR_RXFF = 1 << 6;
export const FR_TXFE = 1 << 7;

// DR error bits (RSR holds the same four flags in bits 3:0)
export const DR_BE = 1 << 10;
export const DR_OE = 1 << 11;
export const RSR_OE = 1 << 3;

// CR bits
const CR_UARTEN = 1 << 0;
const CR_RXE = 1 << 9;
const CR_DTR = 1 << 10;
const CR_RTS = 1 << 11;

const LCRH_FEN = 1 << 4;

/**
 * Reads of FR on an empty FIFO, with no other UART access between, after which the guest counts as
 * polling for input. Linux never reads FR more than twice in a row before it opens the port (its
 * console and earlycon write DR or CR between reads); a polling loop reads it thousands of times.
 */
export const POLLS_TO_LISTEN = 16;

// PeriphID0..3, PCellID0..3 at 0xFE0..0xFFC
const ID = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

// IFLS trigger levels (entries of 32) for the 3-bit field values 0..4: 1/8, 1/4, 1/2, 3/4, 7/8.
const LEVELS = [4, 8, 16, 24, 28];

/** The fields of Pl011 a snapshot carries (the RX FIFO's contents besides). */
const PL011_FIELDS = [
  'rxHead',
  'rxCount',
  'ilpr',
  'ibrd',
  'fbrd',
  'lcrh',
  'cr',
  'ifls',
  'imsc',
  'dmacr',
  'txLatch',
  'rxLatch',
  'rxAtLevel',
  'rtLatch',
  'beLatch',
  'oeLatch',
  'overrunPending',
  'rsr',
  'emptyPolls',
  'irqLevel',
] as const;

export interface Pl011State {
  fields: FieldState;
  rx: number[];
}

export class Pl011 implements MmioDevice, SerialConsole {
  /** Called with each byte the guest transmits. */
  onTx: (byte: number) => void = () => {};

  /** RX FIFO entries: data in bits 7:0, error flags as in DR (break = bit 10, overrun = bit 11). */
  private readonly rx = new Uint16Array(FIFO_DEPTH);
  private rxHead = 0;
  private rxCount = 0;

  private ilpr = 0;
  private ibrd = 0;
  private fbrd = 0;
  private lcrh = 0;
  private cr = 0x300; // TXE | RXE
  private ifls = 0x12; // both FIFO levels at 1/2
  private imsc = 0;
  private dmacr = 0;
  /** Latched interrupt bits; RX is set on reaching the trigger level (rxAtLevel's rising edge). */
  private txLatch = false;
  private rxLatch = false;
  private rxAtLevel = false;
  private rtLatch = false;
  /** Break interrupt (RIS.BE), latched when a break is received, cleared by ICR. */
  private beLatch = false;
  /** Overrun interrupt (RIS.OE), latched when a character is lost, cleared by ICR. */
  private oeLatch = false;
  /** A character was lost since the last one entered the FIFO: the next one carries DR.OE. */
  private overrunPending = false;
  /** RSR: error flags (FE, PE, BE, OE in bits 3:0); OE is set at once on overrun, the others by DR reads. */
  private rsr = 0;
  /** FR reads on an empty FIFO since the last other UART access (see POLLS_TO_LISTEN). */
  private emptyPolls = 0;
  private irqLevel = false;

  constructor(private readonly setIrq: (level: boolean) => void = () => {}) {}

  /** Registers, FIFO contents and interrupt latches for a snapshot (plain JSON). */
  saveState(): Pl011State {
    return { fields: saveFields(this, PL011_FIELDS), rx: Array.from(this.rx) };
  }

  /** Load a saved state (the interrupt line's level is the GIC's, saved with it). */
  restoreState(s: Pl011State): void {
    loadFields(this, PL011_FIELDS, s.fields, 'pl011');
    if (!Array.isArray(s.rx) || s.rx.length !== FIFO_DEPTH)
      throw new Error(`pl011: the RX FIFO has ${FIFO_DEPTH} entries`);
    this.rx.set(s.rx);
    if (this.rxHead < 0 || this.rxHead >= FIFO_DEPTH || this.rxCount < 0 || this.rxCount > FIFO_DEPTH)
      throw new Error(`pl011: RX FIFO position ${this.rxHead}/${this.rxCount} is out of range`);
  }

  // ---------------------------------------------------------------- host side

  /** Free RX FIFO entries. */
  rxSpace(): number {
    return Math.max(0, this.depth() - this.rxCount);
  }

  /** Characters waiting in the RX FIFO. */
  get rxLevel(): number {
    return this.rxCount;
  }

  /**
   * Receive characters from a line that cannot be held back. Those that find the FIFO full are lost
   * (overrun). Returns how many entered the FIFO.
   */
  receive(bytes: Uint8Array | ArrayLike<number>): number {
    return this.receiveFirst(bytes, bytes.length);
  }

  private receiveFirst(bytes: ArrayLike<number>, count: number): number {
    let n = 0;
    for (let i = 0; i < count; i++) if (this.put(bytes[i] & 0xff)) n++;
    if (count > 0) this.rtLatch = true;
    this.update();
    return n;
  }

  /**
   * Offer characters from a flow-controlled source: takes what fits while the guest listens (see
   * the header) and returns how many it took; the caller keeps the rest for later. Never overruns.
   */
  offerRx(bytes: Uint8Array | ArrayLike<number>): number {
    if (!this.rxListening) return 0;
    return this.receiveFirst(bytes, Math.min(bytes.length, this.rxSpace()));
  }

  /**
   * True when the guest wants input: receiver enabled, and the UART enabled with an RX interrupt
   * unmasked, RTS or DTR asserted, or FR polled on an empty FIFO.
   */
  get rxListening(): boolean {
    if ((this.cr & CR_RXE) === 0) return false;
    return (
      ((this.cr & CR_UARTEN) !== 0 && (this.imsc & (PL011_INT_RX | PL011_INT_RT)) !== 0) ||
      (this.cr & (CR_RTS | CR_DTR)) !== 0 ||
      this.emptyPolls >= POLLS_TO_LISTEN
    );
  }

  /**
   * Receive a break condition (a NUL with DR.BE set), as a serial line's BREAK. Linux treats a break
   * followed by a key as a magic SysRq. Returns false when the FIFO is full.
   */
  sendBreak(): boolean {
    if (this.rxSpace() === 0) return false;
    this.put(DR_BE);
    this.rtLatch = true;
    this.beLatch = true;
    this.update();
    return true;
  }

  /** One character (with error flags) into the FIFO, or an overrun when it is full. */
  private put(entry: number): boolean {
    if (this.rxCount >= this.depth()) {
      this.overrunPending = true;
      this.oeLatch = true;
      this.rsr |= RSR_OE;
      return false;
    }
    if (this.overrunPending) entry |= DR_OE;
    this.overrunPending = false;
    this.rx[(this.rxHead + this.rxCount) % FIFO_DEPTH] = entry;
    this.rxCount++;
    return true;
  }

  private depth(): number {
    return this.lcrh & LCRH_FEN ? FIFO_DEPTH : 1;
  }

  // ---------------------------------------------------------------- interrupts

  private trigger(): number {
    return this.lcrh & LCRH_FEN ? LEVELS[Math.min(4, (this.ifls >>> 3) & 7)] : 1;
  }

  /** Raw interrupt status. */
  private ris(): number {
    let r = 0;
    if (this.rxLatch) r |= PL011_INT_RX;
    if (this.rtLatch && this.rxCount > 0) r |= PL011_INT_RT;
    if (this.beLatch) r |= PL011_INT_BE;
    if (this.oeLatch) r |= PL011_INT_OE;
    if (this.txLatch) r |= PL011_INT_TX;
    return r;
  }

  private update(): void {
    // RX: set when the fill reaches the trigger level, cleared when it falls below (or by ICR).
    const atLevel = this.rxCount >= this.trigger();
    if (atLevel && !this.rxAtLevel) this.rxLatch = true;
    if (!atLevel) this.rxLatch = false;
    this.rxAtLevel = atLevel;
    const level = (this.ris() & this.imsc) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  // ---------------------------------------------------------------- MMIO

  read(offset: number, size: number): number {
    if ((size !== 1 && size !== 2 && size !== 4) || (offset & 3) !== 0 || offset < 0 || offset >= 0x1000)
      return 0;
    if (offset === 0x018) {
      let fr = FR_TXFE;
      if (this.rxCount === 0) {
        fr |= FR_RXFE;
        if (this.emptyPolls < POLLS_TO_LISTEN) this.emptyPolls++;
      } else this.emptyPolls = 0;
      if (this.rxCount >= this.depth()) fr |= FR_RXFF;
      return fr;
    }
    this.emptyPolls = 0;
    switch (offset) {
      case 0x000: {
        // DR: pop the RX FIFO; error flags in bits 11:8
        if (this.rxCount === 0) return 0;
        const b = this.rx[this.rxHead];
        this.rsr = ((b >>> 8) & 0xf) | (this.rsr & RSR_OE);
        this.rxHead = (this.rxHead + 1) % FIFO_DEPTH;
        this.rxCount--;
        this.update();
        return b;
      }
      case 0x004: // RSR: the error flags of the last character read, and overrun as it happens
        return this.rsr;
      case 0x020:
        return this.ilpr;
      case 0x024:
        return this.ibrd;
      case 0x028:
        return this.fbrd;
      case 0x02c:
        return this.lcrh;
      case 0x030:
        return this.cr;
      case 0x034:
        return this.ifls;
      case 0x038:
        return this.imsc;
      case 0x03c:
        return this.ris();
      case 0x040:
        return this.ris() & this.imsc;
      case 0x048:
        return this.dmacr;
    }
    if (offset >= 0xfe0) return ID[(offset - 0xfe0) >>> 2];
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if ((size !== 1 && size !== 2 && size !== 4) || (offset & 3) !== 0 || offset < 0 || offset >= 0x1000)
      return;
    this.emptyPolls = 0;
    const v = value >>> 0;
    switch (offset) {
      case 0x000:
        this.onTx(v & 0xff);
        this.txLatch = true;
        break;
      case 0x004: // ECR: any write clears RSR
        this.rsr = 0;
        return;
      case 0x020:
        this.ilpr = v & 0xff;
        return;
      case 0x024:
        this.ibrd = v & 0xffff;
        return;
      case 0x028:
        this.fbrd = v & 0x3f;
        return;
      case 0x02c:
        // The FIFO may shrink to one entry: characters already in it stay until read.
        this.lcrh = v & 0xff;
        break;
      case 0x030:
        this.cr = v & 0xffff;
        break;
      case 0x034:
        this.ifls = v & 0x3f;
        break;
      case 0x038: {
        const unmaskedTx = (v & PL011_INT_TX) !== 0 && (this.imsc & PL011_INT_TX) === 0;
        this.imsc = v & INT_MASK;
        // The (always empty) TX FIFO is at or below its trigger level: a newly unmasked TXIM fires.
        if (unmaskedTx) this.txLatch = true;
        break;
      }
      case 0x044:
        if (v & PL011_INT_TX) this.txLatch = false;
        if (v & PL011_INT_RX) this.rxLatch = false;
        if (v & PL011_INT_RT) this.rtLatch = false;
        if (v & PL011_INT_BE) this.beLatch = false;
        if (v & PL011_INT_OE) this.oeLatch = false;
        break;
      case 0x048:
        this.dmacr = v & 7;
        return;
      default:
        return;
    }
    this.update();
  }
}

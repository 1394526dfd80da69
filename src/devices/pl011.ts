// ARM PrimeCell UART (PL011), as Linux's amba-pl011 driver and its earlycon use it.
//
// Output is instant: a byte written to DR goes to `onTx` at once, so the TX FIFO is always empty
// (FR.TXFE = 1, TXFF = 0, BUSY = 0). Because every write drains through the TX trigger level at once,
// the TX interrupt (RIS.TX) is raised by every DR write and whenever IMSC unmasks TXIM; it stays
// until ICR clears it (the driver then only unmasks TXIM when it has more to send).
// Input: the host pushes bytes with pushRx() (at most rxSpace() of them: nothing is ever dropped, so
// there are no overrun errors) or queues any amount with pushRxWhenReady(), which feeds the FIFO as
// the guest reads it; sendBreak() receives a line break (a NUL with DR.BE, RSR.BE and RIS.BE). RX FIFO: 32 entries when LCR_H.FEN is set, else a 1-byte holding register.
// RIS.RX is set while the FIFO holds at least the IFLS trigger level (FIFO off: one byte); RIS.RT
// (receive timeout) is raised when bytes arrive and holds while the FIFO is non-empty, until ICR
// clears it or the FIFO drains. Transmission happens whatever CR says (like QEMU's model: firmware
// and earlycon may write before the UART is enabled).

import type { MmioDevice } from './memory.js';

const FIFO_DEPTH = 32;

// Interrupt bits (RIS/MIS/IMSC/ICR)
export const PL011_INT_RX = 1 << 4;
export const PL011_INT_TX = 1 << 5;
export const PL011_INT_RT = 1 << 6;
export const PL011_INT_BE = 1 << 9;
const INT_MASK = 0x7ff;

// FR bits
export const FR_BUSY = 1 << 3;
export const FR_RXFE = 1 << 4;
export const FR_TXFF = 1 << 5;
export const FR_RXFF = 1 << 6;
export const FR_TXFE = 1 << 7;

const LCRH_FEN = 1 << 4;

// PeriphID0..3, PCellID0..3 at 0xFE0..0xFFC
const ID = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

// IFLS trigger levels (entries of 32) for the 3-bit field values 0..4: 1/8, 1/4, 1/2, 3/4, 7/8.
const LEVELS = [4, 8, 16, 24, 28];

export class Pl011 implements MmioDevice {
  /** Called with each byte the guest transmits. */
  onTx: (byte: number) => void = () => {};

  /** RX FIFO entries: data in bits 7:0, error flags as in DR (break = bit 10). */
  private readonly rx = new Uint16Array(FIFO_DEPTH);
  private rxHead = 0;
  private rxCount = 0;
  /** Bytes queued by pushRxWhenReady() that did not fit yet. */
  private pending: Uint8Array[] = [];
  private pendingOff = 0;

  private ilpr = 0;
  private ibrd = 0;
  private fbrd = 0;
  private lcrh = 0;
  private cr = 0x300; // TXE | RXE
  private ifls = 0x12; // both FIFO levels at 1/2
  private imsc = 0;
  private dmacr = 0;
  /** Latched interrupt bits (TX, RT); RX is derived from the FIFO level. */
  private txLatch = false;
  private rtLatch = false;
  /** Break interrupt (RIS.BE), latched when a break is received, cleared by ICR. */
  private beLatch = false;
  /** RSR: error flags (FE, PE, BE, OE in bits 3:0) of the last character read from DR. */
  private rsr = 0;
  private irqLevel = false;

  constructor(private readonly setIrq: (level: boolean) => void = () => {}) {}

  // ---------------------------------------------------------------- host side

  /** Free RX FIFO entries. */
  rxSpace(): number {
    return Math.max(0, this.depth() - this.rxCount);
  }

  /** Push received bytes; returns how many were accepted (at most rxSpace()). */
  pushRx(bytes: Uint8Array | ArrayLike<number>): number {
    const n = Math.min(bytes.length, this.rxSpace());
    for (let i = 0; i < n; i++) {
      this.rx[(this.rxHead + this.rxCount) % FIFO_DEPTH] = bytes[i] & 0xff;
      this.rxCount++;
    }
    if (n > 0) {
      this.rtLatch = true;
      this.update();
    }
    return n;
  }

  /** True when the guest driver listens: UART and receiver enabled, RX or RX-timeout interrupt unmasked. */
  get rxReady(): boolean {
    return (this.cr & 0x201) === 0x201 && (this.imsc & (PL011_INT_RX | PL011_INT_RT)) !== 0;
  }

  /**
   * Receive a break condition (a NUL with DR.BE set), as a serial line's BREAK. Linux treats a break
   * followed by a key as a magic SysRq. Returns false when the FIFO is full.
   */
  sendBreak(): boolean {
    if (this.rxSpace() === 0) return false;
    this.rx[(this.rxHead + this.rxCount) % FIFO_DEPTH] = 1 << 10;
    this.rxCount++;
    this.rtLatch = true;
    this.beLatch = true;
    this.update();
    return true;
  }

  /** Queue bytes of any length: they enter the FIFO as the guest makes room. Nothing is dropped. */
  pushRxWhenReady(bytes: Uint8Array | ArrayLike<number>): void {
    if (bytes.length === 0) return;
    this.pending.push(Uint8Array.from(bytes));
    this.feed();
  }

  /** Bytes queued by pushRxWhenReady() that are not in the FIFO yet. */
  get pendingRx(): number {
    let n = 0;
    for (const p of this.pending) n += p.length;
    return n - this.pendingOff;
  }

  private feed(): void {
    while (this.pending.length > 0 && this.rxSpace() > 0) {
      const head = this.pending[0];
      this.pendingOff += this.pushRx(head.subarray(this.pendingOff));
      if (this.pendingOff >= head.length) {
        this.pending.shift();
        this.pendingOff = 0;
      }
    }
  }

  private depth(): number {
    return this.lcrh & LCRH_FEN ? FIFO_DEPTH : 1;
  }

  // ---------------------------------------------------------------- interrupts

  /** Raw interrupt status. */
  private ris(): number {
    let r = 0;
    const level = this.lcrh & LCRH_FEN ? LEVELS[Math.min(4, (this.ifls >>> 3) & 7)] : 1;
    if (this.rxCount >= level) r |= PL011_INT_RX;
    if (this.rtLatch && this.rxCount > 0) r |= PL011_INT_RT;
    if (this.beLatch) r |= PL011_INT_BE;
    if (this.txLatch) r |= PL011_INT_TX;
    return r;
  }

  private update(): void {
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
    switch (offset) {
      case 0x000: {
        // DR: pop the RX FIFO; only the break error (BE) is ever set
        if (this.rxCount === 0) return 0;
        const b = this.rx[this.rxHead];
        this.rsr = (b >>> 8) & 0xf;
        this.rxHead = (this.rxHead + 1) % FIFO_DEPTH;
        this.rxCount--;
        this.feed();
        this.update();
        return b;
      }
      case 0x004: // RSR: the error flags of the last character read
        return this.rsr;
      case 0x018: {
        let fr = FR_TXFE;
        if (this.rxCount === 0) fr |= FR_RXFE;
        if (this.rxCount >= this.depth()) fr |= FR_RXFF;
        return fr;
      }
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
      case 0x02c: {
        this.lcrh = v & 0xff;
        // The FIFO may have shrunk to one entry (bytes already in it stay) or grown: refill it.
        this.feed();
        break;
      }
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
        if (v & PL011_INT_RT) this.rtLatch = false;
        if (v & PL011_INT_BE) this.beLatch = false;
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

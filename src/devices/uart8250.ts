// A 16550A-compatible UART (the PC's COM1 at port 0x3f8, IRQ 4): transmit goes straight to the
// output callback, received bytes queue in a FIFO. Registers (offset from the base port):
// 0 RBR/THR (DLL with DLAB), 1 IER (DLM with DLAB), 2 IIR/FCR, 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR.

const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IIR_NONE = 0x01;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_FIFO = 0xc0;
const LSR_DR = 0x01;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const LCR_DLAB = 0x80;
const MCR_LOOP = 0x10;
const MCR_OUT2 = 0x08;

export interface Uart8250Options {
  output: (bytes: Uint8Array) => void;
  /** Interrupt line level. */
  setIrq?: (level: boolean) => void;
}

export class Uart8250 {
  private ier = 0;
  private lcr = 0x03;
  private mcr = MCR_OUT2;
  private scr = 0;
  private dll = 0x0c;
  private dlm = 0;
  private fcr = 0;
  private thrEmptyPending = true;
  private readonly rx: number[] = [];
  private irqLevel = false;
  private readonly output: (bytes: Uint8Array) => void;
  private readonly setIrq: (level: boolean) => void;
  /** Bytes the guest transmitted (all of them, for tests and diagnostics). */
  txCount = 0;

  constructor(opts: Uart8250Options) {
    this.output = opts.output;
    this.setIrq = opts.setIrq ?? (() => {});
  }

  /** Queue bytes for the guest to receive. */
  receive(bytes: Uint8Array): void {
    for (const b of bytes) if (this.rx.length < 4096) this.rx.push(b);
    this.update();
  }

  private iir(): number {
    const fifo = this.fcr & 1 ? IIR_FIFO : 0;
    if (this.ier & IER_RDI && this.rx.length > 0) return IIR_RDI | fifo;
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

  read(off: number): number {
    let v = 0;
    switch (off & 7) {
      case 0:
        if (this.lcr & LCR_DLAB) return this.dll;
        v = this.rx.shift() ?? 0;
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
      case 5:
        return (this.rx.length ? LSR_DR : 0) | LSR_THRE | LSR_TEMT;
      case 6:
        // Loopback reflects MCR; otherwise report DCD, DSR and CTS asserted.
        return this.mcr & MCR_LOOP ? ((this.mcr & 0x0c) << 4) | ((this.mcr & 0x03) << 4) : 0xb0;
      case 7:
        return this.scr;
    }
    this.update();
    return v;
  }

  write(off: number, value: number): void {
    value &= 0xff;
    switch (off & 7) {
      case 0:
        if (this.lcr & LCR_DLAB) {
          this.dll = value;
          return;
        }
        this.txCount++;
        if (this.mcr & MCR_LOOP) this.rx.push(value);
        else this.output(Uint8Array.of(value));
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
        this.fcr = value;
        if (value & 2) this.rx.length = 0;
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

// The PC keyboard controller (i8042) as far as a VMM needs it: ports 0x60 (data) and 0x64
// (status/command). It answers the probes a kernel makes and turns the CPU reset command (0xFE
// written to 0x64) into a reboot request. No keyboard or mouse is attached.

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08;

export class I8042 {
  private status = STATUS_SYS;
  private out: number[] = [];
  private cmdByte = 0x61;
  private pending = 0; // command awaiting a data byte on port 0x60
  /** Set when the guest asked for a CPU reset. */
  resetRequested = false;

  constructor(private readonly onReset: () => void = () => {}) {}

  private push(v: number): void {
    this.out.push(v & 0xff);
  }

  in(port: number): number {
    if (port === 0x64) return this.status | (this.out.length ? STATUS_OBF : 0);
    if (port === 0x60) return this.out.shift() ?? 0;
    return 0xff;
  }

  outb(port: number, v: number): void {
    v &= 0xff;
    if (port === 0x64) {
      this.status |= STATUS_CMD;
      switch (v) {
        case 0x20:
          this.push(this.cmdByte);
          break;
        case 0x60:
        case 0xd1: // write output port
        case 0xd2:
        case 0xd3:
        case 0xd4:
          this.pending = v;
          break;
        case 0xa7:
        case 0xa8:
        case 0xad:
        case 0xae:
          break;
        case 0xa9: // aux interface test: error (no mouse)
        case 0xab: // keyboard interface test: ok
          this.push(v === 0xa9 ? 0x01 : 0x00);
          break;
        case 0xaa: // self test
          this.push(0x55);
          break;
        case 0xfe: // pulse reset line
          this.resetRequested = true;
          this.onReset();
          break;
        default:
          break;
      }
      return;
    }
    if (port === 0x60) {
      this.status &= ~STATUS_CMD;
      const c = this.pending;
      this.pending = 0;
      if (c === 0x60) this.cmdByte = v;
      else if (c === 0xd1 && (v & 1) === 0) {
        this.resetRequested = true;
        this.onReset();
      } else if (c === 0xd2 || c === 0xd3) this.push(v);
      // Data for a keyboard (or 0xd4: mouse): nothing attached, no reply.
    }
  }

  ports(): { in(port: number, size: number): number; out(port: number, size: number, value: number): void } {
    return { in: (p) => this.in(p), out: (p, _s, v) => this.outb(p, v) };
  }
}

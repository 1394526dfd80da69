// The PC keyboard controller (i8042) as far as a VMM needs it: ports 0x60 (data) and 0x64
// (status/command). It answers the probes a kernel makes, turns the CPU reset command (0xFE
// written to 0x64, or an output port write with bit 0 clear) into a reboot request, and has a
// minimal PS/2 keyboard attached whose only keys are the VMM's Ctrl-Alt-Del (pressCtrlAltDel).
// No mouse is attached.
//
// The keyboard answers the commands Linux's atkbd sends while probing it (reset, get ID, set LEDs,
// enable/disable scanning, scancode set 2 only), so a Linux guest binds its keyboard driver and sees
// the keys. Its bytes raise IRQ 1 when the command byte enables the keyboard interrupt (bit 0).
// Replies to controller commands (0x20, 0xAA...) are read by polling and raise no interrupt.

import { loadFields, saveFields, type FieldState } from './state-fields.js';

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08;

/** Command byte: keyboard interrupt (IRQ 1) enabled. */
const CTR_KBDINT = 0x01;
/** Command byte: keyboard interface disabled (its clock held). */
const CTR_KBDDIS = 0x10;
/** Command byte: translate the keyboard's scancode set 2 into set 1 (XT) for the host. */
const CTR_XLATE = 0x40;

/** Keyboard bytes the controller holds for the guest (a PS/2 keyboard's own buffer is 16 bytes). */
export const I8042_KBD_QUEUE = 16;

// Ctrl-Alt-Del in scancode set 2 (what a PS/2 keyboard sends by default, and what Firecracker's
// i8042 queues for its SendCtrlAltDel: 0x14, 0x11, 0xE0 0x71), as make codes and break codes
// (0xF0 before the key's code). With the command byte's XLATE bit set (this model's default
// command byte 0x61 has it, and Linux's i8042 driver keeps it unless booted with i8042.direct), the
// controller translates set 2 into set 1 before the host sees it, and Linux's atkbd, bound to a
// translated port (SERIO_8042_XL), decodes set 1: make codes 0x1D (Ctrl), 0x38 (Alt), 0xE0 0x53
// (Delete), break codes with bit 7 set. So the bytes depend on XLATE at the time of the press: set 1
// when it is set, set 2 (which atkbd decodes on an untranslated port) when the guest cleared it.
// Firecracker sends only the make codes; sending the breaks as well leaves the guest's idea of the
// modifiers released, as after a real key press.
const CAD_SET2 = [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14];
const CAD_SET1 = [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d];

/**
 * Controller replies the state may hold (the model does not bound them: a guest reads each reply
 * before its next command; this only bounds what a restore accepts).
 */
export const I8042_OUT_MAX = 64;

/** The model's registers and latches, saved by name (state-fields.ts). */
const I8042_FIELDS = [
  'status',
  'cmdByte',
  'pending',
  'kbdPending',
  'kbdScanning',
  'irqLevel',
  'resetRequested',
] as const;
/** Controller commands that wait for a data byte on port 0x60 (or none). */
const PENDING_CMDS = [0, 0x60, 0xd1, 0xd2, 0xd3, 0xd4];
/** Keyboard commands that wait for an argument byte (or none). */
const PENDING_KBD = [0, 0xed, 0xf0, 0xf3];

/** An I8042's state for a snapshot (plain JSON). */
export interface I8042State {
  /** Status bits, command byte, pending commands, keyboard mode and latches, by field name. */
  fields: FieldState;
  /** Controller replies waiting for the guest, oldest first. */
  out: number[];
  /** Keyboard bytes waiting for the guest, oldest first. */
  kbd: number[];
}

export class I8042 {
  private status = STATUS_SYS;
  /** Replies to controller commands (read before keyboard bytes). */
  private out: number[] = [];
  /** Bytes from the keyboard, at most I8042_KBD_QUEUE. */
  private kbd: number[] = [];
  private cmdByte = 0x61;
  private pending = 0; // command awaiting a data byte on port 0x60
  /** Keyboard command awaiting its argument byte (0xED LEDs, 0xF0 scancode set, 0xF3 typematic). */
  private kbdPending = 0;
  /** The keyboard sends key codes (0xF5 stops it, 0xF4 and reset start it). */
  private kbdScanning = true;
  private irqLevel = false;
  /** Set when the guest asked for a CPU reset. */
  resetRequested = false;

  /**
   * @param onReset called when the guest asks for a CPU reset.
   * @param setIrq IRQ 1's level: high while the output buffer holds a keyboard byte and the command
   *   byte enables the keyboard interrupt. The line is ISA edge-triggered, so when the guest reads
   *   one byte and another follows, it is lowered and raised again (one edge per byte).
   */
  constructor(
    private readonly onReset: () => void = () => {},
    private readonly setIrq: (level: boolean) => void = () => {},
  ) {}

  /** Registers, both output queues and latches for a snapshot (plain JSON). */
  saveState(): I8042State {
    return { fields: saveFields(this, I8042_FIELDS), out: [...this.out], kbd: [...this.kbd] };
  }

  /**
   * Load a state from saveState. Everything is checked first (an Error names the first bad field)
   * and nothing changes when a check fails. The interrupt line is not driven: its level is the
   * interrupt controller's, saved and restored with it.
   */
  restoreState(s: I8042State): void {
    const what = 'i8042';
    if (typeof s !== 'object' || s === null) throw new Error(`${what}: no saved state`);
    loadFields(new I8042(), I8042_FIELDS, s.fields, what);
    const f = s.fields as Record<(typeof I8042_FIELDS)[number], number | boolean>;
    const status = f.status as number;
    if (!Number.isInteger(status) || (status & ~(STATUS_SYS | STATUS_CMD)) !== 0)
      throw new Error(
        `${what}: field status is ${status}, only bits 0x${(STATUS_SYS | STATUS_CMD).toString(16)} are kept`,
      );
    const cmdByte = f.cmdByte as number;
    if (!Number.isInteger(cmdByte) || cmdByte < 0 || cmdByte > 0xff)
      throw new Error(`${what}: field cmdByte is ${cmdByte}, expected a byte`);
    if (!PENDING_CMDS.includes(f.pending as number))
      throw new Error(`${what}: field pending is ${f.pending}, not a controller command that takes data`);
    if (!PENDING_KBD.includes(f.kbdPending as number))
      throw new Error(
        `${what}: field kbdPending is ${f.kbdPending}, not a keyboard command that takes an argument`,
      );
    const bytes = (v: unknown, name: string, max: number): number[] => {
      if (!Array.isArray(v) || v.length > max)
        throw new Error(`${what}: ${name} must be an array of at most ${max} bytes`);
      v.forEach((b, i) => {
        if (!Number.isInteger(b) || b < 0 || b > 0xff)
          throw new Error(`${what}: ${name}[${i}] is ${JSON.stringify(b)}, expected a byte`);
      });
      return [...(v as number[])];
    };
    const out = bytes(s.out, 'out', I8042_OUT_MAX);
    const kbd = bytes(s.kbd, 'kbd', I8042_KBD_QUEUE);
    loadFields(this, I8042_FIELDS, s.fields, what);
    this.out = out;
    this.kbd = kbd;
  }

  private push(v: number): void {
    this.out.push(v & 0xff);
  }

  /** A byte from the keyboard (a reply to its command or a key code). */
  private kbdPush(v: number): void {
    if (this.kbd.length < I8042_KBD_QUEUE) this.kbd.push(v & 0xff);
  }

  /** Whether the next byte the guest reads from port 0x60 is the keyboard's. */
  private kbdAtHead(): boolean {
    return this.out.length === 0 && this.kbd.length > 0;
  }

  private updateIrq(): void {
    const level = this.kbdAtHead() && (this.cmdByte & CTR_KBDINT) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  /** Whether keys pressed now reach the guest: keyboard interface enabled and keyboard scanning. */
  get keyboardEnabled(): boolean {
    return (this.cmdByte & CTR_KBDDIS) === 0 && this.kbdScanning;
  }

  /** Keyboard bytes waiting for the guest. */
  get kbdLevel(): number {
    return this.kbd.length;
  }

  /**
   * Press and release Ctrl, Alt and Delete (in scancode set 1 or 2 as the command byte's XLATE bit
   * says; see CAD_SET1). Returns false, queueing nothing, when the guest has disabled the keyboard
   * (command byte bit 4, command 0xAD, or keyboard command 0xF5) or the whole sequence does not fit.
   */
  pressCtrlAltDel(): boolean {
    if (!this.keyboardEnabled) return false;
    const seq = this.cmdByte & CTR_XLATE ? CAD_SET1 : CAD_SET2;
    if (I8042_KBD_QUEUE - this.kbd.length < seq.length) return false;
    for (const b of seq) this.kbdPush(b);
    this.updateIrq();
    return true;
  }

  in(port: number): number {
    if (port === 0x64) return this.status | (this.out.length || this.kbd.length ? STATUS_OBF : 0);
    if (port === 0x60) {
      const v = this.out.shift() ?? this.kbd.shift() ?? 0;
      // Edge-triggered line: drop it so that the next keyboard byte (if any) raises a new edge.
      if (this.irqLevel) {
        this.irqLevel = false;
        this.setIrq(false);
      }
      this.updateIrq();
      return v;
    }
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
          break;
        case 0xad: // disable the keyboard interface (sets command byte bit 4)
          this.cmdByte |= CTR_KBDDIS;
          break;
        case 0xae: // enable it
          this.cmdByte &= ~CTR_KBDDIS;
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
      this.updateIrq();
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
      } else if (c === 0xd2) this.kbdPush(v);
      else if (c === 0xd3) this.push(v);
      else if (c === 0xd4) {
        // Data for a mouse: none attached, no reply.
      } else this.keyboardCommand(v);
      this.updateIrq();
    }
  }

  /** A byte written to port 0x60 for the keyboard: a command, or the argument of the last one. */
  private keyboardCommand(v: number): void {
    // The keyboard empties its buffer when the host sends it a byte.
    this.kbd.length = 0;
    const arg = this.kbdPending;
    this.kbdPending = 0;
    if (arg === 0xf0) {
      // Scancode set: 0 asks which, 2 selects it; sets 1 and 3 are not offered (resend).
      if (v === 0) this.kbd.push(0xfa, this.cmdByte & CTR_XLATE ? 0x41 : 0x02);
      else this.kbd.push(v === 2 ? 0xfa : 0xfe);
      return;
    }
    if (arg) {
      this.kbd.push(0xfa); // LED state or typematic rate: accepted
      return;
    }
    switch (v) {
      case 0xff: // reset: ACK, then the self-test passed (BAT)
        this.kbdScanning = true;
        this.kbd.push(0xfa, 0xaa);
        break;
      case 0xf2: // identify: an MF2 keyboard (0xAB 0x83, translated by XLATE into 0xAB 0x41)
        this.kbd.push(0xfa, 0xab, this.cmdByte & CTR_XLATE ? 0x41 : 0x83);
        break;
      case 0xf4: // enable scanning
        this.kbdScanning = true;
        this.kbd.push(0xfa);
        break;
      case 0xf5: // disable scanning (and restore defaults)
        this.kbdScanning = false;
        this.kbd.push(0xfa);
        break;
      case 0xed:
      case 0xf0:
      case 0xf3:
        this.kbdPending = v;
        this.kbd.push(0xfa);
        break;
      case 0xee: // echo
        this.kbd.push(0xee);
        break;
      default: // set defaults (0xF6) and the set-3 key type commands: accepted
        this.kbd.push(0xfa);
        break;
    }
  }

  ports(): { in(port: number, size: number): number; out(port: number, size: number, value: number): void } {
    return { in: (p) => this.in(p), out: (p, _s, v) => this.outb(p, v) };
  }
}

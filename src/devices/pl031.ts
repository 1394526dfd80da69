// ARM PrimeCell real-time clock (PL031), as Linux's rtc-pl031 driver uses it.
//
// DR counts seconds: floor(host wall clock in seconds) + offset, where a write to LR sets the offset
// so that DR reads the loaded value at that moment. The counter always runs: CR.START reads 1 (it
// resets started, like QEMU's, and once started it cannot be stopped). The match interrupt: RIS is
// set when DR reaches MR (checked on register accesses, by poll(), and by a host timer armed while
// the interrupt is unmasked); MIS = RIS & IMSC drives `setIrq`; ICR clears RIS.

import type { MmioDevice } from '../memory/guest-memory.js';
import { loadFields, saveFields, type FieldState } from './state-fields.js';

// PeriphID0..3, PCellID0..3 at 0xFE0..0xFFC
const ID = [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

const PL031_FIELDS = ['offset', 'mr', 'lr', 'cr', 'imsc', 'ris', 'irqLevel', 'lastChecked'] as const;

export class Pl031 implements MmioDevice {
  /** Seconds added to the host clock. */
  private offset = 0;
  private mr = 0;
  private lr = 0;
  private cr = 1;
  private imsc = 0;
  private ris = 0;
  private irqLevel = false;
  /** Second count at which the match was last checked (a match fires when DR passes MR). */
  private lastChecked: number;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly setIrq: (level: boolean) => void = () => {},
    /** Host wall clock in milliseconds (tests replace it). */
    private readonly clockMs: () => number = Date.now,
  ) {
    this.lastChecked = this.dr();
  }

  /** Registers for a snapshot: the offset from the host's clock, so DR keeps showing real time. */
  saveState(): FieldState {
    return saveFields(this, PL031_FIELDS);
  }

  restoreState(s: FieldState): void {
    loadFields(this, PL031_FIELDS, s, 'pl031');
    this.update();
  }

  /** The current DR value (uint32). */
  dr(): number {
    return (Math.floor(this.clockMs() / 1000) + this.offset) >>> 0;
  }

  /** Check for a match and update the interrupt line (the machine may call this periodically). */
  poll(): void {
    const now = this.dr();
    const passed = (now - this.lastChecked) >>> 0;
    // DR went through MR since the last check: MR in (last, now] (uint32 arithmetic).
    const d = (this.mr - this.lastChecked) >>> 0;
    if (passed < 0x8000_0000 && d >= 1 && d <= passed) this.ris = 1;
    this.lastChecked = now;
    this.update();
  }

  private update(): void {
    const level = (this.ris & this.imsc) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
    this.armTimer();
  }

  /** While the match interrupt is unmasked and pending in the future, wake up when it is due. */
  private armTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.imsc || this.ris) return;
    const now = this.dr();
    const secs = (this.mr - now) >>> 0;
    if (secs === 0 || secs > 7 * 24 * 3600) return; // far matches are checked by poll() and accesses
    const ms = secs * 1000 - (this.clockMs() % 1000) + 1;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poll();
    }, ms);
    this.timer.unref?.();
  }

  /** Stop the host timer (when the machine shuts down). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  read(offset: number, size: number): number {
    if (size !== 4 || (offset & 3) !== 0 || offset < 0 || offset >= 0x1000) return 0;
    this.poll();
    switch (offset) {
      case 0x000:
        return this.dr();
      case 0x004:
        return this.mr >>> 0;
      case 0x008: // LR: the last value loaded
        return this.lr;
      case 0x00c:
        return this.cr;
      case 0x010:
        return this.imsc;
      case 0x014:
        return this.ris;
      case 0x018:
        return this.ris & this.imsc;
    }
    if (offset >= 0xfe0) return ID[(offset - 0xfe0) >>> 2];
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4 || (offset & 3) !== 0 || offset < 0 || offset >= 0x1000) return;
    this.poll();
    const v = value >>> 0;
    switch (offset) {
      case 0x004:
        this.mr = v;
        if (this.dr() === v) this.ris = 1;
        break;
      case 0x008:
        this.lr = v;
        this.offset = v - Math.floor(this.clockMs() / 1000);
        this.lastChecked = this.dr();
        break;
      case 0x00c: // START: once set, writes have no effect until reset (TRM); it resets to 1 here
        this.cr |= v & 1;
        break;
      case 0x010:
        this.imsc = v & 1;
        break;
      case 0x01c:
        if (v & 1) this.ris = 0;
        break;
      default:
        return;
    }
    this.update();
  }
}

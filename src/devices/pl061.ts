// ARM PrimeCell PL061 GPIO controller (DDI 0190), as QEMU's virt board uses it: input line 3 is the
// power key (a gpio-keys node maps it to KEY_POWER), pulsed by the VMM on a shutdown request.

import type { MmioDevice } from '../memory/guest-memory.js';
import { loadFields, saveFields, type FieldState } from './state-fields.js';

const ID = [0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]; // PeriphID0-3, PCellID0-3

const PL061_FIELDS = ['inputs', 'outputs', 'dir', 'is', 'ibe', 'iev', 'ie', 'ris', 'afsel'] as const;

export class Pl061 implements MmioDevice {
  /** Levels of the 8 lines as driven from outside (inputs). */
  private inputs = 0;
  private outputs = 0;
  private dir = 0; // 1 = output
  private is = 0; // interrupt sense: 1 = level
  private ibe = 0; // both edges
  private iev = 0; // 1 = rising edge / high level
  private ie = 0; // interrupt enable (mask)
  private ris = 0; // raw interrupt status
  private afsel = 0;

  constructor(private readonly setIrq: (level: boolean) => void) {}

  saveState(): FieldState {
    return saveFields(this, PL061_FIELDS);
  }

  /** Load saved registers (the interrupt line's level is the GIC's, saved with it). */
  restoreState(s: FieldState): void {
    loadFields(this, PL061_FIELDS, s, 'pl061');
  }

  private get levels(): number {
    return ((this.outputs & this.dir) | (this.inputs & ~this.dir)) & 0xff;
  }

  private update(): void {
    // Level-sensitive lines follow the input; edge-sensitive ones latch in ris.
    const lvl = this.levels;
    const levelHits = this.is & ~(lvl ^ this.iev) & 0xff;
    this.ris = (this.ris & ~this.is) | levelHits;
    this.setIrq((this.ris & this.ie) !== 0);
  }

  /** Drive input line `line` (0-7) from outside. */
  setInput(line: number, high: boolean): void {
    const bit = 1 << line;
    const old = this.inputs;
    this.inputs = high ? old | bit : old & ~bit;
    if (old !== this.inputs && !(this.dir & bit) && !(this.is & bit)) {
      const rising = high;
      if (this.ibe & bit || (rising ? this.iev & bit : !(this.iev & bit))) this.ris |= bit;
    }
    this.update();
  }

  read(offset: number, size: number): number {
    if (size !== 4 && size !== 1) return 0;
    if (offset < 0x400) return this.levels & ((offset >> 2) & 0xff); // address bits [9:2] mask the data
    switch (offset) {
      case 0x400:
        return this.dir;
      case 0x404:
        return this.is;
      case 0x408:
        return this.ibe;
      case 0x40c:
        return this.iev;
      case 0x410:
        return this.ie;
      case 0x414:
        return this.ris;
      case 0x418:
        return this.ris & this.ie;
      case 0x420:
        return this.afsel;
    }
    if (offset >= 0xfe0 && offset < 0x1000) return ID[(offset - 0xfe0) >> 2];
    return 0;
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4 && size !== 1) return;
    value &= 0xff;
    if (offset < 0x400) {
      const mask = (offset >> 2) & 0xff;
      this.outputs = (this.outputs & ~mask) | (value & mask);
      this.update();
      return;
    }
    switch (offset) {
      case 0x400:
        this.dir = value;
        break;
      case 0x404:
        this.is = value;
        break;
      case 0x408:
        this.ibe = value;
        break;
      case 0x40c:
        this.iev = value;
        break;
      case 0x410:
        this.ie = value;
        break;
      case 0x41c:
        this.ris &= ~value;
        break;
      case 0x420:
        this.afsel = value;
        break;
      default:
        return;
    }
    this.update();
  }
}

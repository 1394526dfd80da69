// Stage-1 address translation (VMSAv8-64, 4 KiB granule) with a software TLB, and the CPU's
// virtual-memory access functions used by load/store handlers.
//
// PLACEHOLDER: identity mapping only (MMU off). Replaced by the full implementation.

import type { Arm64Cpu } from './cpu.js';

// Access flags for the read and write functions.
export const ACC_UNPRIV = 1; // LDTR/STTR: check permissions as EL0
export const ACC_ALIGN = 2; // fault unless naturally aligned (exclusives, acquire/release)

export class Mmu {
  /** High half of the last read64(). */
  hi = 0;

  constructor(readonly cpu: Arm64Cpu) {}

  private pa(lo: number, hi: number): number {
    return (hi >>> 0) * 4294967296 + (lo >>> 0);
  }

  translateFetch(lo: number, hi: number): number {
    return this.pa(lo, hi);
  }

  read8(lo: number, hi: number, _flags = 0): number {
    return this.cpu.mem.readPhys(this.pa(lo, hi), 1);
  }
  read16(lo: number, hi: number, _flags = 0): number {
    return this.cpu.mem.readPhys(this.pa(lo, hi), 2);
  }
  read32(lo: number, hi: number, _flags = 0): number {
    return this.cpu.mem.readPhys(this.pa(lo, hi), 4);
  }
  read64(lo: number, hi: number, _flags = 0): number {
    const pa = this.pa(lo, hi);
    this.hi = this.cpu.mem.readPhys(pa + 4, 4);
    return this.cpu.mem.readPhys(pa, 4);
  }
  write8(lo: number, hi: number, v: number, _flags = 0): void {
    this.cpu.mem.writePhys(this.pa(lo, hi), 1, v);
  }
  write16(lo: number, hi: number, v: number, _flags = 0): void {
    this.cpu.mem.writePhys(this.pa(lo, hi), 2, v);
  }
  write32(lo: number, hi: number, v: number, _flags = 0): void {
    this.cpu.mem.writePhys(this.pa(lo, hi), 4, v);
  }
  write64(lo: number, hi: number, vlo: number, vhi: number, _flags = 0): void {
    const pa = this.pa(lo, hi);
    this.cpu.mem.writePhys(pa, 4, vlo);
    this.cpu.mem.writePhys(pa + 4, 4, vhi);
  }

  /** Translation registers (SCTLR/TCR/TTBRn/MAIR) changed. */
  onRegsChanged(): void {}
  flushAll(): void {}
}

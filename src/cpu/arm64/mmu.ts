// Stage-1 address translation (VMSAv8-64, EL1&0 regime, 4 KiB granule) with a software TLB, and the
// CPU's virtual-memory access functions used by load/store handlers.
//
// Software TLB: direct mapped, TLB_SIZE entries per "MMU index" (0 = permissions as seen from EL0,
// 1 = as seen from EL1), indexed by VA bits [12+TLB_BITS-1:12]. Every entry holds a 4 KiB page of a
// translation (blocks are split into pages as they are touched): the VA page (low half, high half),
// the ASID it was walked under (-1 for global entries), the physical page, the permissions of that
// MMU index, and for RAM pages the page's offset into guest RAM. Three "fast tags" per entry (read,
// write, execute) hold the VA page only when that access is permitted and the page is RAM. The read
// and write fast tags also hold it only while the entry's ASID is the current one (or the entry is
// global): an ASID change recomputes them (refreshDataTags). So the hot path of a data access, here
// and in translated code, is: index, two tag compares, one typed-array load; a fetch (xTag) also
// compares the entry's ASID.
//
// No walk cache: a walk reads every level from guest memory. TLB maintenance therefore only drops
// leaf entries (flushVa's lastLevel makes no difference).
//
// Memory attributes are not modelled for accesses (MAIR only shows up in AT's PAR_EL1). Unaligned
// accesses to RAM work unless SCTLR_EL1.A is set (also with the MMU off, where the architecture would
// treat data as Device memory); an unaligned access to an MMIO region raises an alignment fault
// (MMIO is Device memory). SIMD&FP Q accesses are made as two 8-byte accesses (alignment checked
// per 8 bytes with SCTLR_EL1.A = 1).
//
// Watchpoints (debug.ts): while one is set (setWatchArmed), the read/write fast tags stay invalid, so
// every data access takes a slow path, which calls cpu.debug.watch() once translation succeeded.

import type { Arm64Cpu } from './cpu.js';
import { SCTLR_OFF, TLB_BITS, TLB_SIZE, tlbOff, type TlbArray } from './wasm/layout.js';

// Access flags for the read and write functions.
export const ACC_UNPRIV = 1; // LDTR/STTR: check permissions as EL0
export const ACC_ALIGN = 2; // fault unless naturally aligned (exclusives, acquire/release)

// Access kinds (also the bit number of the permission in an entry's perm byte).
const A_READ = 0;
const A_WRITE = 1;
const A_EXEC = 2;

// Fault status codes (DFSC/IFSC) without the level.
export const FSC_ADDR_SIZE = 0x00;
export const FSC_TRANSLATION = 0x04;
export const FSC_ACCESS_FLAG = 0x08;
export const FSC_PERMISSION = 0x0c;
export const FSC_EXT_ABORT = 0x10;
export const FSC_EXT_ABORT_WALK = 0x14;
export const FSC_ALIGNMENT = 0x21;

// Exception classes (kept local: cpu.ts imports this module).
const EC_IABT_LOWER = 0x20;
const EC_IABT_CUR = 0x21;
const EC_DABT_LOWER = 0x24;
const EC_DABT_CUR = 0x25;

const TLB_MASK = TLB_SIZE - 1;
/**
 * A tag value no page-aligned address equals, nor a page address with alignment bits 0-2 kept (the
 * wasm translator compares `address & (PAGE_MASK | (size - 1))` with a tag: one compare for both).
 */
const INVALID = 0x800;
const PAGE_MASK = -4096; // 0xfffff000 as int32
const TWO32 = 4294967296;
/** Implemented physical address size (ID_AA64MMFR0_EL1.PARange = 40 bits). */
const PA_BITS_MAX = 40;
const MAX_BLOCK_REGIONS = 32;

const IPS_BITS = [32, 36, 40, 42, 44, 48, 52, 52];

/** 2^n for n = 0..64 (`2 ** n` with a variable n is a call to pow in V8: 1.1-1.5% of a boot in table walks). */
const POW2: readonly number[] = Array.from({ length: 65 }, (_, n) => 2 ** n);

export class Mmu {
  /** High half of the last read64(). */
  hi = 0;
  /** Low 32 bits of SCTLR_EL1 as of the last onRegsChanged() (load/store handlers read SA/SA0 here). */
  sctlr = 0;
  /** The current ASID (from TTBR0 or TTBR1 per TCR.A1, 8 or 16 bits per TCR.AS). */
  asid = 0;
  /** A guest or host watchpoint is set: no read/write fast tags, slow paths call cpu.debug.watch(). */
  private watchArmed = false;

  // ---- software TLB (see the header comment) ----
  // In the vCPU's state block, where translated code reads them (wasm/layout.ts).
  private readonly tagLo: Int32Array;
  private readonly tagHi: Int32Array;
  private readonly tAsid: Int32Array;
  private readonly rTag: Int32Array;
  /** The read and write fast tags whatever the current ASID (rTag/wTag are these filtered by it). */
  private readonly rAny = new Int32Array(2 * TLB_SIZE).fill(INVALID);
  private readonly wAny = new Int32Array(2 * TLB_SIZE).fill(INVALID);
  private readonly wTag: Int32Array;
  private readonly xTag: Int32Array;
  private readonly perm = new Uint8Array(2 * TLB_SIZE);
  private readonly paPage = new Float64Array(2 * TLB_SIZE);
  private readonly ramOff: Int32Array;
  private readonly bShift = new Uint8Array(2 * TLB_SIZE);
  // Block regions (2 MiB / 1 GiB) currently cached, so that flushVa can find every page of a block.
  private readonly blkLo = new Int32Array(MAX_BLOCK_REGIONS);
  private readonly blkHi = new Int32Array(MAX_BLOCK_REGIONS);
  private readonly blkShift = new Uint8Array(MAX_BLOCK_REGIONS);
  private blkCount = 0;
  private blkOverflow = false;

  // guest RAM views
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  private readonly dv: DataView;
  private readonly codePages: Uint8Array;
  private readonly ramBase: number;
  private readonly ramSize: number;

  // ---- translation regime, cached by onRegsChanged() ----
  private mmuOn = false;
  private wxn = false;
  private paBits = PA_BITS_MAX;
  private tbi0 = false;
  private tbi1 = false;
  private epd0 = false;
  private epd1 = false;
  private tg0ok = true;
  private tg1ok = true;
  private txsz0 = 16;
  private txsz1 = 16;
  private ttbr0 = 0; // table base PA
  private ttbr1 = 0;
  private cfgKey = '';

  // ---- result of the last walk() ----
  private wPa = 0; // physical address of the 4 KiB page
  private wLevel = 0;
  private wPerm0 = 0;
  private wPerm1 = 0;
  private wAsid = -1;
  private wAttrIdx = 0;
  private wSh = 0;
  private wShift = 12; // log2 of the block/page size

  constructor(readonly cpu: Arm64Cpu) {
    const mem = cpu.mem;
    const view = (a: TlbArray): Int32Array =>
      new Int32Array(mem.stateBuffer, cpu.st + tlbOff(a), 2 * TLB_SIZE);
    this.tagLo = view('tagLo').fill(INVALID);
    this.tagHi = view('tagHi').fill(0);
    this.tAsid = view('tAsid').fill(0);
    this.rTag = view('rTag').fill(INVALID);
    this.wTag = view('wTag').fill(INVALID);
    this.xTag = view('xTag').fill(INVALID);
    this.ramOff = view('ramOff').fill(0);
    this.u8 = mem.u8;
    this.u16 = mem.u16;
    this.u32 = mem.u32;
    this.dv = mem.dv;
    this.codePages = mem.codePages;
    this.ramBase = mem.ramBase;
    this.ramSize = mem.ramSize;
    // The high halves of 64-bit loads and the physical addresses of walks pass 2^30: doubles from
    // the start (see the Arm64Cpu constructor).
    this.hi = this.wPa = TWO32 - 1;
    this.hi = this.wPa = 0;
    this.loadRegs();
  }

  // =====================================================================================
  // Hot paths
  // =====================================================================================

  read8(lo: number, hi: number, flags = 0): number {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (this.rTag[i] === (lo & PAGE_MASK) && this.tagHi[i] === (hi | 0) && (flags & ACC_UNPRIV) === 0) {
      return this.u8[(this.ramOff[i] + (lo & 0xfff)) >>> 0];
    }
    return this.readSlow(lo, hi, 1, flags);
  }

  read16(lo: number, hi: number, flags = 0): number {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (
      this.rTag[i] === (lo & PAGE_MASK) &&
      this.tagHi[i] === (hi | 0) &&
      (lo & 1) === 0 &&
      (flags & ACC_UNPRIV) === 0
    ) {
      return this.u16[(this.ramOff[i] + (lo & 0xfff)) >>> 1];
    }
    return this.readSlow(lo, hi, 2, flags);
  }

  read32(lo: number, hi: number, flags = 0): number {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (
      this.rTag[i] === (lo & PAGE_MASK) &&
      this.tagHi[i] === (hi | 0) &&
      (lo & 3) === 0 &&
      (flags & ACC_UNPRIV) === 0
    ) {
      return this.u32[(this.ramOff[i] + (lo & 0xfff)) >>> 2];
    }
    return this.readSlow(lo, hi, 4, flags);
  }

  /** Returns the low half; the high half is left in `this.hi`. */
  read64(lo: number, hi: number, flags = 0): number {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (
      this.rTag[i] === (lo & PAGE_MASK) &&
      this.tagHi[i] === (hi | 0) &&
      (lo & 7) === 0 &&
      (flags & ACC_UNPRIV) === 0
    ) {
      const w = (this.ramOff[i] + (lo & 0xfff)) >>> 2;
      this.hi = this.u32[w + 1];
      return this.u32[w];
    }
    return this.readSlow(lo, hi, 8, flags);
  }

  write8(lo: number, hi: number, v: number, flags = 0): void {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (this.wTag[i] === (lo & PAGE_MASK) && this.tagHi[i] === (hi | 0) && (flags & ACC_UNPRIV) === 0) {
      const off = (this.ramOff[i] + (lo & 0xfff)) >>> 0;
      this.u8[off] = v;
      if (this.codePages[off >>> 12] !== 0) this.cpu.mem.onCodeWrite(off >>> 12);
      return;
    }
    this.writeSlow(lo, hi, 1, v, 0, flags);
  }

  write16(lo: number, hi: number, v: number, flags = 0): void {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (
      this.wTag[i] === (lo & PAGE_MASK) &&
      this.tagHi[i] === (hi | 0) &&
      (lo & 1) === 0 &&
      (flags & ACC_UNPRIV) === 0
    ) {
      const off = (this.ramOff[i] + (lo & 0xfff)) >>> 0;
      this.u16[off >>> 1] = v;
      if (this.codePages[off >>> 12] !== 0) this.cpu.mem.onCodeWrite(off >>> 12);
      return;
    }
    this.writeSlow(lo, hi, 2, v, 0, flags);
  }

  write32(lo: number, hi: number, v: number, flags = 0): void {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (
      this.wTag[i] === (lo & PAGE_MASK) &&
      this.tagHi[i] === (hi | 0) &&
      (lo & 3) === 0 &&
      (flags & ACC_UNPRIV) === 0
    ) {
      const off = (this.ramOff[i] + (lo & 0xfff)) >>> 0;
      this.u32[off >>> 2] = v;
      if (this.codePages[off >>> 12] !== 0) this.cpu.mem.onCodeWrite(off >>> 12);
      return;
    }
    this.writeSlow(lo, hi, 4, v, 0, flags);
  }

  write64(lo: number, hi: number, vlo: number, vhi: number, flags = 0): void {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (
      this.wTag[i] === (lo & PAGE_MASK) &&
      this.tagHi[i] === (hi | 0) &&
      (lo & 7) === 0 &&
      (flags & ACC_UNPRIV) === 0
    ) {
      const off = (this.ramOff[i] + (lo & 0xfff)) >>> 0;
      const w = off >>> 2;
      this.u32[w] = vlo;
      this.u32[w + 1] = vhi;
      if (this.codePages[off >>> 12] !== 0) this.cpu.mem.onCodeWrite(off >>> 12);
      return;
    }
    this.writeSlow(lo, hi, 8, vlo, vhi, flags);
  }

  /** Physical address of an instruction fetch from the page of (lo, hi); raises an instruction abort. */
  translateFetch(lo: number, hi: number): number {
    const i = (this.cpu.el << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (this.xTag[i] === (lo & PAGE_MASK) && this.tagHi[i] === (hi | 0)) {
      const a = this.tAsid[i];
      if (a === -1 || a === this.asid) return this.paPage[i] + (lo & 0xfff);
    }
    return this.translate(lo, hi, A_EXEC, this.cpu.el, 0);
  }

  // =====================================================================================
  // Slow paths
  // =====================================================================================

  /**
   * Physical address of a data access of `size` bytes at (lo, hi) (only the first byte's page is
   * translated). Checks natural alignment when `flags` has ACC_ALIGN. Raises data aborts.
   */
  translateData(lo: number, hi: number, write: boolean, size: number, flags = 0): number {
    if ((flags & ACC_ALIGN) !== 0 && (lo & (size - 1)) !== 0) {
      this.abort(FSC_ALIGNMENT, lo, hi, write ? A_WRITE : A_READ, false);
    }
    const pa = this.translate(
      lo,
      hi,
      write ? A_WRITE : A_READ,
      (flags & ACC_UNPRIV) !== 0 ? 0 : this.cpu.el,
      0,
    );
    if (this.watchArmed) this.cpu.debug.watch(lo, hi, size, write, (flags & ACC_UNPRIV) !== 0);
    return pa;
  }

  /**
   * Read `size` (1, 2, 4, 8) bytes at physical address `pa` (RAM or MMIO); (lo, hi) is the virtual
   * address for the fault report (synchronous external abort when nothing is there). 8-byte
   * reads return the low half and leave the high half in `this.hi`.
   */
  readPa(pa: number, size: number, lo: number, hi: number): number {
    const off = pa - this.ramBase;
    if (off >= 0 && off + size <= this.ramSize) {
      switch (size) {
        case 1:
          return this.u8[off];
        case 2:
          return this.dv.getUint16(off, true);
        case 4:
          return this.dv.getUint32(off, true);
        default:
          this.hi = this.dv.getUint32(off + 4, true);
          return this.dv.getUint32(off, true);
      }
    }
    const r = this.cpu.mem.findMmio(pa);
    if (r === undefined || pa + size > r.base + r.size) this.abort(FSC_EXT_ABORT, lo, hi, A_READ, false);
    if ((pa & (size - 1)) !== 0) this.abort(FSC_ALIGNMENT, lo, hi, A_READ, false);
    const o = pa - r.base;
    if (size === 8) {
      const l = r.dev.read(o, 4) >>> 0;
      this.hi = r.dev.read(o + 4, 4) >>> 0;
      return l;
    }
    return r.dev.read(o, size) >>> 0;
  }

  /** Write counterpart of readPa (vhi: high half of an 8-byte write). */
  writePa(pa: number, size: number, v: number, vhi: number, lo: number, hi: number): void {
    const off = pa - this.ramBase;
    if (off >= 0 && off + size <= this.ramSize) {
      switch (size) {
        case 1:
          this.u8[off] = v;
          break;
        case 2:
          this.dv.setUint16(off, v, true);
          break;
        case 4:
          this.dv.setUint32(off, v >>> 0, true);
          break;
        default:
          this.dv.setUint32(off, v >>> 0, true);
          this.dv.setUint32(off + 4, vhi >>> 0, true);
      }
      const p = off >>> 12;
      if (this.codePages[p] !== 0) this.cpu.mem.onCodeWrite(p);
      const q = (off + size - 1) >>> 12;
      if (q !== p && this.codePages[q] !== 0) this.cpu.mem.onCodeWrite(q);
      return;
    }
    const r = this.cpu.mem.findMmio(pa);
    if (r === undefined || pa + size > r.base + r.size) this.abort(FSC_EXT_ABORT, lo, hi, A_WRITE, false);
    if ((pa & (size - 1)) !== 0) this.abort(FSC_ALIGNMENT, lo, hi, A_WRITE, false);
    const o = pa - r.base;
    if (size === 8) {
      r.dev.write(o, 4, v >>> 0);
      r.dev.write(o + 4, 4, vhi >>> 0);
    } else {
      r.dev.write(o, size, size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1));
    }
  }

  private readSlow(lo: number, hi: number, size: number, flags: number): number {
    if ((lo & (size - 1)) !== 0 && ((flags & ACC_ALIGN) !== 0 || (this.sctlr & 2) !== 0)) {
      this.abort(FSC_ALIGNMENT, lo, hi, A_READ, false);
    }
    const mi = (flags & ACC_UNPRIV) !== 0 ? 0 : this.cpu.el;
    const pa = this.translate(lo, hi, A_READ, mi, 0);
    if (this.watchArmed) this.cpu.debug.watch(lo, hi, size, false, (flags & ACC_UNPRIV) !== 0);
    const n1 = 4096 - (lo & 0xfff);
    if (n1 >= size) return this.readPa(pa, size, lo, hi);
    // The access crosses into the next page: translate it too, then read byte by byte.
    const lo2 = ((lo & PAGE_MASK) + 4096) >>> 0;
    const hi2 = lo2 === 0 ? (hi + 1) | 0 : hi;
    const pa2 = this.translate(lo2, hi2, A_READ, mi, 0);
    let vlo = 0;
    let vhi = 0;
    for (let k = 0; k < size; k++) {
      const b = k < n1 ? this.readPa(pa + k, 1, lo, hi) : this.readPa(pa2 + (k - n1), 1, lo2, hi2);
      if (k < 4) vlo |= b << (8 * k);
      else vhi |= b << (8 * (k - 4));
    }
    this.hi = vhi >>> 0;
    return vlo >>> 0;
  }

  private writeSlow(lo: number, hi: number, size: number, v: number, vhi: number, flags: number): void {
    if ((lo & (size - 1)) !== 0 && ((flags & ACC_ALIGN) !== 0 || (this.sctlr & 2) !== 0)) {
      this.abort(FSC_ALIGNMENT, lo, hi, A_WRITE, false);
    }
    const mi = (flags & ACC_UNPRIV) !== 0 ? 0 : this.cpu.el;
    const pa = this.translate(lo, hi, A_WRITE, mi, 0);
    if (this.watchArmed) this.cpu.debug.watch(lo, hi, size, true, (flags & ACC_UNPRIV) !== 0);
    const n1 = 4096 - (lo & 0xfff);
    if (n1 >= size) {
      this.writePa(pa, size, v, vhi, lo, hi);
      return;
    }
    const lo2 = ((lo & PAGE_MASK) + 4096) >>> 0;
    const hi2 = lo2 === 0 ? (hi + 1) | 0 : hi;
    const pa2 = this.translate(lo2, hi2, A_WRITE, mi, 0);
    for (let k = 0; k < size; k++) {
      const b = (k < 4 ? v >>> (8 * k) : vhi >>> (8 * (k - 4))) & 0xff;
      if (k < n1) this.writePa(pa + k, 1, b, 0, lo, hi);
      else this.writePa(pa2 + (k - n1), 1, b, 0, lo2, hi2);
    }
  }

  /**
   * Translate (lo, hi) for an access of kind `acc` with the permissions of MMU index `mi` (0: EL0,
   * 1: EL1), through the TLB or a table walk; raises the abort on a fault. `cm`: cache maintenance.
   */
  private translate(lo: number, hi: number, acc: number, mi: number, cm: number): number {
    const i = (mi << TLB_BITS) | ((lo >>> 12) & TLB_MASK);
    if (this.tagLo[i] === (lo & PAGE_MASK) && this.tagHi[i] === (hi | 0)) {
      const a = this.tAsid[i];
      if ((a === -1 || a === this.asid) && (this.perm[i] & (1 << acc)) !== 0) {
        return this.paPage[i] + (lo & 0xfff);
      }
    }
    const f = this.walk(lo, hi);
    if (f >= 0) this.abort(f, lo, hi, acc, cm);
    const p = mi === 0 ? this.wPerm0 : this.wPerm1;
    if ((p & (1 << acc)) === 0) this.abort(FSC_PERMISSION + this.wLevel, lo, hi, acc, cm);
    this.fill(lo, hi);
    return this.wPa + (lo & 0xfff);
  }

  /** Enter the data/instruction abort for a fault on (lo, hi). */
  private abort(fsc: number, lo: number, hi: number, acc: number, cm: number | boolean): never {
    const cpu: Arm64Cpu = this.cpu;
    const lower = cpu.el === 0;
    let farLo = lo >>> 0;
    let farHi = hi >>> 0;
    if (acc === A_EXEC) {
      // translateFetch() is given the page address: report the PC when it lies in that page.
      if ((cpu.pcLo & PAGE_MASK) >>> 0 === farLo && cpu.pcHi >>> 0 === farHi) farLo = cpu.pcLo >>> 0;
      cpu.raise(lower ? EC_IABT_LOWER : EC_IABT_CUR, fsc, (BigInt(farHi) << 32n) | BigInt(farLo));
    }
    let iss = fsc;
    if (acc === A_WRITE || cm) iss |= 1 << 6; // WnR (set for cache maintenance too)
    if (cm) iss |= 1 << 8;
    farHi = hi >>> 0;
    cpu.raise(lower ? EC_DABT_LOWER : EC_DABT_CUR, iss, (BigInt(farHi) << 32n) | BigInt(farLo));
  }

  // =====================================================================================
  // Table walk
  // =====================================================================================

  /**
   * Walk the translation tables for (lo, hi). Returns -1 on success (results in the w* fields) or the
   * fault status code (translation, address size, access flag, external abort on the walk).
   */
  private walk(lo: number, hi: number): number {
    const half = (hi >>> 23) & 1; // VA bit 55 selects TTBR0/TTBR1
    const tbi = half === 0 ? this.tbi0 : this.tbi1;
    if (!this.mmuOn) {
      // Flat mapping: PA = VA, which must fit in the implemented PA size (top byte ignored with TBI).
      const topMask = tbi ? 0x00ffffff : -1;
      if ((hi & topMask & ~((1 << (PA_BITS_MAX - 32)) - 1)) !== 0) return FSC_ADDR_SIZE;
      this.wPa = (hi & ((1 << (PA_BITS_MAX - 32)) - 1)) * TWO32 + ((lo & PAGE_MASK) >>> 0);
      this.wLevel = 0;
      this.wPerm0 = 7;
      this.wPerm1 = 7;
      this.wAsid = -1;
      this.wAttrIdx = -1;
      this.wSh = 2;
      this.wShift = 12;
      return -1;
    }
    const txsz = half === 0 ? this.txsz0 : this.txsz1;
    // Bits [top:64-TxSZ] must all equal bit 55.
    const loMask = txsz >= 33 ? -1 << (64 - txsz) : 0;
    const hiMask = (tbi ? 0x00ffffff : -1) & (-1 << (32 - txsz > 0 ? 32 - txsz : 0));
    if ((lo & loMask) !== (half ? loMask : 0) || (hi & hiMask) !== (half ? hiMask : 0))
      return FSC_TRANSLATION;
    if (half === 0 ? this.epd0 || !this.tg0ok : this.epd1 || !this.tg1ok) return FSC_TRANSLATION;
    const vaBits = 64 - txsz;
    let level = 4 - Math.ceil((vaBits - 12) / 9);
    let table = half === 0 ? this.ttbr0 : this.ttbr1;
    // VA bits [47:0] as a double (exact); for TTBR1 the bits above vaBits are ones, masked per level.
    const va = (hi & 0xffff) * TWO32 + (lo >>> 0);
    let shift = 12 + 9 * (3 - level);
    const firstBits = vaBits - shift;
    table -= table % (8 * POW2[firstBits]); // BADDR bits below the table size are RES0
    if (table >= POW2[this.paBits]) {
      this.wLevel = 0;
      return FSC_ADDR_SIZE;
    }
    let idxMask = (1 << firstBits) - 1;
    let apTable = 0; // bit 0: no EL0 access, bit 1: read-only
    let uxnTable = 0;
    let pxnTable = 0;
    const paHiLimit = this.paBits - 32; // descriptor OA bits [47:paBits] must be zero
    for (;;) {
      const idx = Math.floor(va / POW2[shift]) & idxMask;
      const dpa = table + idx * 8;
      const off = dpa - this.ramBase;
      if (off < 0 || off + 8 > this.ramSize) {
        this.wLevel = level;
        return FSC_EXT_ABORT_WALK + level;
      }
      const dlo = this.u32[off >>> 2];
      const dhi = this.u32[(off >>> 2) + 1];
      if ((dlo & 1) === 0) return FSC_TRANSLATION + level;
      const oaHi = dhi & 0xffff;
      if ((dlo & 2) !== 0 && level < 3) {
        // table descriptor
        if (oaHi >>> paHiLimit !== 0) return FSC_ADDR_SIZE + level;
        apTable |= (dhi >>> 29) & 3;
        uxnTable |= (dhi >>> 28) & 1;
        pxnTable |= (dhi >>> 27) & 1;
        table = oaHi * TWO32 + ((dlo & PAGE_MASK) >>> 0);
        level++;
        shift -= 9;
        idxMask = 511;
        continue;
      }
      // block (level 1/2) or page (level 3); a block at level 0 or "01" at level 3 is invalid
      if ((dlo & 2) === 0 && (level === 0 || level === 3)) return FSC_TRANSLATION + level;
      if (oaHi >>> paHiLimit !== 0) return FSC_ADDR_SIZE + level;
      if ((dlo & 0x400) === 0) return FSC_ACCESS_FLAG + level;
      const oa = oaHi * TWO32 + ((dlo & PAGE_MASK) >>> 0);
      const size = POW2[shift];
      this.wPa = oa - (oa % size) + ((va % size) - (va % 4096));
      this.wLevel = level;
      this.wShift = shift;
      this.wAsid = (dlo & 0x800) !== 0 ? this.asid : -1;
      this.wAttrIdx = (dlo >>> 2) & 7;
      this.wSh = (dlo >>> 8) & 3;
      // permissions (AArch64 EL1&0 regime, hierarchical APTable/XNTable applied)
      const ap1 = (dlo >>> 6) & 1 & ~apTable & 1;
      const ap2 = ((dlo >>> 7) & 1) | ((apTable >>> 1) & 1);
      const uxn = ((dhi >>> 22) & 1) | uxnTable;
      const pxn = ((dhi >>> 21) & 1) | pxnTable;
      const userW = ap1 & (ap2 ^ 1);
      const privW = ap2 ^ 1;
      const wxn = this.wxn ? 1 : 0;
      const userX = (uxn | (userW & wxn)) ^ 1;
      const privX = (pxn | userW | (privW & wxn)) ^ 1;
      this.wPerm0 = ap1 | (userW << 1) | (userX << 2);
      this.wPerm1 = 1 | (privW << 1) | (privX << 2);
      return -1;
    }
  }

  /** Enter the last walk's result for the page of (lo, hi) into both MMU indexes. */
  private fill(lo: number, hi: number): void {
    const pageLo = lo & PAGE_MASK;
    const pa = this.wPa;
    const off = pa - this.ramBase;
    const ram = off >= 0 && off + 4096 <= this.ramSize;
    const slot = (lo >>> 12) & TLB_MASK;
    for (let mi = 0; mi < 2; mi++) {
      const i = (mi << TLB_BITS) | slot;
      const p = mi === 0 ? this.wPerm0 : this.wPerm1;
      this.tagLo[i] = pageLo;
      this.tagHi[i] = hi | 0;
      this.tAsid[i] = this.wAsid;
      this.perm[i] = p;
      this.paPage[i] = pa;
      this.ramOff[i] = ram ? off | 0 : 0;
      this.bShift[i] = this.wShift;
      // (walked under the current ASID or global: the filtered tags are the same)
      this.rTag[i] = this.rAny[i] = ram && (p & 1) !== 0 && !this.watchArmed ? pageLo : INVALID;
      this.wTag[i] = this.wAny[i] = ram && (p & 2) !== 0 && !this.watchArmed ? pageLo : INVALID;
      this.xTag[i] = ram && (p & 4) !== 0 ? pageLo : INVALID;
    }
    if (this.wShift > 12 && !this.blkOverflow) {
      const s = this.wShift;
      const bl = s >= 32 ? 0 : lo & (-1 << s);
      for (let k = 0; k < this.blkCount; k++) {
        if (this.blkShift[k] === s && this.blkLo[k] === bl && this.blkHi[k] === (hi | 0)) return;
      }
      if (this.blkCount === MAX_BLOCK_REGIONS) {
        this.blkOverflow = true;
        return;
      }
      this.blkLo[this.blkCount] = bl;
      this.blkHi[this.blkCount] = hi | 0;
      this.blkShift[this.blkCount] = s;
      this.blkCount++;
    }
  }

  private invalidateEntry(i: number): void {
    this.tagLo[i] = INVALID;
    this.rTag[i] = this.rAny[i] = INVALID;
    this.wTag[i] = this.wAny[i] = INVALID;
    this.xTag[i] = INVALID;
  }

  /** The ASID changed: the read/write fast tags of entries walked under another ASID go invalid. */
  private refreshDataTags(): void {
    const asid = this.asid;
    const { tAsid, rTag, wTag, rAny, wAny } = this;
    for (let i = 0; i < tAsid.length; i++) {
      const a = tAsid[i];
      const ok = a === -1 || a === asid;
      rTag[i] = ok ? rAny[i] : INVALID;
      wTag[i] = ok ? wAny[i] : INVALID;
    }
  }

  // =====================================================================================
  // Maintenance and system-instruction API
  // =====================================================================================

  /** Translation registers (SCTLR/TCR/TTBRn/MAIR) changed. */
  onRegsChanged(): void {
    this.loadRegs();
    this.cpu.invalidateFetch();
  }

  private loadRegs(): void {
    const sys = this.cpu.sys;
    const sctlr = Number(sys.SCTLR_EL1 & 0xffffffffn);
    const tcr = sys.TCR_EL1;
    const tcrLo = Number(tcr & 0xffffffffn);
    const tcrHi = Number((tcr >> 32n) & 0xffffffffn);
    this.sctlr = sctlr;
    this.cpu.s32[SCTLR_OFF >> 2] = sctlr; // for translated code (runtime.ts, emit.ts)
    this.mmuOn = (sctlr & 1) !== 0;
    this.wxn = (sctlr & (1 << 19)) !== 0;
    const clampSz = (v: number): number => (v < 16 ? 16 : v > 39 ? 39 : v);
    this.txsz0 = clampSz(tcrLo & 63);
    this.txsz1 = clampSz((tcrLo >>> 16) & 63);
    this.epd0 = (tcrLo & (1 << 7)) !== 0;
    this.epd1 = (tcrLo & (1 << 23)) !== 0;
    const tg0 = (tcrLo >>> 14) & 3; // 00 4K, 01 64K, 10 16K, 11 reserved (treated as 4K)
    const tg1 = (tcrLo >>> 30) & 3; // 10 4K, 01 16K, 11 64K, 00 reserved (treated as 4K)
    this.tg0ok = tg0 === 0 || tg0 === 3;
    this.tg1ok = tg1 === 2 || tg1 === 0;
    const ips = IPS_BITS[tcrHi & 7];
    this.paBits = ips < PA_BITS_MAX ? ips : PA_BITS_MAX;
    this.tbi0 = (tcrHi & (1 << 5)) !== 0;
    this.tbi1 = (tcrHi & (1 << 6)) !== 0;
    const a1 = (tcrLo & (1 << 22)) !== 0;
    const as16 = (tcrHi & (1 << 4)) !== 0;
    const ttbr0 = sys.TTBR0_EL1;
    const ttbr1 = sys.TTBR1_EL1;
    const asid = Number(((a1 ? ttbr1 : ttbr0) >> 48n) & 0xffffn);
    const was = this.asid;
    this.asid = as16 ? asid : asid & 0xff;
    if (this.asid !== was) this.refreshDataTags();
    this.ttbr0 = Number(ttbr0 & 0xfffffffffffen);
    this.ttbr1 = Number(ttbr1 & 0xfffffffffffen);
    // Changing anything but the TTBRs (whose entries are ASID-tagged, and whose changes the guest
    // must pair with TLB maintenance) drops every cached translation.
    const key = `${sctlr & ((1 << 0) | (1 << 19))}:${tcr}`;
    if (key !== this.cfgKey) {
      this.cfgKey = key;
      this.clearTlb();
    }
  }

  private clearTlb(): void {
    this.cpu.clearJumpCache();
    this.tagLo.fill(INVALID);
    this.rTag.fill(INVALID);
    this.wTag.fill(INVALID);
    this.rAny.fill(INVALID);
    this.wAny.fill(INVALID);
    this.xTag.fill(INVALID);
    this.blkCount = 0;
    this.blkOverflow = false;
  }

  /**
   * Watchpoints set (true) or all cleared: switches the data fast paths off or back on (debug.ts).
   */
  setWatchArmed(on: boolean): void {
    if (on === this.watchArmed) return;
    this.watchArmed = on;
    if (on) {
      this.rTag.fill(INVALID);
      this.wTag.fill(INVALID);
      this.rAny.fill(INVALID);
      this.wAny.fill(INVALID);
    } else {
      this.clearTlb(); // refilled with fast tags on demand
    }
  }

  /** True when the top byte of a virtual address with high half `hi` is ignored (TCR_EL1.TBI0/TBI1). */
  topIgnored(hi: number): boolean {
    return ((hi >>> 23) & 1) === 0 ? this.tbi0 : this.tbi1;
  }

  /** TLBI VMALLE1 and friends. */
  flushAll(): void {
    this.clearTlb();
    this.cpu.invalidateFetch();
  }

  /** TLBI ASIDE1: non-global entries of `asid`. */
  flushAsid(asid: number): void {
    const n = 2 * TLB_SIZE;
    for (let i = 0; i < n; i++) if (this.tAsid[i] === asid) this.invalidateEntry(i);
    this.cpu.invalidateFetch();
    this.cpu.clearJumpCache();
  }

  /**
   * TLBI VAE1/VALE1/VAAE1/VAALE1: entries translating the VA (lo, hi) (bits 63:56 ignored), for `asid`
   * (global entries always match) or any ASID (asid = -1). lastLevel: no walk cache, so no difference.
   */
  flushVa(lo: number, hi: number, asid: number, lastLevel: boolean): void {
    void lastLevel;
    const pageLo = lo & PAGE_MASK;
    const h = hi & 0x00ffffff;
    const slot = (lo >>> 12) & TLB_MASK;
    // Pages: only the indexed slot can hold the VA.
    for (let mi = 0; mi < 2; mi++) {
      const i = (mi << TLB_BITS) | slot;
      if (this.tagLo[i] === pageLo && (this.tagHi[i] & 0x00ffffff) === h) {
        const a = this.tAsid[i];
        if (asid < 0 || a === -1 || a === asid) this.invalidateEntry(i);
      }
    }
    // Blocks: pages of a cached block containing the VA may sit in any slot.
    let inBlock = this.blkOverflow;
    for (let k = 0; k < this.blkCount && !inBlock; k++) {
      const s = this.blkShift[k];
      const m = s >= 32 ? 0 : -1 << s;
      if (((this.blkLo[k] ^ lo) & m) === 0 && ((this.blkHi[k] ^ hi) & 0x00ffffff) === 0) inBlock = true;
    }
    if (inBlock) this.cpu.clearJumpCache();
    else this.cpu.clearJumpCache(lo);
    if (inBlock) {
      const n = 2 * TLB_SIZE;
      for (let i = 0; i < n; i++) {
        const s = this.bShift[i];
        if (s <= 12 || this.tagLo[i] === INVALID) continue;
        const m = s >= 32 ? 0 : -1 << s;
        if (((this.tagLo[i] ^ lo) & m) === 0 && ((this.tagHi[i] ^ hi) & 0x00ffffff) === 0) {
          const a = this.tAsid[i];
          if (asid < 0 || a === -1 || a === asid) this.invalidateEntry(i);
        }
      }
    }
    this.cpu.invalidateFetch();
  }

  /**
   * AT S1E0R/S1E0W/S1E1R/S1E1W: the PAR_EL1 value for a stage-1 translation of (lo, hi) with the
   * permissions of EL0 (`el0`) or EL1, for a read or a write. Never raises an exception.
   */
  at(lo: number, hi: number, el0: boolean, write: boolean): bigint {
    const f = this.walk(lo, hi);
    let fsc = f;
    if (f < 0) {
      const p = el0 ? this.wPerm0 : this.wPerm1;
      if ((p & (write ? 2 : 1)) === 0) fsc = FSC_PERMISSION + this.wLevel;
    }
    if (fsc >= 0) return (1n << 11n) | (BigInt(fsc) << 1n) | 1n;
    let attr = 0; // Device-nGnRnE with the MMU off
    let sh = 2;
    if (this.wAttrIdx >= 0) {
      attr = Number((this.cpu.sys.MAIR_EL1 >> BigInt(8 * this.wAttrIdx)) & 0xffn);
      // Device and Normal Non-cacheable memory are reported as outer shareable.
      sh = (attr & 0xf0) === 0 || attr === 0x44 ? 2 : this.wSh;
    }
    return (BigInt(attr) << 56n) | BigInt(this.wPa) | (1n << 11n) | (1n << 9n) | (BigInt(sh) << 7n);
  }

  /**
   * Check a data cache maintenance by VA (DC IVAC/CVAC/CVAU/CIVAC) or IC IVAU: translate (lo, hi) as
   * a read (or as a write for DC IVAC with `needWrite`); a fault is a data abort with CM = 1, WnR = 1.
   * Returns the physical address.
   */
  cacheOp(lo: number, hi: number, needWrite = false): number {
    return this.translate(lo, hi, needWrite ? A_WRITE : A_READ, this.cpu.el, 1);
  }

  /** DC ZVA: zero the naturally aligned block of `bytes` (a power of two, <= 4096) containing (lo, hi). */
  zeroBlock(lo: number, hi: number, bytes: number): void {
    const base = (lo & -bytes) >>> 0;
    const pa = this.translate(base, hi, A_WRITE, this.cpu.el, 0);
    if (this.watchArmed) this.cpu.debug.watch(base, hi, bytes, true, false);
    const off = pa - this.ramBase;
    if (off >= 0 && off + bytes <= this.ramSize) {
      this.u8.fill(0, off, off + bytes);
      this.cpu.mem.noteWrite(off, bytes);
      return;
    }
    for (let k = 0; k < bytes; k += 4) this.writePa(pa + k, 4, 0, 0, base + k, hi);
  }
}

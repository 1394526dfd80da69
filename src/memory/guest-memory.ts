// Guest physical address space: one RAM region backed by an ArrayBuffer, plus MMIO regions
// dispatched to device models. Guest-supplied addresses are always range-checked here.

export interface MmioDevice {
  /** Read `size` bytes (1, 2 or 4) at `offset` within the region; returns an unsigned value. */
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}

interface MmioRegion {
  base: number;
  size: number;
  name: string;
  dev: MmioDevice;
}

import { CPU_BASE, CPU_BLOCK, MAX_WASM_CPUS, MAX_WASM_RAM, WASM_PAGE, codePagesOffset, ramOffset } from './layout.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

export class GuestMemory {
  /** The buffer RAM lives in (at `ramOffset`). */
  readonly ram: ArrayBufferLike;
  /**
   * The shared WebAssembly memory that holds RAM, the vCPUs' state blocks and the code-page bytes
   * (wasm/layout.ts), so translated code reaches all three; undefined for external RAM (KVM).
   */
  readonly wasm: WebAssembly.Memory | undefined;
  /** Byte offset of guest RAM in `ram`. */
  readonly ramOffset: number;
  /** The buffer and offset of vCPU state blocks (in `wasm` when there is one). */
  readonly stateBuffer: ArrayBufferLike;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  /** RAM as int32 words (the CPU's fetches, the snapshot's scan for non-zero pages). */
  readonly i32: Int32Array;
  readonly dv: DataView;
  /** RAM as int64 words (store-exclusives' compare-and-swap with vCPUs on several threads). */
  get i64(): BigInt64Array {
    return (this.i64View ??= new BigInt64Array(this.ram, this.ramOffset, this.ramSize >>> 3));
  }
  private i64View: BigInt64Array | undefined;
  /** One byte per RAM page: non-zero when decoded instructions are cached for that page. */
  readonly codePages: Uint8Array;
  /** Called when a RAM page holding cached code is written (by a CPU or a device). */
  onCodeWrite: (ramPage: number) => void = () => {};
  private readonly mmio: MmioRegion[] = [];

  constructor(
    readonly ramBase: number,
    readonly ramSize: number,
    /**
     * Existing memory to use as RAM: host memory mmap'ed for KVM (at least ramSize bytes), or the
     * WebAssembly memory of another GuestMemory of this size (a vCPU thread's view: threads/).
     */
    external?: ArrayBuffer | WebAssembly.Memory,
  ) {
    if (ramSize % PAGE_SIZE !== 0) throw new Error(`RAM size ${ramSize} is not a multiple of ${PAGE_SIZE}`);
    if (external !== undefined && !(external instanceof WebAssembly.Memory)) {
      if (external.byteLength < ramSize) throw new Error(`external RAM buffer is smaller than ${ramSize} bytes`);
      this.ram = external;
      this.ramOffset = 0;
      this.wasm = undefined;
      this.stateBuffer = new ArrayBuffer(CPU_BASE + MAX_WASM_CPUS * CPU_BLOCK);
      this.codePages = new Uint8Array(ramSize >>> PAGE_SHIFT);
    } else {
      if (ramSize > MAX_WASM_RAM) {
        throw new Error(
          `guest RAM of ${ramSize / (1 << 20)} MiB is more than the software CPU holds: at most ${MAX_WASM_RAM / (1 << 20)} MiB (one 32-bit WebAssembly memory)`,
        );
      }
      this.ramOffset = ramOffset(ramSize);
      const pages = Math.ceil((this.ramOffset + ramSize) / WASM_PAGE);
      this.wasm = external ?? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      this.ram = this.wasm.buffer;
      if (this.ram.byteLength < pages * WASM_PAGE) throw new Error(`the shared memory does not hold ${ramSize} bytes of RAM`);
      this.stateBuffer = this.ram;
      this.codePages = new Uint8Array(this.ram, codePagesOffset(), ramSize >>> PAGE_SHIFT);
    }
    this.u8 = new Uint8Array(this.ram, this.ramOffset, ramSize);
    this.u16 = new Uint16Array(this.ram, this.ramOffset, ramSize >>> 1);
    this.u32 = new Uint32Array(this.ram, this.ramOffset, ramSize >>> 2);
    this.i32 = new Int32Array(this.ram, this.ramOffset, ramSize >>> 2);
    this.dv = new DataView(this.ram, this.ramOffset, ramSize);
  }

  /** Byte offset in `stateBuffer` of vCPU `id`'s state block (wasm/layout.ts). */
  cpuBlock(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_WASM_CPUS) {
      throw new Error(`vCPU ${id}: the software CPU has state for vCPUs 0 to ${MAX_WASM_CPUS - 1}`);
    }
    return CPU_BASE + id * CPU_BLOCK;
  }

  get ramEnd(): number {
    return this.ramBase + this.ramSize;
  }

  addMmio(base: number, size: number, name: string, dev: MmioDevice): void {
    for (const r of this.mmio) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new Error(`MMIO region ${name} at 0x${base.toString(16)} overlaps ${r.name}`);
      }
    }
    this.mmio.push({ base, size, name, dev });
    this.mmio.sort((a, b) => a.base - b.base);
  }

  /** The MMIO regions: where, how big, and their names (a vCPU thread forwards accesses to them). */
  mmioRegions(): { base: number; size: number; name: string }[] {
    return this.mmio.map((r) => ({ base: r.base, size: r.size, name: r.name }));
  }

  findMmio(pa: number): MmioRegion | undefined {
    for (const r of this.mmio) if (pa >= r.base && pa < r.base + r.size) return r;
    return undefined;
  }

  /** True when [pa, pa+len) lies entirely inside RAM. */
  isRam(pa: number, len: number): boolean {
    return pa >= this.ramBase && len >= 0 && pa + len <= this.ramBase + this.ramSize;
  }

  /**
   * A view of guest RAM for a device (DMA). Returns undefined when the range is not entirely RAM,
   * so a device model can fail the request instead of touching anything else.
   */
  slice(pa: number, len: number): Uint8Array | undefined {
    if (!Number.isSafeInteger(pa) || !Number.isSafeInteger(len) || !this.isRam(pa, len)) return undefined;
    return this.u8.subarray(pa - this.ramBase, pa - this.ramBase + len);
  }

  /** Device write into RAM: like slice(), but also invalidates cached code on the pages it touches. */
  sliceForWrite(pa: number, len: number): Uint8Array | undefined {
    const s = this.slice(pa, len);
    if (s && len > 0) this.noteWrite(pa - this.ramBase, len);
    return s;
  }

  /** Tell the code cache that RAM bytes [off, off+len) (offsets from ramBase) changed. */
  noteWrite(off: number, len: number): void {
    const first = off >>> PAGE_SHIFT;
    const last = (off + len - 1) >>> PAGE_SHIFT;
    for (let p = first; p <= last; p++) if (this.codePages[p]) this.onCodeWrite(p);
  }

  /** Physical read of a little-endian value of 1, 2, 4 bytes; MMIO or RAM. Unbacked addresses read 0. */
  readPhys(pa: number, size: number): number {
    if (this.isRam(pa, size)) {
      const off = pa - this.ramBase;
      switch (size) {
        case 1:
          return this.u8[off];
        case 2:
          return this.dv.getUint16(off, true);
        default:
          return this.dv.getUint32(off, true);
      }
    }
    const r = this.findMmio(pa);
    if (r) return r.dev.read(pa - r.base, size) >>> 0;
    return 0;
  }

  writePhys(pa: number, size: number, value: number): void {
    if (this.isRam(pa, size)) {
      const off = pa - this.ramBase;
      switch (size) {
        case 1:
          this.u8[off] = value;
          break;
        case 2:
          this.dv.setUint16(off, value, true);
          break;
        default:
          this.dv.setUint32(off, value >>> 0, true);
      }
      if (this.codePages[off >>> PAGE_SHIFT]) this.onCodeWrite(off >>> PAGE_SHIFT);
      return;
    }
    const r = this.findMmio(pa);
    if (r) r.dev.write(pa - r.base, size, value >>> 0);
  }

  /** Copy host bytes into guest RAM (loaders). Throws a clear error when they do not fit. */
  load(pa: number, data: Uint8Array, what: string): void {
    if (!this.isRam(pa, data.length)) {
      throw new Error(
        `${what} (${data.length} bytes) does not fit in guest RAM at 0x${pa.toString(16)} ` +
          `(RAM is 0x${this.ramBase.toString(16)}-0x${this.ramEnd.toString(16)}); give the guest more memory`,
      );
    }
    this.u8.set(data, pa - this.ramBase);
    this.noteWrite(pa - this.ramBase, data.length);
  }
}

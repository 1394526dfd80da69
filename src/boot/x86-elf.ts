// An uncompressed x86_64 Linux kernel (vmlinux, ELF64): load its PT_LOAD segments at their
// physical addresses; the entry point is startup_64's physical address.

import { BootFormatError } from './x86-bzimage.js';

export interface ElfSegment {
  paddr: number;
  data: Uint8Array;
  memsz: number;
}

export interface ElfKernel {
  entry: number;
  segments: ElfSegment[];
  /** Lowest and highest physical address the segments occupy. */
  low: number;
  high: number;
}

export function isElf(img: Uint8Array): boolean {
  return img.length >= 64 && img[0] === 0x7f && img[1] === 0x45 && img[2] === 0x4c && img[3] === 0x46;
}

export function parseElfKernel(img: Uint8Array, what = 'kernel'): ElfKernel {
  if (!isElf(img)) throw new BootFormatError(`${what}: not an ELF file`);
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (img[4] !== 2 || img[5] !== 1) throw new BootFormatError(`${what}: not a little-endian ELF64 file`);
  if (dv.getUint16(18, true) !== 62)
    throw new BootFormatError(`${what}: not an x86_64 ELF (e_machine ${dv.getUint16(18, true)})`);
  const num = (v: bigint, f: string) => {
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new BootFormatError(`${what}: ${f} 0x${v.toString(16)} out of range`);
    return Number(v);
  };
  let entry = dv.getBigUint64(24, true);
  const phoff = num(dv.getBigUint64(32, true), 'e_phoff');
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize < 56 || phoff + phnum * phentsize > img.length)
    throw new BootFormatError(`${what}: program headers out of the file`);
  const segments: ElfSegment[] = [];
  let low = Infinity;
  let high = 0;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (dv.getUint32(o, true) !== 1) continue; // PT_LOAD
    const offset = num(dv.getBigUint64(o + 8, true), 'p_offset');
    const vaddr = dv.getBigUint64(o + 16, true);
    const paddr = dv.getBigUint64(o + 24, true);
    const filesz = num(dv.getBigUint64(o + 32, true), 'p_filesz');
    const memsz = num(dv.getBigUint64(o + 40, true), 'p_memsz');
    if (offset + filesz > img.length || filesz > memsz)
      throw new BootFormatError(`${what}: segment ${i} lies outside the file`);
    // A kernel linked at a virtual address: translate its entry through the segment holding it.
    if (entry >= vaddr && entry < vaddr + BigInt(memsz) && vaddr !== paddr) entry = entry - vaddr + paddr;
    const pa = num(paddr, 'p_paddr');
    segments.push({ paddr: pa, data: img.subarray(offset, offset + filesz), memsz });
    low = Math.min(low, pa);
    high = Math.max(high, pa + memsz);
  }
  if (segments.length === 0) throw new BootFormatError(`${what}: no loadable segments`);
  return { entry: num(entry, 'e_entry'), segments, low, high };
}

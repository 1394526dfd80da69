// An uncompressed x86_64 Linux kernel (vmlinux, ELF64): load its PT_LOAD segments at their
// physical addresses; the entry point is startup_64's physical address. The header and program
// headers are read by elf.ts; errors are BootFormatError like the bzImage loader's.

import {
  bytesReader,
  EHDR_SIZE,
  EM_X86_64,
  isElf as hasElfMagic,
  parseElf64,
  type ElfKernel as Elf64Kernel,
} from './elf.js';
import { BootFormatError } from './x86-bzimage.js';

/** A segment with its file bytes (x86-boot.ts copies them in). */
export interface ElfSegment {
  paddr: number;
  data: Uint8Array;
  memsz: number;
}

/** elf.ts's kernel, with each segment's file bytes instead of its file offset. */
export type ElfKernel = Omit<Elf64Kernel, 'segments'> & { segments: ElfSegment[] };

/** True when `img` is long enough for an ELF64 header and starts with the ELF magic. */
export function isElf(img: Uint8Array): boolean {
  return img.length >= EHDR_SIZE && hasElfMagic(img);
}

export function parseElfKernel(img: Uint8Array, what = 'kernel'): ElfKernel {
  const elf = parseElf64(bytesReader(img), img.length, {
    machine: EM_X86_64,
    arch: 'x86-64',
    what,
    error: (m) => new BootFormatError(m),
  });
  return {
    ...elf,
    segments: elf.segments.map((s) => ({
      paddr: s.paddr,
      data: img.subarray(s.offset, s.offset + s.filesz),
      memsz: s.memsz,
    })),
  };
}

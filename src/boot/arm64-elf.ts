// ELF64 AArch64 kernels (a bare-metal program, a vmlinux), loaded as QEMU's virt board loads an ELF
// given with -kernel: every PT_LOAD segment at its physical address (p_paddr), the part of p_memsz
// past p_filesz zeroed, and the entry point from e_entry (moved from the virtual to the physical
// address when an executable segment that holds it is linked at a different virtual address). Every
// segment must lie in guest RAM. The header and program headers are read by elf.ts.

import * as fs from 'node:fs';
import type { GuestMemory } from '../memory/guest-memory.js';
import { UserError } from '../host/errors.js';
import { EM_AARCH64, fileReader, parseElf64, type ElfKernel, type ElfRead } from './elf.js';

export { isElf, fileReader, type ElfKernel, type ElfSegment } from './elf.js';

/**
 * Parse an ELF file's header and program headers (`read(offset, length)` gives file bytes) and
 * check them, and against guest RAM when `mem` is given. Throws UserError naming what is wrong.
 */
export function parseArm64Elf(
  read: ElfRead,
  fileSize: number,
  mem: Pick<GuestMemory, 'isRam' | 'ramBase' | 'ramEnd'> | undefined,
  what: string,
): ElfKernel {
  return parseElf64(read, fileSize, {
    machine: EM_AARCH64,
    arch: 'AArch64',
    what,
    mem,
    error: (m) => new UserError(m),
  });
}

/** Load an ELF64 AArch64 file's segments into guest RAM (checked by parseArm64Elf first). */
export function loadArm64ElfFile(mem: GuestMemory, fd: number, what: string): ElfKernel {
  const elf = parseArm64Elf(fileReader(fd), fs.fstatSync(fd).size, mem, what);
  for (const s of elf.segments) {
    const off = s.paddr - mem.ramBase;
    let done = 0;
    while (done < s.filesz) {
      const n = fs.readSync(fd, mem.u8, off + done, s.filesz - done, s.offset + done);
      if (n === 0) throw new UserError(`${what}: the file shrank while it was read`);
      done += n;
    }
    mem.u8.fill(0, off + s.filesz, off + s.memsz); // BSS (RAM may hold a previous boot's data)
    mem.noteWrite(off, s.memsz);
  }
  return elf;
}

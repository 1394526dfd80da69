// ELF64 AArch64 kernels (a bare-metal program, a vmlinux), loaded as QEMU's virt board loads an ELF
// given with -kernel: every PT_LOAD segment at its physical address (p_paddr), the part of p_memsz
// past p_filesz zeroed, and the entry point from e_entry (moved from the virtual to the physical
// address when an executable segment that holds it is linked at a different virtual address). Every
// segment must lie in guest RAM. Hand-written: the ELF header and program headers are a few fixed
// fields (the ELF specification's Elf64_Ehdr / Elf64_Phdr), and no Node.js ELF library loads into
// a guest's memory.

import * as fs from 'node:fs';
import type { GuestMemory } from '../devices/memory.js';
import { UserError } from '../host/errors.js';

export const ELF_MAGIC = 0x464c_457f; // "\x7fELF" read little-endian
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const EM_AARCH64 = 183;
const PT_LOAD = 1;
const PF_X = 1;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;

/** A few machines by name, for the message about an ELF built for another one. */
const MACHINES: Record<number, string> = {
  3: 'x86 (EM_386)',
  8: 'MIPS',
  20: 'PowerPC',
  21: 'PowerPC64',
  22: 's390',
  40: 'ARM (32-bit)',
  62: 'x86-64',
  243: 'RISC-V',
  258: 'LoongArch',
};

/** True when `head` starts with the ELF magic. */
export function isElf(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

export interface ElfSegment {
  /** Where the file bytes start in the file. */
  offset: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfKernel {
  entry: number;
  segments: ElfSegment[];
  /** Lowest and one past the highest physical address the segments cover. */
  low: number;
  high: number;
}

function num(v: bigint, what: string, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new UserError(`${what}: ELF ${field} 0x${v.toString(16)} is too large`);
  return Number(v);
}

/**
 * Parse an ELF file's header and program headers (`read(offset, length)` gives file bytes) and
 * check them, and against guest RAM when `mem` is given. Throws UserError naming what is wrong.
 */
export function parseArm64Elf(
  read: (offset: number, length: number) => Uint8Array,
  fileSize: number,
  mem: Pick<GuestMemory, 'isRam' | 'ramBase' | 'ramEnd'> | undefined,
  what: string,
): ElfKernel {
  const eh = read(0, EHDR_SIZE);
  if (eh.length < EHDR_SIZE || !isElf(eh))
    throw new UserError(`${what}: truncated ELF header (${eh.length} bytes)`);
  if (eh[4] !== ELFCLASS64) {
    throw new UserError(
      `${what}: is a ${eh[4] === 1 ? '32-bit (ELFCLASS32)' : `class ${eh[4]}`} ELF file; expected a 64-bit AArch64 ELF`,
    );
  }
  if (eh[5] !== ELFDATA2LSB)
    throw new UserError(`${what}: is a big-endian ELF file; typevisor runs little-endian arm64 guests`);
  const dv = new DataView(eh.buffer, eh.byteOffset, eh.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_AARCH64) {
    throw new UserError(
      `${what}: is an ELF file for ${MACHINES[machine] ?? `machine ${machine}`}; expected AArch64 (EM_AARCH64)`,
    );
  }
  if (type !== ET_EXEC && type !== ET_DYN) {
    throw new UserError(
      `${what}: is an ELF file of type ${type} (a relocatable object or core dump?); expected an executable`,
    );
  }
  // e_entry and p_vaddr may be high virtual addresses (a vmlinux's 0xffff8000...): kept as bigint.
  const eEntry = dv.getBigUint64(24, true);
  let entry: bigint = eEntry;
  const phoff = num(dv.getBigUint64(32, true), what, 'e_phoff');
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phnum === 0 || phentsize < PHDR_SIZE || phoff + phnum * phentsize > fileSize) {
    throw new UserError(
      `${what}: ELF program headers (${phnum} of ${phentsize} bytes at 0x${phoff.toString(16)}) are missing or run past the end of the file`,
    );
  }
  const ph = read(phoff, phnum * phentsize);
  const pv = new DataView(ph.buffer, ph.byteOffset, ph.byteLength);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    if (pv.getUint32(o, true) !== PT_LOAD) continue;
    const flags = pv.getUint32(o + 4, true);
    const offset = num(pv.getBigUint64(o + 8, true), what, `segment ${i} p_offset`);
    const vaddr = pv.getBigUint64(o + 16, true);
    const paddr = num(pv.getBigUint64(o + 24, true), what, `segment ${i} p_paddr`);
    const filesz = num(pv.getBigUint64(o + 32, true), what, `segment ${i} p_filesz`);
    const memsz = num(pv.getBigUint64(o + 40, true), what, `segment ${i} p_memsz`);
    if (memsz === 0) continue;
    if (filesz > memsz)
      throw new UserError(
        `${what}: ELF segment ${i} has p_filesz 0x${filesz.toString(16)} above p_memsz 0x${memsz.toString(16)}`,
      );
    if (offset + filesz > fileSize)
      throw new UserError(`${what}: ELF segment ${i} runs past the end of the file`);
    if (mem && !mem.isRam(paddr, memsz)) {
      throw new UserError(
        `${what}: ELF segment ${i} (0x${memsz.toString(16)} bytes at physical address 0x${paddr.toString(16)}) lies outside guest RAM ` +
          `0x${mem.ramBase.toString(16)}-0x${mem.ramEnd.toString(16)}; link it into RAM or give the guest more memory`,
      );
    }
    // The entry is a virtual address: move it into the executable segment's physical placement.
    if (BigInt(paddr) !== vaddr && flags & PF_X && eEntry >= vaddr && eEntry < vaddr + BigInt(filesz)) {
      entry = eEntry - vaddr + BigInt(paddr);
    }
    segments.push({ offset, paddr, filesz, memsz });
  }
  if (segments.length === 0) throw new UserError(`${what}: the ELF file has no loadable (PT_LOAD) segment`);
  for (let i = 0; i < segments.length; i++) {
    for (let j = i + 1; j < segments.length; j++) {
      const a = segments[i];
      const b = segments[j];
      if (a.paddr < b.paddr + b.memsz && b.paddr < a.paddr + a.memsz) {
        throw new UserError(
          `${what}: ELF segments at 0x${a.paddr.toString(16)} and 0x${b.paddr.toString(16)} overlap`,
        );
      }
    }
  }
  if (mem && (entry > BigInt(Number.MAX_SAFE_INTEGER) || !mem.isRam(Number(entry), 4))) {
    throw new UserError(
      `${what}: ELF entry point 0x${entry.toString(16)} is not in guest RAM 0x${mem.ramBase.toString(16)}-0x${mem.ramEnd.toString(16)}`,
    );
  }
  const low = Math.min(...segments.map((s) => s.paddr));
  const high = Math.max(...segments.map((s) => s.paddr + s.memsz));
  return { entry: Number(entry), segments, low, high };
}

/** Reads of an open file at an offset (short only at the end of the file). */
export function fileReader(fd: number): (offset: number, length: number) => Uint8Array {
  return (offset, length) => {
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  };
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

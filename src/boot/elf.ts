// The one ELF64 kernel reader: the ELF header and PT_LOAD program headers (the ELF specification's
// Elf64_Ehdr / Elf64_Phdr), checked for one machine. The arm64 loader (arm64-elf.ts, QEMU virt
// -kernel semantics) and the x86_64 vmlinux loader (x86-elf.ts) both use it, each with its own
// error type. Hand-written: these are a few fixed fields, and no Node.js ELF library reads from a
// file descriptor without loading the whole kernel or loads into a guest's memory.

import * as fs from 'node:fs';

const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const PF_X = 1;
export const EHDR_SIZE = 64;
const PHDR_SIZE = 56;

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

/** A few machines by name, for the message about an ELF built for another one. */
const MACHINES: Record<number, string> = {
  3: 'x86 (EM_386)',
  8: 'MIPS',
  20: 'PowerPC',
  21: 'PowerPC64',
  22: 's390',
  40: 'ARM (32-bit)',
  [EM_X86_64]: 'x86-64',
  [EM_AARCH64]: 'AArch64',
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
  /** The entry point, moved to its physical address (see parseElf64). */
  entry: number;
  segments: ElfSegment[];
  /** Lowest and one past the highest physical address the segments cover. */
  low: number;
  high: number;
}

export interface Elf64Options {
  /** The e_machine the file must have, and its name in messages ("AArch64", "x86-64"). */
  machine: number;
  arch: string;
  /** What the file is, at the start of every message ("kernel", a path). */
  what: string;
  /** Guest RAM every segment and the entry point must lie in; unchecked when absent. */
  mem?: { isRam(addr: number, len: number): boolean; ramBase: number; ramEnd: number };
  /** The error each caller throws (UserError, BootFormatError). */
  error: (message: string) => Error;
}

/** Bytes of a file at an offset: `read(offset, length)`, short only at the end of the file. */
export type ElfRead = (offset: number, length: number) => Uint8Array;

/** A reader over bytes already in memory. */
export function bytesReader(img: Uint8Array): ElfRead {
  return (offset, length) => img.subarray(offset, offset + length);
}

/** Reads of an open file at an offset (short only at the end of the file). */
export function fileReader(fd: number): ElfRead {
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

/**
 * Parse and check an ELF64 little-endian executable's header and PT_LOAD segments for
 * `o.machine`. Segments are placed at their physical addresses (p_paddr); the entry point
 * (e_entry, a virtual address) is moved into the physical placement of the executable segment
 * that holds it when that segment is linked at a different virtual address. Throws o.error(...)
 * naming what is wrong.
 */
export function parseElf64(read: ElfRead, fileSize: number, o: Elf64Options): ElfKernel {
  const { what, mem, arch } = o;
  const fail = (msg: string): never => {
    throw o.error(`${what}: ${msg}`);
  };
  const num = (v: bigint, field: string): number => {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`ELF ${field} 0x${v.toString(16)} is too large`);
    return Number(v);
  };
  const eh = read(0, EHDR_SIZE);
  if (!isElf(eh)) fail('not an ELF file (no \\x7fELF magic)');
  if (eh.length < EHDR_SIZE) fail(`truncated ELF header (${eh.length} bytes)`);
  if (eh[4] !== ELFCLASS64) {
    fail(
      `is a ${eh[4] === 1 ? '32-bit (ELFCLASS32)' : `class ${eh[4]}`} ELF file; expected a 64-bit ${arch} ELF`,
    );
  }
  if (eh[5] !== ELFDATA2LSB) fail(`is a big-endian ELF file; expected a little-endian ${arch} ELF`);
  const dv = new DataView(eh.buffer, eh.byteOffset, eh.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== o.machine) {
    fail(
      `is an ELF file for ${MACHINES[machine] ?? `machine ${machine}`}; expected ${arch} (e_machine ${o.machine})`,
    );
  }
  if (type !== ET_EXEC && type !== ET_DYN) {
    fail(`is an ELF file of type ${type} (a relocatable object or core dump?); expected an executable`);
  }
  // e_entry and p_vaddr may be high virtual addresses (a vmlinux's 0xffff...): kept as bigint.
  const eEntry = dv.getBigUint64(24, true);
  let entry: bigint = eEntry;
  const phoff = num(dv.getBigUint64(32, true), 'e_phoff');
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phnum === 0 || phentsize < PHDR_SIZE || phoff + phnum * phentsize > fileSize) {
    fail(
      `ELF program headers (${phnum} of ${phentsize} bytes at 0x${phoff.toString(16)}) are missing or run past the end of the file`,
    );
  }
  const ph = read(phoff, phnum * phentsize);
  const pv = new DataView(ph.buffer, ph.byteOffset, ph.byteLength);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (pv.getUint32(at, true) !== PT_LOAD) continue;
    const flags = pv.getUint32(at + 4, true);
    const offset = num(pv.getBigUint64(at + 8, true), `segment ${i} p_offset`);
    const vaddr = pv.getBigUint64(at + 16, true);
    const paddr = num(pv.getBigUint64(at + 24, true), `segment ${i} p_paddr`);
    const filesz = num(pv.getBigUint64(at + 32, true), `segment ${i} p_filesz`);
    const memsz = num(pv.getBigUint64(at + 40, true), `segment ${i} p_memsz`);
    if (memsz === 0) continue;
    if (filesz > memsz)
      fail(`ELF segment ${i} has p_filesz 0x${filesz.toString(16)} above p_memsz 0x${memsz.toString(16)}`);
    if (offset + filesz > fileSize) fail(`ELF segment ${i} runs past the end of the file`);
    if (mem && !mem.isRam(paddr, memsz)) {
      fail(
        `ELF segment ${i} (0x${memsz.toString(16)} bytes at physical address 0x${paddr.toString(16)}) lies outside guest RAM ` +
          `0x${mem.ramBase.toString(16)}-0x${mem.ramEnd.toString(16)}; link it into RAM or give the guest more memory`,
      );
    }
    // The entry is a virtual address: move it into the executable segment's physical placement.
    if (BigInt(paddr) !== vaddr && flags & PF_X && eEntry >= vaddr && eEntry < vaddr + BigInt(filesz)) {
      entry = eEntry - vaddr + BigInt(paddr);
    }
    segments.push({ offset, paddr, filesz, memsz });
  }
  if (segments.length === 0) fail('the ELF file has no loadable (PT_LOAD) segment');
  for (let i = 0; i < segments.length; i++) {
    for (let j = i + 1; j < segments.length; j++) {
      const a = segments[i];
      const b = segments[j];
      if (a.paddr < b.paddr + b.memsz && b.paddr < a.paddr + a.memsz)
        fail(`ELF segments at 0x${a.paddr.toString(16)} and 0x${b.paddr.toString(16)} overlap`);
    }
  }
  if (mem && (entry > BigInt(Number.MAX_SAFE_INTEGER) || !mem.isRam(Number(entry), 4))) {
    fail(
      `ELF entry point 0x${entry.toString(16)} is not in guest RAM 0x${mem.ramBase.toString(16)}-0x${mem.ramEnd.toString(16)}`,
    );
  }
  const low = Math.min(...segments.map((s) => s.paddr));
  const high = Math.max(...segments.map((s) => s.paddr + s.memsz));
  return { entry: num(entry, 'e_entry'), segments, low, high };
}

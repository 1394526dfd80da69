// arm64 Linux `Image` loader, following the kernel's Documentation/arch/arm64/booting.rst:
//
//   u32 code0; u32 code1; u64 text_offset; u64 image_size; u64 flags;
//   u64 res2; u64 res3; u64 res4; u32 magic = 0x644d5241 ("ARM\x64"); u32 res5 (PE header offset)
//
// flags: bit 0 kernel endianness (1 = big-endian), bits 1-2 page size (0 unspecified, 1 4K, 2 16K,
// 3 64K), bit 3 physical placement (0: the 2 MiB aligned base should be as close as possible to the
// start of RAM; 1: anywhere). The Image is placed text_offset bytes above a 2 MiB aligned base, and
// image_size bytes from there (text, data and BSS) must be free memory. image_size 0 means an old
// kernel (before 3.17) whose text_offset is then 0x80000 (booting.rst).
//
// Also accepted: a gzip-compressed Image (Image.gz), and an EFI zboot image ("zimg") whose payload
// is gzip-compressed.

import * as fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { GuestMemory } from '../devices/memory.js';
import { UserError } from '../host/errors.js';

export const ARM64_IMAGE_MAGIC = 0x644d_5241;
export const ARM64_HEADER_SIZE = 64;
const SZ_2M = 0x20_0000;

export interface Arm64ImageHeader {
  code0: number;
  code1: number;
  textOffset: number;
  /** Effective memory footprint from the load address (0 in the header: file length is used). */
  imageSize: number;
  flags: number;
  bigEndian: boolean;
  /** Kernel page size in bytes, or 0 when unspecified. */
  pageSize: number;
  /** Flags bit 3: the 2 MiB aligned base may be anywhere in physical memory. */
  physAnywhere: boolean;
}

function u64num(dv: DataView, off: number, what: string, field: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new UserError(`${what}: arm64 Image header ${field} 0x${v.toString(16)} is too large`);
  return Number(v);
}

/** Parse and check the 64-byte header of an (uncompressed) arm64 Image. */
export function parseArm64Header(data: Uint8Array, what = 'kernel'): Arm64ImageHeader {
  if (data.length < ARM64_HEADER_SIZE) {
    throw new UserError(
      `${what}: not an arm64 Linux Image: only ${data.length} bytes (the header alone is 64)`,
    );
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = dv.getUint32(56, true);
  if (magic !== ARM64_IMAGE_MAGIC) {
    if (data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46) {
      throw new UserError(
        `${what}: is an ELF file (vmlinux?); give the arm64 Image (arch/arm64/boot/Image) instead`,
      );
    }
    throw new UserError(
      `${what}: not an arm64 Linux Image: magic at offset 56 is 0x${magic.toString(16).padStart(8, '0')}, expected 0x644d5241 ("ARM\\x64")`,
    );
  }
  let textOffset = u64num(dv, 8, what, 'text_offset');
  let imageSize = u64num(dv, 16, what, 'image_size');
  const flagsBig = dv.getBigUint64(24, true);
  const flags = Number(flagsBig & 0xffff_ffffn);
  if (imageSize === 0) {
    // Kernels older than 3.17: text_offset is 0x80000 and the size is not given.
    textOffset = 0x8_0000;
    imageSize = data.length;
  }
  if (textOffset % 4096 !== 0 || textOffset >= SZ_2M) {
    throw new UserError(
      `${what}: arm64 Image text_offset 0x${textOffset.toString(16)} is not a page-aligned offset below 2 MiB`,
    );
  }
  const ps = (flags >> 1) & 3;
  return {
    code0: dv.getUint32(0, true),
    code1: dv.getUint32(4, true),
    textOffset,
    imageSize: Math.max(imageSize, data.length),
    flags,
    bigEndian: (flags & 1) === 1,
    pageSize: [0, 4096, 16384, 65536][ps],
    physAnywhere: (flags & 8) !== 0,
  };
}

function gunzip(data: Uint8Array, what: string): Uint8Array {
  try {
    return new Uint8Array(gunzipSync(data));
  } catch (e) {
    throw new UserError(`${what}: looks gzip-compressed but does not decompress: ${(e as Error).message}`);
  }
}

/** Undo gzip or EFI-zboot (gzip payload) compression; other data comes back unchanged. */
export function decompressKernel(data: Uint8Array, what = 'kernel'): Uint8Array {
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) return gunzip(data, what);
  // EFI zboot: "MZ", then "zimg" at 4, payload offset and size (u32 LE) at 8 and 12, algorithm at 24.
  if (
    data.length >= 64 &&
    data[0] === 0x4d &&
    data[1] === 0x5a &&
    Buffer.from(data.subarray(4, 8)).toString('latin1') === 'zimg'
  ) {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const off = dv.getUint32(8, true);
    const size = dv.getUint32(12, true);
    const alg = Buffer.from(data.subarray(24, 32)).toString('latin1').replace(/\0.*$/s, '');
    if (alg !== 'gzip') {
      throw new UserError(
        `${what}: EFI zboot image compressed with '${alg}'; only gzip is supported (decompress it to a plain Image)`,
      );
    }
    if (off + size > data.length)
      throw new UserError(`${what}: EFI zboot payload runs past the end of the file`);
    return gunzip(data.subarray(off, off + size), what);
  }
  return data;
}

/** Read a kernel file (plain or compressed Image) and check its header. */
export function readArm64Image(file: string): { data: Uint8Array; header: Arm64ImageHeader } {
  let raw: Uint8Array;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      `kernel ${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  const data = decompressKernel(raw, `kernel ${file}`);
  return { data, header: parseArm64Header(data, `kernel ${file}`) };
}

export interface LoadedKernel {
  /** 2 MiB aligned base. */
  base: number;
  /** Where the kernel starts executing (base + text_offset). */
  entry: number;
  /** First byte after the kernel's memory footprint (entry + image_size). */
  end: number;
  header: Arm64ImageHeader;
}

export interface LoadArm64Options {
  /** 2 MiB aligned base; default: the first 2 MiB boundary at or above the start of RAM. */
  base?: number;
  /** Name for error messages (usually the file). */
  what?: string;
}

/** Place an uncompressed Image in guest RAM and return its entry point and extent. */
export function loadArm64Image(
  mem: GuestMemory,
  data: Uint8Array,
  opts: LoadArm64Options = {},
): LoadedKernel {
  const what = opts.what ?? 'kernel';
  const h = parseArm64Header(data, what);
  if (h.bigEndian)
    throw new UserError(`${what}: is a big-endian kernel; typevisor runs little-endian arm64 guests`);
  const base = opts.base ?? Math.ceil(mem.ramBase / SZ_2M) * SZ_2M;
  if (base % SZ_2M !== 0) {
    throw new UserError(
      `${what}: load base 0x${base.toString(16)} is not 2 MiB aligned (booting.rst requires it)`,
    );
  }
  const entry = base + h.textOffset;
  const end = entry + h.imageSize;
  if (!mem.isRam(entry, h.imageSize)) {
    throw new UserError(
      `${what}: needs 0x${h.imageSize.toString(16)} bytes of RAM at 0x${entry.toString(16)} but RAM is ` +
        `0x${mem.ramBase.toString(16)}-0x${mem.ramEnd.toString(16)}; give the guest more memory`,
    );
  }
  mem.load(entry, data, what);
  // Zero the BSS part of the footprint (RAM may hold a previous boot's data after a reboot).
  if (h.imageSize > data.length) {
    const off = entry + data.length - mem.ramBase;
    mem.u8.fill(0, off, off + (h.imageSize - data.length));
    mem.noteWrite(off, h.imageSize - data.length);
  }
  return { base, entry, end, header: h };
}

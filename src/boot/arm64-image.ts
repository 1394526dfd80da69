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
// is gzip-compressed. loadArm64KernelFile takes, as QEMU's virt board does with -kernel, an ELF64
// AArch64 file too (arm64-elf.ts) and anything else as a raw binary at RAM + 0x80000.

import * as fs from 'node:fs';
import { pipeline } from 'node:stream';
import { createRequire } from 'node:module';
import type { GuestMemory } from '../memory/guest-memory.js';
import { UserError } from '../host/errors.js';
import { fileReader, isElf, loadArm64ElfFile, parseArm64Elf } from './arm64-elf.js';

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

/**
 * Parse and check the 64-byte header of an (uncompressed) arm64 Image. `length` is the whole Image's
 * length when `data` holds only its beginning (a streaming load); by default, data.length.
 */
export function parseArm64Header(data: Uint8Array, what = 'kernel', length = data.length): Arm64ImageHeader {
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
    imageSize = length;
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
    imageSize: Math.max(imageSize, length),
    flags,
    bigEndian: (flags & 1) === 1,
    pageSize: [0, 4096, 16384, 65536][ps],
    physAnywhere: (flags & 8) !== 0,
  };
}

/** node:zlib, loaded only for a compressed kernel (plain Images are the common case). */
const zlib = (): typeof import('node:zlib') =>
  createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');

function gunzip(data: Uint8Array, what: string): Uint8Array {
  try {
    return new Uint8Array(zlib().gunzipSync(data));
  } catch (e) {
    throw new UserError(`${what}: looks gzip-compressed but does not decompress: ${(e as Error).message}`);
  }
}

/**
 * Where a kernel file's gzip stream lies, from its first bytes (64 are enough) and its length: the
 * whole file for gzip, the payload for EFI zboot; undefined for anything else (a plain Image).
 */
function gzipRange(
  head: Uint8Array,
  fileLength: number,
  what: string,
): { start: number; end: number } | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return { start: 0, end: fileLength };
  // EFI zboot: "MZ", then "zimg" at 4, payload offset and size (u32 LE) at 8 and 12, algorithm at 24.
  if (
    head.length >= 64 &&
    head[0] === 0x4d &&
    head[1] === 0x5a &&
    Buffer.from(head.subarray(4, 8)).toString('latin1') === 'zimg'
  ) {
    const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const off = dv.getUint32(8, true);
    const size = dv.getUint32(12, true);
    const alg = Buffer.from(head.subarray(24, 32)).toString('latin1').replace(/\0.*$/s, '');
    if (alg !== 'gzip') {
      throw new UserError(
        `${what}: EFI zboot image compressed with '${alg}'; only gzip is supported (decompress it to a plain Image)`,
      );
    }
    if (off + size > fileLength)
      throw new UserError(`${what}: EFI zboot payload runs past the end of the file`);
    return { start: off, end: off + size };
  }
  return undefined;
}

/** Undo gzip or EFI-zboot (gzip payload) compression; other data comes back unchanged. */
export function decompressKernel(data: Uint8Array, what = 'kernel'): Uint8Array {
  const r = gzipRange(data.subarray(0, 64), data.length, what);
  return r ? gunzip(data.subarray(r.start, r.end), what) : data;
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

/** The 2 MiB aligned base a kernel goes above (booting.rst requires the alignment). */
function loadBase(mem: GuestMemory, opts: LoadArm64Options, what: string): number {
  const base = opts.base ?? Math.ceil(mem.ramBase / SZ_2M) * SZ_2M;
  if (base % SZ_2M !== 0) {
    throw new UserError(
      `${what}: load base 0x${base.toString(16)} is not 2 MiB aligned (booting.rst requires it)`,
    );
  }
  return base;
}

/** Check the header and where the Image goes: its base and entry point. */
function placement(
  mem: GuestMemory,
  h: Arm64ImageHeader,
  opts: LoadArm64Options,
  what: string,
): { base: number; entry: number } {
  if (h.bigEndian)
    throw new UserError(`${what}: is a big-endian kernel; typevisor runs little-endian arm64 guests`);
  const base = loadBase(mem, opts, what);
  return { base, entry: base + h.textOffset };
}

function checkFits(mem: GuestMemory, h: Arm64ImageHeader, entry: number, what: string): void {
  if (!mem.isRam(entry, h.imageSize)) {
    throw new UserError(
      `${what}: needs 0x${h.imageSize.toString(16)} bytes of RAM at 0x${entry.toString(16)} but RAM is ` +
        `0x${mem.ramBase.toString(16)}-0x${mem.ramEnd.toString(16)}; give the guest more memory`,
    );
  }
}

/** Zero the BSS part of the footprint (RAM may hold a previous boot's data after a reboot). */
function zeroBss(mem: GuestMemory, h: Arm64ImageHeader, entry: number, length: number): void {
  if (h.imageSize > length) {
    const off = entry + length - mem.ramBase;
    mem.u8.fill(0, off, off + (h.imageSize - length));
    mem.noteWrite(off, h.imageSize - length);
  }
}

/** Place an uncompressed Image in guest RAM and return its entry point and extent. */
export function loadArm64Image(
  mem: GuestMemory,
  data: Uint8Array,
  opts: LoadArm64Options = {},
): LoadedKernel {
  const what = opts.what ?? 'kernel';
  const h = parseArm64Header(data, what);
  const { base, entry } = placement(mem, h, opts, what);
  checkFits(mem, h, entry, what);
  mem.load(entry, data, what);
  zeroBss(mem, h, entry, data.length);
  return { base, entry, end: entry + h.imageSize, header: h };
}

// ---- straight from the file ----
//
// Booting from a file goes through bounded chunks instead of readFileSync + gunzipSync: a whole
// kernel in host memory next to its copy in guest RAM (and the compressed file next to the
// inflated one) raised the VMM's peak RSS by the size of the kernel (31 MiB for Debian's) during
// every boot.

const CHUNK = 1 << 20;

function cannotRead(file: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  return new UserError(
    `kernel ${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
  );
}

/** The Image bytes of a kernel file (plain, gzip or EFI zboot), in order, a bounded chunk at a time. */
async function* imageChunks(file: string, what: string): AsyncGenerator<Uint8Array> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw cannotRead(file, e);
  }
  let gz: { start: number; end: number } | undefined;
  try {
    const size = fs.fstatSync(fd).size;
    const head = new Uint8Array(64);
    gz = gzipRange(head.subarray(0, fs.readSync(fd, head, 0, 64, 0)), size, what);
    if (!gz) {
      // Plain Image: one reused buffer; the consumer copies each chunk before asking for the next.
      const buf = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
      for (let pos = 0; ;) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) return;
        pos += n;
        yield buf.subarray(0, n);
      }
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw cannotRead(file, e);
  } finally {
    fs.closeSync(fd);
  }
  if (gz.end === gz.start) return;
  let readError: unknown;
  const source = fs.createReadStream(file, { start: gz.start, end: gz.end - 1, highWaterMark: 64 * 1024 });
  source.on('error', (e) => (readError = e));
  const inflater = zlib().createGunzip({ chunkSize: 64 * 1024 });
  // Errors of either side end the iteration below; destroying the inflater closes the file too.
  pipeline(source, inflater, () => {});
  try {
    for await (const chunk of inflater) yield chunk as Buffer;
  } catch (e) {
    if (readError !== undefined) throw cannotRead(file, readError);
    throw new UserError(`${what}: looks gzip-compressed but does not decompress: ${(e as Error).message}`);
  } finally {
    inflater.destroy();
  }
}

/** True when `head` (at least the first 64 bytes) carries the arm64 Image magic. */
function hasImageMagic(head: Uint8Array): boolean {
  return (
    head.length >= ARM64_HEADER_SIZE &&
    new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(56, true) === ARM64_IMAGE_MAGIC
  );
}

/**
 * Feed a kernel file's bytes (decompressed: plain, gzip or EFI zboot) to `put(chunk, offset)` once
 * `onHead` has seen its first 64 bytes (fewer when the whole file is shorter); returns those bytes
 * and the total length.
 */
async function streamKernel(
  file: string,
  what: string,
  onHead: (head: Uint8Array) => void,
  put: (chunk: Uint8Array, offset: number) => void,
): Promise<{ head: Uint8Array; length: number }> {
  let head: Uint8Array | undefined;
  let prefix = new Uint8Array(0);
  let length = 0;
  for await (let chunk of imageChunks(file, what)) {
    if (!head) {
      // Collect the header (a chunk is rarely shorter than 64 bytes; the file may be).
      const joined = new Uint8Array(prefix.length + chunk.length);
      joined.set(prefix);
      joined.set(chunk, prefix.length);
      if (joined.length < ARM64_HEADER_SIZE) {
        prefix = joined;
        continue;
      }
      head = joined.slice(0, ARM64_HEADER_SIZE);
      onHead(head);
      chunk = joined;
    }
    put(chunk, length);
    length += chunk.length;
  }
  if (!head) {
    // Shorter than a header: one piece.
    head = prefix;
    onHead(head);
    if (prefix.length > 0) put(prefix, 0);
    length = prefix.length;
  }
  return { head, length };
}

function emptyKernel(what: string, why = 'the file is empty'): UserError {
  return new UserError(`${what}: ${why}; expected an arm64 Image, an ELF or a raw binary`);
}

/**
 * Stream a kernel file into guest RAM: an arm64 Image (plain, gzip or EFI zboot) at its placement,
 * or, when `raw` allows it, anything without the Image magic as a raw binary at base + 0x80000.
 * Chunks past the end of RAM are counted, not written; the size checks at the end then fail.
 */
async function loadStreamed(
  mem: GuestMemory,
  file: string,
  opts: LoadArm64Options,
  what: string,
  raw: boolean,
): Promise<LoadedAnyKernel & { base: number }> {
  let image: Arm64ImageHeader | undefined;
  let base = 0;
  let entry = 0;
  const { head, length } = await streamKernel(
    file,
    what,
    (h) => {
      if (raw && !hasImageMagic(h)) {
        base = loadBase(mem, opts, what);
        entry = base + RAW_LOAD_OFFSET;
        return;
      }
      image = parseArm64Header(h, what);
      ({ base, entry } = placement(mem, image, opts, what));
    },
    (chunk, offset) => {
      const pa = entry + offset;
      if (mem.isRam(pa, chunk.length)) mem.u8.set(chunk, pa - mem.ramBase);
    },
  );
  if (image) {
    const header = parseArm64Header(head, what, length);
    checkFits(mem, header, entry, what);
    if (length > 0) mem.noteWrite(entry - mem.ramBase, length);
    zeroBss(mem, header, entry, length);
    return { kind: 'image', base, entry, low: entry, end: entry + header.imageSize, header };
  }
  if (length === 0) throw emptyKernel(what, 'decompresses to nothing');
  if (!mem.isRam(entry, length)) {
    throw new UserError(
      `${what}: not an arm64 Image or ELF file, and as a raw binary its ${length} bytes do not fit in guest RAM at ` +
        `0x${entry.toString(16)} (RAM is 0x${mem.ramBase.toString(16)}-0x${mem.ramEnd.toString(16)})`,
    );
  }
  mem.noteWrite(entry - mem.ramBase, length);
  return { kind: 'raw', base, entry, low: entry, end: entry + length };
}

/**
 * Load a kernel file (plain, gzip or EFI-zboot Image) into guest RAM without holding the whole
 * kernel in host memory; same checks and placement as readArm64Image + loadArm64Image.
 */
export async function loadArm64ImageFile(
  mem: GuestMemory,
  file: string,
  opts: LoadArm64Options = {},
): Promise<LoadedKernel> {
  const k = await loadStreamed(mem, file, opts, opts.what ?? `kernel ${file}`, false);
  return { base: k.base, entry: k.entry, end: k.end, header: k.header! };
}

// ---- any kernel QEMU's virt board boots with -kernel ----

/** Where QEMU's virt board loads a raw binary (and an Image whose header gives no offset): RAM + 512 KiB. */
export const RAW_LOAD_OFFSET = 0x8_0000;

export type KernelKind = 'image' | 'elf' | 'raw';

export interface LoadedAnyKernel {
  kind: KernelKind;
  entry: number;
  /** Lowest and one past the highest guest-physical byte the kernel occupies (BSS included). */
  low: number;
  end: number;
  /** The Image header, for kind 'image'. */
  header?: Arm64ImageHeader;
}

function openKernel(file: string): { fd: number; head: Uint8Array; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw cannotRead(file, e);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const head = new Uint8Array(64);
    return { fd, head: head.subarray(0, fs.readSync(fd, head, 0, 64, 0)), size };
  } catch (e) {
    fs.closeSync(fd);
    throw cannotRead(file, e);
  }
}

/**
 * Load whatever QEMU's virt board accepts as -kernel: an ELF64 AArch64 file (segments at their
 * physical addresses, see arm64-elf.ts), an arm64 Image (plain, gzip or EFI zboot; placed as
 * booting.rst says), or anything else as a raw binary (decompressed first when it is gzip) at
 * the 2 MiB aligned base + 0x80000, entered at its first byte. An empty file, a raw binary that does not
 * fit in RAM and an ELF for another machine or class are errors.
 */
export async function loadArm64KernelFile(
  mem: GuestMemory,
  file: string,
  opts: LoadArm64Options = {},
): Promise<LoadedAnyKernel> {
  const what = opts.what ?? `kernel ${file}`;
  const { fd, head, size } = openKernel(file);
  try {
    if (isElf(head)) {
      const elf = loadArm64ElfFile(mem, fd, what);
      return { kind: 'elf', entry: elf.entry, low: elf.low, end: elf.high };
    }
  } finally {
    fs.closeSync(fd);
  }
  if (size === 0) throw emptyKernel(what);
  const { kind, entry, low, end, header } = await loadStreamed(mem, file, opts, what, true);
  return { kind, entry, low, end, header };
}

/**
 * Check that a file is a kernel loadArm64KernelFile accepts, without keeping it in memory: an arm64
 * Image (plain or compressed, and then that it decompresses; returns its header), an ELF64 AArch64
 * file or a raw binary (returns undefined; where they go in RAM is checked when they are loaded).
 */
export async function checkArm64ImageFile(file: string): Promise<Arm64ImageHeader | undefined> {
  const what = `kernel ${file}`;
  const { fd, head, size } = openKernel(file);
  try {
    if (isElf(head)) {
      parseArm64Elf(fileReader(fd), size, undefined, what);
      return undefined;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (size === 0) throw emptyKernel(what);
  // A plain file needs only its header and length.
  if (!gzipRange(head, size, what))
    return hasImageMagic(head) ? parseArm64Header(head, what, size) : undefined;
  const { head: first, length } = await streamKernel(
    file,
    what,
    (h) => {
      if (hasImageMagic(h)) parseArm64Header(h, what);
    },
    () => {},
  );
  if (length === 0) throw emptyKernel(what, 'decompresses to nothing');
  return hasImageMagic(first) ? parseArm64Header(first, what, length) : undefined;
}

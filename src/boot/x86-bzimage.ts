// The x86 Linux boot protocol (Documentation/arch/x86/boot.rst): parse a bzImage's setup header
// and place its protected-mode kernel for a 64-bit direct boot (protocol >= 2.12 with
// XLF_KERNEL_64; the 64-bit entry is 0x200 past the load address).

/** Offsets of setup header fields inside the bzImage and inside boot_params (they coincide). */
export const HDR = {
  setup_sects: 0x1f1,
  boot_flag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  type_of_loader: 0x210,
  loadflags: 0x211,
  code32_start: 0x214,
  ramdisk_image: 0x218,
  ramdisk_size: 0x21c,
  heap_end_ptr: 0x224,
  cmd_line_ptr: 0x228,
  initrd_addr_max: 0x22c,
  kernel_alignment: 0x230,
  relocatable_kernel: 0x234,
  xloadflags: 0x236,
  cmdline_size: 0x238,
  pref_address: 0x258,
  init_size: 0x260,
} as const;

export const LOADED_HIGH = 0x01;
export const CAN_USE_HEAP = 0x80;
export const XLF_KERNEL_64 = 0x01;
export const HDRS_MAGIC = 0x5372_6448; // "HdrS"

export interface BzImage {
  /** Boot protocol version, e.g. 0x020f. */
  version: number;
  setupSects: number;
  /** The setup header bytes (boot_params offsets 0x1f1 up to the end of the header). */
  header: Uint8Array;
  /** The protected-mode kernel (loaded at `loadAddr`). */
  kernel: Uint8Array;
  loadAddr: number;
  /** 64-bit entry point (loadAddr + 0x200). */
  entry64: number;
  initrdAddrMax: number;
  cmdlineSize: number;
  initSize: number;
  relocatable: boolean;
  kernelAlignment: number;
  prefAddress: bigint;
}

export class BootFormatError extends Error {
  override name = 'BootFormatError';
}

export function isBzImage(img: Uint8Array): boolean {
  if (img.length < 0x264) return false;
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  return dv.getUint32(HDR.header, true) === HDRS_MAGIC && dv.getUint16(HDR.boot_flag, true) === 0xaa55;
}

export function parseBzImage(img: Uint8Array, what = 'kernel'): BzImage {
  if (!isBzImage(img)) throw new BootFormatError(`${what}: not a bzImage (no "HdrS" setup header)`);
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const version = dv.getUint16(HDR.version, true);
  if (version < 0x020c) {
    throw new BootFormatError(
      `${what}: boot protocol ${version >> 8}.${version & 0xff} is too old; 64-bit direct boot needs 2.12 or later`,
    );
  }
  const xlf = dv.getUint16(HDR.xloadflags, true);
  if (!(xlf & XLF_KERNEL_64))
    throw new BootFormatError(`${what}: not a 64-bit kernel (XLF_KERNEL_64 not set in xloadflags)`);
  if (!(img[HDR.loadflags] & LOADED_HIGH))
    throw new BootFormatError(`${what}: kernel does not load high (LOADED_HIGH not set)`);
  let setupSects = img[HDR.setup_sects];
  if (setupSects === 0) setupSects = 4;
  const setupBytes = (setupSects + 1) * 512;
  if (setupBytes >= img.length)
    throw new BootFormatError(`${what}: truncated (setup is ${setupBytes} bytes of ${img.length})`);
  // The header ends at 0x202 + the byte at 0x201 (the jump's offset).
  const hdrEnd = Math.min(0x202 + img[0x201], 0x290);
  const loadAddr = 0x100000;
  return {
    version,
    setupSects,
    header: img.slice(HDR.setup_sects, hdrEnd),
    kernel: img.subarray(setupBytes),
    loadAddr,
    entry64: loadAddr + 0x200,
    initrdAddrMax: dv.getUint32(HDR.initrd_addr_max, true),
    cmdlineSize: dv.getUint32(HDR.cmdline_size, true),
    initSize: dv.getUint32(HDR.init_size, true),
    relocatable: img[HDR.relocatable_kernel] !== 0,
    kernelAlignment: dv.getUint32(HDR.kernel_alignment, true),
    prefAddress: dv.getBigUint64(HDR.pref_address, true),
  };
}

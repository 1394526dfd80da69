// Linux on the x86-microvm machine: the zero page (boot_params) with the setup header, e820 map,
// command line and initrd, the MP table, and the kernel loaders (bzImage or ELF vmlinux).

import { HDR, parseBzImage, isBzImage, BootFormatError } from '../boot/x86-bzimage.js';
import { isElf, parseElfKernel } from '../boot/x86-elf.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { buildMpTable } from './x86-mptable.js';

export const BOOT_LAYOUT = {
  ZERO_PAGE: 0x7000,
  CMDLINE: 0x20000,
  CMDLINE_MAX: 0x10000,
  MPTABLE: 0x9fc00,
  /** Start of the EBDA/ROM hole reserved in the e820 map. */
  LOW_RESERVED: 0x9fc00,
  HIGH_MEM: 0x100000,
} as const;

export const E820_RAM = 1;
export const E820_RESERVED = 2;

/** boot_params offsets outside the setup header. */
export const BP = {
  ext_ramdisk_image: 0x0c0,
  ext_ramdisk_size: 0x0c4,
  ext_cmd_line_ptr: 0x0c8,
  e820_entries: 0x1e8,
  e820_table: 0x2d0,
} as const;

export interface LinuxBootOptions {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  cpus: number;
  /** ISA IRQs of level-triggered devices (virtio-mmio). */
  levelIrqs?: number[];
}

export interface LinuxBootInfo {
  format: 'bzImage' | 'elf';
  entry: number;
  zeroPage: number;
  kernelStart: number;
  kernelEnd: number;
  initrdAddr?: number;
}

/** Load the kernel, initrd, command line, MP table and zero page. Returns where the vCPU enters. */
export function loadLinux(mem: GuestMemory, o: LinuxBootOptions): LinuxBootInfo {
  const memSize = mem.ramSize;
  const zp = new Uint8Array(4096);
  const dv = new DataView(zp.buffer);
  let info: LinuxBootInfo;
  let initrdMax = 0x37ffffff;
  let cmdlineMax = 2048;
  if (isBzImage(o.kernel)) {
    const bz = parseBzImage(o.kernel);
    zp.set(bz.header, HDR.setup_sects);
    const end = bz.loadAddr + Math.max(bz.kernel.length, bz.initSize);
    if (end > memSize)
      throw new BootFormatError(
        `kernel needs memory up to 0x${end.toString(16)}; give the guest more than ${memSize >> 20} MiB`,
      );
    mem.load(bz.loadAddr, bz.kernel, 'kernel');
    initrdMax = bz.initrdAddrMax || initrdMax;
    cmdlineMax = bz.cmdlineSize || 255;
    info = {
      format: 'bzImage',
      entry: bz.entry64,
      zeroPage: BOOT_LAYOUT.ZERO_PAGE,
      kernelStart: bz.loadAddr,
      kernelEnd: end,
    };
  } else if (isElf(o.kernel)) {
    const elf = parseElfKernel(o.kernel);
    for (const s of elf.segments) {
      if (s.paddr < BOOT_LAYOUT.HIGH_MEM || s.paddr + s.memsz > memSize) {
        throw new BootFormatError(
          `kernel segment at 0x${s.paddr.toString(16)} (${s.memsz} bytes) does not fit in guest RAM of ${memSize >> 20} MiB`,
        );
      }
      mem.load(s.paddr, s.data, 'kernel segment');
      mem.u8.fill(0, s.paddr + s.data.length, s.paddr + s.memsz);
    }
    // A minimal setup header: the kernel checks the magic and reads the protocol fields.
    dv.setUint16(HDR.boot_flag, 0xaa55, true);
    dv.setUint32(HDR.header, 0x53726448, true);
    dv.setUint16(HDR.version, 0x020f, true);
    zp[HDR.loadflags] = 0x01;
    dv.setUint32(HDR.kernel_alignment, 0x1000000, true);
    info = {
      format: 'elf',
      entry: elf.entry,
      zeroPage: BOOT_LAYOUT.ZERO_PAGE,
      kernelStart: elf.low,
      kernelEnd: elf.high,
    };
  } else {
    throw new BootFormatError('kernel: neither a bzImage nor an ELF vmlinux');
  }
  zp[HDR.type_of_loader] = 0xff;
  zp[HDR.loadflags] |= 0x80; // CAN_USE_HEAP
  dv.setUint16(HDR.heap_end_ptr, 0xfe00, true);

  // Command line.
  const cmd = new TextEncoder().encode(o.cmdline);
  if (cmd.length >= Math.min(cmdlineMax, BOOT_LAYOUT.CMDLINE_MAX)) {
    throw new BootFormatError(
      `command line is ${cmd.length} bytes; this kernel accepts at most ${cmdlineMax - 1}`,
    );
  }
  mem.load(BOOT_LAYOUT.CMDLINE, cmd, 'command line');
  mem.u8[BOOT_LAYOUT.CMDLINE + cmd.length] = 0;
  dv.setUint32(HDR.cmd_line_ptr, BOOT_LAYOUT.CMDLINE, true);
  dv.setUint32(BP.ext_cmd_line_ptr, 0, true);

  // Initrd: as high as allowed, page aligned, above the kernel.
  if (o.initrd && o.initrd.length) {
    const top = Math.min(memSize, initrdMax + 1);
    const addr = Math.floor((top - o.initrd.length) / 4096) * 4096;
    if (addr < info.kernelEnd) {
      throw new BootFormatError(
        `initrd (${o.initrd.length} bytes) does not fit between the kernel and 0x${top.toString(16)}; give the guest more memory`,
      );
    }
    mem.load(addr, o.initrd, 'initrd');
    dv.setUint32(HDR.ramdisk_image, addr, true);
    dv.setUint32(HDR.ramdisk_size, o.initrd.length, true);
    info.initrdAddr = addr;
  }

  // e820: low RAM, the EBDA/BIOS hole, RAM from 1 MiB.
  const e820: [number, number, number][] = [
    [0, BOOT_LAYOUT.LOW_RESERVED, E820_RAM],
    [BOOT_LAYOUT.LOW_RESERVED, BOOT_LAYOUT.HIGH_MEM - BOOT_LAYOUT.LOW_RESERVED, E820_RESERVED],
    [BOOT_LAYOUT.HIGH_MEM, memSize - BOOT_LAYOUT.HIGH_MEM, E820_RAM],
  ];
  zp[BP.e820_entries] = e820.length;
  e820.forEach(([a, s, t], i) => {
    const off = BP.e820_table + i * 20;
    dv.setBigUint64(off, BigInt(a), true);
    dv.setBigUint64(off + 8, BigInt(s), true);
    dv.setUint32(off + 16, t, true);
  });

  mem.load(
    BOOT_LAYOUT.MPTABLE,
    buildMpTable(BOOT_LAYOUT.MPTABLE, { cpus: o.cpus, levelIrqs: o.levelIrqs }),
    'MP table',
  );
  mem.load(BOOT_LAYOUT.ZERO_PAGE, zp, 'boot_params');
  return info;
}

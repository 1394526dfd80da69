// Kernels as QEMU's virt board takes them with -kernel: ELF64 AArch64 (segments at p_paddr, BSS
// zeroed), arm64 Image (plain or gzip), and anything else as a raw binary at RAM + 0x80000; x0 holds
// the device tree's address. Synthetic files for the loader's rules and errors; tiny bare-metal
// programs built with the cross toolchain for `typevisor run`, side by side with
// qemu-system-aarch64 -M virt where it is installed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { checkArm64ImageFile, loadArm64KernelFile, RAW_LOAD_OFFSET } from '../src/boot/arm64-image.js';
import { missingTool } from './helpers/tools.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const typevisor = path.join(root, 'bin', 'typevisor');
const RAM = 0x4000_0000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-kernels-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function put(name: string, bytes: Uint8Array): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

interface Seg {
  type?: number;
  flags?: number;
  vaddr: number | bigint;
  paddr: number;
  data: Uint8Array;
  memsz: number;
}

/** An ELF64 file: header, program headers, then each segment's bytes (Elf64_Ehdr / Elf64_Phdr). */
function elf(o: {
  segs: Seg[];
  entry: number | bigint;
  cls?: number;
  data?: number;
  type?: number;
  machine?: number;
}): Uint8Array {
  const phoff = 64;
  let off = phoff + 56 * o.segs.length;
  const offsets = o.segs.map((s) => {
    const at = off;
    off += s.data.length;
    return at;
  });
  const b = Buffer.alloc(off);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = o.cls ?? 2;
  b[5] = o.data ?? 1;
  b[6] = 1;
  b.writeUInt16LE(o.type ?? 2, 16);
  b.writeUInt16LE(o.machine ?? 183, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(o.entry), 24);
  b.writeBigUInt64LE(BigInt(phoff), 32);
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(o.segs.length, 56);
  o.segs.forEach((s, i) => {
    const p = phoff + 56 * i;
    b.writeUInt32LE(s.type ?? 1, p);
    b.writeUInt32LE(s.flags ?? 5, p + 4);
    b.writeBigUInt64LE(BigInt(offsets[i]), p + 8);
    b.writeBigUInt64LE(BigInt(s.vaddr), p + 16);
    b.writeBigUInt64LE(BigInt(s.paddr), p + 24);
    b.writeBigUInt64LE(BigInt(s.data.length), p + 32);
    b.writeBigUInt64LE(BigInt(s.memsz), p + 40);
    Buffer.from(s.data).copy(b, offsets[i]);
  });
  return new Uint8Array(b);
}

const bytes = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

test('ELF64 AArch64: PT_LOAD segments at p_paddr, BSS zeroed, entry moved from virtual to physical', async () => {
  const mem = new GuestMemory(RAM, 4 << 20);
  mem.u8.fill(0xff); // a previous boot's data: the BSS must come back zeroed
  const file = put(
    'k.elf',
    elf({
      entry: 0xffff_0000_0010_0040n, // virtual, inside the executable segment
      segs: [
        { vaddr: 0xffff_0000_0010_0000n, paddr: RAM + 0x10_0000, data: bytes(0x100, 0xaa), memsz: 0x100 },
        { flags: 6, vaddr: RAM + 0x20_0000, paddr: RAM + 0x20_0000, data: bytes(0x10, 0xbb), memsz: 0x1000 },
        { type: 4, vaddr: 0, paddr: 0, data: bytes(8, 0xcc), memsz: 8 }, // PT_NOTE: not loaded
      ],
    }),
  );
  const k = await loadArm64KernelFile(mem, file);
  assert.equal(k.kind, 'elf');
  assert.equal(k.entry, RAM + 0x10_0040);
  assert.equal(k.low, RAM + 0x10_0000);
  assert.equal(k.end, RAM + 0x20_1000);
  assert.deepEqual(mem.u8.subarray(0x10_0000, 0x10_0100), bytes(0x100, 0xaa));
  assert.deepEqual(mem.u8.subarray(0x20_0000, 0x20_0010), bytes(0x10, 0xbb));
  assert.deepEqual(mem.u8.subarray(0x20_0010, 0x20_1000), bytes(0x1000 - 0x10, 0), 'BSS zeroed');
  assert.equal(mem.u8[0x20_1000], 0xff, 'nothing past p_memsz');
  assert.equal(mem.u8[0], 0xff, 'the PT_NOTE is not loaded');
  assert.equal(await checkArm64ImageFile(file), undefined);
});

test('ELF errors: another class, machine, byte order or type; segments or entry outside RAM; nothing to load', async () => {
  const mem = new GuestMemory(RAM, 1 << 20);
  const seg: Seg = { vaddr: RAM, paddr: RAM, data: bytes(16, 1), memsz: 16 };
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'x86.elf',
      elf({ segs: [seg], entry: RAM, machine: 62 }),
      /x86.elf: is an ELF file for x86-64; expected AArch64/,
    ],
    [
      'arm32.elf',
      elf({ segs: [seg], entry: RAM, cls: 1, machine: 40 }),
      /arm32.elf: is a 32-bit \(ELFCLASS32\) ELF file; expected a 64-bit AArch64 ELF/,
    ],
    ['be.elf', elf({ segs: [seg], entry: RAM, data: 2 }), /be.elf: is a big-endian ELF file/],
    [
      'rel.o',
      elf({ segs: [seg], entry: RAM, type: 1 }),
      /rel.o: is an ELF file of type 1 .*expected an executable/,
    ],
    [
      'low.elf',
      elf({ segs: [{ ...seg, vaddr: 0x1000, paddr: 0x1000 }], entry: 0x1000 }),
      /low.elf: ELF segment 0 \(0x10 bytes at physical address 0x1000\) lies outside guest RAM 0x40000000-0x40100000/,
    ],
    [
      'big.elf',
      elf({ segs: [{ ...seg, memsz: 2 << 20 }], entry: RAM }),
      /big.elf: ELF segment 0 .*lies outside guest RAM/,
    ],
    [
      'entry.elf',
      elf({ segs: [seg], entry: 0x1000 }),
      /entry.elf: ELF entry point 0x1000 is not in guest RAM/,
    ],
    [
      'none.elf',
      elf({ segs: [{ ...seg, type: 4 }], entry: RAM }),
      /none.elf: the ELF file has no loadable \(PT_LOAD\) segment/,
    ],
  ];
  for (const [name, data, re] of cases) {
    await assert.rejects(loadArm64KernelFile(mem, put(name, data)), re, name);
  }
  // The early check (create, launch) knows no RAM size, but the class and machine are wrong anywhere
  await assert.rejects(checkArm64ImageFile(path.join(dir, 'x86.elf')), /expected AArch64/);
  await assert.rejects(checkArm64ImageFile(path.join(dir, 'arm32.elf')), /expected a 64-bit AArch64 ELF/);
});

test('raw binary: anything else goes to RAM + 0x80000 and runs from there; gzip is undone first', async () => {
  const mem = new GuestMemory(RAM, 2 << 20);
  const prog = Uint8Array.from([0x1f, 0x20, 0x03, 0xd5, 1, 2, 3, 4, 5]); // nop, then data
  for (const [name, data] of [
    ['prog.bin', prog],
    ['prog.bin.gz', new Uint8Array(gzipSync(prog))],
  ] as const) {
    mem.u8.fill(0);
    const k = await loadArm64KernelFile(mem, put(name, data));
    assert.equal(k.kind, 'raw', name);
    assert.equal(k.entry, RAM + RAW_LOAD_OFFSET);
    assert.equal(k.end, RAM + RAW_LOAD_OFFSET + prog.length);
    assert.deepEqual(mem.u8.subarray(RAW_LOAD_OFFSET, RAW_LOAD_OFFSET + prog.length), prog);
    assert.equal(await checkArm64ImageFile(path.join(dir, name)), undefined);
  }
  // What cannot be a raw binary
  await assert.rejects(
    loadArm64KernelFile(mem, put('empty', new Uint8Array(0))),
    /empty: the file is empty; expected an arm64 Image, an ELF or a raw binary/,
  );
  await assert.rejects(checkArm64ImageFile(path.join(dir, 'empty')), /the file is empty/);
  await assert.rejects(
    loadArm64KernelFile(mem, put('huge.bin', new Uint8Array(2 << 20))),
    /huge.bin: not an arm64 Image or ELF file, and as a raw binary its 2097152 bytes do not fit in guest RAM at 0x40080000 \(RAM is 0x40000000-0x40200000\)/,
  );
  await assert.rejects(
    loadArm64KernelFile(mem, put('nothing.gz', new Uint8Array(gzipSync(new Uint8Array(0))))),
    /decompresses to nothing/,
  );
});

// ---- real programs --------------------------------------------------------------------------------

/**
 * Writes a line to the PL011, then "dtb at x0" when x0 points at a device tree (its magic
 * 0xd00dfeed), and powers off with PSCI SYSTEM_OFF. Position-independent, so the same code runs
 * as an ELF, a raw binary and an Image wherever each is placed. With IMAGE defined, an arm64 Image
 * header (booting.rst) comes first: text_offset 0x80000, image_size, flags LE/4K/anywhere.
 */
const PROGRAM = `
	.global _start
	.text
.ifdef IMAGE
_head:
	b _start
	.long 0
	.quad 0x80000
	.quad _end - _head
	.quad 0xa
	.quad 0, 0, 0
	.ascii "ARM\\x64"
	.long 0
.endif
_start:
	mov x19, x0
	adr x2, hello
	bl print
	cbz x19, off
	ldr w4, [x19]
	ldr w5, =0xedfe0dd0
	cmp w4, w5
	b.ne off
	adr x2, dtb
	bl print
off:
	movz x0, #0x0008
	movk x0, #0x8400, lsl #16
	hvc #0
1:	wfi
	b 1b
print:
	ldr x1, =0x09000000
2:	ldrb w3, [x2], #1
	cbz w3, 3f
	str w3, [x1]
	b 2b
3:	ret
hello:	.asciz "hello from bare metal\\n"
dtb:	.asciz "dtb at x0\\n"
	.balign 8
	.ltorg
_end:
`;

const toolsMissing = missingTool('aarch64-linux-gnu-as', 'aarch64-linux-gnu-ld', 'aarch64-linux-gnu-objcopy');

/** The program as ELF (linked at RAM + 0x80000), raw binary, Image and gzip'd Image. */
function build(): Record<'elf' | 'bin' | 'image' | 'imageGz', string> {
  const src = put('prog.S', new TextEncoder().encode(PROGRAM));
  const out = (n: string): string => path.join(dir, n);
  execFileSync('aarch64-linux-gnu-as', ['-o', out('prog.o'), src]);
  execFileSync('aarch64-linux-gnu-ld', [
    '-nostdlib',
    '-Ttext=0x40080000',
    '-o',
    out('prog.elf'),
    out('prog.o'),
  ]);
  execFileSync('aarch64-linux-gnu-objcopy', ['-O', 'binary', out('prog.elf'), out('prog.bin')]);
  execFileSync('aarch64-linux-gnu-as', ['--defsym', 'IMAGE=1', '-o', out('img.o'), src]);
  execFileSync('aarch64-linux-gnu-ld', [
    '-nostdlib',
    '-Ttext=0x40080000',
    '-o',
    out('img.elf'),
    out('img.o'),
  ]);
  execFileSync('aarch64-linux-gnu-objcopy', ['-O', 'binary', out('img.elf'), out('Image')]);
  const gz = gzipSync(fs.readFileSync(out('Image')));
  fs.writeFileSync(out('Image.gz'), gz);
  return { elf: out('prog.elf'), bin: out('prog.bin'), image: out('Image'), imageGz: out('Image.gz') };
}

/**
 * An EFI zboot image around a gzip'd Image, as Linux's drivers/firmware/efi/libstub/zboot-header.S
 * lays out its header: "MZ", "zimg" at 4, payload offset and size at 8 and 12, the compression type
 * at 24; the PE parts (unused by a direct boot) are left out.
 */
function zboot(imageGz: string): string {
  const gz = fs.readFileSync(imageGz);
  const head = Buffer.alloc(0x200);
  head.write('MZ', 0, 'latin1');
  head.write('zimg', 4, 'latin1');
  head.writeUInt32LE(head.length, 8);
  head.writeUInt32LE(gz.length, 12);
  head.write('gzip', 24, 'latin1');
  return put('vmlinuz.efi', Buffer.concat([head, gz]));
}

function runTypevisor(kernel: string, input = ''): { status: number | null; out: string; err: string } {
  const r = spawnSync(typevisor, ['run', '--kernel', kernel], {
    encoding: 'latin1',
    timeout: 120_000,
    input,
  });
  return { status: r.status, out: r.stdout.replace(/\r/g, ''), err: r.stderr };
}

function runQemu(kernel: string, input = ''): { status: number | null; out: string } {
  const r = spawnSync(
    'qemu-system-aarch64',
    ['-M', 'virt', '-cpu', 'cortex-a57', '-m', '512', '-nographic', '-nic', 'none', '-kernel', kernel],
    { encoding: 'latin1', timeout: 60_000, input },
  );
  return { status: r.status, out: r.stdout.replace(/\r/g, '') };
}

test(
  'bare-metal programs: `typevisor run --kernel` boots an ELF, a raw binary, an Image, an Image.gz and an EFI zboot image, with the DTB in x0',
  { skip: toolsMissing },
  () => {
    const k = build();
    for (const [kind, file] of Object.entries({ ...k, zboot: zboot(k.imageGz) })) {
      const r = runTypevisor(file);
      assert.equal(r.status, 0, `${kind}: exit status ${r.status}; stderr: ${r.err}`);
      assert.equal(r.out, 'hello from bare metal\ndtb at x0\n', `${kind}: console output`);
    }
    assert.match(
      runTypevisor(k.bin).err,
      /is neither an arm64 Image nor an ELF file: running it as a raw binary at 0x40080000/,
    );
  },
);

test(
  'the same programs under qemu-system-aarch64 -M virt print the same (QEMU gives an ELF no DTB in x0)',
  { skip: toolsMissing || missingTool('qemu-system-aarch64') },
  () => {
    const k = build();
    for (const [kind, file] of Object.entries(k)) {
      const q = runQemu(file);
      const t = runTypevisor(file);
      assert.equal(q.status, 0, `${kind}: QEMU exit status ${q.status}`);
      assert.equal(t.status, 0);
      // QEMU 7.2 boots an ELF as a non-Linux image: x0 = 0 (and its 1 MiB DTB does not fit below
      // 0x40080000); typevisor passes the DTB in x0 for every kind.
      const want = kind === 'elf' ? 'hello from bare metal\n' : 'hello from bare metal\ndtb at x0\n';
      assert.equal(q.out, want, `${kind}: QEMU output`);
      assert.equal(t.out.split('\n')[0], q.out.split('\n')[0], `${kind}: same first line`);
    }
  },
);

/**
 * Reads a line from the PL011 by polling (FR.RXFE, then DR) with every interrupt masked, as a
 * bare-metal program or a boot loader does, and prints it back.
 */
const POLLING_ECHO = `
	.global _start
	.text
_start:
	ldr x1, =0x09000000
	adr x6, buf
1:	ldr w3, [x1, #0x18]
	tbnz w3, #4, 1b
	ldr w3, [x1]
	and w3, w3, #0xff
	cmp w3, #10
	b.eq 2f
	cmp w3, #13
	b.eq 2f
	strb w3, [x6], #1
	b 1b
2:	strb wzr, [x6]
	adr x2, got
	bl print
	adr x2, buf
	bl print
	mov w3, #10
	str w3, [x1]
	movz x0, #0x0008
	movk x0, #0x8400, lsl #16
	hvc #0
3:	wfi
	b 3b
print:
4:	ldrb w3, [x2], #1
	cbz w3, 5f
	str w3, [x1]
	b 4b
5:	ret
got:	.asciz "got: "
	.balign 8
	.ltorg
buf:	.space 256
`;

test(
  'PL011 polled with interrupts masked: a bare-metal program reads piped input (side by side with QEMU when installed)',
  { skip: toolsMissing },
  () => {
    const src = put('echo.S', new TextEncoder().encode(POLLING_ECHO));
    const o = path.join(dir, 'echo.o');
    const elfFile = path.join(dir, 'echo.elf');
    execFileSync('aarch64-linux-gnu-as', ['-o', o, src]);
    execFileSync('aarch64-linux-gnu-ld', ['-nostdlib', '-Ttext=0x40080000', '-o', elfFile, o]);
    const line = 'a line typed into a polled UART, longer than its 32-entry FIFO';
    const t = runTypevisor(elfFile, `${line}\n`);
    assert.equal(t.status, 0, t.err);
    assert.equal(t.out, `got: ${line}\n`);
    if (missingTool('qemu-system-aarch64')) return;
    const q = runQemu(elfFile, `${line}\n`);
    assert.equal(q.status, 0);
    assert.equal(q.out, t.out, 'QEMU prints the same');
  },
);

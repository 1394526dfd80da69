// arm64 Image loader: header parsing (booting.rst layout), gzip, placement, errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { GuestMemory } from '../src/memory/guest-memory.js';
import {
  checkArm64ImageFile,
  decompressKernel,
  loadArm64Image,
  loadArm64ImageFile,
  parseArm64Header,
  readArm64Image,
} from '../src/boot/arm64-image.js';

/** A synthetic Image: 64-byte header (fields at the offsets booting.rst gives) plus a body. */
function synth(
  opts: { textOffset?: bigint; imageSize?: bigint; flags?: bigint; magic?: number; body?: number } = {},
): Uint8Array {
  const len = 64 + (opts.body ?? 4096 - 64);
  const b = Buffer.alloc(len);
  b.writeUInt32LE(0x91005a4d, 0); // code0: "MZ" + add x13, x18, #0x16 (what EFI-stub kernels use)
  b.writeUInt32LE(0x14000010, 4); // code1: b +0x40
  b.writeBigUInt64LE(opts.textOffset ?? 0n, 8);
  b.writeBigUInt64LE(opts.imageSize ?? 0x10000n, 16);
  b.writeBigUInt64LE(opts.flags ?? 0b1010n, 24); // LE, 4K pages, anywhere
  b.writeUInt32LE(opts.magic ?? 0x644d5241, 56);
  for (let i = 64; i < len; i++) b[i] = i & 0xff;
  return new Uint8Array(b);
}

test('arm64 Image: header fields', () => {
  const h = parseArm64Header(synth({ textOffset: 0x80000n, imageSize: 0x123000n, flags: 0b0100n }));
  assert.equal(h.code0, 0x91005a4d);
  assert.equal(h.code1, 0x14000010);
  assert.equal(h.textOffset, 0x80000);
  assert.equal(h.imageSize, 0x123000);
  assert.equal(h.bigEndian, false);
  assert.equal(h.pageSize, 16384, 'flags bits 1-2 = 2: 16K');
  assert.equal(h.physAnywhere, false);
  const h2 = parseArm64Header(synth({ flags: 0b1111n }));
  assert.equal(h2.bigEndian, true);
  assert.equal(h2.pageSize, 65536);
  assert.equal(h2.physAnywhere, true);
});

test('arm64 Image: image_size 0 means an old kernel with text_offset 0x80000', () => {
  const img = synth({ imageSize: 0n, textOffset: 0n });
  const h = parseArm64Header(img);
  assert.equal(h.textOffset, 0x80000);
  assert.equal(h.imageSize, img.length);
});

test('arm64 Image: bad magic, ELF and short files are named errors', () => {
  assert.throws(
    () => parseArm64Header(synth({ magic: 0x12345678 }), 'kernel /x/Image'),
    /kernel \/x\/Image: not an arm64 Linux Image: magic at offset 56 is 0x12345678/,
  );
  const elf = new Uint8Array(128);
  elf.set([0x7f, 0x45, 0x4c, 0x46]);
  assert.throws(() => parseArm64Header(elf, 'vmlinux'), /vmlinux: is an ELF file/);
  assert.throws(() => parseArm64Header(new Uint8Array(10), 'tiny'), /tiny: .*only 10 bytes/);
});

test('arm64 Image: placement at a 2 MiB aligned base + text_offset, BSS zeroed', () => {
  const mem = new GuestMemory(0x4000_0000, 8 << 20);
  mem.u8.fill(0xcc);
  const img = synth({ textOffset: 0x80000n, imageSize: 0x3000n, body: 0x1000 - 64 });
  const k = loadArm64Image(mem, img);
  assert.equal(k.base, 0x4000_0000);
  assert.equal(k.entry, 0x4008_0000);
  assert.equal(k.end, 0x4008_3000);
  assert.deepEqual(mem.u8.subarray(0x80000, 0x80000 + img.length), img);
  assert.ok(
    mem.u8.subarray(0x81000, 0x83000).every((x) => x === 0),
    'BSS zeroed',
  );
  assert.equal(mem.u8[0x83000], 0xcc, 'nothing past image_size touched');
  // The seed-001 layout: kernel at 0x48000000 with RAM starting there.
  const mem2 = new GuestMemory(0x4800_0000, 4 << 20);
  const k2 = loadArm64Image(mem2, synth(), { base: 0x4800_0000 });
  assert.equal(k2.entry, 0x4800_0000);
  assert.throws(
    () => loadArm64Image(mem2, synth(), { base: 0x4810_0000, what: 'k' }),
    /k: load base 0x48100000 is not 2 MiB aligned/,
  );
});

test('arm64 Image: errors for big-endian kernels and kernels that do not fit', () => {
  const mem = new GuestMemory(0x4000_0000, 1 << 20);
  assert.throws(
    () => loadArm64Image(mem, synth({ flags: 1n }), { what: 'be' }),
    /be: is a big-endian kernel/,
  );
  assert.throws(
    () => loadArm64Image(mem, synth({ imageSize: 0x20_0000n }), { what: 'big' }),
    /big: needs 0x200000 bytes of RAM at 0x40000000/,
  );
});

test('arm64 Image: gzip-compressed Image is decompressed; missing file is named', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-img-'));
  const img = synth();
  const p = path.join(dir, 'Image.gz');
  fs.writeFileSync(p, gzipSync(img));
  const r = readArm64Image(p);
  assert.deepEqual(r.data, img);
  assert.equal(r.header.pageSize, 4096);
  assert.deepEqual(decompressKernel(img), img, 'plain data unchanged');
  assert.throws(() => readArm64Image(path.join(dir, 'nope')), /kernel .*nope: cannot read: no such file/);
  const bad = Uint8Array.from([0x1f, 0x8b, 1, 2, 3]);
  assert.throws(() => decompressKernel(bad, 'k.gz'), /k.gz: looks gzip-compressed but does not decompress/);
});

/** An EFI zboot image: "MZ", "zimg", payload offset/size at 8/12, "gzip" at 24, then the payload. */
function zboot(payload: Uint8Array, alg = 'gzip'): Uint8Array {
  const b = Buffer.alloc(0x100 + payload.length);
  b.write('MZ', 0, 'latin1');
  b.write('zimg', 4, 'latin1');
  b.writeUInt32LE(0x100, 8);
  b.writeUInt32LE(payload.length, 12);
  b.write(alg, 24, 'latin1');
  b.set(payload, 0x100);
  return new Uint8Array(b);
}

test('arm64 Image from a file: plain, gzip and EFI zboot load like loadArm64Image, in chunks', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-imgf-'));
  // Larger than one read chunk (1 MiB) and than one inflate chunk, with a BSS after it.
  const img = synth({ textOffset: 0x80000n, imageSize: 0x18_0000n, body: 0x14_0000 - 64 });
  for (let i = 64; i < img.length; i++) img[i] = (i * 7 + (i >> 12)) & 0xff;
  const files = {
    plain: img,
    gz: new Uint8Array(gzipSync(img)),
    zboot: zboot(new Uint8Array(gzipSync(img))),
  };
  const want = new GuestMemory(0x4000_0000, 4 << 20);
  want.u8.fill(0xcc);
  const k0 = loadArm64Image(want, img);
  for (const [name, bytes] of Object.entries(files)) {
    const p = path.join(dir, name);
    fs.writeFileSync(p, bytes);
    const mem = new GuestMemory(0x4000_0000, 4 << 20);
    mem.u8.fill(0xcc);
    const k = await loadArm64ImageFile(mem, p);
    assert.deepEqual(k, k0, name);
    assert.ok(Buffer.from(mem.u8).equals(Buffer.from(want.u8)), `${name}: same RAM contents`);
    assert.deepEqual(await checkArm64ImageFile(p), k0.header, `${name}: check`);
  }
  // Old kernels (image_size 0): text_offset 0x80000 and the length from the data.
  const old = synth({ imageSize: 0n, body: 0x3000 - 64 });
  fs.writeFileSync(path.join(dir, 'old.gz'), gzipSync(old));
  const mem = new GuestMemory(0x4000_0000, 4 << 20);
  const k = await loadArm64ImageFile(mem, path.join(dir, 'old.gz'));
  assert.equal(k.entry, 0x4008_0000);
  assert.equal(k.end, 0x4008_3000);
});

test('arm64 Image from a file: the same errors as reading it whole', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tv-imgf-'));
  const put = (name: string, bytes: Uint8Array): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const mem = new GuestMemory(0x4000_0000, 1 << 20);
  await assert.rejects(
    loadArm64ImageFile(mem, path.join(dir, 'nope')),
    /kernel .*nope: cannot read: no such file/,
  );
  await assert.rejects(
    checkArm64ImageFile(path.join(dir, 'nope')),
    /kernel .*nope: cannot read: no such file/,
  );
  const tiny = put('tiny', new Uint8Array(10));
  await assert.rejects(loadArm64ImageFile(mem, tiny), /tiny: .*only 10 bytes/);
  assert.equal(await checkArm64ImageFile(tiny), undefined, 'without the Image magic it is a raw binary (loadArm64KernelFile)');
  await assert.rejects(
    loadArm64ImageFile(mem, put('tiny.gz', gzipSync(new Uint8Array(10)))),
    /only 10 bytes/,
  );
  await assert.rejects(
    loadArm64ImageFile(mem, put('magic', synth({ magic: 0x12345678 }))),
    /not an arm64 Linux Image/,
  );
  await assert.rejects(loadArm64ImageFile(mem, put('be', synth({ flags: 1n }))), /is a big-endian kernel/);
  await assert.rejects(
    loadArm64ImageFile(mem, put('big.gz', gzipSync(synth({ imageSize: 0x20_0000n })))),
    /big.gz: needs 0x200000 bytes of RAM at 0x40000000/,
  );
  // Longer than RAM: nothing is written past its end, and the message gives the whole size.
  await assert.rejects(
    loadArm64ImageFile(mem, put('long', synth({ imageSize: 0n, body: (2 << 20) - 64 }))),
    /long: needs 0x200000 bytes of RAM at 0x40080000/,
  );
  const bad = put('bad.gz', Uint8Array.from([0x1f, 0x8b, 1, 2, 3]));
  await assert.rejects(loadArm64ImageFile(mem, bad), /bad.gz: looks gzip-compressed but does not decompress/);
  await assert.rejects(checkArm64ImageFile(bad), /bad.gz: looks gzip-compressed but does not decompress/);
  const cut = new Uint8Array(gzipSync(synth()));
  await assert.rejects(
    loadArm64ImageFile(mem, put('cut.gz', cut.subarray(0, cut.length - 20))),
    /cut.gz: looks gzip-compressed but does not decompress/,
  );
  await assert.rejects(
    loadArm64ImageFile(mem, put('lz4', zboot(new Uint8Array(100), 'lz4'))),
    /compressed with 'lz4'; only gzip is supported/,
  );
});

function findDebianKernel(): string | undefined {
  const cands: string[] = [];
  try {
    for (const f of fs.readdirSync('/tmp/debs/k/boot'))
      if (f.startsWith('vmlinuz-')) cands.push(path.join('/tmp/debs/k/boot', f));
  } catch {
    // none
  }
  const cache = process.env.TYPEVISOR_CACHE ?? path.join(os.homedir(), '.cache', 'typevisor');
  const img = path.join(cache, 'images', 'default-arm64', 'Image');
  if (fs.existsSync(img)) cands.push(img);
  return cands[0];
}

test('arm64 Image: a real Debian kernel parses (skipped when none is on this machine)', (t) => {
  const k = findDebianKernel();
  if (!k) {
    t.skip('no Debian arm64 kernel in /tmp/debs or the image cache');
    return;
  }
  const { data, header } = readArm64Image(k);
  assert.equal(header.bigEndian, false);
  assert.ok([0, 4096].includes(header.pageSize));
  assert.ok(header.imageSize >= data.length);
  assert.equal(header.textOffset % 4096, 0);
  const mem = new GuestMemory(0x4000_0000, Math.ceil((header.imageSize + (4 << 20)) / 4096) * 4096);
  const l = loadArm64Image(mem, data, { what: k });
  assert.equal(l.entry, 0x4000_0000 + header.textOffset);
});

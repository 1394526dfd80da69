// cpio "newc" archive writer (the format Linux unpacks as an initramfs), optionally gzip-compressed.
//
// Each entry: the ASCII magic "070701", thirteen 8-digit hex fields (ino, mode, uid, gid, nlink,
// mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check = 0), the NUL-
// terminated path name padded to a multiple of 4 bytes (counting the 110-byte header), then the
// file data padded to a multiple of 4. A symlink's data is its target. The archive ends with the
// entry "TRAILER!!!".

import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

interface Entry {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
}

function normalize(p: string): string {
  const parts = p.split('/').filter((x) => x.length > 0 && x !== '.');
  if (parts.some((x) => x === '..')) throw new Error(`cpio path '${p}' contains '..'`);
  if (parts.length === 0) throw new Error(`cpio path '${p}' is empty`);
  return parts.join('/');
}

export interface EntryOptions {
  uid?: number;
  gid?: number;
}

/** Builds an initramfs. Parent directories are added (mode 0755) when not given explicitly. */
export class CpioWriter {
  private readonly entries: Entry[] = [];
  private readonly byName = new Map<string, Entry>();
  /** Modification time written into every entry (seconds; fixed for reproducible archives). */
  mtime = 0;

  private add(
    path: string,
    mode: number,
    data: Uint8Array,
    opts: EntryOptions = {},
    rdev: [number, number] = [0, 0],
  ): void {
    const name = normalize(path);
    const slash = name.lastIndexOf('/');
    if (slash > 0) this.ensureDir(name.slice(0, slash));
    const e: Entry = {
      name,
      mode,
      uid: opts.uid ?? 0,
      gid: opts.gid ?? 0,
      data,
      rdevMajor: rdev[0],
      rdevMinor: rdev[1],
    };
    const old = this.byName.get(name);
    if (old) {
      if ((old.mode & S_IFMT) === S_IFDIR && (mode & S_IFMT) === S_IFDIR) {
        Object.assign(old, e);
        return;
      }
      throw new Error(`cpio: '${name}' added twice`);
    }
    this.byName.set(name, e);
    this.entries.push(e);
  }

  private ensureDir(name: string): void {
    if (this.byName.has(name)) return;
    this.add(name, S_IFDIR | 0o755, new Uint8Array(0));
  }

  has(path: string): boolean {
    return this.byName.has(normalize(path));
  }

  dir(path: string, perm = 0o755, opts?: EntryOptions): this {
    this.add(path, S_IFDIR | (perm & 0o7777), new Uint8Array(0), opts);
    return this;
  }

  file(path: string, data: Uint8Array | string, perm = 0o644, opts?: EntryOptions): this {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    this.add(path, S_IFREG | (perm & 0o7777), bytes, opts);
    return this;
  }

  symlink(path: string, target: string, opts?: EntryOptions): this {
    this.add(path, S_IFLNK | 0o777, new TextEncoder().encode(target), opts);
    return this;
  }

  charDevice(path: string, major: number, minor: number, perm = 0o600, opts?: EntryOptions): this {
    this.add(path, S_IFCHR | (perm & 0o7777), new Uint8Array(0), opts, [major, minor]);
    return this;
  }

  blockDevice(path: string, major: number, minor: number, perm = 0o600, opts?: EntryOptions): this {
    this.add(path, S_IFBLK | (perm & 0o7777), new Uint8Array(0), opts, [major, minor]);
    return this;
  }

  /** The uncompressed archive. */
  toBytes(): Uint8Array {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const enc = new TextEncoder();
    const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');
    const pad4 = (n: number) => (4 - (n % 4)) % 4;
    const put = (b: Uint8Array) => {
      chunks.push(b);
      size += b.length;
    };
    const entry = (ino: number, e: Entry, nlink: number) => {
      const name = enc.encode(e.name);
      const header =
        '070701' +
        hex(ino) +
        hex(e.mode) +
        hex(e.uid) +
        hex(e.gid) +
        hex(nlink) +
        hex(this.mtime) +
        hex(e.data.length) +
        hex(0) +
        hex(0) +
        hex(e.rdevMajor) +
        hex(e.rdevMinor) +
        hex(name.length + 1) +
        hex(0);
      put(enc.encode(header));
      const nameBlock = new Uint8Array(name.length + 1 + pad4(110 + name.length + 1));
      nameBlock.set(name);
      put(nameBlock);
      if (e.data.length > 0) {
        put(e.data);
        const p = pad4(e.data.length);
        if (p) put(new Uint8Array(p));
      }
    };
    let ino = 1;
    for (const e of this.entries) entry(ino++, e, (e.mode & S_IFMT) === S_IFDIR ? 2 : 1);
    entry(
      0,
      { name: 'TRAILER!!!', mode: 0, uid: 0, gid: 0, data: new Uint8Array(0), rdevMajor: 0, rdevMinor: 0 },
      1,
    );
    const out = new Uint8Array(size);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  /** The gzip-compressed archive (what the kernel's CONFIG_RD_GZIP unpacks). */
  toGzip(level = 6): Uint8Array {
    // node:zlib on first use: the VMM loads this module (through the image cache) but only the image
    // build compresses.
    const { gzipSync } = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');
    return new Uint8Array(gzipSync(this.toBytes(), { level }));
  }
}

/**
 * Write to `out` the initramfs in file `base` followed by a gzipped archive of `programs` (path in
 * the archive -> the file to put there, executable): Linux unpacks one after the other. Gzipped,
 * since Linux finds a compressed archive at any offset, an uncompressed one only at a multiple of 4
 * bytes (a base's length is not always one). For tests and benchmarks that add a guest program.
 */
export function writeInitramfsWith(base: string, out: string, programs: Record<string, string>): void {
  const extra = new CpioWriter();
  for (const [path, file] of Object.entries(programs)) extra.file(path, readFileSync(file), 0o755);
  writeFileSync(out, Buffer.concat([readFileSync(base), extra.toGzip()]));
}

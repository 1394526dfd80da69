// The snapshot file: a VM's config, its machine state (arm64-virt: every vCPU, the GIC, timers, UART,
// RTC, GPIO; x86-microvm: every vCPU and the in-kernel irqchip, PIT and clock through KVM's GET
// ioctls, COM1, i8042; each virtio device with its queues on both) and its guest RAM, written while
// every vCPU is held. Disks are referenced by path (and size), not copied.
//
// Layout (little-endian):
//
//   0   8 bytes  magic "TVSNAP\r\n"
//   8   u32      format version (SNAPSHOT_FORMAT)
//   12  u32      length H of the header
//   16  H bytes  header, JSON (SnapshotHeader: typevisor version, spec, machine state, RAM summary)
//   then RAM records, one per run of up to RUN_PAGES consecutive non-zero 4 KiB pages:
//       u32 first page (from the start of RAM), u32 page count, u32 stored length, then the pages,
//       deflated (raw deflate) when that saves space, else as they are (stored length = count*4096)
//   end  u32 0xffffffff, u32 number of pages written, u32 0
//
// Pages that are all zero are not written: a restored machine's RAM starts zeroed. The end record
// tells a complete file from a truncated one.

import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { deflateRawSync, inflateRawSync, constants as zc } from 'node:zlib';
import { UserError } from '../host/errors.js';
import { VMM_VERSION } from '../host/version.js';
import { PAGE_SIZE, type GuestMemory } from '../memory/guest-memory.js';
import type { MachineState } from '../machine/machine.js';
import { ARM64_VIRT_STATE_PARTS } from '../machine/arm64-virt.js';
import { X86_STATE_PARTS } from '../machine/x86-state.js';
import type { VmSpec } from './vm.js';

export const SNAPSHOT_MAGIC = Buffer.from('TVSNAP\r\n', 'latin1');
/** Bump when the file layout or any component's saved state changes incompatibly. */
export const SNAPSHOT_FORMAT = 1;
/** Pages per RAM record (1 MiB): the unit of compression. */
const RUN_PAGES = 256;
const END = 0xffff_ffff;
const MAX_HEADER = 64 * 1024 * 1024;

export interface SnapshotHeader {
  /** The typevisor version that wrote it. */
  typevisor: string;
  /** ISO time it was written. */
  created: string;
  /** The VM's spec (kernel and initrd are not needed to restore; disks must be where they were). */
  spec: VmSpec;
  /** Each disk's size when saved: a restore refuses a disk that changed size. */
  diskBytes: number[];
  /** The board's own state (Arm64VirtState, X86MachineState). */
  machine: MachineState;
  ram: { pageSize: number; pages: number; nonZeroPages: number };
}

/**
 * The spec a VM restored from `header` runs with: the saved one under `name`, without what belongs
 * to the saving VM's process (its gdb server, a DTB dump, its vsock socket path: the restored VM
 * uses its own default path).
 */
export function specForRestore(header: SnapshotHeader, name?: string): VmSpec {
  const s = header.spec;
  return {
    ...s,
    name: name ?? s.name,
    dumpDtb: undefined,
    gdb: undefined,
    vsock: s.vsock && { cid: s.vsock.cid },
  };
}

/** What write() reports. */
export interface SnapshotStats {
  bytes: number;
  nonZeroPages: number;
  ms: number;
}

function diskSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

/** True when the 4 KiB page at word `w` of `words` is all zeros. */
function zeroPage(words: Int32Array, w: number): boolean {
  for (let i = w, end = w + PAGE_SIZE / 4; i < end; i++) if (words[i] !== 0) return false;
  return true;
}

/**
 * Write a snapshot of `machine` (already saved with Machine.saveState) and `mem` to `path`
 * (through a temporary file renamed into place, so a failed write leaves no partial snapshot).
 */
export function writeSnapshot(
  path: string,
  spec: VmSpec,
  machine: MachineState,
  mem: GuestMemory,
): SnapshotStats {
  const t0 = Date.now();
  const words = mem.i32;
  const pages = mem.ramSize / PAGE_SIZE;
  const nonZero = new Uint8Array(pages);
  let count = 0;
  for (let p = 0; p < pages; p++) {
    if (!zeroPage(words, p * (PAGE_SIZE / 4))) {
      nonZero[p] = 1;
      count++;
    }
  }
  const header: SnapshotHeader = {
    typevisor: VMM_VERSION,
    created: new Date().toISOString(),
    spec: { ...spec, dumpDtb: undefined, gdb: undefined },
    diskBytes: spec.disks.map((d) => diskSize(d.path)),
    machine,
    ram: { pageSize: PAGE_SIZE, pages, nonZeroPages: count },
  };
  const json = Buffer.from(JSON.stringify(header));
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w', 0o600);
  } catch (e) {
    throw new UserError(`cannot write the snapshot ${path}: ${(e as Error).message}`, 1);
  }
  let bytes = 0;
  const put = (b: Uint8Array): void => {
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    bytes += b.length;
  };
  const u32s = (...v: number[]): Buffer => {
    const b = Buffer.alloc(4 * v.length);
    v.forEach((x, i) => b.writeUInt32LE(x >>> 0, 4 * i));
    return b;
  };
  try {
    put(SNAPSHOT_MAGIC);
    put(u32s(SNAPSHOT_FORMAT, json.length));
    put(json);
    for (let p = 0; p < pages;) {
      if (!nonZero[p]) {
        p++;
        continue;
      }
      let n = 1;
      while (n < RUN_PAGES && p + n < pages && nonZero[p + n]) n++;
      const raw = mem.u8.subarray(p * PAGE_SIZE, (p + n) * PAGE_SIZE);
      const packed = deflateRawSync(raw, { level: 1, strategy: zc.Z_DEFAULT_STRATEGY });
      const stored = packed.length < raw.length ? packed : raw;
      put(u32s(p, n, stored.length));
      put(stored);
      p += n;
    }
    put(u32s(END, count, 0));
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    rmSync(tmp, { force: true });
    throw new UserError(`cannot write the snapshot ${path}: ${(e as Error).message}`, 1);
  }
  return { bytes, nonZeroPages: count, ms: Date.now() - t0 };
}

/** A snapshot file opened for reading: its header, checked; loadRam() reads the rest. */
export class SnapshotReader {
  readonly header: SnapshotHeader;
  /** File offset of the first RAM record. */
  private readonly ramAt: number;
  readonly size: number;

  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new UserError(`snapshot ${path}: ${(e as Error).message}`);
    }
    try {
      this.size = fstatSync(fd).size;
      const head = Buffer.alloc(16);
      const got = readSync(fd, head, 0, 16, 0);
      if (got < 8 || !head.subarray(0, 8).equals(SNAPSHOT_MAGIC)) {
        throw new UserError(
          `${path} is not a typevisor snapshot (it does not start with the snapshot magic)`,
        );
      }
      if (got < 16) throw this.truncated(got, 16);
      const version = head.readUInt32LE(8);
      const len = head.readUInt32LE(12);
      if (version !== SNAPSHOT_FORMAT) {
        throw new UserError(
          `snapshot ${path} has format version ${version}; this typevisor (${VMM_VERSION}) reads format version ${SNAPSHOT_FORMAT} only`,
        );
      }
      if (len > MAX_HEADER)
        throw new UserError(`snapshot ${path}: its header claims ${len} bytes, more than a header can be`);
      if (16 + len > this.size) throw this.truncated(this.size, 16 + len);
      const json = Buffer.alloc(len);
      if (readSync(fd, json, 0, len, 16) !== len) throw this.truncated(this.size, 16 + len);
      let header: SnapshotHeader;
      try {
        header = JSON.parse(json.toString('utf8')) as SnapshotHeader;
      } catch (e) {
        throw new UserError(`snapshot ${path}: its header is not valid JSON (${(e as Error).message})`);
      }
      if (!header || typeof header !== 'object' || !header.spec || !header.machine || !header.ram)
        throw new UserError(`snapshot ${path}: its header lacks the spec, machine or RAM section`);
      const m = header.machine as unknown as Record<string, unknown>;
      const parts = header.spec.arch === 'x86_64' ? X86_STATE_PARTS : ARM64_VIRT_STATE_PARTS;
      for (const k of parts.lists)
        if (!Array.isArray(m[k]))
          throw new UserError(`snapshot ${path}: its machine state lacks the ${k} list`);
      for (const k of parts.objects)
        if (typeof m[k] !== 'object' || m[k] === null)
          throw new UserError(`snapshot ${path}: its machine state lacks the ${k}`);
      if (header.ram.pageSize !== PAGE_SIZE)
        throw new UserError(`snapshot ${path}: page size ${header.ram.pageSize}, expected ${PAGE_SIZE}`);
      this.header = header;
      this.ramAt = 16 + len;
    } finally {
      closeSync(fd);
    }
  }

  private truncated(have: number, need: number): UserError {
    return new UserError(
      `snapshot ${this.path} is truncated: it ends at byte ${have}, and its contents go on past byte ${need}`,
    );
  }

  /**
   * Check that a VM built from `spec` can take this snapshot: the same vCPU count and memory size,
   * the same devices, disks of the same size. Errors name what differs.
   */
  checkSpec(spec: VmSpec): void {
    const s = this.header.spec;
    const problems: string[] = [];
    const cmp = (what: string, saved: unknown, now: unknown): void => {
      if (JSON.stringify(saved) !== JSON.stringify(now))
        problems.push(`${what}: snapshot ${JSON.stringify(saved)}, now ${JSON.stringify(now)}`);
    };
    cmp('memory (MiB)', s.memoryMiB, spec.memoryMiB);
    cmp('vCPUs', s.cpus, spec.cpus);
    cmp('console', s.console, spec.console);
    cmp('disks', s.disks.length, spec.disks.length);
    cmp('NICs', (s.nets ?? []).length, (spec.nets ?? []).length);
    cmp('rng', s.rng, spec.rng);
    cmp('balloon', !!s.balloon, !!spec.balloon);
    cmp('vsock', !!s.vsock, !!spec.vsock);
    spec.disks.forEach((d, i) => {
      const want = this.header.diskBytes[i];
      const now = diskSize(d.path);
      if (now < 0) problems.push(`disk ${i} ${d.path} is missing`);
      else if (want !== undefined && want >= 0 && now !== want)
        problems.push(
          `disk ${i} ${d.path} is ${now} bytes, it was ${want} bytes when the snapshot was taken`,
        );
    });
    if (problems.length > 0)
      throw new UserError(`snapshot ${this.path} does not fit this VM: ${problems.join('; ')}`);
  }

  /** Read the guest RAM into `mem` (fresh, all zero). */
  loadRam(mem: GuestMemory): { pages: number; ms: number } {
    const t0 = Date.now();
    const pages = this.header.ram.pages;
    if (mem.ramSize !== pages * PAGE_SIZE) {
      throw new UserError(
        `snapshot ${this.path} holds ${(pages * PAGE_SIZE) / 1048576} MiB of RAM; this VM has ${mem.ramSize / 1048576} MiB`,
      );
    }
    const fd = openSync(this.path, 'r');
    try {
      let pos = this.ramAt;
      const rec = Buffer.alloc(12);
      let buf = Buffer.alloc(RUN_PAGES * PAGE_SIZE + 1024);
      let loaded = 0;
      for (;;) {
        if (readSync(fd, rec, 0, 12, pos) !== 12) throw this.truncated(this.size, pos + 12);
        pos += 12;
        const first = rec.readUInt32LE(0);
        const n = rec.readUInt32LE(4);
        const len = rec.readUInt32LE(8);
        if (first === END) {
          if (n !== loaded)
            throw new UserError(
              `snapshot ${this.path} is damaged: ${loaded} RAM pages read, its end says ${n}`,
            );
          break;
        }
        if (n === 0 || n > RUN_PAGES || first + n > pages || len === 0 || len > n * PAGE_SIZE)
          throw new UserError(
            `snapshot ${this.path} is damaged: a RAM record at byte ${pos - 12} is out of range`,
          );
        if (len > buf.length) buf = Buffer.alloc(len);
        if (readSync(fd, buf, 0, len, pos) !== len) throw this.truncated(this.size, pos + len);
        pos += len;
        const dst = mem.u8.subarray(first * PAGE_SIZE, (first + n) * PAGE_SIZE);
        if (len === n * PAGE_SIZE) dst.set(buf.subarray(0, len));
        else {
          let out: Buffer;
          try {
            out = inflateRawSync(buf.subarray(0, len), { maxOutputLength: n * PAGE_SIZE });
          } catch (e) {
            throw new UserError(
              `snapshot ${this.path} is damaged: RAM at byte ${pos - len}: ${(e as Error).message}`,
            );
          }
          if (out.length !== n * PAGE_SIZE)
            throw new UserError(
              `snapshot ${this.path} is damaged: RAM at byte ${pos - len} holds ${out.length} bytes, not ${n * PAGE_SIZE}`,
            );
          dst.set(out);
        }
        loaded += n;
      }
      return { pages: loaded, ms: Date.now() - t0 };
    } finally {
      closeSync(fd);
    }
  }
}

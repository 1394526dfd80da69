// virtio-blk (virtio 1.2, "Block Device"): one request queue over a raw image file.
//
// I/O is synchronous (fs.readSync/writeSync/fsyncSync at explicit positions) for simplicity: the VMM
// runs the guest on one thread and the request completes before the guest's QueueNotify store
// returns. Reads and writes go straight between the file and the guest buffers (views of guest RAM
// returned by GuestMemory.slice/sliceForWrite), without an intermediate copy.
//
// A completed VIRTIO_BLK_T_FLUSH means fsync() returned: the data is on the host's disk.

import * as fs from 'node:fs';
import { UserError } from '../../host/errors.js';
import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';
import type { Chain, Segment } from './queue.js';

export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;

export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

export const SECTOR_SIZE = 512;
export const VIRTIO_BLK_ID_BYTES = 20;

const QUEUE_SIZE = 256;
const HEADER_BYTES = 16;

export interface VirtioBlkOptions {
  /** Raw disk image. */
  path: string;
  readOnly?: boolean;
  /** Serial number returned by VIRTIO_BLK_T_GET_ID (at most 20 bytes are used). */
  serial?: string;
}

/** Walk `len` bytes of `segs` starting `skip` bytes in, calling fn(addr, n) for each piece. */
function eachPiece(
  segs: Segment[],
  skip: number,
  len: number,
  fn: (addr: number, n: number, pos: number) => void,
): void {
  let s = skip;
  let pos = 0;
  for (const seg of segs) {
    if (pos >= len) return;
    if (s >= seg.len) {
      s -= seg.len;
      continue;
    }
    const n = Math.min(seg.len - s, len - pos);
    fn(seg.addr + s, n, pos);
    pos += n;
    s = 0;
  }
}

export class VirtioBlk extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.BLOCK;
  readonly queueMax = [QUEUE_SIZE];
  readonly features: bigint;
  readonly readOnly: boolean;
  readonly path: string;
  /** Disk size in 512-byte sectors (a partial last sector is not visible to the guest). */
  readonly capacity: number;
  private fd: number;
  private readonly serial: Uint8Array;
  /** Completed requests by outcome (diagnostics and tests). */
  readonly stats = { reads: 0, writes: 0, flushes: 0, errors: 0, unsupported: 0 };

  constructor(opts: VirtioBlkOptions) {
    super(60);
    this.path = opts.path;
    this.readOnly = !!opts.readOnly;
    try {
      this.fd = fs.openSync(opts.path, this.readOnly ? 'r' : 'r+');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why =
        err.code === 'ENOENT'
          ? 'no such file'
          : err.code === 'EACCES' || err.code === 'EROFS'
            ? `not writable (${err.code}); add ',ro' to attach it read-only`
            : (err.message ?? String(e));
      throw new UserError(`disk ${opts.path}: cannot open: ${why}`);
    }
    const st = fs.fstatSync(this.fd);
    if (!st.isFile() && !st.isBlockDevice()) {
      fs.closeSync(this.fd);
      throw new UserError(`disk ${opts.path}: not a regular file`);
    }
    this.capacity = Math.floor(st.size / SECTOR_SIZE);
    let f =
      (1n << BigInt(VIRTIO_BLK_F_SEG_MAX)) |
      (1n << BigInt(VIRTIO_BLK_F_BLK_SIZE)) |
      (1n << BigInt(VIRTIO_BLK_F_FLUSH));
    if (this.readOnly) f |= 1n << BigInt(VIRTIO_BLK_F_RO);
    this.features = f;
    // Config: capacity (u64) @0, size_max @8, seg_max @12, geometry @16, blk_size @20.
    this.cfg.setBigUint64(0, BigInt(this.capacity), true);
    this.cfg.setUint32(12, QUEUE_SIZE - 2, true);
    this.cfg.setUint32(20, SECTOR_SIZE, true);
    this.serial = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    this.serial.set(new TextEncoder().encode(opts.serial ?? 'typevisor').subarray(0, VIRTIO_BLK_ID_BYTES));
  }

  close(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = -1;
    }
  }

  notify(q: number): void {
    if (q !== 0) return;
    const vq = this.queue(0);
    let any = false;
    for (let chain = vq.pop(); chain; chain = vq.pop()) {
      this.handle(chain);
      any = true;
    }
    if (any) this.host.usedBuffers(0);
  }

  /** Writes the status byte (last writable byte) and completes the request. */
  private finish(chain: Chain, status: number, dataLen: number): void {
    if (status === VIRTIO_BLK_S_IOERR) this.stats.errors++;
    if (status === VIRTIO_BLK_S_UNSUPP) this.stats.unsupported++;
    const last = chain.writable[chain.writable.length - 1];
    if (!last) {
      this.complete(0, chain, 0);
      return;
    }
    const b = this.host.mem.sliceForWrite(last.addr + last.len - 1, 1);
    if (b) b[0] = status;
    this.complete(0, chain, b ? dataLen + 1 : 0);
  }

  private handle(chain: Chain): void {
    if (chain.error || chain.readableLen < HEADER_BYTES || chain.writableLen < 1) {
      this.finish(chain, VIRTIO_BLK_S_IOERR, 0);
      return;
    }
    const mem = this.host.mem;
    const hdr = this.queue(0).readBytes(chain, 0, HEADER_BYTES);
    const hv = new DataView(hdr.buffer);
    const type = hv.getUint32(0, true);
    const sectorLo = hv.getUint32(8, true);
    const sectorHi = hv.getUint32(12, true);
    // Sectors beyond 2^32 * 2^21 bytes are far past any image; treat as out of range.
    const sector = sectorHi >= 0x20_0000 ? Infinity : sectorHi * 0x1_0000_0000 + sectorLo;
    const inLen = chain.writableLen - 1; // data the device may write (before the status byte)

    switch (type) {
      case VIRTIO_BLK_T_IN: {
        if (inLen % SECTOR_SIZE !== 0 || sector + inLen / SECTOR_SIZE > this.capacity) {
          this.finish(chain, VIRTIO_BLK_S_IOERR, 0);
          return;
        }
        const base = sector * SECTOR_SIZE;
        try {
          eachPiece(chain.writable, 0, inLen, (addr, n, pos) => {
            const view = mem.sliceForWrite(addr, n)!;
            let done = 0;
            while (done < n) {
              const r = fs.readSync(this.fd, view, done, n - done, base + pos + done);
              if (r <= 0) {
                view.fill(0, done);
                break;
              }
              done += r;
            }
          });
        } catch {
          this.finish(chain, VIRTIO_BLK_S_IOERR, 0);
          return;
        }
        this.stats.reads++;
        this.finish(chain, VIRTIO_BLK_S_OK, inLen);
        return;
      }
      case VIRTIO_BLK_T_OUT: {
        const outLen = chain.readableLen - HEADER_BYTES;
        if (this.readOnly) {
          // virtio 1.2 5.2.6.1: IOERR for a write to a device offering VIRTIO_BLK_F_RO; write nothing.
          this.finish(chain, VIRTIO_BLK_S_IOERR, 0);
          return;
        }
        if (outLen % SECTOR_SIZE !== 0 || sector + outLen / SECTOR_SIZE > this.capacity) {
          this.finish(chain, VIRTIO_BLK_S_IOERR, 0);
          return;
        }
        const base = sector * SECTOR_SIZE;
        try {
          eachPiece(chain.readable, HEADER_BYTES, outLen, (addr, n, pos) => {
            const view = mem.slice(addr, n)!;
            let done = 0;
            while (done < n) done += fs.writeSync(this.fd, view, done, n - done, base + pos + done);
          });
        } catch {
          this.finish(chain, VIRTIO_BLK_S_IOERR, 0);
          return;
        }
        this.stats.writes++;
        this.finish(chain, VIRTIO_BLK_S_OK, 0);
        return;
      }
      case VIRTIO_BLK_T_FLUSH: {
        try {
          if (!this.readOnly) fs.fsyncSync(this.fd);
        } catch {
          this.finish(chain, VIRTIO_BLK_S_IOERR, 0);
          return;
        }
        this.stats.flushes++;
        this.finish(chain, VIRTIO_BLK_S_OK, 0);
        return;
      }
      case VIRTIO_BLK_T_GET_ID: {
        const n = Math.min(inLen, VIRTIO_BLK_ID_BYTES);
        const written = this.queue(0).writeBytes(chain, this.serial.subarray(0, n));
        this.finish(chain, VIRTIO_BLK_S_OK, written);
        return;
      }
      default:
        this.finish(chain, VIRTIO_BLK_S_UNSUPP, 0);
    }
  }
}

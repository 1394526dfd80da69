// virtio-balloon (virtio 1.2, "Traditional Memory Balloon Device"): inflateq (0), deflateq (1) and
// the optional statsq (2, VIRTIO_BALLOON_F_STATS_VQ). The host sets a target (num_pages, in 4 KiB
// pages) and the driver reports what it gave back in `actual`. Inflated pages are tracked and the
// device zeroes them (the guest may not rely on their contents until it deflates them); guest RAM
// is one ArrayBuffer, so nothing is returned to the host's allocator.

import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';

export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
export const BALLOON_PAGE_SIZE = 4096;

const INFLATE = 0;
const DEFLATE = 1;
const STATS = 2;

/** Statistic tags (virtio 1.2 5.5.6.3). */
export const BALLOON_STAT_NAMES: Record<number, string> = {
  0: 'swap-in',
  1: 'swap-out',
  2: 'major-faults',
  3: 'minor-faults',
  4: 'free-memory',
  5: 'total-memory',
  6: 'available-memory',
  7: 'disk-caches',
  8: 'hugetlb-allocations',
  9: 'hugetlb-failures',
};

export interface VirtioBalloonOptions {
  /** Offer the statistics queue (default true). */
  stats?: boolean;
  /** Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM (default true). */
  deflateOnOom?: boolean;
}

export class VirtioBalloon extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.BALLOON;
  readonly queueMax: number[];
  readonly features: bigint;
  /** Guest page frame numbers currently in the balloon. */
  readonly inflated = new Set<number>();
  /** Latest statistics from the guest, by tag name (bytes or counts as the spec defines). */
  stats: Record<string, bigint> = {};
  /** Called when the guest changes `actual` or sends statistics. */
  onChange: () => void = () => {};
  /** Invalid page numbers the guest sent (outside RAM); they are ignored. */
  rejectedPages = 0;
  private statsHead: number | undefined;

  constructor(opts: VirtioBalloonOptions = {}) {
    super(8);
    const stats = opts.stats ?? true;
    this.queueMax = stats ? [256, 256, 4] : [256, 256];
    let f = 0n;
    if (stats) f |= 1n << BigInt(VIRTIO_BALLOON_F_STATS_VQ);
    if (opts.deflateOnOom ?? true) f |= 1n << BigInt(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
    this.features = f;
  }

  /** Target balloon size in pages (config num_pages). */
  get targetPages(): number {
    return this.cfg.getUint32(0, true);
  }

  /** Pages the driver says are in the balloon (config actual). */
  get actualPages(): number {
    return this.cfg.getUint32(4, true);
  }

  /** Ask the guest to hold `pages` 4 KiB pages in the balloon. */
  setTarget(pages: number): void {
    const p = Math.max(0, Math.min(0xffff_ffff, Math.floor(pages)));
    this.cfg.setUint32(0, p, true);
    if (this.attached) this.host.configChanged();
  }

  /** Ask the guest to leave it `bytes` of memory (target = RAM size minus `bytes`). */
  setGuestMemory(bytes: number): void {
    const ram = this.host.mem.ramSize;
    this.setTarget(Math.max(0, (ram - bytes) / BALLOON_PAGE_SIZE));
  }

  configWrite(offset: number, size: number, value: number): void {
    // Only `actual` (offset 4) is driver-writable.
    if (offset < 4 || offset + size > 8) return;
    for (let i = 0; i < size; i++) this.config[offset + i] = (value >>> (8 * i)) & 0xff;
    this.onChange();
  }

  notify(q: number): void {
    if (q === INFLATE || q === DEFLATE) this.pages(q);
    else if (q === STATS && this.queueMax.length > STATS) this.takeStats();
  }

  private pages(q: number): void {
    const vq = this.queue(q);
    const mem = this.host.mem;
    const firstPfn = Math.ceil(mem.ramBase / BALLOON_PAGE_SIZE);
    const endPfn = Math.floor(mem.ramEnd / BALLOON_PAGE_SIZE);
    let any = false;
    for (let chain = vq.pop(); chain; chain = vq.pop()) {
      any = true;
      if (!chain.error) {
        const bytes = vq.readBytes(chain);
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let o = 0; o + 4 <= bytes.length; o += 4) {
          const pfn = dv.getUint32(o, true);
          if (pfn < firstPfn || pfn >= endPfn) {
            this.rejectedPages++;
            continue;
          }
          if (q === INFLATE) {
            if (!this.inflated.has(pfn)) {
              this.inflated.add(pfn);
              mem.sliceForWrite(pfn * BALLOON_PAGE_SIZE, BALLOON_PAGE_SIZE)?.fill(0);
            }
          } else {
            this.inflated.delete(pfn);
          }
        }
      }
      vq.push(chain.head, 0);
    }
    if (any) this.host.usedBuffers(q);
  }

  private takeStats(): void {
    const vq = this.queue(STATS);
    for (let chain = vq.pop(); chain; chain = vq.pop()) {
      if (this.statsHead !== undefined) {
        // The driver should only have one stats buffer outstanding; return the older one.
        vq.push(this.statsHead, 0);
      }
      this.statsHead = chain.head;
      if (chain.error) continue;
      const bytes = vq.readBytes(chain);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out: Record<string, bigint> = {};
      for (let o = 0; o + 10 <= bytes.length; o += 10) {
        const tag = dv.getUint16(o, true);
        out[BALLOON_STAT_NAMES[tag] ?? `tag-${tag}`] = dv.getBigUint64(o + 2, true);
      }
      this.stats = out;
      this.onChange();
    }
  }

  /** Ask the guest for fresh statistics: the held stats buffer goes back; the driver refills it. */
  requestStats(): boolean {
    if (this.statsHead === undefined || !this.attached || this.queueMax.length <= STATS) return false;
    const vq = this.queue(STATS);
    vq.push(this.statsHead, 0);
    this.statsHead = undefined;
    this.host.usedBuffers(STATS);
    return true;
  }

  saveState(): unknown {
    return {
      inflated: [...this.inflated],
      statsHead: this.statsHead ?? null,
      rejectedPages: this.rejectedPages,
    };
  }

  restoreState(state: unknown): void {
    const s = state as { inflated: number[]; statsHead: number | null; rejectedPages: number };
    this.inflated.clear();
    for (const p of s.inflated) this.inflated.add(p);
    this.statsHead = s.statsHead ?? undefined;
    this.rejectedPages = s.rejectedPages ?? 0;
  }

  override reset(): void {
    this.inflated.clear();
    this.statsHead = undefined;
    this.cfg.setUint32(4, 0, true);
  }
}

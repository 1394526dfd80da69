// virtio-balloon (virtio 1.2, "Traditional Memory Balloon Device"): inflateq, deflateq, the optional
// statsq (VIRTIO_BALLOON_F_STATS_VQ) and reporting_vq (VIRTIO_BALLOON_F_REPORTING, free page
// reporting). The host sets a target (num_pages, in 4 KiB pages) and the driver reports what it
// gave back in `actual`.
//
// Memory goes back to the host: pages the guest puts in the balloon, and free pages it reports, are
// dropped from guest RAM with madvise (host/madvise.ts), so the VM process's resident memory falls;
// they read zero afterwards and the next guest touch maps a fresh zero page. Deflation therefore
// has nothing to do but forget the pages (they are already zero). Only whole host pages can be
// dropped, and guest RAM need not start on a host page boundary, so a run of inflated pages is
// dropped together with its inflated neighbours; the rest of a new balloon page is zeroed. Cached
// translated code on a dropped page is invalidated (GuestMemory.noteWrite).
//
// Queue numbering: Linux numbers only the queues it uses (inflate, deflate, then stats if
// STATS_VQ was negotiated, then reporting if REPORTING was), so a queue's role follows from the
// negotiated features, not from the spec's fixed indexes.

import { VirtioDeviceBase } from './device.js';
import { VIRTIO_ID } from './mmio.js';
import type { Segment } from './queue.js';
import { dropPages, hostPageSize } from '../../host/madvise.js';

export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
export const VIRTIO_BALLOON_F_REPORTING = 5;
export const BALLOON_PAGE_SIZE = 4096;

type Role = 'inflate' | 'deflate' | 'stats' | 'reporting';

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
  /** Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest takes pages back when it runs short (default true). */
  deflateOnOom?: boolean;
  /** Offer free page reporting (default true). */
  reporting?: boolean;
}

export class VirtioBalloon extends VirtioDeviceBase {
  readonly deviceId = VIRTIO_ID.BALLOON;
  readonly queueMax: number[];
  readonly features: bigint;
  /** Guest page frame numbers currently in the balloon. */
  readonly inflated = new Set<number>();
  /** Latest statistics from the guest, by tag name (bytes or counts as the spec defines). */
  stats: Record<string, bigint> = {};
  /** When the latest statistics arrived (Date.now()), 0 before any. */
  statsAt = 0;
  /** Called when the guest changes `actual` or sends statistics. */
  onChange: () => void = () => {};
  /** Invalid page numbers the guest sent (outside RAM); they are ignored. */
  rejectedPages = 0;
  /** Bytes of free memory the guest reported (free page reporting), in total. */
  reportedBytes = 0;
  private statsHead: number | undefined;
  private readonly offered: Role[];

  constructor(opts: VirtioBalloonOptions = {}) {
    super(8);
    const stats = opts.stats ?? true;
    const reporting = opts.reporting ?? true;
    let f = 0n;
    if (stats) f |= 1n << BigInt(VIRTIO_BALLOON_F_STATS_VQ);
    if (opts.deflateOnOom ?? true) f |= 1n << BigInt(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
    if (reporting) f |= 1n << BigInt(VIRTIO_BALLOON_F_REPORTING);
    this.features = f;
    this.offered = [
      'inflate',
      'deflate',
      ...(stats ? ['stats' as const] : []),
      ...(reporting ? ['reporting' as const] : []),
    ];
    // Linux's driver needs at least 32 entries in the reporting queue (PAGE_REPORTING_CAPACITY).
    this.queueMax = this.offered.map((r) => (r === 'stats' ? 4 : r === 'reporting' ? 32 : 256));
  }

  /** The role of each queue the driver uses, in queue-number order. */
  private roles(): Role[] {
    return this.offered.filter(
      (r) =>
        (r !== 'stats' || this.negotiated(VIRTIO_BALLOON_F_STATS_VQ)) &&
        (r !== 'reporting' || this.negotiated(VIRTIO_BALLOON_F_REPORTING)),
    );
  }

  private queueOf(role: Role): number {
    return this.roles().indexOf(role);
  }

  /** Target balloon size in pages (config num_pages). */
  get targetPages(): number {
    return this.cfg.getUint32(0, true);
  }

  /** Pages the driver says are in the balloon (config actual). */
  get actualPages(): number {
    return this.cfg.getUint32(4, true);
  }

  /** Whether the driver uses the statistics queue. */
  get statsActive(): boolean {
    return this.attached && this.host.active && this.queueOf('stats') >= 0;
  }

  /** Ask the guest to hold `pages` 4 KiB pages in the balloon. */
  setTarget(pages: number): void {
    const p = Math.max(0, Math.min(0xffff_ffff, Math.floor(pages)));
    if (p === this.targetPages) return;
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
    switch (this.roles()[q]) {
      case 'inflate':
      case 'deflate':
        this.pages(q, this.roles()[q] === 'inflate');
        break;
      case 'stats':
        this.takeStats(q);
        break;
      case 'reporting':
        this.takeReports(q);
        break;
    }
  }

  private pages(q: number, inflate: boolean): void {
    const vq = this.queue(q);
    const mem = this.host.mem;
    const firstPfn = Math.ceil(mem.ramBase / BALLOON_PAGE_SIZE);
    const endPfn = Math.floor(mem.ramEnd / BALLOON_PAGE_SIZE);
    const added: number[] = [];
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
          if (inflate) {
            if (!this.inflated.has(pfn)) {
              this.inflated.add(pfn);
              added.push(pfn);
            }
          } else {
            // The page is zero (dropped or zeroed when it went in): the guest takes it as it is.
            this.inflated.delete(pfn);
          }
        }
      }
      vq.push(chain.head, 0);
    }
    if (added.length > 0) this.drop(added);
    if (any) this.host.usedBuffers(q);
  }

  /** Give the new balloon pages `pfns` back to the host; afterwards they read zero. */
  private drop(pfns: number[]): void {
    const mem = this.host.mem;
    const base = mem.ramBase / BALLOON_PAGE_SIZE;
    // Neighbours that may share a host page with a run's first or last page.
    const reach = Math.ceil(hostPageSize() / BALLOON_PAGE_SIZE);
    pfns.sort((a, b) => a - b);
    for (let i = 0; i < pfns.length;) {
      let j = i + 1;
      while (j < pfns.length && pfns[j] === pfns[j - 1] + 1) j++;
      const first = pfns[i];
      const end = pfns[j - 1] + 1;
      let lo = first;
      let hi = end;
      while (lo > first - reach && this.inflated.has(lo - 1)) lo--;
      while (hi < end + reach && this.inflated.has(hi)) hi++;
      const off = (first - base) * BALLOON_PAGE_SIZE;
      const len = (end - first) * BALLOON_PAGE_SIZE;
      const d = dropPages(mem.u8, (lo - base) * BALLOON_PAGE_SIZE, (hi - lo) * BALLOON_PAGE_SIZE);
      // Zero what of the new pages could not be dropped (partial host pages at the ends).
      const keepFrom = Math.max(off, Math.min(d.start, off + len));
      const keepTo = Math.min(off + len, Math.max(d.end, off));
      if (d.start >= d.end) mem.u8.fill(0, off, off + len);
      else {
        mem.u8.fill(0, off, keepFrom);
        mem.u8.fill(0, keepTo, off + len);
      }
      mem.noteWrite(off, len);
      i = j;
    }
  }

  /** Free page reporting: each buffer is a run of free guest pages; drop them and hand them back. */
  private takeReports(q: number): void {
    const vq = this.queue(q);
    const mem = this.host.mem;
    let any = false;
    for (let chain = vq.pop(); chain; chain = vq.pop()) {
      any = true;
      // The queue checked that every segment lies in guest RAM; a malformed chain keeps the
      // segments gathered before the fault, which are just as valid.
      const segs: Segment[] = [...chain.writable, ...chain.readable];
      for (const s of segs) {
        if (s.len === 0) continue;
        const off = s.addr - mem.ramBase;
        const d = dropPages(mem.u8, off, s.len);
        if (d.end > d.start) mem.noteWrite(d.start, d.end - d.start);
        this.reportedBytes += s.len;
      }
      vq.push(chain.head, 0);
    }
    if (any) this.host.usedBuffers(q);
  }

  private takeStats(q: number): void {
    const vq = this.queue(q);
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
      this.statsAt = Date.now();
      this.onChange();
    }
  }

  /**
   * Ask the guest for fresh statistics (the spec's way: the device returns the stats buffer it
   * holds; the driver refills it and adds it again). False when there is no buffer to return.
   */
  requestStats(): boolean {
    const q = this.attached ? this.queueOf('stats') : -1;
    if (this.statsHead === undefined || q < 0 || !this.host.active) return false;
    this.queue(q).push(this.statsHead, 0);
    this.statsHead = undefined;
    this.host.usedBuffers(q);
    return true;
  }

  saveState(): unknown {
    return {
      inflated: [...this.inflated],
      statsHead: this.statsHead ?? null,
      rejectedPages: this.rejectedPages,
      reportedBytes: this.reportedBytes,
    };
  }

  restoreState(state: unknown): void {
    const s = state as {
      inflated: number[];
      statsHead: number | null;
      rejectedPages: number;
      reportedBytes?: number;
    };
    this.inflated.clear();
    for (const p of s.inflated) this.inflated.add(p);
    this.statsHead = s.statsHead ?? undefined;
    this.rejectedPages = s.rejectedPages ?? 0;
    this.reportedBytes = s.reportedBytes ?? 0;
  }

  override reset(): void {
    this.inflated.clear();
    this.statsHead = undefined;
    this.cfg.setUint32(4, 0, true);
  }
}

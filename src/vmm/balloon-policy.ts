// The balloon's host side over time: statistics polled every interval (Firecracker's
// stats_polling_interval_s, Fuchsia's balloon-interval) and Fuchsia's automatic policy. Fuchsia's
// vmm, on each poll, reads the guest's available memory and sets the balloon's target to the
// current target plus (available pages - threshold pages): a guest with more than the threshold
// available gives the excess back, one with less gets pages back. Its balloon-demand-page
// (deflate on the guest's demand) is the device's DEFLATE_ON_OOM feature.

import { BALLOON_PAGE_SIZE, type VirtioBalloon } from '../devices/virtio/balloon.js';

const MiB = 1024 * 1024;

/** Balloon settings of a VM spec. */
export interface BalloonSpec {
  /** Memory the guest keeps at boot (MiB): the balloon starts with the rest as its target. */
  targetMiB?: number;
  /** Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM (default true). */
  deflateOnOom?: boolean;
  /** Seconds between statistics polls; 0 or absent: none. */
  statsIntervalS?: number;
  /** Fuchsia's automatic policy: keep this much guest memory available (MiB); needs statsIntervalS. */
  autoThresholdMiB?: number;
}

/** The balloon spec of `true` (a balloon with defaults) or a BalloonSpec; undefined for no balloon. */
export function balloonSpec(b: boolean | BalloonSpec | undefined): BalloonSpec | undefined {
  return b === true ? {} : b || undefined;
}

/** Fuchsia's target (pages) after a statistics report: current + available - threshold, within RAM. */
export function fuchsiaTarget(
  currentPages: number,
  availableBytes: bigint,
  thresholdMiB: number,
  ramBytes: number,
): number {
  const available = Number(availableBytes / BigInt(BALLOON_PAGE_SIZE));
  const threshold = Math.ceil((thresholdMiB * MiB) / BALLOON_PAGE_SIZE);
  return Math.max(0, Math.min(ramBytes / BALLOON_PAGE_SIZE, currentPages + available - threshold));
}

export class BalloonPoller {
  private timer: NodeJS.Timeout | undefined;
  private seen = 0;
  private interval = 0;

  constructor(
    readonly dev: VirtioBalloon,
    readonly ramBytes: number,
    readonly spec: BalloonSpec,
  ) {
    dev.onChange = () => {
      if (dev.statsAt !== this.seen) {
        this.seen = dev.statsAt;
        this.onStats();
      }
    };
    this.setInterval(spec.statsIntervalS ?? 0);
  }

  /** Seconds between polls (0: polling off). */
  get intervalS(): number {
    return this.interval;
  }

  setInterval(seconds: number): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.interval = seconds;
    if (seconds > 0) {
      this.timer = setInterval(() => this.dev.requestStats(), seconds * 1000);
      this.timer.unref();
    }
  }

  private onStats(): void {
    const threshold = this.spec.autoThresholdMiB;
    const avail = this.dev.stats['available-memory'];
    if (threshold === undefined || this.interval <= 0 || avail === undefined) return;
    this.dev.setTarget(fuchsiaTarget(this.dev.targetPages, avail, threshold, this.ramBytes));
  }

  close(): void {
    this.setInterval(0);
    this.dev.onChange = () => {};
  }
}

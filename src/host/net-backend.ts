// The host end of a NIC, as the virtio-net device (devices/virtio/net.ts) drives it and the host's
// backends (passt.ts, tap.ts) implement it.

/** Ethernet header plus an 802.1Q tag. */
export const ETH_OVERHEAD = 18;
/** Largest frame with segmentation offload (Linux's GSO limit of 64 KiB plus an Ethernet header), without the virtio header. */
export const MAX_GSO_FRAME = 65536 + ETH_OVERHEAD;

/** Offloads the guest accepted for frames it receives (what a TAP may then hand over: TUNSETOFFLOAD). */
export interface RxOffloads {
  csum: boolean;
  tso4: boolean;
  tso6: boolean;
  ecn: boolean;
}

/**
 * The host end of a NIC. A backend hands received frames to the device through the `receive`
 * callback given to start(); pause()/resume() are flow control from the device. start() may be
 * called again (a new device after a reboot): the new callbacks replace the old ones. The backend
 * belongs to whoever opened it, which closes it.
 */
export interface NetBackend {
  /** Frames on this backend carry the 12-byte virtio_net_hdr (a TAP with IFF_VNET_HDR). */
  readonly vnetHdr: boolean;
  /** Begin delivering frames; `txReady` is called when a backend that refused a frame can take more. */
  start(receive: (frame: Uint8Array) => void, txReady: () => void): void;
  /**
   * Send one frame given as pieces (views of guest RAM, valid only during the call). Returns false
   * when the backend cannot take more now (the frame was taken; send no more until txReady).
   */
  transmit(pieces: Uint8Array[], length: number): boolean;
  /**
   * Present when the backend takes and gives checksum and segmentation offloads in the virtio header
   * (vnetHdr backends only): the device then offers them, and tells the backend what the guest
   * accepted for receiving (all false after a reset).
   */
  setOffloads?(rx: RxOffloads): void;
  /** Hand over, synchronously, frames that are ready now (optional; called between vCPU slices). */
  poll?(): void;
  pause(): void;
  resume(): void;
  close(): void;
}

/**
 * A backend's poll() (between the engine's run slices) takes the frames waiting for the guest only
 * once at least this many bytes wait; less waits for the event loop, which a busy guest turns every
 * few milliseconds. A stream from the host then reaches the guest without that delay, and a trickle
 * (the ACKs of a stream the guest sends) still comes in batches: taking every ACK at once slowed the
 * guest's sending by 15-25% (measurements in tap.ts and passt.ts).
 */
export const POLL_MIN_BYTES = 64 * 1024;

/** Bytes in a batch of frames (what a backend's reader thread counts as waiting, and its owner as taken). */
export function batchBytes(frames: ArrayBuffer[]): number {
  let n = 0;
  for (const f of frames) n += f.byteLength;
  return n;
}

// What a --deterministic VM takes from the host instead of the host's own entropy and clock, so that
// a run repeats: "random" bytes (virtio-rng, /chosen/rng-seed) from a fixed-seed generator, and a
// wall clock (the PL031 RTC) that starts at a fixed date and follows the guest's counter (which
// follows the instruction count in that mode).

/** The RTC's date at count 0 in a deterministic run: 2026-01-01T00:00:00Z. */
export const DETERMINISTIC_EPOCH_MS = Date.UTC(2026, 0, 1);

/**
 * A fill function of the same byte stream every run (xorshift128, Marsaglia 2003: four words of
 * state, a few shifts per word; written here because it is ten lines and must never change with a
 * library's version). Deterministic by design, so not for secrets: a guest run with --deterministic
 * has no unpredictable entropy, which is the point of that mode.
 */
export function deterministicBytes(seed = 0x9e3779b9): (buf: Uint8Array) => void {
  let x = seed | 0 || 1;
  let y = 362436069;
  let z = 521288629;
  let w = 88675123;
  return (buf) => {
    for (let i = 0; i < buf.length; i += 4) {
      const t = x ^ (x << 11);
      x = y;
      y = z;
      z = w;
      w = w ^ (w >>> 19) ^ (t ^ (t >>> 8));
      for (let k = 0; k < 4 && i + k < buf.length; k++) buf[i + k] = (w >>> (8 * k)) & 0xff;
    }
  };
}

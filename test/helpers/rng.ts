// A seeded xorshift32 generator for tests that need repeatable random data.

/** Returns successive uint32 values of xorshift32 from `seed` (0 is replaced by 1). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

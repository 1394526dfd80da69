// The 64-bit helpers on int32 halves against BigInt, on edge values and a seeded random sweep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xorshift32 } from './helpers/rng.js';
import { mul64, rhi, smul32, smulh64, umul32, umulh64 } from '../src/cpu/arm64/int64.js';

const M64 = (1n << 64n) - 1n;
const u64 = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
const s64 = (lo: number, hi: number): bigint => BigInt.asIntN(64, u64(lo, hi));

const EDGES = [
  0, 1, 2, 3, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0xffff, 0x10000, 0x1ffff,
  0xdeadbeef,
].map((v) => v | 0); // register halves are int32

function* values(n: number): Generator<number> {
  yield* EDGES;
  const next = xorshift32(0x9e3779b9);
  for (let i = 0; i < n; i++) yield next() | 0;
}

test('umul32 and smul32 give the exact 64-bit product', () => {
  const vs = [...values(300)];
  for (const a of vs) {
    for (const b of vs) {
      const lo = umul32(a, b);
      assert.equal(u64(lo, rhi), BigInt(a >>> 0) * BigInt(b >>> 0), `umul32(${a}, ${b})`);
      const slo = smul32(a, b);
      assert.equal(s64(slo, rhi), BigInt(a | 0) * BigInt(b | 0), `smul32(${a}, ${b})`);
    }
  }
});

test('umul32 where the double product rounds up across a 2^32 boundary', () => {
  // 0xfffffffd * 0xaaaaaaab has low half 0xffffffff, and the double (ulp 2^11 there) rounds up.
  for (const [a, b] of [
    [0xfffffffd, 0xaaaaaaab],
    [0xaaaaaaab, 0xfffffffd],
  ]) {
    const lo = umul32(a | 0, b | 0);
    assert.equal(u64(lo, rhi), BigInt(a) * BigInt(b));
  }
});

test('mul64, umulh64 and smulh64 match the 128-bit product', () => {
  const vs = [...values(120)];
  for (let i = 0; i < vs.length; i++) {
    for (let j = 0; j < vs.length; j++) {
      const alo = vs[i]!;
      const ahi = vs[(i * 7 + 3) % vs.length]!;
      const blo = vs[j]!;
      const bhi = vs[(j * 5 + 1) % vs.length]!;
      const pu = u64(alo, ahi) * u64(blo, bhi);
      const ps = s64(alo, ahi) * s64(blo, bhi);
      let lo = mul64(alo, ahi, blo, bhi);
      assert.equal(u64(lo, rhi), pu & M64, 'mul64');
      lo = umulh64(alo, ahi, blo, bhi);
      assert.equal(u64(lo, rhi), pu >> 64n, 'umulh64');
      lo = smulh64(alo, ahi, blo, bhi);
      assert.equal(s64(lo, rhi), ps >> 64n, 'smulh64');
    }
  }
});

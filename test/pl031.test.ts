// PL031 RTC: registers as in the PrimeCell RTC (PL031) Technical Reference Manual, with a fake clock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pl031 } from '../src/devices/pl031.js';

const DR = 0x00;
const MR = 0x04;
const LR = 0x08;
const CR = 0x0c;
const IMSC = 0x10;
const RIS = 0x14;
const MIS = 0x18;
const ICR = 0x1c;

function rtc(startMs: number) {
  let now = startMs;
  const irq: boolean[] = [];
  const d = new Pl031(
    (l) => irq.push(l),
    () => now,
  );
  return {
    d,
    r: (o: number): number => d.read(o, 4),
    w: (o: number, v: number): void => d.write(o, 4, v),
    advance: (ms: number): void => {
      now += ms;
    },
    level: (): boolean => (irq.length ? irq[irq.length - 1] : false),
  };
}

test('identification registers', () => {
  const { r, d } = rtc(0);
  [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1].forEach((v, i) => assert.equal(r(0xfe0 + 4 * i), v));
  d.close();
});

test('DR follows the host clock in seconds; LR sets the count', () => {
  const t0 = Date.UTC(2026, 10, 23, 10, 0, 0) + 400;
  const { r, w, advance, d } = rtc(t0);
  assert.equal(r(DR), Math.floor(t0 / 1000));
  advance(599);
  assert.equal(r(DR), Math.floor(t0 / 1000), 'still the same second');
  advance(1);
  assert.equal(r(DR), Math.floor(t0 / 1000) + 1);
  w(LR, 1000);
  assert.equal(r(DR), 1000);
  assert.equal(r(LR), 1000);
  advance(5000);
  assert.equal(r(DR), 1005);
  // Load a value far in the future (uint32)
  w(LR, 0xffff_fffe);
  advance(3000);
  assert.equal(r(DR), 0x0000_0001, 'wraps modulo 2^32');
  // DR is read-only
  w(DR, 5);
  assert.equal(r(DR), 1);
  // CR start bit: reads 1 (started at reset, as on QEMU's virt board); it cannot be cleared
  assert.equal(r(CR), 1);
  w(CR, 0);
  assert.equal(r(CR), 1);
  // Bad sizes are ignored
  assert.equal(d.read(DR, 2), 0);
  d.write(LR, 1, 7);
  assert.equal(r(DR), 1);
  d.close();
});

test('match interrupt: RIS when DR reaches MR, MIS with IMSC, ICR clears', () => {
  const { r, w, advance, level, d } = rtc(1_000_000);
  w(LR, 500);
  w(MR, 503);
  assert.equal(r(MR), 503);
  w(IMSC, 1);
  assert.equal(r(RIS), 0);
  advance(2000);
  assert.equal(r(RIS), 0);
  advance(1000);
  assert.equal(r(DR), 503);
  assert.equal(r(RIS), 1);
  assert.equal(r(MIS), 1);
  assert.equal(level(), true);
  w(ICR, 1);
  assert.equal(r(RIS), 0);
  assert.equal(level(), false);
  advance(5000);
  assert.equal(r(RIS), 0, 'no new match once passed');
  // Masked: RIS set, MIS and the line stay low
  w(IMSC, 0);
  w(MR, r(DR) + 1);
  advance(1000);
  assert.equal(r(RIS), 1);
  assert.equal(r(MIS), 0);
  assert.equal(level(), false);
  // Writing MR equal to the current count matches at once
  w(ICR, 1);
  w(MR, r(DR));
  assert.equal(r(RIS), 1);
  d.close();
});

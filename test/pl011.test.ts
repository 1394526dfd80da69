// PL011 UART: registers and interrupts as described in the PrimeCell UART (PL011) Technical Reference
// Manual and as Linux's amba-pl011 driver uses them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pl011 } from '../src/devices/pl011.js';

const DR = 0x000;
const RSR = 0x004;
const FR = 0x018;
const IBRD = 0x024;
const FBRD = 0x028;
const LCR_H = 0x02c;
const CR = 0x030;
const IFLS = 0x034;
const IMSC = 0x038;
const RIS = 0x03c;
const MIS = 0x040;
const ICR = 0x044;
const DMACR = 0x048;

// FR bits (TRM): BUSY 3, RXFE 4, TXFF 5, RXFF 6, TXFE 7
const BUSY = 1 << 3;
const RXFE = 1 << 4;
const TXFF = 1 << 5;
const RXFF = 1 << 6;
const TXFE = 1 << 7;
// Interrupt bits: RX 4, TX 5, RT 6
const RXI = 1 << 4;
const TXI = 1 << 5;
const RTI = 1 << 6;
const FEN = 1 << 4;

function uart() {
  const irq: boolean[] = [];
  const out: number[] = [];
  const u = new Pl011((l) => irq.push(l));
  u.onTx = (b) => out.push(b);
  const r = (o: number): number => u.read(o, 4);
  const w = (o: number, v: number): void => u.write(o, 4, v);
  const level = (): boolean => (irq.length ? irq[irq.length - 1] : false);
  return { u, r, w, out, irq, level };
}

test('identification registers', () => {
  const { r } = uart();
  const ids = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
  ids.forEach((v, i) => assert.equal(r(0xfe0 + 4 * i), v));
  // amba bus: PeriphID 0x00?41011 and the PrimeCell ID 0xb105f00d
  const pid = ids.slice(0, 4).reduce((a, v, i) => a | (v << (8 * i)), 0);
  assert.equal(pid & 0x000fffff, 0x41011);
});

test('reset values and plain registers', () => {
  const { u, r, w } = uart();
  assert.equal(r(FR), TXFE | RXFE);
  assert.equal(r(CR), 0x300, 'TXE | RXE');
  assert.equal(r(IFLS), 0x12);
  assert.equal(r(IMSC), 0);
  assert.equal(r(RIS), 0);
  w(IBRD, 0x1_0027);
  assert.equal(r(IBRD), 0x27, '16-bit divisor');
  w(FBRD, 0xff);
  assert.equal(r(FBRD), 0x3f, '6-bit fraction');
  w(LCR_H, 0x70);
  assert.equal(r(LCR_H), 0x70);
  w(CR, 0x301);
  assert.equal(r(CR), 0x301);
  w(DMACR, 7);
  assert.equal(r(DMACR), 7);
  w(RSR, 0xff);
  assert.equal(r(RSR), 0);
  // Bad sizes and offsets: zero, no effect, no throw
  assert.equal(u.read(FR, 8), 0);
  assert.equal(u.read(FR + 1, 1), 0);
  assert.equal(u.read(0x2000, 4), 0);
  u.write(CR, 8, 0);
  u.write(0x5000, 4, 1);
  assert.equal(r(CR), 0x301);
  // Byte access to a register works (the driver uses 32-bit accesses; earlycon may use 8-bit)
  u.write(DR, 1, 0x41);
});

test('transmit: bytes go out at once, FR never reports full or busy', () => {
  const { r, w, out } = uart();
  for (const ch of 'hello') w(DR, ch.charCodeAt(0) | 0x700); // upper bits ignored
  assert.equal(String.fromCharCode(...out), 'hello');
  const fr = r(FR);
  assert.equal(fr & (TXFF | BUSY), 0);
  assert.equal(fr & TXFE, TXFE);
  // With the FIFO enabled too
  w(LCR_H, FEN | 0x60);
  for (let i = 0; i < 100; i++) w(DR, 0x30);
  assert.equal(out.length, 105);
  assert.equal(r(FR) & TXFF, 0);
});

test('transmit interrupt: raised after writes and when unmasked, cleared by ICR', () => {
  const { r, w, level } = uart();
  w(LCR_H, FEN | 0x60);
  w(DR, 0x41);
  assert.equal(r(RIS) & TXI, TXI, 'FIFO drained through the trigger level');
  assert.equal(r(MIS), 0, 'masked');
  assert.equal(level(), false);
  w(IMSC, TXI);
  assert.equal(r(MIS), TXI);
  assert.equal(level(), true);
  w(ICR, TXI);
  assert.equal(r(RIS) & TXI, 0);
  assert.equal(level(), false);
  w(DR, 0x42);
  assert.equal(level(), true, 'the next write raises it again');
  // Masking TXIM drops the line; unmasking it later (start_tx with more to send) raises it at once
  w(IMSC, 0);
  w(ICR, 0x7ff);
  assert.equal(level(), false);
  w(IMSC, TXI);
  assert.equal(r(MIS), TXI);
  assert.equal(level(), true);
});

test('receive without FIFO: one-byte holding register', () => {
  const { u, r, w, level } = uart();
  assert.equal(u.rxSpace(), 1);
  assert.equal(u.pushRx([0x61, 0x62]), 1, 'only what fits');
  assert.equal(u.rxSpace(), 0);
  assert.equal(r(FR) & (RXFE | RXFF), RXFF);
  assert.equal(r(RIS) & RXI, RXI, 'one byte reaches the trigger level');
  w(IMSC, RXI | RTI);
  assert.equal(level(), true);
  assert.equal(r(DR), 0x61, 'data with no error bits');
  assert.equal(r(FR) & (RXFE | RXFF), RXFE);
  assert.equal(r(RIS) & (RXI | RTI), 0);
  assert.equal(level(), false);
  assert.equal(r(DR), 0, 'empty FIFO');
});

test('receive FIFO: trigger levels, timeout interrupt, masks', () => {
  const { u, r, w, level } = uart();
  w(LCR_H, FEN | 0x60);
  assert.equal(u.rxSpace(), 32);
  w(IMSC, RXI);
  // IFLS RX level 1/2 (reset): 16 entries
  u.pushRx(Array.from({ length: 15 }, (_, i) => 0x40 + i));
  assert.equal(r(RIS) & RXI, 0);
  assert.equal(r(RIS) & RTI, RTI, 'data below the level: receive timeout');
  assert.equal(level(), false, 'RT masked');
  u.pushRx([0x4f]);
  assert.equal(r(RIS) & RXI, RXI);
  assert.equal(level(), true);
  assert.equal(r(DR), 0x40);
  assert.equal(r(RIS) & RXI, 0, 'below the level again');
  assert.equal(level(), false);
  // RTIM unmasked: the timeout interrupt fires for the data left
  w(IMSC, RXI | RTI);
  assert.equal(r(MIS), RTI);
  assert.equal(level(), true);
  // ICR clears RT until new data arrives
  w(ICR, RTI);
  assert.equal(r(RIS) & RTI, 0);
  assert.equal(level(), false);
  u.pushRx([0x50]);
  assert.equal(r(RIS) & RTI, RTI);
  // Level 1/8 = 4 entries (IFLS RXIFLSEL = 0), 7/8 = 28 (RXIFLSEL = 4)
  w(IFLS, 0 << 3);
  assert.equal(r(RIS) & RXI, RXI);
  w(IFLS, 4 << 3);
  assert.equal(r(RIS) & RXI, 0);
  // Drain everything in order: 0x41..0x4f, 0x50
  const got: number[] = [];
  while (!(r(FR) & RXFE)) got.push(r(DR));
  assert.deepEqual(got, [...Array.from({ length: 15 }, (_, i) => 0x41 + i), 0x50]);
  assert.equal(r(RIS) & (RXI | RTI), 0);
  assert.equal(level(), false);
  // Full FIFO
  assert.equal(u.pushRx(new Uint8Array(40).fill(1)), 32);
  assert.equal(r(FR) & RXFF, RXFF);
  assert.equal(u.rxSpace(), 0);
});

test('pushRxWhenReady never drops input and keeps the order', () => {
  const { u, r, w } = uart();
  w(LCR_H, FEN | 0x60);
  const data = Array.from({ length: 100 }, (_, i) => i);
  u.pushRxWhenReady(data.slice(0, 40));
  u.pushRxWhenReady(data.slice(40));
  assert.equal(u.rxSpace(), 0);
  assert.equal(u.pendingRx, 68);
  const got: number[] = [];
  for (let i = 0; i < 100; i++) {
    assert.equal(r(FR) & RXFE, 0);
    got.push(r(DR));
  }
  assert.deepEqual(got, data);
  assert.equal(r(FR) & RXFE, RXFE);
  assert.equal(u.pendingRx, 0);
  // Before the FIFO is enabled the holding register takes one byte at a time
  w(LCR_H, 0x60);
  u.pushRxWhenReady([7, 8, 9]);
  assert.equal(u.pendingRx, 2);
  w(LCR_H, FEN | 0x60);
  assert.equal(u.pendingRx, 0, 'enabling the FIFO makes room');
  assert.deepEqual([r(DR), r(DR), r(DR)], [7, 8, 9]);
});

test('break condition: DR.BE with a NUL, RSR.BE, RIS.BE until ICR', () => {
  const { u, r, w } = uart();
  w(LCR_H, FEN | 0x60);
  u.pushRx([0x61]);
  assert.equal(u.sendBreak(), true);
  u.pushRx([0x62]);
  assert.equal(r(RIS) & (1 << 9), 1 << 9, 'BEIS');
  assert.equal(r(DR), 0x61);
  assert.equal(r(RSR), 0);
  // DR: BE is bit 10, data 0; RSR: BE is bit 2
  assert.equal(r(DR), 1 << 10);
  assert.equal(r(RSR), 1 << 2);
  w(RSR, 0); // ECR
  assert.equal(r(RSR), 0);
  assert.equal(r(DR), 0x62);
  w(ICR, 1 << 9);
  assert.equal(r(RIS) & (1 << 9), 0);
  // Not when the FIFO is full
  u.pushRx(new Uint8Array(32));
  assert.equal(u.sendBreak(), false);
  // rxReady: UART and receiver enabled and an RX interrupt unmasked (what the console waits for)
  assert.equal(u.rxReady, false);
  w(CR, 0x301);
  w(IMSC, RTI);
  assert.equal(u.rxReady, true);
});

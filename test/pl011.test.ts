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
const OEI = 1 << 10;
const FEN = 1 << 4;
// DR bit 11 and RSR bit 3: overrun
const DR_OE = 1 << 11;
const RSR_OE = 1 << 3;

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

test('receive without FIFO: one-byte holding register, overrun when it is not read', () => {
  const { u, r, w, level } = uart();
  assert.equal(u.rxSpace(), 1);
  assert.equal(u.receive([0x61]), 1);
  assert.equal(u.rxSpace(), 0);
  assert.equal(r(FR) & (RXFE | RXFF), RXFF, 'the holding register is full');
  assert.equal(r(RIS) & RXI, RXI, 'one byte reaches the trigger level');
  w(IMSC, RXI | RTI);
  assert.equal(level(), true);
  assert.equal(r(DR), 0x61, 'data with no error bits');
  assert.equal(r(FR) & (RXFE | RXFF), RXFE);
  assert.equal(r(RIS) & (RXI | RTI), 0);
  assert.equal(level(), false);
  assert.equal(r(DR), 0, 'empty FIFO');
  // A line that cannot be held back: 'b' fills the register, 'c' and 'd' are lost
  assert.equal(u.receive([0x62, 0x63, 0x64]), 1);
  assert.equal(r(RSR) & RSR_OE, RSR_OE, 'RSR.OE at once');
  assert.equal(r(RIS) & OEI, OEI);
  assert.equal(r(DR), 0x62, 'the character in the FIFO is still valid, without OE');
  u.receive([0x65]);
  assert.equal(r(DR), 0x65 | DR_OE, 'the next character to enter carries DR.OE');
  u.receive([0x66]);
  assert.equal(r(DR), 0x66, 'only that one');
  assert.equal(r(RSR) & RSR_OE, RSR_OE, 'RSR.OE stays until ECR');
  w(RSR, 0);
  assert.equal(r(RSR), 0);
  w(ICR, OEI);
  assert.equal(r(RIS) & OEI, 0);
});

test('receive FIFO: 32 entries, RXFF, trigger levels per IFLS, timeout interrupt, masks', () => {
  const { u, r, w, level } = uart();
  w(LCR_H, FEN | 0x60);
  assert.equal(u.rxSpace(), 32);
  w(IMSC, RXI);
  // IFLS RX level 1/2 (reset): 16 entries
  u.receive(Array.from({ length: 15 }, (_, i) => 0x40 + i));
  assert.equal(r(RIS) & RXI, 0);
  assert.equal(r(RIS) & RTI, RTI, 'data below the level: receive timeout');
  assert.equal(level(), false, 'RT masked');
  u.receive([0x4f]);
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
  u.receive([0x50]);
  assert.equal(r(RIS) & RTI, RTI);
  // Level 1/8 = 4 entries (IFLS RXIFLSEL = 0), 7/8 = 28 (RXIFLSEL = 4)
  w(IFLS, 0 << 3);
  assert.equal(r(RIS) & RXI, RXI);
  w(ICR, RXI);
  assert.equal(r(RIS) & RXI, 0, 'ICR clears RX while the fill stays above the level');
  w(IFLS, 4 << 3);
  assert.equal(r(RIS) & RXI, 0);
  // Drain everything in order: 0x41..0x4f, 0x50
  const got: number[] = [];
  while (!(r(FR) & RXFE)) got.push(r(DR));
  assert.deepEqual(got, [...Array.from({ length: 15 }, (_, i) => 0x41 + i), 0x50]);
  assert.equal(r(RIS) & (RXI | RTI), 0);
  assert.equal(level(), false);
  // Each level is reached exactly at its count
  for (const [sel, n] of [
    [0, 4],
    [1, 8],
    [2, 16],
    [3, 24],
    [4, 28],
  ]) {
    w(IFLS, sel << 3);
    u.receive(new Uint8Array(n - 1).fill(0x31));
    assert.equal(r(RIS) & RXI, 0, `IFLS ${sel}: ${n - 1} entries`);
    u.receive([0x32]);
    assert.equal(r(RIS) & RXI, RXI, `IFLS ${sel}: ${n} entries`);
    while (!(r(FR) & RXFE)) r(DR);
  }
  // Full FIFO
  assert.equal(u.receive(new Uint8Array(40).fill(1)), 32);
  assert.equal(r(FR) & RXFF, RXFF);
  assert.equal(u.rxSpace(), 0);
  assert.equal(r(RIS) & OEI, OEI, 'eight characters overran');
});

test('a polling guest gets input with every interrupt masked', () => {
  const { u, r, level } = uart();
  const input = new TextEncoder().encode('typed while nobody listens to interrupts\n');
  let backlog = input;
  const got: number[] = [];
  // The guest's loop: while (FR & RXFE); c = DR. The host offers the backlog between "slices".
  for (let slice = 0; slice < 200 && got.length < input.length; slice++) {
    backlog = backlog.subarray(u.offerRx(backlog));
    for (let i = 0; i < 100; i++) {
      if (r(FR) & RXFE) continue;
      got.push(r(DR));
    }
  }
  assert.equal(String.fromCharCode(...got), 'typed while nobody listens to interrupts\n');
  assert.equal(level(), false, 'no interrupt was ever unmasked');
  assert.equal(r(RSR), 0, 'a flow-controlled source never overruns');
});

test('flow-controlled input waits while Linux boots and is not eaten by its open-time drain', () => {
  const { u, r, w } = uart();
  const script = new TextEncoder().encode('echo one\necho two\n');
  const offer = (): number => u.offerRx(script);
  // earlycon: FR (TXFF), DR, FR (BUSY) per character
  for (const ch of 'Booting Linux') {
    r(FR);
    w(DR, ch.charCodeAt(0));
    r(FR);
    assert.equal(offer(), 0, 'earlycon is no listener');
  }
  // probe: IMSC = 0, ICR = all; console: CR saved, UARTEN | TXE set, characters, CR restored
  w(IMSC, 0);
  w(ICR, 0x7ff);
  w(LCR_H, FEN | 0x60);
  for (let line = 0; line < 3; line++) {
    const old = r(CR);
    w(CR, old | 0x101);
    for (const ch of 'console line\n') {
      r(FR);
      w(DR, ch.charCodeAt(0));
    }
    r(FR);
    w(CR, old);
    assert.equal(offer(), 0, 'the console is no listener');
  }
  // The tty opens: pl011_hwinit clears and unmasks RX and RX timeout while UARTEN is still clear
  w(ICR, 0x7f0);
  w(IMSC, RXI | RTI);
  assert.equal(offer(), 0, 'not yet: the drain is still to come');
  // pl011_startup: CR = UARTEN | RXE | TXE, then the drain (reads DR while FR says not empty) ...
  w(CR, 0x301);
  let drained = 0;
  for (let i = 0; i < 32; i++) {
    if (r(FR) & RXFE) break;
    r(DR);
    drained++;
  }
  assert.equal(drained, 0, 'nothing was in the FIFO to be discarded');
  // ... then RX and RX timeout interrupts unmasked (again): input flows
  w(IMSC, RXI | RTI);
  assert.equal(offer(), script.length);
  const got: number[] = [];
  while (!(r(FR) & RXFE)) got.push(r(DR));
  assert.equal(String.fromCharCode(...got), 'echo one\necho two\n');
});

test('flow control: RTS or DTR asserted means listening; a disabled receiver takes nothing', () => {
  const { u, w } = uart();
  assert.equal(u.rxListening, false);
  w(CR, 0x301 | (1 << 11)); // RTS
  assert.equal(u.rxListening, true);
  w(CR, 0x301 | (1 << 10)); // DTR
  assert.equal(u.rxListening, true);
  w(CR, 0x101 | (1 << 11)); // RXE off
  assert.equal(u.rxListening, false);
  assert.equal(u.offerRx([1, 2, 3]), 0);
  w(IMSC, RTI);
  assert.equal(u.offerRx([1, 2, 3]), 0, 'still off');
  w(CR, 0x300);
  assert.equal(u.rxListening, false, 'RX timeout unmasked but the UART disabled');
  w(CR, 0x301);
  assert.equal(u.rxListening, true, 'RX timeout unmasked, UART enabled');
  assert.equal(u.offerRx([1, 2, 3]), 1, 'what fits in the holding register');
  w(LCR_H, FEN);
  assert.equal(u.offerRx(new Uint8Array(40)), 31, 'what fits in the FIFO, no more');
});

test('break condition: DR.BE with a NUL, RSR.BE, RIS.BE until ICR', () => {
  const { u, r, w } = uart();
  w(LCR_H, FEN | 0x60);
  u.receive([0x61]);
  assert.equal(u.sendBreak(), true);
  u.receive([0x62]);
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
  u.receive(new Uint8Array(32));
  assert.equal(u.sendBreak(), false);
});

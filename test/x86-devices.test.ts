// The 8250 UART and the i8042 models on their own.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { I8042 } from '../src/devices/i8042.js';
import { Uart8250 } from '../src/devices/uart8250.js';

test('8250: transmit, LSR, divisor latch, receive with interrupt', () => {
  const out: number[] = [];
  const irq: boolean[] = [];
  const u = new Uart8250({ output: (b) => out.push(...b), setIrq: (l) => irq.push(l) });
  assert.equal(u.read(5) & 0x60, 0x60, 'THRE and TEMT');
  u.write(0, 0x41);
  assert.deepEqual(out, [0x41]);
  u.write(3, 0x83); // DLAB
  u.write(0, 0x01);
  u.write(1, 0x00);
  assert.equal(u.read(0), 0x01);
  u.write(3, 0x03);
  u.write(0, 0x42);
  assert.deepEqual(out, [0x41, 0x42], 'divisor writes are not transmitted');
  u.write(1, 0x01); // IER: receive interrupt
  assert.equal(u.read(2) & 0x0f, 0x01, 'no interrupt pending');
  u.receive(Uint8Array.of(0x61, 0x62));
  assert.equal(irq.at(-1), true);
  assert.equal(u.read(2) & 0x0f, 0x04, 'RX data available');
  assert.equal(u.read(5) & 1, 1);
  assert.equal(u.read(0), 0x61);
  assert.equal(u.read(0), 0x62);
  assert.equal(irq.at(-1), false);
  assert.equal(u.read(5) & 1, 0);
  u.write(7, 0x5a);
  assert.equal(u.read(7), 0x5a);
  u.write(4, 0x10); // loopback
  u.write(0, 0x77);
  assert.equal(u.read(0), 0x77);
  assert.deepEqual(out, [0x41, 0x42]);
});

test('i8042: self test, command byte, reset through 0xFE and through the output port', () => {
  let resets = 0;
  const k = new I8042(() => resets++);
  k.outb(0x64, 0xaa);
  assert.equal(k.in(0x64) & 1, 1);
  assert.equal(k.in(0x60), 0x55);
  k.outb(0x64, 0x60);
  k.outb(0x60, 0x47);
  k.outb(0x64, 0x20);
  assert.equal(k.in(0x60), 0x47);
  assert.equal(resets, 0);
  k.outb(0x64, 0xfe);
  assert.equal(resets, 1);
  assert.equal(k.resetRequested, true);
  k.outb(0x64, 0xd1);
  k.outb(0x60, 0xfe); // bit 0 clear: reset
  assert.equal(resets, 2);
});

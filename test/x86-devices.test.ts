// The 8250 UART and the i8042 models on their own.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { I8042, type I8042State } from '../src/devices/i8042.js';
import { Uart8250, type Uart8250State } from '../src/devices/uart8250.js';

// 8250 register offsets and bits, as a driver sees them.
const RBR = 0;
const IER = 1;
const IIR = 2;
const FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const DR = 0x01;
const OE = 0x02;
const BI = 0x10;

/** Read everything the guest would: LSR then RBR while DR is set. */
function drain(u: Uart8250): { byte: number; lsr: number }[] {
  const got: { byte: number; lsr: number }[] = [];
  for (let lsr = u.read(LSR); lsr & DR; lsr = u.read(LSR)) got.push({ lsr, byte: u.read(RBR) });
  return got;
}

test('8250: transmit, LSR, divisor latch, receive with interrupt', () => {
  const out: number[] = [];
  const irq: boolean[] = [];
  const u = new Uart8250({ output: (b) => out.push(...b), setIrq: (l) => irq.push(l) });
  assert.equal(u.read(LSR) & 0x60, 0x60, 'THRE and TEMT');
  u.write(RBR, 0x41);
  assert.deepEqual(out, [0x41]);
  u.write(LCR, 0x83); // DLAB
  u.write(0, 0x01);
  u.write(1, 0x00);
  assert.equal(u.read(0), 0x01);
  u.write(LCR, 0x03);
  u.write(RBR, 0x42);
  assert.deepEqual(out, [0x41, 0x42], 'divisor writes are not transmitted');
  assert.equal(u.txCount, 2);
  u.write(FCR, 0x07); // FIFOs on
  assert.equal(u.read(IIR) & 0xc0, 0xc0, 'IIR reports FIFOs enabled');
  u.write(IER, 0x01); // receive interrupt
  assert.equal(u.read(IIR) & 0x0f, 0x01, 'no interrupt pending');
  assert.equal(u.receive(Uint8Array.of(0x61, 0x62)), 2);
  assert.equal(irq.at(-1), true);
  assert.equal(u.read(IIR) & 0x0f, 0x04, 'RX data available');
  assert.equal(u.read(LSR) & DR, 1);
  assert.equal(u.read(RBR), 0x61);
  assert.equal(u.read(RBR), 0x62);
  assert.equal(irq.at(-1), false);
  assert.equal(u.read(LSR) & DR, 0);
  u.write(7, 0x5a);
  assert.equal(u.read(7), 0x5a);
});

test('8250: loopback sends THR to the receiver, reflects MCR in MSR and disconnects the line', () => {
  const out: number[] = [];
  const u = new Uart8250();
  u.onTx = (b) => out.push(b);
  u.write(FCR, 0x01);
  u.write(MCR, 0x10 | 0x0a); // loop, RTS, OUT2: what Linux's autoconfig tests
  assert.equal(u.read(MSR) & 0xf0, 0x90, 'DCD (from OUT2) and CTS (from RTS)');
  u.write(MCR, 0x10 | 0x05); // loop, DTR, OUT1
  assert.equal(u.read(MSR) & 0xf0, 0x60, 'RI (from OUT1) and DSR (from DTR)');
  u.write(RBR, 0x77);
  assert.equal(u.receive([0x31]), 0, 'the line is disconnected in loopback');
  assert.equal(u.offerRx([0x31]), 0);
  assert.equal(u.sendBreak(), false);
  assert.deepEqual(drain(u), [{ lsr: 0x61, byte: 0x77 }]);
  assert.deepEqual(out, [], 'nothing reached the line');
  assert.equal(u.txCount, 1);
  u.write(MCR, 0x08);
  assert.equal(u.read(MSR), 0xb0, 'DCD, DSR, CTS asserted out of loopback');
  u.write(RBR, 0x78);
  assert.deepEqual(out, [0x78]);
});

test('8250: 16-byte FIFO, overrun, and a 1-byte holding register with FIFOs off', () => {
  const u = new Uart8250();
  // FIFOs off (reset state): one byte of room; a second byte overwrites it and sets OE.
  assert.equal(u.rxSpace(), 1);
  assert.equal(u.receive([0x41]), 1);
  assert.equal(u.rxSpace(), 0);
  assert.equal(u.receive([0x42]), 1, 'the new byte replaces the unread one');
  let lsr = u.read(LSR);
  assert.equal(lsr & (OE | DR), OE | DR);
  assert.equal(u.read(LSR) & OE, 0, 'reading LSR clears OE');
  assert.equal(u.read(RBR), 0x42);
  assert.equal(u.receive([1, 2, 3]), 1, 'only the last of a burst is left to read');
  assert.deepEqual(
    drain(u).map((e) => e.byte),
    [3],
  );

  // FIFOs on: 16 bytes; the 17th and later are lost with OE, the first 16 stay in order.
  u.write(FCR, 0x01);
  assert.equal(u.rxSpace(), 16);
  const burst = Array.from({ length: 20 }, (_, i) => 0x61 + i);
  assert.equal(u.receive(burst), 16);
  assert.equal(u.rxSpace(), 0);
  lsr = u.read(LSR);
  assert.equal(lsr & OE, OE, 'overrun');
  const got = drain(u);
  assert.deepEqual(
    got.map((e) => e.byte),
    burst.slice(0, 16),
  );
  assert.ok(
    got.every((e) => (e.lsr & OE) === 0),
    'OE was cleared by the first LSR read',
  );
  // FCR bit 1 clears the receive FIFO; turning FIFOs off clears it too.
  u.receive([1, 2, 3]);
  u.write(FCR, 0x03);
  assert.equal(u.read(LSR) & DR, 0);
  u.receive([1, 2, 3]);
  u.write(FCR, 0x00);
  assert.equal(u.read(LSR) & DR, 0);
  assert.equal(u.rxSpace(), 1);
});

test('8250: offerRx takes only what fits, and only while the guest listens', () => {
  const line = Array.from({ length: 40 }, (_, i) => 0x30 + i);
  // Receive interrupt enabled, but OUT2 clear: not listening until OUT2 is set.
  const u = new Uart8250();
  u.write(FCR, 0x01);
  u.write(MCR, 0x00);
  u.write(IER, 0x01);
  assert.equal(u.rxListening, false);
  assert.equal(u.offerRx(line), 0);
  u.write(MCR, 0x08);
  assert.equal(u.rxListening, true);
  assert.equal(u.offerRx(line), 16, 'what fits in the FIFO');
  assert.equal(u.offerRx(line.slice(16)), 0, 'a full FIFO takes nothing');
  assert.equal(u.read(LSR) & OE, 0, 'and never overruns');
  assert.deepEqual([u.read(RBR), u.read(RBR)], [0x30, 0x31]);
  assert.equal(u.offerRx(line.slice(16)), 2, 'two entries freed');
  u.write(IER, 0x00);
  assert.equal(u.rxListening, false);

  // DTR or RTS alone.
  for (const mcr of [0x01, 0x02]) {
    const v = new Uart8250();
    v.write(MCR, 0);
    assert.equal(v.offerRx([0x41]), 0);
    v.write(MCR, mcr);
    assert.equal(v.offerRx([0x41, 0x42]), 1, `MCR 0x${mcr.toString(16)}: one byte fits with FIFOs off`);
  }

  // Polling LSR on an empty receiver, 16 times with no other access between.
  const p = new Uart8250();
  p.write(MCR, 0);
  for (let i = 0; i < 15; i++) p.read(LSR);
  assert.equal(p.offerRx([0x41]), 0, '15 polls are not enough');
  p.write(RBR, 0x2e); // a console write between polls starts the count again
  for (let i = 0; i < 15; i++) p.read(LSR);
  assert.equal(p.offerRx([0x41]), 0);
  p.read(LSR);
  assert.equal(p.rxListening, true);
  assert.equal(p.offerRx([0x41, 0x42]), 1);
  assert.equal(p.read(LSR) & DR, DR);
  assert.equal(p.read(RBR), 0x41);
});

test('8250: a break is a NUL that LSR reports with BI when it reaches the head', () => {
  const irq: boolean[] = [];
  const u = new Uart8250({ setIrq: (l) => irq.push(l) });
  u.write(FCR, 0x01);
  u.receive([0x61]);
  assert.equal(u.sendBreak(), true);
  u.receive([0x68]);
  // As Linux's 8250 driver reads: LSR, then RBR while DR is set; BI comes with the NUL only.
  const got = drain(u);
  assert.deepEqual(
    got.map((e) => [e.byte, e.lsr & BI]),
    [
      [0x61, 0],
      [0x00, BI],
      [0x68, 0],
    ],
  );
  assert.equal(got[0].lsr & 0x80, 0x80, 'FIFO error bit while the break is in the FIFO');
  assert.equal(got[2].lsr & 0x80, 0);
  // A break at the head of an empty FIFO shows at once; the line status interrupt reports it.
  u.write(IER, 0x05); // RDI | RLSI
  assert.equal(u.sendBreak(), true);
  assert.equal(irq.at(-1), true);
  assert.equal(u.read(IIR) & 0x0f, 0x06, 'receiver line status interrupt');
  assert.equal(u.read(LSR) & (BI | DR), BI | DR);
  assert.equal(u.read(IIR) & 0x0f, 0x04, 'then received data');
  assert.equal(u.read(RBR), 0);
  assert.equal(irq.at(-1), false);
  // Full FIFO: no break.
  assert.equal(u.receive(new Uint8Array(16)), 16);
  assert.equal(u.sendBreak(), false);
  // FIFOs off: the break takes the holding register.
  const h = new Uart8250();
  assert.equal(h.sendBreak(), true);
  assert.equal(h.sendBreak(), false);
  assert.deepEqual(drain(h), [{ byte: 0, lsr: 0x61 | BI }]);
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

/** Read port 0x60 while the status says OBF, noting the IRQ level after each read. */
function readKeys(k: I8042, irq: boolean[]): { bytes: number[]; irqAfter: boolean[] } {
  const bytes: number[] = [];
  const irqAfter: boolean[] = [];
  while (k.in(0x64) & 1) {
    bytes.push(k.in(0x60));
    irqAfter.push(irq.at(-1) ?? false);
  }
  return { bytes, irqAfter };
}

test('i8042: Ctrl-Alt-Del arrives as set 1 scancodes through port 0x60, one IRQ 1 edge per byte', () => {
  const irq: boolean[] = [];
  const k = new I8042(undefined, (l) => irq.push(l));
  assert.equal(k.in(0x64) & 1, 0);
  assert.equal(k.pressCtrlAltDel(), true);
  assert.equal(k.in(0x64) & 1, 1, 'OBF');
  assert.deepEqual(irq, [true], 'IRQ 1 raised (the default command byte enables it)');
  const { bytes, irqAfter } = readKeys(k, irq);
  // Ctrl, Alt, Delete pressed, then released, in set 1 (XLATE is set in the command byte).
  assert.deepEqual(bytes, [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d]);
  assert.deepEqual(irqAfter, [true, true, true, true, true, true, true, false]);
  // Each read with more to come lowers and raises the line: a new edge for every byte.
  assert.equal(irq.length, 1 + 2 * 7 + 1);
  assert.equal(k.in(0x64) & 1, 0);
  assert.equal(irq.at(-1), false);
});

test('i8042: set 2 without translation, no IRQ when masked, queue bound, disabled keyboard', () => {
  const irq: boolean[] = [];
  const k = new I8042(undefined, (l) => irq.push(l));
  k.outb(0x64, 0x60);
  k.outb(0x60, 0x24); // command byte: no XLATE, keyboard interrupt off
  assert.equal(k.pressCtrlAltDel(), true);
  assert.deepEqual(irq, [], 'interrupt disabled in the command byte');
  assert.equal(k.pressCtrlAltDel(), false, 'a second sequence does not fit the 16-byte queue');
  k.outb(0x64, 0x60);
  k.outb(0x60, 0x25); // enable the interrupt: the waiting byte raises it
  assert.deepEqual(irq, [true]);
  // A controller reply goes first and is read by polling: the line drops while it is at the head.
  k.outb(0x64, 0x20);
  assert.equal(irq.at(-1), false);
  assert.equal(k.in(0x60), 0x25);
  assert.equal(irq.at(-1), true);
  assert.deepEqual(
    readKeys(k, irq).bytes,
    [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14],
  );
  assert.equal(irq.at(-1), false);

  // Keyboard disabled: command byte bit 4, command 0xAD, or the keyboard told to stop scanning.
  k.outb(0x64, 0x60);
  k.outb(0x60, 0x35);
  assert.equal(k.pressCtrlAltDel(), false);
  assert.equal(k.in(0x64) & 1, 0, 'nothing queued');
  k.outb(0x64, 0xae);
  k.outb(0x64, 0x20);
  assert.equal(k.in(0x60), 0x25, '0xAE cleared bit 4');
  k.outb(0x64, 0xad);
  assert.equal(k.pressCtrlAltDel(), false);
  k.outb(0x64, 0x20);
  assert.equal(k.in(0x60) & 0x10, 0x10, '0xAD set bit 4');
  k.outb(0x64, 0xae);
  k.outb(0x60, 0xf5); // keyboard: disable scanning
  assert.equal(k.in(0x60), 0xfa);
  assert.equal(k.pressCtrlAltDel(), false);
  k.outb(0x60, 0xf4);
  assert.equal(k.in(0x60), 0xfa);
  assert.equal(k.pressCtrlAltDel(), true);
  assert.equal(k.kbdLevel, 11);
});

test('i8042: the keyboard answers the probe Linux atkbd makes', () => {
  const irq: boolean[] = [];
  const k = new I8042(undefined, (l) => irq.push(l));
  const send = (...b: number[]) => {
    const got: number[] = [];
    for (const v of b) {
      k.outb(0x60, v);
      got.push(...readKeys(k, irq).bytes);
    }
    return got;
  };
  assert.deepEqual(send(0xf2), [0xfa, 0xab, 0x41], 'MF2 keyboard ID, translated');
  assert.deepEqual(send(0xed, 0x00), [0xfa, 0xfa], 'set LEDs');
  assert.deepEqual(send(0xf3, 0x20), [0xfa, 0xfa], 'typematic rate');
  assert.deepEqual(send(0xf0, 0x00), [0xfa, 0xfa, 0x41], 'scancode set 2, translated');
  assert.deepEqual(send(0xf0, 0x03), [0xfa, 0xfe], 'set 3 is not offered');
  assert.deepEqual(send(0xff), [0xfa, 0xaa], 'reset and self test');
  assert.deepEqual(send(0xee), [0xee], 'echo');
  assert.ok(irq.includes(true), 'replies raise IRQ 1');
  // A byte to the keyboard empties its buffer (a pending key sequence is dropped with it).
  assert.equal(k.pressCtrlAltDel(), true);
  assert.deepEqual(send(0xf4), [0xfa]);
});

/** Everything a guest can read from the UART without changing it (DLAB registers included). */
function uartView(u: Uart8250): number[] {
  const lcr = u.read(LCR);
  u.write(LCR, lcr | 0x80);
  const dl = [u.read(0), u.read(1)];
  u.write(LCR, lcr & 0x7f);
  const regs = [u.read(IER), u.read(LCR), u.read(MCR), u.read(MSR), u.read(7)];
  u.write(LCR, lcr);
  return [...dl, ...regs];
}

test('8250: a state saved mid-FIFO restores into a new UART that reads on the same', () => {
  const a = new Uart8250();
  a.write(LCR, 0x83);
  a.write(0, 0x01); // divisor 0x0201
  a.write(1, 0x02);
  a.write(LCR, 0x1b); // 8E1
  a.write(FCR, 0x07); // FIFOs on, cleared
  a.write(IER, 0x05); // RX data and line status interrupts
  a.write(MCR, 0x0b);
  a.write(7, 0x5a);
  a.write(RBR, 0x41);
  // Fill the ring past its end so that its head is not at entry 0: 10 in, 8 out, 12 more in.
  a.receive([...Array(10).keys()].map((i) => 0x30 + i));
  for (let i = 0; i < 8; i++) a.read(RBR);
  a.receive([...Array(12).keys()].map((i) => 0x61 + i));
  assert.equal(a.sendBreak(), true);
  a.receive([0x7a, 0x7b, 0x7c]); // one too many: overrun
  assert.equal(a.rxLevel, 16);

  const saved: Uart8250State = JSON.parse(JSON.stringify(a.saveState()));
  assert.equal(saved.rx.length, 16);
  assert.equal(saved.rx[14], 0x100, 'the break entry');
  const irq: boolean[] = [];
  const b = new Uart8250({ setIrq: (l) => irq.push(l) });
  b.restoreState(saved);
  assert.deepEqual(irq, [], 'restoring drives no interrupt line (the irqchip holds its level)');
  assert.deepEqual(b.saveState(), saved);
  assert.equal(b.read(IIR), a.read(IIR), 'IIR: line status first (overrun)');
  assert.deepEqual(uartView(b), uartView(a));
  assert.deepEqual(drain(b), drain(a), 'the same bytes, break and overrun flags');
  assert.equal(b.read(IIR), a.read(IIR));
  assert.equal(b.txCount, 1);

  // FIFOs off: one byte in the holding register.
  const c = new Uart8250();
  c.write(IER, 0x01);
  c.receive([0x55]);
  const d = new Uart8250();
  d.restoreState(c.saveState());
  assert.deepEqual(drain(d), [{ byte: 0x55, lsr: 0x61 }]);

  // A guest part-way to counting as listening (it polled LSR 10 times on an empty FIFO).
  const e = new Uart8250();
  for (let i = 0; i < 10; i++) e.read(LSR);
  const f = new Uart8250();
  f.restoreState(JSON.parse(JSON.stringify(e.saveState())));
  assert.deepEqual(f.saveState(), e.saveState());
  for (let i = 0; i < 6; i++) f.read(LSR);
  assert.equal(f.rxListening, true, 'the polls before the snapshot count');
});

test('8250: a bad state is refused, naming the field, and changes nothing', () => {
  const u = new Uart8250();
  u.write(FCR, 0x01);
  u.receive([1, 2, 3]);
  const good = u.saveState();
  const before = JSON.stringify(u.saveState());
  const bad = (f: Record<string, unknown>, rx = good.rx) =>
    ({ fields: { ...good.fields, ...f }, rx }) as Uart8250State;
  assert.throws(() => u.restoreState(bad({ ier: 0x10 })), /uart8250: field ier is 16, out of range/);
  assert.throws(() => u.restoreState(bad({ lcr: 256 })), /uart8250: field lcr is 256/);
  assert.throws(() => u.restoreState(bad({ emptyPolls: 17 })), /uart8250: field emptyPolls is 17/);
  assert.throws(
    () => u.restoreState(bad({ thrEmptyPending: 1 })),
    /uart8250: field thrEmptyPending is 1, expected a boolean/,
  );
  assert.throws(() => u.restoreState(bad({ lsrErr: 0x01 })), /uart8250: field lsrErr is 1/);
  assert.throws(
    () => u.restoreState(bad({ fcr: 0 }, [1, 2])),
    /uart8250: rx must be an array of at most 1 entries \(FIFOs off\)/,
  );
  assert.throws(() => u.restoreState(bad({}, [1, 0x300])), /uart8250: rx\[1\] is 768/);
  const { mcr: _mcr, ...noMcr } = good.fields;
  assert.throws(() => u.restoreState({ fields: noMcr, rx: [] }), /uart8250: field mcr is undefined/);
  assert.throws(() => u.restoreState(null as unknown as Uart8250State), /uart8250: no saved state/);
  assert.equal(JSON.stringify(u.saveState()), before);
});

test('i8042: a state saved mid key sequence restores into a new controller that reads on the same', () => {
  const a = new I8042();
  assert.equal(a.pressCtrlAltDel(), true);
  assert.deepEqual([a.in(0x60), a.in(0x60), a.in(0x60)], [0x1d, 0x38, 0xe0]);
  a.outb(0x64, 0x20); // a controller reply goes ahead of the rest of the keys
  a.outb(0x64, 0x60); // and a command that waits for its data byte
  const saved: I8042State = JSON.parse(JSON.stringify(a.saveState()));
  assert.deepEqual(saved.out, [0x61]);
  assert.deepEqual(saved.kbd, [0x53, 0xe0, 0xd3, 0xb8, 0x9d]);
  const irq: boolean[] = [];
  const b = new I8042(undefined, (l) => irq.push(l));
  b.restoreState(saved);
  assert.deepEqual(irq, []);
  assert.deepEqual(b.saveState(), saved);
  for (const k of [a, b]) k.outb(0x60, 0x21); // the pending command's data: a new command byte
  const read = (k: I8042) => {
    const got: number[] = [];
    while (k.in(0x64) & 1) got.push(k.in(0x60));
    return got;
  };
  assert.deepEqual(read(b), read(a));
  for (const k of [a, b]) k.outb(0x64, 0x20);
  assert.deepEqual(read(b), [0x21]);
  assert.deepEqual(read(a), [0x21]);
  // A keyboard command waiting for its argument (set LEDs) carries over too.
  a.outb(0x60, 0xed);
  assert.deepEqual(read(a), [0xfa]);
  const c = new I8042();
  c.restoreState(a.saveState());
  c.outb(0x60, 0x07);
  assert.deepEqual(read(c), [0xfa], 'the LED byte is taken as the argument');
});

test('i8042: a bad state is refused, naming the field, and changes nothing', () => {
  const k = new I8042();
  k.pressCtrlAltDel();
  const good = k.saveState();
  const before = JSON.stringify(good);
  const bad = (f: Record<string, unknown>, q: Partial<Omit<I8042State, 'fields'>> = {}) =>
    ({ fields: { ...good.fields, ...f }, out: good.out, kbd: good.kbd, ...q }) as I8042State;
  assert.throws(() => k.restoreState(bad({ pending: 0x42 })), /i8042: field pending is 66/);
  assert.throws(() => k.restoreState(bad({ kbdPending: 0xf4 })), /i8042: field kbdPending is 244/);
  assert.throws(() => k.restoreState(bad({ status: 0x81 })), /i8042: field status is 129/);
  assert.throws(() => k.restoreState(bad({ cmdByte: -1 })), /i8042: field cmdByte is -1/);
  assert.throws(() => k.restoreState(bad({ kbdScanning: 'yes' })), /i8042: field kbdScanning is "yes"/);
  assert.throws(
    () => k.restoreState(bad({}, { kbd: Array(17).fill(0) })),
    /i8042: kbd must be an array of at most 16 bytes/,
  );
  assert.throws(() => k.restoreState(bad({}, { out: [0x100] })), /i8042: out\[0\] is 256, expected a byte/);
  assert.equal(JSON.stringify(k.saveState()), before);
});

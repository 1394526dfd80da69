// The KVM backend through the real KVM API, with small guests assembled from test/fixtures/x86.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { X86Machine } from '../src/machine/x86-microvm.js';
import { buildGuest, kvmMissing, toolsMissing } from './fixtures/x86/build.js';

const skip = kvmMissing() ?? toolsMissing();

function machine(opts: Partial<ConstructorParameters<typeof X86Machine>[0]> = {}) {
  const out: number[] = [];
  const m = new X86Machine({ memoryMiB: 16, output: (b) => out.push(...b), ...opts });
  return { m, text: () => Buffer.from(out).toString('latin1') };
}

test('guest (a): real mode -> long mode with paging writes to COM1', { skip }, async () => {
  const { m, text } = machine({ irqchip: false });
  try {
    m.load(0x1000, buildGuest('hello'));
    m.setupRealMode(0, 0x1000);
    const r = await m.run();
    assert.deepEqual(r, { reason: 'exit', code: 0 });
    assert.equal(text(), 'Hello from 64-bit long mode\n');
  } finally {
    m.close();
  }
});

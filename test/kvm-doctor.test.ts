// `typevisor doctor`: /dev/kvm checks and the measured exit and compute rates.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diagnose, formatReport, main } from '../src/cli/doctor.js';
import { computeLoopGuest, exitLoopGuest, realModeExitLoopGuest } from '../src/machine/kvm-probe.js';
import { kvmMissing } from './fixtures/x86/build.js';

test('probe guests encode the loop count', () => {
  assert.deepEqual([...exitLoopGuest(0x01020304).subarray(0, 5)], [0xb9, 4, 3, 2, 1]);
  assert.equal(computeLoopGuest(5).at(-1), 0xf4);
  assert.equal(realModeExitLoopGuest(5)[0], 0x66);
});

test('doctor measures exits and compute and gives a verdict', { skip: kvmMissing() }, async () => {
  const r = await diagnose({ exits: 2000, iterations: 200_000 });
  assert.equal(r.exists, true);
  assert.equal(r.opens, true);
  assert.equal(r.apiVersion, 12);
  assert.ok(r.exitRate! > 0);
  assert.ok(r.computeRate! > 0);
  assert.ok(r.verdict === 'hardware' || r.verdict === 'software');
  if (r.modules.includes('kvm_pvm')) assert.equal(r.verdict, 'software', 'kvm_pvm measured as software');
  const text = formatReport(r);
  assert.match(text, /KVM API version: 12/);
  assert.match(text, /port-I\/O exit loop: .* exits/);
  assert.match(text, /verdict: /);
});

test('doctor reports a missing /dev/kvm without throwing', async () => {
  const r = await diagnose({ kvmPath: '/nonexistent/kvm' });
  assert.equal(r.exists, false);
  assert.equal(r.verdict, 'unavailable');
  assert.match(formatReport(r), /absent/);
  assert.equal(await main(['--bogus']), 2);
});

// A bounded, fixed-seed sample of the differential test against qemu-aarch64 (npm run difftest runs
// the full thing). Skipped, saying why, when the cross compiler or qemu-aarch64 is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingTool } from './helpers/tools.js';
import { CLASSES, difftest, compare, type Outcome } from '../scripts/difftest.js';

const missing = missingTool('aarch64-linux-gnu-gcc', 'qemu-aarch64');

test('compare() reports a register, vector and memory mismatch', () => {
  const mk = (): Outcome => ({ signo: 0, faultIndex: 0, state: new Uint8Array(800), diffs: new Map() });
  const a = mk();
  const b = mk();
  assert.deepEqual(compare(a, b), []);
  b.state[8] = 1; // x1
  b.state[288 + 16 * 3] = 2; // v3
  b.diffs.set(5, 7);
  const d = compare(a, b);
  assert.equal(d.length, 3, d.join('\n'));
  assert.match(d[0], /^x1:/);
  assert.match(d[1], /^v3:/);
  assert.match(d[2], /^memory:/);
  const c = mk();
  c.signo = 11;
  assert.match(compare(a, c)[0], /outcome: qemu completed, typevisor signal 11/);
});

for (const cls of CLASSES) {
  test(`difftest sample: ${cls} (seed 1, 400 cases) matches qemu-aarch64`, { skip: missing }, async () => {
    const res = await difftest(1, 400, [cls], 5);
    assert.ok(res.completed > 40, `only ${res.completed} of 400 ${cls} cases ran to their end on QEMU`);
    assert.equal(res.failed, 0, res.reports.join('\n'));
  });
}

// The balloon gives memory back to the host, end to end: the default Linux guest (`create`, a
// background VM process) fills 300 MiB of tmpfs with random (non-zero) pages and deletes the file;
// `typevisor balloon NAME 128` then makes the VM process's resident memory (VmRSS) fall by at
// least 250 MiB (issue 13's target), and after deflating the guest uses the memory again. The RSS
// figures are printed. Statistics from the Linux driver come through GET /balloon/statistics.
// Waits are bounded; no duration is asserted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tv, tempStateDir, until } from './helpers/toolstack-guest.js';
import { apiRequest } from '../src/api/client.js';
import { buildDefaultImage } from '../src/image/build.js';

let skip: string | false = process.platform !== 'linux' ? 'needs Linux /proc/PID/status' : false;
if (!skip) {
  try {
    await buildDefaultImage({ log: () => {} });
  } catch (e) {
    skip = `the default guest image cannot be built here: ${(e as Error).message}`;
  }
}

const MiB = 1024 * 1024;
const FILL_MIB = 300;
/** Bound for a guest step on the software CPU (a loaded host can be slow; this is no timing check). */
const STEP_MS = 10 * 60 * 1000;

/** VmRSS of a process, bytes. */
function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `VmRSS of process ${pid}`);
  return Number(m[1]) * 1024;
}

const mib = (b: number) => (b / MiB).toFixed(0);

test(
  'linux guest: after freeing 300 MiB of tmpfs, `balloon NAME 128` gives >= 250 MiB back to the host; deflate gives it back to the guest',
  { skip, timeout: 4 * STEP_MS },
  async () => {
    const { dir, cleanup } = tempStateDir();
    try {
      const c = await tv(dir, ['create', '--name', 'bt', '--memory', '512', '--balloon'], {
        timeoutMs: 120_000,
      });
      assert.equal(c.code, 0, c.stderr);
      const rec = JSON.parse(readFileSync(join(dir, 'bt', 'vm.json'), 'utf8')) as { pid: number };
      const sock = connect(join(dir, 'bt', 'console.sock'));
      let out = '';
      sock.on('data', (d: Buffer) => (out += d.toString('latin1')));
      sock.on('error', () => {});
      // Each command prints a line "@@key=NUMBER" with a number the guest computes (the echo of the
      // typed command holds the unexpanded text, so it never matches).
      const run = async (cmd: string, key: string): Promise<string> => {
        const from = out.length;
        sock.write(`${cmd}\n`);
        const re = new RegExp(`(?:^|\\n)@@${key}=(\\d+)`);
        const m = await until(
          () => re.exec(out.slice(from)),
          `@@${key} from the guest; console:\n${out.slice(-2000)}`,
          STEP_MS,
        );
        return m![1];
      };
      const api = async (method: string, path: string, body?: unknown) => {
        const r = await apiRequest(join(dir, 'bt', 'control.sock'), method, path, body);
        return r as { status: number; body: Record<string, number> };
      };
      try {
        assert.equal(await run('echo @@up=$((40+2))', 'up'), '42');
        // Statistics from Linux's driver, once polling is on.
        assert.equal(
          (await api('PATCH', '/balloon/statistics', { stats_polling_interval_s: 1 })).status,
          204,
        );
        const stats = (await until(
          async () => {
            const r = await api('GET', '/balloon/statistics');
            return r.status === 200 && r.body.available_memory !== undefined ? r.body : undefined;
          },
          'balloon statistics from the guest',
          STEP_MS,
        ))!;
        assert.ok(
          stats.total_memory > 400 * MiB && stats.total_memory <= 512 * MiB,
          `total_memory ${stats.total_memory}`,
        );

        // 300 MiB of non-zero pages in tmpfs (1 MiB from /dev/urandom copied 300 times by 10 cats:
        // few system calls and processes, which are slow on the software CPU), then freed.
        const fill = `for k in 1 2 3 4 5 6 7 8 9 10; do cat${' /b/chunk'.repeat(FILL_MIB / 10)}; done > /b/fill`;
        // (du, not wc -c: busybox's wc reads the whole file, minutes on the software CPU.)
        const filledKiB = await run(
          `mkdir -p /b && mount -t tmpfs -o size=${FILL_MIB + 64}m tmpfs /b && ` +
            `head -c ${MiB} /dev/urandom > /b/chunk && ${fill}; echo @@filled=$(du -k /b/fill | cut -f1)`,
          'filled',
        );
        assert.equal(Number(filledKiB), FILL_MIB * 1024, 'the guest filled 300 MiB (du -k: KiB)');
        const filled = vmRss(rec.pid);
        // Polling brings fresh statistics: the guest's available memory fell by the file's size.
        await until(
          async () => {
            const r = await api('GET', '/balloon/statistics');
            return r.body.available_memory < stats.available_memory - 200 * MiB;
          },
          `fresh statistics (available memory was ${mib(stats.available_memory)} MiB)`,
          STEP_MS,
        );
        await run('rm /b/fill; echo @@freed=$(ls /b | wc -l)', 'freed');
        const freed = vmRss(rec.pid);

        const b = await tv(dir, ['balloon', 'bt', '128']);
        assert.equal(b.code, 0, b.stderr);
        // actual_mib of GET /balloon is the memory the guest has now (less its balloon).
        await until(
          async () => (await api('GET', '/balloon')).body.actual_mib <= 136,
          'the guest to inflate the balloon',
          STEP_MS,
        );
        const keeps = (await api('GET', '/balloon')).body.actual_mib;
        let ballooned = vmRss(rec.pid);
        await until(
          () => (ballooned = vmRss(rec.pid)) <= filled - 250 * MiB,
          `VmRSS to fall 250 MiB below ${mib(filled)} MiB (now ${mib(ballooned)} MiB)`,
          STEP_MS,
        ).catch(() => {});
        // Free page reporting usually gives most of it back as soon as the file is deleted.
        console.log(
          `balloon: VmRSS after filling ${FILL_MIB} MiB ${mib(filled)} MiB, right after rm ${mib(freed)} MiB, ` +
            `after balloon 128 (the guest keeps ${keeps} MiB) ${mib(ballooned)} MiB`,
        );
        assert.ok(
          ballooned <= filled - 250 * MiB,
          `VmRSS ${mib(filled)} MiB -> ${mib(ballooned)} MiB: expected a fall of at least 250 MiB`,
        );

        // Deflate: the guest gets its memory back and uses it.
        const d = await tv(dir, ['balloon', 'bt', '512']);
        assert.equal(d.code, 0, d.stderr);
        await until(
          async () => (await api('GET', '/balloon')).body.actual_mib === 512,
          'the guest to deflate',
          STEP_MS,
        );
        const avail = Number(
          await run("echo @@avail=$(grep MemAvailable /proc/meminfo | tr -s ' ' | cut -d' ' -f2)", 'avail'),
        );
        assert.ok(avail * 1024 > (FILL_MIB + 50) * MiB, `MemAvailable ${avail} kB after deflating`);
        const size = await run(`${fill}; echo @@refilled=$(du -k /b/fill | cut -f1)`, 'refilled');
        assert.equal(Number(size), FILL_MIB * 1024, 'the guest filled 300 MiB again (du -k: KiB)');
        const refilled = vmRss(rec.pid);
        console.log(`balloon: after deflating and filling again VmRSS ${mib(refilled)} MiB`);
        assert.ok(refilled >= ballooned + 250 * MiB, 'the memory came back into use');
      } finally {
        sock.destroy();
      }
    } finally {
      cleanup();
    }
  },
);

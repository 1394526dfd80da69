// End-to-end PMU: Debian's arm64 kernel probes the PMUv3 the software CPU offers (from the DT `pmu`
// node and ID_AA64DFR0_EL1), and a static program built here with the cross compiler counts its own
// instructions with perf_event_open(PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, exclude_kernel).
// The program is added to the default initramfs as a second archive (Linux unpacks concatenated
// archives in order).
//
// How exact the count must be: the program measures a loop of 2 instructions per iteration (SUBS,
// B.NE) plus one MOV, run for N and for 2N iterations between the same ioctl() calls. The
// instructions at EL0 around the loop (the end of the ENABLE ioctl's libc wrapper after the kernel
// returns, the start of the DISABLE wrapper up to its SVC) are the same in both measurements, so
// the two counts differ by exactly 2N, and each is 2N (or 4N) + 1 plus that small constant.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDefaultImage, type DefaultImage } from '../src/image/build.js';
import { writeInitramfsWith } from '../src/boot/initramfs.js';
import { missingTool } from './helpers/tools.js';
import { BOOT_TIMEOUT_MS, marker, runGuest } from './helpers/run-guest.js';

const N = 1_000_000;

let image: DefaultImage | undefined;
let skipReason: string | false = missingTool('aarch64-linux-gnu-gcc');
if (!skipReason) {
  try {
    image = await buildDefaultImage({ log: () => {} });
  } catch (e) {
    skipReason = `the default guest image cannot be built here: ${(e as Error).message}`;
  }
}

const PROGRAM = `
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t measure(int fd, long iterations) {
  uint64_t count = 0;
  ioctl(fd, PERF_EVENT_IOC_RESET, 0);
  ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
  __asm__ volatile("mov x9, %0\\n1: subs x9, x9, #1\\n b.ne 1b\\n" : : "r"(iterations) : "x9", "cc");
  ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
  if (read(fd, &count, sizeof count) != sizeof count) return 0;
  return count;
}

int main(void) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.type = PERF_TYPE_HARDWARE;
  a.size = sizeof a;
  a.config = PERF_COUNT_HW_INSTRUCTIONS;
  a.disabled = 1;
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  int fd = syscall(__NR_perf_event_open, &a, 0, -1, -1, 0);
  if (fd < 0) {
    printf("@@perf_error=%s\\n", strerror(errno));
    return 1;
  }
  measure(fd, 10); /* warm up: page in the code and the libc paths */
  printf("@@count1=%llu\\n", (unsigned long long)measure(fd, ${N}));
  printf("@@count2=%llu\\n", (unsigned long long)measure(fd, ${2 * N}));
  return 0;
}
`;

test('Linux probes the PMU and perf counts user instructions exactly (PERF_COUNT_HW_INSTRUCTIONS, exclude_kernel)', { skip: skipReason, timeout: BOOT_TIMEOUT_MS }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-pmu-'));
  try {
    const src = join(dir, 'pmutest.c');
    const bin = join(dir, 'pmutest');
    writeFileSync(src, PROGRAM);
    execFileSync('aarch64-linux-gnu-gcc', ['-static', '-O1', '-o', bin, src]);
    const initrd = join(dir, 'initrd');
    writeInitramfsWith(image!.initrd, initrd, { pmutest: bin });
    const r = await runGuest(
      ['--memory', '256', '--kernel', image!.kernel, '--initrd', initrd],
      ['echo "@@probe=$(dmesg | grep "hw perfevents")"', '/pmutest', 'poweroff -f', ''].join('\n'),
    );
    assert.equal(r.code, 0, r.err);
    assert.match(marker(r, 'probe'), /hw perfevents: enabled with armv8_pmuv3 PMU driver, 7 counters available/);
    const c1 = Number(marker(r, 'count1'));
    const c2 = Number(marker(r, 'count2'));
    assert.equal(c2 - c1, 2 * N, `the second loop runs ${2 * N} more instructions (counts ${c1}, ${c2})`);
    const overhead = c1 - (2 * N + 1);
    t.diagnostic(`counts ${c1} and ${c2}: ${overhead} EL0 instructions around the loop`);
    assert.ok(overhead >= 0 && overhead < 200, `EL0 instructions around the loop: ${overhead}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

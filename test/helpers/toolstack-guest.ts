// A tiny arm64 "kernel" for the toolstack tests, built at test time with the cross toolchain: an
// arm64 Image (booting.rst header) that needs no Linux. It enables the PL011, prints
// "tiny guest: hello", then (default) polls: the power key (PL061 line 3) or '!' powers off (PSCI
// SYSTEM_OFF), a SysRq (BREAK then 'o' or 'b') powers off or resets (SYSTEM_RESET), any other byte
// is echoed (FIFOs on, as Linux's driver sets them). The `idle` variant waits in WFI forever after its greeting (xl's -b state).

import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmHost } from '../../src/vmm/server.js';
import { ensureStateDir } from '../../src/vmm/state.js';

export const GREETING = 'tiny guest: hello';

const SOURCE = `
    .text
    .globl _head
_head:
    b _start
    .word 0
    .quad 0                 // text_offset
    .quad _end - _head      // image_size
    .quad 0                 // flags
    .quad 0, 0, 0
    .word 0x644d5241        // "ARM\\x64"
    .word 0
_start:
    ldr x1, =0x09000000
    mov w2, #0x70           // UARTLCR_H: 8 bits, FIFOs on (room for BREAK + key)
    str w2, [x1, #0x2c]
    mov w2, #0x301          // UARTCR: UARTEN | TXE | RXE
    str w2, [x1, #0x30]
    mov w2, #0x50           // UARTIMSC: RXIM | RTIM (the host sees a listening driver)
    str w2, [x1, #0x38]
    adr x3, msg
1:  ldrb w4, [x3], #1
    cbz w4, 2f
    str w4, [x1]
    b 1b
2:
#ifdef IDLE
3:  wfi
    b 3b
#else
    ldr x5, =0x09030000
    mov w9, #0              // 1 after a BREAK: the next byte is a SysRq key
loop:
    ldr w6, [x5, #0x20]     // PL061 data, line 3 (power key)
    cbnz w6, off
    ldr w6, [x1, #0x18]     // UARTFR
    tbnz w6, #4, loop       // RXFE
    ldr w7, [x1]
    tbz w7, #10, 4f         // DR.BE: break
    mov w9, #1
    b loop
4:  and w8, w7, #0xff
    cbz w9, 5f
    mov w9, #0
    cmp w8, #'o'
    b.eq off
    cmp w8, #'b'
    b.eq reset
    b loop
5:  cmp w8, #'!'
    b.eq off
    str w8, [x1]
    b loop
off:
    ldr x0, =0x84000008     // PSCI SYSTEM_OFF
    hvc #0
    b .
reset:
    ldr x0, =0x84000009     // PSCI SYSTEM_RESET
    hvc #0
    b .
#endif
msg: .asciz "${GREETING}\\r\\n"
    .balign 8
    .ltorg
    .balign 8
_end:
`;

const CC = 'aarch64-linux-gnu-gcc';
const OBJCOPY = 'aarch64-linux-gnu-objcopy';

/** Whether the cross toolchain is there (tests skip without it). */
export function haveCrossToolchain(): boolean {
  try {
    execFileSync(CC, ['--version'], { stdio: 'ignore' });
    execFileSync(OBJCOPY, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const built = new Map<string, string>();

/** Build the tiny guest (once per process and variant); returns the Image's path. */
export function tinyGuestImage(variant: 'echo' | 'idle' = 'echo'): string {
  const have = built.get(variant);
  if (have && existsSync(have)) return have;
  const dir = mkdtempSync(join(tmpdir(), 'typevisor-tiny-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'guest.S');
  writeFileSync(src, SOURCE);
  const elf = join(dir, 'guest.elf');
  const image = join(dir, `Image-${variant}`);
  execFileSync(CC, [
    '-nostdlib',
    '-static',
    ...(variant === 'idle' ? ['-DIDLE'] : []),
    '-Wl,-Ttext=0',
    '-Wl,--build-id=none',
    '-Wl,-e,_head',
    '-o',
    elf,
    src,
  ]);
  execFileSync(OBJCOPY, ['-O', 'binary', elf, image]);
  built.set(variant, image);
  return image;
}

// ---------------------------------------------------------------- running the CLI in tests

/** dist/src/cli/main.js */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `typevisor ARGS` with TYPEVISOR_STATE_DIR=stateDir; `input` is written to its stdin (then closed unless keepOpenMs). */
export function tv(
  stateDir: string,
  args: string[],
  opts: { input?: string | Buffer; keepOpenMs?: number; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, TYPEVISOR_STATE_DIR: stateDir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    child.stdin.on('error', () => {});
    if (opts.input !== undefined) child.stdin.write(opts.input);
    const keep = opts.keepOpenMs ? setTimeout(() => child.stdin.end(), opts.keepOpenMs) : undefined;
    if (!keep) child.stdin.end();
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(t);
      clearTimeout(keep);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A temporary state directory (`dir`) inside a scratch directory (`work`, for configs and the like);
 * cleanup() SIGKILLs every VM process recorded in the state directory and removes both.
 */
export function tempStateDir(): { dir: string; work: string; cleanup: () => void } {
  const work = mkdtempSync(join(tmpdir(), 'typevisor-test-'));
  const dir = join(work, 'state');
  return {
    dir,
    work,
    cleanup: () => {
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        // never created
      }
      for (const n of names) {
        if (n.startsWith('.')) continue;
        try {
          const rec = JSON.parse(readFileSync(join(dir, n, 'vm.json'), 'utf8')) as { pid: number };
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Poll `f` until it returns a truthy value (or throw after timeoutMs). */
export async function until<T>(f: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether process `pid` is still there (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

/**
 * A VmHost for a guest that has not started (created with -p), with its entry directory made: for
 * tests of the control API and QMP that need no guest.
 */
export function unstartedHost(dir: string, name: string, id: number, cpus: number): VmHost {
  const host = new VmHost(
    {
      name,
      id,
      pid: process.pid,
      created: new Date().toISOString(),
      startPaused: true,
      spec: {
        name,
        cpus,
        memoryMiB: 64,
        kernel: '/nonexistent',
        console: 'serial',
        disks: [],
        rng: false,
        balloon: false,
      },
    },
    dir,
  );
  ensureStateDir(dir);
  mkdirSync(host.paths.dir);
  return host;
}

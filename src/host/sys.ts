// Host system calls through koffi (Node has no ioctl, mmap, madvise, eventfd or poll): the one place
// that loads koffi and libc, for the KVM engine, TAP devices and madvise. Every failing call throws
// a SysError that names the call (ioctl name) and carries errno.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';

const require = createRequire(import.meta.url);

// koffi is a CommonJS native addon.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Koffi = any;
let koffiMod: Koffi | undefined;
export function koffi(): Koffi {
  if (!koffiMod) koffiMod = require('koffi');
  return koffiMod;
}

export class SysError extends Error {
  constructor(
    message: string,
    readonly op?: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'SysError';
  }
}

let libcLib: Koffi | undefined;
/** koffi's handle on libc.so.6, for modules that declare functions of their own (madvise, tap). */
export function libcLibrary(): Koffi {
  libcLib ??= koffi().load('libc.so.6');
  return libcLib;
}

/** errno of the last failed libc call made through koffi on this thread. */
export function lastErrno(): number {
  return koffi().errno() as number;
}

const errnoNames: Record<number, string> = Object.fromEntries(
  Object.entries(os.constants.errno).map(([k, v]) => [v as number, k]),
);
export function errnoName(e: number): string {
  return errnoNames[e] ?? `errno ${e}`;
}

export interface Libc {
  open: (path: string, flags: number) => number;
  close: (fd: number) => number;
  ioctlPtr: (fd: number, req: number, arg: Uint8Array | null) => number;
  ioctlInt: (fd: number, req: number, arg: number | bigint) => number;
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  munmap: (p: unknown, len: number) => number;
  eventfd: (init: number, flags: number) => number;
  read: (fd: number, buf: Uint8Array, n: number) => number;
  write: (fd: number, buf: Uint8Array, n: number) => number;
  socketpair: (domain: number, type: number, protocol: number, sv: number[]) => number;
  setsockopt: (fd: number, level: number, name: number, value: number[], len: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: number[], len: number[]) => number;
}

let libc: Libc | undefined;
function lc(): Libc {
  if (libc) return libc;
  const lib = libcLibrary();
  libc = {
    open: lib.func('int open(const char *path, int flags)'),
    close: lib.func('int close(int fd)'),
    ioctlPtr: lib.func('int ioctl(int fd, unsigned long req, void *arg)'),
    // The same libc symbol, declared a second time with an integer third argument.
    ioctlInt: lib.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']),
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'),
    munmap: lib.func('int munmap(void *addr, size_t len)'),
    eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
    read: lib.func('long read(int fd, void *buf, size_t n)'),
    write: lib.func('long write(int fd, const void *buf, size_t n)'),
    socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const int *value, uint32_t len)'),
    getsockopt: lib.func(
      'int getsockopt(int fd, int level, int name, _Out_ int *value, _Inout_ uint32_t *len)',
    ),
  };
  return libc;
}
const libcReady = lc;
/** The raw libc calls (results unchecked: negative with errno in lastErrno()), for callers with errors of their own. */
export const rawLibc = lc;

function fail(op: string, what?: string): never {
  const e = koffi().errno() as number;
  throw new SysError(`${op}${what ? ` (${what})` : ''} failed: ${errnoName(e)}`, op, e);
}

export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

export function sysOpen(path: string, flags: number): number {
  const fd = libcReady().open(path, flags);
  if (fd < 0) fail(`open ${path}`);
  return fd;
}

export function sysClose(fd: number): void {
  if (fd >= 0) libcReady().close(fd);
}

/** ioctl with a pointer argument (a Buffer/Uint8Array, or null). Returns the non-negative result. */
export function ioctlPtr(fd: number, req: number, name: string, arg: Uint8Array | null): number {
  const r = libcReady().ioctlPtr(fd, req, arg);
  if (r < 0) fail(name);
  return r;
}

/** ioctl with an integer argument. */
export function ioctlInt(fd: number, req: number, name: string, arg: number | bigint = 0): number {
  const r = libcReady().ioctlInt(fd, req, arg);
  if (r < 0) fail(name);
  return r;
}

/** ioctl that may fail with an expected errno (EINTR/EAGAIN for KVM_RUN): returns -errno instead of throwing. */
export function ioctlIntRaw(fd: number, req: number, arg: number | bigint = 0): number {
  const r = libcReady().ioctlInt(fd, req, arg);
  if (r < 0) return -(koffi().errno() as number);
  return r;
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;

/** A host mapping: its native pointer, address and an ArrayBuffer view of it. */
export interface Mapping {
  ptr: unknown;
  addr: bigint;
  len: number;
  buffer: ArrayBuffer;
}

export function sysMmap(len: number, prot: number, flags: number, fd: number, what: string): Mapping {
  const l = libcReady();
  const k = koffi();
  const p = l.mmap(null, len, prot, flags, fd, 0);
  const addr = BigInt(k.address(p));
  if (p === null || addr === 0xffffffffffffffffn || addr === 0n) fail('mmap', what);
  return { ptr: p, addr, len, buffer: k.view(p, len) as ArrayBuffer };
}

export function sysMunmap(m: Mapping): void {
  libcReady().munmap(m.ptr, m.len);
}

export function sysEventfd(): number {
  const fd = libcReady().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) fail('eventfd');
  return fd;
}

const one = new Uint8Array(new BigUint64Array([1n]).buffer);
/** Add 1 to an eventfd counter (signal it). */
export function eventfdSignal(fd: number): void {
  if (libcReady().write(fd, one, 8) !== 8) fail('write eventfd');
}

/** Read and reset an eventfd counter; 0 when it was not signalled (non-blocking). */
export function eventfdRead(fd: number): bigint {
  const b = new Uint8Array(8);
  const r = libcReady().read(fd, b, 8);
  if (r !== 8) return 0n;
  return new BigUint64Array(b.buffer)[0];
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;

/** A connected pair of AF_UNIX stream sockets (close-on-exec): their fds. */
export function sysSocketpair(): [number, number] {
  const sv = [-1, -1];
  if (libcReady().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) !== 0) fail('socketpair');
  return [sv[0], sv[1]];
}

/**
 * Ask for a socket send buffer of `bytes`: SO_SNDBUFFORCE where this process may (CAP_NET_ADMIN), else
 * SO_SNDBUF, which the kernel caps at net.core.wmem_max. Returns the size the socket has now (the
 * kernel doubles what it is given, for its bookkeeping).
 */
export function setSendBuffer(fd: number, bytes: number): number {
  const l = libcReady();
  if (l.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, [bytes], 4) !== 0) {
    if (l.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, [bytes], 4) !== 0) fail('setsockopt SO_SNDBUF');
  }
  return sendBufferOf(fd);
}

/** A socket's send buffer size (SO_SNDBUF), in bytes. */
export function sendBufferOf(fd: number): number {
  const v = [0];
  if (libcReady().getsockopt(fd, SOL_SOCKET, SO_SNDBUF, v, [4]) !== 0) fail('getsockopt SO_SNDBUF');
  return v[0];
}

const SYS_tgkill = 234; // x86_64
const KICK_SIGNAL = 'SIGURG';
let kickInstalled = false;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let syscall3: any;

/**
 * Interrupt every other thread of this process that sits in a blocking system call (a vCPU in
 * KVM_RUN on a pool thread returns EINTR), by sending it SIGURG. A no-op handler is installed so
 * the signal interrupts without doing anything else. Returns how many threads were signalled.
 */
export function kickThreads(): number {
  if (!kickInstalled) {
    process.on(KICK_SIGNAL, () => {});
    kickInstalled = true;
  }
  syscall3 ??= libcLibrary().func('long syscall(long nr, long a, long b, long c)');
  const pid = process.pid;
  const sig = os.constants.signals[KICK_SIGNAL];
  let n = 0;
  for (const t of fs.readdirSync('/proc/self/task')) {
    const tid = Number(t);
    if (tid === pid) continue;
    if (syscall3(SYS_tgkill, pid, tid, sig) === 0) n++;
  }
  return n;
}

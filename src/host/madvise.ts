// Give pages of a large buffer (guest RAM) back to the host kernel with madvise(2), through koffi.
//
// Whatever object holds the bytes (an ArrayBuffer, a SharedArrayBuffer, a shared WebAssembly.Memory
// or an external mapping viewed through koffi), only whole host pages inside a range can be given
// back. Which advice frees them depends on the mapping behind the buffer:
// - private anonymous memory (what V8 allocates for ArrayBuffer and SharedArrayBuffer, and what it
//   reserves for a WebAssembly.Memory, shared or not): MADV_DONTNEED frees the pages and the next
//   touch maps zero pages;
// - a shared mapping (MAP_SHARED anonymous or shmem/memfd, e.g. guest RAM shared with another
//   process): MADV_DONTNEED only unmaps the pages from this process and they come back with their
//   old contents; MADV_REMOVE punches them out of the backing object, which reads zero afterwards.
// So MADV_REMOVE is tried first; the kernel refuses it on a private mapping (EINVAL) and then
// MADV_DONTNEED is used. The choice is remembered per buffer. Where neither can be used (not Linux,
// koffi missing, a mapping that would not read zero), the bytes are zeroed instead, so the contract
// holds everywhere: after dropPages() the range reads zero.

import { koffi, libcLibrary } from './sys.js';

export const MADV_DONTNEED = 4;
export const MADV_REMOVE = 9;
const SC_PAGESIZE = 30; // Linux's _SC_PAGESIZE

/** How a buffer's pages are given back: an madvise advice, or zeroing where none works. */
export type DropMethod = 'remove' | 'dontneed' | 'zero';

interface Libc {
  madvise: (addr: number, len: number, advice: number) => number;
  /** memmove(dst, src, 0) returns dst: the address of a typed array's first byte (any buffer kind). */
  memmove: (dst: Uint8Array, src: null, n: number) => unknown;
  address: (p: unknown) => bigint;
  pageSize: number;
}

let libc: Libc | null | undefined;
function lc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== 'linux') return libc;
  try {
    const k = koffi();
    const lib = libcLibrary();
    const sysconf = lib.func('long sysconf(int name)');
    libc = {
      madvise: lib.func('madvise', 'int', ['uintptr_t', 'size_t', 'int']),
      memmove: lib.func('void *memmove(void *dst, const void *src, size_t n)'),
      address: (p) => BigInt(k.address(p)),
      pageSize: Number(sysconf(SC_PAGESIZE)) || 4096,
    };
  } catch {
    libc = null;
  }
  return libc;
}

/** The host's page size (4096 where it cannot be asked). */
export function hostPageSize(): number {
  return lc()?.pageSize ?? 4096;
}

const methods = new WeakMap<ArrayBufferLike, DropMethod>();

/** The method dropPages() has settled on for `view`'s buffer, if it has been used on it. */
export function dropMethod(view: Uint8Array): DropMethod | undefined {
  return methods.get(view.buffer);
}

/** Address of view[0] in this process. */
export function viewAddress(view: Uint8Array): number {
  const l = lc();
  if (!l) throw new Error('host addresses need koffi on Linux');
  return Number(l.address(l.memmove(view, null, 0)));
}

/**
 * Give back the host pages that lie entirely inside bytes [offset, offset + length) of `view`;
 * afterwards they read zero. Returns the part that was dropped, [start, end) as offsets into
 * `view` (empty, start === end, when no whole host page lies inside); bytes outside it are left as
 * they were. Offsets outside the view throw (callers check guest input before).
 */
export function dropPages(view: Uint8Array, offset: number, length: number): { start: number; end: number } {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
    throw new RangeError(`dropPages: bad range ${offset}+${length}`);
  if (offset + length > view.byteLength)
    throw new RangeError(`dropPages: range ${offset}+${length} is outside the ${view.byteLength}-byte view`);
  const l = lc();
  const method = methods.get(view.buffer);
  if (!l || method === 'zero') {
    view.fill(0, offset, offset + length);
    methods.set(view.buffer, 'zero');
    return { start: offset, end: offset + length };
  }
  const page = l.pageSize;
  const base = viewAddress(view);
  const first = Math.ceil((base + offset) / page) * page;
  const last = Math.floor((base + offset + length) / page) * page;
  if (last <= first) return { start: offset, end: offset };
  const start = first - base;
  const end = last - base;
  let m: DropMethod | undefined = method;
  if (m === undefined || m === 'remove') {
    if (l.madvise(first, last - first, MADV_REMOVE) === 0) m = 'remove';
    else if (m === 'remove') m = 'zero';
    else m = 'dontneed';
  }
  if (m === 'dontneed' && l.madvise(first, last - first, MADV_DONTNEED) !== 0) m = 'zero';
  // A mapping that kept its contents (a private file mapping comes back from the file) cannot drop:
  // zero it from now on.
  if (m !== 'zero' && view[start] !== 0) m = 'zero';
  if (m === 'zero') view.fill(0, start, end);
  methods.set(view.buffer, m);
  return { start, end };
}

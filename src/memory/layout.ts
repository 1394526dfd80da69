// The regions of the guest's WebAssembly memory (see GuestMemory), shared by translated code, the
// interpreter and device models:
//
//   [0, 64 KiB)                       reserved
//   [CPU_BASE, + MAX_WASM_CPUS * CPU_BLOCK)  one state block per vCPU (cpu/arm64/wasm/layout.ts)
//   [codePagesOffset, ...)             one byte per guest RAM page: non-zero when code is cached there
//   [ramOffset, + RAM size)            guest RAM (64 KiB aligned: host pages can be dropped)

export const WASM_PAGE = 65536;
export const CPU_BASE = WASM_PAGE;
export const CPU_BLOCK = 2 * WASM_PAGE;
/** vCPUs with a state block in one memory. */
export const MAX_WASM_CPUS = 32;

export const codePagesOffset = (): number => CPU_BASE + MAX_WASM_CPUS * CPU_BLOCK;

const roundPage = (n: number): number => Math.ceil(n / WASM_PAGE) * WASM_PAGE;

/** Offset of guest RAM in a memory for `ramSize` bytes of RAM. */
export const ramOffset = (ramSize: number): number => codePagesOffset() + roundPage(Math.ceil(ramSize / 4096));

/** The largest 32-bit wasm memory, in bytes (65536 pages). */
export const WASM_MAX_BYTES = 65536 * WASM_PAGE;

/** The most guest RAM one wasm memory holds, in bytes (a multiple of 1 MiB). */
export const MAX_WASM_RAM = Math.floor((WASM_MAX_BYTES - ramOffset(WASM_MAX_BYTES)) / (1 << 20)) * (1 << 20);

// Where the software CPU's state lives in the guest's WebAssembly memory, so that translated code
// (wasm) and the JavaScript interpreter share it without copies. The memory's regions are in
// memory/layout.ts (re-exported here for the CPU's modules).
//
// A vCPU's state block, at byte offsets from its start:
//   R_OFF     X0..X30, SP (slot 31), XZR (32), the XZR sink (33): 64-bit little endian, so the
//             interpreter's int32 halves (r[2n], r[2n+1]) and wasm's i64 at 8n are the same bytes
//   PC_OFF    PC as i64 (written on entry to and exit from translated code)
//   N/Z/C/V   the flags, 0 or 1 each, as i32 (the interpreter's cpu.n/z/c/v read and write them)
//   EL_OFF, ASID_OFF  current EL and ASID (copied in on entry to translated code)
//   IRQ_OFF   non-zero while an interrupt is pending and unmasked (translated code then leaves)
//   HI_OFF    high half of a 64-bit value a slow-path load returns
//   BASE_OFF  address of word 0 of the running unit's code page (runtime.ts)
//   IPC_OFF   the interpreter's PC and next PC (uint32 halves as i32: lo, hi, next lo, next hi) and
//             the virtual page it fetches from (lo, hi; lo 1 = none): Arm64Cpu's pcLo...nextHi
//   TP_OFF    TPIDR_EL0, TPIDRRO_EL0, TPIDR_EL1 (i64 each; SysRegs.tp is a view of them)
//   SPEL0_OFF SP_EL0 while it is not the active SP (i64), SPSEL_OFF PSTATE.SP (i32): translated code
//             reads them for MRS SP_EL0 and MRS TPIDR_*
//   SCTLR_OFF SCTLR_EL1's low word (i32; mmu.ts): A for the runtime's unaligned fast path, the EL0
//             controls UCT, DZE and UCI for MRS CTR_EL0, DCZID_EL0 and DC clean at EL0 (emit.ts)
//   FPEN_OFF  FP/SIMD usable at EL0, at EL1 (i32 each, 1 or 0: CPACR_EL1.FPEN; cpu.fpEn0/fpEn1)
//   EXCL_OFF  the exclusive monitor: armed physical address (i64, -1 = open), size (i32 at +8), the
//             values the load-exclusive saw (i64 at +16 and +24); cpu.exclAddr etc. read them
//   ATTN_OFF  non-zero when another thread wants this vCPU out of run() (threads/link.ts)
//   SYNC_OFF  non-zero while maintenance this vCPU broadcast awaits its DSB (threads/peers.ts)
//   DAIF_OFF  PSTATE.{D,A,I,F} (i32, bits 3:0 as cpu.daif): translated code reads it for MRS DAIF
//             and writes it for MSR DAIFSet and MSR DAIF (emit.ts)
//   LINES_OFF the interrupt controller's IRQ (bit 0) and FIQ (bit 1) lines to the vCPU (i32;
//             cpu.irqLine, cpu.fiqLine): MSR DAIF in translated code sees what it unmasks
//   VREG_OFF  V0..V31, 16 bytes each, little endian, then 16 scratch bytes (cpu.vU8 etc. are views)
//   TLB_OFF   the MMU's software TLB arrays (mmu.ts), TLB_ARRAY bytes each, in TLB_ARRAYS order
//   JC_OFF    the jump cache (dispatch.ts): JC_SIZE entries of 16 bytes, PC (i64), context
//             (ASID | EL << 16), the unit's index in the unit table

import { CPU_BLOCK, WASM_PAGE } from '../../../memory/layout.js';

export {
  WASM_PAGE,
  CPU_BASE,
  CPU_BLOCK,
  MAX_WASM_CPUS,
  codePagesOffset,
  ramOffset,
  WASM_MAX_BYTES,
  MAX_WASM_RAM,
} from '../../../memory/layout.js';

export const R_OFF = 0;
export const PC_OFF = 288;
export const N_OFF = 296;
export const Z_OFF = 300;
export const C_OFF = 304;
export const V_OFF = 308;
export const EL_OFF = 312;
export const ASID_OFF = 316;
export const IRQ_OFF = 320;
export const HI_OFF = 324;
/** Address of word 0 of the running unit's page (i64; the runtime's slow paths derive PC from it). */
export const BASE_OFF = 336;
/**
 * The interpreter's PC, next PC and fetch page (Arm64Cpu.pcLo etc. read and write them here): int32
 * slots, where object fields holding uint32 halves are boxed numbers in V8.
 */
export const IPC_OFF = 344;
/** The fetch page's low half (after PC and next PC), and its value when no page is cached (no page address has bit 0 set). */
export const FETCH_OFF = IPC_OFF + 16;
export const NO_FETCH_PAGE = 1;
export const TP_OFF = 368;
export const SPEL0_OFF = 392;
export const SPSEL_OFF = 400;
/** SCTLR_EL1 bits 31:0 (mmu.ts writes them whenever SCTLR_EL1 changes). */
export const SCTLR_OFF = 404;
export const FPEN_OFF = 408;
export const EXCL_OFF = 416;
export const EXCL_SIZE_OFF = EXCL_OFF + 8;
export const EXCL_V_OFF = EXCL_OFF + 16;
/**
 * Non-zero when another thread needs this vCPU to leave run() at the next block head (threads/: an
 * inbox operation, a pause, a request to the VMM's thread); it also sets IRQ_OFF so translated code leaves.
 */
export const ATTN_OFF = 448;
/**
 * Non-zero while TLB or instruction-cache maintenance this vCPU posted to other threads waits for
 * completion, which the next DSB (or DMB) brings about (threads/peers.ts).
 */
export const SYNC_OFF = 452;
/** PSTATE.{D,A,I,F} as bits 3:0 (cpu.daif). */
export const DAIF_OFF = 456;
/** The IRQ (bit 0) and FIQ (bit 1) lines (cpu.irqLine, cpu.fiqLine). */
export const LINES_OFF = 460;
export const VREG_OFF = 512;
/** Bytes of V0..V31 and the scratch slot. */
export const VREG_BYTES = 32 * 16 + 16;
export const TLB_OFF = 4096;
/** Entries per MMU index. */
export const TLB_BITS = 10;
export const TLB_SIZE = 1 << TLB_BITS;
/** Bytes per TLB array: int32 per entry, two MMU indexes. */
export const TLB_ARRAY = 2 * TLB_SIZE * 4;
export const TLB_ARRAYS = ['tagLo', 'tagHi', 'tAsid', 'rTag', 'wTag', 'xTag', 'ramOff'] as const;
export type TlbArray = (typeof TLB_ARRAYS)[number];
/** Byte offset of a TLB array in a state block. */
export const tlbOff = (a: TlbArray): number => TLB_OFF + TLB_ARRAYS.indexOf(a) * TLB_ARRAY;
/** The jump cache: which unit starts at a PC (dispatch.ts). */
export const JC_OFF = WASM_PAGE;
/** Entries per virtual page bucket, and buckets: a page's entries are together (dispatch.ts jcIndex). */
export const JC_PAGE_BITS = 6;
export const JC_BUCKET_BITS = 6;
export const JC_SIZE = 1 << (JC_PAGE_BITS + JC_BUCKET_BITS);
/** Bytes per jump cache entry: PC (i64), context, unit index. */
export const JC_ENTRY = 16;
if (VREG_OFF + VREG_BYTES > TLB_OFF) throw new Error('layout: the V registers do not fit before the TLB');
if (tlbOff('ramOff') + TLB_ARRAY > JC_OFF)
  throw new Error('layout: the TLB does not fit before the jump cache');
if (JC_OFF + JC_SIZE * JC_ENTRY > CPU_BLOCK)
  throw new Error('layout: the jump cache does not fit a state block');

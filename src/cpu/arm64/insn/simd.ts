// A64 instruction group: AdvSIMD data processing (ARMv8.0-A). See decode.ts for the pattern format.
//
// Integer forms (and permutes, copies, immediates) live in simd_int.ts; floating-point vector and
// scalar forms in simd_fp.ts (arithmetic from ../fpu.ts). Crypto (AES/SHA/PMULL.1Q), ARMv8.1 SQRDMLAH,
// dot product, FP16 and BF16 are not advertised: their encodings match no pattern and are UNDEF.
import type { Pattern } from '../decode.js';
import { patterns as intPatterns } from './simd_int.js';
import { patterns as fpPatterns } from './simd_fp.js';

export const patterns: Pattern[] = [...intPatterns, ...fpPatterns];

// A64 instruction group: loads and stores. See decode.ts for the pattern format.
//
// General-register forms live in ldst_int.ts, SIMD & FP forms in ldst_simd.ts; address generation
// helpers in ldst_common.ts. Translation and the memory access functions are in ../mmu.ts.
import type { Pattern } from '../decode.js';
import { patterns as intPatterns } from './ldst_int.js';
import { patterns as simdPatterns } from './ldst_simd.js';

export const patterns: Pattern[] = [...intPatterns, ...simdPatterns];

// A64 instruction group: fp. See decode.ts for the pattern format.
import type { Pattern } from '../decode.js';

export const patterns: Pattern[] = [];

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (bench files run from dist/bench). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

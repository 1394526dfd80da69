// `typevisor launch CONFIG [run options]` (Fuchsia's `guest launch`): boot a guest in the foreground
// with its console on this terminal; the same as `typevisor run CONFIG`.

import { main as runMain } from './run.js';

export function main(args: string[]): Promise<number> {
  return runMain(args);
}

// Progress lines for long host-side steps (image builds, downloads): one line per step on stderr.

export type Log = (message: string) => void;

/** A logger that prefixes each line ("typevisor: image: ...") and writes it to stderr. */
export function stderrLog(prefix = 'typevisor'): Log {
  return (m) => process.stderr.write(`${prefix}: ${m}\n`);
}

/** Run `fn`, logging "<what>..." before and "<what>: done (1.2 s)" after. */
export async function step<T>(log: Log, what: string, fn: () => T | Promise<T>): Promise<T> {
  log(`${what}...`);
  const t0 = Date.now();
  const r = await fn();
  log(`${what}: done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return r;
}

// `npm run bench -- NAME`: benchmarks, each printed side by side with a peer in the same run.
const BENCHES: Record<string, () => Promise<void>> = {
  cpu: async () => (await import('./cpu.js')).benchCpu(),
  boot: async () => (await import('./boot.js')).benchBoot(),
  'boot-smp': async () => (await import('./boot.js')).benchBootSmp(),
  restore: async () => (await import('./restore.js')).benchRestore(),
  net: async () => (await import('./net.js')).benchNet(),
  smp: async () => (await import('./smp.js')).benchSmp(),
  'kvm-exits': async () => {
    await (await import('./kvm-exits.js')).benchKvmExits();
  },
};

async function main(): Promise<number> {
  const names = process.argv.slice(2);
  if (names.length === 0 || names.some((n) => !BENCHES[n])) {
    process.stderr.write(`usage: npm run bench -- ${Object.keys(BENCHES).join('|')}\n`);
    return 2;
  }
  for (const n of names) await BENCHES[n]();
  return 0;
}

main().then(
  (c) => (process.exitCode = c),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);

// `typevisor restore FILE [--name NAME] [-c] [-p]`: start a background guest from a snapshot written
// by `typevisor save` (xl restore), like `create` does from a config. specFromSnapshot is also
// `run --restore`'s.

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { SnapshotReader, specForRestore } from '../vmm/snapshot.js';
import { entryPaths } from '../vmm/state.js';
import type { VmSpec } from '../vmm/vm.js';
import { createVm } from './create.js';
import { attachConsole } from './console.js';

const HELP = `usage: typevisor restore FILE [--name NAME] [-c] [-p]

Starts the guest saved in FILE (typevisor save) as a background VM process, where it was when it
was saved: its processes run on, its console answers. It keeps the name it was saved with unless
--name gives another. Its disks must be where (and as) they were when it was saved.

  --name NAME          the restored guest's name
  --memory MIB, --cpus N   checked against the snapshot (a restored guest keeps its memory size
                       and vCPUs: a different value is an error)
  -c, --console        attach to the guest's console (Ctrl-] detaches)
  -p, --paused         leave it paused (typevisor unpause NAME runs it)
`;

/** The options a restore takes: the name, and memory/vCPUs to check against the snapshot. */
export interface RestoreValues {
  name?: string;
  memory?: string;
  cpus?: string;
}

/** Open a snapshot and work out the spec its restored VM runs with; a UserError names what differs. */
export function specFromSnapshot(
  file: string,
  values: RestoreValues,
): { reader: SnapshotReader; spec: VmSpec } {
  const reader = new SnapshotReader(resolve(file));
  const spec = specForRestore(reader.header, values.name);
  const check = (opt: string, given: string | undefined, saved: number, unit: string): void => {
    if (given === undefined) return;
    if (Number(given) !== saved) {
      throw new UserError(
        `--${opt} ${given}: the snapshot ${reader.path} was taken with ${saved}${unit}; a restored guest keeps the ${opt === 'memory' ? 'memory size' : 'vCPU count'} it was saved with`,
      );
    }
  };
  check('memory', values.memory, spec.memoryMiB, ' MiB');
  check('cpus', values.cpus, spec.cpus, ' vCPU(s)');
  reader.checkSpec(spec);
  return { reader, spec };
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      name: { type: 'string' },
      memory: { type: 'string' },
      cpus: { type: 'string' },
      c: { type: 'boolean', short: 'c' },
      console: { type: 'boolean' },
      paused: { type: 'boolean', short: 'p' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError('restore: expected one snapshot file (typevisor restore FILE)');
  const { reader, spec } = specFromSnapshot(positionals[0], values);
  const rec = await createVm(spec, { startPaused: values.paused, restore: reader.path });
  process.stderr.write(
    `typevisor: restored ${rec.name} (id ${rec.id}, pid ${rec.pid}) from ${reader.path}${values.paused ? ', paused' : ''}\n`,
  );
  if (values.c || values.console) return attachConsole(rec.name, entryPaths(rec.name).console);
  return 0;
}

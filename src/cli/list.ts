// `typevisor list [NAME...]`: the running guests, in xl's format:
//
//   Name                                        ID   Mem VCPUs      State   Time(s)
//   web                                          1   512     1     r-----       0.3
//
// State letters as xl's: r running (a vCPU is executing), b blocked (every vCPU waits in WFI),
// p paused (also a guest created with -p that has not started), s shut down, c crashed.
// Time(s) is guest CPU time: instructions retired divided by a nominal 1 GHz (one instruction per
// cycle), not wall time; an idle guest (WFI) accumulates none, as on Xen. Mem is the memory the
// guest has now (less the balloon's target). Entries whose VM process is gone are removed.

import { parseArgs } from 'node:util';
import { UserError } from '../host/errors.js';
import { apiRequest, liveRecords } from '../api/client.js';
import { entryPaths, stateDir, type VmRecord } from '../vmm/state.js';

const HELP = `usage: typevisor list [-l] [NAME...]

Lists the running guests (xl list's columns). -l prints each guest's record and status as JSON.
`;

interface VmInfo {
  state?: string;
  vcpu_count?: number;
  current_mem_mib?: number;
  cpu_time_s?: number;
}

/** xl's six state letters. */
export function stateLetters(state: string | undefined): string {
  switch (state) {
    case 'running':
      return 'r-----';
    case 'blocked':
      return '-b----';
    case 'paused':
    case 'not-started':
      return '--p---';
    case 'shutdown':
      return '---s--';
    case 'crashed':
      return '----c-';
    default:
      return '------';
  }
}

/** One line in xl list's format (xl_list.c: "%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f"). */
export function formatRow(
  name: string,
  id: number,
  memMiB: number,
  vcpus: number,
  letters: string,
  timeS: number,
): string {
  return `${name.padEnd(40)} ${String(id).padStart(5)} ${String(Math.round(memMiB)).padStart(5)} ${String(vcpus).padStart(5)}     ${letters}  ${timeS.toFixed(1).padStart(8)}`;
}

export const LIST_HEADER = `${'Name'.padEnd(40)} ${'ID'.padStart(5)} ${'Mem'.padStart(5)} ${'VCPUs'.padStart(5)} ${'State'.padStart(10)} ${'Time(s)'.padStart(9)}`;

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' }, long: { type: 'boolean', short: 'l' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const dir = stateDir();
  let records = await liveRecords(dir);
  if (positionals.length > 0) {
    const want = new Set(positionals);
    const missing = positionals.filter((p) => !records.some((r) => r.name === p || String(r.id) === p));
    if (missing.length > 0) throw new UserError(`list: no running guest named '${missing[0]}'`, 1);
    records = records.filter((r) => want.has(r.name) || want.has(String(r.id)));
  }
  const infos = await Promise.all(records.map((r) => info(r, dir)));
  if (values.long) {
    process.stdout.write(
      JSON.stringify(
        records.map((r, i) => ({ ...r, status: infos[i] ?? null })),
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  const lines = [LIST_HEADER];
  records.forEach((r, i) => {
    const s = infos[i];
    lines.push(
      formatRow(
        r.name,
        r.id,
        s?.current_mem_mib ?? r.spec.memoryMiB,
        s?.vcpu_count ?? r.spec.cpus,
        stateLetters(s?.state),
        s?.cpu_time_s ?? 0,
      ),
    );
  });
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

async function info(r: VmRecord, dir: string): Promise<VmInfo | undefined> {
  try {
    const res = await apiRequest(entryPaths(r.name, dir).control, 'GET', '/vm', undefined, 3000);
    return res.status === 200 ? (res.body as VmInfo) : undefined;
  } catch {
    return undefined;
  }
}

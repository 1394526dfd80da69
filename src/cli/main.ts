#!/usr/bin/env node
// typevisor's command-line entry: one module per verb (like kvmtool's builtin-*.c).

import { isEntry, runAsProgram } from './entry.js';

interface Verb {
  summary: string;
  load: () => Promise<{ main(args: string[]): Promise<number> }>;
}

const VERBS: Record<string, Verb> = {
  run: { summary: 'boot a guest in the foreground with its console on this terminal', load: () => import('./run.js') },
  image: { summary: 'build the default arm64 guest image (image build)', load: () => import('./image.js') },
  import: { summary: 'convert an xl / Fuchsia / microvm.nix / CAmkES config to typevisor JSON', load: () => import('./import.js') },
  create: { summary: 'start a guest in the background (xl create; -c attaches its console)', load: () => import('./create.js') },
  list: { summary: 'list running guests (xl list)', load: () => import('./list.js') },
  console: { summary: "attach to a running guest's console (Ctrl-] detaches)", load: () => import('./console.js') },
  shutdown: { summary: 'ask a guest to power off (-w waits for it)', load: () => import('./shutdown.js') },
  reboot: { summary: 'ask a guest to reboot', load: () => import('./reboot.js') },
  destroy: { summary: 'stop a guest at once', load: () => import('./destroy.js') },
  save: { summary: 'write a snapshot of a running guest to a file (--stop: then destroy it)', load: () => import('./save.js') },
  restore: { summary: 'start a background guest from a snapshot file (typevisor save)', load: () => import('./restore.js') },
  pause: { summary: "pause a guest's vCPUs", load: () => import('./pause.js') },
  unpause: { summary: 'resume a paused guest', load: async () => ({ main: (await import('./pause.js')).unpauseMain }) },
  balloon: { summary: 'set the memory a guest keeps, in MiB (virtio-balloon)', load: () => import('./balloon.js') },
  launch: { summary: 'boot a config in the foreground, registered like create (Fuchsia guest launch)', load: () => import('./launch.js') },
  autostart: { summary: 'create every guest configured in a directory (default /etc/typevisor/auto)', load: () => import('./autostart.js') },
  network: { summary: 'host networks: a bridge with DHCP for guests (network create/list/destroy)', load: () => import('./network.js') },
  doctor: { summary: 'which engines this host can run (tcg, /dev/kvm) and how fast', load: () => import('./doctor.js') },
  'microvm-runner': { summary: 'write microvm.nix-style runner scripts for a config', load: () => import('./microvm-runner.js') },
};

function usage(): string {
  const lines = ['usage: typevisor <command> [options]', '', 'commands:'];
  for (const [name, v] of Object.entries(VERBS)) lines.push(`  ${name.padEnd(16)} ${v.summary}`);
  lines.push('', "run 'typevisor <command> --help' for a command's options");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(usage() + '\n');
    return verb ? 0 : 2;
  }
  const v = VERBS[verb];
  if (!v) {
    process.stderr.write(`typevisor: unknown command '${verb}'\n${usage()}\n`);
    return 2;
  }
  const mod = await v.load();
  return mod.main(rest);
}

if (isEntry(import.meta.url)) runAsProgram(main);

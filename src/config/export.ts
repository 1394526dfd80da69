// VmConfig -> xl .cfg text (xl.cfg(5)), for users going back to Xen or comparing with it.
//
// Mapped: name, memory/maxmem, vcpus, kernel, ramdisk, device_tree, cmdline, disk (raw,
// target=PATH last so that commas in paths survive), vif (mac, bridge, vifname, model),
// on_poweroff/on_reboot/on_crash; type = "pvh" (what an arm guest is). typevisor-only settings
// (arch, accel, console, rng, balloon tuning, vsock, sockets) become comments.

import type { VmConfig } from './vmconfig.js';
import { bridgeName } from '../host/network.js';

function q(s: string): string {
  // xl strings: double quotes with backslash escapes.
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** Writes a VmConfig as xl .cfg text. */
export function exportXl(c: VmConfig): string {
  const out: string[] = [
    `# xl domain config written by typevisor from its VM config '${c.name.replace(/\n/g, ' ')}'`,
  ];
  const set = (k: string, v: string | number): void => {
    out.push(`${k} = ${typeof v === 'number' ? String(v) : q(v)}`);
  };
  set('name', c.name);
  set('type', 'pvh');
  if (c.memoryMiB !== undefined) set('memory', c.memoryMiB);
  if (c.maxMemoryMiB !== undefined && c.maxMemoryMiB !== c.memoryMiB) set('maxmem', c.maxMemoryMiB);
  if (c.cpus !== undefined) set('vcpus', c.cpus);
  if (c.kernel) set('kernel', c.kernel);
  if (c.initrd) set('ramdisk', c.initrd);
  if (c.dtb) set('device_tree', c.dtb);
  if (c.cmdline !== undefined) set('cmdline', c.cmdline);
  if (c.disks && c.disks.length > 0) {
    const vdevs = new Set<string>();
    const specs = c.disks.map((d, i) => {
      let vdev = d.id && /^(xvd|hd|sd)[a-z]+\d*$/.test(d.id) ? d.id : `xvd${String.fromCharCode(97 + i)}`;
      if (vdevs.has(vdev)) vdev = `xvd${String.fromCharCode(97 + i)}`;
      vdevs.add(vdev);
      if (d.volatile) out.push(`# disk ${vdev} is volatile in typevisor: xl has no such mode`);
      return `format=raw, vdev=${vdev}, access=${d.readOnly ? 'ro' : 'rw'}, target=${d.path}`;
    });
    out.push(`disk = [ ${specs.map((s) => `'${s.replace(/'/g, "\\'")}'`).join(',\n         ')} ]`);
  }
  if (c.nets && c.nets.length > 0) {
    const specs = c.nets.map((n) => {
      const parts: string[] = [];
      if (n.mac) parts.push(`mac=${n.mac}`);
      if (n.network) parts.push(`bridge=${bridgeName(n.network)}`);
      else if (n.bridge) parts.push(`bridge=${n.bridge}`);
      if (n.tap) parts.push(`vifname=${n.tap}`);
      if (n.mtu !== undefined) parts.push(`mtu=${n.mtu}`);
      if (n.model) parts.push(`model=${n.model}`);
      return `'${parts.join(',')}'`;
    });
    out.push(`vif = [ ${specs.join(', ')} ]`);
  }
  if (c.onPoweroff) set('on_poweroff', c.onPoweroff);
  if (c.onReboot) set('on_reboot', c.onReboot);
  if (c.onCrash) set('on_crash', c.onCrash);
  const notes: string[] = [];
  if (c.arch) notes.push(`arch ${c.arch}`);
  if (c.accel) notes.push(`accel ${c.accel}`);
  if (c.console) notes.push(`console ${c.console}`);
  c.nets?.forEach((n, i) => {
    if (n.network === undefined && n.bridge === undefined && n.tap === undefined)
      notes.push(`NIC ${i} user-mode networking${n.hostfwd ? ` (hostfwd ${n.hostfwd.join(' ')})` : ''}`);
  });
  if (c.rng !== undefined) notes.push(`rng ${c.rng ? 'on' : 'off'}`);
  if (c.balloon) notes.push(`balloon ${JSON.stringify(c.balloon)}`);
  if (c.vsock) notes.push(`vsock ${JSON.stringify(c.vsock)}`);
  if (c.controlSocket) notes.push(`control socket ${c.controlSocket}`);
  if (c.qmpSocket) notes.push(`QMP socket ${c.qmpSocket}`);
  if (c.gdb) notes.push(`gdb stub ${c.gdb}${c.gdbWait ? ' (waits for gdb)' : ''}`);
  if (notes.length > 0)
    out.push(`# typevisor settings xl has no key for: ${notes.join('; ').replace(/\n/g, ' ')}`);
  for (const w of c.warnings ?? []) out.push(`# typevisor warning: ${w.replace(/\n/g, ' ')}`);
  return out.join('\n') + '\n';
}

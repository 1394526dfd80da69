// A small DTB reader: parses a flattened device tree (versions 16 and 17) into the same node tree
// that fdt.ts writes, so that a user-supplied DTB can be inspected (/memory reg, /chosen) and
// patched (/chosen bootargs, linux,initrd-start/end) and written back with writeDtb().

import {
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_MAGIC,
  FDT_NOP,
  FDT_PROP,
  ensureNode,
  findNode,
  str,
  u64,
  writeDtb,
  type FdtNode,
} from './fdt.js';

export interface ParsedDtb {
  root: FdtNode;
  memReserve: { address: bigint; size: bigint }[];
  bootCpuId: number;
  version: number;
}

export class DtbError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DtbError';
  }
}

/** Parse a DTB. `what` names the file in error messages. */
export function parseDtb(data: Uint8Array, what = 'device tree'): ParsedDtb {
  const fail = (msg: string): never => {
    throw new DtbError(`${what}: not a valid device tree blob: ${msg}`);
  };
  if (data.length < 40) fail(`only ${data.length} bytes`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = dv.getUint32(0);
  if (magic !== FDT_MAGIC) fail(`magic is 0x${magic.toString(16)}, expected 0xd00dfeed`);
  const total = dv.getUint32(4);
  const offStruct = dv.getUint32(8);
  const offStrings = dv.getUint32(12);
  const offRsv = dv.getUint32(16);
  const version = dv.getUint32(20);
  const lastComp = dv.getUint32(24);
  const bootCpuId = dv.getUint32(28);
  if (total > data.length) fail(`header says ${total} bytes, file has ${data.length}`);
  if (version < 16 || lastComp > 17) fail(`unsupported version ${version} (last compatible ${lastComp})`);
  const sizeStrings = dv.getUint32(32);
  const sizeStruct = version >= 17 ? dv.getUint32(36) : total - offStruct;
  if (offStruct + sizeStruct > total || offStrings + sizeStrings > total || offRsv + 16 > total) {
    fail('block offsets run past the end');
  }

  const memReserve: { address: bigint; size: bigint }[] = [];
  for (let o = offRsv; ; o += 16) {
    if (o + 16 > total) fail('memory reservation block is not terminated');
    const a = dv.getBigUint64(o);
    const s = dv.getBigUint64(o + 8);
    if (a === 0n && s === 0n) break;
    memReserve.push({ address: a, size: s });
  }

  const dec = new TextDecoder();
  const cstr = (start: number, limit: number): [string, number] => {
    let e = start;
    while (e < limit && data[e] !== 0) e++;
    if (e >= limit) fail(`unterminated string at offset ${start}`);
    return [dec.decode(data.subarray(start, e)), e + 1];
  };
  const end = offStruct + sizeStruct;
  let p = offStruct;
  const stack: FdtNode[] = [];
  let root: FdtNode | undefined;
  for (;;) {
    if (p + 4 > end) fail('structure block ends without FDT_END');
    const tok = dv.getUint32(p);
    p += 4;
    if (tok === FDT_BEGIN_NODE) {
      const [name, next] = cstr(p, end);
      p = (next + 3) & ~3;
      const n: FdtNode = { name, props: new Map(), children: [] };
      if (stack.length === 0) {
        if (root) fail('more than one root node');
        root = n;
      } else stack[stack.length - 1].children.push(n);
      stack.push(n);
    } else if (tok === FDT_PROP) {
      if (stack.length === 0 || p + 8 > end) fail('property outside a node');
      const len = dv.getUint32(p);
      const nameoff = dv.getUint32(p + 4);
      p += 8;
      if (p + len > end) fail('property value runs past the structure block');
      if (nameoff >= sizeStrings) fail('property name offset out of range');
      const [pname] = cstr(offStrings + nameoff, offStrings + sizeStrings);
      stack[stack.length - 1].props.set(pname, data.slice(p, p + len));
      p = (p + len + 3) & ~3;
    } else if (tok === FDT_END_NODE) {
      if (stack.length === 0) fail('unbalanced FDT_END_NODE');
      stack.pop();
    } else if (tok === FDT_NOP) {
      // skip
    } else if (tok === FDT_END) {
      break;
    } else {
      fail(`unknown token 0x${tok.toString(16)} at offset ${p - 4}`);
    }
  }
  if (!root || stack.length !== 0) fail('unbalanced nodes');
  return { root: root!, memReserve, bootCpuId, version };
}

/** Read a property as big-endian u32 cells. */
export function cells(v: Uint8Array | undefined): number[] {
  if (!v) return [];
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const out: number[] = [];
  for (let o = 0; o + 4 <= v.length; o += 4) out.push(dv.getUint32(o));
  return out;
}

/** A 1- or 2-cell number property (e.g. linux,initrd-start). */
export function propNumber(v: Uint8Array | undefined): bigint | undefined {
  if (!v || (v.length !== 4 && v.length !== 8)) return undefined;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  return v.length === 4 ? BigInt(dv.getUint32(0)) : dv.getBigUint64(0);
}

/** A string property (first string of a list). */
export function propString(v: Uint8Array | undefined): string | undefined {
  if (!v) return undefined;
  const z = v.indexOf(0);
  return new TextDecoder().decode(v.subarray(0, z < 0 ? v.length : z));
}

/** Regions of every `memory` node (device_type = "memory"), decoded with the root's cell sizes. */
export function readMemory(root: FdtNode): { base: bigint; size: bigint }[] {
  const ac = cells(root.props.get('#address-cells'))[0] ?? 2;
  const sc = cells(root.props.get('#size-cells'))[0] ?? 1;
  const out: { base: bigint; size: bigint }[] = [];
  for (const n of root.children) {
    const isMem = propString(n.props.get('device_type')) === 'memory' || n.name.split('@')[0] === 'memory';
    if (!isMem) continue;
    const c = cells(n.props.get('reg'));
    const per = ac + sc;
    for (let i = 0; per > 0 && i + per <= c.length; i += per) {
      let base = 0n;
      for (let k = 0; k < ac; k++) base = (base << 32n) | BigInt(c[i + k]);
      let size = 0n;
      for (let k = 0; k < sc; k++) size = (size << 32n) | BigInt(c[i + ac + k]);
      out.push({ base, size });
    }
  }
  return out;
}

export interface ChosenInfo {
  bootargs?: string;
  stdoutPath?: string;
  initrdStart?: bigint;
  initrdEnd?: bigint;
}

export function readChosen(root: FdtNode): ChosenInfo {
  const c = findNode(root, '/chosen');
  if (!c) return {};
  return {
    bootargs: propString(c.props.get('bootargs')),
    stdoutPath: propString(c.props.get('stdout-path')),
    initrdStart: propNumber(c.props.get('linux,initrd-start')),
    initrdEnd: propNumber(c.props.get('linux,initrd-end')),
  };
}

export interface ChosenPatch {
  bootargs?: string;
  initrd?: { start: number | bigint; end: number | bigint };
}

/** Set or replace /chosen bootargs and linux,initrd-start/end (created when missing). */
export function patchChosen(root: FdtNode, patch: ChosenPatch): void {
  const c = ensureNode(root, '/chosen');
  if (patch.bootargs !== undefined) c.props.set('bootargs', str(patch.bootargs));
  if (patch.initrd) {
    c.props.set('linux,initrd-start', u64(patch.initrd.start));
    c.props.set('linux,initrd-end', u64(patch.initrd.end));
  }
}

/** Parse a user DTB, patch /chosen and serialize it again. */
export function patchDtb(data: Uint8Array, patch: ChosenPatch, what = 'device tree'): Uint8Array {
  const d = parseDtb(data, what);
  patchChosen(d.root, patch);
  return writeDtb(d.root, { memReserve: d.memReserve, bootCpuId: d.bootCpuId });
}

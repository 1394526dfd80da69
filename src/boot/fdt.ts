// Flattened device tree (DTB) writer, format version 17 (Devicetree Specification, chapter 5):
// a 40-byte header, the memory reservation block, the structure block (FDT_BEGIN_NODE, FDT_PROP,
// FDT_END_NODE, FDT_END) and the strings block, where property names are stored once.
//
// Build a tree with node(name, props, children) and the property helpers below, then serialize it
// with writeDtb(). Property values are raw big-endian bytes; helpers produce them.

export const FDT_MAGIC = 0xd00d_feed;
export const FDT_BEGIN_NODE = 1;
export const FDT_END_NODE = 2;
export const FDT_PROP = 3;
export const FDT_NOP = 4;
export const FDT_END = 9;
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;
const HEADER_SIZE = 40;

export interface FdtNode {
  name: string;
  /** Properties in order: name -> raw value bytes. */
  props: Map<string, Uint8Array>;
  children: FdtNode[];
}

export type PropValue = Uint8Array | string | string[] | number | number[];

/**
 * Property value from a convenient JS value: a Uint8Array as-is, a string as a NUL-terminated
 * string, a string[] as a string list, a number or number[] as u32 cells.
 */
export function toProp(v: PropValue): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return str(v);
  if (typeof v === 'number') return u32(v);
  if (v.length > 0 && typeof v[0] === 'string') return strList(v as string[]);
  return u32(...(v as number[]));
}

/** A device tree node. Properties keep the order given. */
export function node(name: string, props: Record<string, PropValue> = {}, children: FdtNode[] = []): FdtNode {
  const m = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(props)) m.set(k, toProp(v));
  return { name, props: m, children };
}

/** An empty property (a boolean flag such as `interrupt-controller`). */
export function empty(): Uint8Array {
  return new Uint8Array(0);
}

/** u32 cells, big-endian. */
export function u32(...cells: number[]): Uint8Array {
  const b = new Uint8Array(4 * cells.length);
  const dv = new DataView(b.buffer);
  cells.forEach((c, i) => {
    if (!Number.isInteger(c) || c < -0x8000_0000 || c > 0xffff_ffff)
      throw new RangeError(`FDT cell ${c} is not a u32`);
    dv.setUint32(4 * i, c >>> 0);
  });
  return b;
}

/** u64 values, each as two cells (high, low), big-endian. */
export function u64(...vals: (number | bigint)[]): Uint8Array {
  const b = new Uint8Array(8 * vals.length);
  const dv = new DataView(b.buffer);
  vals.forEach((v, i) => {
    const x = BigInt(v);
    if (x < 0n || x >= 1n << 64n) throw new RangeError(`FDT value ${v} is not a u64`);
    dv.setBigUint64(8 * i, x);
  });
  return b;
}

/** (address, size) pairs encoded with the given cell counts (e.g. 2, 2 for a 64-bit `reg`). */
export function regProp(
  addressCells: number,
  sizeCells: number,
  ...pairs: [number | bigint, number | bigint][]
): Uint8Array {
  const cells: number[] = [];
  const push = (v: number | bigint, n: number) => {
    let x = BigInt(v);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      out.unshift(Number(x & 0xffff_ffffn));
      x >>= 32n;
    }
    if (x !== 0n) throw new RangeError(`FDT value ${v} does not fit in ${n} cells`);
    cells.push(...out);
  };
  for (const [a, s] of pairs) {
    push(a, addressCells);
    push(s, sizeCells);
  }
  return u32(...cells);
}

/** A NUL-terminated string. */
export function str(s: string): Uint8Array {
  const e = new TextEncoder().encode(s);
  const b = new Uint8Array(e.length + 1);
  b.set(e);
  return b;
}

/** A list of NUL-terminated strings (e.g. `compatible`). */
export function strList(list: string[]): Uint8Array {
  const parts = list.map(str);
  const b = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    b.set(p, o);
    o += p.length;
  }
  return b;
}

/** A phandle value (one u32 cell). Phandles start at 1; 0 and 0xffffffff are not valid. */
export function phandle(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 1 || n >= 0xffff_ffff) throw new RangeError(`invalid phandle ${n}`);
  return u32(n);
}

/** Find a child by its full name (`memory@40000000`) or by its name without unit address. */
export function findChild(parent: FdtNode, name: string): FdtNode | undefined {
  return (
    parent.children.find((c) => c.name === name) ?? parent.children.find((c) => c.name.split('@')[0] === name)
  );
}

/** Find a node by path (`/chosen`, `/cpus/cpu@0`). */
export function findNode(root: FdtNode, path: string): FdtNode | undefined {
  let n: FdtNode | undefined = root;
  for (const part of path.split('/').filter((p) => p.length > 0)) {
    if (!n) return undefined;
    n = findChild(n, part);
  }
  return n;
}

/** The node at `path`, created (empty) if it is missing. */
export function ensureNode(root: FdtNode, path: string): FdtNode {
  let n = root;
  for (const part of path.split('/').filter((p) => p.length > 0)) {
    let c = findChild(n, part);
    if (!c) {
      c = node(part);
      n.children.push(c);
    }
    n = c;
  }
  return n;
}

export interface DtbOptions {
  /** Memory reservation entries (address, size). */
  memReserve?: { address: number | bigint; size: number | bigint }[];
  /** boot_cpuid_phys header field. */
  bootCpuId?: number;
}

class ByteWriter {
  buf = new Uint8Array(4096);
  len = 0;
  private dv = new DataView(this.buf.buffer);

  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }

  u32(v: number): void {
    this.grow(4);
    this.dv.setUint32(this.len, v >>> 0);
    this.len += 4;
  }

  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    this.grow(pad);
    this.buf.fill(0, this.len, this.len + pad);
    this.len += pad;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const NODE_NAME = /^[A-Za-z0-9,._+\-@]*$/;
const PROP_NAME = /^[A-Za-z0-9,._+\-?#]+$/;

/** Serialize a tree (its root's name must be empty) into a DTB. */
export function writeDtb(root: FdtNode, opts: DtbOptions = {}): Uint8Array {
  const strings = new ByteWriter();
  const offsets = new Map<string, number>();
  const nameOff = (name: string): number => {
    let o = offsets.get(name);
    if (o === undefined) {
      o = strings.len;
      strings.bytes(str(name));
      offsets.set(name, o);
    }
    return o;
  };

  const st = new ByteWriter();
  const emit = (n: FdtNode, isRoot: boolean): void => {
    if (isRoot ? n.name !== '' : n.name === '' || !NODE_NAME.test(n.name)) {
      throw new Error(`invalid device tree node name '${n.name}'`);
    }
    st.u32(FDT_BEGIN_NODE);
    st.bytes(str(n.name));
    st.align(4);
    for (const [k, v] of n.props) {
      if (!PROP_NAME.test(k)) throw new Error(`invalid device tree property name '${k}' in node '${n.name}'`);
      st.u32(FDT_PROP);
      st.u32(v.length);
      st.u32(nameOff(k));
      st.bytes(v);
      st.align(4);
    }
    for (const c of n.children) emit(c, false);
    st.u32(FDT_END_NODE);
  };
  emit(root, true);
  st.u32(FDT_END);

  const rsv = new ByteWriter();
  for (const r of opts.memReserve ?? []) rsv.bytes(u64(r.address, r.size));
  rsv.bytes(u64(0, 0));

  const offRsv = HEADER_SIZE; // already 8-byte aligned
  const offStruct = offRsv + rsv.len;
  const offStrings = offStruct + st.len;
  const total = offStrings + strings.len;
  const out = new Uint8Array((total + 7) & ~7);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, FDT_MAGIC);
  dv.setUint32(4, out.length);
  dv.setUint32(8, offStruct);
  dv.setUint32(12, offStrings);
  dv.setUint32(16, offRsv);
  dv.setUint32(20, FDT_VERSION);
  dv.setUint32(24, FDT_LAST_COMP_VERSION);
  dv.setUint32(28, opts.bootCpuId ?? 0);
  dv.setUint32(32, strings.len);
  dv.setUint32(36, st.len);
  out.set(rsv.result(), offRsv);
  out.set(st.result(), offStruct);
  out.set(strings.result(), offStrings);
  return out;
}

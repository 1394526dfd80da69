// A minimal WebAssembly binary encoder: one module with imported shared memory and functions, one
// defined function, one export. Written by hand: the translator emits a few hundred bytes per unit
// thousands of times in a boot, and the maintained encoders on npm (binaryen, wabt) are large
// toolchains whose per-module overhead (an IR, a validator, a text format) is what we must avoid.

/** Value types. */
export const I32 = 0x7f;
export const I64 = 0x7e;
/** Block type of a block that yields nothing. */
export const VOID = 0x40;

/** Opcodes used by the translator (WebAssembly core spec, section 5.4). */
export const Op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  br_table: 0x0e,
  return: 0x0f,
  call: 0x10,
  call_indirect: 0x11,
  drop: 0x1a,
  select: 0x1b,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  i32_load: 0x28,
  i64_load: 0x29,
  i32_load8_u: 0x2d,
  i32_load16_u: 0x2f,
  i64_load8_u: 0x31,
  i64_load16_u: 0x33,
  i64_load32_u: 0x35,
  i32_store: 0x36,
  i64_store: 0x37,
  i32_store8: 0x3a,
  i32_store16: 0x3b,
  i64_store8: 0x3c,
  i64_store16: 0x3d,
  i64_store32: 0x3e,
  i32_const: 0x41,
  i64_const: 0x42,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_s: 0x4c,
  i32_le_u: 0x4d,
  i32_ge_s: 0x4e,
  i32_ge_u: 0x4f,
  i64_eqz: 0x50,
  i64_eq: 0x51,
  i64_ne: 0x52,
  i64_lt_s: 0x53,
  i64_lt_u: 0x54,
  i64_gt_s: 0x55,
  i64_gt_u: 0x56,
  i64_le_s: 0x57,
  i64_le_u: 0x58,
  i64_ge_s: 0x59,
  i64_ge_u: 0x5a,
  i32_clz: 0x67,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_div_s: 0x6d,
  i32_div_u: 0x6e,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_xor: 0x73,
  i32_shl: 0x74,
  i32_shr_s: 0x75,
  i32_shr_u: 0x76,
  i32_rotr: 0x78,
  i64_clz: 0x79,
  i64_add: 0x7c,
  i64_sub: 0x7d,
  i64_mul: 0x7e,
  i64_div_s: 0x7f,
  i64_div_u: 0x80,
  i64_and: 0x83,
  i64_or: 0x84,
  i64_xor: 0x85,
  i64_shl: 0x86,
  i64_shr_s: 0x87,
  i64_shr_u: 0x88,
  i64_rotr: 0x8a,
  i32_wrap_i64: 0xa7,
  i64_extend_i32_s: 0xac,
  i64_extend_i32_u: 0xad,
  i64_extend32_s: 0xc4,
} as const;

/**
 * Opcodes of the SIMD instructions the translator emits (after the 0xfd prefix; the final SIMD
 * proposal's numbering, which V8 implements): per lane width, the entries are 8, 16, 32, 64 bits.
 */
export const SimdOp = {
  v128_load: 0x00,
  v128_store: 0x0b,
  i8x16_shuffle: 0x0d,
  v128_const: 0x0c,
  /** i8x16, i16x8, i32x4 (from an i32), i64x2 (from an i64). */
  splat: [0x0f, 0x10, 0x11, 0x12],
  eq: [0x23, 0x2d, 0x37, 0xd6],
  gt_s: [0x27, 0x31, 0x3b, 0xd9],
  gt_u: [0x28, 0x32, 0x3c],
  ge_s: [0x2b, 0x35, 0x3f, 0xdb],
  ge_u: [0x2c, 0x36, 0x40],
  add: [0x6e, 0x8e, 0xae, 0xce],
  sub: [0x71, 0x91, 0xb1, 0xd1],
  min_s: [0x76, 0x96, 0xb6],
  min_u: [0x77, 0x97, 0xb7],
  max_s: [0x78, 0x98, 0xb8],
  max_u: [0x79, 0x99, 0xb9],
} as const;

/** Growable byte sink with LEB128 writers. */
export class Bytes {
  buf: Uint8Array<ArrayBuffer>;
  len = 0;
  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
  }
  byte(b: number): void {
    if (this.len === this.buf.length) {
      const g = new Uint8Array(this.buf.length * 2);
      g.set(this.buf);
      this.buf = g;
    }
    this.buf[this.len++] = b;
  }
  bytes(bs: ArrayLike<number>): void {
    const n = bs.length;
    if (this.len + n > this.buf.length) {
      const g = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      g.set(this.buf.subarray(0, this.len));
      this.buf = g;
    }
    this.buf.set(bs, this.len);
    this.len += n;
  }
  u32(v: number): void {
    v >>>= 0;
    do {
      const b = v & 0x7f;
      v >>>= 7;
      this.byte(v !== 0 ? b | 0x80 : b);
    } while (v !== 0);
  }
  s32(v: number): void {
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
        this.byte(b);
        return;
      }
      this.byte(b | 0x80);
    }
  }
  s64(v: bigint): void {
    v = BigInt.asIntN(64, v);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
        this.byte(b);
        return;
      }
      this.byte(b | 0x80);
    }
  }
  /** A 64-bit constant from int32 halves (no BigInt when it fits 32 signed bits). */
  s64Halves(lo: number, hi: number): void {
    if ((hi | 0) === (lo | 0) >> 31) this.s32(lo);
    else this.s64((BigInt(hi | 0) << 32n) | BigInt(lo >>> 0));
  }
  view(): Uint8Array<ArrayBuffer> {
    return this.buf.subarray(0, this.len);
  }
}

/** The body of the one function, with typed helpers for the instructions the translator emits. */
export class Code extends Bytes {
  op(o: number): void {
    this.byte(o);
  }
  get(l: number): void {
    this.byte(Op.local_get);
    this.u32(l);
  }
  set(l: number): void {
    this.byte(Op.local_set);
    this.u32(l);
  }
  tee(l: number): void {
    this.byte(Op.local_tee);
    this.u32(l);
  }
  i32(v: number): void {
    this.byte(Op.i32_const);
    this.s32(v);
  }
  i64(lo: number, hi = lo >> 31): void {
    this.byte(Op.i64_const);
    this.s64Halves(lo, hi);
  }
  /** A load or store with its memarg (alignment as log2 bytes, constant offset). */
  mem(o: number, align: number, offset: number): void {
    this.byte(o);
    this.memarg(align, offset);
  }
  /** A memory instruction's memarg: alignment as log2 bytes, then the constant offset. */
  private memarg(align: number, offset: number): void {
    this.u32(align);
    this.u32(offset);
  }
  /** A SIMD instruction (prefix 0xfd, then its opcode: SimdOp). */
  simd(o: number): void {
    this.byte(0xfd);
    this.u32(o);
  }
  /** A SIMD load or store (SimdOp.v128_load, v128_store) with its memarg. */
  simdMem(o: number, align: number, offset: number): void {
    this.simd(o);
    this.memarg(align, offset);
  }
  /** v128.const 0. */
  v128Zero(): void {
    this.simd(SimdOp.v128_const);
    for (let k = 0; k < 16; k++) this.byte(0);
  }
  /** i8x16.shuffle: byte k of the result is byte lanes[k] of the two operands (0-15 the first, 16-31 the second). */
  shuffle(lanes: readonly number[]): void {
    if (lanes.length !== 16 || lanes.some((l) => l < 0 || l > 31))
      throw new Error('shuffle: 16 lanes from 0 to 31');
    this.simd(SimdOp.i8x16_shuffle);
    for (const l of lanes) this.byte(l);
  }
  /** An atomic memory instruction (threads proposal: prefix 0xfe) with its memarg. */
  atomic(o: number, align: number, offset: number): void {
    this.byte(0xfe);
    this.u32(o);
    this.memarg(align, offset);
  }
  /** atomic.fence (threads proposal: prefix 0xfe, opcode 0x03, a zero flags byte): a full barrier. */
  fence(): void {
    this.byte(0xfe);
    this.byte(0x03);
    this.byte(0);
  }
  call(f: number): void {
    this.byte(Op.call);
    this.u32(f);
  }
  /** call_indirect through table 0 with the module's type `typeIndex`. */
  callIndirect(typeIndex: number): void {
    this.byte(Op.call_indirect);
    this.u32(typeIndex);
    this.byte(0);
  }
  br(depth: number): void {
    this.byte(Op.br);
    this.u32(depth);
  }
  brIf(depth: number): void {
    this.byte(Op.br_if);
    this.u32(depth);
  }
  block(type: number = VOID): void {
    this.byte(Op.block);
    this.byte(type);
  }
  loop(type: number = VOID): void {
    this.byte(Op.loop);
    this.byte(type);
  }
  if(type: number = VOID): void {
    this.byte(Op.if);
    this.byte(type);
  }
  else(): void {
    this.byte(Op.else);
  }
  end(): void {
    this.byte(Op.end);
  }
}

export interface FuncType {
  params: number[];
  results: number[];
}

function section(out: Bytes, id: number, body: Bytes): void {
  out.byte(id);
  out.u32(body.len);
  out.bytes(body.view());
}

function name(b: Bytes, s: string): void {
  b.u32(s.length);
  for (let i = 0; i < s.length; i++) b.byte(s.charCodeAt(i));
}

/** A function a module defines: its type, its locals after the parameters, its body, its export name. */
export interface FuncDef {
  type: FuncType;
  locals: number[];
  /** The body without its final `end`. */
  body: Code;
  export?: string;
}

/**
 * A module that imports `env.mem` (a shared memory of at most `maxPages` pages) and the functions
 * `env.<imports[i].name>`, and defines `funcs` (function index = imports.length + position). Type
 * indexes: the imports' types, then each distinct type object of `funcs` in order of first use.
 */
export function buildModule(
  imports: { name: string; type: FuncType }[],
  funcs: FuncDef[],
  maxPages: number,
): Uint8Array<ArrayBuffer> {
  return moduleShape(imports, funcs, maxPages).build(funcs.map((f) => f.body));
}

/**
 * The sections of a module that do not depend on its function bodies (types, imports, functions,
 * exports), encoded once: the translator builds thousands of modules of one shape in a boot.
 */
export interface ModuleShape {
  /** The module with these bodies (one per function, in order, without their final `end`). */
  build(bodies: Code[]): Uint8Array<ArrayBuffer>;
}

export function moduleShape(
  imports: { name: string; type: FuncType }[],
  funcs: Omit<FuncDef, 'body'>[],
  maxPages: number,
  /** Also import `env.table`, a table of functions (call_indirect's table 0). */
  table = false,
  /**
   * Instead, define a table of functions of these types (call_indirect's table 0, type index
   * imports + distinct function types + position), exported as `t` and filled by the caller after
   * instantiation.
   */
  own: FuncType[] = [],
): ModuleShape {
  const out = new Bytes();
  out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const types = new Bytes();
  // Functions that share a type object share its entry (a module of many units declares one).
  const funcTypes = [...new Set(funcs.map((f) => f.type))];
  const all = [...imports.map((i) => i.type), ...funcTypes, ...own];
  types.u32(all.length);
  for (const t of all) {
    types.byte(0x60);
    types.u32(t.params.length);
    types.bytes(t.params);
    types.u32(t.results.length);
    types.bytes(t.results);
  }
  section(out, 1, types);
  const imp = new Bytes();
  imp.u32(imports.length + (table ? 2 : 1));
  name(imp, 'env');
  name(imp, 'mem');
  imp.byte(0x02); // memory
  imp.byte(0x03); // shared, with a maximum
  imp.u32(0);
  imp.u32(maxPages);
  if (table) {
    name(imp, 'env');
    name(imp, 'table');
    imp.byte(0x01); // table
    imp.byte(0x70); // funcref
    imp.byte(0x00); // no maximum
    imp.u32(0);
  }
  imports.forEach((im, k) => {
    name(imp, 'env');
    name(imp, im.name);
    imp.byte(0x00); // function
    imp.u32(k);
  });
  section(out, 2, imp);
  const fns = new Bytes();
  fns.u32(funcs.length);
  funcs.forEach((f) => fns.u32(imports.length + funcTypes.indexOf(f.type)));
  section(out, 3, fns);
  if (own.length > 0) {
    if (table) throw new Error('module: an imported table and an own table');
    const tab = new Bytes();
    tab.u32(1);
    tab.byte(0x70); // funcref
    tab.byte(0x01); // minimum and maximum
    tab.u32(own.length);
    tab.u32(own.length);
    section(out, 4, tab);
  }
  const exp = new Bytes();
  const exported = funcs.map((f, k) => [f.export, k] as const).filter(([e]) => e !== undefined);
  exp.u32(exported.length + (own.length > 0 ? 1 : 0));
  for (const [e, k] of exported) {
    name(exp, e!);
    exp.byte(0x00);
    exp.u32(imports.length + k);
  }
  if (own.length > 0) {
    name(exp, 't');
    exp.byte(0x01); // table
    exp.u32(0);
  }
  section(out, 7, exp);
  const head = out.view().slice();
  // Each function's locals, run-length encoded.
  const localDecls = funcs.map((f) => {
    const groups: [number, number][] = [];
    for (const t of f.locals) {
      const g = groups[groups.length - 1];
      if (g && g[1] === t) g[0]++;
      else groups.push([1, t]);
    }
    const b = new Bytes();
    b.u32(groups.length);
    for (const [n, t] of groups) {
      b.u32(n);
      b.byte(t);
    }
    return b.view().slice();
  });
  const leb = new Bytes();
  const lebLen = (v: number): number => {
    leb.len = 0;
    leb.u32(v);
    return leb.len;
  };
  return {
    build(bodies: Code[]): Uint8Array<ArrayBuffer> {
      if (bodies.length !== funcs.length)
        throw new Error(`module: ${funcs.length} bodies expected, got ${bodies.length}`);
      // code section: count, then per function its size, locals, body and `end`
      let codeLen = lebLen(funcs.length);
      const sizes = bodies.map((b, k) => localDecls[k].length + b.len + 1);
      for (const n of sizes) codeLen += lebLen(n) + n;
      const out = new Bytes(head.length + 1 + lebLen(codeLen) + codeLen);
      out.bytes(head);
      out.byte(10);
      out.u32(codeLen);
      out.u32(funcs.length);
      bodies.forEach((b, k) => {
        out.u32(sizes[k]);
        out.bytes(localDecls[k]);
        out.bytes(b.view());
        out.byte(Op.end);
      });
      return out.view();
    },
  };
}

// JavaScript generators for the hottest A64 instructions (see jit.ts). Each takes the instruction
// word and returns the statements that do what its interpreter handler does, with the operand fields
// folded in, or undefined to fall back to a call of the handler (always for encodings the handler
// rejects as UNDEF, so the exception comes from one place). In the generated code `cpu` is the CPU,
// `r` its register array (slot 2n low half, 2n+1 high half; slot 31 is SP), `mmu` its MMU and `L`
// the helpers of jit.ts. The difftest runs every case through these (npm run difftest).
//
// `mem: true` marks generators whose code can raise (loads and stores): the block sets cpu.pcLo
// before them, as exceptions report the faulting instruction's address.

import { BITMASK_HI, BITMASK_LO, BITMASK_OK } from './int64.js';
import { ACC_UNPRIV } from './mmu.js';

export interface Generator {
  gen: (insn: number) => string | undefined;
  mem: boolean;
}

export const generators = new Map<string, Generator>();

const TWO32 = '4294967296';

// ---- operand helpers (return JavaScript expressions) ----

/** Low / high half of Xn where 31 reads as XZR. */
const zlo = (n: number): string => (n === 31 ? '0' : `r[${n << 1}]`);
const zhi = (n: number): string => (n === 31 ? '0' : `r[${(n << 1) | 1}]`);
/** Low / high half of Xn where 31 is SP. */
const slo = (n: number): string => `r[${n << 1}]`;
const shi = (n: number): string => `r[${(n << 1) | 1}]`;

/** Write (lo, hi) to Xd with 31 = XZR (discarded), or with 31 = SP when `sp`. */
function setX(d: number, lo: string, hi: string, sp = false): string {
  if (d === 31 && !sp) return '';
  return `r[${d << 1}] = ${lo}; r[${(d << 1) | 1}] = ${hi};`;
}
function setW(d: number, v: string, sp = false): string {
  return setX(d, v, '0', sp);
}

/** Statements defining `bl`/`bh`: Xm shifted by a constant (type 0 LSL, 1 LSR, 2 ASR, 3 ROR). */
function shift64(m: number, type: number, amt: number): string {
  return shift64From(zlo(m), zhi(m), type, amt, '');
}

/**
 * Statements defining `bl${s}`/`bh${s}`: the 64-bit value (l, h) (expressions) shifted by a constant.
 * The suffix `s` keeps the names of two uses in one block apart.
 */
function shift64From(l: string, h: string, type: number, amt: number, s: string): string {
  const bl = `bl${s}`;
  const bh = `bh${s}`;
  if (amt === 0) return `const ${bl} = ${l}, ${bh} = ${h};`;
  const [ml, mh] = [`ml${s}`, `mh${s}`];
  const pre = `const ${ml} = ${l}, ${mh} = ${h};`;
  switch (type) {
    case 0:
      if (amt < 32)
        return `${pre} const ${bl} = ${ml} << ${amt}, ${bh} = (${mh} << ${amt}) | (${ml} >>> ${32 - amt});`;
      return `${pre} const ${bl} = 0, ${bh} = ${ml} << ${amt - 32};`;
    case 1:
      if (amt < 32)
        return `${pre} const ${bl} = (${ml} >>> ${amt}) | (${mh} << ${32 - amt}), ${bh} = ${mh} >>> ${amt};`;
      return `${pre} const ${bl} = ${mh} >>> ${amt - 32}, ${bh} = 0;`;
    case 2:
      if (amt < 32)
        return `${pre} const ${bl} = (${ml} >>> ${amt}) | (${mh} << ${32 - amt}), ${bh} = ${mh} >> ${amt};`;
      return `${pre} const ${bl} = ${mh} >> ${amt - 32}, ${bh} = ${mh} >> 31;`;
    default: {
      if (amt === 32) return `${pre} const ${bl} = ${mh}, ${bh} = ${ml};`;
      const [a, b, k] = amt < 32 ? [ml, mh, amt] : [mh, ml, amt - 32];
      return `${pre} const ${bl} = (${a} >>> ${k}) | (${b} << ${32 - k}), ${bh} = (${b} >>> ${k}) | (${a} << ${32 - k});`;
    }
  }
}

/** Expression: Wm shifted by a constant (amt < 32). */
function shift32(m: number, type: number, amt: number): string {
  const x = zlo(m);
  if (amt === 0) return x;
  switch (type) {
    case 0:
      return `(${x} << ${amt})`;
    case 1:
      return `(${x} >>> ${amt})`;
    case 2:
      return `(${x} >> ${amt})`;
    default:
      return `((${x} >>> ${amt}) | (${x} << ${32 - amt}))`;
  }
}

/** Statements: 64-bit a + b + cin with NZCV, result in `lo`/`hi` (AddWithCarry). */
function addFlags64(al: string, ah: string, bl: string, bh: string, cin: number | string): string {
  return (
    `const al = ${al}, ah = ${ah}, xl = ${bl}, xh = ${bh};` +
    ` const s = (al >>> 0) + (xl >>> 0) + ${cin}; const t = (ah >>> 0) + (xh >>> 0) + (s >= ${TWO32} ? 1 : 0);` +
    ' const lo = s | 0, hi = t | 0;' +
    ` cpu.n = hi >>> 31; cpu.z = (lo | hi) === 0 ? 1 : 0; cpu.c = t >= ${TWO32} ? 1 : 0; cpu.v = ((ah ^ hi) & (xh ^ hi)) >>> 31;`
  );
}

/** Statements: 32-bit a + b + cin with NZCV, result in `v`. */
function addFlags32(a: string, b: string, cin: number): string {
  return (
    `const a = ${a}, b = ${b}; const s = (a >>> 0) + (b >>> 0) + ${cin}; const v = s | 0;` +
    ` cpu.n = v >>> 31; cpu.z = v === 0 ? 1 : 0; cpu.c = s >= ${TWO32} ? 1 : 0; cpu.v = ((a ^ v) & (b ^ v)) >>> 31;`
  );
}

/** Boolean expression: the A64 condition `cond` holds for NZCV. */
export function condExpr(cond: number): string {
  let e: string;
  switch (cond >>> 1) {
    case 0:
      e = 'cpu.z === 1';
      break;
    case 1:
      e = 'cpu.c === 1';
      break;
    case 2:
      e = 'cpu.n === 1';
      break;
    case 3:
      e = 'cpu.v === 1';
      break;
    case 4:
      e = '(cpu.c === 1 && cpu.z === 0)';
      break;
    case 5:
      e = 'cpu.n === cpu.v';
      break;
    case 6:
      e = '(cpu.z === 0 && cpu.n === cpu.v)';
      break;
    default:
      return 'true';
  }
  return (cond & 1) !== 0 && cond !== 15 ? `!(${e})` : e;
}

const fields = (insn: number): { d: number; n: number; m: number } => ({
  d: insn & 31,
  n: (insn >>> 5) & 31,
  m: (insn >>> 16) & 31,
});

function def(names: string[], mem: boolean, gen: (insn: number) => string | undefined): void {
  for (const name of names) generators.set(name, { gen, mem });
}

// ---- add/subtract (shifted register) ----

def(['ADD_sreg_x', 'SUB_sreg_x', 'ADDS_sreg_x', 'SUBS_sreg_x'], false, (insn) => {
  const type = (insn >>> 22) & 3;
  if (type === 3) return undefined;
  const { d, n, m } = fields(insn);
  const sub = (insn & 0x40000000) !== 0;
  const flags = (insn & 0x20000000) !== 0;
  const op2 = shift64(m, type, (insn >>> 10) & 63);
  if (flags) {
    const b = sub ? ['~bl', '~bh', 1] : ['bl', 'bh', 0];
    return `{ ${op2} ${addFlags64(zlo(n), zhi(n), b[0] as string, b[1] as string, b[2] as number)} ${setX(d, 'lo', 'hi')} }`;
  }
  if (d === 31) return '';
  if (sub) {
    return `{ ${op2} const s = (${zlo(n)} >>> 0) - (bl >>> 0); const h = ${zhi(n)} - bh - (s < 0 ? 1 : 0); ${setX(d, 's | 0', 'h | 0')} }`;
  }
  return `{ ${op2} const s = (${zlo(n)} >>> 0) + (bl >>> 0); const h = ${zhi(n)} + bh + (s >= ${TWO32} ? 1 : 0); ${setX(d, 's | 0', 'h | 0')} }`;
});

def(['ADD_sreg_w', 'SUB_sreg_w', 'ADDS_sreg_w', 'SUBS_sreg_w'], false, (insn) => {
  const type = (insn >>> 22) & 3;
  if (type === 3) return undefined;
  const { d, n, m } = fields(insn);
  const sub = (insn & 0x40000000) !== 0;
  const flags = (insn & 0x20000000) !== 0;
  const b = shift32(m, type, (insn >>> 10) & 31);
  if (flags) return `{ ${addFlags32(zlo(n), sub ? `~${b}` : b, sub ? 1 : 0)} ${setW(d, 'v')} }`;
  return setW(d, `(${zlo(n)} ${sub ? '-' : '+'} ${b}) | 0`);
});

// ---- logical (shifted register) ----

def(['LOGIC_reg_x'], false, (insn) => {
  const { d, n, m } = fields(insn);
  const op2 = shift64(m, (insn >>> 22) & 3, (insn >>> 10) & 63);
  const inv = (insn & 0x200000) !== 0 ? '~' : '';
  const opc = (insn >>> 29) & 3;
  const op = opc === 1 ? '|' : opc === 2 ? '^' : '&';
  const calc = `${op2} const lo = ${zlo(n)} ${op} ${inv}bl, hi = ${zhi(n)} ${op} ${inv}bh;`;
  if (opc === 3)
    return `{ ${calc} cpu.n = hi >>> 31; cpu.z = (lo | hi) === 0 ? 1 : 0; cpu.c = 0; cpu.v = 0; ${setX(d, 'lo', 'hi')} }`;
  return d === 31 ? '' : `{ ${calc} ${setX(d, 'lo', 'hi')} }`;
});

def(['LOGIC_reg_w'], false, (insn) => {
  const { d, n, m } = fields(insn);
  let b = shift32(m, (insn >>> 22) & 3, (insn >>> 10) & 31);
  if ((insn & 0x200000) !== 0) b = `~${b}`;
  const opc = (insn >>> 29) & 3;
  const op = opc === 1 ? '|' : opc === 2 ? '^' : '&';
  if (opc === 3)
    return `{ const v = ${zlo(n)} & ${b}; cpu.n = v >>> 31; cpu.z = v === 0 ? 1 : 0; cpu.c = 0; cpu.v = 0; ${setW(d, 'v')} }`;
  return setW(d, `${zlo(n)} ${op} ${b}`);
});

def(['MOV_reg_x'], false, (insn) => {
  const { d, m } = fields(insn);
  return d === 31 ? '' : `{ const l = ${zlo(m)}, h = ${zhi(m)}; ${setX(d, 'l', 'h')} }`;
});

def(['MOV_reg_w'], false, (insn) => {
  const { d, m } = fields(insn);
  return setW(d, zlo(m));
});

// ---- conditional select ----

def(['CSEL_x'], false, (insn) => {
  const { d, n, m } = fields(insn);
  if (d === 31) return '';
  const inv = (insn & 0x40000000) !== 0;
  const inc = (insn & 0x400) !== 0;
  let alt = `l = ${inv ? '~' : ''}${zlo(m)}; h = ${inv ? '~' : ''}${zhi(m)};`;
  if (inc) alt += ' l = (l + 1) | 0; if (l === 0) h = (h + 1) | 0;';
  return `{ let l, h; if (${condExpr((insn >>> 12) & 15)}) { l = ${zlo(n)}; h = ${zhi(n)}; } else { ${alt} } ${setX(d, 'l', 'h')} }`;
});

def(['CSEL_w'], false, (insn) => {
  const { d, n, m } = fields(insn);
  if (d === 31) return '';
  const inv = (insn & 0x40000000) !== 0;
  const inc = (insn & 0x400) !== 0;
  const alt = `${inv ? '~' : ''}${zlo(m)}${inc ? ' + 1' : ''}`;
  return setW(d, `(${condExpr((insn >>> 12) & 15)} ? ${zlo(n)} : ${alt}) | 0`);
});

// ---- multiply ----

def(['MADD_MSUB_x'], false, (insn) => {
  const { d, n, m } = fields(insn);
  if (d === 31) return '';
  const a = (insn >>> 10) & 31;
  const sub = (insn & 0x8000) !== 0;
  // 64x64 -> low 64: exact low 32x32 product (Math.imul plus a corrected double high half, as
  // int64.umul32) plus the two cross products' low halves.
  const mul =
    `const x = ${zlo(n)}, y = ${zlo(m)}; const pl = Math.imul(x, y); const p = (x >>> 0) * (y >>> 0);` +
    ` let ph = Math.floor(p / ${TWO32}); if ((pl >>> 0) - (p - ph * ${TWO32}) > 2147483648) ph--;` +
    ` ph = (ph + Math.imul(x, ${zhi(m)}) + Math.imul(${zhi(n)}, y)) | 0;`;
  const acc = sub
    ? `const s = (${zlo(a)} >>> 0) + (~pl >>> 0) + 1; const h = ${zhi(a)} + ~ph + (s >= ${TWO32} ? 1 : 0);`
    : `const s = (${zlo(a)} >>> 0) + (pl >>> 0); const h = ${zhi(a)} + ph + (s >= ${TWO32} ? 1 : 0);`;
  return `{ ${mul} ${acc} ${setX(d, 's | 0', 'h | 0')} }`;
});

def(['MADD_MSUB_w'], false, (insn) => {
  const { d, n, m } = fields(insn);
  const a = (insn >>> 10) & 31;
  return setW(d, `(${zlo(a)} ${(insn & 0x8000) !== 0 ? '-' : '+'} Math.imul(${zlo(n)}, ${zlo(m)})) | 0`);
});

// ---- add/subtract (immediate): Rn and (for ADD/SUB) Rd are SP-form ----

const imm12 = (insn: number): number =>
  (insn & 0x400000) !== 0 ? ((insn >>> 10) & 0xfff) << 12 : (insn >>> 10) & 0xfff;

def(['ADD_imm_x', 'SUB_imm_x'], false, (insn) => {
  const { d, n } = fields(insn);
  const imm = imm12(insn);
  if ((insn & 0x40000000) !== 0) {
    return `{ const s = (${slo(n)} >>> 0) - ${imm}; const h = ${shi(n)} - (s < 0 ? 1 : 0); ${setX(d, 's | 0', 'h | 0', true)} }`;
  }
  return `{ const s = (${slo(n)} >>> 0) + ${imm}; const h = ${shi(n)} + (s >= ${TWO32} ? 1 : 0); ${setX(d, 's | 0', 'h | 0', true)} }`;
});

def(['ADDS_imm_x', 'SUBS_imm_x'], false, (insn) => {
  const { d, n } = fields(insn);
  const imm = imm12(insn);
  const sub = (insn & 0x40000000) !== 0;
  return `{ ${addFlags64(slo(n), shi(n), sub ? String(~imm) : String(imm), sub ? '-1' : '0', sub ? 1 : 0)} ${setX(d, 'lo', 'hi')} }`;
});

def(['ADD_imm_w', 'SUB_imm_w'], false, (insn) => {
  const { d, n } = fields(insn);
  return setW(d, `(${slo(n)} ${(insn & 0x40000000) !== 0 ? '-' : '+'} ${imm12(insn)}) | 0`, true);
});

def(['ADDS_imm_w', 'SUBS_imm_w'], false, (insn) => {
  const { d, n } = fields(insn);
  const imm = imm12(insn);
  const sub = (insn & 0x40000000) !== 0;
  return `{ ${addFlags32(slo(n), String(sub ? ~imm : imm), sub ? 1 : 0)} ${setW(d, 'v')} }`;
});

// ---- move wide ----

def(['MOVZ_x', 'MOVN_x'], false, (insn) => {
  const d = insn & 31;
  const hw = (insn >>> 21) & 3;
  const imm = (insn >>> 5) & 0xffff;
  let lo = hw === 0 ? imm : hw === 1 ? imm << 16 : 0;
  let hi = hw === 2 ? imm : hw === 3 ? imm << 16 : 0;
  if ((insn & 0x40000000) === 0) {
    lo = ~lo;
    hi = ~hi;
  }
  return setX(d, String(lo | 0), String(hi | 0));
});

def(['MOVZ_w', 'MOVN_w'], false, (insn) => {
  const d = insn & 31;
  const v = ((insn >>> 5) & 0xffff) << ((insn >>> 21) & 1 ? 16 : 0);
  return setW(d, String((insn & 0x40000000) === 0 ? ~v : v | 0));
});

def(['MOVK_x'], false, (insn) => {
  const d = insn & 31;
  if (d === 31) return '';
  const hw = (insn >>> 21) & 3;
  const imm = (insn >>> 5) & 0xffff;
  const slot = (d << 1) | (hw >>> 1);
  const keep = (hw & 1) !== 0 ? 0xffff : 0xffff0000 | 0;
  const ins = (hw & 1) !== 0 ? imm << 16 : imm;
  return `r[${slot}] = (r[${slot}] & ${keep}) | ${ins};`;
});

// ---- logical (immediate): the mask is a constant ----

def(['LOGIC_imm_x', 'LOGIC_imm_w'], false, (insn) => {
  const idx = (insn >>> 10) & 0x1fff;
  if (BITMASK_OK[idx] === 0) return undefined;
  const wide = (insn & 0x80000000) !== 0;
  const { d, n } = fields(insn);
  const ml = BITMASK_LO[idx];
  const mh = wide ? BITMASK_HI[idx] : 0;
  const opc = (insn >>> 29) & 3;
  const op = opc === 1 ? '|' : opc === 2 ? '^' : '&';
  const hiExpr = wide ? `${zhi(n)} ${op} ${mh}` : '0';
  const calc = `const lo = ${zlo(n)} ${op} ${ml}, hi = ${hiExpr};`;
  if (opc === 3) {
    const z = wide ? '(lo | hi) === 0' : 'lo === 0';
    const nf = wide ? 'hi >>> 31' : 'lo >>> 31';
    return `{ ${calc} cpu.n = ${nf}; cpu.z = ${z} ? 1 : 0; cpu.c = 0; cpu.v = 0; ${setX(d, 'lo', 'hi')} }`;
  }
  return `{ ${calc} ${setX(d, 'lo', 'hi', true)} }`;
});

// ---- loads and stores ----

/** Statements: `al`/`ah` = Xn (SP for 31) + constant offset (|off| < 2^31), with the SP alignment check. */
function addrImm(n: number, off: number): string {
  const check = n === 31 ? 'L.spCheck(cpu, 31); ' : '';
  return `${check}const s = (${slo(n)} >>> 0) + ${off}; const al = s | 0, ah = (${shi(n)} + (s >= ${TWO32} ? 1 : s < 0 ? -1 : 0)) | 0;`;
}

def(['LDR_X_uimm', 'STR_X_uimm', 'LDR_W_uimm', 'STR_W_uimm', 'LDRB_uimm', 'STRB_uimm'], true, (insn) => {
  const size = insn >>> 30;
  const a = addrImm((insn >>> 5) & 31, ((insn >>> 10) & 0xfff) << size);
  return `{ ${a} ${access(size, (insn & 0x400000) !== 0, insn & 31)} }`;
});

/** Statements: a load of `size` (0 byte, 2 word, 3 doubleword) from (al, ah) into Rt, or a store of Rt there. */
function access(size: number, load: boolean, t: number, unpriv = false): string | undefined {
  const f = unpriv ? `, ${ACC_UNPRIV}` : ''; // LDTR/STTR: permissions checked as at EL0
  if (size === 3)
    return load
      ? `const v = mmu.read64(al, ah${f}); ${setX(t, 'v', 'mmu.hi')}`
      : `mmu.write64(al, ah, ${zlo(t)}, ${zhi(t)}${f});`;
  if (size === 2)
    return load ? `const v = mmu.read32(al, ah${f}); ${setW(t, 'v')}` : `mmu.write32(al, ah, ${zlo(t)}${f});`;
  if (size === 0)
    return load
      ? `const v = mmu.read8(al, ah${f}); ${setW(t, 'v')}`
      : `mmu.write8(al, ah, ${zlo(t)} & 0xff${f});`;
  return undefined;
}

def(['LDRX_reg', 'STRX_reg', 'LDRW_reg', 'STRW_reg', 'LDRB_reg', 'STRB_reg'], true, (insn) => {
  const option = (insn >>> 13) & 7;
  if ((option & 2) === 0) return undefined;
  const size = insn >>> 30;
  const { n, m } = fields(insn);
  const t = insn & 31;
  const shift = (insn & 0x1000) !== 0 ? size : 0;
  const check = n === 31 ? 'L.spCheck(cpu, 31); ' : '';
  let off: string;
  if (m === 31) off = 'let ml = 0, mh = 0;';
  else {
    const mh = (option & 1) !== 0 ? zhi(m) : (option & 4) !== 0 ? `(${zlo(m)} >> 31)` : '0';
    off = `let ml = ${zlo(m)}, mh = ${mh};`;
  }
  if (shift) off += ` mh = (mh << ${shift}) | (ml >>> ${32 - shift}); ml <<= ${shift};`;
  const a = `${check}${off} const s = (${slo(n)} >>> 0) + (ml >>> 0); const al = s | 0, ah = (${shi(n)} + mh + (s >= ${TWO32} ? 1 : 0)) | 0;`;
  return `{ ${a} ${access(size, (insn & 0x400000) !== 0, t)} }`;
});

def(['LDRX_imm9', 'STRX_imm9', 'LDRW_imm9', 'STRW_imm9', 'LDRB_imm9', 'STRB_imm9'], true, (insn) => {
  const mode = (insn >>> 10) & 3; // 0 unscaled, 1 post-index, 2 unprivileged (LDTR/STTR), 3 pre-index
  const n = (insn >>> 5) & 31;
  const t = insn & 31;
  if ((mode & 1) !== 0 && n === t && n !== 31) return undefined;
  const imm = (insn << 11) >> 23;
  const a = addrImm(n, mode === 1 ? 0 : imm);
  const acc = access(insn >>> 30, (insn & 0x400000) !== 0, t, mode === 2);
  return `{ ${a} ${acc} ${(mode & 1) !== 0 ? writeback(n, imm) : ''} }`;
});

/** Statements: Xn (SP for 31) += off after the accesses (pre/post-index writeback). */
function writeback(n: number, off: number): string {
  return `{ const w = (${slo(n)} >>> 0) + ${off}; ${shi(n)} = ${shi(n)} + (w >= ${TWO32} ? 1 : w < 0 ? -1 : 0); ${slo(n)} = w | 0; }`;
}

def(['LDP_X', 'STP_X', 'LDP_X_wb', 'STP_X_wb'], true, (insn) => {
  const t = insn & 31;
  const t2 = (insn >>> 10) & 31;
  const n = (insn >>> 5) & 31;
  const load = (insn & 0x400000) !== 0;
  const wb = (insn & 0x800000) !== 0; // bits 25:23: 001 post-index, 011 pre-index, 010 signed offset
  if (load && t === t2) return undefined;
  if (wb && n !== 31 && (n === t || n === t2)) return undefined;
  const imm = ((insn << 10) >> 25) << 3;
  const post = wb && (insn & 0x1000000) === 0;
  const a = addrImm(n, post ? 0 : imm);
  // The second address: (al, ah) + 8.
  const a2 = `const s2 = (al >>> 0) + 8; const bl = s2 | 0, bh = (ah + (s2 >= ${TWO32} ? 1 : 0)) | 0;`;
  const access = load
    ? `const v = mmu.read64(al, ah); const vh = mmu.hi; const u = mmu.read64(bl, bh); const uh = mmu.hi; ${setX(t, 'v', 'vh')} ${setX(t2, 'u', 'uh')}`
    : `mmu.write64(al, ah, ${zlo(t)}, ${zhi(t)}); mmu.write64(bl, bh, ${zlo(t2)}, ${zhi(t2)});`;
  return `{ ${a} ${a2} ${access} ${wb ? writeback(n, imm) : ''} }`;
});

// ---- bitfield move (UBFM, SBFM: LSL, LSR, ASR, UBFX, SBFX, UXTW, SXTW, ...) ----

/** ones(k) for 0 <= k <= 32, as int32. */
const ones = (k: number): number => (k >= 32 ? -1 : (1 << k) - 1);

def(['UBFM_x', 'SBFM_x'], false, (insn) => {
  const { d, n } = fields(insn);
  if (d === 31) return '';
  const immr = (insn >>> 16) & 63;
  const imms = (insn >>> 10) & 63;
  const signed = (insn & 0x40000000) === 0;
  const w = imms >= immr ? imms - immr + 1 : imms + 1;
  // the field: Xn >> immr (imms >= immr), or Xn's low w bits that will move up
  const src = shift64From(zlo(n), zhi(n), 1, imms >= immr ? immr : 0, '');
  let field: string;
  if (signed) {
    field =
      w <= 32
        ? `let l = ${w === 32 ? 'bl | 0' : `(bl << ${32 - w}) >> ${32 - w}`}; let h = l >> 31;`
        : `let l = bl; let h = ${w === 64 ? 'bh | 0' : `(bh << ${64 - w}) >> ${64 - w}`};`;
  } else {
    field = w <= 32 ? `let l = bl & ${ones(w)}; let h = 0;` : `let l = bl; let h = bh & ${ones(w - 32)};`;
  }
  if (imms < immr) {
    return `{ ${src} ${field} { ${shift64From('l', 'h', 0, 64 - immr, '2')} l = bl2; h = bh2; } ${setX(d, 'l', 'h')} }`;
  }
  return `{ ${src} ${field} ${setX(d, 'l', 'h')} }`;
});

// ---- add/subtract (extended register), with carry ----

def(['ADDSUB_ext_x'], false, (insn) => {
  const sh = (insn >>> 10) & 7;
  if (sh > 4) return undefined;
  const { d, n, m } = fields(insn);
  const option = (insn >>> 13) & 7;
  const x = zlo(m);
  const ext = [
    `${x} & 0xff`,
    `${x} & 0xffff`,
    `${x}`,
    `${x}`,
    `(${x} << 24) >> 24`,
    `(${x} << 16) >> 16`,
    `${x}`,
    `${x}`,
  ][option];
  const extHi = option === 3 || option === 7 ? zhi(m) : option >= 4 ? 'el >> 31' : '0';
  const op2 = `const el = ${ext}; const eh = ${extHi}; ${shift64From('el', 'eh', 0, sh, '')}`;
  const sub = (insn & 0x40000000) !== 0;
  if ((insn & 0x20000000) !== 0) {
    return `{ ${op2} ${addFlags64(slo(n), shi(n), sub ? '~bl' : 'bl', sub ? '~bh' : 'bh', sub ? 1 : 0)} ${setX(d, 'lo', 'hi')} }`;
  }
  const b = sub ? ['~bl', '~bh', 1] : ['bl', 'bh', 0];
  return `{ ${op2} const s = (${slo(n)} >>> 0) + (${b[0]} >>> 0) + ${b[2]}; const h = ${shi(n)} + ${b[1]} + (s >= ${TWO32} ? 1 : 0); ${setX(d, 's | 0', 'h | 0', true)} }`;
});

def(['ADC_SBC_x'], false, (insn) => {
  const { d, n, m } = fields(insn);
  const inv = (insn & 0x40000000) !== 0 ? '~' : '';
  const b = `const ml = ${inv}${zlo(m)}, mh = ${inv}${zhi(m)};`;
  if ((insn & 0x20000000) !== 0)
    return `{ ${b} ${addFlags64(zlo(n), zhi(n), 'ml', 'mh', 'cpu.c')} ${setX(d, 'lo', 'hi')} }`;
  if (d === 31) return '';
  return `{ ${b} const s = (${zlo(n)} >>> 0) + (ml >>> 0) + cpu.c; const h = ${zhi(n)} + mh + (s >= ${TWO32} ? 1 : 0); ${setX(d, 's | 0', 'h | 0')} }`;
});

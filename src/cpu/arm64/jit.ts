// Block translator: code that runs often is turned into JavaScript functions (through
// `new Function`), so the executor dispatches once per block instead of once per instruction and
// V8 compiles each instruction with its operand fields as constants. Instructions with a generator in
// jit_gen.ts, and the direct branches, are emitted as straight JavaScript; the rest call their
// interpreter handler with the constant encoding.
//
// A translation unit (a "region") starts at a block head that the interpreter entered
// JIT_THRESHOLD times. It holds basic blocks of one 4 KiB code page: a basic block ends at a branch,
// at an instruction that changes state the executor must see at once (exception generation, MSR,
// TLBI, IC, WFI, ERET, ...; see STRAIGHT_SYSTEM for the system instructions that do not), at the
// page end, or after MAX_BLOCK instructions. Branch targets inside the page that are already in the
// region are jumped to without leaving the function (a label switch), so a loop whose branch goes
// back to the region's head runs inside it. `maxRegion` (CodeCache.jitRegion) bounds how many
// further instructions a region pulls in from the other basic blocks its branches reach; it is 0 by
// default (REGION_DEFAULT), because measured on the default guest's boot, bigger regions ran slower in
// V8 (more cold paths in each optimized function, each one a deoptimization when first taken). The
// difftest translates with regions on, so that path stays checked.
// Regions are cached per physical page with the decoded handlers (CodeCache) and dropped with them
// when the page is written, or when no vCPU entered the page for a sweep interval.
//
// Contract with the executor: on entry cpu.pcLo/pcHi is the region's first instruction. The
// region sets cpu.pcLo before every instruction that can raise (exceptions and PC-relative forms
// read it; pcHi cannot change inside one page), and on a normal exit leaves cpu.pcLo/pcHi at the
// next instruction and returns the number of instructions retired. An exception thrown inside
// (GUEST_EXCEPTION, or COUNT_SYNC from Arm64Cpu.exactRetired) passes through the region's catch,
// which leaves in cpu.regionPart how many of its instructions ran before the one that threw (that
// one's address is cpu.excFromLo), so the executor's count is exact (the PMU counts from it).
// A region also leaves at the end of a basic block when an unmasked interrupt is pending, so an
// interrupt raised by a store to a device, or by a system register write, is taken within
// MAX_BLOCK - 1 instructions even in a loop that stays inside the region.

import type { Handler } from './decode.js';
import type { Arm64Cpu } from './cpu.js';
import { condExpr, generators } from './jit_gen.js';
import { spCheck } from './insn/ldst_common.js';

/** Runs a translated region; leaves at the first basic-block boundary after `limit` instructions. */
export type BlockFn = (cpu: Arm64Cpu, limit: number) => number;

/** Longest block, in instructions. */
export const MAX_BLOCK = 64;

/**
 * System instructions that a block may run through: hints, barriers and registers that change no
 * state the executor caches (translation, EL, interrupt masks, the code cache).
 */
const STRAIGHT_SYSTEM = new Set([
  'NOP',
  'HINT',
  'YIELD',
  'DSB',
  'DMB',
  'CLREX',
  'MRS_TPIDR_EL0',
  'MSR_TPIDR_EL0',
  'MRS_TPIDRRO_EL0',
  'MRS_TPIDR_EL1',
  'MSR_TPIDR_EL1',
  'MRS_NZCV',
  'MSR_NZCV',
  'MRS_DAIF',
  'MRS_SP_EL0',
  'DC_CVAC',
  'DC_CVAU',
  'DC_CVAP',
  'DC_CIVAC',
  'DC_ZVA',
]);

let enders: Set<Handler> | undefined;

/** The handlers after which a block must end (every branch and system pattern but the straight ones). */
export function setBlockEnders(groups: {
  branch: { name: string; handler: Handler }[];
  system: { name: string; handler: Handler }[];
}): void {
  enders = new Set<Handler>();
  for (const p of groups.branch) enders.add(p.handler);
  for (const p of groups.system) if (!STRAIGHT_SYSTEM.has(p.name)) enders.add(p.handler);
}

/** True for the handlers after which a block must end. */
export function isBlockEnder(h: Handler): boolean {
  if (!enders) throw new Error('jit: setBlockEnders() was not called');
  return enders.has(h);
}

export interface DecodedInsn {
  name: string;
  handler: Handler;
}

const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

/** Default for how many instructions a region may take in from basic blocks other than its first. */
export const REGION_DEFAULT = 0;

const TWO32 = 4294967296;

/** Statements: leave the region with PC = `expr` (a number that may carry out of or borrow from pcLo). */
function exitTo(expr: string): string {
  return (
    `{ const t = ${expr}; if (t >= ${TWO32}) { cpu.pcLo = t - ${TWO32}; cpu.pcHi = (cpu.pcHi + 1) >>> 0; }` +
    ` else if (t < 0) { cpu.pcLo = t + ${TWO32}; cpu.pcHi = (cpu.pcHi - 1) >>> 0; } else cpu.pcLo = t; return n; }`
  );
}

/** A branch the translator emits inline: its condition (JS, undefined = always) and byte offset. */
function inlineBranch(
  name: string,
  insn: number,
): { cond: string | undefined; off: number; link: boolean } | undefined {
  const t = insn & 31;
  const lo = `r[${t << 1}]`;
  const hi = `r[${(t << 1) | 1}]`;
  const off19 = ((insn << 8) >> 11) & ~3;
  switch (name) {
    case 'B':
      return { cond: undefined, off: (insn << 6) >> 4, link: false };
    case 'BL':
      return { cond: undefined, off: (insn << 6) >> 4, link: true };
    case 'B_cond':
    case 'B_EQ':
    case 'B_NE': {
      const c = condExpr(insn & 15);
      return { cond: c === 'true' ? undefined : c, off: off19, link: false };
    }
    case 'CBZ_x':
      return { cond: t === 31 ? undefined : `(${lo} | ${hi}) === 0`, off: off19, link: false };
    case 'CBNZ_x':
      return { cond: t === 31 ? 'false' : `(${lo} | ${hi}) !== 0`, off: off19, link: false };
    case 'CBZ_w':
      return { cond: t === 31 ? undefined : `${lo} === 0`, off: off19, link: false };
    case 'CBNZ_w':
      return { cond: t === 31 ? 'false' : `${lo} !== 0`, off: off19, link: false };
    case 'TBZ_TBNZ': {
      const bit = ((insn >>> 26) & 32) | ((insn >>> 19) & 31);
      const want = (insn >>> 24) & 1;
      const v = t === 31 ? '0' : bit < 32 ? `((${lo} >>> ${bit}) & 1)` : `((${hi} >>> ${bit - 32}) & 1)`;
      return { cond: `${v} === ${want}`, off: ((insn << 13) >> 16) & ~3, link: false };
    }
    default:
      return undefined;
  }
}

/**
 * Translate the region entered at word `startIdx` of a code page: the basic block there and, while
 * the region stays under `maxRegion` instructions, every basic block of the same page its branches
 * reach. Control flow between them stays inside the function (a label switch), so a loop within one
 * page runs without returning to the executor. The function gets the instruction limit: it leaves
 * at the first basic-block boundary past it. `word(i)` reads the page's i-th instruction word and
 * `decode` decodes one (both supplied by the code cache).
 */
export function translateBlock(
  startIdx: number,
  word: (i: number) => number,
  decode: (insn: number) => DecodedInsn,
  undefinedHandler: Handler,
  maxRegion = REGION_DEFAULT,
): BlockFn {
  if (!enders) throw new Error('jit: setBlockEnders() was not called');
  const handlers: Handler[] = [];
  const cases: string[] = [];
  const queued = new Set<number>([startIdx]);
  const queue = [startIdx];
  let total = 0;
  /** `at = target;` when the target joins the region, else an exit to it. */
  const goTo = (from: number, off: number): string => {
    const target = from + off / 4;
    if (target >= 0 && target < 1024) {
      if (queued.has(target)) return `at = ${target};`;
      if (total < maxRegion) {
        queued.add(target);
        queue.push(target);
        return `at = ${target};`;
      }
    }
    return exitTo(`base + ${from * 4 + off}`);
  };
  const call = (insn: number, h: Handler): string => {
    handlers.push(h);
    return `h${handlers.length - 1}(cpu, ${hex(insn)});`;
  };
  while (queue.length > 0) {
    const first = queue.shift()!;
    const body: string[] = [];
    let i = first;
    let tail: string | undefined;
    let counted = false;
    while (tail === undefined) {
      if (i >= 1024 || i - first >= MAX_BLOCK) {
        tail = goTo(i, 0); // fall through to the next page or the next basic block
        break;
      }
      const insn = word(i) >>> 0;
      const d = decode(insn);
      const len = i - first + 1;
      const br = inlineBranch(d.name, insn);
      if (br) {
        const link = br.link
          ? `{ const l = base + ${(i + 1) * 4}; if (l >= ${TWO32}) { r[60] = 0; r[61] = cpu.pcHi + 1; } else { r[60] = l; r[61] = cpu.pcHi; } } `
          : '';
        const taken = goTo(i, br.off);
        body.push(`n += ${len}; ${link}`);
        counted = true;
        tail = br.cond === undefined ? taken : `if (${br.cond}) { ${taken} } else { ${goTo(i, 4)} }`;
      } else if (enders.has(d.handler) || d.handler === undefinedHandler) {
        // The handler gets the next PC (pc + 4) and sends us wherever it decides: leave the region.
        // The block counts once the handler returned (see the catch below).
        body.push(`cpu.pcLo = base + ${i * 4};`);
        body.push(
          `{ const t = base + ${(i + 1) * 4}; if (t >= ${TWO32}) { cpu.nextLo = 0; cpu.nextHi = (cpu.pcHi + 1) >>> 0; } else { cpu.nextLo = t; cpu.nextHi = cpu.pcHi; } }`,
        );
        body.push(call(insn, d.handler));
        body.push(`n += ${len};`);
        counted = true;
        tail = 'cpu.pcLo = cpu.nextLo; cpu.pcHi = cpu.nextHi; return n;';
      } else {
        const gen = generators.get(d.name);
        const js = gen?.gen(insn);
        if (js !== undefined) {
          // Only code that can raise needs the instruction's address in cpu.pcLo.
          if (gen!.mem) body.push(`cpu.pcLo = base + ${i * 4};`);
          body.push(js);
        } else {
          body.push(`cpu.pcLo = base + ${i * 4}; ${call(insn, d.handler)}`);
        }
        i++;
        continue;
      }
      i++;
    }
    if (!counted) body.push(`n += ${i - first};`);
    total += i - first;
    cases.push(`case ${first}: {\n${body.join('\n')}\n${tail}\nbreak; }`);
  }
  const names = handlers.map((_, k) => `h${k}`);
  const src =
    `${names.length ? `const [${names.join(', ')}] = H;\n` : ''}` +
    'return function region(cpu, limit) {\n' +
    'const r = cpu.r;\nconst mmu = cpu.mmu;\n' +
    `const base = cpu.pcLo - ${startIdx * 4};\n` +
    `let n = 0;\nlet at = ${startIdx};\n` +
    'try {\nfor (;;) {\n' +
    `switch (at) {\n${cases.join('\n')}\ndefault: throw new Error('jit: no label ' + at);\n}\n` +
    'if (n > limit || ((cpu.irqLine || cpu.fiqLine) && cpu.interruptPending())) { cpu.pcLo = base + at * 4; return n; }\n' +
    '}\n} catch (e) {\n' +
    // `n` counts the basic blocks completed; the one that threw started at `at`.
    `const k = ((cpu.excFromLo - base) >>> 2) - at;\ncpu.regionPart = n + (k >= 0 && k < ${MAX_BLOCK} ? k : 0);\nthrow e;\n}\n` +
    '};';
  // new Function: the translator's whole point is code V8 compiles; no library does A64 -> JS.
  return new Function('H', 'L', src)(handlers, LIB) as BlockFn;
}

/** Helpers the generated code may use (passed in as `L`). */
const LIB = { spCheck };

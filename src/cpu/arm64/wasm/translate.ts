// The translator: hot guest code becomes WebAssembly. A unit starts at a block head the interpreter
// entered often (see CodeCache) and holds the basic blocks of one 4 KiB code page that its branches
// reach, up to `maxRegion` further instructions; branches between its blocks stay inside the wasm
// function (a loop over a br_table of block labels). A basic block ends at a branch, at an
// instruction that changes state the executor must see at once (see jit.ts's enders), at the page end,
// or after MAX_BLOCK instructions.
//
// Inside a unit, guest registers, flags and the software TLB are read and written where the
// interpreter keeps them, in the vCPU's state block of the shared memory (layout.ts), so the unit
// needs no copy-in or write-back and an exception can leave it at any instruction. Instructions with
// an emitter (emit.ts) become inline wasm with 64-bit arithmetic in i64; loads and stores take an
// inline TLB hit path and call the MMU on a miss, on MMIO and on unaligned accesses; every other
// instruction calls its interpreter handler (import `h`), so no instruction forces a unit to end
// early.
//
// Contract with the executor (jit.ts) and the dispatcher (dispatch.ts): a unit is called as
// (st, limit, n) with PC at its first instruction and n the instructions the dispatcher's call
// retired before it; it leaves at the first block boundary after `limit` instructions in all, or when
// an unmasked interrupt is pending (the IRQ word of the state block, kept by the helpers that can
// change it), with PC at the next instruction, returning n plus its own instructions retired, with
// STOP set when a block ender (a system instruction, an exception...) changed what the executor
// must see (helper hs; otherwise the unit goes on after it). The helpers set
// cpu.pcLo/pcHi and cpu.regionPart (the dispatcher call's instructions before the current one)
// before they call into the CPU, so an exception thrown from inside leaves an exact count.

import type { Handler } from '../decode.js';
import type { Arm64Cpu } from '../cpu.js';
import type { DecodedInsn } from '../jit.js';
import { MAX_BLOCK, isBlockEnder } from '../jit.js';
import { Code, Op, moduleShape, type ModuleShape } from './encoder.js';
import { ASID_OFF, ATTN_OFF, BASE_OFF, EL_OFF, HI_OFF, IRQ_OFF, PC_OFF } from './layout.js';
import { runtimeFor } from './runtime.js';
import { STOP, jcContext, jcInsert, type UnitTable } from './dispatch.js';
import {
  FN_TYPE,
  RUNTIME_FNS,
  LOCALS,
  L_BASE,
  L_ELX,
  L_LIMIT,
  L_N,
  L_ST,
  L_T0,
  L_AT,
  L_TW,
  Unit,
  condition,
} from './unit.js';
import { spCheck } from '../insn/ldst_common.js';
import { loadExclusive, storeExclusive } from '../insn/ldst_int.js';
import { emitters, enderEmitters, type Emit } from './emit.js';

/** Where a basic block goes: inline branches (taken target, condition) or out through a handler. */
interface Block {
  first: number;
  /** Instructions in the block, the terminator included. */
  insns: { idx: number; insn: number; d: DecodedInsn }[];
  end: 'fall' | 'branch' | 'indirect' | 'handler';
  /** Word offset of the taken branch (branch) from its instruction. */
  off: number;
}

/** A direct branch's condition kind and word offset, for the branches emitted inline. */
function branchOf(name: string, insn: number): number | undefined {
  switch (name) {
    case 'B':
    case 'BL':
      return (insn << 6) >> 6;
    case 'B_cond':
    case 'B_EQ':
    case 'B_NE':
    case 'CBZ_x':
    case 'CBNZ_x':
    case 'CBZ_w':
    case 'CBNZ_w':
      return (insn << 8) >> 13;
    case 'TBZ_TBNZ':
      return (insn << 13) >> 18;
    default:
      return undefined;
  }
}

export interface TranslateEnv {
  word: (i: number) => number;
  /** Whether the instruction at word i has run (been decoded by the interpreter); absent: all have. */
  executed?: (i: number) => boolean;
  decode: (insn: number) => DecodedInsn;
  undefinedHandler: Handler;
  /** Offset of guest RAM in the memory (inline loads and stores). */
  ramOffset: number;
}

/** The wasm function of a unit (UNIT_TYPE). */
export interface WasmUnit {
  run: WebAssembly.ExportValue;
}

/** A unit's function body, and the instructions it holds. */
export interface UnitBody {
  body: Code;
  insns: number;
  /** The words it was translated from: per block, the word index of its first and how many. */
  ranges: number[];
}

/** A module of units' functions (unitModule), and how many it holds. */
export interface UnitSource {
  bytes: Uint8Array<ArrayBuffer>;
  units: number;
}

/**
 * Units are compiled several to a module: V8's cost per module (its native module, code space and
 * instance) is most of what a small module costs. Measured on units of a boot (2.1 KB each), with
 * the host's caches thrashed between modules as the guest does: 152 us to compile and 70 us to
 * instantiate per unit one to a module, 27 and 9 us sixteen to a module.
 */
const unitShapes = new Map<number, ModuleShape>();

/** A module of the units with these bodies: functions `r0`, `r1`... and the runtime's table `t`. */
export function unitModule(bodies: Code[]): UnitSource {
  const n = bodies.length;
  let shape = unitShapes.get(n);
  if (shape === undefined) {
    shape = moduleShape(
      [],
      bodies.map((_, k) => ({ type: FN_TYPE, locals: LOCALS, export: `r${k}` })),
      65536,
      false,
      RUNTIME_FNS.map((f) => f.type),
    );
    unitShapes.set(n, shape);
  }
  return { bytes: shape.build(bodies), units: n };
}

/**
 * Code buffers to reuse: with a new one per unit (1-4 KiB, grown by doubling; typed arrays that size
 * live outside V8's heap), the garbage collector took 12% of the emitter's time.
 */
const freeCodes: Code[] = [];
function takeCode(): Code {
  const c = freeCodes.pop() ?? new Code(4096);
  c.len = 0;
  return c;
}
function releaseCode(c: Code): void {
  if (freeCodes.length < 64) freeCodes.push(c);
}
/** Give function bodies back once their module is built. */
export function releaseBodies(bodies: UnitBody[]): void {
  for (const b of bodies) releaseCode(b.body);
}

/** Translate the unit entered at word `startIdx` of a code page to a module of its own. */
export function emitUnit(
  startIdx: number,
  env: TranslateEnv,
  maxRegion: number,
): UnitSource & { insns: number } {
  const u = emitUnitBody(startIdx, env, maxRegion);
  const src = { ...unitModule([u.body]), insns: u.insns };
  releaseBodies([u]);
  return src;
}

/**
 * The last unit emitted, kept so that an object of each shape the emitter makes stays alive. V8
 * holds an object shape (map) that no live object has only weakly, and deoptimizes the code
 * optimized for it when a full collection frees it; the code cache asks for one after each sweep
 * (CodeCache.onSweep), when no unit was being emitted. Default guest's boot: 287 deoptimizations of
 * the emitter's functions ("weak objects") and 1043 optimizations (2.65 s of V8's compiler thread)
 * without it, 25 and 795 (1.87 s) with it.
 */
let _lastUnit: Unit | undefined;

/** Translate the unit entered at word `startIdx` of a code page to a function body. */
export function emitUnitBody(startIdx: number, env: TranslateEnv, maxRegion: number): UnitBody {
  // Pass 1: find the blocks.
  const blocks: Block[] = [];
  const caseOf = new Map<number, number>();
  const queue = [startIdx];
  caseOf.set(startIdx, 0);
  let total = 0;
  const want = (target: number): void => {
    if (target < 0 || target >= 1024 || caseOf.has(target) || total >= maxRegion) return;
    // Blocks the guest has not run yet stay out: they leave to the executor, which interprets them
    // and translates them when they become hot (smaller units compile sooner and cheaper).
    if (env.executed && !env.executed(target)) return;
    caseOf.set(target, caseOf.size);
    queue.push(target);
  };
  while (queue.length > 0) {
    const first = queue.shift()!;
    const b: Block = { first, insns: [], end: 'fall', off: 0 };
    let i = first;
    for (;;) {
      if (i >= 1024 || i - first >= MAX_BLOCK) {
        b.end = 'fall';
        break;
      }
      const insn = env.word(i) >>> 0;
      const d = env.decode(insn);
      b.insns.push({ idx: i, insn, d });
      const off = branchOf(d.name, insn);
      if (off !== undefined) {
        b.end = 'branch';
        b.off = off;
        break;
      }
      if (d.name === 'BR' || d.name === 'BLR' || d.name === 'RET') {
        b.end = 'indirect';
        break;
      }
      if (isBlockEnder(d.handler) || d.handler === env.undefinedHandler) {
        b.end = 'handler';
        break;
      }
      i++;
    }
    total += b.insns.length;
    blocks.push(b);
    for (const w of successors(b)) want(w);
  }
  // Pass 2: emit.
  const u = new Unit(env.ramOffset, takeCode());
  _lastUnit = u;
  // The blocks of a loop (that can reach themselves) run their accesses often: inline TLB hits there.
  layOut(blocks, caseOf);
  const inLoop = loopBlocks(blocks, caseOf);
  const c = u.c;
  const K = blocks.length;
  // base = PC - startIdx * 4; elx = el << 12
  c.get(L_ST);
  c.mem(Op.i64_load, 3, PC_OFF);
  c.i64(startIdx * 4);
  c.op(Op.i64_sub);
  c.tee(L_BASE);
  c.set(L_T0);
  c.get(L_ST);
  c.get(L_T0);
  c.mem(Op.i64_store, 3, BASE_OFF);
  u.state(EL_OFF);
  c.i32(12);
  c.op(Op.i32_shl);
  c.set(L_ELX);
  /** Leave with PC = the i64 `pc` pushes. */
  const exit = (pc: () => void, written = false): void => {
    if (!written) u.mustBeWritten();
    c.get(L_ST);
    pc();
    c.mem(Op.i64_store, 3, PC_OFF);
    c.get(L_N);
    c.op(Op.return);
  };
  /**
   * Where the unit must leave at a block boundary (past the limit, or for an interrupt), run `leave`
   * (which returns), as an arm (registers it writes back stay dirty after it). Two conditional
   * branches to one exit: V8 compiled (n > limit) | irq under an if to a set-on-compare, a
   * zero-extension, an or and the branch (sortbench, 100 rounds: 1.489-1.514 -> 1.470-1.479 s).
   */
  const leaveIfDue = (leave: () => void): void => {
    c.block(); // go on
    c.block(); // leave
    c.get(L_N);
    c.get(L_LIMIT);
    c.op(Op.i32_gt_u);
    c.brIf(0);
    u.state(IRQ_OFF);
    c.op(Op.i32_eqz);
    c.brIf(1);
    c.end();
    u.arm();
    leave();
    u.endArm();
  };
  // The dispatch loops. A branch between blocks (goTo) from a block on a loop checks the block
  // boundary itself and goes to the inner loop, which jumps to the target's label (L_AT). One from
  // any other block goes to the outer loop, whose head makes the check for all of them (less code
  // in every unit; in a hot loop, a check of its own at each branch ran 3% faster): leave there,
  // with PC at the block to run next (word L_TW). At the unit's entry the check does not hold (the
  // executor and the dispatcher enter a unit with budget left and no interrupt waiting) but for one
  // another thread raised meanwhile.
  c.i32(startIdx);
  c.set(L_TW);
  c.loop();
  leaveIfDue(() =>
    exit(() => {
      c.get(L_BASE);
      c.get(L_TW);
      c.i32(2);
      c.op(Op.i32_shl);
      c.op(Op.i64_extend_i32_u);
      c.op(Op.i64_add);
    }),
  );
  c.loop();
  for (let k = 0; k < K; k++) c.block();
  c.get(L_AT);
  c.byte(Op.br_table);
  c.u32(K);
  for (let k = 0; k < K; k++) c.u32(k);
  c.u32(0);
  c.end();
  /** The label of the block being emitted. */
  let at = 0;
  /** Per label: whether the block sets NZCV before it reads them or can raise (setsFlagsFirst). */
  const setsFlags = blocks.map(setsFlagsFirst);
  /** The block before fell into this one with NZCV in locals, dead there (see goTo). */
  let flagsDropped = false;
  /**
   * Whether a way on to word `target` from the block being emitted (`fallsInto`: its last branch,
   * into the block laid out next) needs no NZCV: it reaches that block without going round the outer
   * dispatch loop, whose exit does not write them back, and the block sets them first.
   */
  const skipsFlags = (target: number, fallsInto: boolean): boolean => {
    const k = caseOf.get(target);
    return k !== undefined && setsFlags[k] && ((fallsInto && k === at + 1) || u.inline);
  };
  /**
   * Go on at word `target` (in this unit when it has a label, through a dispatch loop; else leave).
   * The last branch of a block, to the block laid out after it, falls into it after the check.
   * `flagsLive`: registers are written back but NZCV may not be; they are written back on every
   * path that leaves the unit and on every way on that needs them (skipsFlags).
   */
  const goTo = (target: number, flagsLive = false): void => {
    const k = caseOf.get(target);
    const fallsInto = k === at + 1 && u.nest === 0;
    const skip = flagsLive && skipsFlags(target, fallsInto);
    if (flagsLive && !skip) u.flush();
    // inside an if arm (and in `leave`'s), a write-back leaves the slots dirty for the code after it
    const written = flagsLive && (skip || u.inArm);
    const leave = (): void => {
      if (skip) u.flush();
      exit(() => u.pcOf(target), written);
    };
    if (k === undefined) {
      leave();
      return;
    }
    if (fallsInto) {
      leaveIfDue(leave);
      if (skip) flagsDropped = true;
      return;
    }
    if (u.inline) {
      leaveIfDue(leave);
      c.i32(k);
      c.set(L_AT);
      c.br(u.caseDepth + u.nest);
      // NZCV left dirty here are on no path: nothing runs after the br
      if (skip && !u.inArm) flagsDropped = true;
      return;
    }
    c.i32(target);
    c.set(L_TW);
    c.i32(k);
    c.set(L_AT);
    c.br(u.caseDepth + u.nest + 1);
  };
  const addN = (k: number): void => {
    c.get(L_N);
    c.i32(k);
    c.op(Op.i32_add);
    c.set(L_N);
  };
  blocks.forEach((b, k) => {
    at = k;
    u.caseDepth = K - 1 - k;
    u.first = b.first;
    u.nest = 0;
    if (flagsDropped) u.dropFlags();
    flagsDropped = false;
    u.startBlock();
    u.inline = inLoop[k];
    const body = b.end === 'fall' ? b.insns : b.insns.slice(0, -1);
    const len = b.insns.length;
    if (b.end === 'branch' && b.insns[len - 1].idx + b.off === b.first && emitSelfLoop(u, b, body)) {
      if (k < K - 1) c.end();
      return;
    }
    emitBody(u, body);
    if (b.end === 'fall') {
      addN(len);
      u.flush();
      goTo(b.first + len);
      if (k < K - 1) c.end();
      return;
    }
    const last = b.insns[len - 1];
    u.i = last.idx;
    const name = last.d.name;
    const insn = last.insn;
    if (b.end === 'handler') {
      // Leave (STOP, PC as the helper stored it) unless nothing changed that needs the executor.
      const leaveIfStop = (): void => {
        c.if();
        c.get(L_N);
        c.i32(len);
        c.op(Op.i32_add);
        c.i32(STOP);
        c.op(Op.i32_or);
        c.op(Op.return);
        c.end();
      };
      const inline = enderEmitters.get(name);
      if (inline) {
        // Registers written back first (as before a handler call), then its inline path, and the
        // handler only where that path pushed non-zero.
        u.flush();
        inline(u, insn);
        u.ifArm();
        u.callEnderPure(last.d.index, insn);
        leaveIfStop();
        u.endArm();
      } else {
        u.callHandler(last.d.index, insn, true);
        leaveIfStop();
      }
      addN(len);
      goTo(last.idx + 1);
    } else if (b.end === 'indirect') {
      const n = (insn >>> 5) & 31;
      u.rx(n);
      c.set(L_T0);
      if (name === 'BLR') u.setX(30, () => u.pcOf(last.idx + 1));
      addN(len);
      u.flush();
      exit(() => c.get(L_T0));
    } else {
      addN(len);
      if (name === 'BL') u.setX(30, () => u.pcOf(last.idx + 1));
      const target = last.idx + b.off;
      if (name === 'B' || name === 'BL') {
        u.flush();
        goTo(target);
      } else if (target !== last.idx + 1 && (skipsFlags(target, false) || skipsFlags(last.idx + 1, true))) {
        // A way into a block that sets NZCV first does not need them: they are written back on
        // the paths that leave the unit only (the flags a compare computes for its branch are
        // mostly dead after it).
        u.flush(true);
        branchTaken(u, name, insn);
        u.ifArm();
        u.nest++;
        goTo(target, true);
        u.nest--;
        u.endArm();
        goTo(last.idx + 1, true);
      } else {
        // registers and flags back to the state block before the paths out of the block
        u.flush();
        branchTaken(u, name, insn);
        c.if();
        u.nest++;
        goTo(target);
        c.end();
        u.nest--;
        goTo(last.idx + 1);
      }
    }
    if (k < K - 1) c.end();
  });
  /**
   * A block that branches back to its own start (a loop of one block, like a copy or a search)
   * becomes a wasm loop with the registers and flags it uses in locals across iterations: read in
   * before the loop, written back when it leaves. Only for a block without handler calls (those
   * leave every register in memory); returns false for the others, emitting nothing.
   */
  function emitSelfLoop(u: Unit, b: Block, body: Block['insns']): boolean {
    const last = b.insns[b.insns.length - 1];
    const name = last.d.name;
    if (name === 'BL') return false;
    // Which registers and flags the block uses: emit it once to a scratch unit.
    const probe = new Unit(env.ramOffset, takeCode());
    probe.inline = u.inline;
    probe.first = b.first;
    emitBody(probe, body);
    probe.i = last.idx;
    if (name !== 'B') branchTaken(probe, name, last.insn);
    releaseCode(probe.c);
    if (probe.handlerCalls !== 0) return false;
    u.loopHead(probe.read, probe.written);
    c.loop();
    u.nest++;
    const loopLevel = u.nest;
    emitBody(u, body);
    u.i = last.idx;
    addN(b.insns.length);
    const backEdge = (): void => {
      if (!u.inLocals(probe.read)) throw new Error('unit: a loop block lost a register');
      // as at every block boundary
      leaveIfDue(() => {
        u.flush();
        exit(() => u.pcOf(b.first), true);
      });
      c.br(u.nest - loopLevel);
    };
    if (name === 'B') backEdge();
    else {
      branchTaken(u, name, last.insn);
      c.if();
      u.nest++;
      backEdge();
      c.end();
      u.nest--;
      u.flush();
      goTo(last.idx + 1);
    }
    c.end(); // the block's loop
    u.nest--;
    return true;
  }
  c.end(); // inner loop
  c.end(); // outer loop
  c.op(Op.unreachable);
  return { body: c, insns: total, ranges: blocks.flatMap((b) => [b.first, b.insns.length]) };
}

/**
 * The words a block goes on to: a conditional branch's target, then the word it goes on to
 * otherwise (without a condition, its one way on; none after an indirect branch).
 */
function successors(b: Block): number[] {
  const last = b.insns[b.insns.length - 1];
  switch (b.end) {
    case 'fall':
      return [b.first + b.insns.length];
    case 'handler':
      return [last.idx + 1];
    case 'indirect':
      return [];
    default:
      return last.d.name === 'B' || last.d.name === 'BL'
        ? [last.idx + b.off]
        : [last.idx + b.off, last.idx + 1];
  }
}

/**
 * Order the blocks (renumbering `caseOf`, word -> label) so that each is followed, where it can be,
 * by the block it goes on to without a condition or when its conditional branch is not taken: that
 * branch then falls into it instead of going round the dispatch loop. The entry block stays first.
 */
function layOut(blocks: Block[], caseOf: Map<number, number>): void {
  const byWord = new Map(blocks.map((b) => [b.first, b]));
  const placed = new Set<Block>();
  const order: Block[] = [];
  for (const start of blocks) {
    let b: Block | undefined = start;
    while (b !== undefined && !placed.has(b)) {
      placed.add(b);
      order.push(b);
      const next = successors(b).at(-1);
      b = next === undefined ? undefined : byWord.get(next);
    }
  }
  order.forEach((b, k) => {
    blocks[k] = b;
    caseOf.set(b.first, k);
  });
}

/**
 * Whether a block sets all of NZCV before it reads them or can raise: an ADDS or SUBS (CMP, CMN) of an
 * immediate or of a shifted register, after none or more moves and additions that touch no flag
 * and cannot raise (allocated encodings only: an unallocated one raises UNDEF).
 */
function setsFlagsFirst(b: Block): boolean {
  for (const { insn, d } of b.insns) {
    const type = (insn >>> 22) & 3; // the shift of a shifted register
    const wide = (insn & 0x8000) !== 0; // imm6 >= 32, unallocated for a W register
    switch (d.name) {
      case 'ADDS_imm_x':
      case 'SUBS_imm_x':
      case 'ADDS_imm_w':
      case 'SUBS_imm_w':
        return true;
      case 'ADDS_sreg_x':
      case 'SUBS_sreg_x':
        return type !== 3;
      case 'ADDS_sreg_w':
      case 'SUBS_sreg_w':
        return type !== 3 && !wide;
      case 'ADD_imm_x':
      case 'SUB_imm_x':
      case 'ADD_imm_w':
      case 'SUB_imm_w':
      case 'MOVZ_x':
      case 'MOVN_x':
      case 'MOVK_x':
      case 'MOV_reg_x':
      case 'MOV_reg_w':
      case 'ADR':
      case 'ADRP':
        continue;
      case 'ADD_sreg_x':
      case 'SUB_sreg_x':
        if (type === 3) return false;
        continue;
      case 'ADD_sreg_w':
      case 'SUB_sreg_w':
        if (type === 3 || wide) return false;
        continue;
      default:
        return false;
    }
  }
  return false;
}

/** Per block (by label): whether it is on a cycle of the unit's branches, so runs again without leaving. */
function loopBlocks(blocks: Block[], caseOf: Map<number, number>): boolean[] {
  const succ = blocks.map((b) =>
    successors(b)
      .map((w) => caseOf.get(w))
      .filter((t): t is number => t !== undefined),
  );
  return blocks.map((_, k) => {
    const seen = new Uint8Array(blocks.length);
    const stack = [...succ[k]];
    while (stack.length > 0) {
      const t = stack.pop()!;
      if (t === k) return true;
      if (seen[t]) continue;
      seen[t] = 1;
      stack.push(...succ[t]);
    }
    return false;
  });
}

/** Emit a block's instructions up to its terminator: inline where an emitter takes them, else a handler call. */
function emitBody(u: Unit, body: Block['insns']): void {
  for (const x of body) {
    u.i = x.idx;
    u.insn = x.insn;
    u.hx = x.d.index;
    const e: Emit | undefined = emitters.get(x.d.name);
    if (e === undefined || e(u, x.insn) !== true) u.callHandler(x.d.index, x.insn);
    if (u.spInfo !== 0) throw new Error(`unit: ${x.d.name} left its SP alignment check unmade`);
  }
}

/** Push 1 when the conditional branch `insn` (B.cond, CBZ/CBNZ, TBZ/TBNZ) is taken. */
function branchTaken(u: Unit, name: string, insn: number): void {
  const c = u.c;
  const t = insn & 31;
  if (name === 'B_cond' || name === 'B_EQ' || name === 'B_NE') condition(u, insn & 15);
  else if (name === 'TBZ_TBNZ') {
    const bit = ((insn >>> 26) & 32) | ((insn >>> 19) & 31);
    u.rx(t);
    c.i64(bit);
    c.op(Op.i64_shr_u);
    c.op(Op.i32_wrap_i64);
    c.i32(1);
    c.op(Op.i32_and);
    if (((insn >>> 24) & 1) === 0) c.op(Op.i32_eqz);
  } else {
    if (name === 'CBZ_x' || name === 'CBNZ_x') {
      u.rx(t);
      c.op(Op.i64_eqz);
    } else {
      u.rw(t);
      c.op(Op.i32_eqz);
    }
    if (name === 'CBNZ_x' || name === 'CBNZ_w') c.op(Op.i32_eqz);
  }
}

/** What units of one guest memory link to: the memory and the runtime's functions (RUNTIME_FNS). */
export interface UnitLinks {
  memory: WebAssembly.Memory;
  runtime: WebAssembly.ExportValue[];
}

export function unitLinks(memory: WebAssembly.Memory, ramOffset: number, ramBase: number): UnitLinks {
  const rt = runtimeFor(memory, ramOffset, ramBase, helpers);
  return { memory, runtime: RUNTIME_FNS.map((f) => rt[f.name]) };
}

/** Compile and instantiate a module of units now (on this thread); its table gets the runtime's functions (unit.ts). */
export function instantiateUnits(src: UnitSource, links: UnitLinks): WasmUnit[] {
  return instantiateModule(new WebAssembly.Module(src.bytes), src.units, links);
}

/**
 * Instantiate a compiled module of `units` units (unitModule) for the memory and runtime of `links`:
 * also one compiled on another thread (vCPUs on threads share what they compile: threads/units.ts).
 */
export function instantiateModule(module: WebAssembly.Module, units: number, links: UnitLinks): WasmUnit[] {
  const inst = new WebAssembly.Instance(module, { env: { mem: links.memory } });
  const t = inst.exports.t as WebAssembly.Table;
  links.runtime.forEach((fn, k) => t.set(k, fn));
  return Array.from({ length: units }, (_, k) => ({ run: inst.exports[`r${k}`] }));
}

// ---- the helpers translated code calls (one set: the vCPU is the one running a unit now) ----

let cur: Arm64Cpu | undefined;
let table: Handler[] = [];

const PCW = PC_OFF >> 2;

function syncIn(cpu: Arm64Cpu, part: number): void {
  const s = cpu.s32;
  cpu.pcLo = s[PCW] >>> 0;
  cpu.pcHi = s[PCW + 1] >>> 0;
  cpu.regionPart = part;
}
function syncOut(cpu: Arm64Cpu): void {
  cpu.regionPart = 0;
  cpu.s32[IRQ_OFF >> 2] = leaveFlag(cpu);
}

/**
 * IRQ_OFF's value: 1 when translated code must leave at the next block boundary, for an unmasked
 * interrupt or because another thread asked this vCPU to (ATTN_OFF, threads/link.ts).
 */
function leaveFlag(cpu: Arm64Cpu): number {
  return cpu.interruptPending() || cpu.s32[ATTN_OFF >> 2] !== 0 ? 1 : 0;
}

const helpers = {
  h(hx: number, insn: number, part: number): void {
    const cpu = cur!;
    cpu.code.jitStats.calls++;
    syncIn(cpu, part);
    const nl = (cpu.pcLo + 4) >>> 0;
    cpu.nextLo = nl;
    cpu.nextHi = nl === 0 ? (cpu.pcHi + 1) >>> 0 : cpu.pcHi;
    table[hx](cpu, insn);
    const s = cpu.s32;
    s[PCW] = cpu.nextLo;
    s[PCW + 1] = cpu.nextHi;
    syncOut(cpu);
  },
  /**
   * h for an instruction that ends a basic block (a system instruction, an exception, ERET, WFI...):
   * returns 1 when the unit must leave to the executor (STOP), 0 when it may go on at the next
   * instruction because nothing the unit or the executor relies on changed: no branch or exception
   * (the next PC is the next instruction, same EL), same ASID, no translation or jump cache dropped
   * (TLBI, translation-control writes, code written), not waiting, yielding or off, no debug event armed.
   * (The executor would also just go on at the next instruction. An unmasked interrupt is checked
   * where the unit goes on: at the block boundary, from the state block's IRQ word.)
   */
  hs(hx: number, insn: number, part: number): number {
    const cpu = cur!;
    const el = cpu.el;
    const asid = cpu.mmu.asid;
    const changes = cpu.code.changes;
    helpers.h(hx, insn, part);
    const s = cpu.s32;
    const lo = s[PCW] >>> 0;
    const next = (cpu.pcLo + 4) >>> 0;
    return lo !== next ||
      s[PCW + 1] >>> 0 !== (next === 0 ? (cpu.pcHi + 1) >>> 0 : cpu.pcHi) ||
      cpu.el !== el ||
      cpu.mmu.asid !== asid ||
      cpu.code.changes !== changes ||
      cpu.waiting ||
      cpu.yielded ||
      cpu.off ||
      cpu.debugArmed
      ? 1
      : 0;
  },
  rd(lo: number, hi: number, sf: number, part: number): number {
    const cpu = cur!;
    cpu.code.jitStats.slow++;
    syncIn(cpu, part);
    const mmu = cpu.mmu;
    const f = sf >>> 4;
    let v: number;
    switch (sf & 15) {
      case 1:
        v = mmu.read8(lo, hi, f);
        break;
      case 2:
        v = mmu.read16(lo, hi, f);
        break;
      case 4:
        v = mmu.read32(lo, hi, f);
        break;
      default:
        v = mmu.read64(lo, hi, f);
        cpu.s32[HI_OFF >> 2] = mmu.hi;
    }
    syncOut(cpu);
    return v;
  },
  wr(lo: number, hi: number, sf: number, vlo: number, vhi: number, part: number): void {
    const cpu = cur!;
    cpu.code.jitStats.slow++;
    syncIn(cpu, part);
    const mmu = cpu.mmu;
    const f = sf >>> 4;
    switch (sf & 15) {
      case 1:
        mmu.write8(lo, hi, vlo & 0xff, f);
        break;
      case 2:
        mmu.write16(lo, hi, vlo & 0xffff, f);
        break;
      case 4:
        mmu.write32(lo, hi, vlo, f);
        break;
      default:
        mmu.write64(lo, hi, vlo, vhi, f);
    }
    syncOut(cpu);
  },
  cw(page: number): void {
    cur!.mem.onCodeWrite(page);
  },
  lx(lo: number, hi: number, size: number, part: number): number {
    const cpu = cur!;
    cpu.code.jitStats.slow++;
    syncIn(cpu, part);
    const v = loadExclusive(cpu, lo, hi, size);
    cpu.s32[HI_OFF >> 2] = cpu.mmu.hi;
    syncOut(cpu);
    return v;
  },
  sx(lo: number, hi: number, size: number, vlo: number, vhi: number, part: number): number {
    const cpu = cur!;
    cpu.code.jitStats.slow++;
    syncIn(cpu, part);
    const st = storeExclusive(cpu, lo, hi, size, vlo, vhi);
    syncOut(cpu);
    return st;
  },
  sp(part: number): void {
    const cpu = cur!;
    syncIn(cpu, part);
    spCheck(cpu, 31);
    cpu.regionPart = 0;
  },
};

/**
 * Run unit `f` of `units` on `cpu` and the units the jump cache chains to (dispatch.ts), after
 * recording the unit in the vCPU's jump cache: copies PC, EL, ASID and the interrupt state in and PC
 * out; returns the instructions retired.
 */
export function runUnits(
  units: UnitTable,
  handlers: Handler[],
  cpu: Arm64Cpu,
  f: number,
  limit: number,
): number {
  const s = cpu.s32;
  const pcLo = cpu.pcLo;
  const pcHi = cpu.pcHi;
  const el = cpu.el;
  const asid = cpu.mmu.asid;
  s[PCW] = pcLo;
  s[PCW + 1] = pcHi;
  s[EL_OFF >> 2] = el;
  s[ASID_OFF >> 2] = asid;
  s[IRQ_OFF >> 2] = leaveFlag(cpu);
  jcInsert(s, pcLo, pcHi, jcContext(asid, el), f);
  cur = cpu;
  table = handlers;
  const k = units.dispatch(cpu.st, f, limit);
  const lo = s[PCW] >>> 0;
  cpu.pcLo = lo;
  cpu.pcHi = s[PCW + 1] >>> 0;
  // A misaligned target faults when it is fetched: the executor checks on a fetch-page change.
  if ((lo & 3) !== 0) cpu.invalidateFetch();
  return k;
}

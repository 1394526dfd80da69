// A64 decoding from declared bit patterns (the shape of QEMU's a64.decode): every instruction group
// exports a list of `Pattern`s; the decoder picks the most specific pattern that matches a word.
// Decoding happens once per instruction word per code page (see `CodeCache` in executor.ts).

import type { Arm64Cpu } from './cpu.js';

/** Executes one instruction. `insn` is the raw 32-bit word, as int32 or uint32 (handlers use only bit operations on it). */
export type Handler = (cpu: Arm64Cpu, insn: number) => void;

export interface Pattern {
  /** 32 characters, most significant bit first: '0', '1', or any other character for "don't care". */
  bits: string;
  /** Name used in logs and statistics (e.g. 'ADD_imm'). */
  name: string;
  handler: Handler;
}

interface CompiledPattern {
  /** Index of the handler in Decoder.handlerTable (set by the Decoder; 0 before). */
  index: number;
  mask: number;
  value: number;
  specificity: number;
  name: string;
  handler: Handler;
}

export function compilePattern(p: Pattern): CompiledPattern {
  const bits = p.bits.replace(/[ _]/g, '');
  if (bits.length !== 32)
    throw new Error(`pattern ${p.name}: expected 32 bits, got ${bits.length} ('${p.bits}')`);
  let mask = 0;
  let value = 0;
  let specificity = 0;
  for (let i = 0; i < 32; i++) {
    const ch = bits[i];
    const bit = 31 - i;
    if (ch === '0' || ch === '1') {
      mask |= 1 << bit;
      specificity++;
      if (ch === '1') value |= 1 << bit;
    }
  }
  return { index: 0, mask: mask >>> 0, value: value >>> 0, specificity, name: p.name, handler: p.handler };
}

/** A decoder built from pattern lists. Lookup buckets patterns by bits [28:25] (the A64 op0 field). */
export class Decoder {
  private readonly buckets: CompiledPattern[][] = [];
  private readonly undefined: CompiledPattern;
  /**
   * Every distinct handler, so a decoded instruction can be cached as a 16-bit index (slot 0 means
   * "not decoded yet").
   */
  readonly handlerTable: Handler[] = [() => {}];

  constructor(groups: Pattern[][], undef: { name: string; handler: Handler }) {
    const indexes = new Map<Handler, number>();
    const indexOf = (h: Handler): number => {
      let i = indexes.get(h);
      if (i === undefined) {
        i = this.handlerTable.push(h) - 1;
        indexes.set(h, i);
      }
      return i;
    };
    this.undefined = { index: indexOf(undef.handler), mask: 0, value: 0, specificity: 0, ...undef };
    const all = groups.flat().map(compilePattern);
    for (const p of all) p.index = indexOf(p.handler);
    if (this.handlerTable.length > 65535) throw new Error('decoder: more than 65535 handlers');
    all.sort((a, b) => b.specificity - a.specificity);
    for (let op0 = 0; op0 < 16; op0++) {
      const sample = op0 << 25;
      const m = 0xf << 25;
      // A pattern belongs to every bucket whose op0 bits it does not contradict.
      this.buckets.push(all.filter((p) => ((p.value ^ sample) & p.mask & m) === 0));
    }
  }

  /** The handler of encodings no pattern matches. */
  get undefinedHandler(): Handler {
    return this.undefined.handler;
  }

  decode(insn: number): { name: string; handler: Handler; index: number } {
    const bucket = this.buckets[(insn >>> 25) & 0xf];
    for (let i = 0; i < bucket.length; i++) {
      const p = bucket[i];
      if ((insn & p.mask) >>> 0 === p.value) return p;
    }
    return this.undefined;
  }
}

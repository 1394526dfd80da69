// An Intel MultiProcessor Specification 1.4 table, so that a kernel without ACPI finds every vCPU,
// the IOAPIC and the ISA interrupt routing: the floating pointer "_MP_" followed by the "PCMP"
// configuration table with processor, bus, I/O APIC, interrupt and local interrupt entries.

export const LAPIC_ADDR = 0xfee0_0000;
export const IOAPIC_ADDR = 0xfec0_0000;

export interface MpTableOptions {
  cpus: number;
  /** ISA IRQs wired level-triggered, active-high (virtio-mmio); the others are conforming (edge). */
  levelIrqs?: number[];
}

function checksum(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s = (s + b[i]) & 0xff;
  return (0x100 - s) & 0xff;
}

/** Build the table to be placed at physical `addr` (16-byte aligned); returns its bytes. */
export function buildMpTable(addr: number, opts: MpTableOptions): Uint8Array {
  const cpus = opts.cpus;
  const ioapicId = cpus;
  const level = new Set(opts.levelIrqs ?? []);
  const nIrq = 16;
  const entries = cpus * 20 + 8 + 8 + nIrq * 8 + 2 * 8;
  const mpcLen = 44 + entries;
  const b = new Uint8Array(16 + mpcLen);
  const dv = new DataView(b.buffer);
  const ascii = (o: number, s: string) => {
    for (let i = 0; i < s.length; i++) b[o + i] = s.charCodeAt(i);
  };
  // Floating pointer structure.
  ascii(0, '_MP_');
  dv.setUint32(4, addr + 16, true);
  b[8] = 1; // length in 16-byte units
  b[9] = 4; // spec revision 1.4
  b[11] = 0; // feature1: a configuration table is present
  b[10] = checksum(b, 0, 16);
  // Configuration table header.
  const c = 16;
  ascii(c, 'PCMP');
  dv.setUint16(c + 4, mpcLen, true);
  b[c + 6] = 4;
  ascii(c + 8, 'TYPEVSR ');
  ascii(c + 16, 'MICROVM     ');
  dv.setUint16(c + 34, cpus + 1 + 1 + nIrq + 2, true); // entries: cpus, bus, ioapic, irqs, 2 lints
  dv.setUint32(c + 36, LAPIC_ADDR, true);
  let o = c + 44;
  for (let i = 0; i < cpus; i++) {
    b[o] = 0; // processor
    b[o + 1] = i; // local APIC id
    b[o + 2] = 0x14; // local APIC version
    b[o + 3] = 1 | (i === 0 ? 2 : 0); // enabled, BSP
    dv.setUint32(o + 4, 0x600, true); // family 6
    dv.setUint32(o + 8, 0x201, true); // FPU, APIC
    o += 20;
  }
  b[o] = 1; // bus 0: ISA
  b[o + 1] = 0;
  ascii(o + 2, 'ISA   ');
  o += 8;
  b[o] = 2; // I/O APIC
  b[o + 1] = ioapicId;
  b[o + 2] = 0x11;
  b[o + 3] = 1; // enabled
  dv.setUint32(o + 4, IOAPIC_ADDR, true);
  o += 8;
  for (let irq = 0; irq < nIrq; irq++) {
    b[o] = 3; // I/O interrupt assignment
    b[o + 1] = 0; // INT
    dv.setUint16(o + 2, level.has(irq) ? 0x0d : 0, true); // level, active high : conforming
    b[o + 4] = 0; // source bus
    b[o + 5] = irq;
    b[o + 6] = ioapicId;
    b[o + 7] = irq === 0 ? 2 : irq; // the PIT's IRQ 0 is IOAPIC pin 2
    o += 8;
  }
  // Local interrupts: ExtINT on LINT0, NMI on LINT1, to all local APICs.
  for (const [type, lint] of [
    [3, 0],
    [1, 1],
  ]) {
    b[o] = 4;
    b[o + 1] = type;
    b[o + 4] = 0;
    b[o + 5] = 0;
    b[o + 6] = 0xff;
    b[o + 7] = lint;
    o += 8;
  }
  b[c + 7] = checksum(b, c, c + mpcLen);
  return b;
}

// The device tree typevisor writes for the arm64-virt board: the nodes QEMU's `virt` board has for the
// devices typevisor provides (memory, cpus with PSCI, psci, timer, PMU, GICv3, PL011 + its clock, PL031,
// PL061 + gpio-keys, every virtio-mmio slot of VIRT_SLOTS, chosen). Like QEMU, every transport is listed
// whether or not a device sits behind it (an empty one reads device ID 0, which no driver claims), in
// address order, as QEMU 7.2's `-machine dumpdtb` shows them.

import { node, regProp, u32, u64, strList, empty, writeDtb, type FdtNode } from '../boot/fdt.js';
import { VIRT, VIRT_SLOTS } from './arm64-virt.js';

const GIC_PHANDLE = 1;
const CLK_PHANDLE = 2;
const GPIO_PHANDLE = 3;
const KEY_POWER = 116; // linux/input-event-codes.h
// GIC interrupt specifier: <type number flags>; type 0 = SPI, 1 = PPI; flags 4 = level high, 1 = edge rising.
const SPI = 0;
const PPI = 1;
const LEVEL_HIGH = 4;
const EDGE_RISING = 1;

export interface Arm64DtOptions {
  cpus: number;
  ramBase: number;
  ramSize: number;
  cmdline: string;
  /** stdout-path: the PL011, or none when the console is virtio (hvc0 from the command line). */
  serialConsole: boolean;
  initrd?: { start: number; end: number };
  /** Bytes for /chosen/rng-seed (the kernel seeds its entropy pool with them). */
  rngSeed?: Uint8Array;
}

export function buildArm64Dt(o: Arm64DtOptions): FdtNode {
  const cpus = node('cpus', { '#address-cells': 1, '#size-cells': 0 }, [
    ...Array.from({ length: o.cpus }, (_, i) =>
      node(`cpu@${i}`, { device_type: 'cpu', compatible: 'arm,cortex-a53', reg: i, 'enable-method': 'psci' }),
    ),
  ]);
  const pl011 = `pl011@${VIRT.UART.toString(16)}`;
  const chosenProps: Record<string, Uint8Array | string> = { bootargs: o.cmdline };
  if (o.serialConsole) chosenProps['stdout-path'] = `/${pl011}`;
  if (o.initrd) {
    chosenProps['linux,initrd-start'] = u64(o.initrd.start);
    chosenProps['linux,initrd-end'] = u64(o.initrd.end);
  }
  if (o.rngSeed) chosenProps['rng-seed'] = o.rngSeed;
  const children: FdtNode[] = [
    node('psci', {
      compatible: strList(['arm,psci-1.0', 'arm,psci-0.2', 'arm,psci']),
      method: 'hvc',
      cpu_suspend: 0xc4000001,
      cpu_off: 0x84000002,
      cpu_on: 0xc4000003,
      migrate: 0xc4000005,
    }),
    node(`memory@${o.ramBase.toString(16)}`, { device_type: 'memory', reg: regProp(2, 2, [o.ramBase, o.ramSize]) }),
    cpus,
    node('timer', {
      compatible: strList(['arm,armv8-timer', 'arm,armv7-timer']),
      interrupts: u32(
        PPI, VIRT.TIMER_PPI_SEC - 16, LEVEL_HIGH,
        PPI, VIRT.TIMER_PPI_PHYS - 16, LEVEL_HIGH,
        PPI, VIRT.TIMER_PPI_VIRT - 16, LEVEL_HIGH,
        PPI, VIRT.TIMER_PPI_HYP - 16, LEVEL_HIGH,
      ),
      'always-on': empty(),
    }),
    // As QEMU writes it with a GICv3: no CPU mask in the PPI flags (that field is GICv2's).
    node('pmu', { compatible: 'arm,armv8-pmuv3', interrupts: u32(PPI, VIRT.PMU_PPI - 16, LEVEL_HIGH) }),
    node(`intc@${VIRT.GICD.toString(16)}`, {
      compatible: 'arm,gic-v3',
      '#interrupt-cells': 3,
      '#address-cells': 2,
      '#size-cells': 2,
      ranges: empty(),
      'interrupt-controller': empty(),
      '#redistributor-regions': 1,
      reg: regProp(2, 2, [VIRT.GICD, VIRT.GICD_SIZE], [VIRT.GICR, VIRT.GICR_STRIDE * o.cpus]),
      phandle: GIC_PHANDLE,
    }),
    node('apb-pclk', {
      compatible: 'fixed-clock',
      '#clock-cells': 0,
      'clock-frequency': 24_000_000,
      'clock-output-names': 'clk24mhz',
      phandle: CLK_PHANDLE,
    }),
    node(pl011, {
      compatible: strList(['arm,pl011', 'arm,primecell']),
      reg: regProp(2, 2, [VIRT.UART, 0x1000]),
      interrupts: u32(SPI, VIRT.UART_SPI, LEVEL_HIGH),
      clocks: u32(CLK_PHANDLE, CLK_PHANDLE),
      'clock-names': strList(['uartclk', 'apb_pclk']),
    }),
    node(`pl031@${VIRT.RTC.toString(16)}`, {
      compatible: strList(['arm,pl031', 'arm,primecell']),
      reg: regProp(2, 2, [VIRT.RTC, 0x1000]),
      interrupts: u32(SPI, VIRT.RTC_SPI, LEVEL_HIGH),
      clocks: u32(CLK_PHANDLE),
      'clock-names': 'apb_pclk',
    }),
    node(`pl061@${VIRT.GPIO.toString(16)}`, {
      compatible: strList(['arm,pl061', 'arm,primecell']),
      reg: regProp(2, 2, [VIRT.GPIO, 0x1000]),
      interrupts: u32(SPI, VIRT.GPIO_SPI, LEVEL_HIGH),
      'gpio-controller': empty(),
      '#gpio-cells': 2,
      clocks: u32(CLK_PHANDLE),
      'clock-names': 'apb_pclk',
      phandle: GPIO_PHANDLE,
    }),
    node('gpio-keys', { compatible: 'gpio-keys' }, [
      node('poweroff', { label: 'GPIO Key Poweroff', 'linux,code': KEY_POWER, gpios: u32(GPIO_PHANDLE, VIRT.GPIO_POWER_LINE, 0) }),
    ]),
    ...Array.from({ length: VIRT_SLOTS.count }, (_, slot) => {
      const base = VIRT_SLOTS.base + slot * VIRT_SLOTS.stride;
      return node(`virtio_mmio@${base.toString(16)}`, {
        compatible: 'virtio,mmio',
        reg: regProp(2, 2, [base, VIRT_SLOTS.size]),
        interrupts: u32(SPI, VIRT_SLOTS.irq(slot) - 32, EDGE_RISING),
        'dma-coherent': empty(),
      });
    }),
    node('chosen', chosenProps),
  ];
  return node(
    '',
    {
      '#address-cells': 2,
      '#size-cells': 2,
      compatible: 'linux,dummy-virt',
      model: 'typevisor arm64-virt',
      'interrupt-parent': GIC_PHANDLE,
    },
    children,
  );
}

export function writeArm64Dtb(o: Arm64DtOptions): Uint8Array {
  return writeDtb(buildArm64Dt(o));
}

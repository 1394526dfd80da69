// A guest from a VmSpec on either board: the spec's virtio devices, registered once through the
// board's device manager (machine/virtio-slots.ts), and the console and power controls the VM uses.
// The boards' own builders (arm64-guest.ts, x86-guest.ts) place the boot files.

import { readFileSync } from 'node:fs';
import { UserError } from '../host/errors.js';
import { checkArm64ImageFile } from '../boot/arm64-image.js';
import { isBzImage, parseBzImage } from '../boot/x86-bzimage.js';
import { parseElfKernel } from '../boot/x86-elf.js';
import type { Machine } from '../machine/machine.js';
import type { VirtioDevice } from '../devices/virtio/mmio.js';
import { VirtioBlk } from '../devices/virtio/blk.js';
import { VirtioRng } from '../devices/virtio/rng.js';
import { deterministicBytes } from '../host/deterministic.js';
import { VirtioConsole } from '../devices/virtio/console.js';
import { BALLOON_PAGE_SIZE, VirtioBalloon } from '../devices/virtio/balloon.js';
import { VirtioVsock } from '../devices/virtio/vsock.js';
import { VirtioNet, type NetBackend } from '../devices/virtio/net.js';
import { VsockUnixListener } from '../host/vsock-uds.js';
import { balloonSpec } from './balloon-policy.js';
import { runtimeVsockPath } from './state.js';
import { macBytes, nicMtu } from './net.js';
import type { VmSpec } from './vm.js';

const MiB = 1024 * 1024;

export interface GuestDevices {
  disks: VirtioBlk[];
  nets: VirtioNet[];
  console?: VirtioConsole;
  balloon?: VirtioBalloon;
  /** virtio-vsock and the Unix socket of its host side. */
  vsock?: { device: VirtioVsock; path: string };
  /** Offer console input to the guest; returns how many bytes it took now. */
  consoleIn(bytes: Uint8Array): number;
  /** Send a magic SysRq key over the console (serial BREAK + key, or ^O + key on hvc0). */
  sysrq(key: string): boolean;
  /** Ask the guest to power off (the board's power button; see Machine.requestPowerOff). */
  requestPowerOff(): boolean;
  close(): void;
}

export interface BuiltGuest {
  machine: Machine;
  devices: GuestDevices;
}

export interface BuildOptions {
  /** Build the machine and its devices only; the caller loads a snapshot into them. */
  restore?: boolean;
}

/** Build the guest `spec` describes on the board of its architecture. */
export async function buildGuest(
  spec: VmSpec,
  output: (bytes: Uint8Array) => void,
  /** The host side of each of spec.nets, opened by the caller (they outlive a reboot). */
  netBackends: NetBackend[] = [],
  opts: BuildOptions = {},
): Promise<BuiltGuest> {
  if (spec.arch === 'x86_64') {
    const { buildX86Guest } = await import('./x86-guest.js');
    return buildX86Guest(spec, output, netBackends, opts);
  }
  if (spec.arch !== undefined && spec.arch !== 'aarch64')
    throw new UserError(`${spec.name}: arch ${String(spec.arch)}: expected aarch64 or x86_64`);
  if (spec.accel === 'kvm')
    throw new UserError(
      `${spec.name}: aarch64 guests on kvm need an arm64 host; this engine runs x86_64 guests (use accel tcg)`,
    );
  const { buildArm64Guest } = await import('./arm64-guest.js');
  return buildArm64Guest(spec, output, netBackends, opts);
}

/** A boot file's bytes; a file that cannot be read is a UserError naming it (`what`: kernel, initrd). */
export function readBootFile(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UserError(
      `${what} ${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/** Check the spec's kernel file before anything starts; the error says what is wrong with it. */
export async function checkKernel(spec: VmSpec): Promise<void> {
  if (spec.arch !== 'x86_64') {
    await checkArm64ImageFile(spec.kernel);
    return;
  }
  const what = `kernel ${spec.kernel}`;
  const img = readBootFile(spec.kernel, 'kernel');
  try {
    if (isBzImage(img)) parseBzImage(img, what);
    else parseElfKernel(img, what);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}

/**
 * The spec's virtio devices in the machine's slots: disks, NICs, entropy, console, balloon, vsock,
 * in that order (slot numbers, and so a snapshot's device list, follow it). Returns what the
 * caller finishes with SpecDevices.finish() once its boot files are placed.
 */
export function addSpecDevices(
  spec: VmSpec,
  machine: Machine,
  output: (bytes: Uint8Array) => void,
  netBackends: NetBackend[],
  opts: BuildOptions,
): SpecDevices {
  const kick = (): void => machine.engine.kick();
  const add = (name: string, dev: VirtioDevice): void => {
    machine.virtio.add(name, dev, (m) => process.stderr.write(`typevisor: ${name}: ${m}\n`));
  };
  const d = new SpecDevices(machine, !!opts.restore);
  try {
    spec.disks.forEach((disk, i) => {
      let blk: VirtioBlk;
      try {
        blk = new VirtioBlk({ path: disk.path, readOnly: disk.readOnly, serial: `typevisor-disk${i}` });
      } catch (e) {
        throw new UserError(`--disk: ${(e as Error).message}`);
      }
      d.disks.push(blk);
      add(`virtio-blk${i}`, blk);
    });
    (spec.nets ?? []).forEach((n, i) => {
      const backend = netBackends[i];
      if (!backend) throw new Error(`NIC ${i}: no backend was opened for it`);
      const net = new VirtioNet({ mac: macBytes(n.mac), backend, mtu: nicMtu(n), kick });
      d.nets.push(net);
      add(`virtio-net${i}`, net);
    });
    if (spec.rng) add('virtio-rng', new VirtioRng(spec.deterministic ? deterministicBytes() : undefined));
    if (spec.console === 'virtio') {
      const vcon = new VirtioConsole({
        output: (bytes) => {
          d.vconTalked = true;
          output(bytes);
        },
      });
      vcon.onRxSpace = kick;
      d.vcon = vcon;
      add('virtio-console', vcon);
    }
    const bs = balloonSpec(spec.balloon);
    if (bs) {
      const balloon = new VirtioBalloon({ deflateOnOom: bs.deflateOnOom ?? true });
      if (bs.targetMiB !== undefined)
        balloon.setTarget(((spec.memoryMiB - bs.targetMiB) * MiB) / BALLOON_PAGE_SIZE);
      d.balloon = balloon;
      add('virtio-balloon', balloon);
    }
    if (spec.vsock) {
      const log = (m: string): boolean => process.stderr.write(`typevisor: virtio-vsock: ${m}\n`);
      let listener: VsockUnixListener | undefined = undefined;
      const device = new VirtioVsock({
        cid: spec.vsock.cid,
        connectHost: (port) => listener!.connectHostPort(port),
        wake: kick,
        log,
      });
      listener = new VsockUnixListener(spec.vsock.uds ?? runtimeVsockPath(spec.name), device, log);
      d.vsock = { device, listener };
      add('virtio-vsock', device);
    }
  } catch (e) {
    d.close();
    throw e;
  }
  machine.serial.onTx = (byte: number) => output(Uint8Array.of(byte));
  return d;
}

/** The spec's devices on a machine, until finishGuest() hands them to the VM as GuestDevices. */
export class SpecDevices {
  readonly disks: VirtioBlk[] = [];
  readonly nets: VirtioNet[] = [];
  vcon: VirtioConsole | undefined;
  /**
   * Linux's virtio-console discards input that arrives between posting its receive buffers and
   * registering the port as a console; once the guest has written to the port, the port is set up.
   * A restored guest set its console up before it was saved.
   */
  vconTalked: boolean;
  balloon: VirtioBalloon | undefined;
  vsock: { device: VirtioVsock; listener: VsockUnixListener } | undefined;

  constructor(
    private readonly machine: Machine,
    restored: boolean,
  ) {
    this.vconTalked = restored;
  }

  close(): void {
    for (const d of this.disks) d.close();
    this.vsock?.listener.close();
    this.vsock?.device.close();
    for (const n of this.nets) n.detach();
  }

  /**
   * Open what remains (the vsock socket: the last step that can fail, so that nothing holds it
   * open if an earlier one does) and hand the devices over. Closes them when that fails.
   */
  async finish(): Promise<GuestDevices> {
    try {
      if (this.vsock) await this.vsock.listener.listen();
    } catch (e) {
      this.close();
      throw e;
    }
    const { machine, vsock } = this;
    const uart = machine.serial;
    return {
      disks: this.disks,
      nets: this.nets,
      console: this.vcon,
      balloon: this.balloon,
      vsock: vsock && { device: vsock.device, path: vsock.listener.path },
      // Input enters the guest only once it listens (the UART takes what fits while the guest
      // listens; virtio-console what fits in the posted buffers); the VM keeps the rest.
      consoleIn: (bytes) =>
        this.vcon ? (this.vconTalked ? this.vcon.write(bytes) : 0) : uart.offerRx(bytes),
      sysrq: (key) => {
        const k = key.charCodeAt(0);
        if (this.vcon) return this.vcon.write(Uint8Array.of(0x0f, k)) === 2;
        if (uart.rxSpace() < 2) return false;
        uart.sendBreak();
        return uart.receive(Uint8Array.of(k)) === 1;
      },
      requestPowerOff: () => machine.requestPowerOff(),
      close: () => this.close(),
    };
  }
}

// `typevisor doctor`: can this host run the kvm backend, and how fast? Checks /dev/kvm, the KVM API
// version and capabilities, then *measures* two tiny guests: a port-I/O exit loop and a compute
// loop. Hardware-assisted KVM runs the compute loop at native speed (~10^9 iterations/s); a
// software implementation (such as the kvm_pvm module) is orders of magnitude slower.

import fs from 'node:fs';
import os from 'node:os';

/** Compute-loop rate above which KVM is considered hardware assisted (native is ~1e9). */
export const HARDWARE_COMPUTE_RATE = 1e8;

export interface DoctorReport {
  kvmPath: string;
  exists: boolean;
  opens: boolean;
  openError?: string;
  apiVersion?: number;
  caps?: Record<string, boolean | number>;
  modules: string[];
  cpuFlags: string[];
  exitRate?: number;
  computeRate?: number;
  probeError?: string;
  verdict: 'hardware' | 'software' | 'unavailable';
  advice: string[];
}

function fmtRate(r: number): string {
  if (r >= 1e9) return `${(r / 1e9).toFixed(2)} G/s`;
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)} M/s`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)} k/s`;
  return `${r.toFixed(0)} /s`;
}

export async function diagnose(
  opts: { exits?: number; iterations?: number; kvmPath?: string } = {},
): Promise<DoctorReport> {
  const kvmPath = opts.kvmPath ?? '/dev/kvm';
  const rep: DoctorReport = {
    kvmPath,
    exists: fs.existsSync(kvmPath),
    opens: false,
    modules: [],
    cpuFlags: [],
    verdict: 'unavailable',
    advice: [],
  };
  try {
    rep.modules = fs.readdirSync('/sys/module').filter((m) => /^kvm/.test(m));
  } catch {
    /* no sysfs */
  }
  try {
    const flags = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1].split(/\s+/) ?? [];
    rep.cpuFlags = flags.filter((f) => f === 'vmx' || f === 'svm' || f === 'hypervisor');
  } catch {
    /* not Linux */
  }
  if (os.arch() !== 'x64')
    rep.advice.push(
      `host is ${os.arch()}: the kvm backend runs x86_64 guests on x86_64 hosts only (for now)`,
    );
  if (rep.exists) {
    try {
      fs.closeSync(fs.openSync(kvmPath, 'r+'));
      rep.opens = true;
    } catch (e) {
      rep.openError = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
  }
  if (!rep.opens || os.arch() !== 'x64') {
    rep.advice.push('use --accel tcg: the software AArch64 CPU runs arm64 Linux guests on any host');
    if (rep.exists && !rep.opens)
      rep.advice.push(
        `${kvmPath} exists but cannot be opened (${rep.openError}); add your user to the kvm group`,
      );
    return rep;
  }
  try {
    const { Kvm, KVM_CAP } = await import('../cpu/kvm/kvm.js');
    const k = new Kvm(kvmPath);
    try {
      rep.apiVersion = k.apiVersion();
      rep.caps = {
        irqchip: k.checkExtension(KVM_CAP.IRQCHIP) > 0,
        pit2: k.checkExtension(KVM_CAP.PIT2) > 0,
        irqfd: k.checkExtension(KVM_CAP.IRQFD) > 0,
        ioeventfd: k.checkExtension(KVM_CAP.IOEVENTFD) > 0,
        maxVcpus: k.checkExtension(KVM_CAP.MAX_VCPUS),
      };
    } finally {
      k.close();
    }
    const { measureExitRate, measureComputeRate } = await import('../machine/kvm-probe.js');
    rep.exitRate = (await measureExitRate(opts.exits ?? 50_000)).rate;
    rep.computeRate = (await measureComputeRate(opts.iterations ?? 1_000_000)).rate;
  } catch (e) {
    rep.probeError = (e as Error).message;
    rep.advice.push('the KVM probe guests failed: use --accel tcg');
    return rep;
  }
  rep.verdict = rep.computeRate >= HARDWARE_COMPUTE_RATE ? 'hardware' : 'software';
  if (rep.verdict === 'hardware') {
    rep.advice.push(
      'kvm: x86_64 Linux guests (x86-microvm) at near-native speed; --accel auto picks kvm for x86_64',
    );
    rep.advice.push('tcg: arm64 Linux guests (arm64-virt) through the software CPU');
  } else {
    rep.advice.push(
      "kvm: only small guests are practical here (the project's test guests); a Linux kernel would crawl or stop with an emulation failure",
    );
    rep.advice.push('tcg: use it for Linux guests (arm64-virt); --accel auto should pick tcg on this host');
  }
  return rep;
}

export function formatReport(r: DoctorReport): string {
  const L: string[] = [];
  L.push(
    `${r.kvmPath}: ${r.exists ? (r.opens ? 'present, opens read/write' : `present, cannot open (${r.openError})`) : 'absent'}`,
  );
  if (r.apiVersion !== undefined) L.push(`KVM API version: ${r.apiVersion}`);
  if (r.caps)
    L.push(
      `capabilities: ${Object.entries(r.caps)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  L.push(
    `kernel modules: ${r.modules.join(', ') || 'none found'}; CPU flags: ${r.cpuFlags.join(' ') || 'no vmx/svm'}`,
  );
  if (r.exitRate !== undefined) L.push(`port-I/O exit loop: ${fmtRate(r.exitRate)} exits`);
  if (r.computeRate !== undefined)
    L.push(`guest compute loop: ${fmtRate(r.computeRate)} iterations (native hardware: ~1 G/s)`);
  if (r.probeError) L.push(`probe failed: ${r.probeError}`);
  L.push(
    `verdict: ${
      r.verdict === 'hardware'
        ? 'hardware-assisted KVM'
        : r.verdict === 'software'
          ? `software implementation of the KVM API${r.modules.includes('kvm_pvm') ? ' (kvm_pvm)' : ''}, measured ${(HARDWARE_COMPUTE_RATE / (r.computeRate ?? 1)).toFixed(0)}x below the hardware threshold`
          : 'kvm backend unavailable'
    }`,
  );
  for (const a of r.advice) L.push(`  - ${a}`);
  return L.join('\n') + '\n';
}

export async function main(args: string[]): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(
      'usage: typevisor doctor [--json]\n  Check /dev/kvm and measure which backends this host can run, and how fast.\n',
    );
    return 0;
  }
  const unknown = args.filter((a) => a !== '--json');
  if (unknown.length) {
    process.stderr.write(`doctor: unknown argument ${unknown[0]}; expected --json\n`);
    return 2;
  }
  const r = await diagnose();
  process.stdout.write(args.includes('--json') ? JSON.stringify(r, null, 2) + '\n' : formatReport(r));
  return r.verdict === 'unavailable' && r.probeError ? 1 : 0;
}

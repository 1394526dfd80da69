// The default arm64 guest image, built from Debian's packages with the machine's own apt (no URLs
// here): the kernel from linux-image-arm64 (its versioned linux-image-*-arm64 dependency) and a
// static busybox from busybox-static. Output, in the cache directory
// (~/.cache/typevisor/images/default-arm64/, or $TYPEVISOR_CACHE/images/default-arm64/):
//
//   Image               the kernel (Debian's arm64 vmlinuz is an uncompressed Image)
//   initramfs.cpio.gz   busybox and its applet links, the virtio-mmio/blk/rng/console/balloon,
//                       vsock and ext4 modules with their dependencies, and an /init that loads them, prints
//                       `typevisor: init ready` and starts a shell on the console
//   disk.ext4           a 64 MiB ext4 data disk (mkfs.ext4)
//   manifest.json       package versions and file sizes; when it matches, a later call returns at once
//
// buildDefaultImage() is what `typevisor image build` and the default `typevisor run` call.

import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../host/errors.js';
import { stderrLog, type Log } from '../host/progress.js';
import { CpioWriter } from '../boot/initramfs.js';
import { decompressKernel, parseArm64Header } from '../boot/arm64-image.js';
import { ModuleTree } from './kmod.js';

export const INIT_READY_MARKER = 'typevisor: init ready';
export const DEFAULT_IMAGE_NAME = 'default-arm64';
// Bump when the image contents change (a new /init, other modules): older caches are rebuilt.
const MANIFEST_VERSION = 4;
const DISK_BYTES = 64 << 20;

/**
 * Modules the default guest loads, in this order (their dependencies are added automatically).
 * virtio_console comes last: with console=hvc0 the VM hands piped input to the port once the kernel
 * writes to it, and input that reaches hvc0 before /init opens it for the shell is dropped when the
 * port's last opener closes it; loading it last keeps that window to the end of /init.
 */
export const GUEST_MODULES = [
  'virtio_mmio',
  'virtio_blk',
  'virtio_rng',
  'virtio_balloon',
  'virtio_net',
  'vsock',
  'vmw_vsock_virtio_transport_common',
  'vmw_vsock_virtio_transport',
  'crc32c_generic',
  'ext4',
  'virtio_console',
];

export interface BuildImageOptions {
  /** Output directory (default: defaultImageDir()). */
  dir?: string;
  /** Progress lines (default: stderr). */
  log?: Log;
  /** Rebuild even when the manifest says the image is complete. */
  force?: boolean;
}

export interface DefaultImage {
  dir: string;
  kernel: string;
  initrd: string;
  disk: string;
  manifest: ImageManifest;
}

export interface ImageManifest {
  version: number;
  kernelPackage: string;
  kernelPackageVersion: string;
  kernelRelease: string;
  busyboxVersion: string;
  modules: string[];
  files: Record<string, number>;
  created: string;
}

/** The cache root: $TYPEVISOR_CACHE or ~/.cache/typevisor. */
export function cacheRoot(): string {
  const env = process.env.TYPEVISOR_CACHE;
  if (env && env.length > 0) return path.resolve(env);
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && xdg.length > 0 ? xdg : path.join(os.homedir(), '.cache'), 'typevisor');
}

export function defaultImageDir(): string {
  return path.join(cacheRoot(), 'images', DEFAULT_IMAGE_NAME);
}

/** The manifest of a complete image in `dir`, or undefined. */
export function readManifest(dir: string): ImageManifest | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as ImageManifest;
    if (m.version !== MANIFEST_VERSION || !m.files) return undefined;
    for (const [f, size] of Object.entries(m.files)) {
      const st = fs.statSync(path.join(dir, f), { throwIfNoEntry: false });
      // disk.ext4 changes as the guest writes it; only its presence matters.
      if (!st || (f !== 'disk.ext4' && st.size !== size)) return undefined;
    }
    return m;
  } catch {
    return undefined;
  }
}

interface RunResult {
  stdout: string;
  stderr: string;
  status: number;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
  // node:child_process on first use: `typevisor run` loads this module for the cached image and then
  // boots in the same process, which should not carry child_process (with net and dgram; see rng.ts).
  const { spawnSync } = createRequire(import.meta.url)(
    'node:child_process',
  ) as typeof import('node:child_process');
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive', ...opts.env },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`image build: '${cmd}' is not installed (${hintFor(cmd)})`);
    throw new UserError(`image build: cannot run ${cmd}: ${r.error.message}`);
  }
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status ?? -1 };
}

function hintFor(cmd: string): string {
  switch (cmd) {
    case 'mkfs.ext4':
      return 'install e2fsprogs: apt-get install e2fsprogs';
    case 'apt-get':
    case 'apt-cache':
    case 'dpkg':
    case 'dpkg-deb':
      return 'the default image is built from Debian packages and needs a Debian or Ubuntu host with apt; or give --kernel and --initrd';
    default:
      return `install ${cmd}`;
  }
}

function tail(s: string, lines = 6): string {
  return s.trim().split('\n').slice(-lines).join('\n');
}

function must(r: RunResult, what: string, next: string): RunResult {
  if (r.status !== 0)
    throw new UserError(`image build: ${what} failed:\n${tail(r.stderr || r.stdout)}\n${next}`);
  return r;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Make sure apt can see arm64 packages: add the architecture (and update) when it is missing. */
function ensureArm64(log: Log): void {
  const native = run('dpkg', ['--print-architecture']).stdout.trim();
  const foreign = run('dpkg', ['--print-foreign-architectures']).stdout.split(/\s+/);
  if (native === 'arm64' || foreign.includes('arm64')) return;
  if (!isRoot()) {
    throw new UserError(
      'image build: apt does not know the arm64 architecture yet. Run, as root:\n' +
        '  dpkg --add-architecture arm64 && apt-get update\nthen build the image again.',
    );
  }
  log('apt: adding the arm64 architecture (dpkg --add-architecture arm64) and running apt-get update, once');
  must(
    run('dpkg', ['--add-architecture', 'arm64']),
    'dpkg --add-architecture arm64',
    'Run it as root, then apt-get update.',
  );
  must(
    run('apt-get', ['update']),
    'apt-get update',
    'Check the network and /etc/apt/sources.list, then run apt-get update.',
  );
}

/** The candidate version of pkg (with :arch), or undefined when apt does not know it. */
function candidateVersion(pkg: string): string | undefined {
  const r = run('apt-cache', ['policy', pkg]);
  const m = /Candidate:\s*(\S+)/.exec(r.stdout);
  return m && m[1] !== '(none)' ? m[1] : undefined;
}

/** linux-image-arm64:arm64 -> its versioned kernel package (linux-image-6.1.0-56-arm64). */
function resolveKernelPackage(): string {
  const r = run('apt-cache', ['depends', 'linux-image-arm64:arm64']);
  const deps = [...r.stdout.matchAll(/Depends:\s*(linux-image-[0-9][^\s:]*-arm64)(:arm64)?/g)].map(
    (m) => m[1],
  );
  if (r.status !== 0 || deps.length === 0) {
    throw new UserError(
      'image build: apt knows no linux-image-arm64:arm64 package. Run apt-get update (as root; after ' +
        'dpkg --add-architecture arm64) and try again.' +
        (r.stderr.trim() ? `\napt-cache said: ${tail(r.stderr, 3)}` : ''),
    );
  }
  return deps[0];
}

function fileSize(p: string): number {
  return fs.statSync(p).size;
}

/** Find the busybox applet names in the binary: the NUL-separated, sorted table starting "[", "[[". */
export function busyboxApplets(bin: Uint8Array): string[] {
  const buf = Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength);
  const start = buf.indexOf(Buffer.from('\0[\0[[\0', 'latin1'));
  const fallback = [
    'sh',
    'ash',
    'ls',
    'cat',
    'echo',
    'mount',
    'umount',
    'mkdir',
    'mknod',
    'insmod',
    'modprobe',
    'lsmod',
    'setsid',
    'cttyhack',
    'poweroff',
    'reboot',
    'dmesg',
    'ps',
    'cp',
    'mv',
    'rm',
    'ln',
    'vi',
    'grep',
    'sed',
    'awk',
    'dd',
    'sync',
    'sleep',
    'uname',
    'df',
    'du',
    'free',
    'top',
    'kill',
    'hexdump',
    'head',
    'tail',
    'wc',
    'find',
    'chmod',
    'chown',
    'touch',
    'date',
    'hostname',
    'clear',
    'stty',
    'tty',
    'ip',
    'ifconfig',
  ];
  if (start < 0) return fallback;
  const names: string[] = [];
  let p = start + 1;
  while (p < buf.length && names.length < 1000) {
    const z = buf.indexOf(0, p);
    if (z < 0 || z === p) break;
    const s = buf.toString('latin1', p, z);
    if (!/^[A-Za-z0-9_.[\]-]{1,40}$/.test(s)) break;
    names.push(s);
    p = z + 1;
  }
  return names.includes('sh') ? names : fallback;
}

/** Where the default guest keeps its udhcpc event script. */
export const UDHCPC_SCRIPT = '/etc/udhcpc.script';

/** Prefix of the line the guest prints when a NIC has its address: `typevisor: eth0 10.77.0.23/24`. */
export const NIC_ADDRESS_MARKER = 'typevisor: eth';

/** busybox udhcpc's event script: set the address, default route and resolv.conf, then say so. */
export function udhcpcScript(): string {
  return [
    '#!/bin/sh',
    '# udhcpc event script (typevisor default guest): $1 is the event, the lease is in the environment.',
    'case "$1" in',
    '  deconfig)',
    '    ip addr flush dev "$interface"',
    '    ip link set "$interface" up',
    '    ;;',
    '  bound|renew)',
    '    if ! ip addr show dev "$interface" | grep -q " $ip/$mask "; then',
    '      ip addr flush dev "$interface"',
    '      ip addr add "$ip/$mask" dev "$interface"',
    '    fi',
    '    if [ -n "$router" ]; then',
    '      ip route del default dev "$interface" 2>/dev/null',
    '      for r in $router; do ip route add default via "$r" dev "$interface" && break; done',
    '    fi',
    '    if [ -n "$dns" ]; then',
    '      { [ -n "$domain" ] && echo "search $domain"; for d in $dns; do echo "nameserver $d"; done; } >/etc/resolv.conf',
    '    fi',
    `    [ "$1" = bound ] && echo "typevisor: $interface $ip/$mask" >/dev/console`,
    '    ;;',
    'esac',
    'exit 0',
    '',
  ].join('\n');
}

export function initScript(kernelRelease: string, modules: string[]): string {
  const lines = [
    '#!/bin/sh',
    '# typevisor default guest: mount the pseudo file systems, load the virtio and ext4 modules,',
    '# then give the console a shell. Leaving the shell powers the guest off.',
    'export PATH=/bin:/sbin:/usr/bin:/usr/sbin',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'mount -t devtmpfs devtmpfs /dev 2>/dev/null',
    'mkdir -p /dev/pts /dev/shm',
    'mount -t devpts devpts /dev/pts',
    'mount -t tmpfs tmpfs /tmp',
    'mount -t tmpfs tmpfs /run',
    'hostname typevisor',
    'ip link set lo up',
    `M=/lib/modules/${kernelRelease}`,
    ...modules.map(
      (m) => `insmod $M/${m} 2>/dev/null || echo "typevisor: insmod ${path.basename(m)} failed"`,
    ),
    '# With console=hvc0 the console only exists once virtio_console is loaded: reopen it now.',
    'if (exec </dev/console) 2>/dev/null; then exec </dev/console >/dev/console 2>&1; fi',
    '# Every NIC takes an address by DHCP in the background (no NIC: nothing to wait for).',
    'for n in /sys/class/net/eth*; do',
    '  [ -e "$n" ] || continue',
    `  udhcpc -i "\${n##*/}" -s ${UDHCPC_SCRIPT} -b -t 10 -T 2 -S >/dev/null 2>&1 &`,
    'done',
    `echo "${INIT_READY_MARKER}"`,
    'setsid cttyhack /bin/sh -l',
    'echo "typevisor: shell exited, powering off"',
    'sync',
    'poweroff -f',
    '',
  ];
  return lines.join('\n');
}

/** Build (or find in the cache) the default arm64 guest image. */
export async function buildDefaultImage(opts: BuildImageOptions = {}): Promise<DefaultImage> {
  const dir = path.resolve(opts.dir ?? defaultImageDir());
  const log = opts.log ?? stderrLog('typevisor: image');
  const result = (manifest: ImageManifest): DefaultImage => ({
    dir,
    kernel: path.join(dir, 'Image'),
    initrd: path.join(dir, 'initramfs.cpio.gz'),
    disk: path.join(dir, 'disk.ext4'),
    manifest,
  });
  if (!opts.force) {
    const m = readManifest(dir);
    if (m) return result(m);
  }

  log(`building the default arm64 guest in ${dir}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const tool of ['apt-get', 'apt-cache', 'dpkg', 'dpkg-deb']) run(tool, ['--version']);
  ensureArm64(log);

  log('apt: resolving linux-image-arm64:arm64 and busybox-static:arm64');
  if (!candidateVersion('linux-image-arm64:arm64') && isRoot()) {
    // The architecture is known but the package lists are stale or were never fetched for it.
    log('apt: no arm64 package lists yet; running apt-get update, once');
    must(
      run('apt-get', ['update']),
      'apt-get update',
      'Check the network and /etc/apt/sources.list, then run apt-get update.',
    );
  }
  const kernelPkg = resolveKernelPackage();
  const kernelVer = candidateVersion(`${kernelPkg}:arm64`);
  const bbVer = candidateVersion('busybox-static:arm64');
  if (!kernelVer || !bbVer) {
    throw new UserError(
      `image build: apt has no candidate for ${!kernelVer ? `${kernelPkg}:arm64` : 'busybox-static:arm64'}. Run apt-get update and try again.`,
    );
  }
  log(`apt: ${kernelPkg} ${kernelVer}, busybox-static ${bbVer}`);

  const work = fs.mkdtempSync(path.join(dir, '.work-'));
  try {
    log(`apt-get download ${kernelPkg}:arm64 busybox-static:arm64 (the kernel package is about 60 MiB)`);
    must(
      run('apt-get', ['download', `${kernelPkg}:arm64`, 'busybox-static:arm64'], { cwd: work }),
      'apt-get download',
      'Check the network connection, run apt-get update, and try again.',
    );
    const debs = fs.readdirSync(work).filter((f) => f.endsWith('.deb'));
    const kdeb = debs.find((f) => f.startsWith(`${kernelPkg}_`));
    const bdeb = debs.find((f) => f.startsWith('busybox-static_'));
    if (!kdeb || !bdeb)
      throw new UserError(
        `image build: apt-get download did not leave the expected .deb files in ${work} (found: ${debs.join(', ') || 'none'})`,
      );

    log(`dpkg-deb -x ${kdeb}`);
    const kx = path.join(work, 'kernel');
    must(
      run('dpkg-deb', ['-x', path.join(work, kdeb), kx]),
      `dpkg-deb -x ${kdeb}`,
      'The download may be damaged; run the build again.',
    );
    log(`dpkg-deb -x ${bdeb}`);
    const bx = path.join(work, 'busybox');
    must(
      run('dpkg-deb', ['-x', path.join(work, bdeb), bx]),
      `dpkg-deb -x ${bdeb}`,
      'The download may be damaged; run the build again.',
    );

    // Kernel.
    const vmlinuz = fs.readdirSync(path.join(kx, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new UserError(`image build: ${kdeb} has no boot/vmlinuz-*`);
    const release = vmlinuz.slice('vmlinuz-'.length);
    const kernelData = decompressKernel(
      fs.readFileSync(path.join(kx, 'boot', vmlinuz)),
      `${kdeb}: boot/${vmlinuz}`,
    );
    const hdr = parseArm64Header(kernelData, `${kdeb}: boot/${vmlinuz}`);
    log(
      `kernel ${release}: Image ${(kernelData.length / 1048576).toFixed(1)} MiB, image_size ${(hdr.imageSize / 1048576).toFixed(1)} MiB`,
    );
    fs.writeFileSync(path.join(dir, 'Image.tmp'), kernelData);

    // Modules.
    const modDir = path.join(kx, 'lib', 'modules', release);
    const tree = new ModuleTree(modDir);
    const { order, builtin, missing } = tree.closure(GUEST_MODULES);
    if (missing.length > 0) log(`warning: modules not found in ${kernelPkg}: ${missing.join(', ')}`);
    if (builtin.length > 0) log(`built into the kernel: ${builtin.join(', ')}`);
    log(`modules (load order): ${order.map((m) => m.name).join(' ')}`);

    // initramfs.
    log('writing initramfs.cpio.gz');
    const bbBin = fs.readFileSync(path.join(bx, 'bin', 'busybox'));
    const cpio = new CpioWriter();
    for (const d of [
      'bin',
      'dev',
      'etc',
      'proc',
      'sys',
      'tmp',
      'run',
      'root',
      'mnt',
      'usr',
      'var',
      'lib/modules',
    ])
      cpio.dir(d);
    cpio.dir('tmp', 0o1777);
    cpio.dir('root', 0o700);
    cpio.file('bin/busybox', bbBin, 0o755);
    const applets = busyboxApplets(bbBin).filter((a) => a !== 'busybox' && a !== '[' && a !== '[[');
    for (const a of applets) if (!cpio.has(`bin/${a}`)) cpio.symlink(`bin/${a}`, 'busybox');
    cpio.symlink('bin/[', 'busybox');
    cpio.symlink('bin/[[', 'busybox');
    cpio.symlink('sbin', 'bin');
    cpio.symlink('usr/bin', '../bin');
    cpio.symlink('usr/sbin', '../bin');
    cpio.charDevice('dev/console', 5, 1, 0o600);
    cpio.charDevice('dev/null', 1, 3, 0o666);
    cpio.charDevice('dev/tty', 5, 0, 0o666);
    cpio.file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
    cpio.file('etc/group', 'root:x:0:\n');
    cpio.file('etc/hostname', 'typevisor\n');
    cpio.file(UDHCPC_SCRIPT.slice(1), udhcpcScript(), 0o755);
    cpio.file('etc/profile', 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport PS1="\\h:\\w# "\n');
    const modRoot = `lib/modules/${release}`;
    const depLines: string[] = [];
    for (const m of order) {
      cpio.file(`${modRoot}/${m.relPath}`, fs.readFileSync(path.join(modDir, m.relPath)), 0o644);
    }
    // A modules.dep for the included modules, so that busybox modprobe works too.
    const byName = new Map(order.map((m) => [m.name, m]));
    for (const m of order) {
      const deps: string[] = [];
      const seen = new Set<string>();
      const add = (n: string) => {
        for (const d of byName.get(n)?.depends ?? []) {
          if (seen.has(d) || !byName.has(d)) continue;
          seen.add(d);
          deps.push(byName.get(d)!.relPath);
          add(d);
        }
      };
      add(m.name);
      depLines.push(`${m.relPath}:${deps.length ? ' ' + deps.join(' ') : ''}`);
    }
    cpio.file(`${modRoot}/modules.dep`, depLines.join('\n') + '\n');
    for (const f of ['modules.builtin', 'modules.order']) {
      const p = path.join(modDir, f);
      if (fs.existsSync(p)) cpio.file(`${modRoot}/${f}`, fs.readFileSync(p));
    }
    cpio.file(
      'init',
      initScript(
        release,
        order.map((m) => m.relPath),
      ),
      0o755,
    );
    fs.writeFileSync(path.join(dir, 'initramfs.cpio.gz.tmp'), cpio.toGzip(9));

    // Data disk: keep an existing one (it holds what the guest wrote).
    const disk = path.join(dir, 'disk.ext4');
    if (!fs.existsSync(disk)) {
      log('mkfs.ext4: 64 MiB data disk');
      const tmp = path.join(dir, 'disk.ext4.tmp');
      fs.writeFileSync(tmp, '');
      fs.truncateSync(tmp, DISK_BYTES);
      must(
        run('mkfs.ext4', ['-q', '-F', '-L', 'typevisor-data', tmp]),
        'mkfs.ext4',
        'Install e2fsprogs (apt-get install e2fsprogs).',
      );
      fs.renameSync(tmp, disk);
    } else {
      log('keeping the existing disk.ext4');
    }

    fs.renameSync(path.join(dir, 'Image.tmp'), path.join(dir, 'Image'));
    fs.renameSync(path.join(dir, 'initramfs.cpio.gz.tmp'), path.join(dir, 'initramfs.cpio.gz'));
    const manifest: ImageManifest = {
      version: MANIFEST_VERSION,
      kernelPackage: kernelPkg,
      kernelPackageVersion: kernelVer,
      kernelRelease: release,
      busyboxVersion: bbVer,
      modules: order.map((m) => m.name),
      files: {
        Image: fileSize(path.join(dir, 'Image')),
        'initramfs.cpio.gz': fileSize(path.join(dir, 'initramfs.cpio.gz')),
        'disk.ext4': fileSize(disk),
      },
      created: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(dir, 'manifest.json.tmp'), JSON.stringify(manifest, null, 2) + '\n');
    fs.renameSync(path.join(dir, 'manifest.json.tmp'), path.join(dir, 'manifest.json'));
    log(`done: ${dir}`);
    return result(manifest);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

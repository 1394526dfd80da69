// Helpers shared by the importers.

import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import type { Arch, VmConfig } from './vmconfig.js';

export interface ImportResult {
  config: VmConfig;
  /** Features the source asked for that typevisor does not support (also in config.warnings). */
  warnings: string[];
}

export interface ImportOptions {
  /** Directory relative paths resolve against (default: the config file's directory). */
  baseDir?: string;
  /** CAmkES: which vmN to import (default: the first). */
  vm?: string;
  /** CAmkES: values for preprocessor macros, like cpp's -DNAME=VALUE. */
  defines?: Record<string, string>;
}

export function baseDirOf(file: string, options: ImportOptions): string {
  return options.baseDir ?? dirname(resolve(file));
}

export function resolvePath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/**
 * The architecture of a kernel image, when it can be told: an x86 bzImage has "HdrS" at 0x202, an
 * arm64 Image has "ARM\x64" at 0x38. Without the file, a name like `bzImage` means x86_64.
 */
export function sniffKernelArch(path: string): Arch | undefined {
  if (existsSync(path)) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'r');
      const buf = Buffer.alloc(0x210);
      const n = readSync(fd, buf, 0, buf.length, 0);
      if (n >= 0x206 && buf.toString('latin1', 0x202, 0x206) === 'HdrS') return 'x86_64';
      if (n >= 0x3c && buf.readUInt32LE(0x38) === 0x644d5241) return 'aarch64';
      // EFI zboot ("MZ", "zimg"): of the two architectures here only arm64 builds it (vmlinuz.efi)
      if (n >= 8 && buf.toString('latin1', 0, 2) === 'MZ' && buf.toString('latin1', 4, 8) === 'zimg') return 'aarch64';
      // ELF: e_machine
      if (n >= 20 && buf.readUInt32BE(0) === 0x7f454c46) {
        const machine = buf.readUInt16LE(18);
        if (machine === 183) return 'aarch64';
        if (machine === 62) return 'x86_64';
      }
    } catch {
      // unreadable: fall back to the name
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  const b = basename(path).toLowerCase();
  if (/^(bzimage|vmlinuz)/.test(b) || b.includes('bzimage')) return 'x86_64';
  return undefined;
}

/** Sets config.arch from the kernel when the source did not say. */
export function inferArch(config: VmConfig): void {
  if (config.arch || !config.kernel) return;
  const arch = sniffKernelArch(config.kernel);
  if (arch) config.arch = arch;
}

/** Finishes an import: records warnings in the config and fills what can be inferred. */
export function finish(config: VmConfig, warnings: string[]): ImportResult {
  inferArch(config);
  if (warnings.length > 0) config.warnings = [...warnings];
  else delete config.warnings;
  return { config, warnings };
}

/** Joins kernel command-line fragments with single spaces, skipping empty ones. */
export function joinCmdline(...parts: (string | undefined)[]): string | undefined {
  const s = parts
    .filter((p): p is string => p !== undefined)
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .join(' ');
  return s === '' ? undefined : s;
}

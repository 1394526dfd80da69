// loadConfig: read a config file of any supported format and return a validated VmConfig.

import { readFileSync, statSync } from 'node:fs';
import { ConfigError, didYouMean } from './errors.js';
import type { ImportOptions } from './common.js';
import { CONFIG_FORMATS, detectFormat, type ConfigFormat } from './detect.js';
import { importXl } from './xl.js';
import { importFuchsia } from './fuchsia.js';
import { importMicrovm } from './microvm.js';
import { importCamkes } from './camkes.js';
import { parseJson, validateConfig, type VmConfig } from './vmconfig.js';

export type { ConfigFormat } from './detect.js';

/** Aliases accepted by `from`. */
const FORMAT_ALIASES: Record<string, ConfigFormat> = {
  native: 'native',
  json: 'native',
  typevisor: 'native',
  xl: 'xl',
  xen: 'xl',
  fuchsia: 'fuchsia',
  zircon: 'fuchsia',
  microvm: 'microvm',
  'microvm.nix': 'microvm',
  nix: 'microvm',
  camkes: 'camkes',
  sel4: 'camkes',
};

export interface LoadOptions extends ImportOptions {
  /** The source format; detected from the contents when absent. */
  from?: string;
}

export interface LoadResult {
  config: VmConfig;
  /** Features asked for but not supported: print them, they do not stop the VM. */
  warnings: string[];
  /** The format the file was read as. */
  format: ConfigFormat;
}

/** Parses a `from` value (a format name or alias); a ConfigError names the choices. */
export function parseFormat(from: string, file = '--from'): ConfigFormat {
  const f = FORMAT_ALIASES[from.toLowerCase()];
  if (!f) {
    throw new ConfigError(
      { file },
      `unknown config format '${from}'${didYouMean(from, CONFIG_FORMATS)}; expected one of ${CONFIG_FORMATS.join(', ')}`,
    );
  }
  return f;
}

/** Reads a config file (typevisor JSON, xl, Fuchsia, microvm.nix JSON or CAmkES) into a VmConfig. */
export function loadConfig(path: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    if (statSync(path).isDirectory())
      throw new ConfigError({ file: path }, 'expected a config file, got a directory');
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'permission denied'
          : e instanceof Error
            ? e.message
            : String(e);
    throw new ConfigError({ file: path }, why);
  }
  return loadConfigText(text, path, options);
}

/** As loadConfig, for text already read (`file` names it in messages and anchors relative paths). */
export function loadConfigText(text: string, file: string, options: LoadOptions = {}): LoadResult {
  const format = options.from !== undefined ? parseFormat(options.from) : detectFormat(text, file).format;
  let config: VmConfig;
  let warnings: string[];
  switch (format) {
    case 'native': {
      config = validateConfig(parseJson(text, file), file, { baseDir: options.baseDir });
      warnings = [...(config.warnings ?? [])];
      break;
    }
    case 'xl':
      ({ config, warnings } = importXl(text, file, options));
      break;
    case 'fuchsia':
      ({ config, warnings } = importFuchsia(text, file, options));
      break;
    case 'microvm':
      ({ config, warnings } = importMicrovm(text, file, options));
      break;
    case 'camkes':
      ({ config, warnings } = importCamkes(text, file, options));
      break;
  }
  if (format !== 'native') {
    // Importers build a VmConfig directly; validating it again keeps every format to one schema.
    config = validateConfig(JSON.parse(JSON.stringify(config)), file, { baseDir: options.baseDir });
  }
  return { config, warnings, format };
}

// The config layer's public API: typevisor's VmConfig, loading any supported format, the
// importers, format detection, the xl exporter and the microvm.nix-style runner scripts.

export * from './vmconfig.js';
export { ConfigError, didYouMean } from './errors.js';
export type { ImportOptions, ImportResult } from './common.js';
export { loadConfigText, parseFormat } from './load.js';
export { detectFormat, CONFIG_FORMATS, FORMAT_NAMES } from './detect.js';
export { importXl, parseXl, parseXlDisk, parseXlVif } from './xl.js';
export { importFuchsia, FUCHSIA_KEYS, type FuchsiaGeneration } from './fuchsia.js';
export { importMicrovm, importMicrovmObject } from './microvm.js';
export { parseNixAttrs } from './nix.js';
export { importCamkes } from './camkes.js';
export { exportXl } from './export.js';
export { writeMicrovmRunner, RUNNER_SCRIPTS, type RunnerResult } from './microvm-runner.js';

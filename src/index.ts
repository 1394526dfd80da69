// typevisor as a library: `import { Vm, loadConfig } from 'typevisor'`.
//
//   const vm = new Vm({ name: 'demo', cpus: 1, memoryMiB: 256, kernel: 'Image', console: 'serial',
//                       disks: [], rng: true, balloon: false });
//   await vm.start();
//   vm.console.pipe(process.stdout);
//   vm.requestShutdown();
//   const exit = await vm.wait();
//
// Also: configs of every supported format (loadConfig, vmSpecFromConfig), the state directory of
// running guests and clients for their control API (listGuests, controlRequest), and the VM
// process's pieces for embedding (VmHost, createControlServer, createQmpServer).

export { Vm, type VmSpec, type VmState, type VmExit, type DiskSpec } from './vmm/vm.js';
// Snapshots: await vm.save(FILE) (it holds the vCPUs while it writes); new Vm(specForRestore(r.header)).start({ restore: r }) with r = new SnapshotReader(FILE).
export { SnapshotReader, specForRestore, SNAPSHOT_FORMAT, type SnapshotHeader } from './vmm/snapshot.js';
export {
  loadConfig,
  loadConfigText,
  parseFormat,
  type LoadOptions,
  type LoadResult,
  type ConfigFormat,
} from './config/load.js';
export type { VmConfig, DiskConfig, NetConfig, BalloonConfig } from './config/vmconfig.js';
export { validateConfig } from './config/vmconfig.js';
export { ConfigError } from './config/errors.js';
export { UserError } from './host/errors.js';
export { exportXl } from './config/export.js';
export { writeMicrovmRunner, type RunnerResult } from './config/microvm-runner.js';
export {
  VmHost,
  ConsoleRing,
  ControlError,
  NOMINAL_HZ,
  type HostState,
  type HostStatus,
} from './vmm/server.js';
export { stateDir, entryPaths, readRecord, type VmRecord, type EntryPaths } from './vmm/state.js';
export { createControlServer } from './api/control.js';
export { createQmpServer } from './api/qmp.js';
export {
  apiRequest as controlRequest,
  liveRecords as listGuests,
  findVm as findGuest,
  type ApiResponse,
} from './api/client.js';
export { createVm } from './cli/create.js';
export type { RunValues } from './config/spec.js';

import { specFromOptions, type RunValues } from './config/spec.js';
import type { VmSpec } from './vmm/vm.js';

/**
 * The VmSpec for a config file of any supported format, as `typevisor run CONFIG` boots it;
 * `overrides` are run's command-line options (e.g. { memory: '1024' }).
 */
export function vmSpecFromConfig(configPath: string, overrides: RunValues = {}): Promise<VmSpec> {
  return specFromOptions(overrides, configPath);
}

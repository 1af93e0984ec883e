/** The VM executor: function and `vm:` shell steps in fresh, isolated, resource-limited VMs. */
export type { DriverCapabilities, Vm, VmDriver, VmExit, VmFile, VmSpec } from './driver.ts';
export type { GuestUidRange, ProcessDriverOptions, VmExecutorOptions } from './options.ts';
export { resolveExecutorOptions } from './options.ts';
export { ProcessVmDriver } from './process-driver.ts';
export type { VmStepOptions } from './step-options.ts';
export { DEFAULT_STEP_OPTIONS, resolveStepOptions } from './step-options.ts';
export { VmExecutor } from './vm-executor.ts';
export type { PoolStats } from './warm-pool.ts';

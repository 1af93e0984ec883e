/**
 * Options of the VM executor and its process driver: defaults spread under the caller's values,
 * then validated with messages that name the field (the bullmq worker-options habit).
 */
import { availableParallelism, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type Issue, ValidationError } from '../../errors.ts';
import type { VmDriver } from './driver.ts';
import { DEFAULT_STEP_OPTIONS, resolveStepOptions, type VmStepOptions } from './step-options.ts';

/** A block of host uids handed out one per VM when the worker runs as root. */
export interface GuestUidRange {
  first: number;
  count: number;
}

/** Settings of the process driver: how a fresh runtime VM is fenced on this host. */
export interface ProcessDriverOptions {
  /** bubblewrap binary. @defaultValue `'bwrap'` */
  bwrapPath: string;
  /** util-linux `prlimit`, which sets the rlimits. @defaultValue `'prlimit'` */
  prlimitPath: string;
  /** Node.js for function VMs. @defaultValue `process.execPath` */
  nodePath: string;
  /** Use cgroups for memory, pids and CPU where a hierarchy is writable. @defaultValue `'auto'` */
  cgroups: 'auto' | 'off';
  /** Where cgroup hierarchies are mounted. @defaultValue `'/sys/fs/cgroup'` */
  cgroupRoot: string;
  /** CPU bandwidth of one VM, in cores (cgroup CPU quota). @defaultValue 1 */
  cpus: number;
  /** Largest file a guest may write (RLIMIT_FSIZE), in MiB. @defaultValue 256 */
  maxFileMb: number;
  /**
   * When the worker runs as root, each VM runs as its own unprivileged uid picked at random from
   * this range, so guests share nothing with the worker or each other even outside the sandbox.
   * `false` keeps the worker's uid. @defaultValue `{ first: 1_500_000_000, count: 16_777_216 }`
   */
  guestUids: GuestUidRange | false;
  /** Directory from which `vm.modules` are resolved (its node_modules, then its parents'). @defaultValue this package's root */
  moduleRoot: string;
  /** Parent of the VMs' private directories. @defaultValue `os.tmpdir()` */
  tmpDir: string;
  /**
   * Start function VMs from a V8 startup snapshot of the guest runner (built once per worker and
   * heap size, in the background). @defaultValue true
   */
  snapshot: boolean;
}

/** Options of `new VmExecutor(…)`. Every field is optional; see each default. */
export interface VmExecutorOptions extends ProcessDriverOptions {
  /**
   * Whether this worker sandboxes with bubblewrap. `false` switches the sandbox off for the
   * worker: it then refuses steps that ask for the sandbox (the default) and runs only steps
   * with `vm.sandbox: false`. @defaultValue true
   */
  sandbox: boolean;
  /** Pre-spawned VMs kept waiting for a function step even when idle; 0 disables the pool. @defaultValue 2 */
  poolSize: number;
  /**
   * The pool grows toward the number of function steps in flight, up to this many VMs ready or
   * starting (at least `poolSize`). @defaultValue `max(8, poolSize)`
   */
  poolMax: number;
  /** VM starts the pool runs at once, at most. @defaultValue `max(4, 2 × CPUs)`, at most `poolMax` */
  poolStarts: number;
  /** After this long without the demand that grew it, the pool shrinks back. @defaultValue 30000 */
  poolIdleMs: number;
  /** The `vm` options warm VMs are made for; other steps start a cold VM. @defaultValue `stepDefaults` */
  poolProfile: Partial<VmStepOptions>;
  /** Defaults under every step's `vm` block. @defaultValue `DEFAULT_STEP_OPTIONS` */
  stepDefaults: Partial<VmStepOptions>;
  /** Log bytes (stdout + stderr) after which the step fails with `output_limit`. @defaultValue 16 MiB */
  maxLogBytes: number;
  /** After an abort, how long a function may react to `ctx.signal` before it is killed. @defaultValue 250 */
  killGraceMs: number;
  /** Another driver (e.g. a microVM one); by default a `ProcessVmDriver` built from these options. */
  driver?: VmDriver;
}

/** Options after defaults and validation. */
export interface ResolvedVmExecutorOptions extends Omit<VmExecutorOptions, 'stepDefaults' | 'poolProfile'> {
  stepDefaults: VmStepOptions;
  poolProfile: VmStepOptions;
}

/** The driver defaults (computed on call: nothing is read at import time). */
export function defaultDriverOptions(): ProcessDriverOptions {
  return {
    bwrapPath: 'bwrap',
    prlimitPath: 'prlimit',
    nodePath: process.execPath,
    cgroups: 'auto',
    cgroupRoot: '/sys/fs/cgroup',
    cpus: 1,
    maxFileMb: 256,
    guestUids: { first: 1_500_000_000, count: 16_777_216 },
    moduleRoot: fileURLToPath(new URL('../../..', import.meta.url)),
    tmpDir: tmpdir(),
    snapshot: true,
  };
}

/** Spreads defaults under `user`, then validates; throws `ValidationError` listing every problem. */
export function resolveExecutorOptions(given: Partial<VmExecutorOptions> = {}): ResolvedVmExecutorOptions {
  const issues: Issue[] = [];
  // A field passed as `undefined` (an unset environment variable) means its default.
  const user = Object.fromEntries(
    Object.entries(given).filter(([, v]) => v !== undefined),
  ) as Partial<VmExecutorOptions>;
  const poolSize = user.poolSize ?? 2;
  const poolMax = user.poolMax ?? Math.max(8, poolSize);
  const merged = {
    ...defaultDriverOptions(),
    sandbox: true,
    poolSize,
    poolMax,
    poolStarts: Math.max(1, Math.min(poolMax, Math.max(4, 2 * availableParallelism()))),
    poolIdleMs: 30_000,
    maxLogBytes: 16 * 1024 * 1024,
    killGraceMs: 250,
    ...user,
  };
  const int = (key: keyof typeof merged, min: number, max: number) => {
    const v = merged[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      issues.push({ path: key, message: `must be an integer from ${min} to ${max}` });
    }
  };
  int('poolSize', 0, 64);
  int('poolMax', 0, 64);
  int('poolStarts', 1, 64);
  int('poolIdleMs', 100, 3_600_000);
  if (merged.poolMax < merged.poolSize) {
    issues.push({ path: 'poolMax', message: `must be at least poolSize (${merged.poolSize})` });
  }
  int('maxLogBytes', 1024, 2 ** 40);
  // The guest must be gone within a second of an abort: the grace leaves room for the kill.
  int('killGraceMs', 0, 800);
  int('maxFileMb', 1, 2 ** 20);
  if (typeof merged.cpus !== 'number' || !(merged.cpus >= 0.05 && merged.cpus <= 1024)) {
    issues.push({ path: 'cpus', message: 'must be a number of cores from 0.05 to 1024' });
  }
  for (const key of ['sandbox', 'snapshot'] as const) {
    if (typeof merged[key] !== 'boolean') issues.push({ path: key, message: 'must be true or false' });
  }
  if (merged.cgroups !== 'auto' && merged.cgroups !== 'off') {
    issues.push({ path: 'cgroups', message: 'must be "auto" or "off"' });
  }
  const uids = merged.guestUids;
  if (uids !== false) {
    const ok =
      typeof uids === 'object' &&
      Number.isInteger(uids.first) &&
      Number.isInteger(uids.count) &&
      uids.first >= 1000 &&
      uids.count >= 1 &&
      uids.first + uids.count <= 2 ** 31;
    if (!ok)
      issues.push({ path: 'guestUids', message: 'must be false or {first ≥ 1000, count ≥ 1} below 2^31' });
  }
  for (const key of ['bwrapPath', 'prlimitPath', 'nodePath', 'cgroupRoot', 'moduleRoot', 'tmpDir'] as const) {
    if (typeof merged[key] !== 'string' || merged[key] === '') {
      issues.push({ path: key, message: 'must be a non-empty string' });
    }
  }
  const stepDefaults = stepOptionsOrIssue(
    'stepDefaults',
    user.stepDefaults ?? {},
    DEFAULT_STEP_OPTIONS,
    issues,
  );
  const poolProfile = stepOptionsOrIssue('poolProfile', user.poolProfile ?? {}, stepDefaults, issues);
  if (issues.length > 0) {
    throw new ValidationError(
      `invalid VM executor options: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return { ...merged, stepDefaults, poolProfile };
}

function stepOptionsOrIssue(
  path: string,
  raw: Partial<VmStepOptions>,
  defaults: VmStepOptions,
  issues: Issue[],
): VmStepOptions {
  try {
    return resolveStepOptions(raw as Record<string, unknown>, defaults);
  } catch (err) {
    issues.push({ path, message: (err as Error).message });
    return { ...defaults };
  }
}

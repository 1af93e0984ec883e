/**
 * A step's `vm:` block, checked and completed with the worker's defaults. The engine validated
 * the definition at submission, but what reaches an executor is `Record<string, unknown>`, and
 * these numbers become kernel limits: they are checked again here, with messages that name the
 * field.
 */
import { StepError } from '../../errors.ts';

/** Limits and fences of one VM step, every field resolved. */
export interface VmStepOptions {
  /** Memory of the whole VM (heap, runtime, buffers, its private /tmp), in MiB. @defaultValue 128 */
  memoryMb: number;
  /** CPU time the guest may use, in seconds (RLIMIT_CPU per process). @defaultValue 60 */
  cpuSeconds: number;
  /** Processes and threads the VM may hold at once (Node.js itself needs about 12). @defaultValue 64 */
  pids: number;
  /** Network access; without it the sandbox has only its own loopback. @defaultValue false */
  network: boolean;
  /** Run inside bubblewrap; a worker without it refuses such steps. @defaultValue true */
  sandbox: boolean;
  /** Packages of the worker's node_modules the function may import, read-only. @defaultValue [] */
  modules: string[];
}

/** The defaults a step's `vm:` block is completed with (a worker may override them). */
export const DEFAULT_STEP_OPTIONS: Readonly<VmStepOptions> = Object.freeze({
  memoryMb: 128,
  cpuSeconds: 60,
  pids: 64,
  network: false,
  sandbox: true,
  modules: [],
});

/** Bounds shared by the step and worker validation. */
export const STEP_BOUNDS = {
  // Node.js itself needs ~10 MiB of the VM's memory before the heap gets any.
  memoryMb: [32, 65_536],
  cpuSeconds: [0.1, 86_400],
  pids: [1, 32_768],
} as const;

/** A function VM's Node.js runs about a dozen threads, which the pids limit counts. */
export const FUNCTION_MIN_PIDS = 16;

const PACKAGE = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

/**
 * Resolves a step's `vm` options over `defaults`. Keys the VM does not own (such as `timeout`,
 * which the engine enforces) are ignored. Throws a non-retriable `StepError` naming the field.
 */
export function resolveStepOptions(raw: Record<string, unknown>, defaults: VmStepOptions): VmStepOptions {
  const merged = { ...defaults, ...fromExpressions(definedOnly(raw)) } as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of ['memoryMb', 'cpuSeconds', 'pids'] as const) {
    const [min, max] = STEP_BOUNDS[key];
    const value = merged[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      problems.push(`vm.${key} must be a number from ${min} to ${max} (got ${JSON.stringify(value)})`);
    }
  }
  for (const key of ['network', 'sandbox'] as const) {
    if (typeof merged[key] !== 'boolean') problems.push(`vm.${key} must be true or false`);
  }
  const modules = merged.modules;
  if (!Array.isArray(modules) || modules.some((m) => typeof m !== 'string' || !PACKAGE.test(m))) {
    problems.push('vm.modules must be a list of package names, such as ["yaml", "@scope/pkg"]');
  }
  if (problems.length > 0) throw new StepError('invalid_vm_options', problems.join('; '), false);
  return {
    memoryMb: Math.floor(merged.memoryMb as number),
    // RLIMIT_CPU counts whole seconds; rounding up never cuts a step short of what it asked.
    cpuSeconds: Math.ceil(merged.cpuSeconds as number),
    pids: Math.floor(merged.pids as number),
    network: merged.network as boolean,
    sandbox: merged.sandbox as boolean,
    modules: [...new Set(modules as string[])].sort(),
  };
}

/** A key equal for two option sets exactly when one VM could serve both (the warm pool's test). */
export function profileKey(options: VmStepOptions): string {
  const { memoryMb, cpuSeconds, pids, network, sandbox, modules } = options;
  return JSON.stringify([memoryMb, cpuSeconds, pids, network, sandbox, modules]);
}

/**
 * `vm` fields may hold `${{ }}` expressions, which the engine resolves to strings: "256" and
 * "true" mean what they say. Anything else stays as it is, for validation to name.
 */
function fromExpressions(raw: Record<string, unknown>): Record<string, unknown> {
  const out = { ...raw };
  for (const key of ['memoryMb', 'cpuSeconds', 'pids'] as const) {
    const v = out[key];
    if (typeof v === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v)) out[key] = Number(v);
  }
  for (const key of ['network', 'sandbox'] as const) {
    if (out[key] === 'true' || out[key] === 'false') out[key] = out[key] === 'true';
  }
  return out;
}

function definedOnly(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
}

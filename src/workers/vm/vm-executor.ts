/**
 * The `vm` executor: function steps and `vm:` shell steps, each in a fresh VM from the driver
 * (by default a sandboxed, resource-limited Node.js or shell process tree). Function VMs come
 * from the warm pool when the step's `vm` options match the pool's profile, cold otherwise.
 * Every VM serves one step and is destroyed.
 */
import { StepError } from '../../errors.ts';
import type { Executor, ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { createMasker } from '../mask.ts';
import type { DriverCapabilities, Vm, VmDriver, VmSpec } from './driver.ts';
import { compileFunction, warmUpCompiler } from './function-source.ts';
import { type ResolvedVmExecutorOptions, resolveExecutorOptions, type VmExecutorOptions } from './options.ts';
import { ProcessVmDriver } from './process-driver.ts';
import { abortedResult, failedResult } from './results.ts';
import { runCommand } from './run-command.ts';
import { runFunction } from './run-function.ts';
import { FUNCTION_MIN_PIDS, profileKey, resolveStepOptions, type VmStepOptions } from './step-options.ts';
import { type PoolStats, WarmPool } from './warm-pool.ts';

/** Runs `vm` and `function` steps in fresh isolated VMs. */
export class VmExecutor implements Executor {
  readonly name = 'vm';
  readonly options: ResolvedVmExecutorOptions;
  readonly driver: VmDriver;
  #pool: WarmPool | null = null;
  readonly #poolKey: string;
  readonly #active = new Set<Vm>();
  #closed = false;

  constructor(options: Partial<VmExecutorOptions> = {}) {
    this.options = resolveExecutorOptions(options);
    this.driver = this.options.driver ?? new ProcessVmDriver(this.options);
    const profile = this.options.poolProfile;
    this.#poolKey = profileKey(profile);
    if (this.options.poolSize > 0 && (this.options.sandbox || !profile.sandbox)) {
      const pool = new WarmPool(() => this.driver.start(functionSpec(profile)), {
        min: this.options.poolSize,
        max: this.options.poolMax,
        parallel: this.options.poolStarts,
        idleMs: this.options.poolIdleMs,
      });
      this.#pool = pool;
      // Fill only once the host is known (a pool of sandboxed VMs on a host without a sandbox
      // would only collect failures), and once the driver has prepared the profile (the
      // runner's snapshot), so the first VMs already start the cheap way.
      void this.driver.capabilities().then(
        async (caps) => {
          if (profile.sandbox && caps.sandboxUnavailable) return this.#dropPool();
          await this.driver.prepare?.(functionSpec(profile));
          pool.fill();
        },
        () => this.#dropPool(),
      );
    }
    warmUpCompiler();
  }

  /** What the driver can fence on this host. */
  capabilities(): Promise<DriverCapabilities> {
    return this.driver.capabilities();
  }

  /** The warm pool's counters (`null` without a pool). */
  poolStats(): PoolStats | null {
    return this.#pool?.stats() ?? null;
  }

  /** Resolves once the warm pool is full (at once without a pool). */
  async whenPoolFull(): Promise<void> {
    await this.driver.capabilities().catch(() => {});
    await this.#pool?.whenFull();
  }

  async run(step: StepExecution, ctx: ExecutorContext): Promise<StepResult> {
    try {
      if (this.#closed) throw new StepError('executor_closed', 'the VM executor is shutting down', true);
      const options = resolveStepOptions(step.options, this.options.stepDefaults);
      if (step.function === undefined && step.command === undefined) {
        throw new StepError('invalid_step', 'a vm step needs a function or a command', false);
      }
      await this.#checkSandbox(options);
      if (ctx.signal.aborted) return abortedResult(ctx.signal.reason);
      const result =
        step.function !== undefined
          ? await this.#runFunction(step, step.function, options, ctx)
          : await this.#runCommand(step, step.command!, options, ctx);
      return result.error
        ? { ...result, error: { ...result.error, message: createMasker(step.secrets)(result.error.message) } }
        : result;
    } catch (err) {
      if (!(err instanceof StepError)) throw err;
      return failedResult(
        new StepError(err.code, createMasker(step.secrets)(err.message), err.retriable, { cause: err }),
      );
    }
  }

  async #checkSandbox(options: VmStepOptions): Promise<void> {
    if (!options.sandbox) return;
    if (!this.options.sandbox) {
      throw new StepError(
        'sandbox_unavailable',
        'this worker runs with the sandbox switched off and the step needs it (vm.sandbox: false runs it without)',
        false,
      );
    }
    const { sandboxUnavailable } = await this.driver.capabilities();
    if (sandboxUnavailable) {
      throw new StepError(
        'sandbox_unavailable',
        `the step needs the sandbox, but ${sandboxUnavailable}`,
        false,
      );
    }
  }

  async #runFunction(
    step: StepExecution,
    source: string,
    options: VmStepOptions,
    ctx: ExecutorContext,
  ): Promise<StepResult> {
    if (options.pids < FUNCTION_MIN_PIDS) {
      throw new StepError(
        'invalid_vm_options',
        `vm.pids must be at least ${FUNCTION_MIN_PIDS} for a function: Node.js runs about a dozen threads`,
        false,
      );
    }
    const pool = profileKey(options) === this.#poolKey ? this.#pool : null;
    pool?.demand(1);
    try {
      const warm = (await pool?.acquire()) ?? null;
      // No VM was ready: this step starts cold, and the pool starts the next step's now.
      if (!warm) pool?.fill();
      const starting = warm ? Promise.resolve(warm) : this.driver.start(functionSpec(options));
      let code: string;
      try {
        code = await compileFunction(source);
      } catch (err) {
        void starting.then(
          (vm) => vm.dispose(),
          () => {},
        );
        throw err;
      }
      const refill = () => pool?.fill();
      return await this.#use(await starting, ctx, (vm) =>
        runFunction(vm, step, code, options, ctx, this.options, { started: refill }),
      );
    } finally {
      pool?.demand(-1);
      pool?.fill();
    }
  }

  async #runCommand(step: StepExecution, command: string, options: VmStepOptions, ctx: ExecutorContext) {
    const env = { ...step.env, CONVEYOR_IDEMPOTENCY_KEY: step.idempotencyKey };
    const vm = await this.driver.start({ kind: 'command', command, env, options });
    return this.#use(vm, ctx, (v) => runCommand(v, step, options, ctx, this.options));
  }

  async #use(vm: Vm, ctx: ExecutorContext, body: (vm: Vm) => Promise<StepResult>): Promise<StepResult> {
    this.#active.add(vm);
    try {
      if (!ctx.signal.aborted) return await body(vm);
      vm.kill();
      await vm.exited;
      return abortedResult(ctx.signal.reason);
    } catch (err) {
      vm.kill();
      await vm.exited;
      throw err;
    } finally {
      // Every path above waited for the VM's exit, so no guest process is left; removing its
      // directory and cgroup need not delay the result (close() still waits for it).
      void vm
        .dispose()
        .catch(() => {})
        .finally(() => this.#active.delete(vm));
    }
  }

  #dropPool(): void {
    void this.#pool?.close();
    this.#pool = null;
  }

  /** Destroys the warm VMs and any still running, then releases the driver. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool?.close();
    await Promise.all([...this.#active].map((vm) => vm.dispose()));
    await this.driver.close();
  }
}

/** A function runtime waiting for its module. Its env is filled in over the channel. */
function functionSpec(options: VmStepOptions): VmSpec {
  return { kind: 'function', env: {}, options };
}

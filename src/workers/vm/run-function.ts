/**
 * One function step on a ready VM: hand it the module and context, relay progress and events,
 * wait for its one terminal message (or its death, or an abort), and make sure it is gone
 * before the result is built.
 */
import { OutputLimitError, StepError } from '../../errors.ts';
import type { EmittedEvent, ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { GUEST_PATH, type Vm, type VmExit } from './driver.ts';
import { exitError, guestError, limitError } from './failure.ts';
import { LogForwarder } from './log-forwarder.ts';
import type { GuestMessage } from './protocol.ts';
import { abortedResult, failedResult } from './results.ts';
import type { VmStepOptions } from './step-options.ts';

/** Executor settings a run needs. */
export interface RunSettings {
  maxLogBytes: number;
  killGraceMs: number;
}

/** Hooks into a function run. */
export interface FunctionHooks {
  /** The function's own code is about to run (the warm pool refills from here on). */
  started?: () => void;
}

type Terminal = Extract<GuestMessage, { t: 'result' } | { t: 'error' }>;

/** Runs `code` (the compiled module) for `step` on `vm`. The caller disposes the VM. */
export async function runFunction(
  vm: Vm,
  step: StepExecution,
  code: string,
  options: VmStepOptions,
  ctx: ExecutorContext,
  settings: RunSettings,
  hooks: FunctionHooks = {},
): Promise<StepResult> {
  const channel = vm.channel!;
  let problem: StepError | null = null;
  let terminal: Terminal | null = null;
  const events: EmittedEvent[] = [];
  let eventBytes = 0;
  let wake: () => void = () => {};
  const woken = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (err: StepError) => {
    problem ??= err;
    vm.kill();
    wake();
  };

  const logs = new LogForwarder(
    (stream, chunk) => ctx.log(stream, chunk),
    settings.maxLogBytes,
    () => stop(new OutputLimitError(`log output passed the ${settings.maxLogBytes}-byte cap`)),
  );
  for (const note of vm.notes) logs.note(note);
  logs.attach(vm.stdout, 'stdout');
  logs.attach(vm.stderr, 'stderr');
  channel.listen({
    message: (m) => {
      if (m.t === 'started') {
        hooks.started?.();
      } else if (m.t === 'progress') {
        ctx.progress(m.percent, m.message);
      } else if (m.t === 'emit') {
        eventBytes += m.type.length + JSON.stringify(m.payload).length;
        if (eventBytes > step.limits.maxOutputBytes) {
          stop(new OutputLimitError(`events passed the ${step.limits.maxOutputBytes}-byte cap (ctx.emit)`));
        } else {
          events.push({ type: m.type, payload: m.payload });
        }
      } else if (m.t === 'result' || m.t === 'error') {
        terminal ??= m;
        wake();
      }
    },
    error: (err) =>
      stop(new StepError('protocol_error', `the function's VM broke the protocol: ${err.message}`, false)),
  });
  const onAbort = () => {
    const reason = ctx.signal.reason as unknown;
    channel.send({ t: 'abort', reason: reason instanceof Error ? reason.message : String(reason) });
    wake();
  };
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  void vm.exited.then(wake);

  try {
    await vm.writeFile('function', code);
    channel.send({
      t: 'run',
      file: 'function.mjs',
      env: { PATH: GUEST_PATH, ...step.env, ...vm.guestEnv, CONVEYOR_IDEMPOTENCY_KEY: step.idempotencyKey },
      context: {
        inputs: step.context.inputs ?? {},
        steps: step.context.steps ?? {},
        env: step.context.env ?? step.env,
        secrets: step.context.secrets ?? {},
        run: step.context.run ?? { id: step.runId, attempt: step.attempt },
      },
      maxOutputBytes: step.limits.maxOutputBytes,
    });
    if (ctx.signal.aborted) onAbort();
    await woken;
    // After a terminal message or an abort the guest gets a moment to exit on its own (so the
    // last output drains); then it is killed either way.
    const exit = await exitWithin(vm, problem ? 0 : settings.killGraceMs);
    if (ctx.signal.aborted) return abortedResult(ctx.signal.reason);
    if (problem) return failedResult(problem);
    const facts = { exit, sandboxed: vm.sandboxed, stderrTail: logs.stderrTail, options };
    const done = terminal as Terminal | null;
    if (done?.t === 'result') {
      const size = Buffer.byteLength(JSON.stringify(done.outputs));
      if (size > step.limits.maxOutputBytes) {
        return failedResult(
          new OutputLimitError(`outputs are ${size} bytes, over the ${step.limits.maxOutputBytes}-byte cap`),
        );
      }
      return { exitCode: 0, outputs: done.outputs, events };
    }
    if (done) {
      const err = limitError(facts) ?? guestError(done, facts);
      return failedResult(err, done.kind === 'exit' ? exit.code : null);
    }
    const err = exitError(facts);
    return failedResult(err, err.code === 'guest_exit' ? exit.code : null);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

async function exitWithin(vm: Vm, ms: number): Promise<VmExit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  if ((await Promise.race([vm.exited.then(() => true), late.then(() => false)])) === false) vm.kill();
  clearTimeout(timer);
  return vm.exited;
}

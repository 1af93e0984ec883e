/**
 * One `vm:` shell step on a started VM: stream its output, wait for it (or kill it on abort),
 * then read `$CONVEYOR_OUTPUT` and `$CONVEYOR_EVENTS` from its private directory, as hostile
 * files, with the shared parsers.
 */
import { OutputLimitError, StepError } from '../../errors.ts';
import type { ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { parseEvents, parseOutputs } from '../outputs.ts';
import type { Vm } from './driver.ts';
import { limitError } from './failure.ts';
import { LogForwarder } from './log-forwarder.ts';
import { abortedResult, failedResult } from './results.ts';
import type { RunSettings } from './run-function.ts';
import type { VmStepOptions } from './step-options.ts';

/** Waits for the command on `vm` and builds its result. The caller disposes the VM. */
export async function runCommand(
  vm: Vm,
  step: StepExecution,
  options: VmStepOptions,
  ctx: ExecutorContext,
  settings: RunSettings,
): Promise<StepResult> {
  const logs = new LogForwarder(
    (stream, chunk) => ctx.log(stream, chunk),
    settings.maxLogBytes,
    () => vm.kill(),
  );
  for (const note of vm.notes) logs.note(note);
  logs.attach(vm.stdout, 'stdout');
  logs.attach(vm.stderr, 'stderr');
  // A shell has nothing to clean up that a sandbox will not: it is killed at once.
  const onAbort = () => vm.kill();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal.aborted) onAbort();
  try {
    const exit = await vm.exited;
    if (ctx.signal.aborted) return abortedResult(ctx.signal.reason);
    if (logs.overflowed)
      return failedResult(new OutputLimitError(`log output passed the ${settings.maxLogBytes}-byte cap`));
    if (exit.pidsLimitHit) logs.note(`a fork was refused: the VM may hold at most ${options.pids} processes`);
    const limit = limitError({ exit, sandboxed: vm.sandboxed, stderrTail: logs.stderrTail, options });
    const signal = vm.sandboxed ? null : exit.signal;
    if (exit.code !== 0) {
      return limit
        ? failedResult(limit, exit.code)
        : { exitCode: exit.code, signal, outputs: {}, events: [] };
    }
    // The shell itself succeeded: a child it started met a limit and the script carried on, as
    // it would have on any machine. Said in the log, not turned into a failure.
    if (limit) logs.note(`${limit.message}; the command still exited 0`);
    const max = step.limits.maxOutputBytes;
    const [outputs, events] = await Promise.all([vm.readFile('output', max), vm.readFile('events', max)]);
    return {
      exitCode: 0,
      signal,
      outputs: parseOutputs(outputs ?? '', max),
      events: parseEvents(events ?? '', max),
    };
  } catch (err) {
    if (err instanceof StepError) return failedResult(err, 0);
    throw err;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

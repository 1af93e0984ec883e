/**
 * Turns how a VM ended into the step's error: a limit that was hit (memory, CPU), the guest's
 * own failure report, or a bare exit. Limits win over everything else, since a guest killed
 * for memory often dies with a confusing last word.
 */
import { constants } from 'node:os';
import { OutputLimitError, StepError } from '../../errors.ts';
import type { VmExit } from './driver.ts';
import type { GuestMessage } from './protocol.ts';
import type { VmStepOptions } from './step-options.ts';

const SIGXCPU = constants.signals.SIGXCPU;
const SIGKILL = constants.signals.SIGKILL;
const V8_OOM = /JavaScript heap out of memory|Reached heap limit|Allocation failed - process out of memory/;
/** What V8 throws (as a RangeError) when memory for a buffer cannot be had. */
const JS_OOM = /Array buffer allocation failed|allocation failed/i;

/** How a VM ended, with what the executor saw of it. */
export interface EndFacts {
  exit: VmExit;
  sandboxed: boolean;
  /** The last few KiB of stderr. */
  stderrTail: string;
  options: VmStepOptions;
}

/** The signal that ended the guest: directly, or as a sandbox reports it (128 + n). */
export function guestSignal(exit: VmExit, sandboxed: boolean): number | null {
  if (exit.signal) return constants.signals[exit.signal] ?? null;
  if (sandboxed && exit.code !== null && exit.code > 128 && exit.code < 128 + 65) return exit.code - 128;
  return null;
}

/** A limit the VM ran into, if any. */
export function limitError(f: EndFacts): StepError | null {
  if (f.exit.oomKilled || V8_OOM.test(f.stderrTail)) {
    const how = f.exit.oomKilled ? 'killed by the kernel at the cgroup limit' : 'the JavaScript heap is full';
    return new StepError('memory_limit', `memory limit of ${f.options.memoryMb} MB exceeded (${how})`, false);
  }
  const signal = guestSignal(f.exit, f.sandboxed);
  const usedAll = f.exit.cpuSeconds !== undefined && f.exit.cpuSeconds >= f.options.cpuSeconds - 0.05;
  if (signal === SIGXCPU || (signal === SIGKILL && usedAll)) {
    return new StepError('cpu_limit', `CPU time limit of ${f.options.cpuSeconds} s exceeded`, false);
  }
  return null;
}

/** A function VM that ended without a result or error message. */
export function exitError(f: EndFacts): StepError {
  const limit = limitError(f);
  if (limit) return limit;
  const signal = guestSignal(f.exit, f.sandboxed);
  if (signal !== null) {
    const name = Object.entries(constants.signals).find(([, n]) => n === signal)?.[0] ?? `signal ${signal}`;
    return new StepError('guest_killed', `the function's VM was killed by ${name}`, true);
  }
  const tail = f.stderrTail.trim().split('\n').slice(-5).join('\n');
  return new StepError(
    'guest_exit',
    `the function's VM exited with code ${f.exit.code} before returning${tail ? `:\n${tail}` : ''}`,
    true,
  );
}

/** The step error for a guest's own failure report. */
export function guestError(m: Extract<GuestMessage, { t: 'error' }>, f: Omit<EndFacts, 'exit'>): StepError {
  const text = m.stack.includes(m.message)
    ? m.stack
    : `${m.name}: ${m.message}${m.stack ? `\n${m.stack}` : ''}`;
  if ((m.kind === 'thrown' || m.kind === 'uncaught') && m.name === 'RangeError' && JS_OOM.test(m.message)) {
    const message = `memory limit of ${f.options.memoryMb} MB exceeded (${m.message})`;
    return new StepError('memory_limit', message, false);
  }
  switch (m.kind) {
    case 'thrown':
      return new StepError('function_error', text, true);
    case 'uncaught':
      return new StepError('uncaught_exception', `uncaught exception: ${text}`, true);
    case 'exit':
      return new StepError('guest_exit', m.message, true);
    case 'load': {
      const hint =
        m.code === 'ERR_MODULE_NOT_FOUND' || m.code === 'ERR_ACCESS_DENIED'
          ? ' (a function may import only node: built-ins and the packages listed in vm.modules)'
          : '';
      return new StepError(
        'function_load_failed',
        `the function module could not be loaded: ${m.message}${hint}`,
        false,
      );
    }
    case 'invalid':
      return new StepError('bad_output', m.message, false);
    case 'output_limit':
      return new OutputLimitError(m.message);
  }
}

/**
 * From what an attempt sent back to a `StepResult`: the records the wrapper wrote, the channel's
 * exit, whether the connection died, whether the engine aborted; errors masked for secrets.
 */
import { constants } from 'node:os';
import { ConveyorError, OutputLimitError, StepError, serializeError } from '../../errors.ts';
import type { ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { createMasker } from '../mask.ts';
import { parseEvents, parseOutputs } from '../outputs.ts';
import { describeTarget } from './connect-errors.ts';
import type { RemoteRecord } from './remote-stream.ts';
import type { HostTarget } from './types.ts';

/** Turns what came back from one attempt (records, exit, connection state) into its result. */
export function outcome(o: {
  step: StepExecution;
  ctx: ExecutorContext;
  target: HostTarget;
  records: RemoteRecord[];
  killedWith: string | undefined;
  exited: { code: number | null; signal: string | null } | undefined;
  lost: StepError | undefined;
}): StepResult {
  const secrets = [...o.step.secrets, ...targetSecrets(o.target)];
  const find = <T extends RemoteRecord['type']>(type: T) =>
    o.records.find((r) => r.type === type) as Extract<RemoteRecord, { type: T }> | undefined;
  if (o.ctx.signal.aborted) {
    // The wrapper saw how the command's shell ended (128 + signal); without its report, say
    // what the kill channel had to send.
    const code = find('exit')?.code;
    const signal =
      code !== undefined && code > 128
        ? signalName(code - 128)
        : o.killedWith === 'KILL'
          ? 'SIGKILL'
          : 'SIGTERM';
    return aborted(o.ctx.signal.reason, signal);
  }
  const who = describeTarget(o.target);

  const setup = find('setup');
  if (setup) return failed(new StepError('remote_setup_failed', `${who}: ${setup.message}`, false), secrets);
  const sudo = find('sudo');
  if (sudo) {
    return failed(
      new StepError(
        'sudo_failed',
        `${who}: "sudo -n true" failed (${sudo.message || 'no message'}): the step has sudo: true, which needs ` +
          `passwordless sudo (NOPASSWD) for ${o.target.user}`,
        false,
      ),
      secrets,
    );
  }
  const exit = find('exit');
  if (find('cwd')) {
    return {
      ...failed(
        new StepError('bad_cwd', `${who}: working directory ${o.step.cwd} does not exist`, false),
        secrets,
      ),
      exitCode: exit?.code ?? 1,
    };
  }
  if (!exit) {
    if (o.lost)
      return failed(
        new StepError(o.lost.code, `${o.lost.message} while the step was running`, true),
        secrets,
      );
    const how = o.exited
      ? `exit ${o.exited.code ?? '-'}${o.exited.signal ? `, signal ${o.exited.signal}` : ''}`
      : 'no exit status';
    return failed(
      new StepError(
        'connection_lost',
        `${who}: the remote side ended the step without reporting a result (${how})`,
        true,
      ),
      secrets,
    );
  }

  const max = o.step.limits.maxOutputBytes;
  try {
    if (exit.outputBytes > max) {
      throw new OutputLimitError(
        `outputs are ${exit.outputBytes} bytes, over the ${max}-byte cap ($CONVEYOR_OUTPUT)`,
      );
    }
    if (exit.eventBytes > max) {
      throw new OutputLimitError(
        `events are ${exit.eventBytes} bytes, over the ${max}-byte cap ($CONVEYOR_EVENTS)`,
      );
    }
    const outputs = exit.output?.length ? parseOutputs(exit.output.toString('utf8'), max) : {};
    const events = exit.events?.length ? parseEvents(exit.events.toString('utf8'), max) : [];
    return { exitCode: exit.code, signal: null, outputs, events };
  } catch (err) {
    return { ...failed(err, secrets), exitCode: exit.code };
  }
}

function signalName(n: number): string {
  const found = Object.entries(constants.signals).find(([, v]) => v === n);
  return found ? found[0] : `signal ${n}`;
}

/** The result of an aborted attempt: the abort reason as the error. */
export function aborted(reason: unknown, signal: string | null): StepResult {
  const error =
    reason instanceof ConveyorError
      ? { ...serializeError(reason), retriable: reason instanceof StepError ? reason.retriable : false }
      : {
          code: 'aborted',
          message: reason instanceof Error ? reason.message : 'step aborted',
          retriable: false,
        };
  return { exitCode: null, signal, outputs: {}, events: [], error };
}

/** The result of an attempt that failed for a reason other than its exit code. */
export function failed(err: unknown, secrets: string[]): StepResult {
  const base = serializeError(err);
  const retriable = err instanceof StepError ? err.retriable : false;
  return {
    exitCode: null,
    outputs: {},
    events: [],
    error: { code: base.code, message: createMasker(secrets)(base.message), retriable },
  };
}

/** The host's own secrets (password, passphrase; jump hosts too), for masking. */
export function targetSecrets(target: HostTarget): string[] {
  const own =
    target.auth.type === 'password'
      ? [target.auth.password]
      : target.auth.type === 'key' && target.auth.passphrase
        ? [target.auth.passphrase]
        : [];
  return target.jump ? [...own, ...targetSecrets(target.jump)] : own;
}

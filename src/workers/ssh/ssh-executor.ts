/**
 * The `ssh` executor: one step attempt on one host, over a pooled connection. The command runs
 * under `sh -c` in its own session on the host (see remote-script.ts); stdout and stderr stream
 * to the step's log; outputs and events come back on the same channel; an abort (timeout,
 * cancel) kills the remote process group, TERM then KILL, through a second channel.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { ConveyorError, OutputLimitError, StepError, serializeError } from '../../errors.ts';
import type { Executor, ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { parseEvents, parseOutputs } from '../outputs.ts';
import { describeTarget } from './connect-errors.ts';
import { type PooledChannel, SshPool, type SshPoolOptions } from './pool.ts';
import {
  buildKillCommand,
  buildRemoteCommand,
  LOGIN_SHELL_PROBE,
  POSIX_LOGIN_SHELLS,
} from './remote-script.ts';
import { RecordSplitter, type RemoteRecord } from './remote-stream.ts';
import { envAssignments } from './shell.ts';
import { targetKey } from './target-key.ts';
import type { HostTarget } from './types.ts';

/** Executor settings: the pool's, plus how hosts are found and how long TERM gets. */
export interface SshExecutorOptions extends SshPoolOptions {
  /** Use this pool instead of creating one (it is then not closed by `close()`). */
  pool?: SshPool;
  /**
   * Resolves `step.options.host` when it is a host name (the usual case: the engine reads the
   * inventory and the secrets). A `HostTarget` object in `options.host` is used as is.
   */
  resolveHost?(name: string): HostTarget | Promise<HostTarget>;
  /** Time between TERM and KILL when a step is aborted. @defaultValue 5_000 */
  killGraceMs?: number;
}

/** How long a channel may stay open after the step's result is in. */
const LINGER_MS = 2_000;

/** sshd hands the command to `execve` as one argument; Linux caps one argument at 128 KiB. */
const MAX_COMMAND_BYTES = 120 * 1024;

/** Runs steps on SSH hosts. `step.options`: `{ host: string | HostTarget, sudo?: boolean }`. */
export class SshExecutor implements Executor {
  readonly name = 'ssh';
  readonly pool: SshPool;
  private readonly ownsPool: boolean;
  private readonly killGraceMs: number;
  private readonly resolveHost: SshExecutorOptions['resolveHost'];
  /** Per host: does its login shell run the wrapper as is? Probed once per worker. */
  private readonly loginShells = new Map<string, Promise<boolean>>();

  constructor(options: SshExecutorOptions = {}) {
    const { pool, resolveHost, killGraceMs = 5_000, ...poolOptions } = options;
    this.pool = pool ?? new SshPool(poolOptions);
    this.ownsPool = !pool;
    this.killGraceMs = killGraceMs;
    this.resolveHost = resolveHost;
  }

  async run(step: StepExecution, ctx: ExecutorContext): Promise<StepResult> {
    let secrets = step.secrets;
    try {
      const target = await this.target(step);
      secrets = [...step.secrets, ...targetSecrets(target)];
      return await this.attempt(step, ctx, target);
    } catch (err) {
      if (ctx.signal.aborted) return aborted(ctx.signal.reason, null);
      return failed(err, secrets);
    }
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.close();
  }

  private async target(step: StepExecution): Promise<HostTarget> {
    const host = step.options.host;
    if (typeof host === 'object' && host !== null) return host as HostTarget;
    if (typeof host === 'string' && host !== '') {
      if (!this.resolveHost)
        throw new StepError('invalid_step', `no host resolver to look up host ${host}`, false);
      return await this.resolveHost(host);
    }
    throw new StepError('invalid_step', 'an ssh step needs options.host', false);
  }

  private async attempt(step: StepExecution, ctx: ExecutorContext, target: HostTarget): Promise<StepResult> {
    if (step.command === undefined) throw new StepError('invalid_step', 'an ssh step needs a command', false);
    const sudo = step.options.sudo === true;
    const posixLoginShell = await this.posixLoginShell(target, ctx.signal);
    const marker = `\x1ecvy${randomBytes(12).toString('hex')}:`;
    const command = buildRemoteCommand({
      id: randomBytes(9).toString('hex'),
      marker,
      command: step.command,
      // Forced after the step's own variables, so a step cannot spoof the key.
      env: envAssignments({ ...step.env, CONVEYOR_IDEMPOTENCY_KEY: step.idempotencyKey }),
      cwd: step.cwd,
      sudo,
      maxOutputBytes: step.limits.maxOutputBytes,
      killGraceMs: this.killGraceMs,
      posixLoginShell,
    });
    if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) {
      throw new StepError(
        'command_too_large',
        `the command and its environment take ${Buffer.byteLength(command)} bytes once quoted; an SSH step allows ${MAX_COMMAND_BYTES}`,
        false,
      );
    }
    if (ctx.signal.aborted) return aborted(ctx.signal.reason, null);
    const pooled = await this.pool.exec(target, command, { signal: ctx.signal });
    return this.follow(pooled, { step, ctx, target, marker, sudo });
  }

  /**
   * One round trip on the first step to a host: a POSIX login shell can run the wrapper itself.
   * A failed probe is not cached; its error (unreachable, auth…) is the step's error.
   */
  private posixLoginShell(target: HostTarget, signal: AbortSignal): Promise<boolean> {
    const key = targetKey(target);
    let known = this.loginShells.get(key);
    if (!known) {
      // Shared by every step that starts meanwhile, so not tied to this step's abort signal.
      known = this.pool.run(target, LOGIN_SHELL_PROBE).then((r) => {
        const name = r.stdout.trim().replace(/^-/, '').split('/').pop() ?? '';
        return r.code === 0 && POSIX_LOGIN_SHELLS.has(name);
      });
      this.loginShells.set(key, known);
      known.catch(() => this.loginShells.delete(key));
    }
    return untilAborted(known, signal);
  }

  /** Streams one running attempt to its end and turns what came back into a result. */
  private follow(
    pooled: PooledChannel,
    a: { step: StepExecution; ctx: ExecutorContext; target: HostTarget; marker: string; sudo: boolean },
  ): Promise<StepResult> {
    const { channel } = pooled;
    const { ctx, target, step } = a;
    const records: RemoteRecord[] = [];
    let pid: number | undefined;
    let exited: { code: number | null; signal: string | null } | undefined;
    let kill: Promise<string | undefined> | undefined;
    let hardStop: NodeJS.Timeout | undefined;
    let linger: NodeJS.Timeout | undefined;

    const startKill = () => {
      if (kill || pid === undefined) return;
      kill = this.pool
        .run(target, buildKillCommand(pid, a.sudo, this.killGraceMs), { urgent: true })
        .then((r) => r.stdout.trim())
        .catch(() => undefined);
    };
    const splitter = new RecordSplitter(
      a.marker,
      step.limits.maxOutputBytes,
      (chunk) => ctx.log('stdout', chunk),
      (record) => {
        records.push(record);
        // Everything is in; only a process that left the step's session (its own setsid, stdout
        // still on the channel) could keep the channel open now. Do not wait on it for long.
        if (record.type === 'exit') linger = setTimeout(() => channel.close(), LINGER_MS);
        if (record.type === 'pid') {
          pid = record.pid;
          if (ctx.signal.aborted) startKill();
        }
      },
    );
    const onAbort = () => {
      // EOF on stdin wakes the wrapper's watcher: a kill that needs no new channel, and the only
      // one possible while the process group id is not known yet.
      channel.end();
      startKill();
      // A peer that stopped answering would keep the channel open until keepalives notice.
      hardStop = setTimeout(() => channel.close(), this.killGraceMs + 5_000);
    };

    return new Promise<StepResult>((resolve) => {
      channel.on('data', (chunk: Buffer) => splitter.push(chunk));
      channel.stderr.on('data', (chunk: Buffer) => ctx.log('stderr', chunk));
      channel.on('exit', (code: number | null, signal?: string) => {
        exited = { code, signal: signal ?? null };
      });
      channel.on('error', () => {
        // Surfaced through 'close' and the connection's close reason.
      });
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (ctx.signal.aborted) onAbort();
      channel.once('close', async () => {
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(hardStop);
        clearTimeout(linger);
        splitter.end();
        // Returning after the kill channel means the group is gone; but a dead connection must
        // not hold the result for a whole connect timeout.
        const killedWith = kill ? await untilTimeout(kill, this.killGraceMs + 5_000) : undefined;
        if (!exited && !pooled.connectionClosed()) await new Promise((r) => setImmediate(r));
        resolve(outcome({ ...a, records, killedWith, exited, lost: pooled.connectionClosed() }));
      });
    });
  }
}

function outcome(o: {
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

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function untilTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function signalName(n: number): string {
  const found = Object.entries(constants.signals).find(([, v]) => v === n);
  return found ? found[0] : `signal ${n}`;
}

function aborted(reason: unknown, signal: string | null): StepResult {
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

function failed(err: unknown, secrets: string[]): StepResult {
  const base = serializeError(err);
  const retriable = err instanceof StepError ? err.retriable : false;
  return {
    exitCode: null,
    outputs: {},
    events: [],
    error: { code: base.code, message: mask(base.message, secrets), retriable },
  };
}

/** Executors mask their own errors (the engine masks logs): a secret may sit in a message. */
function mask(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.replaceAll(s, '***');
  return out;
}

function targetSecrets(target: HostTarget): string[] {
  const own =
    target.auth.type === 'password'
      ? [target.auth.password]
      : target.auth.type === 'key' && target.auth.passphrase
        ? [target.auth.passphrase]
        : [];
  return target.jump ? [...own, ...targetSecrets(target.jump)] : own;
}

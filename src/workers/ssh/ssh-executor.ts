/**
 * The `ssh` executor: one step attempt on one host, over a pooled connection. The command runs
 * under `sh -c` in its own session on the host (see remote-script.ts); stdout and stderr stream
 * to the step's log; outputs and events come back on the same channel; an abort (timeout,
 * cancel) kills the remote process group, TERM then KILL, through a second channel.
 */
import { randomBytes } from 'node:crypto';
import { StepError } from '../../errors.ts';
import type { Executor, ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import { type PooledChannel, SshPool, type SshPoolOptions } from './pool.ts';
import {
  buildKillCommand,
  buildRemoteCommand,
  LOGIN_SHELL_PROBE,
  POSIX_LOGIN_SHELLS,
} from './remote-script.ts';
import { RecordSplitter, type RemoteRecord } from './remote-stream.ts';
import { envAssignments } from './shell.ts';
import { aborted, failed, outcome, targetSecrets } from './step-result.ts';
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

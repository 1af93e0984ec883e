/**
 * The `ssh` executor: one step attempt on one host, through a resident agent on a pooled
 * connection (agent-script.ts). The command runs under `sh -c` in its own session on the host;
 * stdout and stderr stream to the step's log; outputs and events come back on the same channel;
 * an abort (timeout, cancel) asks the agent to kill the remote process group, TERM then KILL.
 * If the agent itself dies mid-step (or writes a record that makes no sense, or does not answer
 * an abort), the worker kills the step's group over a channel of its own, fails the attempt
 * (retriable) and gives up the whole connection: the other steps on it fail as on a dropped
 * connection, and the next step gets a new connection and a new agent.
 */
import { randomBytes } from 'node:crypto';
import { StepError } from '../../errors.ts';
import type { Executor, ExecutorContext, StepExecution, StepResult } from '../executor.ts';
import type { AgentExit } from './agent.ts';
import { agentLostError, deathCleanup, describeExit } from './agent-death.ts';
import { abortRequest, stepRequest } from './agent-script.ts';
import { describeTarget } from './connect-errors.ts';
import { type AgentLease, SshPool, type SshPoolOptions } from './pool.ts';
import { RecordSplitter, type RemoteRecord } from './remote-stream.ts';
import { envPairs } from './shell.ts';
import { aborted, failed, outcome, targetSecrets } from './step-result.ts';
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

/**
 * The command becomes one argument of the step's `sh -c`; Linux caps one argument at 128 KiB.
 * Kept for the whole request (command and env), as before the agent.
 */
const MAX_COMMAND_BYTES = 120 * 1024;

/**
 * How a step's agent failed it: its channel ended, it wrote a record that is none, or it did
 * not answer an abort within `silentMs`.
 */
type AgentFailure = { exit: AgentExit | undefined } | { malformed: string } | { silentMs: number };

/**
 * How long a prefetched host lookup stays usable: the few milliseconds between a step's begin
 * and its attempt, with room for a busy event loop. Older ones are looked up again, so a host
 * or secret changed in Redis reaches every step that begins a quarter of a second later.
 */
const PREFETCH_MS = 250;

/** Runs steps on SSH hosts. `step.options`: `{ host: string | HostTarget, sudo?: boolean }`. */
export class SshExecutor implements Executor {
  readonly name = 'ssh';
  readonly pool: SshPool;
  private readonly ownsPool: boolean;
  private readonly killGraceMs: number;
  private readonly resolveHost: SshExecutorOptions['resolveHost'];
  /**
   * Lookups started by `prefetch`, by host name: steps that prefetch the same host within
   * `PREFETCH_MS` share one, and `takers` counts those that have not taken it yet.
   */
  private readonly prefetched = new Map<
    string,
    { at: number; target: Promise<HostTarget>; takers: number }
  >();

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
    this.prefetched.clear();
    if (this.ownsPool) await this.pool.close();
  }

  prefetch(host: string): void {
    if (!this.resolveHost || host === '') return;
    const now = performance.now();
    const fresh = this.prefetched.get(host);
    if (fresh && now - fresh.at < PREFETCH_MS) {
      fresh.takers++;
      return;
    }
    const target = Promise.resolve().then(() => this.resolveHost!(host));
    target.catch(() => undefined); // a step that takes it sees the failure
    const entry = { at: now, target, takers: 1 };
    this.prefetched.set(host, entry);
    // Not kept past its use: an untaken lookup (its step ended before its attempt) holds credentials.
    setTimeout(() => {
      if (this.prefetched.get(host) === entry) this.prefetched.delete(host);
    }, PREFETCH_MS).unref();
  }

  /** The prefetched lookup of `host` when one is still fresh (counted as taken), else undefined. */
  private takePrefetched(host: string): Promise<HostTarget> | undefined {
    const early = this.prefetched.get(host);
    if (!early) return undefined;
    if (--early.takers <= 0) this.prefetched.delete(host);
    return performance.now() - early.at < PREFETCH_MS ? early.target : undefined;
  }

  private async target(step: StepExecution): Promise<HostTarget> {
    const host = step.options.host;
    if (typeof host === 'object' && host !== null) return host as HostTarget;
    if (typeof host === 'string' && host !== '') {
      if (!this.resolveHost)
        throw new StepError('invalid_step', `no host resolver to look up host ${host}`, false);
      return await (this.takePrefetched(host) ?? this.resolveHost(host));
    }
    throw new StepError('invalid_step', 'an ssh step needs options.host', false);
  }

  private async attempt(step: StepExecution, ctx: ExecutorContext, target: HostTarget): Promise<StepResult> {
    if (step.command === undefined) throw new StepError('invalid_step', 'an ssh step needs a command', false);
    const sudo = step.options.sudo === true;
    const marker = `\x1ecvy${randomBytes(12).toString('hex')}:`;
    const request = stepRequest({
      id: randomBytes(9).toString('hex'),
      marker,
      command: step.command,
      // Forced after the step's own variables, so a step cannot spoof the key.
      env: envPairs({ ...step.env, CONVEYOR_IDEMPOTENCY_KEY: step.idempotencyKey }),
      cwd: step.cwd,
      sudo,
      maxOutputBytes: step.limits.maxOutputBytes,
      killGraceMs: this.killGraceMs,
    });
    if (Buffer.byteLength(request) > MAX_COMMAND_BYTES) {
      throw new StepError(
        'command_too_large',
        `the command and its environment take ${Buffer.byteLength(request)} bytes once quoted; an SSH step allows ${MAX_COMMAND_BYTES}`,
        false,
      );
    }
    if (ctx.signal.aborted) return aborted(ctx.signal.reason, null);
    const lease = await this.pool.agent(target, { signal: ctx.signal });
    if (ctx.signal.aborted) {
      lease.release(true);
      return aborted(ctx.signal.reason, null);
    }
    return this.follow(lease, request, { step, ctx, target, marker, sudo });
  }

  /** Sends the step to its agent, streams it to its end and turns what came back into a result. */
  private follow(
    lease: AgentLease,
    request: string,
    a: { step: StepExecution; ctx: ExecutorContext; target: HostTarget; marker: string; sudo: boolean },
  ): Promise<StepResult> {
    const { agent } = lease;
    const { ctx, step } = a;
    const records: RemoteRecord[] = [];
    let pid: number | undefined;
    let outDone = false;
    let errDone = false;
    let abortSent = false;
    let settled = false;
    let gone = false;
    let hardStop: NodeJS.Timeout | undefined;

    return new Promise<StepResult>((resolve) => {
      const finish = (result: StepResult, reusable: boolean) => {
        if (settled) return;
        settled = true;
        ctx.signal.removeEventListener('abort', onAbort);
        clearTimeout(hardStop);
        agent.detach();
        lease.release(reusable);
        resolve(result);
      };
      const maybeDone = () => {
        if (outDone && errDone)
          finish(outcome({ ...a, records, killedWith: undefined, exited: undefined, lost: undefined }), true);
      };
      const sendAbort = () => {
        if (abortSent || pid === undefined || outDone) return;
        abortSent = true;
        agent.send(abortRequest(pid));
      };
      const onAbort = () => {
        sendAbort();
        // An agent that stopped answering would hold the step until keepalives notice.
        const silentMs = this.killGraceMs + 5_000;
        hardStop = setTimeout(() => failedBy({ silentMs }), silentMs);
      };
      // The agent is gone or not to be trusted: nothing more is read from it.
      const failedBy = (why: AgentFailure) => {
        if (gone || settled) return;
        gone = true;
        out.end();
        err.end();
        agent.detach();
        void this.agentGone(lease, { ...a, records, pid, why }).then((r) => finish(r, false));
      };
      const out = new RecordSplitter(
        a.marker,
        step.limits.maxOutputBytes,
        (chunk) => {
          // After the result: bytes from a process that left the step's session.
          if (!outDone) ctx.log('stdout', chunk);
        },
        (record) => {
          if (record.type === 'malformed') return failedBy({ malformed: record.header });
          records.push(record);
          if (record.type === 'pid') {
            pid = record.pid;
            if (ctx.signal.aborted) sendAbort();
          }
          if (record.type === 'exit' || record.type === 'setup' || record.type === 'sudo') {
            outDone = true;
            maybeDone();
          }
        },
      );
      const err = new RecordSplitter(
        a.marker,
        0,
        (chunk) => {
          if (!errDone) ctx.log('stderr', chunk);
        },
        (record) => {
          if (record.type === 'malformed') return failedBy({ malformed: record.header });
          if (record.type !== 'end') return;
          errDone = true;
          maybeDone();
        },
      );
      agent.attach({
        stdout: (chunk) => out.push(chunk),
        stderr: (chunk) => err.push(chunk),
        closed: (exit) => failedBy({ exit }),
      });
      // An agent that ended while idle calls `closed` at once: nothing was sent.
      if (settled || !agent.alive) return;
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (ctx.signal.aborted) onAbort();
      agent.send(request);
    });
  }

  /**
   * The agent's channel closed before the step's result was complete, or the agent broke its
   * protocol. A lost connection is the connection's error (the agent, its stdin gone, kills the
   * step's group itself). Otherwise the agent is dead or untrustworthy: the worker kills the
   * step's group and removes the agent's state file itself, gives up the connection (the pool
   * fails the other steps on it), and fails the attempt (retriable).
   */
  private async agentGone(
    lease: AgentLease,
    a: {
      step: StepExecution;
      ctx: ExecutorContext;
      target: HostTarget;
      sudo: boolean;
      records: RemoteRecord[];
      pid: number | undefined;
      why: AgentFailure;
    },
  ): Promise<StepResult> {
    const exited = 'exit' in a.why ? a.why.exit : undefined;
    // A dying connection closes its channels first: give its reason a moment to be known.
    if (!lease.connectionClosed()) await new Promise((r) => setImmediate(r));
    const lost = lease.connectionClosed();
    if (lost) return outcome({ ...a, killedWith: undefined, exited, lost });
    const finished = a.records.some((r) => r.type === 'exit');
    const { told, how } = describeFailure(a.why);
    const group =
      a.pid !== undefined && !finished ? { pgid: a.pid, sudo: a.sudo, graceMs: this.killGraceMs } : undefined;
    const stuck = 'silentMs' in a.why ? lease.agent.pid : undefined;
    const cleanedUp = lease.abandon(
      agentLostError(a.target, lease.agent.pid, told),
      deathCleanup(lease.agent.id, { step: group, stuck }),
      this.killGraceMs + 5_000,
    );
    // Its result was in: the step stands, whatever became of the agent after.
    if (finished) return outcome({ ...a, killedWith: undefined, exited, lost: undefined });
    const killedWith = (await cleanedUp)?.trim();
    if (a.ctx.signal.aborted)
      return aborted(a.ctx.signal.reason, killedWith === 'KILL' ? 'SIGKILL' : 'SIGTERM');
    const killed =
      group === undefined
        ? ''
        : killedWith === undefined
          ? `; killing the step's process group ${group.pgid} failed`
          : `; the step's process group ${group.pgid} was killed`;
    return failed(
      new StepError(
        'connection_lost',
        `${describeTarget(a.target)}: the remote agent running the step (pid ${lease.agent.pid}) ${how} while the step was running${killed}; the worker closed the connection`,
        true,
      ),
      [...a.step.secrets, ...targetSecrets(a.target)],
    );
  }
}

/**
 * What happened to an agent, for the step's own error (`how`) and for the other steps on its
 * connection (`told`): steps of other runs see no text the step wrote.
 */
function describeFailure(why: AgentFailure): { told: string; how: string } {
  if ('malformed' in why) {
    const told = 'wrote a malformed record';
    return { told, how: `${told} (${JSON.stringify(why.malformed.slice(0, 40))})` };
  }
  const told =
    'silentMs' in why
      ? `did not answer an abort within ${why.silentMs} ms`
      : `ended (${describeExit(why.exit)})`;
  return { told, how: told };
}

/**
 * SSH connections shared by every step on a worker, per host: reused across steps and runs, at
 * most `maxConnectionsPerHost` connections and `maxChannelsPerConnection` open channels on each
 * (kept below sshd's MaxSessions, 10 by default, so channel opens never fail), with requests
 * queued beyond that. Steps run through resident agents (agent.ts), one per channel, kept open
 * between steps; a request that needs a channel while every slot holds an idle agent retires
 * one. A dead peer is found by keepalives; an idle connection is closed; the next request after
 * either simply connects again. An agent that dies (or breaks its protocol) takes its whole
 * connection with it: the pool forgets the connection at once, does what the dead agent no
 * longer can (kills its step's group, removes its state file), then closes it, failing the other
 * steps on it like a dropped connection would; the next step connects again.
 */
import { EventEmitter } from 'node:events';
import type { ClientChannel } from 'ssh2';
import { StepError } from '../../errors.ts';
import { type AgentExit, RemoteAgent } from './agent.ts';
import { agentLostError, deathCleanup, describeExit } from './agent-death.ts';
import { AGENT_BOOTSTRAP } from './agent-script.ts';
import { afterServerCatchesUp, type CommandResult, openExec, runToEnd, untilTimeout } from './channels.ts';
import { connectHost, type SshLink } from './connect.ts';
import { channelError, describeTarget } from './connect-errors.ts';
import { HostKeyVerifier } from './host-key-policy.ts';
import {
  DEFAULTS,
  type ExecRequest,
  type HostPoolStats,
  type PooledChannel,
  type SshPoolOptions,
} from './pool-options.ts';
import { targetKey } from './target-key.ts';
import type { HostTarget } from './types.ts';

interface Conn {
  id: number;
  link?: SshLink;
  /** Slots taken: open channels, idle agents included. */
  channels: number;
  cap: number;
  /** Agents waiting for their next step (each holds one of `channels`). */
  idle: RemoteAgent[];
  idleTimer?: NodeJS.Timeout;
  /** An agent on it died: no longer handed out (nor in `hosts`), closed once `dying` is empty. */
  doomed?: boolean;
  /** Dead agents whose cleanup has not run yet (`condemn`), counted from the moment of death. */
  dying: Set<RemoteAgent>;
}

/** What a waiter gets: a free slot, or (for an agent request) an idle agent. */
interface Grant {
  conn: Conn;
  agent?: RemoteAgent;
}

interface Waiter {
  urgent: boolean;
  /** Takes an idle agent as well as a free slot. */
  agent: boolean;
  resolve(grant: Grant): void;
  reject(err: unknown): void;
}

interface HostState {
  target: HostTarget;
  conns: Conn[];
  waiters: Waiter[];
  peak: number;
  opened: number;
  refused: number;
}

/**
 * The connection pool. Events: `connect` (hostName), `close` (hostName, reason: StepError) when a
 * connection ends, `idle-close` (hostName) just before an idle one is closed.
 */
export class SshPool extends EventEmitter {
  readonly options: Readonly<typeof DEFAULTS>;
  readonly verifier: HostKeyVerifier;
  private readonly hosts = new Map<string, HostState>();
  /** Connections given up after an agent died, until they have closed (`condemn`). */
  private readonly condemned = new Set<Conn>();
  private nextId = 1;
  private closing = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: SshPoolOptions = {}) {
    super();
    const { verifier, knownHosts, onTrust, ...rest } = options;
    const merged = { ...DEFAULTS, ...definedOnly(rest) };
    for (const [k, v] of Object.entries(merged)) {
      if (!Number.isFinite(v) || v < (k === 'keepaliveCountMax' ? 0 : 1)) {
        throw new RangeError(`SshPool option ${k} must be a positive number, got ${v}`);
      }
    }
    this.options = merged;
    this.verifier = verifier ?? new HostKeyVerifier({ knownHosts, onTrust });
  }

  /**
   * Opens an exec channel running `command` on `target`, waiting for a free slot (and
   * connecting) as needed. The slot is released when the channel closes; closing it is the
   * caller's job once done with it.
   */
  async exec(target: HostTarget, command: string, request: ExecRequest = {}): Promise<PooledChannel> {
    const state = this.state(target);
    const { conn, channel } = await this.open(state, command, request, false);
    const link = conn.link!;
    return { channel: channel!, connectionClosed: () => link.closeReason() };
  }

  /**
   * A resident agent on `target` for one step: an idle one if any, else a new one on a free
   * slot (connecting as needed). Hand it back with `lease.release()` once its step is over.
   */
  async agent(target: HostTarget, request: ExecRequest = {}): Promise<AgentLease> {
    const state = this.state(target);
    for (let attempt = 1; ; attempt++) {
      const got = await this.open(state, AGENT_BOOTSTRAP, request, true);
      const link = got.conn.link!;
      let agent = got.agent;
      if (!agent) {
        try {
          agent = await RemoteAgent.start(
            got.channel!,
            this.options.connectTimeoutMs,
            describeTarget(target),
          );
        } catch (err) {
          // The connection died under a fresh agent: nothing ran, try another.
          if (!link.isOpen() && attempt < 3) continue;
          throw link.closeReason() ?? err;
        }
        const started = agent;
        started.closed.then(() => remove(got.conn.idle, started));
        started.onDeath = (exit, idle) => this.agentDied(state, got.conn, started, exit, idle);
        // Another agent on this connection died while this one started: it goes too.
        if (got.conn.doomed && attempt < 3) {
          started.close();
          continue;
        }
      }
      return this.lease(state, got.conn, agent);
    }
  }

  private lease(state: HostState, conn: Conn, agent: RemoteAgent): AgentLease {
    let released = false;
    return {
      agent,
      connectionClosed: () => conn.link?.closeReason(),
      release: (reusable) => {
        if (released) return;
        released = true;
        if (reusable && agent.alive && conn.link?.isOpen() && !conn.doomed && !this.closing) {
          conn.idle.push(agent);
          this.afterUse(state, conn);
        } else {
          // Its slot is released when the channel has closed.
          agent.close();
        }
      },
      abandon: (reason, cleanup, timeoutMs) => {
        released = true;
        // Nothing more is read from it, and a step process that outlived it must not keep its
        // session (and a slot of sshd's MaxSessions) open.
        agent.close();
        return this.condemn(state, conn, agent, reason, cleanup, timeoutMs);
      },
    };
  }

  /**
   * `agent` ended without the worker closing it (`RemoteAgent.onDeath`): its connection is
   * handed to no one from now on. A step that was running on it finishes the job
   * (`AgentLease.abandon`), knowing its process group; for an idle agent the pool does.
   */
  private agentDied(
    state: HostState,
    conn: Conn,
    agent: RemoteAgent,
    exit: AgentExit | undefined,
    idle: boolean,
  ): void {
    const link = conn.link!;
    if (!link.isOpen()) return;
    this.forget(state, conn);
    // Counted now, so that another death's cleanup does not close the connection before this
    // one's has run.
    conn.dying.add(agent);
    if (!idle) return;
    // A dying connection closes its channels first: give its own reason a moment to be known.
    setImmediate(() => {
      if (!link.isOpen()) return;
      const reason = agentLostError(state.target, agent.pid, `ended while idle (${describeExit(exit)})`);
      void this.condemn(state, conn, agent, reason, deathCleanup(agent.id), this.options.connectTimeoutMs);
    });
  }

  /** Takes `conn` out of the pool: no request is handed it any more, and stats leave it out. */
  private forget(state: HostState, conn: Conn): void {
    if (conn.doomed) return;
    conn.doomed = true;
    clearTimeout(conn.idleTimer);
    remove(state.conns, conn);
    this.condemned.add(conn);
    // Requests queued for a slot on it are served by other connections, or a new one.
    this.pump(state);
  }

  /**
   * Gives up `conn` after an agent on it died: runs `cleanup` there (or, if it cannot open a
   * channel, on another connection to the host), then closes it with `reason`, which the steps
   * still on it report. Agents found dead before the close each get their cleanup first.
   * Resolves with what `cleanup` printed, or undefined if it failed or took over `timeoutMs`.
   */
  private async condemn(
    state: HostState,
    conn: Conn,
    agent: RemoteAgent,
    reason: StepError,
    cleanup: string,
    timeoutMs: number,
  ): Promise<string | undefined> {
    this.forget(state, conn);
    const link = conn.link!;
    conn.dying.add(agent);
    try {
      const here = link.isOpen()
        ? openExec(link, cleanup).then((ch) => runToEnd(ch, () => link.closeReason()))
        : Promise.reject(new Error('closed'));
      const ran = here.catch(() => this.run(state.target, cleanup, { urgent: true }));
      return (await untilTimeout(ran, timeoutMs))?.stdout;
    } finally {
      conn.dying.delete(agent);
      if (conn.dying.size === 0) link.close(reason);
    }
  }

  /** Takes a slot (or an idle agent, with `reuse`) and opens `command` on a new slot. */
  private async open(
    state: HostState,
    command: string,
    request: ExecRequest,
    reuse: boolean,
  ): Promise<Grant & { channel?: ClientChannel }> {
    if (this.closing) throw new StepError('connection_lost', 'the SSH pool is closed', true);
    const target = state.target;
    for (let attempt = 1; ; attempt++) {
      const grant = await this.acquire(state, request, reuse);
      const conn = grant.conn;
      if (conn.doomed) {
        // Doomed between the grant and now: serve the request elsewhere.
        if (grant.agent) grant.agent.close();
        else this.release(state, conn);
        continue;
      }
      if (grant.agent) return grant;
      try {
        const channel = await openExec(conn.link!, command);
        channel.once('close', () => afterServerCatchesUp(conn.link!, () => this.release(state, conn)));
        return { conn, channel };
      } catch (err) {
        const open = conn.link!.isOpen();
        const busy = conn.channels - 1;
        if (open) state.refused++;
        this.release(state, conn);
        // The server refused a session while others were open: its MaxSessions is below our cap.
        // Learn it for this connection and queue again, rather than fail a step for our guess.
        if (open && busy > 0 && attempt < 4) {
          conn.cap = Math.min(conn.cap, busy);
          continue;
        }
        // A connection that died just before we used it ran nothing: safe to try a fresh one.
        if (!open && attempt < 3 && (err as Error).message === 'Not connected') continue;
        throw channelError(target, err);
      }
    }
  }

  /** Runs `command` to completion and collects its output (small commands: kill, probes). */
  async run(target: HostTarget, command: string, request: ExecRequest = {}): Promise<CommandResult> {
    const { channel, connectionClosed } = await this.exec(target, command, request);
    return runToEnd(channel, connectionClosed);
  }

  /** Per-host figures. */
  stats(): HostPoolStats[] {
    return [...this.hosts.values()].map((s) => ({
      host: s.target.name,
      connections: s.conns.length,
      channels: s.conns.reduce((n, c) => n + c.channels - c.idle.length, 0),
      idleAgents: s.conns.reduce((n, c) => n + c.idle.length, 0),
      queued: s.waiters.length,
      peakChannelsPerConnection: s.peak,
      opened: s.opened,
      channelOpenFailures: s.refused,
    }));
  }

  /** Resolves when no channel is open or queued on any host (slots are released asynchronously). */
  settled(): Promise<void> {
    if (this.isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isSettled(): boolean {
    for (const s of this.hosts.values()) {
      if (s.waiters.length || s.conns.some((c) => c.channels > c.idle.length)) return false;
    }
    return true;
  }

  /** Closes every connection; queued requests fail. */
  async close(): Promise<void> {
    this.closing = true;
    const done: Promise<unknown>[] = [];
    for (const state of this.hosts.values()) {
      for (const w of state.waiters.splice(0))
        w.reject(new StepError('connection_lost', 'the SSH pool is closing', true));
      const closing = new StepError(
        'connection_lost',
        `${describeTarget(state.target)}: the SSH pool is closing`,
        true,
      );
      for (const conn of state.conns) {
        clearTimeout(conn.idleTimer);
        if (conn.link) {
          done.push(conn.link.closed);
          conn.link.close(closing);
        }
      }
    }
    // Those close themselves once the worker has killed what their dead agents left running.
    for (const conn of this.condemned) done.push(conn.link!.closed);
    await Promise.all(done);
    this.hosts.clear();
  }

  private state(target: HostTarget): HostState {
    // Keyed by everything that shapes the connection, so an edited inventory entry gets fresh
    // connections while the old ones drain and idle out.
    const key = targetKey(target);
    let state = this.hosts.get(key);
    if (!state) {
      state = { target, conns: [], waiters: [], peak: 0, opened: 0, refused: 0 };
      this.hosts.set(key, state);
    }
    return state;
  }

  private acquire(state: HostState, request: ExecRequest, agent: boolean): Promise<Grant> {
    const { signal } = request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Grant>((resolve, reject) => {
      const onAbort = () => {
        const i = state.waiters.indexOf(waiter);
        if (i >= 0) state.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        urgent: request.urgent === true,
        agent,
        resolve: (grant) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(grant);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (waiter.urgent) state.waiters.unshift(waiter);
      else state.waiters.push(waiter);
      this.pump(state);
    });
  }

  private release(state: HostState, conn: Conn): void {
    conn.channels--;
    this.afterUse(state, conn);
  }

  /** A slot was freed or an agent went idle: arm the idle close, serve waiters, settle. */
  private afterUse(state: HostState, conn: Conn): void {
    if (conn.channels === conn.idle.length && conn.link?.isOpen() && !conn.doomed) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = setTimeout(() => {
        if (conn.channels > conn.idle.length) return;
        this.emit('idle-close', state.target.name);
        conn.link?.close();
      }, this.options.idleTimeoutMs);
      conn.idleTimer.unref();
    }
    this.pump(state);
    if (this.idleWaiters.length && this.isSettled()) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Hands free slots to waiters in order, opening connections while under the cap. */
  private pump(state: HostState): void {
    for (;;) {
      const waiter = state.waiters[0];
      if (!waiter) return;
      const extra = waiter.urgent ? 1 : 0;
      if (waiter.agent) {
        for (const c of state.conns) if (c.idle.some((x) => !x.alive)) c.idle = c.idle.filter((x) => x.alive);
        const warm = state.conns.find((c) => c.link?.isOpen() && c.idle.length > 0);
        if (warm) {
          state.waiters.shift();
          clearTimeout(warm.idleTimer);
          waiter.resolve({ conn: warm, agent: warm.idle.pop()! });
          continue;
        }
      }
      let best: Conn | undefined;
      for (const c of state.conns) {
        if (!c.link?.isOpen() || c.channels >= c.cap + extra) continue;
        if (!best || c.channels < best.channels) best = c;
      }
      if (best) {
        state.waiters.shift();
        clearTimeout(best.idleTimer);
        best.channels++;
        state.peak = Math.max(state.peak, best.channels);
        waiter.resolve({ conn: best });
        continue;
      }
      const connecting = state.conns.filter((c) => !c.link).length;
      const waiting = state.waiters.length;
      if (
        state.conns.length < this.options.maxConnectionsPerHost &&
        waiting > connecting * this.options.maxChannelsPerConnection
      ) {
        this.connect(state);
        continue;
      }
      // Every slot is taken and some hold idle agents: retire one, its slot serves the waiter
      // once the channel has closed (release pumps again).
      const spare = state.conns.find((c) => c.link?.isOpen() && c.idle.length > 0);
      spare?.idle.shift()?.close();
      return;
    }
  }

  private connect(state: HostState): void {
    const conn: Conn = {
      id: this.nextId++,
      channels: 0,
      cap: this.options.maxChannelsPerConnection,
      idle: [],
      dying: new Set(),
    };
    state.conns.push(conn);
    state.opened++;
    connectHost(state.target, { ...this.options, verifier: this.verifier }).then(
      (link) => {
        if (this.closing) {
          link.close();
          return;
        }
        conn.link = link;
        this.emit('connect', state.target.name);
        link.closed.then((reason) => {
          clearTimeout(conn.idleTimer);
          remove(state.conns, conn);
          this.condemned.delete(conn);
          this.emit('close', state.target.name, reason);
          this.pump(state);
        });
        this.pump(state);
      },
      (err: unknown) => {
        remove(state.conns, conn);
        // Other connections may still serve the queue; only when none is left do the waiters
        // learn that this host cannot be reached right now.
        if (state.conns.length === 0) {
          for (const w of state.waiters.splice(0)) w.reject(err);
        } else {
          this.pump(state);
        }
      },
    );
  }
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** An agent lent to one step. */
export interface AgentLease {
  agent: RemoteAgent;
  /** Why the connection closed, once it has. */
  connectionClosed(): StepError | undefined;
  /** The step is over: keep the agent for the next one (`reusable`) or close it. */
  release(reusable: boolean): void;
  /**
   * The agent died, or broke its protocol: closes it and gives up its whole connection, after
   * running `cleanup` (what the agent can no longer do: kill its step's group, remove its state
   * file) there. Every other step on the connection then fails with `reason` (retriable); the
   * pool has already forgotten the connection. Resolves with what `cleanup` printed, or
   * undefined if it failed or took over `timeoutMs`. Ends the lease, like `release`.
   */
  abandon(reason: StepError, cleanup: string, timeoutMs: number): Promise<string | undefined>;
}

export type { ExecRequest, HostPoolStats, PooledChannel, SshPoolOptions };

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
import { RemoteAgent } from './agent.ts';
import { type AgentLease, leaseAgent } from './agent-lease.ts';
import { AGENT_BOOTSTRAP } from './agent-script.ts';
import { afterServerCatchesUp, type CommandResult, openExec, runToEnd } from './channels.ts';
import { CondemnedConnections } from './condemned-connections.ts';
import { connectHost } from './connect.ts';
import { channelError, describeTarget } from './connect-errors.ts';
import { HostKeyVerifier } from './host-key-policy.ts';
import {
  type DEFAULTS,
  type ExecRequest,
  type HostPoolStats,
  type PooledChannel,
  poolSettings,
  type SshPoolOptions,
} from './pool-options.ts';
import {
  acquire,
  type Conn,
  type Grant,
  type HostState,
  hostStats,
  isBusy,
  newHostState,
  remove,
  serveQueue,
} from './pool-slots.ts';
import { targetKey } from './target-key.ts';
import type { HostTarget } from './types.ts';

/**
 * The connection pool. Events: `connect` (hostName), `close` (hostName, reason: StepError) when a
 * connection ends, `idle-close` (hostName) just before an idle one is closed.
 */
export class SshPool extends EventEmitter {
  readonly options: Readonly<typeof DEFAULTS>;
  readonly verifier: HostKeyVerifier;
  private readonly hosts = new Map<string, HostState>();
  private readonly condemned: CondemnedConnections;
  private closing = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: SshPoolOptions = {}) {
    super();
    const { verifier, knownHosts, onTrust, ...rest } = options;
    this.options = poolSettings(rest);
    this.verifier = verifier ?? new HostKeyVerifier({ knownHosts, onTrust });
    this.condemned = new CondemnedConnections(
      {
        pump: (state) => this.pump(state),
        run: (target, command, request) => this.run(target, command, request),
      },
      this.options.connectTimeoutMs,
    );
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
        started.onDeath = (exit, idle) => this.condemned.agentDied(state, got.conn, started, exit, idle);
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
    return leaseAgent(conn, agent, {
      closing: () => this.closing,
      wentIdle: () => this.afterUse(state, conn),
      condemn: (reason, cleanup, timeoutMs) =>
        this.condemned.condemn(state, conn, agent, reason, cleanup, timeoutMs),
    });
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
      const grant = await acquire(state, request, reuse, () => this.pump(state));
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
    return [...this.hosts.values()].map(hostStats);
  }

  /** Resolves when no channel is open or queued on any host (slots are released asynchronously). */
  settled(): Promise<void> {
    if (this.isSettled()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isSettled(): boolean {
    for (const s of this.hosts.values()) if (isBusy(s)) return false;
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
    done.push(...this.condemned.closings());
    await Promise.all(done);
    this.hosts.clear();
  }

  private state(target: HostTarget): HostState {
    // Keyed by everything that shapes the connection, so an edited inventory entry gets fresh
    // connections while the old ones drain and idle out.
    const key = targetKey(target);
    let state = this.hosts.get(key);
    if (!state) {
      state = newHostState(target);
      this.hosts.set(key, state);
    }
    return state;
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

  /** Hands free slots to waiters in order (`serveQueue`), opening connections while under the cap. */
  private pump(state: HostState): void {
    serveQueue(state, this.options, () => this.connect(state));
  }

  private connect(state: HostState): void {
    const conn: Conn = {
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
          this.condemned.closed(conn);
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

export type { AgentLease, ExecRequest, HostPoolStats, PooledChannel, SshPoolOptions };

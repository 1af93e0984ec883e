/**
 * The pool's connections (pool.ts) given up because an agent on them died: taken out of their
 * host's accounting at once, left open while what the dead agents left running is cleaned up
 * (agent-death.ts), then closed with the reason the other steps on them report.
 */
import type { StepError } from '../../errors.ts';
import type { AgentExit, RemoteAgent } from './agent.ts';
import { agentLostError, deathCleanup, describeExit } from './agent-death.ts';
import { type CommandResult, openExec, runToEnd, untilTimeout } from './channels.ts';
import type { ExecRequest } from './pool-options.ts';
import { type Conn, type HostState, remove } from './pool-slots.ts';
import type { HostTarget } from './types.ts';

/** What condemning a connection needs of the pool. */
export interface CondemningPool {
  /** Serves `state`'s queue (after one of its connections left it). */
  pump(state: HostState): void;
  /** Runs a command on another connection to the host (`SshPool.run`). */
  run(target: HostTarget, command: string, request: ExecRequest): Promise<CommandResult>;
}

/** Connections given up after an agent died, until they have closed (`condemn`). */
export class CondemnedConnections {
  private readonly conns = new Set<Conn>();

  /** `idleCleanupMs` bounds the cleanup after an idle agent's death. */
  constructor(
    private readonly pool: CondemningPool,
    private readonly idleCleanupMs: number,
  ) {}

  /**
   * `agent` ended without the worker closing it (`RemoteAgent.onDeath`): its connection is
   * handed to no one from now on. A step that was running on it finishes the job
   * (`AgentLease.abandon`), knowing its process group; for an idle agent the pool does.
   */
  agentDied(
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
      void this.condemn(state, conn, agent, reason, deathCleanup(agent.id), this.idleCleanupMs);
    });
  }

  /**
   * Gives up `conn` after an agent on it died: runs `cleanup` there (or, if it cannot open a
   * channel, on another connection to the host), then closes it with `reason`, which the steps
   * still on it report. Agents found dead before the close each get their cleanup first.
   * Resolves with what `cleanup` printed, or undefined if it failed or took over `timeoutMs`.
   */
  async condemn(
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
      const ran = here.catch(() => this.pool.run(state.target, cleanup, { urgent: true }));
      return (await untilTimeout(ran, timeoutMs))?.stdout;
    } finally {
      conn.dying.delete(agent);
      if (conn.dying.size === 0) link.close(reason);
    }
  }

  /** `conn` has closed: nothing more to wait for. */
  closed(conn: Conn): void {
    this.conns.delete(conn);
  }

  /** One promise per condemned connection, resolved once it has closed. */
  closings(): Promise<unknown>[] {
    return [...this.conns].map((conn) => conn.link!.closed);
  }

  /** Takes `conn` out of the pool: no request is handed it any more, and stats leave it out. */
  private forget(state: HostState, conn: Conn): void {
    if (conn.doomed) return;
    conn.doomed = true;
    clearTimeout(conn.idleTimer);
    remove(state.conns, conn);
    this.conns.add(conn);
    // Requests queued for a slot on it are served by other connections, or a new one.
    this.pool.pump(state);
  }
}

/**
 * A resident agent lent by the pool (pool.ts) to one step, and how the step hands it back: for
 * the next step, closed, or (when it died) together with its whole connection.
 */
import type { StepError } from '../../errors.ts';
import type { RemoteAgent } from './agent.ts';
import type { Conn } from './pool-slots.ts';

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

/** What a lease needs of the pool that lent it. */
export interface Lender {
  /** The pool is closing: an agent handed back is closed, not kept. */
  closing(): boolean;
  /** The agent is back among `conn.idle`. */
  wentIdle(): void;
  /** Gives up `conn` after its agent died (`AgentLease.abandon`). */
  condemn(reason: StepError, cleanup: string, timeoutMs: number): Promise<string | undefined>;
}

/** Lends `agent`, running on `conn`, to one step. */
export function leaseAgent(conn: Conn, agent: RemoteAgent, lender: Lender): AgentLease {
  let released = false;
  return {
    agent,
    connectionClosed: () => conn.link?.closeReason(),
    release: (reusable) => {
      if (released) return;
      released = true;
      if (reusable && agent.alive && conn.link?.isOpen() && !conn.doomed && !lender.closing()) {
        conn.idle.push(agent);
        lender.wentIdle();
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
      return lender.condemn(reason, cleanup, timeoutMs);
    },
  };
}

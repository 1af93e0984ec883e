/**
 * The pool's accounting per host (pool.ts): its connections, the slots taken on each (open
 * channels, idle agents included), and the queue of requests waiting for a slot or an idle agent,
 * served in order by `serveQueue`.
 */
import type { RemoteAgent } from './agent.ts';
import type { SshLink } from './connect.ts';
import type { DEFAULTS, ExecRequest, HostPoolStats } from './pool-options.ts';
import type { HostTarget } from './types.ts';

/** One pooled connection to a host, from the moment it is being opened. */
export interface Conn {
  link?: SshLink;
  /** Slots taken: open channels, idle agents included. */
  channels: number;
  cap: number;
  /** Agents waiting for their next step (each holds one of `channels`). */
  idle: RemoteAgent[];
  idleTimer?: NodeJS.Timeout;
  /**
   * An agent on it died: no longer handed out (nor in `HostState.conns`), closed once `dying`
   * is empty.
   */
  doomed?: boolean;
  /**
   * Dead agents whose cleanup has not run yet (`CondemnedConnections.condemn`), counted from the
   * moment of death.
   */
  dying: Set<RemoteAgent>;
}

/** What a waiter gets: a free slot, or (for an agent request) an idle agent. */
export interface Grant {
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

/** One host's connections, queue and figures. */
export interface HostState {
  target: HostTarget;
  conns: Conn[];
  waiters: Waiter[];
  peak: number;
  opened: number;
  refused: number;
}

/** The limits `serveQueue` opens connections and grants slots within. */
type Limits = Pick<typeof DEFAULTS, 'maxConnectionsPerHost' | 'maxChannelsPerConnection'>;

/** A host with no connection yet. */
export function newHostState(target: HostTarget): HostState {
  return { target, conns: [], waiters: [], peak: 0, opened: 0, refused: 0 };
}

/**
 * Queues a request for a slot on `state`'s host (or an idle agent, with `agent`), urgent ones
 * first, and calls `pump` to serve the queue. Rejects with the signal's reason if it aborts first.
 */
export function acquire(
  state: HostState,
  request: ExecRequest,
  agent: boolean,
  pump: () => void,
): Promise<Grant> {
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
    pump();
  });
}

/**
 * Hands free slots to waiters in order, opening connections (`connect`, which adds one to
 * `state.conns` at once) while under the cap.
 */
export function serveQueue(state: HostState, limits: Limits, connect: () => void): void {
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
      state.conns.length < limits.maxConnectionsPerHost &&
      waiting > connecting * limits.maxChannelsPerConnection
    ) {
      connect();
      continue;
    }
    // Every slot is taken and some hold idle agents: retire one, its slot serves the waiter
    // once the channel has closed (the pool's release pumps again).
    const spare = state.conns.find((c) => c.link?.isOpen() && c.idle.length > 0);
    spare?.idle.shift()?.close();
    return;
  }
}

/** Whether a channel is open (idle agents aside) or a request queued on `state`'s host. */
export function isBusy(state: HostState): boolean {
  return state.waiters.length > 0 || state.conns.some((c) => c.channels > c.idle.length);
}

/** `state`'s figures for `SshPool.stats`. */
export function hostStats(state: HostState): HostPoolStats {
  return {
    host: state.target.name,
    connections: state.conns.length,
    channels: state.conns.reduce((n, c) => n + c.channels - c.idle.length, 0),
    idleAgents: state.conns.reduce((n, c) => n + c.idle.length, 0),
    queued: state.waiters.length,
    peakChannelsPerConnection: state.peak,
    opened: state.opened,
    channelOpenFailures: state.refused,
  };
}

/** Removes `item` from `list`, if it is there. */
export function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

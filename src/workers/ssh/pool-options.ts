/** The pool's settings (defaults, validation) and the shapes it hands out. */
import type { ClientChannel } from 'ssh2';
import type { StepError } from '../../errors.ts';
import type { HostKeyVerifier, HostKeyVerifierOptions } from './host-key-policy.ts';

/** Pool settings; every field has a default. */
export interface SshPoolOptions extends HostKeyVerifierOptions {
  /** @defaultValue 4 */
  maxConnectionsPerHost?: number;
  /** Open channels per connection; keep below the server's MaxSessions. @defaultValue 8 */
  maxChannelsPerConnection?: number;
  /** TCP connect + handshake + authentication. @defaultValue 10_000 */
  connectTimeoutMs?: number;
  /** @defaultValue 10_000 */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection is declared dead. @defaultValue 3 */
  keepaliveCountMax?: number;
  /** A connection with no open channel for this long is closed. @defaultValue 60_000 */
  idleTimeoutMs?: number;
  /** Share a verifier (and its first-use records) with other pools or preflight checks. */
  verifier?: HostKeyVerifier;
}

/** Options of one channel request. */
export interface ExecRequest {
  /** Gives up waiting for a connection or a free channel. */
  signal?: AbortSignal;
  /**
   * May use one channel above the cap (still below MaxSessions): for killing a step's remote
   * process while every regular slot is busy. Jumps the queue.
   */
  urgent?: boolean;
}

/** An exec channel and the connection it runs on. */
export interface PooledChannel {
  channel: ClientChannel;
  /** Why the connection closed, once it has (lets a step say what happened). */
  connectionClosed(): StepError | undefined;
}

/** Per-host figures, for metrics and tests. */
export interface HostPoolStats {
  host: string;
  connections: number;
  /** Channels running something (a step, a probe, a kill); idle agents not counted. */
  channels: number;
  /** Agents kept open between steps, each on a channel of its own. */
  idleAgents: number;
  queued: number;
  /** Most channels ever open at once on one connection. */
  peakChannelsPerConnection: number;
  /** Connections opened since the pool started. */
  opened: number;
  /** Channel opens the server refused (each is retried or reported as `channel_open_failed`). */
  channelOpenFailures: number;
}

/** Defaults of the numeric pool settings. */
export const DEFAULTS = {
  maxConnectionsPerHost: 4,
  maxChannelsPerConnection: 8,
  connectTimeoutMs: 10_000,
  keepaliveIntervalMs: 10_000,
  keepaliveCountMax: 3,
  idleTimeoutMs: 60_000,
};

/**
 * The numeric settings in `options` over `DEFAULTS` (an undefined field keeps its default).
 * Throws a RangeError naming the first one that is not a positive number (`keepaliveCountMax`
 * may be 0).
 */
export function poolSettings(
  options: Omit<SshPoolOptions, keyof HostKeyVerifierOptions | 'verifier'>,
): typeof DEFAULTS {
  const merged = { ...DEFAULTS, ...definedOnly(options) };
  for (const [k, v] of Object.entries(merged)) {
    if (!Number.isFinite(v) || v < (k === 'keepaliveCountMax' ? 0 : 1)) {
      throw new RangeError(`SshPool option ${k} must be a positive number, got ${v}`);
    }
  }
  return merged;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The SSH executor layer: hosts, host keys, the connection pool, the executor and preflight. */
export { type CheckHostOptions, checkHost, type HostCheck } from './check-host.ts';
export { SSH_ERROR_CODES } from './connect-errors.ts';
export { type HostSources, inventoryResolver, type TargetSources, toHostTarget } from './from-inventory.ts';
export {
  fingerprint,
  type HostKeySpec,
  keyLine,
  type PublicKey,
  parseHostKeySpec,
  parseKeyLine,
} from './host-key.ts';
export { type HostKeyVerdict, HostKeyVerifier, type HostKeyVerifierOptions } from './host-key-policy.ts';
export { KnownHosts } from './known-hosts.ts';
export {
  type ExecRequest,
  type HostPoolStats,
  type PooledChannel,
  SshPool,
  type SshPoolOptions,
} from './pool.ts';
export { shellQuote } from './shell.ts';
export { SshExecutor, type SshExecutorOptions } from './ssh-executor.ts';
export type { HostAuth, HostTarget, TrustRecorder } from './types.ts';

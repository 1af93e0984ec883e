/**
 * Turns what Node's sockets and ssh2 throw into StepErrors a user can act on, one code per cause,
 * retriable only where another attempt can succeed (a restarting sshd, a flaky network), never
 * where it cannot (no such host name, wrong credentials, a host key that does not match).
 */
import { StepError } from '../../errors.ts';
import type { HostTarget } from './types.ts';

/** The error codes this layer produces (besides the shared `output_limit`, `bad_output`, `bad_event`). */
export const SSH_ERROR_CODES = [
  'connection_refused',
  'dns_failure',
  'connect_timeout',
  'host_unreachable',
  'auth_failed',
  'host_key_mismatch',
  'host_key_unknown',
  'invalid_host_key',
  'channel_open_failed',
  'connection_lost',
  'sudo_failed',
  'bad_cwd',
  'remote_setup_failed',
  'invalid_env',
  'command_too_large',
  'invalid_step',
  'unknown_host',
  'missing_secret',
] as const;

/** `web-1 (deploy@10.0.0.5:22)`, and the jump path when there is one. */
export function describeTarget(target: HostTarget): string {
  const via = target.jump ? ` via ${target.jump.name}` : '';
  return `${target.name} (${target.user}@${target.address}:${target.port}${via})`;
}

/** Classifies an error met while connecting to (or through) `target`. */
export function connectError(target: HostTarget, err: unknown): StepError {
  if (err instanceof StepError) return err;
  const e = err as NodeJS.ErrnoException & { level?: string; reason?: number | string };
  const who = describeTarget(target);
  const msg = e?.message ?? String(err);
  const make = (code: string, text: string, retriable: boolean) =>
    new StepError(code, text, retriable, { cause: err });

  switch (e?.code) {
    case 'ECONNREFUSED':
      return make(
        'connection_refused',
        `${who}: connection refused (is sshd running on port ${target.port}?)`,
        true,
      );
    case 'ENOTFOUND':
      return make('dns_failure', `${who}: host name ${target.address} does not resolve`, false);
    case 'EAI_AGAIN':
      return make('dns_failure', `${who}: DNS lookup of ${target.address} failed temporarily`, true);
    case 'ETIMEDOUT':
      return make('connect_timeout', `${who}: TCP connection timed out`, true);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return make('host_unreachable', `${who}: no route to host (${e.code})`, true);
    case 'ECONNRESET':
    case 'EPIPE':
      return make('connection_lost', `${who}: connection reset by the server (${e.code})`, true);
  }
  if (e?.level === 'client-authentication') {
    return make('auth_failed', `${who}: authentication failed (${authHint(target)})`, false);
  }
  if (e?.level === 'agent') {
    return make('auth_failed', `${who}: ssh-agent failed: ${msg}`, false);
  }
  if (e?.level === 'client-timeout' && /handshake/i.test(msg)) {
    return make(
      'connect_timeout',
      `${who}: no SSH handshake within the connect timeout (is this an SSH server?)`,
      true,
    );
  }
  if (e?.level === 'client-timeout') {
    return make('connection_lost', `${who}: the server stopped answering keepalives`, true);
  }
  if (/Cannot parse privateKey|private key/i.test(msg)) {
    // ssh2's messages name the problem (encrypted, bad passphrase, format) but never the key itself.
    return make(
      'auth_failed',
      `${who}: the private key cannot be used: ${msg.replace(/^Cannot parse privateKey: /, '')}`,
      false,
    );
  }
  if (/before handshake|Connection lost/i.test(msg)) {
    return make(
      'connection_lost',
      `${who}: the server closed the connection before the SSH handshake finished`,
      true,
    );
  }
  return make('connection_lost', `${who}: ${msg}`, true);
}

/** Classifies a failure to open a session (or `direct-tcpip`) channel on an open connection. */
export function channelError(target: HostTarget, err: unknown): StepError {
  const e = err as Error & { reason?: number | string };
  const msg = e?.message ?? String(err);
  if (/Not connected|No response from server/i.test(msg)) {
    return new StepError(
      'connection_lost',
      `${describeTarget(target)}: connection closed while opening a channel`,
      true,
      {
        cause: err,
      },
    );
  }
  return new StepError(
    'channel_open_failed',
    `${describeTarget(target)}: the server refused a channel: ${msg.replace(/^\(SSH\) /, '')}`,
    true,
    { cause: err },
  );
}

function authHint(target: HostTarget): string {
  switch (target.auth.type) {
    case 'key':
      return `user ${target.user} with its private key: is the public key in ~${target.user}/.ssh/authorized_keys?`;
    case 'password':
      return `user ${target.user} with a password: wrong password, or PasswordAuthentication is off`;
    case 'agent':
      return `user ${target.user} with the ssh-agent's keys: none was accepted`;
  }
}

/**
 * Opens one authenticated SSH connection to a host: our own TCP connect (so DNS failure, refusal
 * and timeout are told apart and timed), or a `direct-tcpip` channel through a jump host; then
 * the ssh2 handshake with host key verification and the host's authentication method.
 */
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig } from 'ssh2';
import { StepError } from '../../errors.ts';
import { connectError, describeTarget } from './connect-errors.ts';
import { fingerprint, keyFromBlob, keyLine, type PublicKey } from './host-key.ts';
import type { HostKeyVerdict, HostKeyVerifier } from './host-key-policy.ts';
import { forward, openTcp } from './transport.ts';
import type { HostTarget } from './types.ts';

/** How to connect; the pool fills these from its options. */
export interface ConnectOptions {
  verifier: HostKeyVerifier;
  /** Budget for TCP connect, handshake and authentication together (jump hops included). */
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  /** `false`: accept a first-use key without recording it (preflight). @defaultValue true */
  recordTrust?: boolean;
  /** Sees every presented host key and its verdict (preflight reports it). */
  onHostKey?(target: HostTarget, key: PresentedHostKey): void;
}

/** A host key as presented, with the verifier's verdict. */
export interface PresentedHostKey {
  type: string;
  fingerprint: string;
  keyLine: string;
  verdict: HostKeyVerdict;
}

/** A live, authenticated connection. */
export interface SshLink {
  readonly client: Client;
  /** Resolves when the connection is gone, with the reason as a StepError (`connection_lost`…). */
  readonly closed: Promise<StepError>;
  /** TCP connect time to the first hop, in ms (a network round trip); null through a jump host. */
  readonly tcpMs: number | null;
  isOpen(): boolean;
  /** Why the connection ended; set synchronously when it does, undefined while open. */
  closeReason(): StepError | undefined;
  /**
   * Ends the connection (and the jump connection under it); `isOpen()` is false from now on.
   * `reason`, when given, is what `closeReason()` reports from now on, so the steps still on
   * the connection say why the worker closed it.
   */
  close(reason?: StepError): void;
}

/** Connects and authenticates to `target`, through `target.jump` when set. */
export async function connectHost(target: HostTarget, options: ConnectOptions): Promise<SshLink> {
  const deadline = performance.now() + options.connectTimeoutMs;
  let jump: SshLink | undefined;
  let sock: Duplex;
  let tcpMs: number | null = null;
  if (target.jump) {
    try {
      jump = await connectHost(target.jump, options);
    } catch (err) {
      const e = err as StepError;
      throw new StepError(e.code, `jump host for ${target.name}: ${e.message}`, e.retriable, { cause: err });
    }
    try {
      sock = await forward(jump.client, target, remaining(deadline));
    } catch (err) {
      jump.close();
      throw err;
    }
  } else {
    const started = performance.now();
    sock = await openTcp(target, remaining(deadline));
    tcpMs = performance.now() - started;
  }
  try {
    return await handshake(target, sock, options, remaining(deadline), tcpMs, jump);
  } catch (err) {
    jump?.close();
    sock.destroy();
    throw err;
  }
}

function remaining(deadline: number): number {
  return Math.max(1, Math.round(deadline - performance.now()));
}

function handshake(
  target: HostTarget,
  sock: Duplex,
  options: ConnectOptions,
  timeoutMs: number,
  tcpMs: number | null,
  jump: SshLink | undefined,
): Promise<SshLink> {
  const client = new Client();
  let hostKeyError: StepError | undefined;
  let lastError: unknown;
  let open = false;
  let closing = false;
  let reason: StepError | undefined;
  let resolveClosed!: (reason: StepError) => void;
  const closed = new Promise<StepError>((r) => {
    resolveClosed = r;
  });
  const link: SshLink = {
    client,
    closed,
    tcpMs,
    isOpen: () => open && !closing,
    closeReason: () => reason,
    close(why) {
      closing = true;
      reason ??= why;
      client.end();
      jump?.close();
    },
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      reject(hostKeyError ?? connectError(target, err));
      client.end();
    };
    client.once('ready', () => {
      settled = true;
      open = true;
      resolve(link);
    });
    client.on('error', (err) => {
      lastError = err;
      fail(err);
    });
    client.once('close', () => {
      open = false;
      jump?.close();
      fail(new Error('Connection lost before handshake'));
      reason ??= lastError
        ? connectError(target, lastError)
        : new StepError(
            'connection_lost',
            `${describeTarget(target)}: the server closed the connection`,
            true,
          );
      resolveClosed(reason);
    });

    let config: ConnectConfig;
    try {
      const serverHostKey = options.verifier.algorithms(target);
      config = {
        sock: sock as ConnectConfig['sock'],
        username: target.user,
        readyTimeout: timeoutMs,
        keepaliveInterval: options.keepaliveIntervalMs,
        keepaliveCountMax: options.keepaliveCountMax,
        hostVerifier: (blob: Buffer, verify: (ok: boolean) => void) => {
          verifyKey(target, blob, options).then(
            (verdict) => {
              if (!verdict.ok) hostKeyError = verdict.error;
              verify(verdict.ok);
            },
            (err: unknown) => {
              hostKeyError = err instanceof StepError ? err : connectError(target, err);
              verify(false);
            },
          );
        },
        ...(serverHostKey ? { algorithms: { serverHostKey: serverHostKey as never } } : {}),
        ...authConfig(target),
      };
    } catch (err) {
      fail(err);
      return;
    }
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 throws synchronously for a key it cannot parse or decrypt.
      fail(err);
    }
  });
}

async function verifyKey(target: HostTarget, blob: Buffer, options: ConnectOptions): Promise<HostKeyVerdict> {
  let key: PublicKey;
  try {
    key = keyFromBlob(blob);
  } catch (cause) {
    return {
      ok: false,
      error: new StepError(
        'host_key_mismatch',
        `${describeTarget(target)} presented a malformed host key`,
        false,
        {
          cause,
        },
      ),
    };
  }
  const verdict = await options.verifier.verify(target, key, { record: options.recordTrust !== false });
  options.onHostKey?.(target, {
    type: key.type,
    fingerprint: fingerprint(blob),
    keyLine: keyLine(key),
    verdict,
  });
  return verdict;
}

function authConfig(target: HostTarget): Partial<ConnectConfig> {
  const auth = target.auth;
  switch (auth.type) {
    case 'key':
      return {
        privateKey: auth.privateKey,
        ...(auth.passphrase !== undefined ? { passphrase: auth.passphrase } : {}),
      };
    case 'password':
      return { password: auth.password, tryKeyboard: false };
    case 'agent':
      if (!auth.socket) {
        throw new StepError(
          'auth_failed',
          `${describeTarget(target)}: agent authentication needs an ssh-agent socket (SSH_AUTH_SOCK is not set on this worker)`,
          false,
        );
      }
      return { agent: auth.socket };
  }
}

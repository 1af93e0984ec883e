/**
 * Preflight for one host (`POST /v1/hosts/:name/check`): TCP reachability, the host key and its
 * verdict, authentication, `sudo -n true` and latency, on a fresh connection (never a pooled one,
 * which would prove nothing about connecting now). Failures are reported, not thrown.
 */
import { performance } from 'node:perf_hooks';
import type { Client } from 'ssh2';
import type { StepError } from '../../errors.ts';
import { connectHost, type PresentedHostKey, type SshLink } from './connect.ts';
import { HostKeyVerifier, type HostKeyVerifierOptions } from './host-key-policy.ts';
import type { HostAuth, HostTarget } from './types.ts';

/** Preflight settings. */
export interface CheckHostOptions extends HostKeyVerifierOptions {
  /** The worker's verifier, so first-use records are shared; else one from `knownHosts`/`onTrust`. */
  verifier?: HostKeyVerifier;
  /** @defaultValue 10_000 */
  connectTimeoutMs?: number;
  /**
   * Record a trust-on-first-use key (as the first run would). `false` reports it without
   * recording. @defaultValue true
   */
  recordTrust?: boolean;
}

/** What a preflight found. */
export interface HostCheck {
  host: string;
  /** A TCP connection (or a jump host's tunnel) to the SSH port opened. */
  reachable: boolean;
  /** The key the host presented and whether it is accepted; null when none was seen. */
  hostKey: {
    type: string;
    fingerprint: string;
    keyLine: string;
    status: 'verified' | 'trusted-on-first-use' | 'rejected';
    /** Where the accepted key came from (`hostKey`, `known_hosts`, …). */
    source?: string;
  } | null;
  /** Whether authentication succeeded; null when it was not reached. */
  auth: { ok: boolean; method: HostAuth['type'] } | null;
  /** `sudo -n true`; null when not reached. */
  sudo: { ok: boolean; message?: string } | null;
  /** TCP connect time (one network round trip); through a jump host, the `true` round trip. */
  latencyMs: number | null;
  /** Round trip of running `true` over the connection (session open, exec, exit). */
  commandMs: number | null;
  errors: Array<{ code: string; message: string }>;
}

/** Checks `target`; resolves with a report even when every step fails. */
export async function checkHost(target: HostTarget, options: CheckHostOptions = {}): Promise<HostCheck> {
  const report: HostCheck = {
    host: target.name,
    reachable: false,
    hostKey: null,
    auth: null,
    sudo: null,
    latencyMs: null,
    commandMs: null,
    errors: [],
  };
  const verifier =
    options.verifier ?? new HostKeyVerifier({ knownHosts: options.knownHosts, onTrust: options.onTrust });
  let seen: PresentedHostKey | undefined;
  let link: SshLink;
  try {
    link = await connectHost(target, {
      verifier,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      keepaliveIntervalMs: 0,
      keepaliveCountMax: 0,
      recordTrust: options.recordTrust !== false,
      onHostKey: (t, key) => {
        if (t === target) seen = key;
      },
    });
  } catch (err) {
    const e = err as StepError;
    report.errors.push({ code: e.code ?? 'internal', message: e.message });
    // Reachable means an SSH server answered: it presented its host key. A key that cannot be
    // used fails before any connection, and says nothing of the host.
    report.reachable = seen !== undefined;
    report.hostKey = describeKey(seen);
    if (e.code === 'auth_failed') report.auth = { ok: false, method: target.auth.type };
    return report;
  }
  try {
    report.reachable = true;
    report.hostKey = describeKey(seen);
    report.auth = { ok: true, method: target.auth.type };
    const started = performance.now();
    await run(link.client, 'true');
    report.commandMs = round(performance.now() - started);
    report.latencyMs = link.tcpMs === null ? report.commandMs : round(link.tcpMs);
    const sudo = await run(link.client, 'sudo -n true');
    report.sudo =
      sudo.code === 0
        ? { ok: true }
        : { ok: false, message: sudo.stderr.trim().split('\n')[0] || `exit ${sudo.code}` };
  } catch (err) {
    report.errors.push({ code: 'channel_open_failed', message: (err as Error).message });
  } finally {
    link.close();
  }
  return report;
}

function describeKey(key: PresentedHostKey | undefined): HostCheck['hostKey'] {
  if (!key) return null;
  const { verdict } = key;
  return {
    type: key.type,
    fingerprint: key.fingerprint,
    keyLine: key.keyLine,
    status: !verdict.ok ? 'rejected' : verdict.source === 'first-use' ? 'trusted-on-first-use' : 'verified',
    ...(verdict.ok ? { source: verdict.source } : {}),
  };
}

function run(client: Client, command: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      let stderr = '';
      let code: number | null = null;
      channel.resume();
      channel.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      channel.on('exit', (c: number | null) => {
        code = c;
      });
      channel.once('close', () => resolve({ code, stderr }));
    });
  });
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

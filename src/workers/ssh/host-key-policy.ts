/**
 * Host key verification, strict by default. Order: the host's pinned `hostKey`, then a key this
 * worker recorded on first use, then the known_hosts file, then trust-on-first-use; anything else
 * is refused. A refusal is a non-retriable StepError naming the host and the fingerprints.
 */
import { StepError } from '../../errors.ts';
import {
  algorithmsForKeyTypes,
  fingerprint,
  type HostKeySpec,
  keyLine,
  type PublicKey,
  parseHostKeySpec,
  specFingerprint,
  specMatches,
} from './host-key.ts';
import type { KnownHosts } from './known-hosts.ts';
import type { HostTarget, TrustRecorder } from './types.ts';

/** Where the accepted key was found. */
export type HostKeySource = 'hostKey' | 'recorded' | 'known_hosts' | 'first-use';

/** The outcome of one verification. */
export type HostKeyVerdict = { ok: true; source: HostKeySource } | { ok: false; error: StepError };

/** Settings shared by every host on a worker. */
export interface HostKeyVerifierOptions {
  /** Parsed `CONVEYOR_KNOWN_HOSTS`, if the engine loaded one. */
  knownHosts?: KnownHosts;
  /** Records a key accepted on first use (e.g. writes it into the inventory entry). */
  onTrust?: TrustRecorder;
}

/** Verifies presented host keys; one instance per worker, so first-use records are shared. */
export class HostKeyVerifier {
  /** Keys accepted on first use by this process, until the inventory carries them. */
  private readonly recorded = new Map<string, PublicKey>();
  private readonly recording = new Map<string, Promise<void>>();

  constructor(private readonly options: HostKeyVerifierOptions = {}) {}

  /** Host key algorithms to offer so the server presents a key of a type we can check. */
  algorithms(target: HostTarget): string[] | undefined {
    if (target.hostKey) {
      const spec = this.spec(target);
      return spec.kind === 'key' ? algorithmsForKeyTypes([spec.key.type]) : undefined;
    }
    const recorded = this.recorded.get(target.name);
    if (recorded) return algorithmsForKeyTypes([recorded.type]);
    const known = this.options.knownHosts?.lookup(target.address, target.port);
    if (known?.keys.length) return algorithmsForKeyTypes(known.keys.map((k) => k.type));
    return undefined;
  }

  /**
   * Checks `presented` for `target`. With `record: false` a first-use key is accepted without
   * being recorded (a preflight check that must not change state).
   */
  async verify(target: HostTarget, presented: PublicKey, { record = true } = {}): Promise<HostKeyVerdict> {
    if (target.hostKey) {
      const spec = this.spec(target);
      if (specMatches(spec, presented)) return { ok: true, source: 'hostKey' };
      return {
        ok: false,
        error: mismatch(target, presented, [specFingerprint(spec)], 'its hostKey setting'),
      };
    }

    const pending = this.recording.get(target.name);
    if (pending) await pending.catch(() => {});
    const recorded = this.recorded.get(target.name);
    if (recorded) {
      if (recorded.blob.equals(presented.blob)) return { ok: true, source: 'recorded' };
      return {
        ok: false,
        error: mismatch(target, presented, [fingerprint(recorded.blob)], 'the key recorded on first use'),
      };
    }

    const known = this.options.knownHosts?.lookup(target.address, target.port);
    if (known) {
      if (known.revoked.some((k) => k.blob.equals(presented.blob))) {
        return {
          ok: false,
          error: new StepError(
            'host_key_mismatch',
            `host key of ${where(target)} is marked @revoked in known_hosts: it presented ${describe(presented)}`,
            false,
          ),
        };
      }
      if (known.keys.some((k) => k.type === presented.type && k.blob.equals(presented.blob))) {
        return { ok: true, source: 'known_hosts' };
      }
      if (known.keys.length) {
        const expected = known.keys.map((k) => fingerprint(k.blob));
        return { ok: false, error: mismatch(target, presented, expected, 'known_hosts') };
      }
    }

    if (target.trustOnFirstUse) {
      if (record) await this.record(target, presented);
      return { ok: true, source: 'first-use' };
    }
    return {
      ok: false,
      error: new StepError(
        'host_key_unknown',
        `host key of ${where(target)} is unknown: it presented ${describe(presented)}. After checking that ` +
          `fingerprint out of band, set the host's hostKey to "${keyLine(presented)}", add it to the ` +
          'known_hosts file, or set trustOnFirstUse: true',
        false,
      ),
    };
  }

  private spec(target: HostTarget): HostKeySpec {
    try {
      return parseHostKeySpec(target.hostKey!);
    } catch (cause) {
      throw new StepError(
        'invalid_host_key',
        `hostKey of host ${target.name} is neither an OpenSSH public key line nor a SHA256: fingerprint: ${(cause as Error).message}`,
        false,
        { cause },
      );
    }
  }

  private async record(target: HostTarget, presented: PublicKey): Promise<void> {
    const write = (async () => {
      try {
        await this.options.onTrust?.(target.name, keyLine(presented));
      } catch (cause) {
        // Without a record the next connection would be "first use" again: refuse instead.
        throw new StepError(
          'host_key_unknown',
          `could not record the first-use host key of ${where(target)}: ${(cause as Error).message}`,
          true,
          { cause },
        );
      }
      this.recorded.set(target.name, presented);
    })();
    this.recording.set(target.name, write);
    try {
      await write;
    } finally {
      this.recording.delete(target.name);
    }
  }
}

function where(target: HostTarget): string {
  return `${target.name} (${target.address}:${target.port})`;
}

function describe(key: PublicKey): string {
  return `${key.type} ${fingerprint(key.blob)}`;
}

function mismatch(target: HostTarget, presented: PublicKey, expected: string[], source: string): StepError {
  return new StepError(
    'host_key_mismatch',
    `host key mismatch for ${where(target)}: it presented ${describe(presented)} but ${source} expects ` +
      `${expected.join(' or ')}. If the host was rebuilt, update its key after checking the new fingerprint; ` +
      'otherwise the connection may be intercepted',
    false,
  );
}

/**
 * Host public keys in the forms users paste (OpenSSH key lines, `SHA256:` fingerprints) and the
 * wire form a server presents. Pure functions over `node:crypto`.
 */
import { createHash } from 'node:crypto';

/** A public key as presented by a server or written in a key line. */
export interface PublicKey {
  /** Key type, e.g. `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`. */
  type: string;
  /** The SSH wire encoding of the key (what a key line holds in base64). */
  blob: Buffer;
}

/** What a `hostKey` setting pins: a whole key, or only its SHA-256 fingerprint. */
export type HostKeySpec = { kind: 'key'; key: PublicKey } | { kind: 'fingerprint'; fingerprint: string };

const FINGERPRINT = /^SHA256:([A-Za-z0-9+/]{43})=?$/;

/** Reads the key type out of a wire-format key (a length-prefixed string comes first). */
export function keyFromBlob(blob: Buffer): PublicKey {
  if (blob.length < 4) throw new Error('public key blob is too short');
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) throw new Error('public key blob has no valid type');
  return { type: blob.subarray(4, 4 + len).toString('latin1'), blob };
}

/** `SHA256:<base64 without padding>`, exactly as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** `<type> <base64>`: the form stored in `hostKey` and known_hosts. */
export function keyLine(key: PublicKey): string {
  return `${key.type} ${key.blob.toString('base64')}`;
}

/**
 * Parses `<type> <base64> [comment]`; checks that the type named in the line is the one encoded
 * in the blob, as OpenSSH does, so a truncated or mixed-up paste fails here and not at connect time.
 */
export function parseKeyLine(line: string): PublicKey {
  const [type, data] = line.trim().split(/\s+/);
  if (!type || !data || !/^[A-Za-z0-9+/]+={0,2}$/.test(data)) {
    throw new Error('expected "<key type> <base64 key> [comment]"');
  }
  const key = keyFromBlob(Buffer.from(data, 'base64'));
  if (key.type !== type) throw new Error(`key line says ${type} but the key inside is ${key.type}`);
  return key;
}

/** Parses a `hostKey` setting: a key line or a `SHA256:` fingerprint. */
export function parseHostKeySpec(spec: string): HostKeySpec {
  const trimmed = spec.trim();
  const fp = FINGERPRINT.exec(trimmed);
  if (fp) return { kind: 'fingerprint', fingerprint: `SHA256:${fp[1]}` };
  return { kind: 'key', key: parseKeyLine(trimmed) };
}

/** The fingerprint a spec stands for (the one to show next to the presented one). */
export function specFingerprint(spec: HostKeySpec): string {
  return spec.kind === 'fingerprint' ? spec.fingerprint : fingerprint(spec.key.blob);
}

/** Whether a presented key satisfies a spec. */
export function specMatches(spec: HostKeySpec, presented: PublicKey): boolean {
  if (spec.kind === 'fingerprint') return spec.fingerprint === fingerprint(presented.blob);
  return spec.key.type === presented.type && spec.key.blob.equals(presented.blob);
}

/**
 * The host key algorithms to offer when only keys of `types` are known, so the server presents
 * one of those rather than another type that would look like a mismatch (OpenSSH orders its
 * offer by known_hosts for the same reason). Unknown types give no restriction.
 */
export function algorithmsForKeyTypes(types: Iterable<string>): string[] | undefined {
  const out: string[] = [];
  for (const type of types) {
    const algos = type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
    for (const a of algos) {
      if (!SUPPORTED.has(a)) return undefined;
      if (!out.includes(a)) out.push(a);
    }
  }
  return out.length ? out : undefined;
}

const SUPPORTED = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
  'ssh-dss',
]);

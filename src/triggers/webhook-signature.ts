/**
 * Webhook authentication on the raw body bytes, before anything of the body is parsed or
 * trusted. Every comparison is constant-time and none throws on a wrong length or bad hex.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The git hosts Conveyor takes push webhooks from. */
export type Provider = 'github' | 'gitlab' | 'gitea';

/** Headers as a lower-case lookup. */
export type HeaderLookup = (name: string) => string | undefined;

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/** True when `hex` is the HMAC-SHA256 of `body` under `secret`. */
function hmacMatches(body: Uint8Array, secret: string, hex: string): boolean {
  // Checked before Buffer.from: it would silently drop a bad hex tail and shorten the buffer.
  if (!HEX_SHA256.test(hex)) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(hex, 'hex'));
}

/** Compares two strings in constant time: both hashed to 32 bytes first, so lengths leak nothing. */
function tokenMatches(given: string, secret: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

/** The header a provider signs with, for error messages. */
export const SIGNATURE_HEADER: Record<Provider, string> = {
  github: 'X-Hub-Signature-256',
  gitlab: 'X-Gitlab-Token',
  gitea: 'X-Gitea-Signature (or X-Forgejo-Signature)',
};

/**
 * Whether the delivery carries a valid signature under one of `secrets`. Every secret is tried
 * (no early exit), so the time taken does not say which one matched.
 */
export function verifySignature(
  provider: Provider,
  header: HeaderLookup,
  body: Uint8Array,
  secrets: readonly string[],
): boolean {
  let proof: ((secret: string) => boolean) | undefined;
  if (provider === 'github') {
    const value = header('x-hub-signature-256');
    if (value?.startsWith('sha256=')) proof = (secret) => hmacMatches(body, secret, value.slice(7));
  } else if (provider === 'gitlab') {
    const value = header('x-gitlab-token');
    if (value) proof = (secret) => tokenMatches(value, secret);
  } else {
    const value = header('x-gitea-signature') ?? header('x-forgejo-signature');
    if (value) proof = (secret) => hmacMatches(body, secret, value);
  }
  if (!proof) return false;
  let ok = false;
  for (const secret of secrets) if (secret !== '' && proof(secret)) ok = true;
  return ok;
}

/** Secrets from a comma-separated list (`CONVEYOR_WEBHOOK_SECRET`, or a stored per-repository secret). */
export function parseSecretList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * The secret-store name holding a repository's webhook secrets: `WEBHOOK_` + the repository
 * upper-cased with every other character `_` (`acme/my-app` → `WEBHOOK_ACME_MY_APP`); undefined
 * when that is longer than a secret name may be.
 */
export function repositorySecretName(repository: string): string | undefined {
  const name = `WEBHOOK_${repository.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  return name.length <= 128 ? name : undefined;
}

/**
 * The repository a delivery claims to come from, read without trusting it: used only to pick
 * which stored secrets to verify the same raw bytes with. Undefined when the body is not JSON.
 */
export function claimedRepository(provider: Provider, body: Uint8Array): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
  const p = parsed as { repository?: { full_name?: unknown }; project?: { path_with_namespace?: unknown } };
  const name = provider === 'gitlab' ? p?.project?.path_with_namespace : p?.repository?.full_name;
  return typeof name === 'string' && name.length <= 256 ? name : undefined;
}

/**
 * The key that encrypts secrets at rest (`CONVEYOR_SECRET_KEY`): exactly 32 bytes, written as 64
 * hex characters or as base64 (standard or URL-safe, padded or not). Anything else is refused
 * with a message that says what was expected, never echoing what was given.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ConveyorError } from '../errors.ts';

/** A parsed key and a short, non-secret id that says which key encrypted a value. */
export interface SecretKey {
  bytes: Buffer;
  /** First 8 hex characters of SHA-256 of the key: tells keys apart without revealing them. */
  id: string;
}

/** The configured key is not a 32-byte key in hex or base64. */
export class SecretKeyError extends ConveyorError {
  override name = 'SecretKeyError';
  constructor(message: string) {
    super('invalid_secret_key', message);
  }
}

const HEX = /^[0-9a-fA-F]{64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** Parses `CONVEYOR_SECRET_KEY`'s value (surrounding whitespace ignored). */
export function parseSecretKey(text: string): SecretKey {
  const value = text.trim();
  let bytes: Buffer | undefined;
  if (HEX.test(value)) bytes = Buffer.from(value, 'hex');
  else if (BASE64.test(value)) {
    const decoded = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    // Buffer.from ignores trailing garbage; a round trip proves every character was meaningful.
    const canonical = decoded.toString('base64').replace(/=+$/, '');
    if (canonical === value.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '')) bytes = decoded;
  }
  if (bytes?.length !== 32) {
    const got = bytes
      ? `${bytes.length} bytes`
      : `${value.length} characters that are neither hex nor base64`;
    throw new SecretKeyError(
      `CONVEYOR_SECRET_KEY must be 32 random bytes written as 64 hex characters or 44 base64 characters (got ${got}); ` +
        'generate one with: openssl rand -base64 32',
    );
  }
  return { bytes, id: keyId(bytes) };
}

/** A fresh random key in base64, for docs and first-run hints. */
export function generateSecretKey(): string {
  return randomBytes(32).toString('base64');
}

function keyId(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 8);
}

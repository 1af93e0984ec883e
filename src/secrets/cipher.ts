/**
 * AES-256-GCM for secret values at rest. A stored value is one string:
 *
 *   v1.<key id>.<base64url: 12-byte nonce | ciphertext | 16-byte tag>
 *
 * The nonce is random per encryption (a key encrypts far fewer than 2^32 values, the bound for
 * random GCM nonces). The secret's name is bound as additional authenticated data, so a stored
 * value copied under another name fails to decrypt instead of leaking into the wrong place.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ConveyorError } from '../errors.ts';
import type { SecretKey } from './secret-key.ts';

const VERSION = 'v1';
const NONCE = 12;
const TAG = 16;

/** A stored value cannot be decrypted: wrong key, wrong name, or tampered with. */
export class SecretDecryptError extends ConveyorError {
  override name = 'SecretDecryptError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('secret_decrypt_failed', message, options);
  }
}

/** Encrypts `value` for storage under `name`. */
export function encryptSecret(key: SecretKey, name: string, value: string): string {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, nonce);
  cipher.setAAD(Buffer.from(name, 'utf8'));
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return `${VERSION}.${key.id}.${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
}

/** Decrypts a value stored under `name`; errors name the secret, never its value. */
export function decryptSecret(key: SecretKey, name: string, stored: string): string {
  const [version, id, data, ...rest] = stored.split('.');
  if (version !== VERSION || !id || data === undefined || rest.length) {
    throw new SecretDecryptError(`secret "${name}" is not in a format this version can read`);
  }
  if (id !== key.id) {
    throw new SecretDecryptError(
      `secret "${name}" was encrypted with another key (id ${id}; CONVEYOR_SECRET_KEY has id ${key.id})`,
    );
  }
  const raw = Buffer.from(data, 'base64url');
  if (raw.length < NONCE + TAG) throw new SecretDecryptError(`secret "${name}" is truncated`);
  const decipher = createDecipheriv('aes-256-gcm', key.bytes, raw.subarray(0, NONCE));
  decipher.setAAD(Buffer.from(name, 'utf8'));
  decipher.setAuthTag(raw.subarray(raw.length - TAG));
  try {
    return Buffer.concat([decipher.update(raw.subarray(NONCE, raw.length - TAG)), decipher.final()]).toString(
      'utf8',
    );
  } catch (cause) {
    throw new SecretDecryptError(
      `secret "${name}" failed authentication: it was altered or stored under another name`,
      {
        cause,
      },
    );
  }
}

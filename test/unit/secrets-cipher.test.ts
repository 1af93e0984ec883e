import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decryptSecret,
  encryptSecret,
  generateSecretKey,
  parseSecretKey,
  SecretDecryptError,
  SecretKeyError,
} from '../../src/secrets/index.ts';

describe('parseSecretKey', () => {
  const raw = randomBytes(32);

  it('accepts 32 bytes as hex, base64 and base64url, padded or not', () => {
    for (const text of [
      raw.toString('hex'),
      raw.toString('hex').toUpperCase(),
      raw.toString('base64'),
      raw.toString('base64').replace(/=+$/, ''),
      raw.toString('base64url'),
      `  ${raw.toString('base64')}\n`,
    ]) {
      expect(parseSecretKey(text).bytes.equals(raw)).toBe(true);
    }
    expect(parseSecretKey(generateSecretKey()).bytes).toHaveLength(32);
  });

  it('refuses other lengths and non-encodings, saying what it expects and never echoing the value', () => {
    const bad = [
      randomBytes(16).toString('hex'),
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      'correct horse battery staple',
      '',
      `${raw.toString('base64')}!!`,
    ];
    for (const text of bad) {
      let error: unknown;
      try {
        parseSecretKey(text);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(SecretKeyError);
      const message = (error as Error).message;
      expect(message).toMatch(/32 random bytes.*64 hex characters or 44 base64/);
      if (text.length > 4) expect(message).not.toContain(text.trim());
    }
  });

  it('gives different keys different ids', () => {
    expect(parseSecretKey(generateSecretKey()).id).not.toBe(parseSecretKey(generateSecretKey()).id);
  });
});

describe('encryptSecret / decryptSecret', () => {
  const key = parseSecretKey(generateSecretKey());

  it('round-trips any string, with a fresh nonce each time', () => {
    for (const value of ['', 'hunter2', "multi\nline 'quoted' $(x) `y`", '🔑 ünïcode', 'x'.repeat(100_000)]) {
      const a = encryptSecret(key, 'NAME', value);
      const b = encryptSecret(key, 'NAME', value);
      expect(a).not.toBe(b);
      expect(a.startsWith(`v1.${key.id}.`)).toBe(true);
      if (value.length > 3) expect(a).not.toContain(value);
      expect(decryptSecret(key, 'NAME', a)).toBe(value);
    }
  });

  it('refuses another key, naming both key ids', () => {
    const other = parseSecretKey(generateSecretKey());
    const stored = encryptSecret(key, 'DB', 'pw');
    expect(() => decryptSecret(other, 'DB', stored)).toThrow(
      new RegExp(`another key \\(id ${key.id}.*${other.id}`),
    );
  });

  it('refuses a value moved to another name (the name is authenticated)', () => {
    const stored = encryptSecret(key, 'A', 'secret-a');
    expect(() => decryptSecret(key, 'B', stored)).toThrow(SecretDecryptError);
  });

  it('detects tampering and truncation, never showing the plaintext', () => {
    const stored = encryptSecret(key, 'A', 'plaintext-value');
    const [v, id, data] = stored.split('.') as [string, string, string];
    const bytes = Buffer.from(data, 'base64url');
    for (const i of [0, 12, bytes.length - 1]) {
      const flipped = Buffer.from(bytes);
      flipped[i]! ^= 1;
      const err = (() => {
        try {
          decryptSecret(key, 'A', `${v}.${id}.${flipped.toString('base64url')}`);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(SecretDecryptError);
      expect(err!.message).not.toContain('plaintext-value');
    }
    expect(() => decryptSecret(key, 'A', `${v}.${id}.AAAA`)).toThrow(/truncated/);
    expect(() => decryptSecret(key, 'A', 'plain')).toThrow(/format/);
  });
});

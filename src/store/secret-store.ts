/**
 * Secrets at rest: AES-256-GCM ciphertext in one Redis hash, readable only with
 * `CONVEYOR_SECRET_KEY`. Without the key nothing can be stored, and every attempt says why.
 */

import { ConveyorError } from '../errors.ts';
import type { RedisClient } from '../redis-client.ts';
import { decryptSecret, encryptSecret, type SecretKey } from '../secrets/index.ts';
import { type Keys, keys } from './keys.ts';

/** Thrown when a secret is written or read on a server without `CONVEYOR_SECRET_KEY`. */
export class SecretsDisabledError extends ConveyorError {
  override name = 'SecretsDisabledError';
  constructor() {
    super(
      'not_runnable',
      'secrets cannot be stored or read: CONVEYOR_SECRET_KEY is not set (32 bytes, base64 or hex)',
    );
  }
}

/** Secret storage over one Redis connection and prefix. */
export class SecretStore {
  private readonly keys: Keys;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly key: SecretKey | undefined,
  ) {
    this.keys = keys(prefix);
  }

  /** Stores (or replaces) a secret; true when it is new. */
  async put(name: string, value: string): Promise<boolean> {
    if (!this.key) throw new SecretsDisabledError();
    return (await this.redis.hset(this.keys.secrets(), name, encryptSecret(this.key, name, value))) === 1;
  }

  async delete(name: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.secrets(), name)) === 1;
  }

  /** Names only: values are write-only through the API. */
  async names(): Promise<string[]> {
    return (await this.redis.hkeys(this.keys.secrets())).sort();
  }

  /** Values of the named secrets that exist (for steps and SSH auth); never logged. */
  async get(names: string[]): Promise<Record<string, string>> {
    if (names.length === 0) return {};
    const stored = await this.redis.hmget(this.keys.secrets(), ...names);
    // No prototype: a lookup of a missing secret named `constructor` must be undefined.
    const out: Record<string, string> = Object.create(null);
    names.forEach((name, i) => {
      const ciphertext = stored[i];
      if (ciphertext == null) return;
      if (!this.key) throw new SecretsDisabledError();
      out[name] = decryptSecret(this.key, name, ciphertext);
    });
    return out;
  }
}

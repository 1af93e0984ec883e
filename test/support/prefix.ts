/** A fresh key prefix per test file, and the cleanup that removes every key under it. */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

/** The Redis URL the global setup started. */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** `t-<file>-<random>`: unique per test file (and per call). */
export function testPrefix(fileUrl: string): string {
  const name = basename(new URL(fileUrl).pathname)
    .replace(/\.test\.ts$/, '')
    .replace(/[^a-z0-9-]/gi, '-');
  return `t-${name}-${randomBytes(3).toString('hex')}`;
}

/** Deletes every key whose name contains `{prefix}` or starts with `prefix`. */
export async function dropPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    for (const pattern of [`{${prefix}}*`, `${prefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

/** Credentials read from files, and a Redis password that reaches a real password-protected Redis. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ValidationError } from '../../src/errors.ts';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { type RedisHandle, spawnRedis } from '../support/redis-server.ts';

const PASSWORD = 'p@ss:w/rd#1 ü';
let dir: string;
let redis: RedisHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-creds-'));
  // A Redis of this file's own: it gets a password, which the shared one must not.
  redis = await spawnRedis();
  const admin = new Redis(redis.url);
  await admin.config('SET', 'requirepass', PASSWORD);
  admin.disconnect();
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** Whether `url` gets PONG (false on NOAUTH / WRONGPASS). */
async function pings(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** The issues of the ValidationError `fn` throws. */
function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

describe('credentials from files', () => {
  it('reads CONVEYOR_SECRET_KEY_FILE, without the trailing newline', () => {
    const key = generateSecretKey();
    const config = loadConfig({ CONVEYOR_SECRET_KEY_FILE: file('key', `${key}\n`) });
    expect(config.CONVEYOR_SECRET_KEY).toBe(key);
    expect(() => parseSecretKey(config.CONVEYOR_SECRET_KEY!)).not.toThrow();
  });

  it('refuses a variable set both ways, a missing file and an empty one, naming each', () => {
    const key = file('key2', generateSecretKey());
    expect(issuesOf(() => loadConfig({ CONVEYOR_SECRET_KEY: 'x', CONVEYOR_SECRET_KEY_FILE: key }))).toEqual([
      {
        path: 'CONVEYOR_SECRET_KEY_FILE',
        message: 'set CONVEYOR_SECRET_KEY or CONVEYOR_SECRET_KEY_FILE, not both',
      },
    ]);
    const issues = issuesOf(() =>
      loadConfig({ REDIS_PASSWORD_FILE: join(dir, 'nope'), REDIS_URL_FILE: file('empty', '\n') }),
    );
    expect(issues.map((i) => i.path)).toEqual(['REDIS_URL_FILE', 'REDIS_PASSWORD_FILE']);
    expect(issues[0]!.message).toMatch(/is empty/);
    expect(issues[1]!.message).toMatch(/cannot read .*nope: ENOENT/);
  });

  it('folds REDIS_PASSWORD_FILE into the Redis URL, and a real Redis accepts it', async () => {
    expect(await pings(redis.url)).toBe(false);
    const config = loadConfig({ REDIS_URL: redis.url, REDIS_PASSWORD_FILE: file('pw', `${PASSWORD}\n`) });
    expect(config.REDIS_URL).not.toContain(PASSWORD);
    expect(await pings(config.REDIS_URL)).toBe(true);
    // The URL itself may come from a file too (it may hold the password).
    const fromFile = loadConfig({ REDIS_URL_FILE: file('url', config.REDIS_URL) });
    expect(fromFile.REDIS_URL).toBe(config.REDIS_URL);
    expect(fromFile.redisUrlIsDefault).toBe(false);
    expect(await pings(fromFile.REDIS_URL)).toBe(true);
  });

  it('refuses a password given twice', () => {
    expect(
      issuesOf(() => loadConfig({ REDIS_URL: 'redis://:a@localhost:6379', REDIS_PASSWORD: 'b' })),
    ).toEqual([{ path: 'REDIS_PASSWORD', message: 'REDIS_URL has a password already' }]);
  });
});

/**
 * The start-up check of the Redis settings durability rests on, against real servers started
 * with each setting: eviction and AOF off are one warning line each, good settings say nothing,
 * and a Redis that refuses CONFIG (as managed ones do) gets one line saying it was not checked.
 * (The cluster case, every master named, is in test/e2e/redis-cluster.test.ts.)
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { checkRedisSettings } from '../../src/redis-settings.ts';
import { captureLog } from '../support/log-capture.ts';
import { spawnRedis } from '../support/redis-server.ts';

async function check(args: string[]) {
  const redis = await spawnRedis({ args });
  const client = new Redis(redis.url);
  const log = captureLog();
  try {
    const report = await checkRedisSettings(client, pino({ level: 'info' }, log.stream));
    return { report, lines: log.lines(), node: `127.0.0.1:${redis.port}` };
  } finally {
    client.disconnect();
    await redis.stop();
  }
}

describe('Redis settings at start', () => {
  it('warns once for an evicting policy and once for AOF off, naming the node', async () => {
    const { report, lines, node } = await check(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'no']);
    expect(report).toEqual({ evicting: { [node]: 'allkeys-lru' }, noAof: [node] });
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.level === 40)).toBe(true);
    expect(lines[0]!.msg).toMatch(/^REDIS MAY EVICT CONVEYOR'S KEYS: maxmemory-policy is allkeys-lru on 127/);
    expect(lines[1]!.msg).toMatch(/^REDIS AOF IS OFF \(appendonly no\) on 127/);
  });

  it('says nothing with noeviction and AOF on', async () => {
    const { report, lines } = await check(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes']);
    expect(report).toEqual({ evicting: {}, noAof: [] });
    expect(lines).toEqual([]);
  });

  it('says once that it could not check when CONFIG is disabled', async () => {
    const { report, lines } = await check(['--rename-command', 'CONFIG', '']);
    expect(report.unchecked).toMatch(/unknown command/i);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: expect.stringMatching(/^could not check Redis/) });
  });
});

/**
 * `REDIS_CLUSTER_NODES`: parsing and bounds, and how it combines with `REDIS_URL` and
 * `REDIS_PASSWORD` into the connection target (the URL gives credentials and TLS, never a host
 * or a database, to the cluster).
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { describeTarget, MAX_CLUSTER_NODES, parseClusterNodes } from '../../src/redis-client.ts';

describe('REDIS_CLUSTER_NODES', () => {
  it('parses host:port lists, IPv6 in brackets, spaces and empty items ignored', () => {
    expect(parseClusterNodes('10.0.0.1:7000, redis-1.internal:7001,,[::1]:7002')).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-1.internal', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
  });

  it.each(['', 'redis', 'redis:0', 'redis:65536', 'redis:70000', 'a b:1', '::1:7000', 'redis://x:1'])(
    'refuses %j',
    (text) => expect(parseClusterNodes(text)).toHaveProperty('error'),
  );

  it(`refuses more than ${MAX_CLUSTER_NODES} nodes`, () => {
    const many = Array.from({ length: MAX_CLUSTER_NODES + 1 }, (_, i) => `n${i}:7000`).join(',');
    expect(parseClusterNodes(many)).toHaveProperty('error');
  });

  it('unset or blank is a single Redis at REDIS_URL', () => {
    expect(loadConfig({}).redis).toEqual({ url: 'redis://127.0.0.1:6379' });
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' ' }).redis.cluster).toBeUndefined();
  });

  it('set, it is the cluster, with REDIS_URL and REDIS_PASSWORD as every node’s credentials', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: 'r1:7000,r2:7000',
      REDIS_URL: 'rediss://conveyor@ignored:6379',
      REDIS_PASSWORD: 'p@ss',
    });
    expect(config.redis.cluster).toEqual([
      { host: 'r1', port: 7000 },
      { host: 'r2', port: 7000 },
    ]);
    expect(config.redis.url).toBe('rediss://conveyor:p%40ss@ignored:6379');
    expect(describeTarget(config.redis)).toBe('cluster r1:7000,r2:7000');
  });

  it('names the variable on a bad value, and refuses a database index with a cluster', () => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r1' })).toThrow(
      /REDIS_CLUSTER_NODES: "r1" is not host:port/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000', REDIS_URL: 'redis://x:6379/2' })).toThrow(
      /REDIS_URL: a Redis Cluster has no database index/,
    );
  });
});

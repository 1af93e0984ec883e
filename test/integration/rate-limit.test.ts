/**
 * The per-token rate limit in the real Redis (rate-limit.lua): 429 in the error shape with
 * `Retry-After`, recovery after the window (time stepped through the limiter's clock), buckets
 * shared by two API instances, per-address counting over a real socket on Redis's own clock.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTokens } from '../../src/api/auth/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
const A = `token-a-${randomBytes(12).toString('hex')}`;
const B = `token-b-${randomBytes(12).toString('hex')}`;
const WINDOW_MS = 60_000;
const LIMIT = 3;
let clock = 1_700_000_000_000;
const started: ConveyorApi[] = [];

async function api(options: Partial<Parameters<typeof startApi>[0]> = {}): Promise<ConveyorApi> {
  const a = await startApi({
    redisUrl: redisUrl(),
    prefix,
    logger: pino({ level: 'silent' }),
    tokens: parseTokens(`read:${A},read:${B}`, 'CONVEYOR_API_TOKENS'),
    rateLimit: { limit: LIMIT, windowMs: WINDOW_MS, now: () => clock },
    ...options,
  });
  started.push(a);
  return a;
}

let one: ConveyorApi;
let two: ConveyorApi;
beforeAll(async () => {
  // Two API instances, each with its own Redis connection: as two processes would be.
  [one, two] = await Promise.all([api(), api()]);
});
afterAll(async () => {
  await Promise.all(started.map((a) => a.close()));
  await dropPrefix(redisUrl(), prefix);
});

async function get(app: ConveyorApi['app'], path: string, token?: string) {
  const res = await app.request(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').includes('json');
  return { status: res.status, headers: res.headers, body: text && json ? JSON.parse(text) : undefined };
}

describe('rate limit per token', () => {
  it('answers 429 with Retry-After past the limit, and recovers after the window', async () => {
    const remaining: Array<string | null> = [];
    for (let i = 0; i < LIMIT; i++) {
      const res = await get(one.app, '/v1/runs', A);
      expect(res.status).toBe(200);
      remaining.push(res.headers.get('x-ratelimit-remaining'));
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const refused = await get(one.app, '/v1/runs', A);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(refused.body.error.message).toMatch(/3 per 60 s/);
    // A bucket of 3 per minute refills one request every 20 s.
    expect(refused.headers.get('retry-after')).toBe('20');
    expect(refused.headers.get('x-ratelimit-limit')).toBe('3');
    expect(refused.headers.get('x-request-id')).toBeTruthy();

    // The other instance shares the bucket; another token has its own.
    expect((await get(two.app, '/v1/runs', A)).status).toBe(429);
    expect((await get(two.app, '/v1/runs', B)).status).toBe(200);

    // An error answer is counted and says so too.
    const missing = await get(two.app, '/v1/runs/run_missing', B);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-ratelimit-remaining')).toBe('1');

    // Probes are never limited.
    for (const path of ['/healthz', '/readyz']) expect((await get(one.app, path, A)).status).toBe(200);
    expect((await get(one.app, '/metrics', A)).status).not.toBe(429);

    clock += 19_999;
    const almost = await get(one.app, '/v1/runs', A);
    expect(almost.status).toBe(429);
    expect(almost.headers.get('retry-after')).toBe('1');
    clock += 1;
    expect((await get(one.app, '/v1/runs', A)).status).toBe(200);
    expect((await get(one.app, '/v1/runs', A)).status).toBe(429);

    // A whole window later the whole burst is back.
    clock += WINDOW_MS;
    const statuses: number[] = [];
    for (let i = 0; i <= LIMIT; i++) statuses.push((await get(two.app, '/v1/runs', A)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('a refused request costs nothing: knocking does not push recovery further out', async () => {
    clock += 10 * WINDOW_MS;
    for (let i = 0; i < LIMIT; i++) expect((await get(one.app, '/v1/runs', B)).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await get(one.app, '/v1/runs', B)).status).toBe(429);
    clock += WINDOW_MS / LIMIT;
    expect((await get(one.app, '/v1/runs', B)).status).toBe(200);
  });
});

describe('rate limit on routes that check no token', () => {
  it('counts by address there: an unchecked made-up token buys no fresh bucket', async () => {
    // Webhooks authenticate by signature, so the token middleware checks no token on them.
    const statuses: number[] = [];
    for (let i = 0; i <= LIMIT; i++)
      statuses.push((await get(one.app, '/v1/hooks/github', `made-up-${i}`)).status);
    expect(statuses.slice(0, LIMIT)).not.toContain(429);
    expect(statuses[LIMIT]).toBe(429);
  });
});

describe('rate limit at the extremes', () => {
  it('a limit too high to reach never fails (its refill step is below a millisecond)', async () => {
    const high = await api({ rateLimit: { limit: 1_000_000_000, windowMs: 60_000 } });
    for (let i = 0; i < 5; i++) {
      const res = await get(high.app, '/v1/runs', A);
      expect(res.status).toBe(200);
      expect(Number(res.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(999_999_000);
    }
  });
});

describe('rate limit without tokens', () => {
  it('counts by client address on Redis clock, over a real socket; made-up tokens do not help', async () => {
    const open = await api({ tokens: [], port: 0, rateLimit: { limit: 2, windowMs: 3_600_000 } });
    const fetchRuns = (token?: string) =>
      fetch(`${open.url}/v1/runs`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await fetchRuns()).status).toBe(200);
    expect((await fetchRuns('made-up-1')).status).toBe(200);
    const refused = await fetchRuns('made-up-2');
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    // 2 per hour: the next request is about half an hour away.
    expect(retryAfter).toBeGreaterThan(1700);
    expect(retryAfter).toBeLessThanOrEqual(1800);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect((await fetch(`${open.url}/healthz`)).status).toBe(200);
  });
});

/**
 * A worker's connection sends the commands of one turn of the event loop in one socket write,
 * in the order they were issued, on its first socket and after a reconnect; a real Redis.
 */
import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../src/write-coalescing.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
const key = `${prefix}:list`;
const clients: Redis[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});
afterAll(async () => {
  await dropPrefix(redisUrl(), prefix);
});

async function open(coalesced: boolean): Promise<Redis> {
  const client = new Redis(redisUrl());
  clients.push(client);
  if (coalesced) coalesceWrites(client);
  await client.ping();
  await client.del(key);
  return client;
}

/** Socket writes (system calls, one per `_write` or `_writev`) made while `burst` runs. */
async function socketWrites(client: Redis, burst: () => Promise<unknown>): Promise<number> {
  const stream = (client as unknown as { stream: Socket & Record<string, unknown> }).stream;
  let writes = 0;
  const counted = ['_write', '_writev'].map((name) => {
    const real = stream[name] as (...args: unknown[]) => unknown;
    stream[name] = function (this: Socket, ...args: unknown[]) {
      writes++;
      return real.apply(this, args);
    };
    return () => {
      stream[name] = real;
    };
  });
  try {
    await burst();
  } finally {
    for (const restore of counted) restore();
  }
  return writes;
}

/** 40 pushes issued in one turn, a transaction and a pipeline among them. */
function burst(client: Redis): Promise<unknown> {
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < 20; i++) pending.push(client.rpush(key, `a${i}`));
  pending.push(client.multi().rpush(key, 'm1').rpush(key, 'm2').exec());
  pending.push(client.pipeline().rpush(key, 'p1').exec());
  for (let i = 0; i < 20; i++) pending.push(client.rpush(key, `b${i}`));
  return Promise.all(pending);
}

const expected = [
  ...Array.from({ length: 20 }, (_, i) => `a${i}`),
  'm1',
  'm2',
  'p1',
  ...Array.from({ length: 20 }, (_, i) => `b${i}`),
];

describe('coalesced writes', () => {
  it('sends one turn of commands in one write, in order, where a plain connection makes one write each', async () => {
    const plain = await open(false);
    const plainWrites = await socketWrites(plain, () => burst(plain));
    expect(await plain.lrange(key, 0, -1)).toEqual(expected);

    const coalesced = await open(true);
    const writes = await socketWrites(coalesced, () => burst(coalesced));
    expect(await coalesced.lrange(key, 0, -1)).toEqual(expected);
    expect(writes).toBe(1);
    expect(plainWrites).toBeGreaterThan(10);
  });

  it('coalesces the commands that replies of one read wake, and keeps doing so after a reconnect', async () => {
    const client = await open(true);
    // Each reply issues the next command: they come back in one read and wake all at once.
    const chained = () =>
      Promise.all(Array.from({ length: 10 }, (_, i) => client.ping().then(() => client.rpush(key, `c${i}`))));
    expect(await socketWrites(client, chained)).toBeLessThanOrEqual(2);

    const before = (client as unknown as { stream: Socket }).stream;
    client.disconnect(true);
    await client.ping();
    expect((client as unknown as { stream: Socket }).stream).not.toBe(before);
    await client.del(key);
    expect(await socketWrites(client, () => burst(client))).toBe(1);
    expect(await client.lrange(key, 0, -1)).toEqual(expected);
  });
});

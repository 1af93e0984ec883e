/**
 * Review of issue 8 (host preflight): the report must not claim what it did not check. A port
 * that accepts TCP but never speaks SSH is `reachable: false` (`connect_timeout`) when the key is
 * usable; with an unusable key the same port is reported `reachable: true`, before any SSH
 * handshake happened.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let silent: Server;

beforeAll(async () => {
  // Accepts connections and never answers: not an SSH server.
  silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    worker: false,
    secretKey: parseSecretKey(generateSecretKey()),
  });
});
afterAll(async () => {
  await engine.close();
  await new Promise((resolve) => silent.close(resolve));
});

describe('host preflight edges (review 8)', () => {
  it('a port that never speaks SSH is not reported reachable because the key is unusable', async () => {
    const port = (silent.address() as { port: number }).port;
    expect(
      (await engine.request('PUT', '/v1/secrets/NOT_A_KEY', { value: 'not a private key' })).status,
    ).toBe(201);
    const put = await engine.request('PUT', '/v1/hosts/silent', {
      address: '127.0.0.1',
      port,
      user: 'deploy',
      auth: { secret: 'NOT_A_KEY' },
    });
    expect(put.status).toBe(201);
    const check = await engine.request('POST', '/v1/hosts/silent/check');
    expect(check.status).toBe(200);
    // No SSH handshake took place: the host is not known to be an SSH server at all.
    expect(check.body.reachable).not.toBe(true);
  });
});

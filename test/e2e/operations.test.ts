/**
 * The real `conveyor api` process configured from a `.env` file (CONVEYOR_ENV_FILE): the file's
 * values apply, the environment's win, and the operations they turn on (tokens, CORS, the rate
 * limit, request lines with their ids) work end to end; no token reaches the log.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { type ConveyorProcess, spawnConveyor } from '../support/process.ts';
import { freePort } from '../support/redis-server.ts';

const prefix = testPrefix(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'conveyor-ops-'));
const TOKEN = `ops-${randomBytes(12).toString('hex')}`;
let p: ConveyorProcess | undefined;
afterAll(async () => {
  await p?.stop();
  await dropPrefix(redisUrl(), prefix);
  rmSync(dir, { recursive: true, force: true });
});

describe('conveyor api configured by a .env file', () => {
  it('reads the file under the environment, and its settings take effect', async () => {
    const port = await freePort();
    const file = join(dir, 'ops.env');
    writeFileSync(
      file,
      [
        `PORT=${port}`,
        'LOG_LEVEL=silent', // the environment says info: the environment wins
        `CONVEYOR_API_TOKENS=read:${TOKEN}`,
        'CONVEYOR_RATE_LIMIT=2/h',
        'CONVEYOR_CORS_ORIGINS=https://ops.example.com',
        '',
      ].join('\n'),
    );
    p = spawnConveyor('api', {
      REDIS_URL: redisUrl(),
      CONVEYOR_PREFIX: prefix,
      CONVEYOR_ENV_FILE: file,
      LOG_LEVEL: 'info',
      PORT: undefined,
      CONVEYOR_API_TOKENS: undefined,
    });
    const read = JSON.parse(await p.line(/variables from/));
    expect(read.loaded.sort()).toEqual([
      'CONVEYOR_API_TOKENS',
      'CONVEYOR_CORS_ORIGINS',
      'CONVEYOR_RATE_LIMIT',
      'PORT',
    ]);
    expect(read.keptFromEnvironment).toEqual(['LOG_LEVEL']);
    expect(await p.line(/API listening/)).toContain(`http://127.0.0.1:${port}`);

    const url = `http://127.0.0.1:${port}/v1/runs`;
    const auth = { authorization: `Bearer ${TOKEN}`, origin: 'https://ops.example.com' };
    expect((await fetch(url)).status).toBe(401);
    const first = await fetch(url, { headers: { ...auth, 'x-request-id': 'e2e-ops-1' } });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-request-id')).toBe('e2e-ops-1');
    expect(first.headers.get('access-control-allow-origin')).toBe('https://ops.example.com');
    expect((await fetch(url, { headers: auth })).status).toBe(200);
    const refused = await fetch(url, { headers: auth });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

    const line = JSON.parse(await p.line(/"requestId":"e2e-ops-1"/));
    expect(line).toMatchObject({
      msg: 'request',
      method: 'GET',
      path: '/v1/runs',
      status: 200,
      role: 'read',
    });
    expect(p.output()).not.toContain(TOKEN);
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { InsecureBindError } from '../../src/api/auth/index.ts';
import { startApi } from '../../src/api/server.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { type ConveyorProcess, spawnConveyor } from '../support/process.ts';
import { freePort } from '../support/redis-server.ts';

const prefix = testPrefix(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'conveyor-bind-'));
const processes: ConveyorProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  await dropPrefix(redisUrl(), prefix);
  rmSync(dir, { recursive: true, force: true });
});

function api(env: Record<string, string | undefined>): ConveyorProcess {
  const p = spawnConveyor('api', { REDIS_URL: redisUrl(), CONVEYOR_PREFIX: prefix, ...env });
  processes.push(p);
  return p;
}

describe('bind address', () => {
  it('listens on loopback by default and says where', async () => {
    const started = await startApi({
      redisUrl: redisUrl(),
      prefix,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
    try {
      expect(started.address).toBe('127.0.0.1');
      expect(started.url).toBe(`http://127.0.0.1:${started.port}`);
    } finally {
      await started.close();
    }
  });

  it('refuses a non-loopback bind without tokens in the start function', async () => {
    await expect(
      startApi({ redisUrl: redisUrl(), prefix, port: 0, host: '0.0.0.0', logger: pino({ level: 'silent' }) }),
    ).rejects.toBeInstanceOf(InsecureBindError);
  });

  it('the real process refuses 0.0.0.0 without tokens, before it even looks for Redis', async () => {
    // Nothing listens at this Redis URL: a process that waited for Redis would never exit.
    const p = api({ HOST: '0.0.0.0', PORT: '0', REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/refusing to listen on 0\.0\.0\.0 without API tokens/);
    expect(p.output()).toContain('CONVEYOR_ALLOW_ANONYMOUS=true');
  });

  it('logs the loopback address it bound and warns that there are no tokens', async () => {
    const port = await freePort();
    const p = api({ PORT: String(port), HOST: undefined, CONVEYOR_API_TOKENS: undefined });
    expect(await p.line(/API listening/)).toContain(`http://127.0.0.1:${port}`);
    // Other warnings may come first (the test Redis runs without AOF): find this one by its text.
    expect(await p.line(/CONVEYOR_API_TOKENS is not set/)).toContain('"level":40');
  });

  it('with CONVEYOR_ALLOW_ANONYMOUS=true binds 0.0.0.0 and logs that address', async () => {
    const port = await freePort();
    const p = api({ PORT: String(port), HOST: '0.0.0.0', CONVEYOR_ALLOW_ANONYMOUS: 'true' });
    expect(await p.line(/API listening/)).toContain(`http://0.0.0.0:${port}`);
    expect((await fetch(`http://127.0.0.1:${port}/v1/workflows`)).status).toBe(200);
  });

  it('binds 0.0.0.0 with tokens from CONVEYOR_API_TOKENS_FILE and enforces them', async () => {
    const file = join(dir, 'tokens');
    writeFileSync(file, '# tokens\nread:file-read-token\nadmin:file-admin-token\n');
    const port = await freePort();
    const p = api({ PORT: String(port), HOST: '0.0.0.0', CONVEYOR_API_TOKENS_FILE: file });
    await p.line(/API listening/);
    expect(p.output()).not.toContain('CONVEYOR_API_TOKENS is not set');
    const url = `http://127.0.0.1:${port}/v1/workflows`;
    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await fetch(url, { headers: { authorization: 'Bearer file-read-token' } })).status).toBe(200);
    const write = await fetch(url, {
      method: 'POST',
      headers: { authorization: 'Bearer file-read-token', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(write.status).toBe(403);
  });
});

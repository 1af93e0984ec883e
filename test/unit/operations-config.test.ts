/**
 * Operations configuration: `CONVEYOR_RATE_LIMIT` and `CONVEYOR_CORS_ORIGINS` parsing, `.env`
 * reading (never over the environment), redaction paths, and the README's configuration table
 * compared with what the code reads, so the table cannot drift.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCorsOrigins, parseRateLimit } from '../../src/api/middleware/index.ts';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config.ts';
import { withEnvFile } from '../../src/env-file.ts';
import { ValidationError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { captureLog } from '../support/log-capture.ts';

const root = new URL('../../', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'conveyor-envfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('CONVEYOR_RATE_LIMIT', () => {
  it.each([
    ['600', { limit: 600, windowMs: 60_000 }],
    ['600/min', { limit: 600, windowMs: 60_000 }],
    ['10/s', { limit: 10, windowMs: 1000 }],
    ['5000/h', { limit: 5000, windowMs: 3_600_000 }],
    ['100/10s', { limit: 100, windowMs: 10_000 }],
    [' 3 / 500ms ', { limit: 3, windowMs: 500 }],
  ])('%s', (text, expected) => expect(parseRateLimit(text)).toEqual(expected));

  it('0 is off, and the default is 600 a minute', () => {
    expect(parseRateLimit('0')).toBeNull();
    expect(loadConfig({}).CONVEYOR_RATE_LIMIT).toEqual({ limit: 600, windowMs: 60_000 });
    expect(loadConfig({ CONVEYOR_RATE_LIMIT: '0' }).CONVEYOR_RATE_LIMIT).toBeNull();
  });

  it.each(['-1', 'lots', '10/fortnight', '10/0s', '1.5/s', '99999999999999999999'])(
    'refuses %s, naming the variable',
    (text) => {
      expect(parseRateLimit(text)).toHaveProperty('error');
      expect(() => loadConfig({ CONVEYOR_RATE_LIMIT: text })).toThrow(/CONVEYOR_RATE_LIMIT: /);
    },
  );
});

describe('CONVEYOR_CORS_ORIGINS', () => {
  it('is off unset or blank, `*` alone, or exact origins', () => {
    expect(loadConfig({}).CONVEYOR_CORS_ORIGINS).toBeUndefined();
    expect(loadConfig({ CONVEYOR_CORS_ORIGINS: ' ' }).CONVEYOR_CORS_ORIGINS).toBeUndefined();
    expect(parseCorsOrigins('*')).toBe('*');
    expect(parseCorsOrigins('https://a.example, http://localhost:5173')).toEqual([
      'https://a.example',
      'http://localhost:5173',
    ]);
  });

  it.each([
    'https://a.example/',
    'https://a.example/app',
    'a.example',
    'ftp://a.example',
    '*,https://a.example',
  ])('refuses %s', (text) => {
    expect(parseCorsOrigins(text)).toHaveProperty('error');
    expect(() => loadConfig({ CONVEYOR_CORS_ORIGINS: text })).toThrow(/CONVEYOR_CORS_ORIGINS: /);
  });
});

describe('.env', () => {
  it('adds what the environment lacks and never replaces what it has', () => {
    writeFileSync(
      join(dir, '.env'),
      '# comment\nPORT=9123\nLOG_LEVEL=debug\nexport CONVEYOR_PREFIX=fromfile\nQUOTED="a b # c"\n',
    );
    const { env, file, loaded, overridden } = withEnvFile({ LOG_LEVEL: 'warn', EMPTY: '' }, dir);
    expect(file).toBe(join(dir, '.env'));
    expect(env).toMatchObject({
      PORT: '9123',
      LOG_LEVEL: 'warn',
      CONVEYOR_PREFIX: 'fromfile',
      QUOTED: 'a b # c',
    });
    expect(loaded.sort()).toEqual(['CONVEYOR_PREFIX', 'PORT', 'QUOTED']);
    expect(overridden).toEqual(['LOG_LEVEL']);
    expect(loadConfig(env)).toMatchObject({ PORT: 9123, LOG_LEVEL: 'warn', CONVEYOR_PREFIX: 'fromfile' });
    // Set but empty still counts as set.
    writeFileSync(join(dir, '.env'), 'EMPTY=filled\n');
    expect(withEnvFile({ EMPTY: '' }, dir).env.EMPTY).toBe('');
    expect(process.env.QUOTED).toBeUndefined();
  });

  it('CONVEYOR_ENV_FILE names another file (relative to the working directory); no ./.env is fine', () => {
    writeFileSync(join(dir, 'staging.env'), 'PORT=9200\n');
    expect(withEnvFile({ CONVEYOR_ENV_FILE: 'staging.env' }, dir).env.PORT).toBe('9200');
    const empty = mkdtempSync(join(dir, 'none-'));
    expect(withEnvFile({ PORT: '1' }, empty)).toEqual({ env: { PORT: '1' }, loaded: [], overridden: [] });
  });

  it('a named file that cannot be read is an error naming CONVEYOR_ENV_FILE', () => {
    const call = () => withEnvFile({ CONVEYOR_ENV_FILE: 'missing.env' }, dir);
    expect(call).toThrow(ValidationError);
    expect(call).toThrow(/CONVEYOR_ENV_FILE: cannot read .*missing\.env/);
  });
});

describe('redaction', () => {
  it('censors credentials wherever a log call puts headers or a secret body', () => {
    const log = captureLog();
    const logger = createLogger('info', log.stream);
    logger.info({
      headers: {
        authorization: 'Bearer tok-1',
        cookie: 'c=tok-2',
        'x-hub-signature-256': 'sha256=tok-3',
        'x-gitlab-token': 'tok-4',
        'x-gitea-signature': 'tok-5',
        accept: 'kept',
      },
      req: {
        headers: { authorization: 'Bearer tok-6', 'proxy-authorization': 'tok-7' },
        body: { value: 'tok-8' },
      },
      body: { value: 'tok-9', name: 'kept-name' },
      token: 'tok-10',
    });
    expect(log.text()).not.toMatch(/tok-\d/);
    expect(log.text()).toContain('kept-name');
    expect(log.lines()[0]!.headers).toMatchObject({ authorization: '[redacted]', accept: 'kept' });
  });
});

/** Variable names in the first cell of each row of the README's "## Configuration" table. */
function readmeVariables(): string[] {
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows = section.split('\n').filter((line) => /^\|\s*`/.test(line));
  expect(rows.length).toBeGreaterThan(10);
  return rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!));
}

/** Files under `dir` (recursive) ending in one of `exts`. */
function sources(dir: URL, exts: string[]): URL[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const url = new URL(entry.name + (entry.isDirectory() ? '/' : ''), dir);
    if (entry.isDirectory()) return sources(url, exts);
    return exts.some((e) => entry.name.endsWith(e)) ? [url] : [];
  });
}

describe('the README configuration table', () => {
  it('lists exactly the variables the configuration reads', () => {
    const listed = readmeVariables();
    expect(new Set(listed).size, 'a variable is listed twice').toBe(listed.length);
    expect([...listed].sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  it('no code reads a variable from process.env behind the configuration', () => {
    // PATH: the worker finds its launch tools on its own PATH, the operating system's, not a setting.
    // XDG_CACHE_HOME: where the user's caches go (the compiled launcher), by the same kind of rule.
    const internal = new Set(['CONVEYOR_CREDENTIALS_FD', 'PATH', 'XDG_CACHE_HOME']);
    const found = new Set<string>();
    for (const file of [
      ...sources(new URL('src/', root), ['.ts', '.mjs']),
      ...sources(new URL('bin/', root), ['.mjs']),
    ]) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(
        /process\.env(?:\.([A-Z][A-Z0-9_]*)|\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\])/g,
      )) {
        found.add((m[1] ?? m[2])!);
      }
    }
    const unlisted = [...found].filter((name) => !internal.has(name) && !CONFIG_VARIABLES.includes(name));
    expect(unlisted).toEqual([]);
  });
});

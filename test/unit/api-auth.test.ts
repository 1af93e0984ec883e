import { describe, expect, it } from 'vitest';
import {
  accessFor,
  checkExposure,
  findRole,
  InsecureBindError,
  isLoopback,
  parseTokens,
  safeEqual,
} from '../../src/api/auth/index.ts';
import { ValidationError } from '../../src/errors.ts';

describe('API tokens', () => {
  it('parses role:token pairs, bare tokens as admin, files with comments and lines', () => {
    const tokens = parseTokens(' read:r1, run:u1 ,bare\n# a comment\nadmin:a1,,\n', 'CONVEYOR_API_TOKENS');
    expect(tokens.map((t) => t.role)).toEqual(['read', 'run', 'admin', 'admin']);
    expect(findRole(tokens, 'r1')).toBe('read');
    expect(findRole(tokens, 'u1')).toBe('run');
    expect(findRole(tokens, 'bare')).toBe('admin');
    expect(findRole(tokens, 'a1')).toBe('admin');
    expect(findRole(tokens, 'a')).toBeUndefined();
    expect(findRole(tokens, '')).toBeUndefined();
    expect(parseTokens('', 'X')).toEqual([]);
  });

  it('refuses unknown roles, empty tokens and one token with two roles, without quoting tokens', () => {
    let caught: unknown;
    try {
      parseTokens('raed:secret-1,run:,read:dup,admin:dup', 'CONVEYOR_API_TOKENS');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const err = caught as ValidationError;
    expect(err.issues.map((i) => i.path)).toEqual([
      'CONVEYOR_API_TOKENS[0]',
      'CONVEYOR_API_TOKENS[1]',
      'CONVEYOR_API_TOKENS[3]',
    ]);
    expect(err.message).toContain('unknown role "raed"');
    expect(err.message).not.toContain('secret-1');
    expect(err.message).not.toContain('dup');
  });

  it('compares in constant time over digests: any lengths, never a throw', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('a', 'a-much-longer-token-than-the-first-one')).toBe(false);
    expect(safeEqual('', 'x')).toBe(false);
    expect(safeEqual('é'.repeat(1000), 'é'.repeat(999))).toBe(false);
    const tokens = parseTokens('read:short', 'T');
    expect(findRole(tokens, 'short-but-longer')).toBeUndefined();
    expect(findRole(tokens, 's')).toBeUndefined();
  });
});

describe('access table', () => {
  it.each([
    ['GET', '/healthz', 'public'],
    ['GET', '/readyz', 'public'],
    ['POST', '/v1/hooks/github', 'signature'],
    ['GET', '/v1/runs/run_1/events', 'read'],
    ['HEAD', '/v1/workflows', 'read'],
    ['GET', '/metrics', 'read'],
    ['GET', '/admin/queues', 'admin'],
    ['GET', '//admin//queues/', 'admin'],
    ['GET', '/%61dmin/queues', 'admin'],
    ['POST', '/v1/runs', 'run'],
    ['POST', '/v1/runs/', 'run'],
    ['POST', '/v1/workflows/deploy/runs', 'run'],
    ['POST', '/v1/runs/run_1/cancel', 'run'],
    ['POST', '/v1/runs/run_1/retry', 'run'],
    ['POST', '/v1/events/artifact.published', 'run'],
    ['POST', '/v1/workflows', 'admin'],
    ['DELETE', '/v1/workflows/deploy', 'admin'],
    ['PUT', '/v1/hosts/web-1', 'admin'],
    ['POST', '/v1/hosts/web-1/check', 'admin'],
    ['PUT', '/v1/secrets/KEY', 'admin'],
    ['POST', '/healthz', 'admin'],
    ['PATCH', '/anything/else', 'admin'],
  ])('%s %s needs %s', (method, path, access) => {
    expect(accessFor(method, path)).toBe(access);
  });
});

describe('bind policy', () => {
  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '::ffff:10.0.0.1'])
      expect(isLoopback(host), host).toBe(false);
  });

  it('refuses a non-loopback bind without tokens unless anonymous access is allowed', () => {
    expect(() => checkExposure('0.0.0.0', 0, false)).toThrow(InsecureBindError);
    expect(() => checkExposure('0.0.0.0', 0, false)).toThrow(/CONVEYOR_ALLOW_ANONYMOUS=true/);
    expect(checkExposure('0.0.0.0', 0, true)).toBe(true);
    expect(checkExposure('0.0.0.0', 1, false)).toBe(false);
    expect(checkExposure('127.0.0.1', 0, false)).toBe(true);
  });
});

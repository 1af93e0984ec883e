/**
 * Review of issue 8 ("Reject `__proto__`, `constructor` and `prototype` as ids with a clear
 * message"): secret names are not checked. `PUT /v1/secrets/constructor` stores the secret, and a
 * step reading `${{ secrets.constructor }}` then gets an empty value and succeeds: no error, no
 * "secret not set", a run that says it used a secret it never had.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    secretKey: parseSecretKey(generateSecretKey()),
  });
});
afterAll(async () => {
  await engine.close();
});

describe('reserved secret names (review 8)', () => {
  for (const name of ['__proto__', 'constructor']) {
    it(`a secret named ${name} is refused, or reaches the step that reads it`, async () => {
      const put = await engine.request('PUT', `/v1/secrets/${name}`, { value: `value-of-${name}-0123` });
      if (put.status >= 400) {
        expect(put.status).toBeLessThan(500);
        expect(JSON.stringify(put.body)).toContain(name);
        return;
      }
      const run = await engine.submit({
        name: 'reserved-secret',
        steps: { s: { env: { X: `\${{ secrets.${name} }}` }, run: 'printf "[%s]" "$X"' } },
      });
      const { run: done } = await engine.waitForRun(run.id);
      const log = (await engine.request('GET', `/v1/runs/${run.id}/steps/s/logs`)).body;
      expect(done.status).toBe('succeeded');
      // The stored value, masked: not an empty string.
      expect(String(JSON.stringify(log))).toContain('[***]');
    });
  }
});

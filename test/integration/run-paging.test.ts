/**
 * Exact run-listing cursors: 60 runs created at once (many in the same millisecond), paged by 7,
 * with and without the `workflow` and `status` filters: every run listed exactly once, newest first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunDocument } from '../../src/store/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

let engine: TestEngine;
let runs: RunDocument[];

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url));
  for (const name of ['page-a', 'page-b']) {
    const res = await engine.request('POST', '/v1/workflows', {
      name,
      inputs: { code: { type: 'number', default: 0 } },
      steps: { a: { run: 'exit ${{ inputs.code }}' } },
    });
    expect(res.status).toBe(201);
  }
  const started = await Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      engine.request('POST', `/v1/workflows/${i % 3 === 0 ? 'page-b' : 'page-a'}/runs`, {
        inputs: { code: i % 2 },
      }),
    ),
  );
  runs = [];
  for (const res of started) {
    expect(res.status).toBe(202);
    runs.push((await engine.waitForRun(res.body.id)).run);
  }
});
afterAll(async () => engine.close());

/** Every page of a listing, following cursors to the end. */
async function pageAll(query: string): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await engine.request('GET', `/v1/runs?limit=7${query}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status).toBe(200);
    expect(res.body.runs.length).toBeLessThanOrEqual(7);
    ids.push(...res.body.runs.map((r: RunDocument) => r.id));
    cursor = res.body.cursor;
    pages++;
    expect(pages).toBeLessThan(20); // a cursor that never advances would loop forever
  } while (cursor);
  return { ids, pages };
}

/** Newest first; runs of one millisecond in reverse id order, as the index sorts them. */
function expected(filter: (run: RunDocument) => boolean): string[] {
  return runs
    .filter(filter)
    .sort((x, y) => Date.parse(y.createdAt) - Date.parse(x.createdAt) || (x.id < y.id ? 1 : -1))
    .map((r) => r.id);
}

describe('GET /v1/runs paging', () => {
  it('lists each of 60 concurrently created runs exactly once, newest first', async () => {
    const { ids, pages } = await pageAll('');
    expect(ids).toEqual(expected(() => true));
    expect(pages).toBeGreaterThanOrEqual(9);
  });

  it('pages exactly with the workflow filter, the status filter and both', async () => {
    const failed = (r: RunDocument) => r.status === 'failed';
    expect(runs.filter(failed).length).toBe(30);
    expect((await pageAll('&workflow=page-a')).ids).toEqual(expected((r) => r.workflow.name === 'page-a'));
    expect((await pageAll('&status=failed')).ids).toEqual(expected(failed));
    expect((await pageAll('&workflow=page-b&status=succeeded')).ids).toEqual(
      expected((r) => r.workflow.name === 'page-b' && r.status === 'succeeded'),
    );
  });

  it('refuses a malformed cursor or limit with a 400 naming it', async () => {
    const forged = (text: string) => Buffer.from(text).toString('base64url');
    for (const cursor of ['not a cursor', '1700000000000', forged('soon:run_x'), forged('12:bad id'), '']) {
      const res = await engine.request('GET', `/v1/runs?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.error.issues[0].path).toBe('cursor');
    }
    for (const limit of ['abc', '0', '-3', '2.5']) {
      const res = await engine.request('GET', `/v1/runs?limit=${limit}`);
      expect(res.status, limit).toBe(400);
      expect(res.body.error.issues[0].path).toBe('limit');
    }
    expect((await engine.request('GET', '/v1/runs?limit=5000')).body.runs.length).toBe(60);
  });
});

/**
 * Bounded submissions (issue 8): the body limit while streaming over a real socket, the alias
 * fan-in bomb and billion laughs, each limit named in the refusal, and a 10,000-step chain that
 * is accepted as one flow 10,000 deep.
 */
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { LIMITS } from '../../src/flows/limits.ts';
import { bullPrefix } from '../../src/store/index.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const prefix = testPrefix(import.meta.url);
let api: ConveyorApi;
beforeAll(async () => {
  api = await startApi({ redisUrl: redisUrl(), prefix, port: 0, logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await api.close();
  await dropPrefix(redisUrl(), prefix);
});

async function post(
  path: string,
  body: string,
  type = 'application/json',
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response JSON by path
): Promise<{ status: number; body: any }> {
  const res = await api.app.request(path, { method: 'POST', body, headers: { 'content-type': type } });
  return { status: res.status, body: await res.json() };
}

/** Sends `chunks` (a generator: the client never holds the body) and resolves with the answer. */
function sendOverSocket(
  headers: Record<string, string>,
  chunks?: () => Generator<Buffer>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: api.port, method: 'POST', path: '/v1/runs', headers });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        resolve({ status: res.statusCode!, body });
        req.destroy();
      });
    });
    // The server answers early and then closes the connection: write errors after that are expected.
    req.on('error', (err) => (req.writableEnded ? undefined : reject(err)));
    if (chunks)
      Readable.from(chunks())
        .pipe(req)
        .on('error', () => undefined);
    else req.flushHeaders();
  });
}

function rssMb(): number {
  global.gc?.();
  return process.memoryUsage().rss / 1e6;
}

describe('the body limit', () => {
  it('answers 413 to a 300 MB chunked body without holding it', async () => {
    const block = Buffer.alloc(64 * 1024, 'a');
    function* body() {
      yield Buffer.from('{"workflow": {"name": "big", "description": "');
      for (let sent = 0; sent < 300e6; sent += block.length) yield block;
      yield Buffer.from('"}}');
    }
    const before = rssMb();
    const res = await sendOverSocket(
      { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body,
    );
    const growth = rssMb() - before;
    expect(res.status).toBe(413);
    const error = JSON.parse(res.body).error;
    expect(error.code).toBe('too_large');
    expect(error.issues[0].message).toContain(String(LIMITS.bodyBytes));
    expect(growth).toBeLessThan(20);
  });

  it('refuses a declared Content-Length over the limit before reading anything', async () => {
    const res = await sendOverSocket({ 'content-type': 'application/json', 'content-length': String(300e6) });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error.message).toContain(`declares ${300e6} bytes`);
  });
});

describe('definitions over a limit', () => {
  it('refuses the alias fan-in bomb (500,000 edges in 156 KB) with RSS growth under 50 MB', async () => {
    const roots = Array.from({ length: 5000 }, (_, i) => `root-${String(i).padStart(5, '0')}`);
    const fanIn = Array.from({ length: 99 }, (_, i) => `  fan-${i + 1}: { run: x, needs: *all }`);
    const yaml = [
      'name: bomb',
      'steps:',
      ...roots.map((id) => `  ${id}: { run: x }`),
      `  fan-0: { run: x, needs: &all [${roots.join(', ')}] }`,
      ...fanIn,
    ].join('\n');
    expect(yaml.length).toBeGreaterThan(150_000);
    // The submission thread starts on first use: start it before measuring.
    expect(
      (await post('/v1/runs?dryRun=true', '{"workflow": {"name": "w", "steps": {"a": {"run": "x"}}}}'))
        .status,
    ).toBe(200);
    const before = rssMb();
    const res = await post('/v1/runs', `workflow:\n${yaml.replace(/^/gm, '  ')}`, 'application/yaml');
    const growth = rssMb() - before;
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('limit_exceeded');
    expect(res.body.error.issues[0].message).toContain(String(LIMITS.yamlNodes));
    expect(growth).toBeLessThan(50);
  });

  it('refuses a billion laughs with 400, not 500', async () => {
    const levels = 'bcdefghij'.split('');
    const lines = ['name: lol', 'a: &a [x, x, x, x, x, x, x, x, x]'];
    levels.forEach((l, i) => lines.push(`${l}: &${l} [${Array(9).fill(`*${'abcdefghij'[i]}`).join(', ')}]`));
    const res = await post('/v1/workflows', lines.join('\n'), 'application/yaml');
    expect(res.status).toBe(400);
    expect(res.body.error.issues.length).toBeGreaterThan(0);
  });

  it('counts needs in total and names the limit', async () => {
    const steps: Record<string, unknown> = {};
    const firsts = Array.from({ length: 150 }, (_, i) => `a${i}`);
    for (const id of firsts) steps[id] = { run: 'x' };
    for (let i = 0; i < 140; i++) steps[`b${i}`] = { run: 'x', needs: firsts };
    const res = await post('/v1/workflows', JSON.stringify({ name: 'edges', steps }));
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([
      {
        path: 'steps',
        message: `21000 needs in total (aliases expanded) is over the limit of ${LIMITS.edges}`,
      },
    ]);
  });

  it('names the steps, run, expression, string and depth limits', async () => {
    const tooMany = Object.fromEntries(
      Array.from({ length: LIMITS.steps + 1 }, (_, i) => [`s${i}`, { run: 'x' }]),
    );
    const many = await post('/v1/workflows', JSON.stringify({ name: 'many', steps: tooMany }));
    expect(many.body.error.issues[0]).toEqual({
      path: 'steps',
      message: `${LIMITS.steps + 1} steps is over the limit of ${LIMITS.steps}`,
    });
    const expr = `echo \${{ '${'x'.repeat(LIMITS.expressionBytes)}' }}`;
    const big = await post(
      '/v1/runs',
      JSON.stringify({
        workflow: { name: 'big', steps: { a: { run: 'x'.repeat(LIMITS.runBytes + 1) }, b: { run: expr } } },
      }),
    );
    expect(big.status).toBe(400);
    expect(big.body.error.code).toBe('limit_exceeded');
    expect(big.body.error.issues).toEqual([
      { path: 'workflow.steps.a.run', message: `run is over the limit of ${LIMITS.runBytes} bytes` },
      {
        path: 'workflow.steps.b.run',
        message: `an expression is over the limit of ${LIMITS.expressionBytes} bytes`,
      },
    ]);
    const long = await post(
      '/v1/runs',
      JSON.stringify({ workflow: { name: 'x'.repeat(LIMITS.stringBytes + 1) } }),
    );
    expect(long.body.error.issues).toEqual([
      { path: 'workflow.name', message: `string is over the limit of ${LIMITS.stringBytes} bytes` },
    ]);
    const deep = await post('/v1/runs', `{"workflow": ${'['.repeat(50)}${']'.repeat(50)}}`);
    expect(deep.status).toBe(400);
    expect(deep.body.error.issues[0].message).toBe(`nesting is deeper than the limit of ${LIMITS.depth}`);
  });

  it('bounds what every stored version keeps in its summary: the triggers and the description', async () => {
    const paths = Array.from({ length: 800 }, (_, i) => `services/${'x'.repeat(80)}-${i}/**`);
    const steps = { a: { run: 'true' } };
    const over = await post(
      '/v1/workflows',
      JSON.stringify({
        name: 'wide-on',
        description: 'd'.repeat(LIMITS.descriptionBytes + 1),
        on: { push: { paths } },
        steps,
      }),
    );
    expect(over.status).toBe(400);
    expect(over.body.error.code).toBe('limit_exceeded');
    expect(over.body.error.issues).toEqual([
      { path: 'description', message: `over the limit of ${LIMITS.descriptionBytes} bytes` },
      { path: 'on', message: `over the limit of ${LIMITS.triggersBytes} bytes (as JSON)` },
    ]);
    const within = await post(
      '/v1/workflows',
      JSON.stringify({
        name: 'wide-on',
        description: 'd'.repeat(LIMITS.descriptionBytes),
        on: { push: { paths: paths.slice(0, 100) } },
        steps,
      }),
    );
    expect(within.status).toBe(201);
  });

  it('refuses a NUL byte in a value or a key, with its path', async () => {
    const res = await post(
      '/v1/runs',
      JSON.stringify({
        workflow: { name: 'nul', env: { 'A\u0000': 'x' }, steps: { a: { run: 'echo a\u0000b' } } },
      }),
    );
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual(
      expect.arrayContaining([
        { path: 'workflow.steps.a.run', message: 'contains a NUL byte' },
        { path: 'workflow.env.A\u0000', message: 'a key contains a NUL byte' },
      ]),
    );
  });
});

describe('a 10,000-step chain', () => {
  it('is accepted and added as one flow 10,000 deep', async () => {
    const n = 10_000;
    const steps = Object.fromEntries(
      Array.from({ length: n }, (_, i) => [
        `s${i}`,
        i ? { needs: `s${i - 1}`, run: 'true' } : { run: 'true' },
      ]),
    );
    const res = await post('/v1/runs', JSON.stringify({ workflow: { name: 'chain', steps } }));
    expect(res.status).toBe(202);
    const runId: string = res.body.id;
    // Follow the parent links in Redis: s0 → s1 → … → s9999 → the run's root job.
    const redis = new Redis(redisUrl());
    try {
      const queueKey = `${bullPrefix(prefix)}:steps-local`;
      const pipeline = redis.pipeline();
      for (let i = 0; i < n; i++) pipeline.hget(`${queueKey}:${runId}.s${i}`, 'parentKey');
      const parents = (await pipeline.exec())!.map(([, value]) => value);
      const expected = Array.from({ length: n }, (_, i) =>
        i < n - 1 ? `${queueKey}:${runId}.s${i + 1}` : `${bullPrefix(prefix)}:runs:${runId}`,
      );
      expect(parents).toEqual(expected);
      expect(await redis.zscore(`${queueKey}:waiting-children`, `${runId}.s${n - 1}`)).not.toBeNull();
      expect(await redis.lpos(`${queueKey}:wait`, `${runId}.s0`)).not.toBeNull();
    } finally {
      redis.disconnect();
    }
  });
});

describe('the largest definitions off the event loop', () => {
  /** `LIMITS.steps - 2` roots and two steps needing all of them. */
  const dense = () => {
    const roots = Array.from({ length: LIMITS.steps - 2 }, (_, i) => `r${i}`);
    const steps: Record<string, { run: string; needs?: string[] }> = Object.fromEntries(
      roots.map((id) => [id, { run: 'true' }]),
    );
    steps.a = { run: 'true', needs: roots };
    steps.b = { run: 'true', needs: roots };
    return { name: 'dense', steps };
  };

  /** Sends `path` over a real socket and counts `/healthz` answers that arrive before it answers. */
  async function healthzDuring(path: string, body: string): Promise<{ status: number; answered: number }> {
    const base = `http://127.0.0.1:${api.port}`;
    let done = false;
    let answered = 0;
    const poll = (async () => {
      while (!done) {
        const res = await fetch(`${base}/healthz`);
        if (res.ok && !done) answered++;
        await res.arrayBuffer();
      }
    })();
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
    done = true;
    await poll;
    return { status: res.status, answered };
  }

  it('keeps answering /healthz while a dense 10,000-step definition is registered and run', async () => {
    const definition = JSON.stringify(dense());
    // Each phase proportional to the definition (parse, validate, digest, store, compile, add,
    // record) runs on the submission thread; the event loop stays free for other requests.
    const registered = await healthzDuring('/v1/workflows', definition);
    expect(registered.status).toBe(201);
    expect(registered.answered).toBeGreaterThan(0);
    const run = await healthzDuring('/v1/workflows/dense/runs', '{}');
    expect(run.status).toBe(202);
    expect(run.answered).toBeGreaterThan(0);
    // The thread added the run whole, and its record: every step there, the fan-ins behind the roots.
    const runs = (await (await api.app.request('/v1/runs?workflow=dense')).json()) as {
      runs: Array<{ id: string }>;
    };
    const doc = (await (await api.app.request(`/v1/runs/${runs.runs[0]!.id}`)).json()) as {
      steps: Record<string, { status: string }>;
    };
    expect(Object.keys(doc.steps)).toHaveLength(LIMITS.steps);
    expect(doc.steps.a!.status).toBe('pending');
  }, 120_000);
});

import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../../src/api/server.ts';
import { parseSecretKey } from '../../src/secrets/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { delivery, giteaPush, github, gitlabPush, gitlabTagPush, hmacHex } from '../support/webhooks.ts';

// No worker: these tests count the runs a delivery enqueues, they do not run them.
let engine: TestEngine;
beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    worker: false,
    webhookSecrets: ['current', 'previous'],
    secretKey: parseSecretKey(Buffer.alloc(32, 7).toString('base64')),
  });
});
afterAll(async () => engine.close());

const step = { steps: { a: { run: 'true' } } };
async function register(name: string, push: Record<string, unknown>) {
  const res = await engine.request('POST', '/v1/workflows', { name, on: { push }, ...step });
  expect(res.status).toBe(201);
}

/** Runs recorded and root jobs in BullMQ: both must move together. */
async function runCount(): Promise<number> {
  const recorded = await engine.api.deps.redis.zcard(engine.api.deps.store.keys.runs());
  const { prefix } = engine;
  const jobs = await engine.api.deps.redis.keys(`{${prefix}}:runs:run_*`);
  expect(new Set(jobs.map((k) => k.split(':')[2])).size).toBe(recorded);
  return recorded;
}

async function send(
  provider: 'github' | 'gitlab' | 'gitea',
  d: { body: string; headers: Record<string, string> },
) {
  return engine.request('POST', `/v1/hooks/${provider}`, d.body, d.headers);
}

const names = (body: { runs: Array<{ workflow: { name: string } }> }) =>
  body.runs.map((r) => r.workflow.name);

describe('webhook refusals', () => {
  it('answers 401 in the error shape and enqueues nothing for a bad, truncated, re-serialised or missing signature', async () => {
    await register('refusal-target', { repository: 'acme/app' });
    const payload = github.push({ repository: 'acme/app', branch: 'main' });
    const signed = delivery('github', payload, { secret: 'current' });
    const before = await runCount();
    const attempts: Array<[string, { body: string; headers: Record<string, string> }]> = [
      ['wrong secret', delivery('github', payload, { secret: 'wrong' })],
      [
        'truncated signature',
        {
          ...signed,
          headers: {
            ...signed.headers,
            'x-hub-signature-256': signed.headers['x-hub-signature-256']!.slice(0, 40),
          },
        },
      ],
      ['re-serialised body', { ...signed, body: JSON.stringify(JSON.parse(signed.body), null, 2) }],
      ['missing header', delivery('github', payload)],
      [
        'not hex',
        { ...signed, headers: { ...signed.headers, 'x-hub-signature-256': `sha256=${'zz'.repeat(32)}` } },
      ],
    ];
    for (const [what, d] of attempts) {
      const res = await send('github', d);
      expect(res.status, what).toBe(401);
      expect(res.body.error.code, what).toBe('unauthorized');
      expect(res.body.error.message, what).toMatch(/X-Hub-Signature-256/);
      expect(JSON.stringify(res.body), what).not.toContain('Hello-World');
    }
    const gitlab = await send('gitlab', delivery('gitlab', gitlabPush(), { secret: 'nope' }));
    expect(gitlab.status).toBe(401);
    const gitea = await send('gitea', delivery('gitea', giteaPush(), { secret: 'nope' }));
    expect(gitea.status).toBe(401);
    expect(await runCount()).toBe(before);
    // The same delivery, correctly signed, does start the run: the refusals were the signature.
    const ok = await send('github', signed);
    expect(ok.status).toBe(202);
    expect(names(ok.body)).toEqual(['refusal-target']);
    expect(await runCount()).toBe(before + 1);
  });

  it('logs nothing of a refused body, even at trace level', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
    const prefix = `${engine.prefix}-logs`;
    const api = await startApi({ redisUrl: redisUrl(), prefix, logger, webhookSecrets: ['current'] });
    try {
      const payload = github.push({ repository: 'secret-marker/app', branch: 'marker-branch' });
      for (const d of [delivery('github', payload, { secret: 'wrong' }), delivery('github', payload)]) {
        const res = await api.app.request('/v1/hooks/github', {
          method: 'POST',
          headers: d.headers,
          body: d.body,
        });
        expect(res.status).toBe(401);
      }
      expect(lines.length).toBeGreaterThan(0); // the logger does write (start-up lines)
      expect(lines.join('\n')).not.toMatch(/marker|Codertocat/);
    } finally {
      await api.close();
      await dropPrefix(redisUrl(), prefix);
    }
  });

  it('accepts every secret of a rotation, and per-repository stored secrets', async () => {
    await register('rotation-target', { repository: 'rot/app' });
    const payload = github.push({ repository: 'rot/app' });
    for (const secret of ['current', 'previous']) {
      const res = await send('github', delivery('github', payload, { secret }));
      expect(res.status, secret).toBe(202);
      expect(names(res.body)).toEqual(['rotation-target']);
    }
    expect((await send('github', delivery('github', payload, { secret: 'repo-a' }))).status).toBe(401);
    const put = await engine.request('PUT', '/v1/secrets/WEBHOOK_ROT_APP', { value: 'repo-a, repo-b' });
    expect(put.status).toBe(201);
    for (const secret of ['repo-a', 'repo-b']) {
      expect((await send('github', delivery('github', payload, { secret }))).status, secret).toBe(202);
    }
    // A repository's secret signs only deliveries that name that repository.
    const elsewhere = github.push({ repository: 'other/app' });
    expect((await send('github', delivery('github', elsewhere, { secret: 'repo-a' }))).status).toBe(401);
  });
});

describe('webhook deliveries', () => {
  it('answers ping with 200 and other events with 202, starting nothing', async () => {
    const before = await runCount();
    const ping = await send(
      'github',
      delivery('github', github.ping(), { secret: 'current', event: 'ping' }),
    );
    expect(ping.status).toBe(200);
    expect(ping.body).toMatchObject({ event: 'ping', ok: true });
    const issues = await send(
      'github',
      delivery('github', { action: 'opened' }, { secret: 'current', event: 'issues' }),
    );
    expect(issues.status).toBe(202);
    expect(issues.body.runs).toEqual([]);
    const mr = await send(
      'gitlab',
      delivery('gitlab', {}, { secret: 'current', event: 'Merge Request Hook' }),
    );
    expect(mr.status).toBe(202);
    expect(await runCount()).toBe(before);
  });

  it('starts nothing new on a redelivery and answers with the first delivery’s runs', async () => {
    await register('redelivery-target', { repository: 'redo/app' });
    const d = delivery('github', github.push({ repository: 'redo/app' }), { secret: 'current' });
    const first = await send('github', d);
    expect(first.status).toBe(202);
    expect(first.body.runs).toHaveLength(1);
    const count = await runCount();
    const again = await send('github', d);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    // A redelivery after a new workflow appeared still starts nothing new.
    await register('redelivery-late', { repository: 'redo/app' });
    expect((await send('github', d)).body.runs).toEqual(first.body.runs);
    expect(await runCount()).toBe(count);
    const run = await engine.request('GET', `/v1/runs/${first.body.runs[0].id}`);
    expect(run.body.trigger).toMatchObject({
      type: 'push',
      provider: 'github',
      repository: 'redo/app',
      branch: 'master',
      deliveryId: d.headers['x-github-delivery'],
    });
  });

  it('starts one run for the same delivery sent several times at once', async () => {
    await register('concurrent-target', { repository: 'race/app' });
    const d = delivery('github', github.push({ repository: 'race/app' }), { secret: 'current' });
    const before = await runCount();
    const answers = await Promise.all(Array.from({ length: 5 }, () => send('github', d)));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    expect(new Set(answers.map((a) => a.body.runs[0].id)).size).toBe(1);
    expect(await runCount()).toBe(before + 1);
  });

  it('lists a matching workflow that cannot start (an input without a default) as refused', async () => {
    const res = await engine.request('POST', '/v1/workflows', {
      name: 'needs-input',
      inputs: { target: { type: 'string', required: true } },
      on: { push: { repository: 'inputs/app' } },
      ...step,
    });
    expect(res.status).toBe(201);
    await register('no-input', { repository: 'inputs/app' });
    const hook = await send(
      'github',
      delivery('github', github.push({ repository: 'inputs/app' }), { secret: 'current' }),
    );
    expect(hook.status).toBe(202);
    expect(names(hook.body)).toEqual(['no-input']);
    expect(hook.body.refused).toEqual([
      { workflow: 'needs-input', message: expect.stringMatching(/target/) },
    ]);
  });

  it('starts three workflows matching one push, and only those', async () => {
    await register('three-a', { repository: 'many/app' });
    await register('three-b', { repository: 'many/app', branches: ['ma*'] });
    await register('three-c', { repository: 'many/app', paths: ['README.md'] });
    await register('three-no-branch', { repository: 'many/app', branches: ['develop'] });
    await register('three-no-path', { repository: 'many/app', paths: ['src/**'] });
    await register('three-no-tag', { repository: 'many/app', tags: ['*'] });
    const res = await send(
      'github',
      delivery('github', github.push({ repository: 'many/app' }), { secret: 'current' }),
    );
    expect(res.status).toBe(202);
    expect(names(res.body)).toEqual(['three-a', 'three-b', 'three-c']);
    expect(new Set(res.body.runs.map((r: { id: string }) => r.id)).size).toBe(3);
  });

  it('filters tags, deletions and paths through the API, for GitHub, GitLab and Gitea', async () => {
    await register('tags-only', { repository: 'Codertocat/Hello-World', tags: ['simple-*'] });
    await register('deletions', { repository: 'Codertocat/Hello-World', deleted: true, tags: ['*'] });
    await register('docs', { repository: 'gitea/webhooks', paths: ['docs/**'] });
    await register('src', { repository: 'gitea/webhooks', paths: ['src/**'] });
    await register('gl-master', { repository: 'mike/diaspora', branches: ['master'], paths: ['README.md'] });
    await register('gl-tags', { repository: 'mike/diaspora', tags: ['v1.*'] });
    const hook = (p: 'github' | 'gitlab' | 'gitea', payload: unknown, event?: string) =>
      send(p, delivery(p, payload, { secret: 'current', event }));
    // `deleted: true` adds deletions to what the workflow's filters already match.
    expect(names((await hook('github', github.tagPush())).body)).toEqual(['deletions', 'tags-only']);
    expect(names((await hook('github', github.tagDeletion())).body)).toEqual(['deletions']);
    expect(names((await hook('github', github.branchDeletion('gone'))).body)).toEqual([]);
    expect(names((await hook('gitea', giteaPush())).body)).toEqual(['docs']);
    expect(names((await hook('gitlab', gitlabPush())).body)).toEqual(['gl-master']);
    expect(names((await hook('gitlab', gitlabTagPush(), 'Tag Push Hook')).body)).toEqual(['gl-tags']);
  });

  it('refuses a signed but malformed push with 400 and the field’s path, and form-encoded bodies with 415', async () => {
    const payload = github.push();
    delete payload.after;
    const bad = await send('github', delivery('github', payload, { secret: 'current' }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path)).toContain('after');
    const form = delivery('github', null, { secret: 'current', body: 'payload=%7B%7D' });
    form.headers['content-type'] = 'application/x-www-form-urlencoded';
    form.headers['x-hub-signature-256'] = `sha256=${hmacHex('current', form.body)}`;
    const refused = await send('github', form);
    expect(refused.status).toBe(415);
    expect(refused.body.error.message).toMatch(/application\/json/);
    expect((await engine.request('POST', '/v1/hooks/bitbucket', '{}')).status).toBe(404);
  });
});

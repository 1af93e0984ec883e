/**
 * The run viewer (`GET /ui`) in a real headless Chromium against a real API socket and worker
 * (local and SSH executors, a real sshd): the token asked for once, the runs list and its
 * filters, a run's DAG changing colour live, a step's log following live, per host of a fan-out
 * step, Cancel and Retry by role, hostile names and logs shown as text, a 500-step run, themes
 * and a phone's width. Every other host is unresolvable for the browser: the page needs nothing
 * from outside. Screenshots go to test/artifacts/ui/ (git-ignored). Outside CI the browser tests
 * skip, saying so, where /usr/bin/chromium is absent.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTokens } from '../../src/api/auth/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { UI_CSP } from '../../src/api/ui/index.ts';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import type { RunDocument } from '../../src/store/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { inventoryResolver, SshExecutor } from '../../src/workers/ssh/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { CHROMIUM, LOOPBACK_ONLY, launchChromium } from '../support/browser.ts';
import { waitForRunEnd } from '../support/engine.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { type SshdHandle, startSshd } from '../support/sshd.ts';

// biome-ignore lint/suspicious/noExplicitAny: the page's globals (tsconfig has no DOM library); run in Chromium
type Browser = any;
const available = existsSync(CHROMIUM) || process.env.CI === 'true';
if (!available)
  console.warn(`ui.test.ts: browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const prefix = testPrefix(import.meta.url);
const READ = 'read-token-ui-0123456789';
const RUN = 'run-token-ui-0123456789';
const ADMIN = 'admin-token-ui-0123456789';
const ARTIFACTS = new URL('../artifacts/ui/', import.meta.url).pathname;
const logger = pino({ level: 'silent' });
const secretKey = parseSecretKey(generateSecretKey());
const apiOptions = {
  redisUrl: redisUrl(),
  prefix,
  logger,
  secretKey,
  tokens: parseTokens(`read:${READ},run:${RUN},admin:${ADMIN}`, 'CONVEYOR_API_TOKENS'),
};
let api: ConveyorApi;
let worker: ConveyorWorker;
let sshd: SshdHandle | undefined;
let context: BrowserContext;
let dir: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  api = await startApi({ ...apiOptions, port: 0 });
  if (!available) return;
  dir = await mkdtemp(join(tmpdir(), 'conveyor-ui-'));
  await chmod(dir, 0o777); // the SSH user writes here
  worker = await startWorker({
    redisUrl: redisUrl(),
    prefix,
    logger,
    secretKey,
    executors: ({ inventory, secrets }) => [
      new LocalExecutor({ killGraceMs: 1000 }),
      new SshExecutor({
        onTrust: (host, keyLine) => inventory.recordHostKey(host, keyLine),
        resolveHost: inventoryResolver({ inventory, secrets }),
      }),
    ],
  });
  sshd = await startSshd();
  expect((await call('PUT', '/v1/secrets/ui_key', { value: sshd.clientKey }, ADMIN)).status).toBe(201);
  for (const name of ['web-1', 'web-2']) {
    const host = sshd.inventoryEntry('ui_key', { groups: ['web'] });
    expect((await call('PUT', `/v1/hosts/${name}`, host, ADMIN)).status).toBe(201);
  }
  await mkdir(ARTIFACTS, { recursive: true });
  context = await launchChromium(join(dir, 'profile'), {
    viewport: { width: 1280, height: 800 },
    args: [LOOPBACK_ONLY],
  });
}, 60_000);

afterAll(async () => {
  await context?.close();
  await worker?.close();
  await api?.close();
  await sshd?.stop();
  await dropPrefix(redisUrl(), prefix);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  token?: string,
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response JSON by path
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text,
  };
}

async function submit(workflow: unknown): Promise<RunDocument> {
  const res = await call('POST', '/v1/runs', { workflow }, RUN);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body as RunDocument;
}

const waitForEnd = (runId: string) => waitForRunEnd(api, runId);

/** A page whose tab already holds `token` (as after the prompt), failing the test on any page error. */
async function openPage(token: string | undefined, width = 1280, height = 800): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  if (token)
    await page.addInitScript(
      (t) => (globalThis as Browser).sessionStorage.setItem('conveyor.token', t),
      token,
    );
  page.on('pageerror', (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  page.on('dialog', (dialog) => {
    pageErrors.push(`unexpected ${dialog.type()} dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return page;
}

function node(page: Page, step: string) {
  return page.locator(`g.node[data-step="${step}"]`);
}

const flag = (name: string) => `while [ ! -e ${join(dir, name)} ]; do sleep 0.05; done`;
const release = (name: string) => writeFileSync(join(dir, name), '');

describe('the run viewer over HTTP', () => {
  it('serves the page and its files without a token, each with a CSP allowing only this origin', async () => {
    const res = await fetch(`${api.url}/ui`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(UI_CSP);
    expect(UI_CSP).toContain("script-src 'self'");
    expect(UI_CSP).not.toContain('unsafe');
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect([...html.matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1])).toEqual(['ui/main.js']);
    // Every module the page imports, followed from main.js.
    const seen = new Set<string>();
    const queue = ['main.js'];
    while (queue.length) {
      const file = queue.shift()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const script = await fetch(`${api.url}/ui/${file}`);
      expect(script.status, file).toBe(200);
      expect(script.headers.get('content-type'), file).toMatch(/^text\/javascript/);
      expect(script.headers.get('x-content-type-options')).toBe('nosniff');
      const text = await script.text();
      expect(text, file).not.toMatch(/\binnerHTML\b|insertAdjacentHTML|document\.write|\beval\(/);
      for (const m of text.matchAll(/^import [^'"]*'\.\/([a-z-]+\.js)'/gm)) queue.push(m[1]!);
    }
    expect(seen).toContain('dagre.js');
    expect(seen.size).toBeGreaterThan(8);
    expect((await fetch(`${api.url}/ui/app.css`)).status).toBe(200);
    expect((await fetch(`${api.url}/ui/missing.js`)).status).toBe(404);
    // Only the listed files: nothing else of the package or the disk is reachable.
    expect((await fetch(`${api.url}/ui/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${api.url}/ui/index.ts`)).status).toBe(404);
    expect((await fetch(`${api.url}/v1/runs`)).status).toBe(401);
  });

  it('parses SSE however the bytes are split: comments, CRLF, multi-line data, a CRLF cut in two', async () => {
    // The page's own module (plain JS with no browser globals at load), run here in Node.
    const { SseParser } = await import(new URL('../../src/api/ui/assets/sse.js', import.meta.url).href);
    const seen: unknown[] = [];
    const parser = new SseParser((e: unknown) => seen.push(e));
    const chunks = [
      'id: 1\ndata: {"a"',
      ':1}\n\n: keep-alive\n\nid: 2\r',
      '\nevent: x\r\ndata: a\r\ndata:b\r\n',
      '\r\n',
    ];
    for (const chunk of chunks) parser.push(chunk);
    expect(seen).toEqual([
      { id: '1', event: 'message', data: '{"a":1}' },
      { id: '2', event: 'x', data: 'a\nb' },
    ]);
  });

  it('tells the token its role at GET /v1/whoami', async () => {
    expect((await call('GET', '/v1/whoami')).status).toBe(401);
    expect((await call('GET', '/v1/whoami', undefined, READ)).body).toEqual({
      role: 'read',
      authentication: true,
    });
    expect((await call('GET', '/v1/whoami', undefined, RUN)).body).toEqual({
      role: 'run',
      authentication: true,
    });
    expect((await call('GET', '/v1/whoami', undefined, ADMIN)).body).toEqual({
      role: 'admin',
      authentication: true,
    });
  });

  it('says every request may do everything when authentication is off', async () => {
    const open = await startApi({ redisUrl: redisUrl(), prefix, logger: pino({ level: 'silent' }) });
    try {
      const res = await open.app.request('/v1/whoami');
      expect(await res.json()).toEqual({ role: 'admin', authentication: false });
    } finally {
      await open.close();
    }
  });

  it('puts needs and names of steps in the run document: the DAG the page draws', async () => {
    const res = await call(
      'POST',
      '/v1/runs',
      {
        workflow: {
          name: 'ui-doc',
          steps: {
            a: { name: 'Build it', run: 'true', runsOn: ['nowhere'] },
            b: { needs: 'a', run: 'true' },
          },
        },
      },
      RUN,
    );
    expect(res.status).toBe(202);
    expect(res.body.steps.a).toMatchObject({ needs: [], name: 'Build it' });
    expect(res.body.steps.b).toMatchObject({ needs: ['a'] });
    expect(res.body.steps.b.name).toBeUndefined();
    expect((await call('POST', `/v1/runs/${res.body.id}/cancel`, undefined, RUN)).status).toBe(202);
  });
});

describe.skipIf(!available)('the run viewer in Chromium', () => {
  it('asks for a token once, keeps it for the tab, and lists runs filtered by workflow and status', async () => {
    const ok = await submit({ name: 'ui-list-ok', steps: { a: { run: 'true' } } });
    const bad = await submit({ name: 'ui-list-bad', steps: { a: { run: 'exit 3' } } });
    await waitForEnd(ok.id);
    await waitForEnd(bad.id);
    const page = await openPage(undefined);
    await page.goto(`${api.url}/ui`);
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.fill('#token-input', 'not-a-token');
    await page.click('#token-form button[type="submit"]');
    // Refused: asked again, saying why.
    await page.locator('#token-reason', { hasText: 'refused' }).waitFor();
    await page.fill('#token-input', READ);
    await page.click('#token-form button[type="submit"]');
    await dialog.waitFor({ state: 'hidden' });
    await page.locator('#who', { hasText: 'role: read' }).waitFor();
    const row = (id: string) =>
      page.locator('table.runs tr', { has: page.locator(`a[href="#/runs/${id}"]`) });
    await row(ok.id).waitFor();
    await expect(row(ok.id).locator('td').allTextContents()).resolves.toEqual([
      '✓ succeeded',
      'ui-list-ok ad hoc',
      ok.id,
      expect.stringMatching(/\d( ms| s)$/),
      'http',
      expect.any(String),
    ]);
    await page.screenshot({ path: join(ARTIFACTS, 'runs-list.png') });
    await page.selectOption('#filter-status', 'failed');
    await row(bad.id).waitFor();
    await expect(row(ok.id).count()).resolves.toBe(0);
    expect(page.url()).toContain('status=failed');
    await page.fill('#filter-workflow', 'ui-list-ok');
    await page.press('#filter-workflow', 'Enter');
    await page.getByText('No runs match.').waitFor();
    await page.selectOption('#filter-status', '');
    await row(ok.id).waitFor();
    await expect(row(bad.id).count()).resolves.toBe(0);
    // The same tab reloads without asking again; the token is in session storage only.
    await page.reload();
    await row(ok.id).waitFor();
    expect(await dialog.isVisible()).toBe(false);
    expect(
      await page.evaluate(() => (globalThis as Browser).localStorage.getItem('conveyor.token')),
    ).toBeNull();
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it('asks for nothing when authentication is off, and offers every action', async () => {
    const open = await startApi({ redisUrl: redisUrl(), prefix, logger, port: 0 });
    try {
      const run = await submit({ name: 'ui-open', steps: { wait: { run: flag('open-go') } } });
      const page = await openPage(undefined);
      await page.goto(`${open.url}/ui#/runs/${run.id}`);
      await page.locator('#who', { hasText: 'no authentication' }).waitFor();
      await node(page, 'wait').and(page.locator('.status-running')).waitFor();
      await page.getByRole('button', { name: 'Cancel run' }).click();
      await node(page, 'wait').and(page.locator('.status-cancelled')).waitFor();
      expect(await page.locator('#token-dialog').isVisible()).toBe(false);
      expect(await page.locator('#forget').isVisible()).toBe(false);
      await page.close();
    } finally {
      await open.close();
    }
    expect(pageErrors).toEqual([]);
  });

  it('shows a run live: nodes change colour as steps finish and a step’s log follows live', async () => {
    const run = await submit({
      name: 'ui-live',
      steps: {
        build: { run: `echo "compiling part one"\n${flag('build-go')}\necho "compiling part two"` },
        test: { needs: 'build', run: flag('test-go') },
        ship: { needs: 'test', run: 'echo shipped' },
      },
    });
    const page = await openPage(READ);
    await page.goto(`${api.url}/ui#/runs/${run.id}`);
    await node(page, 'build').and(page.locator('.status-running')).waitFor();
    await expect(node(page, 'test').getAttribute('class')).resolves.toMatch(/status-pending/);
    await node(page, 'build').click();
    const log = page.locator('#details pre.log');
    await log.getByText('compiling part one').waitFor();
    await page.getByText('Following live.').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'run-live-running.png') });
    release('build-go');
    // The log follows, and the graph changes colour step by step without a reload.
    await log.getByText('compiling part two').waitFor();
    await node(page, 'build').and(page.locator('.status-succeeded')).waitFor();
    await node(page, 'test').and(page.locator('.status-running')).waitFor();
    await page.getByText('Complete.').waitFor();
    expect(await log.textContent()).toBe('compiling part one\ncompiling part two\n');
    const facts = await page
      .locator('#details dl.facts')
      .evaluate((dl) =>
        Object.fromEntries(
          [...dl.querySelectorAll('dt')].map((dt: Browser) => [
            dt.textContent,
            dt.nextElementSibling.textContent,
          ]),
        ),
      );
    expect(facts).toMatchObject({
      id: 'build',
      status: '✓ succeeded',
      executor: 'local',
      attempts: '1',
      'exit code': '0',
    });
    release('test-go');
    await node(page, 'ship').and(page.locator('.status-succeeded')).waitFor();
    await page.locator('.run-head .badge.status-succeeded').waitFor();
    expect(page.url()).toContain('step=build');
    await page.screenshot({ path: join(ARTIFACTS, 'run-live-succeeded.png') });
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it('resumes the event stream with Last-Event-ID after an API restart: nothing missed or shown twice', async () => {
    const run = await submit({
      name: 'ui-restart',
      steps: {
        build: { run: `echo "before the restart"\n${flag('restart-go')}\necho "after the restart"` },
        ship: { needs: 'build', run: 'true' },
      },
    });
    const page = await openPage(READ);
    const streams: Array<string | undefined> = [];
    page.on('request', (request) => {
      if (request.url().endsWith(`/v1/runs/${run.id}/events`))
        streams.push(request.headers()['last-event-id']);
    });
    await page.goto(`${api.url}/ui#/runs/${run.id}?step=build`);
    const log = page.locator('#details pre.log');
    await log.getByText('before the restart').waitFor();
    await page.locator('.conn', { hasText: 'Live' }).waitFor();
    // The API goes away under the open stream and a new one takes the same port.
    const port = api.port!;
    await api.close();
    api = await startApi({ ...apiOptions, port });
    release('restart-go');
    await node(page, 'ship').and(page.locator('.status-succeeded')).waitFor();
    await log.getByText('after the restart').waitFor();
    expect(await log.textContent()).toBe('before the restart\nafter the restart\n');
    expect(streams.length).toBeGreaterThan(1);
    expect(streams[0]).toBeUndefined();
    expect(streams.at(-1)).toMatch(/^\d+-\d+$/);
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it('shows each attempt’s log of a retried step', async () => {
    const run = await submit({
      name: 'ui-attempts',
      steps: {
        flaky: {
          retries: { attempts: 2, delay: '100ms' },
          run: `if [ -e ${join(dir, 'flaky-once')} ]; then echo "second try"; else touch ${join(dir, 'flaky-once')}; echo "first try"; exit 1; fi`,
        },
      },
    });
    await waitForEnd(run.id);
    const page = await openPage(READ);
    await page.goto(`${api.url}/ui#/runs/${run.id}?step=flaky`);
    const log = page.locator('#details pre.log');
    await log.getByText('second try').waitFor();
    await page.selectOption('#attempt', '1');
    await log.getByText('first try').waitFor();
    expect(await log.textContent()).toBe('first try\n');
    expect(page.url()).toContain('attempt=1');
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it('a fan-out step is one node with counts per status, expandable to its hosts, with a log per host', async () => {
    const run = await submit({
      name: 'deploy-web',
      steps: {
        build: { name: 'Build app.tgz', run: 'echo "built app.tgz"' },
        lint: { run: 'echo "3 warnings"; exit 1', continueOnError: true },
        deploy: {
          name: 'Deploy to web',
          needs: 'build',
          hosts: 'web',
          run: `echo "deploying on $CONVEYOR_HOST"\nif [ "$CONVEYOR_HOST" = web-2 ]; then ${flag('web2-go')}; fi`,
        },
        smoke: { needs: ['deploy', 'lint'], run: 'echo "smoke test passed"' },
      },
    });
    const page = await openPage(READ);
    await page.goto(`${api.url}/ui#/runs/${run.id}`);
    const deploy = node(page, 'deploy');
    await deploy.locator('.counts', { hasText: '▶1 running  ✓1 succeeded' }).waitFor();
    await deploy.locator('.toggle').click();
    await node(page, 'deploy').locator('.instance.status-succeeded', { hasText: 'web-1' }).waitFor();
    await node(page, 'deploy').locator('.instance.status-running', { hasText: 'web-2' }).waitFor();
    await node(page, 'deploy').locator('.box').click();
    const log = page.locator('#details pre.log');
    await log.getByText('deploying on web-1').waitFor();
    await page.locator('.instance-btn', { hasText: 'web-2' }).click();
    await log.getByText('deploying on web-2').waitFor();
    expect(page.url()).toContain('host=web-2');
    await node(page, 'lint').and(page.locator('.status-failed')).waitFor();
    await expect(node(page, 'smoke').getAttribute('class')).resolves.toMatch(/status-pending/);
    // The README's picture (docs/ui-run.png) is this one.
    await page.screenshot({ path: join(ARTIFACTS, 'run-fanout.png') });
    release('web2-go');
    await node(page, 'deploy').locator('.counts', { hasText: '✓2 succeeded' }).waitFor();
    await node(page, 'deploy').and(page.locator('.status-succeeded')).waitFor();
    await node(page, 'smoke').and(page.locator('.status-succeeded')).waitFor();
    expect(await log.textContent()).toBe('deploying on web-2\n');
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it('offers Cancel and Retry to a run token only; a read token never sees them', async () => {
    const run = await submit({ name: 'ui-cancel', steps: { wait: { run: flag('never') } } });
    const reader = await openPage(READ);
    await reader.goto(`${api.url}/ui#/runs/${run.id}`);
    await node(reader, 'wait').and(reader.locator('.status-running')).waitFor();
    await expect(reader.getByRole('button', { name: 'Cancel run' }).isVisible()).resolves.toBe(false);
    const runner = await openPage(RUN);
    await runner.goto(`${api.url}/ui#/runs/${run.id}`);
    await runner.locator('#who', { hasText: 'role: run' }).waitFor();
    await runner.getByRole('button', { name: 'Cancel run' }).click();
    // Both pages follow the same stream: the cancel shows in each.
    await node(runner, 'wait').and(runner.locator('.status-cancelled')).waitFor();
    await node(reader, 'wait').and(reader.locator('.status-cancelled')).waitFor();
    await expect(reader.getByRole('button', { name: 'Retry run' }).isVisible()).resolves.toBe(false);
    await runner.getByRole('button', { name: 'Retry run' }).click();
    await runner.waitForURL((url) => !url.hash.includes(run.id));
    const retried = decodeURIComponent(new URL(runner.url()).hash.replace('#/runs/', ''));
    expect(retried).toMatch(/^run_/);
    expect((await call('GET', `/v1/runs/${retried}`, undefined, READ)).body.trigger).toEqual({
      type: 'retry',
      runId: run.id,
    });
    await node(runner, 'wait').and(runner.locator('.status-running')).waitFor();
    await runner.getByRole('button', { name: 'Cancel run' }).click();
    await node(runner, 'wait').and(runner.locator('.status-cancelled')).waitFor();
    await reader.close();
    await runner.close();
    expect(pageErrors).toEqual([]);
  });

  it('shows hostile step names and log lines as text, never as markup', async () => {
    const hostile = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
    const line = '<script>window.__pwned=2</script><svg onload="window.__pwned=3"></svg>&amp; done';
    const run = await submit({
      name: 'ui-hostile',
      steps: { evil: { name: hostile, run: `printf '%s\\n' '${line}'` } },
    });
    await waitForEnd(run.id);
    const page = await openPage(READ);
    await page.goto(`${api.url}/ui#/runs/${run.id}?step=evil`);
    const log = page.locator('#details pre.log');
    await log.getByText('done').waitFor();
    expect(await log.textContent()).toBe(`${line}\n`);
    expect(await page.locator('#details h2').textContent()).toBe(hostile);
    expect(await node(page, 'evil').locator('title').textContent()).toBe(`${hostile} (evil)`);
    expect(await page.locator('main img, main b, main script, pre svg').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as Browser).__pwned)).toBeUndefined();
    await page.screenshot({ path: join(ARTIFACTS, 'run-hostile.png') });
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it('draws a 500-step run, measured in the page from navigation to every node drawn', async () => {
    const steps: Record<string, { run: string; needs?: string[]; runsOn: string[] }> = {};
    // 50 layers of 10; each step needs two of the layer before. No worker serves the tag, so
    // the run stays as it is drawn.
    for (let layer = 0; layer < 50; layer++) {
      for (let i = 0; i < 10; i++) {
        const needs = layer === 0 ? undefined : [`s${layer - 1}_${i}`, `s${layer - 1}_${(i * 7 + 3) % 10}`];
        steps[`s${layer}_${i}`] = { run: 'true', runsOn: ['nowhere'], ...(needs && { needs }) };
      }
    }
    const run = await submit({ name: 'ui-500', steps });
    const figures: number[] = [];
    for (let i = 0; i < 3; i++) {
      const page = await openPage(READ);
      await page.goto(`${api.url}/ui#/runs/${run.id}`);
      await page.waitForFunction(() => (globalThis as Browser).document.documentElement.dataset.graphDrawn);
      expect(await page.locator('g.node').count()).toBe(500);
      // Where the time goes: reading the run, the layout, then building and painting the SVG.
      const phases = await page.evaluate(
        (doc) =>
          (globalThis as Browser).performance
            .getEntries()
            .filter((e: Browser) => e.name.startsWith('conveyor:') || e.name.endsWith(doc))
            .map(
              (e: Browser) =>
                `${e.name.startsWith('conveyor:') ? e.name : 'GET run'} ${Math.round(e.startTime)}+${Math.round(e.duration)}`,
            ),
        `/v1/runs/${run.id}`,
      );
      console.log(`ui.test.ts: phases (start+duration ms): ${phases.join(', ')}`);
      figures.push(
        await page.evaluate(
          () => (globalThis as Browser).performance.getEntriesByName('conveyor:graph-drawn')[0].startTime,
        ),
      );
      if (i === 0) await page.screenshot({ path: join(ARTIFACTS, 'run-500.png') });
      await page.close();
    }
    // A figure, not an assertion (speed is for benchmarks): the issue asks for under 2 s.
    console.log(`ui.test.ts: 500-step run drawn in ${figures.map((f) => `${Math.round(f)} ms`).join(', ')}`);
    writeFileSync(join(ARTIFACTS, 'render-500.json'), JSON.stringify({ steps: 500, ms: figures }));
    expect((await call('POST', `/v1/runs/${run.id}/cancel`, undefined, RUN)).status).toBe(202);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('has light and dark themes, and fits 1280×800 and a 390 px phone', async () => {
    const run = await submit({
      name: 'ui-theme',
      steps: {
        build: { run: 'echo built' },
        test: { needs: 'build', run: 'echo tested' },
        lint: { needs: 'build', run: 'echo linted' },
        ship: { needs: ['test', 'lint'], run: 'echo shipped' },
      },
    });
    await waitForEnd(run.id);
    const page = await openPage(READ);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${api.url}/ui#/runs/${run.id}?step=ship`);
    await page.locator('#details pre.log').getByText('shipped').waitFor();
    const background = () =>
      page.evaluate(
        () => (globalThis as Browser).getComputedStyle((globalThis as Browser).document.body).backgroundColor,
      );
    const light = await background();
    await page.screenshot({ path: join(ARTIFACTS, 'run-light-1280.png') });
    await page.click('#theme');
    expect(await page.evaluate(() => (globalThis as Browser).document.documentElement.dataset.theme)).toBe(
      'dark',
    );
    const dark = await background();
    expect(dark).not.toBe(light);
    await page.screenshot({ path: join(ARTIFACTS, 'run-dark-1280.png') });
    // The choice is kept; without one, the system's preference rules.
    await page.reload();
    await page.locator('#details pre.log').getByText('shipped').waitFor();
    expect(await background()).toBe(dark);
    await page.evaluate(() => (globalThis as Browser).localStorage.removeItem('conveyor.theme'));
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.reload();
    await page.locator('#details pre.log').getByText('shipped').waitFor();
    expect(await background()).toBe(dark);
    // Side by side at 1280 px: the graph left of the details.
    const graph = (await page.locator('#graph').boundingBox())!;
    const details = (await page.locator('#details').boundingBox())!;
    expect(details.x).toBeGreaterThan(graph.x + graph.width - 1);
    await page.close();

    const phone = await openPage(READ, 390, 844);
    await phone.emulateMedia({ colorScheme: 'light' });
    await phone.goto(`${api.url}/ui#/runs/${run.id}?step=ship`);
    await phone.locator('#details pre.log').getByText('shipped').waitFor();
    // Stacked: the details under the graph, and nothing wider than the screen.
    const g = (await phone.locator('#graph').boundingBox())!;
    const d = (await phone.locator('#details').boundingBox())!;
    expect(d.y).toBeGreaterThanOrEqual(g.y + g.height);
    expect(d.width).toBeLessThanOrEqual(390);
    expect(
      await phone.evaluate(() => (globalThis as Browser).document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(390);
    await phone.screenshot({ path: join(ARTIFACTS, 'run-phone-390.png'), fullPage: true });
    await phone.goto(`${api.url}/ui#/`);
    await phone.locator('table.runs').waitFor();
    expect(
      await phone.evaluate(() => (globalThis as Browser).document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(390);
    await phone.screenshot({ path: join(ARTIFACTS, 'runs-phone-390.png') });
    await phone.close();
    expect(pageErrors).toEqual([]);
  });
});

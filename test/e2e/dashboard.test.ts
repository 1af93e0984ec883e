/**
 * bull-board in a real headless Chromium against a real API socket and worker: log in through
 * the form, see every Conveyor queue, open a finished run's jobs by their `workflow/step` names.
 * Screenshots go to test/artifacts/ (git-ignored). Outside CI the test skips, saying so, where
 * /usr/bin/chromium is absent; in CI (`CI=true`) it always runs, and `.ci/run` installs it.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/api/admin/login.ts';
import { parseTokens } from '../../src/api/auth/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import { queueNames } from '../../src/flows/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { CHROMIUM, launchChromium } from '../support/browser.ts';
import { waitForRunEnd } from '../support/engine.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';

const available = existsSync(CHROMIUM) || process.env.CI === 'true';
if (!available) console.warn(`dashboard.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const prefix = testPrefix(import.meta.url);
const ADMIN = 'admin-token-dashboard-0123456789';
const READ = 'read-token-dashboard-0123456789';
const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
let api: ConveyorApi;
let worker: ConveyorWorker;
let context: BrowserContext;
let profile: string;
let runId: string;
const failedAssets: string[] = [];

beforeAll(async () => {
  if (!available) return;
  const logger = pino({ level: 'silent' });
  api = await startApi({
    redisUrl: redisUrl(),
    prefix,
    port: 0,
    logger,
    tokens: parseTokens(`read:${READ},admin:${ADMIN}`, 'CONVEYOR_API_TOKENS'),
  });
  worker = await startWorker({ redisUrl: redisUrl(), prefix, executors: [new LocalExecutor()], logger });
  const res = await fetch(`${api.url}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      workflow: {
        name: 'dash-demo',
        steps: { build: { run: 'echo built' }, ship: { needs: ['build'], run: 'true' } },
      },
    }),
  });
  expect(res.status).toBe(202);
  runId = ((await res.json()) as { id: string }).id;
  await waitForRunEnd(api, runId);
  await mkdir(ARTIFACTS, { recursive: true });
  profile = await mkdtemp(join(tmpdir(), 'conveyor-chromium-'));
  context = await launchChromium(profile);
  context.on('response', (response) => {
    if (response.url().includes('/admin/queues/static/') && response.status() !== 200) {
      failedAssets.push(`${response.status()} ${response.url()}`);
    }
  });
});

afterAll(async () => {
  if (!available) return;
  await context?.close();
  await worker?.close();
  await api?.close();
  await dropPrefix(redisUrl(), prefix);
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function logIn(page: Page, token: string) {
  await page.goto(`${api.url}/admin/queues`);
  expect(new URL(page.url()).pathname).toBe('/admin/login');
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
}

describe.skipIf(!available)('bull-board in Chromium', () => {
  it('refuses a read token, then logs in with an admin token and keeps an HttpOnly cookie', async () => {
    const page = await context.newPage();
    await logIn(page, READ);
    expect(await page.textContent('body')).toContain('"code":"forbidden"');
    await logIn(page, ADMIN);
    expect(new URL(page.url()).pathname).toBe('/admin/queues');
    const cookies = await context.cookies(`${api.url}/admin/queues`);
    const session = cookies.find((c) => c.name === SESSION_COOKIE)!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });
    expect(session.value).not.toContain(ADMIN);
    // The JSON API takes no cookie: from the same browser it asks for a token.
    expect((await page.request.get(`${api.url}/v1/runs`)).status()).toBe(401);
    await page.close();
  });

  it('shows every Conveyor queue', async () => {
    const page = await context.newPage();
    await page.goto(`${api.url}/admin/queues`);
    for (const name of queueNames()) {
      await page.getByText(name, { exact: true }).first().waitFor();
    }
    await page.getByText('Loading...').waitFor({ state: 'detached' });
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-queues.png'), fullPage: true });
    expect(failedAssets).toEqual([]);
    await page.close();
  });

  it("lists a finished run's step jobs by workflow/step, with the run id in their data", async () => {
    const page = await context.newPage();
    await page.goto(`${api.url}/admin/queues/queue/steps-local?status=completed`);
    await page.getByText('dash-demo/build').first().waitFor();
    await page.getByText('dash-demo/ship').first().waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-steps-completed.png'), fullPage: true });
    await page.goto(`${api.url}/admin/queues/queue/steps-local/${runId}.build`);
    await page.getByText(runId).first().waitFor();
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-step-job.png'), fullPage: true });
    expect(failedAssets).toEqual([]);
    await page.close();
  });

  it('logs out: the session ends and the dashboard asks for the form again', async () => {
    const page = await context.newPage();
    await page.goto(`${api.url}/admin/logout`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.goto(`${api.url}/admin/queues`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    expect((await context.cookies(`${api.url}/admin/queues`)).some((c) => c.name === SESSION_COOKIE)).toBe(
      false,
    );
    await page.close();
  });
});

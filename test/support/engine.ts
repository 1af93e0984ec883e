/**
 * An in-process Conveyor for tests: the API app (exercised with `app.request`, no socket) and a
 * worker, on the shared test Redis under a fresh prefix that is dropped afterwards.
 */
import pino from 'pino';
import { type ApiOptions, type ConveyorApi, startApi } from '../../src/api/server.ts';
import type { SecretKey } from '../../src/secrets/index.ts';
import { followEvents, isTerminalEvent, type RunDocument, type RunEvent } from '../../src/store/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker, type WorkerOptions } from '../../src/workers/worker.ts';
import { dropPrefix } from './prefix.ts';

/** A running test engine. */
export interface TestEngine {
  api: ConveyorApi;
  worker?: ConveyorWorker;
  prefix: string;
  redisUrl: string;
  /** JSON request against the app; returns status and parsed body. */
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response JSON by path
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** Submits an ad-hoc run and returns its document (throws unless 202). */
  submit(workflow: unknown, inputs?: Record<string, unknown>): Promise<RunDocument>;
  /** Follows the run's events to its terminal one; returns the final document and the events. */
  waitForRun(runId: string): Promise<{ run: RunDocument; events: RunEvent[] }>;
  /** Follows the run's events until one matches; returns it. */
  waitForEvent(runId: string, match: (event: RunEvent) => boolean): Promise<RunEvent>;
  close(): Promise<void>;
}

/** Options: which executors the worker serves (none: API only) and worker tuning. */
export interface TestEngineOptions extends Partial<Omit<WorkerOptions, 'redisUrl' | 'prefix' | 'executors'>> {
  executors?: WorkerOptions['executors'];
  worker?: boolean;
  /** Also given to the API, so tests can store secrets. */
  secretKey?: SecretKey;
  /** API options besides the connection (retention…). */
  api?: Pick<ApiOptions, 'retentionSeconds' | 'retentionPass'>;
  /** Given to the API as `CONVEYOR_WEBHOOK_SECRET` would be. */
  webhookSecrets?: string[];
}

/** The first event of `runId` that `match` accepts, read from the run's stream from its start. */
export async function waitForRunEvent(
  api: ConveyorApi,
  runId: string,
  match: (event: RunEvent) => boolean,
): Promise<RunEvent> {
  const controller = new AbortController();
  try {
    for await (const event of followEvents(
      api.deps.redis,
      api.deps.store.keys,
      runId,
      undefined,
      controller.signal,
    )) {
      if (event && match(event)) return event;
    }
  } finally {
    controller.abort();
  }
  throw new Error(`run ${runId} ended without the awaited event`);
}

/** Resolves once `runId` has ended (its terminal event is in its stream). */
export async function waitForRunEnd(api: ConveyorApi, runId: string): Promise<void> {
  await waitForRunEvent(api, runId, (event) => isTerminalEvent(event.type));
}

/** Starts an engine on `redisUrl` under `prefix`. */
export async function startEngine(
  redisUrl: string,
  prefix: string,
  options: TestEngineOptions = {},
): Promise<TestEngine> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const api = await startApi({
    redisUrl,
    prefix,
    logger,
    secretKey: options.secretKey,
    inventoryFile: options.inventoryFile,
    // No pass on a timer: its lock key would come and go under tests that compare key sets.
    retentionPass: { intervalMs: 0 },
    webhookSecrets: options.webhookSecrets,
    ...options.api,
  });
  const { worker: withWorker = true, executors, api: _api, webhookSecrets: _, ...workerOptions } = options;
  const worker = withWorker
    ? await startWorker({
        redisUrl,
        prefix,
        executors: executors ?? [new LocalExecutor({ killGraceMs: 1000 })],
        logger,
        shutdownGraceMs: 5000,
        ...workerOptions,
      })
    : undefined;

  const request: TestEngine['request'] = async (method, path, body, headers = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await api.app.request(path, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // plain-text bodies (logs) stay strings
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };

  const waitForEvent: TestEngine['waitForEvent'] = (runId, match) => waitForRunEvent(api, runId, match);

  return {
    api,
    worker,
    prefix,
    redisUrl,
    request,
    async submit(workflow, inputs) {
      const res = await request('POST', '/v1/runs', { workflow, inputs });
      if (res.status !== 202) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as RunDocument;
    },
    waitForEvent,
    async waitForRun(runId) {
      const events: RunEvent[] = [];
      await waitForEvent(runId, (event) => {
        events.push(event);
        return isTerminalEvent(event.type);
      });
      return { run: (await api.deps.store.getRun(runId))!, events };
    },

    async close() {
      await worker?.close();
      await api.close();
      await dropPrefix(redisUrl, prefix);
    },
  };
}

/** `/v1/runs`: ad-hoc runs and dry-run plans, run documents, events (SSE), logs, cancel, retry. */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../errors.ts';
import { primaryParents, type Workflow } from '../flows/index.ts';
import { LimitError } from '../flows/limits.ts';
import { followEvents, type RunStatus } from '../store/index.ts';
import { readDefinition } from './body.ts';
import type { ApiDeps } from './context.ts';
import { parseWith } from './workflows.ts';

const adHocSchema = z.strictObject({
  workflow: z.unknown(),
  inputs: z.record(z.string(), z.unknown()).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
});

const EVENT_ID = /^\d+-\d+$/;
const RUN_STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** The dry-run plan: what would run, in which order, where. */
async function plan(workflow: Workflow, deps: ApiDeps) {
  const hosts = await deps.inventory.catalog();
  const level = new Map<string, number>();
  for (const id of workflow.order) {
    level.set(id, Math.max(0, ...workflow.steps[id]!.needs.map((n) => level.get(n)! + 1)));
  }
  const parents = primaryParents(workflow);
  return {
    workflow: workflow.name,
    steps: workflow.order.map((id) => {
      const step = workflow.steps[id]!;
      return {
        id,
        needs: step.needs,
        /** Steps with the same stage can run at the same time. */
        stage: level.get(id),
        executor: step.executor,
        if: step.if,
        hosts: step.hosts ? (hosts.resolve(step.hosts) ?? []) : undefined,
        maxParallel: step.hosts ? step.strategy.maxParallel : undefined,
        timeoutMs: step.timeoutMs,
        attempts: step.retries.attempts,
        bullmqParent: parents.get(id) ?? '(run)',
      };
    }),
  };
}

/** The run routes. */
export function runRoutes(deps: ApiDeps): Hono {
  const app = new Hono();

  const mustGetRun = async (runId: string) => {
    const run = await deps.launcher.getRun(runId);
    if (!run) throw new NotFoundError(`no run "${runId}"`);
    return run;
  };

  app.post('/', async (c) => {
    const checked = await readDefinition(c, deps, 'workflow');
    const body = parseWith(adHocSchema, checked.value);
    if (body.workflow === undefined) {
      throw new ValidationError('request body is invalid', [
        { path: 'workflow', message: 'a workflow definition is required' },
      ]);
    }
    const err = checked.definitionError;
    if (err || !checked.workflow) {
      const issues = (err?.issues ?? []).map((i) => ({
        ...i,
        path: i.path ? `workflow.${i.path}` : 'workflow',
      }));
      const Kind = err instanceof LimitError ? LimitError : ValidationError;
      throw new Kind(err?.message ?? 'workflow definition is invalid', issues, { cause: err });
    }
    const workflow = checked.workflow;
    if (c.req.query('dryRun') === 'true') return c.json(await plan(workflow, deps));
    const { run, created } = await deps.launcher.launch({
      workflow,
      version: null,
      inputs: body.inputs,
      idempotencyKey: body.idempotencyKey,
      trigger: { type: 'http' },
    });
    if (!created) c.header('Idempotent-Replayed', 'true');
    return c.json(run, 202);
  });

  app.get('/', async (c) => {
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 20) || 20, 1), 200);
    const status = c.req.query('status');
    if (status !== undefined && !RUN_STATUSES.includes(status as RunStatus)) {
      throw new ValidationError('bad query', [
        { path: 'status', message: `must be one of ${RUN_STATUSES.join(', ')}` },
      ]);
    }
    const cursor = c.req.query('cursor');
    let before = cursor ? Number(cursor) : undefined;
    if (cursor !== undefined && !Number.isFinite(before)) {
      throw new ValidationError('bad query', [
        { path: 'cursor', message: 'not a cursor from a previous page' },
      ]);
    }
    const runs = [];
    // Filtering by status happens after the index read; read pages until the limit is met.
    while (runs.length < limit) {
      const ids = await deps.store.listRunIds({ workflow: c.req.query('workflow'), limit, before });
      if (ids.length === 0) break;
      for (const run of await Promise.all(ids.map((id) => deps.store.getRun(id)))) {
        if (run && (!status || run.status === status) && runs.length < limit) runs.push(run);
      }
      before = await deps.store.runCreatedAt(ids[ids.length - 1]!);
      if (ids.length < limit || before === undefined) break;
    }
    const last = runs[runs.length - 1];
    return c.json({
      runs,
      cursor: runs.length === limit && last ? String(Date.parse(last.createdAt)) : null,
    });
  });

  app.get('/:id', async (c) => c.json(await mustGetRun(c.req.param('id'))));

  app.get('/:id/events', async (c) => {
    const runId = c.req.param('id');
    await mustGetRun(runId);
    const after = c.req.header('last-event-id') ?? c.req.query('lastEventId');
    if (after !== undefined && !EVENT_ID.test(after)) {
      throw new ValidationError('bad Last-Event-ID', [
        { path: 'Last-Event-ID', message: 'expected an event id such as 1700000000000-0' },
      ]);
    }
    return streamSSE(c, async (stream) => {
      const aborted = new AbortController();
      stream.onAbort(() => aborted.abort());
      for await (const event of followEvents(deps.redis, deps.store.keys, runId, after, aborted.signal)) {
        if (event === null) await stream.write(': keep-alive\n\n');
        else
          await stream.writeSSE({
            id: event.id,
            event: event.type,
            data: JSON.stringify({ id: event.id, ...event.data }),
          });
      }
    });
  });

  app.get('/:id/steps/:step/logs', async (c) => {
    const run = await mustGetRun(c.req.param('id'));
    const stepId = c.req.param('step');
    const step = run.steps[stepId];
    if (!step) throw new NotFoundError(`run "${run.id}" has no step "${stepId}"`);
    const host = c.req.query('host');
    if (host !== undefined) {
      if (!step.instances?.[host])
        throw new NotFoundError(`step "${stepId}" of run "${run.id}" did not run on host "${host}"`);
      return c.text(await deps.store.getInstanceLog(run.id, stepId, host));
    }
    if (!step.instances) return c.text(await deps.store.getLog(run.id, stepId));
    // A fan-out step: every host's log under a header, in host order.
    const parts = await Promise.all(
      Object.keys(step.instances).map(
        async (h) => `==> ${h} <==\n${await deps.store.getInstanceLog(run.id, stepId, h)}`,
      ),
    );
    return c.text(parts.join('\n'));
  });

  app.post('/:id/cancel', async (c) => c.json(await deps.launcher.cancel(c.req.param('id')), 202));

  app.post('/:id/retry', async (c) => {
    const runId = c.req.param('id');
    await mustGetRun(runId);
    const meta = (await deps.store.snapshot(runId, [], true)).meta!;
    const { run } = await deps.launcher.launch({
      workflow: meta.definition,
      version: meta.workflow.version,
      inputs: meta.inputs,
      trigger: { type: 'retry', runId },
    });
    return c.json(run, 202);
  });

  return app;
}

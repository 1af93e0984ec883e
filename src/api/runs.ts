/**
 * `/v1/runs`: ad-hoc runs and dry-run plans, run documents, events (SSE), logs, cancel, retry,
 * delete.
 */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { NotFoundError, ValidationError } from '../errors.ts';
import { LimitError } from '../flows/limits.ts';
import { isTerminalEvent, type RunDocument } from '../store/index.ts';
import { readDefinition } from './body.ts';
import type { ApiDeps } from './context.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { SHUTDOWN_COMMENT } from './drain.ts';
import { dryRunFlag, runPlan } from './dry-run.ts';
import { checkName, own, param } from './params.ts';
import {
  adHocRunSchema,
  attemptParam,
  checkParam,
  eventIdParam,
  positiveIntegerParam,
  runStatusParam,
} from './request-schemas.ts';
import { parseWith } from './workflows.ts';

/** `limit` of a listing: 20 when absent, at most 200; anything but a positive integer is a 400. */
function listLimit(raw: string | undefined): number {
  if (raw === undefined) return 20;
  return Math.min(Number(checkParam(positiveIntegerParam, 'limit', raw)), 200);
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
    const dryRun = dryRunFlag(c.req.queries('dryRun'));
    const checked = await readDefinition(c, deps, 'workflow');
    const body = parseWith(adHocRunSchema, checked.value);
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
    if (dryRun)
      return c.json(
        runPlan(workflow, null, body.inputs, await deps.inventory.catalog(), await deps.workers.list()),
      );
    const { run, created } = await deps.launcher.launch({
      workflow,
      version: null,
      source: checked.source,
      inputs: body.inputs,
      idempotencyKey: body.idempotencyKey,
      trigger: { type: 'http' },
    });
    if (!created) c.header('Idempotent-Replayed', 'true');
    return c.json(run, 202);
  });

  app.get('/', async (c) => {
    const limit = listLimit(c.req.query('limit'));
    const raw = c.req.query('status');
    const status = raw === undefined ? undefined : checkParam(runStatusParam, 'status', raw);
    const cursor = c.req.query('cursor');
    let after = cursor !== undefined ? decodeCursor(cursor) : undefined;
    const runs: RunDocument[] = [];
    // Filtering by status happens after the index read; read pages until the limit is met.
    // `after` always names the last entry looked at, so a full page ends on its last run.
    while (runs.length < limit) {
      const entries = await deps.store.listRuns({ workflow: c.req.query('workflow'), limit, after });
      const docs = await Promise.all(entries.map((e) => deps.store.getRun(e.id)));
      for (let i = 0; i < entries.length && runs.length < limit; i++) {
        after = entries[i];
        const run = docs[i];
        if (run && (!status || run.status === status)) runs.push(run);
      }
      if (entries.length < limit) break;
    }
    return c.json({ runs, cursor: runs.length === limit && after ? encodeCursor(after) : null });
  });

  app.get('/:id', async (c) => c.json(await mustGetRun(param(c, 'id', 'run'))));

  app.get('/:id/events', async (c) => {
    const runId = param(c, 'id', 'run');
    await mustGetRun(runId);
    const after = c.req.header('last-event-id') ?? c.req.query('lastEventId');
    if (after !== undefined) checkParam(eventIdParam, 'Last-Event-ID', after, 'bad Last-Event-ID');
    // Before the 200: a stream that could never receive events answers 503 instead.
    await deps.events.ready();
    if (deps.drain.stopping) return deps.drain.refusal();
    return streamSSE(c, (stream) =>
      deps.drain.stream(async () => {
        const aborted = new AbortController();
        stream.onAbort(() => aborted.abort());
        // The server stopping ends the stream as a client leaving would, then says so (below).
        const ended = AbortSignal.any([aborted.signal, deps.drain.signal]);
        let finished = false;
        try {
          for await (const event of deps.events.follow(runId, after, ended)) {
            if (event === null) await stream.write(': keep-alive\n\n');
            else {
              await stream.writeSSE({
                id: event.id,
                event: event.type,
                data: JSON.stringify({ id: event.id, ...event.data }),
              });
              finished = isTerminalEvent(event.type);
            }
          }
        } catch (err) {
          // Headers are sent: ending the stream is all that is left; the client resumes from its last id.
          if (!aborted.signal.aborted) deps.logger.warn({ err, runId }, 'event stream ended by an error');
        }
        // A stream cut short by the stop (not one that reached its run's end) tells its client to
        // reconnect, to another API process, from its last id.
        if (deps.drain.stopping && !aborted.signal.aborted && !finished)
          await stream.write(SHUTDOWN_COMMENT).catch(() => undefined);
      }),
    );
  });

  app.get('/:id/steps/:step/logs', async (c) => {
    const runId = param(c, 'id', 'run');
    const stepId = param(c, 'step', 'step');
    const run = await mustGetRun(runId);
    const step = own(run.steps, stepId);
    if (!step) throw new NotFoundError(`run "${run.id}" has no step "${stepId}"`);
    const host = c.req.query('host');
    // `?attempt=N` reads one attempt's log; the default is each one's latest attempt.
    const asked = c.req.query('attempt');
    if (asked !== undefined) checkParam(attemptParam, 'attempt', asked);
    const attemptOf = (latest: number | undefined) => {
      const n = asked === undefined ? Math.max(latest ?? 0, 1) : Number(asked);
      if (asked !== undefined && n > (latest ?? 0))
        throw new NotFoundError(`step "${stepId}" of run "${run.id}" has no attempt ${n}`);
      return n;
    };
    if (host !== undefined) {
      checkName('host', host);
      const instance = own(step.instances, host);
      if (!instance)
        throw new NotFoundError(`step "${stepId}" of run "${run.id}" did not run on host "${host}"`);
      return c.text(await deps.store.instances.getLog(run.id, stepId, host, attemptOf(instance.attempts)));
    }
    if (!step.instances) return c.text(await deps.store.getLog(run.id, stepId, attemptOf(step.attempts)));
    // A fan-out step: every host's log under a header, in host order.
    const parts = await Promise.all(
      Object.entries(step.instances).map(
        async ([h, instance]) =>
          `==> ${h} <==\n${await deps.store.instances.getLog(run.id, stepId, h, attemptOf(instance.attempts))}`,
      ),
    );
    return c.text(parts.join('\n'));
  });

  // 204 with no body, as REST clients expect of a DELETE; 409 while the run has not finished.
  app.delete('/:id', async (c) => {
    await deps.removal.remove(param(c, 'id', 'run'));
    return c.body(null, 204);
  });

  app.post('/:id/cancel', async (c) => c.json(await deps.launcher.cancel(param(c, 'id', 'run')), 202));

  app.post('/:id/retry', async (c) => {
    const dryRun = dryRunFlag(c.req.queries('dryRun'));
    const runId = param(c, 'id', 'run');
    await mustGetRun(runId);
    const meta = (await deps.store.snapshot(runId, [], true)).meta!;
    if (dryRun) {
      const hosts = await deps.inventory.catalog();
      return c.json(
        runPlan(meta.definition, meta.workflow.version, meta.inputs, hosts, await deps.workers.list()),
      );
    }
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

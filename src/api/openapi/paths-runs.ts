/** `/v1/runs`: ad-hoc runs, run documents, events, logs, cancel and retry. */
import { z } from 'zod';
import { hostNameSchema } from '../../inventory/index.ts';
import { attemptParam, eventIdParam, positiveIntegerParam, runStatusParam } from '../request-schemas.ts';
import { dryRun, runId, stepId } from './parameters.ts';
import type { OperationSpec } from './registry.ts';
import { AdHocRunBody, PlanSchema, RunListSchema, RunSchema } from './schemas.ts';

const replayed = {
  'Idempotent-Replayed': { description: '`true` when the key named an existing run.', schema: z.string() },
};

/** Operations of the run routes. */
export const runOperations: OperationSpec[] = [
  {
    method: 'post',
    path: '/v1/runs',
    operationId: 'startAdHocRun',
    tag: 'runs',
    summary: 'Run a definition that is not registered',
    description: 'Issue paths of the definition start with `workflow.`.',
    query: { dryRun },
    body: {
      schema: AdHocRunBody,
      description: 'The definition, its inputs and an optional key.',
      yaml: true,
    },
    responses: {
      200: { description: 'With `dryRun=true`: the plan; nothing was started.', json: PlanSchema },
      202: { description: 'The run document of the started run.', json: RunSchema, headers: replayed },
    },
    errors: [409, 422],
  },
  {
    method: 'get',
    path: '/v1/runs',
    operationId: 'listRuns',
    tag: 'runs',
    summary: 'List runs, newest first',
    query: {
      workflow: { schema: z.string(), description: 'Only runs of this workflow.' },
      status: { schema: runStatusParam, description: 'Only runs with this status.' },
      limit: {
        schema: positiveIntegerParam,
        description: 'Page size, 1–200 (more is read as 200); default 20.',
      },
      cursor: { schema: z.string(), description: 'The `cursor` of the previous page.' },
    },
    responses: { 200: { description: 'One page of runs.', json: RunListSchema } },
  },
  {
    method: 'get',
    path: '/v1/runs/:id',
    operationId: 'getRun',
    tag: 'runs',
    summary: 'Get a run document',
    params: { id: runId },
    responses: { 200: { description: 'The run document.', json: RunSchema } },
  },
  {
    method: 'get',
    path: '/v1/runs/:id/events',
    operationId: 'streamRunEvents',
    tag: 'runs',
    summary: "Follow a run's events (Server-Sent Events)",
    description:
      'Replays from the start (or after `Last-Event-ID`), then follows live, and ends after the ' +
      "run's terminal event. Reconnect with the last id seen to miss nothing and repeat nothing.",
    params: { id: runId },
    query: {
      lastEventId: { schema: eventIdParam, description: 'Like the header, for clients that cannot set it.' },
    },
    headers: { 'Last-Event-ID': { schema: eventIdParam, description: 'Resume after this event id.' } },
    responses: { 200: { description: 'The event stream.', eventStream: true } },
  },
  {
    method: 'get',
    path: '/v1/runs/:id/steps/:step/logs',
    operationId: 'getStepLogs',
    tag: 'runs',
    summary: "A step's combined output",
    description: "A fan-out step without `host`: every host's log under a `==> host <==` header.",
    params: { id: runId, step: stepId },
    query: {
      host: { schema: hostNameSchema, description: 'One host instance of a fan-out step.' },
      attempt: {
        schema: attemptParam,
        description: 'One attempt; default the latest.',
      },
    },
    responses: { 200: { description: 'The log text.', text: true } },
  },
  {
    method: 'delete',
    path: '/v1/runs/:id',
    operationId: 'deleteRun',
    tag: 'runs',
    summary: 'Delete a finished run',
    description:
      'Every key of the run, its index entries and its jobs; a run that has not finished is a 409.',
    params: { id: runId },
    responses: { 204: { description: 'Deleted.' } },
    errors: [409],
  },
  {
    method: 'post',
    path: '/v1/runs/:id/cancel',
    operationId: 'cancelRun',
    tag: 'runs',
    summary: 'Cancel a run',
    description: 'Running steps are stopped (local process group, remote process, VM).',
    params: { id: runId },
    responses: { 202: { description: 'Cancellation is requested; the run document.', json: RunSchema } },
    errors: [409],
  },
  {
    method: 'post',
    path: '/v1/runs/:id/retry',
    operationId: 'retryRun',
    tag: 'runs',
    summary: 'Start a new run of the same version and inputs',
    params: { id: runId },
    query: { dryRun },
    responses: {
      200: { description: 'With `dryRun=true`: the plan; nothing was started.', json: PlanSchema },
      202: { description: 'The new run.', json: RunSchema },
    },
    errors: [422],
  },
];

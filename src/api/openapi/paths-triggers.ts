/**
 * Routes that start runs from the outside world (git push webhooks, events), list triggers, and
 * show the workers and the metrics an operator watches.
 */
import { z } from 'zod';
import type { ParameterSpec } from './registry.ts';
import { named, type OperationSpec } from './registry.ts';

/** A loose object: these answers are documented in prose, their fields may grow. */
const object = (id: string, description: string) =>
  named(id, 'output', z.object({}).catchall(z.unknown()).describe(description));

const DeliveryAnswer = object(
  'WebhookDelivery',
  'The delivery (`event`, `deliveryId`, `repository`, `ref`) and the runs it started (`runs`, `refused`).',
);
const EventRecord = object(
  'EventRecord',
  'An event with its `id`, `type`, `source`, `depth`, `runs` and `refused`.',
);
const EventList = object(
  'EventList',
  '`{events, cut}`: recent events, newest first, and how many chains were cut.',
);
const TriggerList = object('TriggerList', '`{triggers}`: every trigger of every registered workflow.');
const WorkerList = object('WorkerList', '`{workers}`: live workers with their executors, tags and slots.');
const EventBody = named(
  'EventInput',
  'input',
  z.object({ payload: z.unknown().optional(), idempotencyKey: z.string().min(1).max(200).optional() }),
);

const provider: ParameterSpec = {
  schema: z.enum(['github', 'gitlab', 'gitea']),
  description: 'The git host that signed the delivery (`gitea` also takes Forgejo).',
};
const eventType: ParameterSpec = {
  schema: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
  description: 'The event type, as `on.event` lists it.',
};

/** Operations of the trigger, worker and metrics routes. */
export const triggerOperations: OperationSpec[] = [
  {
    method: 'post',
    path: '/v1/hooks/:provider',
    operationId: 'deliverWebhook',
    tag: 'triggers',
    summary: 'A git push webhook delivery',
    description:
      'Authenticated by its signature (`X-Hub-Signature-256`, `X-Gitlab-Token`, `X-Gitea-Signature`), ' +
      'verified on the raw bytes before anything is parsed: no API token. A redelivery answers with the ' +
      "first delivery's runs and starts nothing.",
    params: { provider },
    responses: {
      200: { description: 'A `ping`.', json: DeliveryAnswer },
      202: { description: 'The runs started (none for events other than pushes).', json: DeliveryAnswer },
    },
    errors: [401, 413, 415],
  },
  {
    method: 'post',
    path: '/v1/events/:type',
    operationId: 'publishEvent',
    tag: 'triggers',
    summary: 'Publish an event',
    description: 'Starts every workflow whose `on.event` lists the type.',
    params: { type: eventType },
    body: { schema: EventBody, description: 'The payload and an optional idempotency key.', optional: true },
    responses: { 202: { description: 'The event and the runs it started.', json: EventRecord } },
  },
  {
    method: 'get',
    path: '/v1/events',
    operationId: 'listEvents',
    tag: 'triggers',
    summary: 'Recent events',
    responses: { 200: { description: 'Recent events with the runs they started.', json: EventList } },
  },
  {
    method: 'get',
    path: '/v1/triggers',
    operationId: 'listTriggers',
    tag: 'triggers',
    summary: 'Active triggers',
    responses: { 200: { description: 'Push, schedule and event triggers.', json: TriggerList } },
  },
  {
    method: 'get',
    path: '/v1/workers',
    operationId: 'listWorkers',
    tag: 'system',
    summary: 'Live workers',
    responses: { 200: { description: 'Workers whose heartbeat has not expired.', json: WorkerList } },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tag: 'system',
    summary: 'Prometheus metrics',
    description: 'Queue depths, steps and runs by status, duration histograms, worker slots, lags.',
    responses: { 200: { description: 'The Prometheus text format.', text: true } },
  },
];

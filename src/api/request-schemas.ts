/**
 * The zod schemas of request bodies, shared by the handlers that validate with them and the
 * OpenAPI document that is generated from them (src/api/openapi/), so the two cannot disagree.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.ts';

const inputs = z
  .record(z.string(), z.unknown())
  .describe("Values of the workflow's declared inputs, by name; defaults fill the rest.");
const idempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .describe('Sending the same key again returns the run it started instead of starting another.');

/** Body of `POST /v1/workflows/:name/runs`. */
export const runRequestSchema = z.strictObject({
  inputs: inputs.optional(),
  idempotencyKey: idempotencyKey.optional(),
});

/**
 * Body of `POST /v1/runs`. The definition is `unknown` here because it is parsed, bounded and
 * validated on the submission thread (with issue paths under `workflow.`); the document shows
 * it as the definition schema.
 */
export const adHocRunSchema = z.strictObject({
  workflow: z.unknown(),
  inputs: inputs.optional(),
  idempotencyKey: idempotencyKey.optional(),
});

/** Body of `PUT /v1/secrets/:name`. */
export const putSecretSchema = z.strictObject({
  value: z
    .string()
    .max(64 * 1024)
    .describe('The secret value; it is encrypted at rest and never returned.'),
});

/** Run statuses (docs/reference.md §4.2), as the `status` filter of `GET /v1/runs` accepts them. */
export const runStatusSchema = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);

// Query and header parameters: each handler reads its own with `queryParam`, and the OpenAPI
// document describes it with the same schema.

const POSITIVE = 'must be a positive integer';
/** `limit` of `GET /v1/runs`, `version` of `GET /v1/workflows/:name`. */
export const positiveIntegerParam = z
  .string()
  .regex(/^\d+$/, POSITIVE)
  .refine((v) => Number(v) >= 1, POSITIVE);
/** `attempt` of the logs route (at most six digits, as attempts are bounded far below that). */
export const attemptParam = z.string().regex(/^[1-9]\d{0,5}$/, POSITIVE);
/** A run event id (a Redis stream id): `Last-Event-ID`, `lastEventId`. */
/** Both parts of a Redis stream id must fit in 64 bits, as Redis requires. */
const MAX_STREAM_PART = 2n ** 64n - 1n;
export const eventIdParam = z
  .string()
  .regex(/^\d{1,20}-\d{1,20}$/, 'expected an event id such as 1700000000000-0')
  .refine(
    // Checked after the pattern, which may have failed: never BigInt() a part that is not digits.
    (id) => id.split('-').every((part) => /^\d{1,20}$/.test(part) && BigInt(part) <= MAX_STREAM_PART),
    'expected an event id such as 1700000000000-0',
  );
/** `dryRun`, on every route that starts a run. */
export const dryRunParam = z.enum(['true', 'false'], { error: 'must be "true" or "false", given once' });
/** `status` of `GET /v1/runs`. */
export const runStatusParam = z.enum(runStatusSchema.options, {
  error: `must be one of ${runStatusSchema.options.join(', ')}`,
});

/** `raw` checked with `schema`; otherwise a 400 whose issue names `path` with the schema's message. */
export function checkParam<T>(schema: z.ZodType<T>, path: string, raw: string, message = 'bad query'): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new ValidationError(message, [{ path, message: parsed.error.issues[0]!.message }]);
}

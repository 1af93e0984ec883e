/**
 * The zod schemas of request bodies, shared by the handlers that validate with them and the
 * OpenAPI document that is generated from them (src/api/openapi/), so the two cannot disagree.
 */
import { z } from 'zod';

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

/** Run statuses (contract section 3), as the `status` filter of `GET /v1/runs` accepts them. */
export const runStatusSchema = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);

/** Path and query parameters shared by several operations, built from the handlers' own formats. */
import { z } from 'zod';
import { STEP_ID, WORKFLOW_NAME } from '../../flows/index.ts';
import { hostNameSchema, secretNameSchema } from '../../inventory/index.ts';
import { RUN_ID } from '../params.ts';
import { dryRunParam } from '../request-schemas.ts';
import type { ParameterSpec } from './registry.ts';

/** `:id` of a run. */
export const runId: ParameterSpec = {
  schema: z.string().regex(RUN_ID),
  description: 'The run id (`run_…`).',
};
/** `:step` of a run. */
export const stepId: ParameterSpec = { schema: z.string().regex(STEP_ID), description: 'The step id.' };
/** `:name` of a workflow. */
export const workflowName: ParameterSpec = {
  schema: z.string().regex(WORKFLOW_NAME),
  description: 'The workflow name.',
};
/** `:name` of a host. */
export const hostName: ParameterSpec = { schema: hostNameSchema, description: 'The host name.' };
/** `:name` of a secret. */
export const secretName: ParameterSpec = { schema: secretNameSchema, description: 'The secret name.' };
/** `?dryRun=`, on every route that starts a run. */
export const dryRun: ParameterSpec = {
  schema: dryRunParam,
  description:
    '`true`: answer the plan (steps, order, executor, hosts) and start nothing. Given at most once.',
};

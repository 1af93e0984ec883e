/** `/v1/workflows`: definitions and the runs started from them. */
import { z } from 'zod';
import { positiveIntegerParam } from '../request-schemas.ts';
import { dryRun, workflowName } from './parameters.ts';
import type { OperationSpec } from './registry.ts';
import {
  DefinitionBody,
  PlanSchema,
  RegisteredSchema,
  RunRequestBody,
  RunSchema,
  WorkflowListSchema,
  WorkflowVersionSchema,
} from './schemas.ts';

/** Operations of the workflow routes. */
export const workflowOperations: OperationSpec[] = [
  {
    method: 'post',
    path: '/v1/workflows',
    operationId: 'registerWorkflow',
    tag: 'workflows',
    summary: 'Register a definition',
    description:
      'A new or changed definition gets the next version (201); a body identical to the latest version ' +
      'returns 200 and that version. Every problem of the definition is listed in `issues`.',
    body: { schema: DefinitionBody, description: 'The definition, as JSON or YAML.', yaml: true },
    responses: {
      200: { description: 'Identical to the latest version: nothing changed.', json: RegisteredSchema },
      201: { description: 'Registered as a new version.', json: RegisteredSchema },
    },
    errors: [422],
  },
  {
    method: 'get',
    path: '/v1/workflows',
    operationId: 'listWorkflows',
    tag: 'workflows',
    summary: 'List workflows',
    responses: {
      200: { description: 'Names with their latest version, by name.', json: WorkflowListSchema },
    },
  },
  {
    method: 'get',
    path: '/v1/workflows/:name',
    operationId: 'getWorkflow',
    tag: 'workflows',
    summary: 'Get a workflow',
    params: { name: workflowName },
    query: {
      version: {
        schema: positiveIntegerParam,
        description: 'A version number; default the latest.',
      },
    },
    responses: { 200: { description: 'The definition at that version.', json: WorkflowVersionSchema } },
  },
  {
    method: 'delete',
    path: '/v1/workflows/:name',
    operationId: 'deleteWorkflow',
    tag: 'workflows',
    summary: 'Delete a workflow',
    description: 'Removes every version and its triggers; runs are kept.',
    params: { name: workflowName },
    responses: { 204: { description: 'Deleted.' } },
  },
  {
    method: 'post',
    path: '/v1/workflows/:name/runs',
    operationId: 'startWorkflowRun',
    tag: 'workflows',
    summary: 'Start a run of the latest version',
    description: 'The same `idempotencyKey` returns the run it started (with `Idempotent-Replayed: true`).',
    params: { name: workflowName },
    query: { dryRun },
    body: { schema: RunRequestBody, description: 'Inputs and an optional idempotency key.', optional: true },
    responses: {
      200: { description: 'With `dryRun=true`: the plan; nothing was started.', json: PlanSchema },
      202: {
        description: 'The run document of the started (or replayed) run.',
        json: RunSchema,
        headers: {
          'Idempotent-Replayed': {
            description: '`true` when the key named an existing run.',
            schema: z.string(),
          },
        },
      },
    },
    errors: [409, 422],
  },
];

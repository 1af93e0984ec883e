/** `/v1/secrets`: write-only secret values. */
import { secretName } from './parameters.ts';
import type { OperationSpec } from './registry.ts';
import { SecretBody, SecretListSchema, SecretNameSchema } from './schemas.ts';

/** Operations of the secret routes. */
export const secretOperations: OperationSpec[] = [
  {
    method: 'get',
    path: '/v1/secrets',
    operationId: 'listSecrets',
    tag: 'secrets',
    summary: 'List secret names',
    description: 'Names only: values are write-only.',
    responses: { 200: { description: 'The names.', json: SecretListSchema } },
  },
  {
    method: 'put',
    path: '/v1/secrets/:name',
    operationId: 'putSecret',
    tag: 'secrets',
    summary: 'Store a secret',
    description: 'Needs `CONVEYOR_SECRET_KEY` (otherwise 422).',
    params: { name: secretName },
    body: { schema: SecretBody, description: 'The value.' },
    responses: {
      200: { description: 'Replaced.', json: SecretNameSchema },
      201: { description: 'Created.', json: SecretNameSchema },
    },
    errors: [422],
  },
  {
    method: 'delete',
    path: '/v1/secrets/:name',
    operationId: 'deleteSecret',
    tag: 'secrets',
    summary: 'Delete a secret',
    params: { name: secretName },
    responses: { 204: { description: 'Deleted.' } },
  },
];

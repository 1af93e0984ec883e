/** `/v1/hosts`: the SSH inventory and preflight checks. */
import { hostName } from './parameters.ts';
import type { OperationSpec } from './registry.ts';
import { HostBody, HostCheckSchema, HostListSchema, HostSchema, HostStoredSchema } from './schemas.ts';

/** Operations of the host routes. */
export const hostOperations: OperationSpec[] = [
  {
    method: 'get',
    path: '/v1/hosts',
    operationId: 'listHosts',
    tag: 'hosts',
    summary: 'List inventory hosts',
    description: 'Hosts from the `CONVEYOR_INVENTORY` file and those stored through the API.',
    responses: { 200: { description: 'Every host.', json: HostListSchema } },
  },
  {
    method: 'get',
    path: '/v1/hosts/:name',
    operationId: 'getHost',
    tag: 'hosts',
    summary: 'Get a host',
    params: { name: hostName },
    responses: { 200: { description: 'The host.', json: HostSchema } },
  },
  {
    method: 'put',
    path: '/v1/hosts/:name',
    operationId: 'putHost',
    tag: 'hosts',
    summary: 'Create or replace a host',
    description:
      'Authentication names a secret, never holds one. A stored host wins over a file host of the same name.',
    params: { name: hostName },
    body: { schema: HostBody, description: 'The host entry.' },
    responses: {
      200: { description: 'Replaced.', json: HostStoredSchema },
      201: { description: 'Created.', json: HostStoredSchema },
    },
  },
  {
    method: 'delete',
    path: '/v1/hosts/:name',
    operationId: 'deleteHost',
    tag: 'hosts',
    summary: 'Delete a host',
    params: { name: hostName },
    description: 'A host of the `CONVEYOR_INVENTORY` file cannot be deleted here (409).',
    responses: { 204: { description: 'Deleted.' } },
    errors: [409],
  },
  {
    method: 'post',
    path: '/v1/hosts/:name/check',
    operationId: 'checkHost',
    tag: 'hosts',
    summary: 'Preflight a host',
    description:
      'Reachability, host key, authentication, `sudo -n` and latency. What fails is reported in ' +
      'the answer (200), not as an error status.',
    params: { name: hostName },
    responses: { 200: { description: 'The report.', json: HostCheckSchema } },
  },
];

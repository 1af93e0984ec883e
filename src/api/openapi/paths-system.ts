/** Health, readiness and the API's own documents. */
import type { OperationSpec } from './registry.ts';
import { HealthSchema, WhoamiSchema } from './schemas.ts';

/** Operations of the system routes. */
export const systemOperations: OperationSpec[] = [
  {
    method: 'get',
    path: '/healthz',
    operationId: 'getHealth',
    tag: 'system',
    summary: 'Liveness',
    responses: { 200: { description: 'The process answers.', json: HealthSchema } },
    noRedis: true,
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'getReadiness',
    tag: 'system',
    summary: 'Readiness: Redis is reachable',
    responses: {
      200: { description: 'Ready.', json: HealthSchema },
      503: { description: 'Redis is unreachable.', json: HealthSchema },
    },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApiDocument',
    tag: 'system',
    summary: 'This OpenAPI 3.1 document',
    description: 'Generated from the zod schemas the API validates requests with.',
    responses: {
      200: {
        description: 'The document (its `servers` entry is the URL it was fetched from).',
        anyObject: true,
      },
    },
    noRedis: true,
  },
  {
    method: 'get',
    path: '/docs',
    operationId: 'getApiReference',
    tag: 'system',
    summary: 'Interactive API reference (Scalar)',
    description: 'Reads /openapi.json; every script is served by this API, so it works offline.',
    responses: { 200: { description: 'An HTML page.', html: true } },
    noRedis: true,
  },
  {
    method: 'get',
    path: '/docs/scalar.js',
    operationId: 'getApiReferenceScript',
    tag: 'system',
    summary: 'The script of the API reference page',
    responses: { 200: { description: 'Scalar’s standalone bundle.', javascript: true } },
    noRedis: true,
  },
  {
    method: 'get',
    path: '/v1/whoami',
    operationId: 'whoami',
    tag: 'system',
    summary: 'The role of the presented token',
    description: 'What a client may offer: the run viewer shows Cancel and Retry for `run` and `admin`.',
    responses: { 200: { description: 'The token’s role.', json: WhoamiSchema } },
    noRedis: true,
  },
  {
    method: 'get',
    path: '/ui',
    operationId: 'getRunViewer',
    tag: 'system',
    summary: 'The run viewer (a web page)',
    description:
      'Runs, their DAG updated live, step logs; its scripts and styles are served by this API under `/ui/`. ' +
      'The page needs no token; the API calls it makes ask for one.',
    responses: { 200: { description: 'An HTML page.', html: true } },
    noRedis: true,
  },
];

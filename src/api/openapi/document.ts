/**
 * Turns the operation list into an OpenAPI 3.1 document with zod 4's own JSON Schema output
 * (draft 2020-12, the dialect of OpenAPI 3.1): named schemas become `components.schemas`,
 * each operation gets its required role (from the access table), its security and its error
 * responses in the API's error shape.
 */
import { z } from 'zod';
import { type Access, accessFor } from '../auth/index.ts';
import {
  componentId,
  type Method,
  namedSchemas,
  type OperationSpec,
  type ParameterSpec,
} from './registry.ts';

/** A JSON value of the document. */
type Json = Record<string, unknown>;

/** Options of the document. */
export interface DocumentOptions {
  /** `info.version`. */
  version: string;
  /** `servers[0].url`. @defaultValue 'http://127.0.0.1:8080' */
  serverUrl?: string;
  /** Descriptions of the operations' tags. */
  tags?: Readonly<Record<string, string>>;
}

const ERROR_TEXT: Record<number, string> = {
  400: 'Bad input: the issues name each field.',
  401: 'No token, or a token that matches none.',
  403: "The token's role does not include the one this operation needs.",
  404: 'No such resource (or a name that cannot be one).',
  409: 'Conflicts with the resource as it is.',
  413: 'The body is larger than the limit.',
  415: 'The body is not in a media type this operation accepts.',
  422: 'Well-formed but not runnable: the issues say why.',
  429: 'Too many requests for this token; `Retry-After` says when to try again.',
  503: 'Redis is unavailable; try again later.',
};

const ROLE_TEXT: Record<Access, string> = {
  public: 'Public: no token needed.',
  signature: 'No token: the request is authenticated by its signature.',
  read: 'Requires a token with role `read` (or `run`, `admin`).',
  run: 'Requires a token with role `run` (or `admin`).',
  admin: 'Requires a token with role `admin`.',
};

/** `/v1/runs/:id` → `/v1/runs/{id}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The role an operation needs, from the same table the middleware enforces. */
export function operationAccess(op: Pick<OperationSpec, 'method' | 'path'>): Access {
  return accessFor(op.method.toUpperCase(), op.path);
}

/** Builds the document from `operations`. */
export function buildDocument(operations: readonly OperationSpec[], options: DocumentOptions): Json {
  const paths: Record<string, Partial<Record<Method, Json>>> = {};
  for (const op of operations) {
    const path = openApiPath(op.path);
    paths[path] ??= {};
    const item = paths[path];
    if (item[op.method]) throw new Error(`${op.method.toUpperCase()} ${op.path} is described twice`);
    item[op.method] = operation(op);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Conveyor API',
      version: options.version,
      description:
        'Register workflow definitions, start and watch runs, manage the SSH inventory and secrets. ' +
        'Every error is `{"error": {"code", "message", "issues"?}}`. With `CONVEYOR_API_TOKENS` set, ' +
        'send `Authorization: Bearer <token>`; each operation says the role it needs (`x-required-role`).',
    },
    servers: [{ url: options.serverUrl ?? 'http://127.0.0.1:8080', description: 'this API' }],
    // The default for readers such as Scalar; each operation states its own (public ones: none).
    security: [{ bearer: [] }],
    tags: [...new Set(operations.map((op) => op.tag))].map((name) => ({
      name,
      description: `${name} operations`,
    })),
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A token from `CONVEYOR_API_TOKENS`; its role is `read`, `run` or `admin`.',
        },
      },
    },
  };
}

function operation(op: OperationSpec): Json {
  const access = operationAccess(op);
  const authenticated = access !== 'public' && access !== 'signature';
  const parameters = [
    ...params('path', op.params ?? {}, true),
    ...params('query', op.query ?? {}, false),
    ...params('header', op.headers ?? {}, false),
  ];
  const out: Json = {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    description: [op.description, ROLE_TEXT[access]].filter(Boolean).join('\n\n'),
    'x-required-role': access,
    security: authenticated ? [{ bearer: [] }] : [],
  };
  if (parameters.length) out.parameters = parameters;
  if (op.body) {
    const schema = ref(op.body.schema, `${op.method} ${op.path}`);
    const content: Json = { 'application/json': { schema } };
    if (op.body.yaml) content['application/yaml'] = { schema };
    out.requestBody = { required: !op.body.optional, description: op.body.description, content };
  }
  const responses: Json = {};
  for (const [status, spec] of Object.entries(op.responses)) responses[status] = response(spec, op);
  for (const status of errorStatuses(op, authenticated)) {
    responses[status] ??= {
      description: ERROR_TEXT[status] ?? 'Error.',
      ...(ERROR_HEADERS[status] ? { headers: ERROR_HEADERS[status] } : {}),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  out.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)));
  return out;
}

function challenge(description: string): Json {
  return { description, schema: { type: 'string' } };
}

const ERROR_HEADERS: Record<number, Json> = {
  401: {
    'WWW-Authenticate': challenge(
      '`Bearer realm="conveyor"`, with `error="invalid_request"` for a malformed header or `error="invalid_token"` for a wrong token',
    ),
  },
  403: { 'WWW-Authenticate': challenge('`Bearer realm="conveyor", error="insufficient_scope"`') },
  429: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer', minimum: 0 } } },
};

function errorStatuses(op: OperationSpec, authenticated: boolean): number[] {
  const statuses = new Set(op.errors ?? []);
  if (authenticated) for (const s of [401, 403, 429]) statuses.add(s);
  if (op.params && Object.keys(op.params).length) statuses.add(404);
  if (op.query && Object.keys(op.query).length) statuses.add(400);
  if (op.headers && Object.keys(op.headers).length) statuses.add(400);
  if (op.body) for (const s of [400, 413, 415]) statuses.add(s);
  if (!op.noRedis) statuses.add(503);
  return [...statuses].sort((a, b) => a - b);
}

function response(spec: OperationSpec['responses'][number], op: OperationSpec): Json {
  const out: Json = { description: spec.description };
  if (spec.headers) {
    out.headers = Object.fromEntries(
      Object.entries(spec.headers).map(([name, h]) => [
        name,
        { description: h.description, schema: inline(h.schema) },
      ]),
    );
  }
  if (spec.json) out.content = { 'application/json': { schema: ref(spec.json, `${op.method} ${op.path}`) } };
  else if (spec.anyObject) out.content = { 'application/json': { schema: { type: 'object' } } };
  else if (spec.text) out.content = { 'text/plain': { schema: { type: 'string' } } };
  else if (spec.html) out.content = { 'text/html': { schema: { type: 'string' } } };
  else if (spec.javascript) out.content = { 'text/javascript': { schema: { type: 'string' } } };
  else if (spec.eventStream) {
    out.content = {
      'text/event-stream': {
        schema: {
          type: 'string',
          description:
            'Server-Sent Events: each has `id` (increasing within the run; send it back as `Last-Event-ID` ' +
            'to resume), `event` (the type, such as `step.succeeded`) and JSON `data` with at least ' +
            '`id`, `runId`, `type`, `at`, and `step` where it concerns one. Comment lines keep the ' +
            'connection alive. The stream ends after the run’s terminal event.',
        },
      },
    };
  }
  return out;
}

function params(where: 'path' | 'query' | 'header', specs: Record<string, ParameterSpec>, required: boolean) {
  return Object.entries(specs).map(([name, spec]) => ({
    name,
    in: where,
    required: required || !!spec.required,
    description: spec.description,
    schema: inline(spec.schema),
  }));
}

function ref(schema: z.ZodType, where: string): Json {
  return { $ref: `#/components/schemas/${componentId(schema, where)}` };
}

/** A parameter's schema: small, self-contained, no references. */
function inline(schema: z.ZodType): Json {
  return tidy(
    z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', override: dropInfinity }),
  ) as Json;
}

function componentSchemas(): Json {
  const out: Json = {};
  for (const io of ['input', 'output'] as const) {
    const { schemas } = z.toJSONSchema(namedSchemas[io], {
      io,
      uri: (id) => `#/components/schemas/${id}`,
      unrepresentable: 'any',
      // Responses may gain fields: a client must not reject one it does not know yet.
      override: (ctx) => {
        dropInfinity(ctx);
        if (io === 'output') openObject(ctx);
      },
    });
    for (const [id, schema] of Object.entries(schemas)) {
      if (id in out) throw new Error(`component "${id}" is named on both sides`);
      out[id] = tidy(schema);
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * The definition schema admits ±Infinity (what a 400-digit number parses to) so validation can
 * say the number is too long; JSON cannot carry it, so that branch matches nothing here.
 */
function dropInfinity(ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }): void {
  const def = (ctx.zodSchema as { _zod?: { def?: { type?: string; values?: unknown[] } } })._zod?.def;
  if (def?.type === 'literal' && def.values?.some((v) => typeof v === 'number' && !Number.isFinite(v))) {
    for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
    ctx.jsonSchema.not = {};
  }
}

function openObject(ctx: { jsonSchema: Record<string, unknown> }): void {
  if (ctx.jsonSchema.additionalProperties === false) delete ctx.jsonSchema.additionalProperties;
}

/** Drops what zod adds for standalone JSON Schema (`$schema`, `$id`, safe-integer bounds) and never-matching branches. */
function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (value === null || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '$schema' || key === '$id') continue;
    // zod bounds every integer by the safe range; that says nothing to a reader.
    if ((key === 'minimum' || key === 'maximum') && Math.abs(v as number) === Number.MAX_SAFE_INTEGER)
      continue;
    if (key === 'anyOf' && Array.isArray(v)) {
      const kept = v.filter((branch) => !isNever(branch)).map(tidy);
      if (kept.length === 1) Object.assign(out, kept[0]);
      else out.anyOf = kept;
      continue;
    }
    out[key] = tidy(v);
  }
  return out;
}

function isNever(schema: unknown): boolean {
  if (!schema || typeof schema !== 'object') return false;
  const keys = Object.keys(schema);
  const not = (schema as Json).not;
  return keys.length === 1 && !!not && typeof not === 'object' && Object.keys(not).length === 0;
}

/**
 * What the OpenAPI document is made of: operations described with the zod schemas the handlers
 * validate with, and named schemas that become `components.schemas`. One `paths-*.ts` file per
 * resource fills a list of operations; a new route is one more entry there (the completeness
 * test fails until it has one).
 */
import { z } from 'zod';

/** HTTP methods the API serves. */
export type Method = 'get' | 'put' | 'post' | 'delete';

/** A path, query or header parameter. */
export interface ParameterSpec {
  schema: z.ZodType;
  description: string;
  /** Path parameters are always required. @defaultValue false */
  required?: boolean;
}

/** One response body: JSON with a named schema, plain text, an SSE stream, or nothing. */
export interface ResponseSpec {
  description: string;
  /** A schema made with `named()`: it is referenced from `components.schemas`. */
  json?: z.ZodType;
  /** Any JSON object (a document that has no schema of its own). */
  anyObject?: boolean;
  text?: boolean;
  eventStream?: boolean;
  html?: boolean;
  javascript?: boolean;
  headers?: Record<string, { description: string; schema: z.ZodType }>;
}

/** One operation of the API, keyed by its Hono route pattern (`/v1/runs/:id`). */
export interface OperationSpec {
  method: Method;
  /** The path as Hono registers it: `:name` parameters. */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  params?: Record<string, ParameterSpec>;
  query?: Record<string, ParameterSpec>;
  headers?: Record<string, ParameterSpec>;
  body?: {
    /** A schema made with `named()`. */
    schema: z.ZodType;
    description: string;
    /** The body may be empty. @defaultValue false */
    optional?: boolean;
    /** Also accepted as `application/yaml`. @defaultValue false */
    yaml?: boolean;
  };
  responses: Record<number, ResponseSpec>;
  /**
   * Error statuses this operation can answer besides the ones derived from its shape (401/403/429
   * for a token, 404 for a path parameter, 400/413/415 for a body, 400 for a query, 503).
   */
  errors?: number[];
  /** The operation does not touch Redis, so it cannot answer 503. @defaultValue false */
  noRedis?: boolean;
}

/** Where a named schema belongs: request bodies convert zod's input type, responses its output. */
export type SchemaIo = 'input' | 'output';

/** The named schemas of each side, by id. */
export const namedSchemas = {
  input: z.registry<{ id: string }>(),
  output: z.registry<{ id: string }>(),
};

/** Registers `schema` as `components.schemas[id]` on the `io` side and returns it. */
export function named<T extends z.ZodType>(id: string, io: SchemaIo, schema: T): T {
  const existing = namedSchemas.input.get(schema)?.id ?? namedSchemas.output.get(schema)?.id;
  if (existing !== undefined && existing !== id)
    throw new Error(`schema "${id}" is already named "${existing}"`);
  if (existing === undefined) namedSchemas[io].add(schema, { id });
  return schema;
}

/** The component id of a named schema, or an error naming the operation that used it unnamed. */
export function componentId(schema: z.ZodType, where: string): string {
  const id = namedSchemas.input.get(schema)?.id ?? namedSchemas.output.get(schema)?.id;
  if (id === undefined) throw new Error(`${where}: body schemas must be made with named()`);
  return id;
}

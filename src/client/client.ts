/**
 * The typed Conveyor client: openapi-fetch over the types openapi-typescript generated from the
 * API's OpenAPI document (./schema.ts), grouped by resource, throwing `ConveyorApiError` for
 * every error response.
 */
import createClient, { type Client } from 'openapi-fetch';
import { apiError } from './errors.ts';
import { type FollowOptions, followRun, type RunEvent } from './follow.ts';
import type { components, paths } from './schema.ts';

type Schemas = components['schemas'];
/** A run document. */
export type Run = Schemas['Run'];
/** One page of `GET /v1/runs`. */
export type RunList = Schemas['RunList'];
/** A dry-run plan. */
export type Plan = Schemas['Plan'];
/** A workflow definition as sent. */
export type Definition = Schemas['Definition'];
/** An inventory host as sent. */
export type HostInput = Schemas['HostInput'];
/** An inventory host as stored. */
export type Host = Schemas['Host'];
/** A host preflight report. */
export type HostCheck = Schemas['HostCheck'];
/** A registered workflow version. */
export type WorkflowVersion = Schemas['WorkflowVersion'];
/** Inputs and idempotency key of a run. */
export type RunRequest = Schemas['RunRequest'];

/** A live worker as `GET /v1/workers` lists it. */
export interface WorkerInfo {
  id: string;
  host: string;
  executors: string[];
  tags: string[];
  tagsOnly: boolean;
  slots: { total: number; busy: number; free: number };
  version: string;
  lastSeen: string | number;
}

/** A published event and the runs it started. */
export interface PublishedEvent {
  id: string;
  runs: Array<{ id: string; workflow: { name: string; version: number | null }; status: string }>;
  refused?: unknown[];
}

/** Options of the client. */
export interface ClientOptions {
  /** The API's base URL, such as `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** A token from `CONVEYOR_API_TOKENS`; sent as `Authorization: Bearer`. */
  token?: string;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

/** What every call returns: the data, or a thrown `ConveyorApiError`. */
async function data<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw apiError(response.status, error);
  return data as T;
}

/** Creates a client for the API at `options.baseUrl`. */
export function createConveyorClient(options: ClientOptions) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const headers = (): Record<string, string> =>
    options.token ? { authorization: `Bearer ${options.token}` } : {};
  const api: Client<paths> = createClient<paths>({ baseUrl, headers: headers(), fetch: fetchImpl });
  const yaml = {
    bodySerializer: (body: unknown) => body as string,
    headers: { 'content-type': 'application/yaml' },
  };

  return {
    /** The underlying openapi-fetch client, for any operation by path. */
    api,
    workflows: {
      /** Registers a definition (an object, or YAML text); `created` is false for an identical body. */
      async register(definition: Definition | string) {
        const res = await api.POST('/v1/workflows', {
          body: definition as Definition,
          ...(typeof definition === 'string' ? yaml : {}),
        });
        if (!res.response.ok) throw apiError(res.response.status, res.error);
        return { ...res.data!, created: res.response.status === 201 };
      },
      list: async () => (await data(api.GET('/v1/workflows'))).workflows,
      get: (name: string, version?: number) =>
        data(
          api.GET('/v1/workflows/{name}', {
            params: { path: { name }, query: { version: version?.toString() } },
          }),
        ),
      delete: async (name: string) => {
        await data(api.DELETE('/v1/workflows/{name}', { params: { path: { name } } }));
      },
      /** Starts a run of the latest version. */
      start: async (name: string, body: RunRequest = {}) =>
        (await data(api.POST('/v1/workflows/{name}/runs', { params: { path: { name } }, body }))) as Run,
      /** The plan of a run, starting nothing. */
      plan: async (name: string, body: RunRequest = {}) =>
        (await data(
          api.POST('/v1/workflows/{name}/runs', {
            params: { path: { name }, query: { dryRun: 'true' } },
            body,
          }),
        )) as Plan,
    },
    runs: {
      /** Runs a definition that is not registered. */
      create: async (body: Schemas['AdHocRunRequest']) => (await data(api.POST('/v1/runs', { body }))) as Run,
      /** The plan of a run of a definition that is not registered, starting nothing. */
      plan: async (body: Schemas['AdHocRunRequest']) =>
        (await data(api.POST('/v1/runs', { params: { query: { dryRun: 'true' } }, body }))) as Plan,
      list: (query: NonNullable<paths['/v1/runs']['get']['parameters']['query']> = {}) =>
        data(api.GET('/v1/runs', { params: { query } })),
      get: (id: string) => data(api.GET('/v1/runs/{id}', { params: { path: { id } } })),
      cancel: (id: string) => data(api.POST('/v1/runs/{id}/cancel', { params: { path: { id } } })),
      retry: async (id: string) =>
        (await data(api.POST('/v1/runs/{id}/retry', { params: { path: { id } } }))) as Run,
      /** A step's log text (`host` for one instance of a fan-out step). */
      logs: (id: string, step: string, query: { host?: string; attempt?: number } = {}) =>
        data(
          api.GET('/v1/runs/{id}/steps/{step}/logs', {
            params: { path: { id, step }, query: { host: query.host, attempt: query.attempt?.toString() } },
            parseAs: 'text',
          }),
        ) as Promise<string>,
      /** The run's events, resuming with `Last-Event-ID` across disconnects; ends after the terminal one. */
      follow: (id: string, followOptions?: FollowOptions): AsyncGenerator<RunEvent, void, undefined> =>
        followRun({ baseUrl, headers, fetch: fetchImpl }, id, followOptions),
    },
    hosts: {
      list: async () => (await data(api.GET('/v1/hosts'))).hosts,
      get: (name: string) => data(api.GET('/v1/hosts/{name}', { params: { path: { name } } })),
      put: (name: string, body: HostInput) =>
        data(api.PUT('/v1/hosts/{name}', { params: { path: { name } }, body })),
      delete: async (name: string) => {
        await data(api.DELETE('/v1/hosts/{name}', { params: { path: { name } } }));
      },
      check: (name: string) => data(api.POST('/v1/hosts/{name}/check', { params: { path: { name } } })),
    },
    events: {
      /** Publishes an event: the workflows whose `on.event` lists `type` start. */
      publish: async (type: string, body: Schemas['EventInput'] = {}) =>
        (await data(
          api.POST('/v1/events/{type}', { params: { path: { type } }, body }),
        )) as unknown as PublishedEvent,
    },
    workers: {
      /** Live workers, with their executors, tags and slots. */
      list: async () => ((await data(api.GET('/v1/workers'))) as { workers: WorkerInfo[] }).workers,
    },
    triggers: {
      /** Every trigger of every registered workflow's latest version. */
      list: async () =>
        ((await data(api.GET('/v1/triggers'))) as { triggers: Array<Record<string, unknown>> }).triggers,
    },
    secrets: {
      /** Secret names (values are write-only). */
      list: async () => (await data(api.GET('/v1/secrets'))).secrets.map((s) => s.name),
      put: async (name: string, value: string) => {
        await data(api.PUT('/v1/secrets/{name}', { params: { path: { name } }, body: { value } }));
      },
      delete: async (name: string) => {
        await data(api.DELETE('/v1/secrets/{name}', { params: { path: { name } } }));
      },
    },
  };
}

/** A Conveyor client. */
export type ConveyorClient = ReturnType<typeof createConveyorClient>;

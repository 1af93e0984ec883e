/**
 * Named schemas of the document: request bodies (the handlers' own schemas, from
 * ../request-schemas.ts, the definition and inventory schemas) and responses (the run document,
 * plan, hosts, secrets, errors). Response schemas mirror TypeScript types of the store and
 * workers; the `ResponseDrift` checks below fail to compile when the two part ways.
 */
import { z } from 'zod';
import { definitionSchema } from '../../flows/schema.ts';
import { hostEntrySchema } from '../../inventory/index.ts';
import type { RunDocument } from '../../store/index.ts';
import type { HostCheck } from '../../workers/ssh/index.ts';
import type { runPlan } from '../dry-run.ts';
import { adHocRunSchema, putSecretSchema, runRequestSchema, runStatusSchema } from '../request-schemas.ts';
import { named } from './registry.ts';

// Requests: the very schemas the handlers parse with.
/** A workflow definition (docs/reference.md §3), JSON or YAML. */
export const DefinitionBody = named('Definition', 'input', definitionSchema);
/** `POST /v1/workflows/:name/runs`. */
export const RunRequestBody = named('RunRequest', 'input', runRequestSchema);
/** `POST /v1/runs`: the handler's schema, with the definition the submission thread checks. */
export const AdHocRunBody = named(
  'AdHocRunRequest',
  'input',
  adHocRunSchema.extend({ workflow: definitionSchema }),
);
/** `PUT /v1/hosts/:name`. */
export const HostBody = named('HostInput', 'input', hostEntrySchema);
/** `PUT /v1/secrets/:name`. */
export const SecretBody = named('SecretValue', 'input', putSecretSchema);

// Responses.
/** One problem with the input. */
export const IssueSchema = named(
  'Issue',
  'output',
  z.object({
    path: z.string().describe('Where, as a dotted path (`steps.deploy.needs[0]`); empty for the whole body.'),
    message: z.string(),
  }),
);

/** The API's error shape (docs/reference.md §7.2). */
export const ErrorSchema = named(
  'Error',
  'output',
  z.object({
    error: z.object({
      code: z.string().describe('Stable, machine-readable: `invalid_input`, `not_found`, `conflict`, …'),
      message: z.string(),
      issues: z.array(IssueSchema).optional(),
    }),
  }),
);

const serializedError = z.object({ code: z.string(), message: z.string() });
const stepStatus = z.enum(['pending', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled']);
const attemptFields = {
  attempts: z.number().int(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string(),
  outputs: z.record(z.string(), z.unknown()),
  error: serializedError,
};

/** One host instance of a fan-out step. */
export const InstanceSchema = named(
  'StepInstance',
  'output',
  z.object({ status: stepStatus, ...attemptFields }).partial({ ...mask(attemptFields) }),
);

/** A step in the run document. */
export const StepSchema = named(
  'Step',
  'output',
  z
    .object({
      status: stepStatus,
      executor: z.string(),
      needs: z.array(z.string()).describe('The steps this one needs: the edges of the run’s DAG.'),
      name: z.string().describe('The display name of the definition, when it gives one.'),
      ...attemptFields,
      continueOnError: z.boolean(),
      hosts: z.array(z.string()).describe('Fan-out steps: the hosts the step runs on, in order.'),
      emitted: z.array(z.string()).describe('Types of the events the step published when it succeeded.'),
      instances: z.record(z.string(), InstanceSchema).describe('Fan-out steps: one entry per host.'),
    })
    .partial({
      executor: true,
      name: true,
      continueOnError: true,
      hosts: true,
      emitted: true,
      instances: true,
    })
    .partial(mask(attemptFields)),
);

/** `GET /v1/runs/:id`. */
export const RunSchema = named(
  'Run',
  'output',
  z.object({
    id: z.string(),
    workflow: z.object({
      name: z.string(),
      version: z.number().int().nullable().describe('null for an ad-hoc run'),
    }),
    status: runStatusSchema,
    cancelRequested: z.boolean(),
    inputs: z.record(z.string(), z.unknown()),
    trigger: z.record(z.string(), z.unknown()).describe('What started the run: `{type: "http"}`, …'),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    steps: z.record(z.string(), StepSchema),
  }),
);

/** `GET /v1/runs`. */
export const RunListSchema = named(
  'RunList',
  'output',
  z.object({
    runs: z.array(RunSchema),
    cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last one.'),
  }),
);

/** The dry-run answer. */
export const PlanSchema = named(
  'Plan',
  'output',
  z.object({
    dryRun: z.literal(true),
    workflow: z.string(),
    version: z.number().int().nullable(),
    inputs: z.record(z.string(), z.unknown()),
    steps: z.array(
      z.object({
        id: z.string(),
        needs: z.array(z.string()),
        stage: z.number().int().optional().describe('Steps with the same stage can run at the same time.'),
        executor: z.string(),
        runsOn: z.array(z.string()).describe('Tags a worker must serve to run the step.'),
        queue: z.string().describe('The BullMQ queue of the step (executor and tags).'),
        waiting: z.string().optional().describe('Why no live worker would take the step now.'),
        if: z.string(),
        hosts: z.array(z.string()).optional(),
        maxParallel: z.number().int().optional(),
        timeoutMs: z.number(),
        attempts: z.number().int(),
        bullmqParent: z.string(),
      }),
    ),
  }),
);

/** `POST /v1/workflows`. */
export const RegisteredSchema = named(
  'Registered',
  'output',
  z.object({ name: z.string(), version: z.number().int() }),
);

/** `GET /v1/workflows`. */
export const WorkflowListSchema = named(
  'WorkflowList',
  'output',
  z.object({
    workflows: z.array(
      z.object({ name: z.string(), version: z.number().int(), description: z.string().optional() }),
    ),
  }),
);

/** `GET /v1/workflows/:name`. */
export const WorkflowVersionSchema = named(
  'WorkflowVersion',
  'output',
  z.object({
    name: z.string(),
    version: z.number().int(),
    createdAt: z.string(),
    definition: z.unknown().describe('The definition as it was registered (see Definition).'),
  }),
);

const hostFields = { name: z.string(), ...hostEntrySchema.shape };
/** An inventory host. */
export const HostSchema = named('Host', 'output', z.object(hostFields));
/** `PUT /v1/hosts/:name`: the stored host and what will fail until fixed. */
export const HostStoredSchema = named(
  'HostStored',
  'output',
  z.object({
    ...hostFields,
    warnings: z.array(IssueSchema).describe('Secrets the host names that are not stored yet.'),
  }),
);
/** `GET /v1/hosts`. */
export const HostListSchema = named('HostList', 'output', z.object({ hosts: z.array(HostSchema) }));

const okMessage = z.object({ ok: z.boolean(), message: z.string().optional() });
/** `POST /v1/hosts/:name/check`. */
export const HostCheckSchema = named(
  'HostCheck',
  'output',
  z.object({
    host: z.string(),
    reachable: z.boolean(),
    hostKey: z
      .object({
        type: z.string(),
        fingerprint: z.string(),
        keyLine: z.string(),
        status: z.enum(['verified', 'trusted-on-first-use', 'rejected']),
        source: z.string().optional(),
      })
      .nullable(),
    auth: z.object({ ok: z.boolean(), method: z.enum(['key', 'password', 'agent']) }).nullable(),
    sudo: okMessage.nullable(),
    latencyMs: z.number().nullable(),
    commandMs: z.number().nullable(),
    errors: z.array(serializedError),
  }),
);

/** A secret's name (values are write-only). */
export const SecretNameSchema = named('SecretName', 'output', z.object({ name: z.string() }));
/** `GET /v1/secrets`. */
export const SecretListSchema = named(
  'SecretList',
  'output',
  z.object({ secrets: z.array(SecretNameSchema) }),
);

/** `GET /healthz` and `GET /readyz`. */
export const HealthSchema = named(
  'Health',
  'output',
  z.object({
    status: z.enum(['ok', 'ready', 'unavailable']),
    error: ErrorSchema.shape.error.optional(),
  }),
);

function mask<T extends object>(shape: T): { [K in keyof T]: true } {
  return Object.fromEntries(Object.keys(shape).map((k) => [k, true])) as { [K in keyof T]: true };
}

type Assert<T extends true> = T;
type Fits<A, B> = A extends B ? true : false;
/** Compile-time checks that what the handlers return fits the documented response schemas. */
export type ResponseDrift = [
  Assert<Fits<RunDocument, z.output<typeof RunSchema>>>,
  Assert<Fits<ReturnType<typeof runPlan>, z.output<typeof PlanSchema>>>,
  Assert<Fits<HostCheck, z.output<typeof HostCheckSchema>>>,
];

/** `GET /v1/whoami`. */
export const WhoamiSchema = named(
  'Whoami',
  'output',
  z.object({
    role: z.enum(['read', 'run', 'admin']).describe('What the presented token may do.'),
    authentication: z
      .boolean()
      .describe('false when the API has no tokens configured: every request may do everything.'),
  }),
);

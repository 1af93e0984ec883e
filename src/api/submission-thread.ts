/**
 * The body of the submission thread (see submissions.ts): parses, bounds and validates
 * definitions, registers them, and compiles, adds and announces runs, so none of that CPU work
 * (nor the garbage of a definition's objects) lands on the API's event loop. Every answer is a
 * plain, small message; errors travel as their name, code, message and issues and are rebuilt
 * on the other side.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FlowProducer } from 'bullmq';
import { type ConveyorError, ValidationError } from '../errors.ts';
import { allowDeepFlows } from '../flows/deep-flows.ts';
import { compileRun, parseBody, type RunMeta, validateDefinition, type Workflow } from '../flows/index.ts';
import { type Inventory, resolveTargets } from '../inventory/index.ts';
import { type ConnectionSpec, openFromSpec } from '../redis-client.ts';
import { RunStore, WorkflowStore } from '../store/index.ts';

/** A question to the thread. */
export type SubmissionRequest =
  | {
      id: number;
      op: 'check';
      text: string;
      format: 'json' | 'yaml';
      /** Where the definition is in the body (`workflow` for an ad-hoc run); the body itself if unset. */
      field?: string;
      inventory: Inventory;
    }
  | ({ id: number; op: 'register' } & DefinitionText)
  | { id: number; op: 'start'; meta: ThinMeta; from: DefinitionSource; announce: boolean; flow: boolean };

/** A definition as sent, with what validating it needs. */
interface DefinitionText {
  text: string;
  format: 'json' | 'yaml';
  inventory: Inventory;
}

/** A run's meta whose definition may be left out, for the thread to find by `DefinitionSource`. */
export type ThinMeta = Omit<RunMeta, 'definition'> & { definition?: Workflow };

/**
 * Where the thread finds a run's definition without it crossing the thread boundary: in the
 * meta itself, in a stored version, or among the definitions the thread checked last (`check`
 * answers their `checked` number).
 */
export type DefinitionSource =
  | { kind: 'meta' }
  | { kind: 'stored'; name: string; version: number }
  | { kind: 'checked'; checked: number };

/** What `register` answers. */
export interface Registration {
  name: string;
  version: number;
  created: boolean;
}

/** An error as it crosses the thread boundary. */
export interface ThreadError {
  name: string;
  message: string;
  code?: string;
  issues?: ValidationError['issues'];
}

/** The thread's answer. */
export type SubmissionReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: ThreadError };

/** What the thread is started with. */
export interface SubmissionThreadData {
  entry: string;
  redis: ConnectionSpec;
  /** BullMQ's prefix, hash tag included. */
  bullPrefix: string;
  /** Conveyor's key prefix (records, workflows). */
  prefix: string;
}

const data = workerData as SubmissionThreadData;

/** The thread's connection and stores, opened when the thread starts: its first question does not wait for a connect. */
function open() {
  // Like the API's own connection: no offline queue, so a down Redis fails at once (503).
  const connection = openFromSpec(data.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  connection.on('error', () => undefined);
  return {
    connection,
    flows: allowDeepFlows(new FlowProducer({ connection, prefix: data.bullPrefix })),
    runs: new RunStore(connection, data.prefix),
    workflows: new WorkflowStore(connection, data.prefix),
  };
}
const stores = open();

/** How long a question waits for the thread's connection to be ready before trying anyway. */
const READY_WAIT_MS = 2000;

async function connected() {
  // Without an offline queue, a command sent while first connecting fails: wait for that
  // briefly, then let the command fail with Redis's own error (the API answers 503). A lost
  // connection (`reconnecting`) fails at once, as the API's own does.
  const { connection } = stores;
  if (['wait', 'connecting', 'connect'].includes(connection.status)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        connection.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, READY_WAIT_MS);
      connection.once('ready', done);
    });
  }
  return stores;
}

/**
 * The definitions `check` validated last, by number, for the `start` that usually follows: a
 * few, since the API asks one question at a time and starts a checked run right after.
 */
const checkedDefinitions = new Map<number, Workflow>();
const CHECKED_KEPT = 8;
let checkedCount = 0;

function remember(workflow: Workflow): number {
  const n = ++checkedCount;
  checkedDefinitions.set(n, workflow);
  for (const old of checkedDefinitions.keys()) {
    if (checkedDefinitions.size <= CHECKED_KEPT) break;
    checkedDefinitions.delete(old);
  }
  return n;
}

/** Thrown when a run's definition is no longer where the API said: it resends the meta whole. */
class DefinitionGone extends Error {
  override name = 'DefinitionGone';
}

async function definitionOf(meta: ThinMeta, from: DefinitionSource): Promise<Workflow> {
  if (from.kind === 'meta' && meta.definition) return meta.definition;
  if (from.kind === 'checked') {
    const workflow = checkedDefinitions.get(from.checked);
    if (workflow) return workflow;
  }
  if (from.kind === 'stored') {
    const stored = await (await connected()).workflows.get(from.name, from.version);
    if (stored) return stored.workflow;
  }
  throw new DefinitionGone("the run's definition is no longer in the thread");
}

function validate(request: DefinitionText, definition: unknown): Workflow {
  const hosts = { resolve: (name: string) => resolveTargets(request.inventory, name)?.sort() };
  return validateDefinition(definition, { hosts });
}

function toThreadError(err: unknown): ThreadError {
  const e = err as Partial<ConveyorError & ValidationError> | undefined;
  return {
    name: e?.name ?? 'Error',
    message: e?.message ?? String(err),
    code: typeof e?.code === 'string' ? e.code : undefined,
    issues: err instanceof ValidationError ? err.issues : undefined,
  };
}

async function answer(request: SubmissionRequest): Promise<unknown> {
  if (request.op === 'start') {
    const meta: RunMeta = { ...request.meta, definition: await definitionOf(request.meta, request.from) };
    const { flows, runs } = await connected();
    // The order launch() has always used: the flow first, then the record that announces it.
    if (request.flow) await flows.add(compileRun(meta));
    if (request.announce) await runs.announce(meta);
    return null;
  }
  const value = parseBody(request.text, request.format);
  if (request.op === 'register') {
    const workflow = validate(request, value);
    const { version, created } = await (await connected()).workflows.register(value, workflow);
    return { name: workflow.name, version, created } satisfies Registration;
  }
  const definition = request.field ? (value as Record<string, unknown> | null)?.[request.field] : value;
  if (request.field && definition === undefined) return { value };
  try {
    const workflow = validate(request, definition);
    return { value, workflow, checked: remember(workflow) };
  } catch (err) {
    // The body parsed: the caller checks its other fields first, then reports these issues.
    if (err instanceof ValidationError) return { value, definitionError: toThreadError(err) };
    throw err;
  }
}

// One question at a time: the largest submission costs a few hundred MB while its flow is
// built, and several at once must not add up past the thread's heap.
let queue: Promise<unknown> = Promise.resolve();
parentPort!.on('message', (request: SubmissionRequest) => {
  queue = queue.then(() => reply(request));
});

function reply(request: SubmissionRequest): Promise<void> {
  return answer(request).then(
    (result) => parentPort!.postMessage({ id: request.id, ok: true, result } satisfies SubmissionReply),
    (err) =>
      parentPort!.postMessage({
        id: request.id,
        ok: false,
        error: toThreadError(err),
      } satisfies SubmissionReply),
  );
}

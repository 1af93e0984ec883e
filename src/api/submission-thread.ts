/**
 * The body of the submission thread (see submissions.ts): parses, bounds and validates
 * definitions, and compiles and adds runs' flows, so none of that CPU work runs on the API's
 * event loop. Every answer is a plain message; errors travel as their name, code, message and
 * issues and are rebuilt on the other side.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FlowProducer } from 'bullmq';
import { type ConveyorError, ValidationError } from '../errors.ts';
import { allowDeepFlows } from '../flows/deep-flows.ts';
import { compileRun, parseBody, type RunMeta, validateDefinition } from '../flows/index.ts';
import { type Inventory, resolveTargets } from '../inventory/index.ts';
import { type ConnectionSpec, openFromSpec } from '../redis-client.ts';

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
  | { id: number; op: 'add'; meta: RunMeta };

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
}

const data = workerData as SubmissionThreadData;
let flows: FlowProducer | undefined;

function producer(): FlowProducer {
  if (!flows) {
    // Like the API's own connection: no offline queue, so a down Redis fails at once (503).
    const connection = openFromSpec(data.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    connection.on('error', () => undefined);
    flows = allowDeepFlows(new FlowProducer({ connection, prefix: data.bullPrefix }));
  }
  return flows;
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
  if (request.op === 'add') {
    await producer().add(compileRun(request.meta));
    return null;
  }
  const value = parseBody(request.text, request.format);
  const definition = request.field ? (value as Record<string, unknown> | null)?.[request.field] : value;
  if (request.field && definition === undefined) return { value };
  const hosts = { resolve: (name: string) => resolveTargets(request.inventory, name)?.sort() };
  try {
    return { value, workflow: validateDefinition(definition, { hosts }) };
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

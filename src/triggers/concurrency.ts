/**
 * Concurrency groups (GitHub Actions' workflow-level `concurrency:`): at most one run of a group
 * runs at a time; a newer run waits (only the newest waiting run is kept, an older one is
 * cancelled as superseded) or, with `cancelInProgress`, cancels the run in progress and starts
 * when it has ended.
 *
 * A waiting run holds no worker slot and no BullMQ job: its record is written (`queued`, with
 * its meta) but its flow is added only when it takes the group. The group's state lives in one
 * Lua script (store/lua/concurrency-group.lua), so it holds across every API and worker process.
 */
import type { FlowProducer } from 'bullmq';
import { ValidationError } from '../errors.ts';
import {
  compileRun,
  evaluate,
  parseExpression,
  type RunMeta,
  splitTemplate,
  toText,
  type Workflow,
} from '../flows/index.ts';
import { GroupStore, type RunStore } from '../store/index.ts';

/**
 * How long a holder may go without a flow before a newcomer adds it: the process that admitted
 * it died between the group's update and its `FlowProducer.add` (a window of one round trip).
 */
export const ADMISSION_GRACE_MS = 30_000;

/** The run's group, evaluated over its inputs and trigger; undefined when it has none (or it is empty). */
export function evaluateGroup(
  workflow: Workflow,
  inputs: Record<string, unknown>,
  trigger: Record<string, unknown>,
): RunMeta['concurrency'] {
  const spec = workflow.concurrency;
  if (!spec) return undefined;
  let group = '';
  try {
    for (const segment of splitTemplate(spec.group)) {
      group +=
        segment.kind === 'text'
          ? segment.value
          : toText(evaluate(parseExpression(segment.source), { inputs, trigger }));
    }
  } catch (err) {
    throw new ValidationError(
      'the concurrency group could not be evaluated',
      [{ path: 'concurrency.group', message: (err as Error).message }],
      { cause: err },
    );
  }
  return group === '' ? undefined : { group, cancelInProgress: spec.cancelInProgress };
}

/** Adds a run's flow from its record, unless the flow exists or the run has ended. */
export async function startFromRecord(
  store: RunStore,
  start: (meta: RunMeta) => Promise<unknown>,
  runId: string,
): Promise<boolean> {
  const redis = store.connection;
  if (await redis.exists(store.keys.rootJob(runId))) return false;
  const [status, meta] = await redis.hmget(store.keys.run(runId), 'status', 'meta');
  if (!meta || status !== 'queued') return false;
  // BullMQ keeps one copy of each job id, should two processes get here at once.
  await start(JSON.parse(meta) as RunMeta);
  return true;
}

/** What admitting a grouped run needs. */
export interface AdmitDeps {
  store: RunStore;
  /** Compiles and adds a run's flow (the API does it on its submission thread). */
  start(meta: RunMeta): Promise<unknown>;
  /** Cancels a run in progress (its workers stop it); a run that has just ended is no error. */
  cancel(runId: string): Promise<unknown>;
}

/**
 * Admits a new run (its record already written) into its group: adds its flow when it takes the
 * group, else leaves it waiting; cancels the holder with `cancelInProgress`.
 */
export async function admitRun(deps: AdmitDeps, meta: RunMeta): Promise<void> {
  const { group, cancelInProgress } = meta.concurrency!;
  const admission = await groupsOf(deps.store).acquire(group, meta.id, cancelInProgress);
  if (admission.start) {
    await deps.start(meta);
    return;
  }
  if (admission.cancel) await deps.cancel(admission.cancel);
  if (Date.now() - admission.heldSince > ADMISSION_GRACE_MS)
    await startFromRecord(deps.store, deps.start, admission.holder);
}

/**
 * Called by the run's finaliser once the run is final: gives its group to the pending run, if
 * any, and starts it. Repeated calls (a retried finaliser) start the current holder if its flow
 * is missing, and do nothing else.
 */
export async function releaseGroup(
  deps: { store: RunStore; flows: FlowProducer },
  meta: RunMeta,
): Promise<void> {
  if (!meta.concurrency) return;
  const { next } = await groupsOf(deps.store).release(meta.concurrency.group, meta.id);
  if (next) await startFromRecord(deps.store, (meta) => deps.flows.add(compileRun(meta)), next);
}

/**
 * Cancels a run that waits for its group, at once (it has no flow to stop); false when the run
 * is not waiting, so the caller cancels it the usual way.
 */
export async function withdrawPending(store: RunStore, runId: string): Promise<boolean> {
  const meta = (await store.snapshot(runId, [], true)).meta;
  if (!meta?.concurrency) return false;
  return groupsOf(store).withdraw(
    meta.concurrency.group,
    runId,
    'cancelled while waiting for its concurrency group',
  );
}

function groupsOf(store: RunStore): GroupStore {
  return new GroupStore(store.connection, store.keys);
}

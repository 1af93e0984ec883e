/**
 * The run document (docs/reference.md §4.1) assembled from a run's record hash: pure, so the API can
 * derive the document of a run it just announced without reading it back, and the reader can
 * build it from one HGETALL.
 */

import { type RunMeta, stepQueueName } from '../flows/index.ts';
import type { InstanceView, RunDocument, RunStatus, StepDetails, StepStatus, StepView } from './run-types.ts';

/** The document of a run just announced, derived from its meta (no read-back). */
export function initialDocument(meta: RunMeta, unserved: Record<string, string> = {}): RunDocument {
  const fields: Record<string, string> = {};
  for (const id of meta.definition.order) {
    fields[`st:${id}`] = meta.definition.steps[id]!.needs.length === 0 ? 'queued' : 'pending';
  }
  return runDocument(meta, fields, unserved);
}

/** Assembles a run document from its meta and the fields of its record hash. */
export function runDocument(
  meta: RunMeta,
  all: Record<string, string>,
  unserved: Record<string, string> = {},
): RunDocument {
  const steps: Record<string, StepView> = {};
  for (const id of meta.definition.order) {
    const details = all[`s:${id}`] ? (JSON.parse(all[`s:${id}`]!) as StepDetails) : undefined;
    const step = meta.definition.steps[id]!;
    const status = (all[`st:${id}`] ?? 'pending') as StepStatus;
    const waiting = unserved[stepQueueName(step.executor, step.runsOn ?? [])];
    steps[id] = {
      status,
      executor: step.executor,
      needs: step.needs,
      ...(step.name !== undefined && { name: step.name }),
      ...(step.runsOn?.length && { runsOn: step.runsOn }),
      ...details,
      // Only while it waits: once a worker takes it the flag is history.
      ...(waiting && (status === 'queued' || status === 'pending') && { waiting }),
    };
    if (details?.hosts) {
      const instances: Record<string, InstanceView> = {};
      for (const host of details.hosts) {
        const raw = all[`i:${id}@${host}`];
        instances[host] = raw ? (JSON.parse(raw) as InstanceView) : { status: 'pending' };
      }
      steps[id]!.instances = instances;
    }
  }
  return {
    id: meta.id,
    workflow: meta.workflow,
    status: (all.status ?? 'queued') as RunStatus,
    cancelRequested: all.cancel === '1',
    ...(all.cancelReason && { cancelReason: all.cancelReason }),
    ...(meta.concurrency && { concurrency: meta.concurrency }),
    inputs: meta.inputs,
    trigger: meta.trigger,
    createdAt: meta.createdAt,
    startedAt: all.startedAt ?? null,
    finishedAt: all.finishedAt ?? null,
    steps,
  };
}

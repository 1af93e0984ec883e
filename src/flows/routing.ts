/**
 * Routing steps to workers: a step's executor and `runsOn` tags name one BullMQ queue, and a
 * worker consumes every queue whose tag set is a subset of its own tags. Pure functions shared
 * by the compiler, the API (dry runs, waiting flags) and the workers.
 */

/** A tag: lower-case letters, digits, `_`, `.` or `-`, 1–32 characters (no `+`, `@`, `:`). */
export const TAG = /^[a-z0-9][a-z0-9_.-]{0,31}$/;

/** Tags one step may ask for, and one worker may serve (`WORKER_TAGS`). */
export const MAX_TAGS = 8;

/** Prefix of every step queue's name (BullMQ queue names may not contain `:`). */
const STEP_QUEUE = 'steps-';

/** The tags, deduplicated and sorted: the canonical form a queue name is built from. */
export function canonicalTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

/** Queue of the steps of `executor` asking for `tags`: `steps-local`, `steps-local@eu+gpu`. */
export function stepQueueName(executor: string, tags: readonly string[] = []): string {
  const sorted = canonicalTags(tags);
  return sorted.length ? `${STEP_QUEUE}${executor}@${sorted.join('+')}` : `${STEP_QUEUE}${executor}`;
}

/** The executor and tags a step queue's name stands for, or undefined for another name. */
export function parseStepQueue(name: string): { executor: string; tags: string[] } | undefined {
  if (!name.startsWith(STEP_QUEUE)) return undefined;
  const [executor = '', tagPart] = name.slice(STEP_QUEUE.length).split('@', 2);
  if (!executor) return undefined;
  return { executor, tags: tagPart ? tagPart.split('+') : [] };
}

/** What a worker serves, as its heartbeat says. */
export interface Capabilities {
  executors: readonly string[];
  tags: readonly string[];
  /** `WORKER_TAGS_ONLY`: the worker takes tagged steps only. */
  tagsOnly: boolean;
}

/** True when a worker with `caps` consumes the queue of `executor` with `tags`. */
export function serves(caps: Capabilities, executor: string, tags: readonly string[]): boolean {
  if (!caps.executors.includes(executor)) return false;
  if (tags.length === 0) return !caps.tagsOnly;
  return tags.every((tag) => caps.tags.includes(tag));
}

/** The flag a step gets when no live worker serves it (run document, dry run, `step.waiting`). */
export function waitingReason(executor: string, tags: readonly string[]): string {
  const sorted = canonicalTags(tags);
  return `no live worker serves executor ${executor}${sorted.length ? ` with tags [${sorted.join(', ')}]` : ''}`;
}

/**
 * Of the step queues `names`, the ones no worker in `workers` serves (queue → reason) and the
 * ones some worker serves. Names that are not step queues are ignored.
 */
export function classifyQueues(
  names: readonly string[],
  workers: readonly Capabilities[],
): { unserved: Record<string, string>; served: string[] } {
  const unserved: Record<string, string> = {};
  const served: string[] = [];
  for (const name of new Set(names)) {
    const parsed = parseStepQueue(name);
    if (!parsed) continue;
    if (workers.some((w) => serves(w, parsed.executor, parsed.tags))) served.push(name);
    else unserved[name] = waitingReason(parsed.executor, parsed.tags);
  }
  return { unserved, served };
}

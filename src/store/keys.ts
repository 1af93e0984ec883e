/**
 * Every Redis key of Conveyor's own (BullMQ owns `{prefix}:<queue>:…`). All share the `{prefix}`
 * hash tag, so a run's record and its BullMQ jobs live in one Redis Cluster slot.
 */

/** The hash-tagged prefix given to BullMQ and used for our own records. */
export function bullPrefix(prefix: string): string {
  return `{${prefix}}`;
}

/** Key builder for one prefix. */
export function keys(prefix: string) {
  const base = `${bullPrefix(prefix)}:rec`;
  return {
    run: (runId: string) => `${base}:run:${runId}`,
    events: (runId: string) => `${base}:run:${runId}:events`,
    /** A step attempt's combined output (attempts count from 1). */
    log: (runId: string, stepId: string, attempt: number) => `${base}:run:${runId}:log:${stepId}#${attempt}`,
    runs: () => `${base}:runs`,
    workflowRuns: (name: string) => `${base}:runs:wf:${name}`,
    workflow: (name: string) => `${base}:wf:${name}`,
    workflows: () => `${base}:workflows`,
    /** Last version number given to a workflow; outlives DELETE so a number is never reused. */
    workflowSeq: (name: string) => `${base}:wfseq:${name}`,
    idempotency: (scope: string, key: string) => `${base}:idem:${scope}:${key}`,
    /** Hash: host name → inventory entry JSON (hosts managed through the API). */
    hosts: () => `${base}:hosts`,
    /** Hash: secret name → AES-256-GCM ciphertext. */
    secrets: () => `${base}:secrets`,
    instanceLog: (runId: string, stepId: string, host: string, attempt: number) =>
      `${base}:run:${runId}:log:${stepId}@${host}#${attempt}`,
    /** A worker's heartbeat JSON, expiring (`src/store/worker-registry.ts`). */
    worker: (id: string) => `${base}:worker:${id}`,
    /** Sorted set: worker id → when its heartbeat expires (ms). */
    workers: () => `${base}:workers`,
    /** A dashboard session (its role), by the SHA-256 of its cookie value; expires. */
    adminSession: (digest: string) => `${base}:admin-session:${digest}`,
    /** Hash of metrics counters (`src/store/stats.ts`), kept by the step and run scripts. */
    stats: () => `${base}:stats`,
    /** Stream of events published by steps (`$CONVEYOR_EVENTS`, `ctx.emit`), for event triggers. */
    bus: () => `${base}:bus`,
    /** Pub/sub channel on which cancel requests reach workers at once. */
    cancelChannel: () => `${base}:cancel`,
    /** Pub/sub channel on which workers learn that a run ended (to drop its workspace). */
    endedChannel: () => `${base}:ended`,
  };
}

/** The key builder's type. */
export type Keys = ReturnType<typeof keys>;

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
    /** The prefix of every record key (`{prefix}:rec:`): Lua scripts derive keys from it. */
    records: () => `${base}:`,
    run: (runId: string) => `${base}:run:${runId}`,
    events: (runId: string) => `${base}:run:${runId}:events`,
    /** A step attempt's combined output (attempts count from 1). */
    log: (runId: string, stepId: string, attempt: number) => `${base}:run:${runId}:log:${stepId}#${attempt}`,
    runs: () => `${base}:runs`,
    workflowRuns: (name: string) => `${base}:runs:wf:${name}`,
    /**
     * Sorted set of finished runs by the time they expire (ms): member `<run id>/<workflow>`,
     * so the retention pass can trim both indexes even after the record's TTL has removed it.
     */
    expiries: () => `${base}:runs:expiry`,
    /** The retention pass's lock: one pass at a time across API processes. */
    retentionLock: () => `${base}:retention:lock`,
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
    /** A dashboard session (its role), by the SHA-256 of its cookie value; expires. */
    adminSession: (digest: string) => `${base}:admin-session:${digest}`,
    /** Hash of metrics counters (`src/store/stats.ts`), kept by the step and run scripts. */
    stats: () => `${base}:stats`,
    /** Stream of events published by steps (`$CONVEYOR_EVENTS`, `ctx.emit`), for event triggers. */
    bus: () => `${base}:bus`,
    /** Consumer group of the API processes that start `on.event` workflows from the bus. */
    busGroup: () => 'triggers',
    /** What a trigger delivery (webhook delivery, keyed event, bus entry) started, for replays. */
    triggerOnce: (scope: string) => `${base}:trig:once:${scope}`,
    /** Stream of recent events and the runs they started (`GET /v1/events`). */
    eventLog: () => `${base}:trig:events`,
    /** Count of event chains cut off at the nesting limit. */
    eventCuts: () => `${base}:trig:cuts`,
    /** Hash: a concurrency group's holder and pending run (concurrency-group.lua). */
    group: (name: string) => `${base}:group:${name}`,
    /** BullMQ's hash of a run's root job (queue `runs`, job id = run id): the run's flow exists. */
    rootJob: (runId: string) => `${bullPrefix(prefix)}:runs:${runId}`,
    /** Pub/sub channel on which cancel requests reach workers at once. */
    cancelChannel: () => `${base}:cancel`,
    /** Pub/sub channel on which workers learn that a run ended (to drop its workspace). */
    endedChannel: () => `${base}:ended`,
    /** String: a client's rate-limit bucket (its next theoretical arrival time, ms). */
    rateLimit: (client: string) => `${base}:rl:${client}`,
    /** Sorted set: worker id → last heartbeat (ms); the heartbeats themselves are `worker(id)`. */
    workers: () => `${base}:workers`,
    /** String: one worker's last heartbeat JSON, expiring after about three heartbeat intervals. */
    worker: (id: string) => `${base}:worker:${id}`,
    /** Set: every step queue a run was launched on (workers subscribe to the ones they serve). */
    stepQueues: () => `${base}:step-queues`,
    /** Hash: step queue → why no live worker serves it (the waiting check keeps it current). */
    unserved: () => `${base}:unserved`,
    /** Sorted set: runs not final yet → creation time (ms), for the periodic reconciliation. */
    activeRuns: () => `${base}:runs:active`,
    /** String: a short lease so one process of many does a periodic job. */
    lease: (name: string) => `${base}:lease:${name}`,
  };
}

/** The key builder's type. */
export type Keys = ReturnType<typeof keys>;

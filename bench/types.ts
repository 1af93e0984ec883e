/** The shape every benchmark suite returns; `bench/run.ts` prints them as one table. */

/** One measured figure, optionally against a peer measured in the same run. */
export interface BenchRow {
  /** What was measured, e.g. `chain of 200: step→dependent latency p50`. */
  metric: string;
  value: number;
  unit: string;
  /** The peer, e.g. `raw BullMQ flow`, and its figure in the same unit. */
  peer?: string;
  peerValue?: number;
  /** Optional target, for the table, e.g. `≤ 1.2× peer`. */
  target?: string;
}

/** What a suite gets: the Redis to use (fresh prefix per suite is the suite's job). */
export interface BenchContext {
  redisUrl: string;
}

/** A suite: a name and a function that measures. */
export interface BenchSuite {
  name: string;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}

/**
 * BullMQ `Queue` handles on every Conveyor queue (`queueNames()`), on the API's connection, for
 * readers of the whole set: the dashboard and `/metrics`. Built on first use.
 */
import { Queue } from 'bullmq';
import { queueNames } from '../flows/index.ts';
import type { RedisClient } from '../redis-client.ts';

/** The API's handles on every queue. */
export class QueueSet {
  private queues?: Queue[];

  constructor(
    private readonly redis: RedisClient,
    /** BullMQ prefix (hash-tagged). */
    private readonly prefix: string,
  ) {}

  /** Every queue, in `queueNames()` order. */
  all(): Queue[] {
    this.queues ??= queueNames().map(
      (name) => new Queue(name, { connection: this.redis, prefix: this.prefix }),
    );
    return this.queues;
  }

  /** Closes the handles (the shared connection stays open). */
  async close(): Promise<void> {
    await Promise.all((this.queues ?? []).map((queue) => queue.close()));
  }
}

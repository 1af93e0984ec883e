/**
 * The step queues one worker consumes. Every (executor, tag set) pair a run was ever launched
 * with has its own queue (`steps-local`, `steps-local@eu+gpu`; flows/routing.ts), and the API
 * adds each new one to a set in Redis before its jobs exist. A worker consumes the untagged queue
 * of each of its executors (unless `WORKER_TAGS_ONLY`) and every queue in that set whose tags are
 * a subset of its own, re-reading the set every `refreshMs`. So a worker opens BullMQ Workers (two
 * connections each) only for tag sets in use, not for the 2^n subsets of its tags.
 */
import type { Job, Processor, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { type Capabilities, parseStepQueue, serves, stepQueueName } from '../flows/index.ts';
import type { WorkerRegistry } from '../store/index.ts';
import { type Slots, trim, withSlot } from './slots.ts';

/** Options of the consumers. */
export interface StepConsumerOptions {
  capabilities: Capabilities;
  slots: Slots;
  registry: WorkerRegistry;
  /** Builds the BullMQ Worker of one queue around the (slot-guarded) processor. */
  create(queueName: string, processor: Processor): Worker;
  /** Called with each Worker once created (listeners). */
  onWorker(worker: Worker): void;
  /** How often the set of queues is re-read. @defaultValue 1000 */
  refreshMs?: number;
  logger: Logger;
}

/** The BullMQ Workers of the step queues this process serves. */
export class StepConsumers {
  private readonly consumers = new Map<string, { worker: Worker; inFlight: number }>();
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly processor: Processor,
    private readonly options: StepConsumerOptions,
  ) {}

  /** Consumes the untagged queues and every served queue known now; then keeps looking. */
  async start(): Promise<void> {
    const { capabilities } = this.options;
    const untagged = capabilities.tagsOnly ? [] : capabilities.executors.map((e) => stepQueueName(e));
    await this.add(untagged);
    await this.refresh();
    this.timer = setInterval(() => {
      this.refreshing ??= this.refresh()
        // While Redis is away the heartbeat already says so; once a second would be noise.
        .catch((err) => this.options.logger.debug({ err }, 'could not read the step queues'))
        .finally(() => {
          this.refreshing = undefined;
        });
    }, this.options.refreshMs ?? 1000);
    this.timer.unref();
  }

  /** The Workers, for closing and cancelling their jobs. */
  workers(): Worker[] {
    return [...this.consumers.values()].map((c) => c.worker);
  }

  /** Queue names consumed. */
  queues(): string[] {
    return [...this.consumers.keys()];
  }

  /** Stops looking for new queues (before the Workers close). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.refreshing;
  }

  /** Re-balances the Workers' BullMQ concurrency after slots changed hands. */
  trim(): void {
    trim(this.options.slots, this.consumers.values());
  }

  private async refresh(): Promise<void> {
    const { capabilities } = this.options;
    const names = (await this.options.registry.queues()).filter((name) => {
      const parsed = parseStepQueue(name);
      return (
        parsed !== undefined && parsed.tags.length > 0 && serves(capabilities, parsed.executor, parsed.tags)
      );
    });
    await this.add(names);
  }

  private async add(names: string[]): Promise<void> {
    const created: Worker[] = [];
    for (const name of names) {
      if (this.stopped || this.consumers.has(name)) continue;
      const counter = { inFlight: 0 };
      const guarded = withSlot(this.options.slots, this.processor);
      const worker = this.options.create(name, async (job: Job, token?: string, signal?: AbortSignal) => {
        counter.inFlight++;
        try {
          return await guarded(job, token, signal);
        } finally {
          counter.inFlight--;
          this.trim();
        }
      });
      const consumer = {
        worker,
        get inFlight() {
          return counter.inFlight;
        },
      };
      this.consumers.set(name, consumer);
      this.options.onWorker(consumer.worker);
      created.push(consumer.worker);
      if (parseStepQueue(name)?.tags.length)
        this.options.logger.info({ queue: name }, 'consuming a tagged queue');
    }
    this.trim();
    await Promise.all(created.map((w) => w.waitUntilReady()));
  }
}

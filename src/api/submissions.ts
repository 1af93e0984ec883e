/**
 * One worker thread per API process for the CPU-heavy part of a submission: parsing a body of up
 * to 1 MiB (YAML parses at about 1 MB/s), checking limits, validating, compiling and adding the
 * run's flow (tens of thousands of jobs for the largest allowed definition). On the event loop
 * those phases stall every other request for up to seconds; here `/healthz` keeps answering.
 * The thread starts on first use and is restarted if it dies; it answers one question at a time,
 * in order, so large submissions queue rather than add up.
 */
import { Worker } from 'node:worker_threads';
import type { RedisOptions } from 'ioredis';
import { UnavailableError, ValidationError } from '../errors.ts';
import type { RunMeta, Workflow } from '../flows/index.ts';
import { LimitError } from '../flows/limits.ts';
import type { Inventory } from '../inventory/index.ts';
import type {
  SubmissionReply,
  SubmissionRequest,
  SubmissionThreadData,
  ThreadError,
} from './submission-thread.ts';

/** A checked body: its value and, when it held a valid definition, the workflow. */
export interface CheckedBody {
  value: unknown;
  workflow?: Workflow;
  /** The definition's problems; the caller reports them after the body's own. */
  definitionError?: ValidationError;
}

// The thread runs what the process runs: the compiled dist/ as it is, the TypeScript sources
// through tsx's loader (a thread does not inherit the process's loader hooks).
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const BOOT = `
const { workerData } = require('node:worker_threads');
const loader = workerData.entry.endsWith('.ts') ? import('tsx/esm/api').then((tsx) => tsx.register()) : Promise.resolve();
loader.then(() => import(workerData.entry));
`;

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void };
type Question = SubmissionRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** The submission thread, seen from the API. */
export class SubmissionThread {
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(private readonly options: { redis: RedisOptions; bullPrefix: string }) {}

  /** Parses `text`, checks its limits and validates the definition in it (`field`, or the body). */
  async check(
    text: string,
    format: 'json' | 'yaml',
    inventory: Inventory,
    field?: string,
  ): Promise<CheckedBody> {
    const result = (await this.ask({ op: 'check', text, format, inventory, field })) as {
      value: unknown;
      workflow?: Workflow;
      definitionError?: ThreadError;
    };
    return {
      value: result.value,
      workflow: result.workflow,
      definitionError: result.definitionError && (rebuild(result.definitionError) as ValidationError),
    };
  }

  /** Compiles the run and adds its flow: one `FlowProducer.add`, one MULTI. */
  async add(meta: RunMeta): Promise<void> {
    await this.ask({ op: 'add', meta });
  }

  /** Stops the thread (and its Redis connection). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private ask(question: Question): Promise<unknown> {
    const id = this.nextId++;
    const worker = this.start();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...question, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const workerData: SubmissionThreadData = {
      entry: new URL(`./submission-thread.${FROM_SOURCES ? 'ts' : 'js'}`, import.meta.url).href,
      ...this.options,
    };
    // A heap of its own, capped: whatever a submission costs, it cannot take the API down with it.
    const worker = new Worker(BOOT, {
      eval: true,
      workerData,
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    // An idle thread must not keep the process alive.
    worker.unref();
    worker.on('message', (reply: SubmissionReply) => {
      const pending = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) pending?.resolve(reply.result);
      else pending?.reject(rebuild(reply.error));
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const pending of this.pending.values()) pending.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) =>
      fail(new UnavailableError(`the submission thread stopped (code ${code}); try again`)),
    );
    this.worker = worker;
    return worker;
  }
}

/** The thread's error as the class the API's error handler knows. */
function rebuild(error: ThreadError): Error {
  if (error.issues) {
    const Kind = error.name === 'LimitError' ? LimitError : ValidationError;
    return new Kind(error.message, error.issues);
  }
  // Redis errors keep name, code and message: the error handler recognises "Redis is down" by them.
  const err = new Error(error.message) as Error & { code?: string };
  err.name = error.name;
  if (error.code) err.code = error.code;
  return err;
}

/**
 * One worker thread per API process for the CPU-heavy part of a submission: parsing a body of up
 * to 1 MiB (YAML parses at about 1 MB/s), checking limits, validating, registering (digest and
 * JSON of a stored version), compiling, adding the run's flow (tens of thousands of jobs for the
 * largest allowed definition) and writing its record. On the event loop those phases stall every
 * other request for up to seconds; here `/healthz` keeps answering. Definitions cross the thread
 * boundary as little as possible: a run's definition is found by the thread itself (a stored
 * version, or the one it just checked), since copying a 10,000-step workflow costs tens of ms.
 * The thread starts on first use and is restarted if it dies; it answers one question at a time,
 * in order, so large submissions queue rather than add up.
 */
import { Worker } from 'node:worker_threads';
import { UnavailableError, ValidationError } from '../errors.ts';
import type { RunMeta, Workflow } from '../flows/index.ts';
import { LimitError } from '../flows/limits.ts';
import type { Inventory } from '../inventory/index.ts';
import type { ConnectionSpec } from '../redis-client.ts';
import type {
  DefinitionSource,
  Registration,
  SubmissionReply,
  SubmissionRequest,
  SubmissionThreadData,
  ThreadError,
} from './submission-thread.ts';

export type { DefinitionSource, Registration };

/** A checked body: its value and, when it held a valid definition, the workflow. */
export interface CheckedBody {
  value: unknown;
  workflow?: Workflow;
  /** The definition's problems; the caller reports them after the body's own. */
  definitionError?: ValidationError;
  /** Where the thread keeps the checked workflow, for starting a run of it (`start`). */
  source?: DefinitionSource;
}

/** How a run is started by the thread: its flow added, its record written, or both. */
export interface StartOptions {
  /** Where the thread finds the definition; `meta.definition` is not sent when it can. */
  from: DefinitionSource;
  flow: boolean;
  announce: boolean;
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

  constructor(private readonly options: { redis: ConnectionSpec; bullPrefix: string; prefix: string }) {}

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
      checked?: number;
      definitionError?: ThreadError;
    };
    return {
      value: result.value,
      workflow: result.workflow,
      source: result.checked === undefined ? undefined : { kind: 'checked', checked: result.checked },
      definitionError: result.definitionError && (rebuild(result.definitionError) as ValidationError),
    };
  }

  /** Parses, validates and stores a definition as a workflow version. */
  async register(text: string, format: 'json' | 'yaml', inventory: Inventory): Promise<Registration> {
    return (await this.ask({ op: 'register', text, format, inventory })) as Registration;
  }

  /**
   * Compiles the run and adds its flow (one `FlowProducer.add`, one MULTI), then writes its
   * record, as `options` say. When the thread no longer has the definition `from` names (a
   * restarted thread, a version deleted meanwhile), the meta is sent whole.
   */
  async start(meta: RunMeta, options: StartOptions): Promise<void> {
    const { from, flow, announce } = options;
    if (from.kind !== 'meta') {
      const { definition: _, ...thin } = meta;
      try {
        await this.ask({ op: 'start', meta: thin, from, flow, announce });
        return;
      } catch (err) {
        if ((err as Error).name !== 'DefinitionGone') throw err;
      }
    }
    await this.ask({ op: 'start', meta, from: { kind: 'meta' }, flow, announce });
  }

  /** Stops the thread (and its Redis connection). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private ask(question: Question): Promise<unknown> {
    const id = this.nextId++;
    const worker = this.thread();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...question, id });
    });
  }

  private thread(): Worker {
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

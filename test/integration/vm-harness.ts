/**
 * What the VM executor tests share: step builders, a recording `ExecutorContext` whose waits are
 * driven by the logs themselves (no sleeps), and a /proc scan that finds processes left behind.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { ExecutorContext, StepExecution } from '../../src/workers/executor.ts';

/** A function step with sensible defaults; `options` is the step's `vm` block. */
export function fnStep(
  source: string,
  options: Record<string, unknown> = {},
  extra: Partial<StepExecution> = {},
): StepExecution {
  return base({ function: source, options, ...extra });
}

/** A `vm:` shell step. */
export function cmdStep(
  command: string,
  options: Record<string, unknown> = {},
  extra: Partial<StepExecution> = {},
): StepExecution {
  return base({ command, options, ...extra });
}

function base(extra: Partial<StepExecution>): StepExecution {
  return {
    runId: 'run_test',
    stepId: 'step',
    attempt: 1,
    env: {},
    secrets: [],
    idempotencyKey: 'run_test:step',
    limits: { maxOutputBytes: 1024 * 1024 },
    options: {},
    context: {},
    ...extra,
  };
}

/** An `ExecutorContext` that records, with waits on what the guest prints. */
export class Recorder implements ExecutorContext {
  readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  text = '';
  bytes = 0;
  readonly progressEvents: { percent: number; message?: string }[] = [];
  #waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  /** `keepBytes`: text kept for assertions (the byte count goes on past it). */
  constructor(private readonly keepBytes = 1024 * 1024) {}

  readonly log = (_stream: 'stdout' | 'stderr', chunk: string | Buffer): void => {
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    this.bytes += size;
    if (this.text.length < this.keepBytes) this.text += chunk.toString();
    for (const waiter of [...this.#waiters]) {
      const match = this.text.match(waiter.pattern);
      if (match) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  };

  readonly progress = (percent: number, message?: string): void => {
    this.progressEvents.push(message === undefined ? { percent } : { percent, message });
  };

  /** Resolves when the output so far matches `pattern`. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    const match = this.text.match(pattern);
    if (match) return Promise.resolve(match);
    return new Promise((resolve) => this.#waiters.push({ pattern, resolve }));
  }

  abort(reason: unknown): void {
    this.controller.abort(reason);
  }
}

/** Pids of live processes whose command line contains `needle` (never this process). */
export function pidsWith(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (cmdline.includes(needle) && state !== 'Z') found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** Whether the test runs as root (guests then get uids of their own). */
export const isRoot = process.getuid?.() === 0;

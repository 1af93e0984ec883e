/**
 * Collects a step's output as the executor streams it: masks each stream as a stream (a secret
 * split across chunks, however long the pause between them, is still masked: see
 * `mask-stream.ts`), keeps lines whole, batches into `step.log` events, and enforces the log cap
 * by aborting the step rather than buffering without end. A whole stdout line
 * `::progress::<percent> [message]` (a workflow command, as in GitHub Actions) becomes a progress
 * report instead of log text.
 */
import { OutputLimitError } from '../errors.ts';
import type { Masker, MaskStream } from './mask.ts';

/** Where flushed text goes (the run store in the engine). */
export type LogWriter = (stream: 'stdout' | 'stderr', text: string) => Promise<void>;

/** Receives `::progress::` reports (awaited in order with the log writes). */
export type ProgressReporter = (percent: number, message?: string) => Promise<void> | void;

const PROGRESS = /^::progress::(\d{1,3}(?:\.\d+)?)(?:[ \t]+(.*))?$/gm;

/** At most one `step.progress` event this often; the newest report wins. */
const PROGRESS_EVERY_MS = 250;

/** Options of a sink. */
export interface LogSinkOptions {
  /** Bytes of output a step may produce before it is failed. @defaultValue 10 MiB */
  maxBytes: number;
  /**
   * How long masked text may wait for the end of its line before it is published. Text that may
   * still be the beginning of a secret is held by the masker instead, until the next bytes show
   * it is not one, or the stream ends: never released because time passed. @defaultValue 100
   */
  flushMs: number;
  /** A partial line longer than this is published without waiting for its newline. @defaultValue 16 KiB */
  maxLine: number;
}

const DEFAULTS: LogSinkOptions = { maxBytes: 10 * 1024 * 1024, flushMs: 100, maxLine: 16 * 1024 };

/** One step attempt's log sink. */
export class LogSink {
  private readonly options: LogSinkOptions;
  /** Masked text waiting for its line to end. */
  private readonly pending = { stdout: '', stderr: '' };
  private readonly masker: MaskStream;
  private bytes = 0;
  private latestProgress: { percent: number; message?: string } | undefined;
  private progressAt = 0;
  private progressTimer: NodeJS.Timeout | undefined;
  private over = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly write: LogWriter,
    mask: Masker,
    private readonly onLimit: (err: OutputLimitError) => void,
    options: Partial<LogSinkOptions> = {},
    private readonly onProgress?: ProgressReporter,
  ) {
    this.options = { ...DEFAULTS, ...options };
    // One masker for both streams, in arrival order: the stored log interleaves them, so a secret
    // split between stdout and stderr is one secret there.
    this.masker = mask.stream();
  }

  /** Accepts a chunk from the executor. */
  push(stream: 'stdout' | 'stderr', chunk: string | Buffer): void {
    if (this.over) return;
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    this.bytes += size;
    if (this.bytes > this.options.maxBytes) {
      this.over = true;
      this.endMasking();
      this.pending[stream] += '\n';
      this.flush(true);
      const err = new OutputLimitError(
        `log output passed the ${this.options.maxBytes}-byte cap; the step was stopped`,
      );
      this.enqueue('stderr', `[conveyor] ${err.message}\n`);
      this.onLimit(err);
      return;
    }
    this.pending[stream] += this.masker.write(chunk);
    if (this.pending[stream].length > this.options.maxLine * 4) this.flush(false);
    else if (this.pending[stream]) this.timer ??= setTimeout(() => this.flush(false), this.options.flushMs);
  }

  /** Publishes buffered text; `all` includes partial lines (used at the end). */
  flush(all: boolean): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const stream of ['stdout', 'stderr'] as const) {
      const text = this.pending[stream];
      if (!text) continue;
      const cut = all ? text.length : text.lastIndexOf('\n') + 1;
      const take = cut === 0 && text.length > this.options.maxLine ? text.length : cut;
      if (take === 0) continue;
      this.pending[stream] = text.slice(take);
      this.enqueue(stream, text.slice(0, take));
    }
    if (!all && (this.pending.stdout || this.pending.stderr)) {
      this.timer = setTimeout(() => this.flush(true), this.options.flushMs);
    }
  }

  /** Flushes everything and waits until it is written; rethrows a write failure. */
  async close(): Promise<void> {
    this.endMasking();
    this.flush(true);
    this.reportProgress(true);
    await this.chain;
    if (this.failure) throw this.failure;
  }

  /** The attempt is over: what the masker held back cannot become a secret any more. */
  private endMasking(): void {
    this.pending.stdout += this.masker.end();
  }

  private enqueue(stream: 'stdout' | 'stderr', text: string): void {
    if (stream !== 'stdout' || !this.onProgress || !text.includes('::progress::')) {
      this.append(stream, text);
      return;
    }
    // Command lines leave the log; the text around them stays, in order. Of the reports, only the
    // newest counts, at most one per PROGRESS_EVERY_MS: a flood of them costs one event a tick,
    // not one each (each is a Redis write that would outlast the step's timeout).
    let from = 0;
    for (const match of text.matchAll(PROGRESS)) {
      if (match.index > from) this.append(stream, text.slice(from, match.index));
      const [line, percent, message] = match as unknown as [string, string, string | undefined];
      this.latestProgress = { percent: Math.min(100, Number(percent)), message: message?.replace(/\r$/, '') };
      from = match.index + line.length + (text[match.index + line.length] === '\n' ? 1 : 0);
    }
    if (from < text.length) this.append(stream, text.slice(from));
    this.reportProgress(false);
  }

  /** Sends the newest progress report when the last one is old enough (or at the end). */
  private reportProgress(final: boolean): void {
    const report = this.latestProgress;
    if (!report) return;
    const now = Date.now();
    if (!final && now - this.progressAt < PROGRESS_EVERY_MS) {
      this.progressTimer ??= setTimeout(() => {
        this.progressTimer = undefined;
        this.reportProgress(false);
      }, PROGRESS_EVERY_MS);
      return;
    }
    clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    this.latestProgress = undefined;
    this.progressAt = now;
    this.chain = this.chain.then(() => this.onProgress!(report.percent, report.message));
  }

  private append(stream: 'stdout' | 'stderr', text: string): void {
    this.chain = this.chain.then(() =>
      this.write(stream, text).catch((err) => {
        this.failure ??= err;
      }),
    );
  }
}

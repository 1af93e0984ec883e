/**
 * Streams a VM's stdout and stderr to the engine chunk by chunk, never holding more than one
 * chunk and a small stderr tail: a guest printing 100 MB costs the worker no memory. Past the
 * executor's own cap (a backstop to the engine's) the rest is dropped and the step is stopped.
 */
import type { Readable } from 'node:stream';
import type { ExecutorContext } from '../executor.ts';

const TAIL_BYTES = 16 * 1024;

/** One step's log forwarding. */
export class LogForwarder {
  #bytes = 0;
  #over = false;
  #tail = '';

  constructor(
    private readonly log: ExecutorContext['log'],
    private readonly maxBytes: number,
    private readonly onOverflow: () => void,
  ) {}

  /** Forwards `stream` until it ends. */
  attach(stream: Readable, name: 'stdout' | 'stderr'): void {
    stream.on('data', (chunk: Buffer) => this.#chunk(name, chunk));
    // The VM going away may end its pipes abruptly; the exit is reported elsewhere.
    stream.on('error', () => {});
  }

  /** A line from Conveyor itself (how the VM is fenced), marked as such. */
  note(text: string): void {
    this.log('stderr', `[conveyor] ${text}\n`);
  }

  /** Bytes the guest wrote, forwarded or not. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether the cap was passed. */
  get overflowed(): boolean {
    return this.#over;
  }

  /** The last few KiB of stderr, kept even past the cap (V8's out-of-memory report lands there). */
  get stderrTail(): string {
    return this.#tail;
  }

  #chunk(name: 'stdout' | 'stderr', chunk: Buffer): void {
    if (name === 'stderr') this.#tail = (this.#tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    const before = this.#bytes;
    this.#bytes += chunk.length;
    if (this.#over) return;
    if (this.#bytes <= this.maxBytes) {
      this.log(name, chunk);
      return;
    }
    this.#over = true;
    if (before < this.maxBytes) this.log(name, chunk.subarray(0, this.maxBytes - before));
    this.note(`log output passed the ${this.maxBytes}-byte cap; the rest is dropped and the step stopped`);
    this.onOverflow();
  }
}

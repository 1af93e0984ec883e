/**
 * Step writes sent together: every step move queued in one tick of the event loop goes to Redis
 * as one `transition-step.lua` call, not one call each. A worker running many steps at once
 * finishes several in the same tick (their start replies arrive in one socket read), and each
 * call costs a command, a socket write, a script run and a reply on both sides.
 */
import type { ScriptedRedis } from './scripts.ts';

/** One step's move, as transition-step.lua takes an entry. */
export interface StepMove {
  run: string;
  events: string;
  /** The entry's 10 ARGV values (see the script's header). */
  args: string[];
}

/** What queuing a move gives back. */
export interface QueuedMove {
  /**
   * Settles once the call carrying the move is written to the connection (or to its offline
   * queue): a command sent after this on the same connection reaches Redis after the move.
   */
  sent: Promise<void>;
  /** The script's result for this entry: 1 applied, 0 refused, -1 no run record. */
  applied: Promise<number>;
}

interface Pending {
  move: StepMove;
  resolve(result: number): void;
  reject(err: unknown): void;
}

/** Collects the moves of one tick and sends them in calls of at most `max` entries. */
export class TransitionBatch {
  private pending: Pending[] = [];
  private sent: Promise<void> | undefined;
  private markSent: (() => void) | undefined;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly statsKey: string,
    /** Entries per call: each call blocks Redis while it runs. @defaultValue 100 */
    private readonly max = 100,
  ) {}

  /** Queues a move for the end of this tick. */
  add(move: StepMove): QueuedMove {
    if (!this.sent) {
      this.sent = new Promise<void>((resolve) => {
        this.markSent = resolve;
      });
      // After the microtasks of this tick: every step that finishes in it joins the call.
      process.nextTick(() => this.flush());
    }
    const applied = new Promise<number>((resolve, reject) => {
      this.pending.push({ move, resolve, reject });
    });
    return { sent: this.sent, applied };
  }

  private flush(): void {
    const entries = this.pending;
    const markSent = this.markSent!;
    this.pending = [];
    this.sent = undefined;
    this.markSent = undefined;
    for (let from = 0; from < entries.length; from += this.max) {
      const chunk = entries.slice(from, from + this.max);
      const keys: string[] = [this.statsKey];
      const args: string[] = [];
      for (const { move } of chunk) {
        keys.push(move.run, move.events);
        for (const arg of move.args) args.push(arg);
      }
      let call: Promise<unknown>;
      try {
        call = this.redis.transitionStep(keys.length, ...keys, ...args);
      } catch (err) {
        call = Promise.reject(err);
      }
      call.then(
        (results) => {
          chunk.forEach((entry, i) => entry.resolve(Number((results as unknown[])[i])));
        },
        (err) => {
          for (const entry of chunk) entry.reject(err);
        },
      );
    }
    markSent();
  }
}

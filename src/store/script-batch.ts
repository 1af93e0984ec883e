/**
 * Script calls sent together: every step start or step move queued in one tick of the event
 * loop goes to Redis as one call of its script (start-step.lua, transition-step.lua), not one
 * call each. A worker running many steps at once starts and finishes several in the same tick
 * (the replies that wake them arrive in one socket read), and each call costs a command, a socket
 * write, a script run and a reply on both sides.
 *
 * Both scripts take entries the same way: KEYS[1] the metrics counters hash, then the run hash
 * and event stream of each entry; ARGV, for each entry, the number of its values and the values.
 * They return one reply per entry.
 */
import type { ScriptedRedis } from './scripts.ts';

/** One entry of a batched script call. */
export interface ScriptEntry {
  run: string;
  events: string;
  args: Array<string | number>;
}

/** What queuing an entry gives back. */
export interface QueuedEntry {
  /**
   * Settles once the call carrying the entry is written to the connection (or to its offline
   * queue): a command sent after this on the same connection reaches Redis after the entry.
   */
  sent: Promise<void>;
  /** The script's reply for this entry. */
  reply: Promise<unknown>;
}

interface Pending {
  entry: ScriptEntry;
  resolve(reply: unknown): void;
  reject(err: unknown): void;
}

/** Collects the entries of one tick for one script and sends them in calls of at most `max`. */
export class ScriptBatch {
  private pending: Pending[] = [];
  private sent: Promise<void> | undefined;
  private markSent: (() => void) | undefined;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly script: 'startStep' | 'transitionStep',
    private readonly statsKey: string,
    /** Entries per call: each call blocks Redis while it runs. @defaultValue 100 */
    private readonly max = 100,
  ) {}

  /** Queues an entry for the end of this tick. */
  add(entry: ScriptEntry): QueuedEntry {
    if (!this.sent) {
      this.sent = new Promise<void>((resolve) => {
        this.markSent = resolve;
      });
      // After the microtasks of this tick: every step that gets this far in it joins the call.
      process.nextTick(() => this.flush());
    }
    const reply = new Promise<unknown>((resolve, reject) => {
      this.pending.push({ entry, resolve, reject });
    });
    return { sent: this.sent, reply };
  }

  private flush(): void {
    const pending = this.pending;
    const markSent = this.markSent!;
    this.pending = [];
    this.sent = undefined;
    this.markSent = undefined;
    for (let from = 0; from < pending.length; from += this.max) {
      const chunk = pending.slice(from, from + this.max);
      const keys: string[] = [this.statsKey];
      const args: Array<string | number> = [];
      for (const { entry } of chunk) {
        keys.push(entry.run, entry.events);
        args.push(entry.args.length);
        for (const arg of entry.args) args.push(arg);
      }
      let call: Promise<unknown>;
      try {
        call = this.redis[this.script](keys.length, ...keys, ...args);
      } catch (err) {
        call = Promise.reject(err);
      }
      call.then(
        (replies) => {
          chunk.forEach((p, i) => p.resolve((replies as unknown[])[i]));
        },
        (err) => {
          for (const p of chunk) p.reject(err);
        },
      );
    }
    markSent();
  }
}

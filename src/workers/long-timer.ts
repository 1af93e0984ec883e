/**
 * `setTimeout` for any delay. Node clamps delays above 2^31-1 ms (about 24.8 days) to 1 ms, so a
 * `timeout: 25d` would fire at once; this chains timers of at most that length instead.
 */

/** The longest delay one `setTimeout` honours (2^31-1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fn` once after `ms` milliseconds, however long; returns a function that cancels it.
 * `Infinity` never fires; a negative delay fires on the next turn, as `setTimeout` does.
 */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  if (Number.isNaN(ms)) throw new RangeError('setLongTimeout: the delay is NaN');
  let remaining = Math.max(0, ms);
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    if (remaining === Number.POSITIVE_INFINITY) return;
    // Counting down by chunk, not by wall clock, keeps a clock jump from firing early or late.
    const chunk = Math.min(remaining, MAX_TIMER_MS);
    timer = setTimeout(() => {
      remaining -= chunk;
      if (remaining > 0) arm();
      else {
        timer = undefined;
        fn();
      }
    }, chunk);
  };
  arm();
  return () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    remaining = 0;
  };
}

/**
 * `setTimeout` for any delay: Node fires a timer at once when its delay exceeds 2³¹−1 ms
 * (about 24.8 days), so longer waits (a step timeout of `25d`) are chained in shorter legs.
 */

/** Node's largest timer delay. */
const MAX_LEG_MS = 2 ** 31 - 1;

/** Calls `fn` once after `ms` milliseconds; the returned function cancels it. */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  const due = Date.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = due - Date.now();
    timer = left > MAX_LEG_MS ? setTimeout(arm, MAX_LEG_MS) : setTimeout(fn, Math.max(0, left));
  };
  arm();
  return () => clearTimeout(timer);
}

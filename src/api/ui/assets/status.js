/** Step and run statuses: which are final, their display order and symbols. */

/** Statuses that never change again. */
export const FINAL = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);

/** Run statuses, as the runs list filter offers them. */
export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** Step statuses in the order a fan-out node counts them. */
export const STEP_STATUSES = ['running', 'queued', 'pending', 'succeeded', 'failed', 'cancelled', 'skipped'];

/** A short symbol per status, shown next to counts (colour is never the only cue). */
export const SYMBOL = {
  pending: '◌',
  queued: '…',
  running: '▶',
  succeeded: '✓',
  failed: '✗',
  skipped: '↷',
  cancelled: '⊘',
};

/** True when a token of `role` may start, cancel and retry runs. */
export function canRun(role) {
  return role === 'run' || role === 'admin';
}

/** Durations in definitions: a number of milliseconds or a string such as `500ms`, `30s`, `10m`, `1h`. */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds for a duration, or `undefined` when it does not parse. */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  const match = PATTERN.exec(value.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNITS[match[2]!]!);
}

/** The message for a duration that does not parse. */
export const DURATION_HINT = 'expected milliseconds or a duration such as "500ms", "30s", "10m", "1h"';

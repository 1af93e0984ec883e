/**
 * Durations in definitions: a number of milliseconds or a string such as `500ms`, `30s`, `10m`,
 * `1h`, `2d`. Every duration is at least 1 ms and at most `MAX_DURATION_MS` (30 days): `0` would
 * fire at once, and anything past a month is a typo or an overflow (`1e300`, 400 digits) that
 * would leave a run waiting forever.
 */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** The longest duration a definition may give: 30 days, inclusive (2,592,000,000 ms). */
export const MAX_DURATION_MS = 30 * UNITS.d!;

/** A checked duration: its milliseconds, or why it is refused. */
export type DurationCheck = { ok: true; ms: number } | { ok: false; message: string };

/** The message for a duration that does not parse. */
export const DURATION_HINT =
  'expected milliseconds or a duration such as "500ms", "30s", "10m", "1h", "2d" (at most "30d")';

/** Checks a duration: it must parse, be finite, be at least 1 ms and at most 30 days. */
export function checkDuration(value: number | string): DurationCheck {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else {
    const match = PATTERN.exec(value.trim());
    if (!match) return { ok: false, message: `${show(value)} is not a duration: ${DURATION_HINT}` };
    ms = Number(match[1]) * UNITS[match[2]!]!;
  }
  const shown = show(value);
  if (Number.isNaN(ms)) return { ok: false, message: `${shown} is not a duration: ${DURATION_HINT}` };
  // Infinity is what a 400-digit number becomes: it is refused as too long, not turned into null.
  if (ms > MAX_DURATION_MS) {
    return {
      ok: false,
      message: `${shown} is longer than the maximum of 30 days ("30d", ${MAX_DURATION_MS} ms)`,
    };
  }
  const rounded = Math.round(ms);
  if (rounded < 1) return { ok: false, message: `${shown} is not a positive duration: use at least 1 ms` };
  return { ok: true, ms: rounded };
}

/** Echoes a value in a message, cut short: a 400-digit duration need not be quoted whole. */
function show(value: number | string): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a number too large to represent';
  const text = typeof value === 'string' ? value : String(value);
  const cut = text.length > 40 ? `${text.slice(0, 20)}…(${text.length} characters)` : text;
  return typeof value === 'string' ? `"${cut}"` : cut;
}

/** A readable length for messages: `90 s`, `3.5 h`, `12.1 days`. */
export function describeDuration(ms: number): string {
  if (ms < 60_000) return `${ms / 1000} s`;
  if (ms < UNITS.d!) return `${Math.round((ms / UNITS.h!) * 10) / 10} h`;
  return `${Math.round((ms / UNITS.d!) * 10) / 10} days`;
}

/** Milliseconds for a valid duration, or `undefined` when `checkDuration` refuses it. */
export function parseDuration(value: number | string): number | undefined {
  const checked = checkDuration(value);
  return checked.ok ? checked.ms : undefined;
}

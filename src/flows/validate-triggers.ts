/**
 * Checks of `on.schedule` and `concurrency` at submission: cron expressions parse with the parser
 * BullMQ schedules with (cron-parser, the same version), time zones are IANA names, a scheduled
 * run can start with defaults alone, and a concurrency group is an expression over `inputs` and
 * `trigger` only.
 */
import { CronExpressionParser } from 'cron-parser';
import type { Definition } from './schema.ts';
import { type Check, checkTemplate } from './validate-expressions.ts';
import type { Workflow } from './workflow.ts';

/** The zone of a schedule entry that names none (GitHub's schedules are UTC too). */
export const DEFAULT_TIMEZONE = 'UTC';

/** Reports every problem of `on.schedule`, each with its path (`on.schedule[0].cron`). */
export function checkSchedules(def: Definition, add: Check['add']): void {
  const required = Object.entries(def.inputs ?? {})
    .filter(([, input]) => input.required && input.default === undefined)
    .map(([name]) => name);
  (def.on?.schedule ?? []).forEach((entry, i) => {
    const path = `on.schedule[${i}]`;
    const tz = entry.timezone ?? DEFAULT_TIMEZONE;
    const zoneOk = isTimeZone(tz);
    if (!zoneOk)
      add(`${path}.timezone`, `unknown time zone "${tz}": use an IANA name such as "Europe/Paris" or "UTC"`);
    const problem = cronProblem(entry.cron, zoneOk ? tz : DEFAULT_TIMEZONE);
    if (problem) add(`${path}.cron`, problem);
    // A tick starts its run with the inputs' defaults alone.
    if (required.length) {
      add(
        path,
        `a scheduled run gets only default inputs, but ${required.map((n) => `"${n}"`).join(', ')} is required without a default`,
      );
    }
  });
}

/** Why `cron` is not a schedule BullMQ can run in `tz`, or undefined when it is. */
export function cronProblem(cron: string, tz: string): string | undefined {
  const hint = '5 fields "minute hour day-of-month month day-of-week", or 6 with seconds first';
  if (cron.trim() === '') return `empty cron expression (${hint})`;
  try {
    // next() too: an expression that parses but never fires (Feb 31st) is no schedule.
    CronExpressionParser.parse(cron, { tz, currentDate: new Date() }).next();
    return undefined;
  } catch (err) {
    return `"${cron}" is not a cron expression: ${(err as Error).message} (${hint})`;
  }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * `concurrency` normalised (a bare string is the group, as in GitHub Actions), with its group
 * template checked: it may read `inputs` and `trigger` only, since it is evaluated when the run
 * is created, before any step ran.
 */
export function normaliseConcurrency(def: Definition, check: Check): Workflow['concurrency'] {
  if (def.concurrency === undefined) return undefined;
  const { group, cancelInProgress = false } =
    typeof def.concurrency === 'string' ? { group: def.concurrency } : def.concurrency;
  const path = typeof def.concurrency === 'string' ? 'concurrency' : 'concurrency.group';
  if (group.trim() === '') check.add(path, 'a concurrency group must not be empty');
  else if (group.length > 400) check.add(path, 'a concurrency group is at most 400 characters');
  checkTemplate(group, path, check, new Set(['inputs', 'trigger']));
  return { group, cancelInProgress };
}

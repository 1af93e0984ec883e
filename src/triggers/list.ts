/** Every active trigger of every registered workflow's latest version, with what it matches. */
import type { WorkflowStore } from '../store/index.ts';
import { type Schedules, scheduleEntries } from './schedules.ts';

/** One active trigger, as `GET /v1/triggers` lists it. */
export type TriggerView = { workflow: string; version: number } & (
  | ({ type: 'push' } & Record<string, unknown>)
  | { type: 'schedule'; cron: string; timezone: string; schedulerId: string; nextAt: string | null }
  | { type: 'event'; event: string }
);

/** The triggers, by workflow name, then push, schedules, events in definition order. */
export async function listTriggers(workflows: WorkflowStore, schedules: Schedules): Promise<TriggerView[]> {
  // Summaries: the triggers are all this needs of a version.
  const [summaries, next] = await Promise.all([workflows.latestSummaries(), schedules.nextTicks()]);
  const out: TriggerView[] = [];
  for (const latest of summaries) {
    const base = { workflow: latest.name, version: latest.version };
    const on = latest.on ?? {};
    if (on.push) out.push({ ...base, type: 'push', ...on.push });
    for (const entry of scheduleEntries(latest)) {
      const at = next.get(entry.id);
      out.push({
        ...base,
        type: 'schedule',
        cron: entry.cron,
        timezone: entry.timezone,
        schedulerId: entry.id,
        nextAt: at ? new Date(at).toISOString() : null,
      });
    }
    for (const event of on.event ?? []) out.push({ ...base, type: 'event', event });
  }
  return out;
}

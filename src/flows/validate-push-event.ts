/**
 * Checks of `on.push` and `on.event` at submission, with paths: globs that parse, a repository
 * name of the form `owner/name`, event names that can be published (`POST /v1/events/:type`).
 */
import { globProblem } from './globs.ts';
import type { Definition } from './schema.ts';

/** An event type: what `on.event` lists, steps emit and `POST /v1/events/:type` names. */
export const EVENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What is wrong with an event type, or undefined. */
export function eventTypeProblem(type: string): string | undefined {
  return EVENT_TYPE.test(type)
    ? undefined
    : 'an event type is letters, digits, ".", "_" and "-", starting with a letter or digit, at most 128';
}

/** `owner/name`, or `group/subgroup/name` on GitLab. */
const REPOSITORY = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/;

/** Reports every problem of `on.push` and `on.event`. */
export function checkPushAndEvent(on: Definition['on'], add: (path: string, message: string) => void): void {
  const push = on?.push;
  if (push) {
    if (push.repository !== undefined && !REPOSITORY.test(push.repository))
      add('on.push.repository', 'a repository is "owner/name" (GitLab: "group/subgroup/name")');
    for (const field of ['branches', 'tags', 'paths'] as const) {
      const list = push[field];
      if (list === undefined) continue;
      if (list.length === 0) add(`on.push.${field}`, 'list at least one pattern, or leave the field out');
      else if (list.every((p) => p.startsWith('!')))
        add(`on.push.${field}`, 'needs at least one pattern without "!": negations only exclude');
      list.forEach((pattern, i) => {
        const problem = globProblem(pattern, field === 'paths' ? 'path' : 'ref');
        if (problem) add(`on.push.${field}[${i}]`, problem);
      });
    }
  }
  const events = on?.event;
  if (events) {
    if (events.length === 0) add('on.event', 'list at least one event type, or leave the field out');
    const seen = new Set<string>();
    events.forEach((type, i) => {
      const problem = eventTypeProblem(type);
      if (problem) add(`on.event[${i}]`, problem);
      else if (seen.has(type)) add(`on.event[${i}]`, `"${type}" is listed twice`);
      seen.add(type);
    });
  }
}

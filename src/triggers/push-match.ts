/**
 * Does a push start a workflow? `on.push` read as GitHub Actions reads it, with two rules of
 * Conveyor's: tag pushes and deletions start only workflows that ask for them.
 */
import type { Definition } from '../flows/index.ts';
import { matchesGlobList } from '../flows/index.ts';
import { changedFiles, type PushTrigger } from './push.ts';

type PushFilter = NonNullable<NonNullable<Definition['on']>['push']>;

/** Whether the ref passes `branches` / `tags`: a tag only when `tags` is given. */
function refMatches(filter: PushFilter, push: PushTrigger): boolean {
  if (push.tag !== undefined) return filter.tags !== undefined && matchesGlobList(filter.tags, push.tag);
  if (push.branch === undefined) return false; // refs/notes/…, refs/pull/…: not a branch or a tag
  if (filter.branches !== undefined) return matchesGlobList(filter.branches, push.branch);
  // As GitHub: a workflow that filters tags only is not started by branch pushes.
  return filter.tags === undefined;
}

/** True when `filter` (a workflow's `on.push`) asks for this push. */
export function pushMatches(filter: PushFilter | undefined, push: PushTrigger): boolean {
  if (!filter) return false;
  if (filter.repository !== undefined && filter.repository.toLowerCase() !== push.repository.toLowerCase())
    return false;
  if (push.deleted && filter.deleted !== true) return false;
  if (!refMatches(filter, push)) return false;
  // As GitHub, `paths` applies to branch pushes only: a tag or a deletion changes no files.
  if (filter.paths !== undefined && push.branch !== undefined && !push.deleted) {
    const patterns = filter.paths;
    return changedFiles(push).some((file) => matchesGlobList(patterns, file));
  }
  return true;
}

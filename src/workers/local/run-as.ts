/**
 * `WORKER_RUN_AS`: the user local steps run as, resolved once at start. A step running as the
 * worker's own user can do whatever that user can (read its files, signal its processes); as
 * another user it cannot read the worker's environment, keys or files.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { RunAs } from './containment.ts';

/** Resolves a user name, `uid` or `uid:gid` to ids; throws a clear error for an unknown one. */
export function resolveRunAs(spec: string): RunAs {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (numeric) {
    const uid = Number(numeric[1]);
    return {
      user: lookup(String(uid))?.user ?? '',
      uid,
      gid: Number(numeric[2] ?? lookup(String(uid))?.gid ?? uid),
    };
  }
  const found = lookup(spec);
  if (!found) throw new RangeError(`WORKER_RUN_AS: no user "${spec}" on this machine`);
  return found;
}

function lookup(key: string): RunAs | undefined {
  try {
    const line = execFileSync('getent', ['passwd', key], { encoding: 'utf8' }).trim();
    const [user, , uid, gid] = line.split(':');
    if (!user || uid === undefined || gid === undefined) return undefined;
    return { user, uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined; // getent exits 2 for an unknown key
  }
}

/**
 * The groups a step running as `runAs` gets, as `initgroups` gives them (the user's primary group
 * and every group listing it), or none for a bare uid: the launcher sets exactly these, looked
 * up once here because a static program has no name service of its own.
 */
export async function groupsOf(runAs: RunAs): Promise<number[]> {
  if (!runAs.user) return [];
  try {
    const { stdout } = await promisify(execFile)('id', ['-G', '--', runAs.user], { encoding: 'utf8' });
    const groups = stdout.trim().split(/\s+/).map(Number);
    if (groups.length === 0 || !groups.every((g) => Number.isInteger(g) && g >= 0)) throw new Error(stdout);
    return groups;
  } catch (err) {
    throw new RangeError(`WORKER_RUN_AS: could not list the groups of user "${runAs.user}"`, { cause: err });
  }
}

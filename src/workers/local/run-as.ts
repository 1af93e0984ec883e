/**
 * `WORKER_RUN_AS`: the user local steps run as, resolved once at start. A step running as the
 * worker's own user can do whatever that user can (read its files, signal its processes); as
 * another user it cannot read the worker's environment, keys or files.
 */
import { execFileSync } from 'node:child_process';
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

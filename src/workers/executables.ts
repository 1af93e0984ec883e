/**
 * What every executor that starts processes on the worker needs to do safely: find its tools on
 * the worker's own PATH (a step's PATH must never choose what the worker runs), and know which
 * variables the dynamic loader honours (a step's LD_PRELOAD must never reach a launcher).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';

/**
 * Variables the dynamic loader (and glibc) honours: were they in the launcher's environment, a
 * step could run code in `setpriv` or `unshare` as the worker's user, outside its namespace and
 * before the switch to `WORKER_RUN_AS`. They travel renamed (`CONVEYOR_RESTORE_<name>`) and the
 * step's init restores them just before the step's own command.
 */
export const LOADER_VARIABLES =
  /^(LD_[A-Z_]+|MALLOC_[A-Z_]+|GLIBC_TUNABLES|GCONV_PATH|GETCONF_DIR|HOSTALIASES|LOCALDOMAIN|LOCPATH|NIS_PATH|NLSPATH|RESOLV_HOST_CONF|RES_OPTIONS|TMPDIR|TZDIR)$/;

/** Finds `name` on the worker's own PATH (never a step's): its absolute path. */
export async function findExecutable(
  name: string,
  path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
): Promise<string> {
  for (const dir of path.split(':').filter((d) => isAbsolute(d))) {
    const candidate = join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new Error(`${name} is not on the worker's PATH`);
}

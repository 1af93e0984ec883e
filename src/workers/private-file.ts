/**
 * Files a step shares with the worker (`$CONVEYOR_OUTPUT`, `$CONVEYOR_EVENTS`, a VM's private
 * files). The step owns them, so the worker treats them as hostile: it never follows a symbolic
 * link, never opens anything but a regular file (a FIFO would block a libuv thread for good), and
 * never reads past the cap.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { OutputLimitError, StepError } from '../errors.ts';

/** Creates `path` afresh (never through a symlink or over an existing file). */
export async function writePrivateFile(path: string, data: string): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(path, flags, 0o644);
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/** Reads a file the guest wrote: `null` when absent; refuses links, FIFOs and more than `maxBytes`. */
export async function readPrivateFile(path: string, maxBytes: number, label: string): Promise<string | null> {
  // O_NONBLOCK: opening a FIFO the guest left in place must not hang the worker.
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP')
      throw new StepError('bad_output', `${label} is a symbolic link; it must be a regular file`, false);
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new StepError('bad_output', `${label} is not a regular file`, false);
    if (stat.size > maxBytes) {
      throw new OutputLimitError(`${label} is ${stat.size} bytes, over the ${maxBytes}-byte cap`);
    }
    if (stat.size === 0) return ''; // most steps write nothing: no read
    const buffer = Buffer.alloc(stat.size);
    const { bytesRead } = await handle.read(buffer, 0, stat.size, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

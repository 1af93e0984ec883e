/**
 * Run-listing cursors: an opaque token naming the last run of a page by its index score and id,
 * so the next page starts exactly after it even when many runs share one millisecond.
 */
import { ValidationError } from '../errors.ts';
import type { RunIndexEntry } from '../store/index.ts';

const DECODED = /^(\d{1,16}):([A-Za-z0-9_.-]{1,200})$/;

/** The token for a page that ends at `entry`. */
export function encodeCursor(entry: RunIndexEntry): string {
  return Buffer.from(`${entry.score}:${entry.id}`).toString('base64url');
}

/** The entry a token names; a `ValidationError` on `cursor` for anything not made by `encodeCursor`. */
export function decodeCursor(token: string): RunIndexEntry {
  const match = /^[A-Za-z0-9_-]{1,400}$/.test(token)
    ? DECODED.exec(Buffer.from(token, 'base64url').toString('utf8'))
    : null;
  if (!match) {
    throw new ValidationError('bad query', [
      {
        path: 'cursor',
        message: 'not a cursor from a previous page: pass the "cursor" of a listing as it is',
      },
    ]);
  }
  return { score: Number(match[1]), id: match[2]! };
}

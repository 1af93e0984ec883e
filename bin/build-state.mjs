// Whether `dist/` holds a build of the current sources: `bin/entry.mjs` runs it only then, and
// `npm start` (its `prestart`) builds when it does not. Plain JavaScript, as it runs before any
// build and before tsx.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Written last by a build (infra/build.mjs), with the build's start time as its mtime. */
export const STAMP = '.build-stamp';
/** Besides `src/`, the files whose change makes a build stale. */
const INPUTS = ['package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];

/** The newest mtime (ms) of `dir` and everything under it (a deleted file changes its folder's). */
function newestUnder(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * The state of the build under `root` (the folder holding `src/`, `dist/`, `package.json`):
 * `built` when `dist/` holds a finished build, `sources` when `src/` exists, and `fresh` when the
 * build is there and no source or input is newer than it (always, without sources: an image).
 * @param {string} root
 * @param {string} [outDir] the build folder (default `<root>/dist`)
 */
export function buildState(root, outDir = join(root, 'dist')) {
  const stamp = mtime(join(outDir, STAMP));
  const sources = mtime(join(root, 'src')) !== undefined;
  if (stamp === undefined) return { built: false, sources, fresh: false };
  if (!sources) return { built: true, sources, fresh: true };
  const inputs = INPUTS.map((name) => mtime(join(root, name)) ?? 0);
  return { built: true, sources, fresh: Math.max(newestUnder(join(root, 'src')), ...inputs) <= stamp };
}

/**
 * Review of issue 7 (a workspace per run, odd configurations): `WORKER_WORKSPACE_DIR` may name
 * a folder that exists and is shared, `/tmp` being the obvious choice. The first workspace
 * `chmod`s the base folder to 0711 whatever it was, so `WORKER_WORKSPACE_DIR=/tmp` takes the
 * sticky, world-writable bits off the machine's `/tmp` (every other user's programs break); and
 * a relative value puts workspaces under the engine's own directory and hands steps a relative
 * `$CONVEYOR_WORKSPACE`.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspaces } from '../../src/workers/local/index.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-review-base-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the workspace base folder', () => {
  it('leaves the mode of an existing shared folder (a /tmp) as it was', async () => {
    const shared = join(dir, 'shared-tmp');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    // Refused: a directory anybody may write to is no place for workspaces, and its mode stays.
    await expect(new Workspaces({ baseDir: shared }).forRun('run_abc123')).rejects.toMatchObject({
      code: 'bad_workspace_dir',
    });
    expect((statSync(shared).mode & 0o7777).toString(8)).toBe('1777');
  });

  it('gives steps an absolute workspace path, never one relative to the engine', async () => {
    const workspace = await new Workspaces({ baseDir: 'conveyor-review-relative' }).forRun('run_abc123');
    rmSync('conveyor-review-relative', { recursive: true, force: true });
    expect(isAbsolute(workspace)).toBe(true);
  });
});

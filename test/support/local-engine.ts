/**
 * A test engine whose worker runs local steps with a workspace base of the test's own (a fresh
 * temp folder, removed with `close`), optionally as another user (`WORKER_RUN_AS`).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalExecutor, resolveRunAs, Workspaces } from '../../src/workers/local/index.ts';
import { startEngine, type TestEngine } from './engine.ts';
import { redisUrl, testPrefix } from './prefix.ts';

/** The engine, its temp folder (workspaces under `<dir>/ws`), and `close` for both. */
export interface LocalEngine {
  engine: TestEngine;
  dir: string;
  close(): Promise<void>;
}

/** Starts it for the test file `fileUrl` (`import.meta.url`); `runAs` names the steps' user. */
export async function startLocalEngine(
  fileUrl: string,
  options: { runAs?: string } = {},
): Promise<LocalEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-test-'));
  // Another user's steps must be able to pass through to their workspace.
  if (options.runAs) chmodSync(dir, 0o755);
  const runAs = options.runAs ? resolveRunAs(options.runAs) : undefined;
  const engine = await startEngine(redisUrl(), testPrefix(fileUrl), {
    executors: [
      new LocalExecutor({
        killGraceMs: 1000,
        runAs,
        workspaces: new Workspaces({ baseDir: join(dir, 'ws'), runAs }),
      }),
    ],
  });
  return {
    engine,
    dir,
    async close() {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

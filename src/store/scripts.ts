/**
 * Loads the Lua scripts in ./lua as ioredis commands (EVALSHA with automatic fallback). Redis
 * scripts have no include: a line `-- @include <file>` is replaced here by ./lua/include/<file>.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../redis-client.ts';

const SCRIPTS = {
  announceRun: { file: 'announce-run.lua', keys: 6 },
  // Several steps a call (script-batch.ts): the caller passes the number of keys first.
  transitionStep: { file: 'transition-step.lua', keys: undefined },
  startStep: { file: 'start-step.lua', keys: undefined },
  transitionInstance: { file: 'transition-instance.lua', keys: 2 },
  finishRun: { file: 'finish-run.lua', keys: 5 },
  deleteRun: { file: 'delete-run.lua', keys: 4 },
  lock: { file: 'lock.lua', keys: 1 },
  flagWaiting: { file: 'flag-waiting.lua', keys: 2 },
  requestCancel: { file: 'request-cancel.lua', keys: 1 },
  registerWorkflow: { file: 'register-workflow.lua', keys: 3 },
  latestSummary: { file: 'latest-summary.lua', keys: 1 },
  storeSummary: { file: 'store-summary.lua', keys: 1 },
  concurrencyGroup: { file: 'concurrency-group.lua', keys: 1 },
  rateLimit: { file: 'rate-limit.lua', keys: 1 },
} as const;

type Name = keyof typeof SCRIPTS;
const sources = new Map<Name, string>();

/** `lua` with each `-- @include <file>` line replaced by that file of ./lua/include. */
function withIncludes(lua: string): string {
  return lua.replace(/^-- @include ([a-z0-9-]+\.lua)$/gm, (_, name: string) =>
    readFileSync(new URL(`./lua/include/${name}`, import.meta.url), 'utf8'),
  );
}

/** A Redis client with Conveyor's scripts defined on it. */
export type ScriptedRedis = RedisClient & {
  [K in Name]: (...args: Array<string | number>) => Promise<unknown>;
};

/** Defines every script on `redis` (idempotent) and returns it typed. */
export function withScripts(redis: RedisClient): ScriptedRedis {
  for (const [name, { file, keys }] of Object.entries(SCRIPTS) as Array<[Name, (typeof SCRIPTS)[Name]]>) {
    if (typeof (redis as unknown as Record<string, unknown>)[name] === 'function') continue;
    let lua = sources.get(name);
    if (!lua) {
      lua = withIncludes(readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8'));
      sources.set(name, lua);
    }
    redis.defineCommand(name, { numberOfKeys: keys, lua });
  }
  return redis as ScriptedRedis;
}

/**
 * Vitest global setup: one Redis for the whole run, handed to each test file via `inject`, and
 * the local steps' launcher compiled once into its cache (launcher.ts), before parallel test
 * files would each compile it.
 */
import type { TestProject } from 'vitest/node';
import { findLauncher } from '../../src/workers/local/launcher.ts';
import { startRedis } from './redis-server.ts';

export default async function setup(project: TestProject) {
  const [redis] = await Promise.all([startRedis(), findLauncher()]);
  project.provide('redisUrl', redis.url);
  return async () => redis.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** Vitest global setup: one Redis for the whole run, handed to each test file via `inject`. */
import type { TestProject } from 'vitest/node';
import { startRedis } from './redis-server.ts';

export default async function setup(project: TestProject) {
  const redis = await startRedis();
  project.provide('redisUrl', redis.url);
  return async () => redis.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

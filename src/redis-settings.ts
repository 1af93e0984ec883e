/**
 * The Redis settings Conveyor's durability rests on, checked once at start on the server or on
 * every master of a cluster: `maxmemory-policy noeviction` (any other policy may delete queued
 * jobs and run records under memory pressure) and AOF on (without it a restart loses every write
 * since the last snapshot). Each problem is one warning line naming the nodes; where `CONFIG` is
 * refused (managed Redis) one line says the settings could not be checked.
 */
import type { Logger } from 'pino';
import { masters, type RedisClient } from './redis-client.ts';

/** What the check found, for tests and callers that act on it. */
export interface RedisSettingsReport {
  /** Node (`host:port`) → its eviction policy, for nodes whose policy is not `noeviction`. */
  evicting: Record<string, string>;
  /** Nodes whose `appendonly` is `no`. */
  noAof: string[];
  /** Why the settings could not be read, when `CONFIG GET` was refused. */
  unchecked?: string;
}

async function configValue(node: RedisClient, name: string): Promise<string | undefined> {
  const reply = (await node.config('GET', name)) as string[];
  return reply[1];
}

/** Reads and reports the settings (`client` connected); never throws. */
export async function checkRedisSettings(client: RedisClient, logger: Logger): Promise<RedisSettingsReport> {
  const report: RedisSettingsReport = { evicting: {}, noAof: [] };
  try {
    for (const node of masters(client)) {
      const name = `${node.options.host ?? node.options.path}:${node.options.port}`;
      const [policy, aof] = await Promise.all([
        configValue(node, 'maxmemory-policy'),
        configValue(node, 'appendonly'),
      ]);
      if (policy !== undefined && policy !== 'noeviction') report.evicting[name] = policy;
      if (aof === 'no') report.noAof.push(name);
    }
  } catch (err) {
    report.unchecked = (err as Error).message;
    logger.warn(
      { reason: report.unchecked },
      'could not check Redis maxmemory-policy and appendonly (CONFIG GET refused, as on managed Redis): make sure they are noeviction and yes',
    );
    return report;
  }
  const evicting = Object.entries(report.evicting);
  if (evicting.length) {
    logger.warn(
      { nodes: report.evicting },
      `REDIS MAY EVICT CONVEYOR'S KEYS: maxmemory-policy is ${[...new Set(evicting.map(([, p]) => p))].join(', ')} on ${evicting.map(([n]) => n).join(', ')}; under memory pressure Redis deletes queued jobs and run records. Set maxmemory-policy noeviction`,
    );
  }
  if (report.noAof.length) {
    logger.warn(
      { nodes: report.noAof },
      `REDIS AOF IS OFF (appendonly no) on ${report.noAof.join(', ')}: a Redis restart loses every run, job and event written since the last snapshot. Set appendonly yes (appendfsync everysec)`,
    );
  }
  return report;
}

/**
 * Where the core benchmark's time goes, for issue 12: `node --import tsx bench/profile-core.ts
 * [wide] [chain] [dag] [dag10k] [noraw] [--verbose] [--profile=<file>]` runs the no-op shapes of
 * bench/core.ts (1,000 independent steps, a 200-step chain, random DAGs of 1,000 and 10,000
 * steps) against a private Redis and prints for each, for Conveyor and for raw BullMQ: wall time,
 * this process's CPU time (worker threads included), Redis's CPU time, the commands this
 * process's clients sent per step (round trips, by command: the API's submission thread is not
 * counted) and, with `--verbose`, the commands Redis executed per step (INFO commandstats, the
 * scripts' own calls included). `--profile` writes a CPU profile of the measured runs alone.
 * CPU times and command counts are steadier than wall times on a shared machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { spawnRedis } from '../test/support/redis-server.ts';
import { chain, conveyor, independent, randomDag, rawChain, rawThroughput } from './core.ts';
import { NoopExecutor } from './support.ts';

/** calls by command name, from INFO commandstats. */
async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const out = new Map<string, number>();
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Commands sent by this process's clients (BullMQ's and Conveyor's), by name. */
const sent = new Map<string, number>();
const original = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (this: Redis, command: Parameters<Redis['sendCommand']>[0], ...rest) {
  const name = (command as { name: string }).name;
  sent.set(name, (sent.get(name) ?? 0) + 1);
  return original.call(this, command, ...rest);
} as Redis['sendCommand'];

/** CPU ms of this process's main thread (the event loop) so far, from /proc (Linux). */
function mainThreadCpu(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in 1/100 s
  } catch {
    return Number.NaN;
  }
}

/** Redis server CPU seconds so far. */
async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
  return user + sys;
}

/** Runs `work` and prints the commands Redis saw per unit (`units` steps or jobs). */
async function counted(label: string, redis: Redis, units: number, work: () => Promise<unknown>) {
  const before = await commandStats(redis);
  const cpu0 = await redisCpu(redis);
  const sent0 = new Map(sent);
  const node0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  const node = process.cpuUsage(node0);
  const main = mainThreadCpu() - main0;
  const cpu = (await redisCpu(redis)) - cpu0;
  const after = await commandStats(redis);
  const trips: Array<[string, number]> = [];
  let tripTotal = 0;
  for (const [name, calls] of sent) {
    const delta = calls - (sent0.get(name) ?? 0);
    if (delta > 0 && name !== 'info') {
      trips.push([name, delta]);
      tripTotal += delta;
    }
  }
  trips.sort((a, b) => b[1] - a[1]);
  console.log(
    `${label}: ${ms.toFixed(0)} ms wall, node CPU ${((node.user + node.system) / 1000).toFixed(0)} ms (main thread ${main.toFixed(0)}), redis CPU ${(cpu * 1000).toFixed(0)} ms; ` +
      `client commands/unit ${(tripTotal / units).toFixed(2)} (${trips.map(([n, c]) => `${n} ${(c / units).toFixed(2)}`).join(', ')})`,
  );
  const rows: Array<[string, number]> = [];
  let total = 0;
  for (const [name, calls] of after) {
    const delta = calls - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0);
    if (delta > 0) {
      rows.push([name, delta]);
      total += delta;
    }
  }
  rows.sort((a, b) => b[1] - a[1]);
  const per = rows.map(([n, c]) => `${n} ${(c / units).toFixed(2)}`).join(', ');
  if (verbose)
    console.log(
      `  executed in Redis (scripts' commands included): ${(total / units).toFixed(2)}/unit (${per})`,
    );
}

const redisServer = await spawnRedis();
const stats = new Redis(redisServer.url);
const args = process.argv.slice(2);
/** `--profile=<file>`: a CPU profile of the measured runs only (warm-up left out), main thread. */
const profileTo = args.find((a) => a.startsWith('--profile='))?.slice('--profile='.length);
const verbose = args.includes('--verbose');
const only = args.filter((a) => !a.startsWith('--'));
const session = new Session();
session.connect();
const want = (name: string) => only.length === 0 || only.includes(name);
const raw = !only.includes('noraw');
try {
  const noop = new NoopExecutor();
  const engine = await conveyor(redisServer.url, noop);
  try {
    await engine.finished(await engine.submit(independent(1000)));
    await rawThroughput(redisServer.url, 1000);
    if (profileTo) {
      await session.post('Profiler.setSamplingInterval', { interval: 100 });
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    /** Submits `workflow`, waits for its end, prints when its steps ran. */
    const timed = async (workflow: unknown) => {
      noop.reset();
      const t0 = performance.now();
      const id = await engine.submit(workflow);
      const submitted = performance.now();
      await engine.finished(id);
      const done = performance.now();

      const starts = [...noop.starts.values()].sort((a, b) => a - b);
      const ends = [...noop.ends.values()];
      const deciles = Array.from({ length: 11 }, (_, q) =>
        (starts[Math.min(starts.length - 1, Math.floor((q / 10) * starts.length))]! - t0).toFixed(0),
      );
      console.log(
        `  POST answered +${(submitted - t0).toFixed(0)} ms, first step started +${deciles[0]} ms, ` +
          `last ended +${(Math.max(...ends) - t0).toFixed(0)} ms, run finished +${(done - t0).toFixed(0)} ms; ` +
          `starts by decile (ms): ${deciles.join(' ')}`,
      );
    };
    if (want('wide'))
      for (let i = 0; i < 3; i++) {
        if (raw) await counted('raw 1000 jobs', stats, 1000, () => rawThroughput(redisServer.url, 1000));
        await counted('conveyor 1000 independent', stats, 1000, () => timed(independent(1000)));
      }
    if (want('chain'))
      for (let i = 0; i < 2; i++) {
        if (raw) await counted('raw chain 200', stats, 200, () => rawChain(redisServer.url, 200));
        await counted('conveyor chain 200', stats, 200, () => timed(chain(200)));
      }
    if (want('dag'))
      for (let i = 0; i < 2; i++)
        await counted('conveyor dag 1000', stats, 1000, () => timed(randomDag(1000)));
    if (want('dag10k')) await counted('conveyor dag 10000', stats, 10000, () => timed(randomDag(10_000)));
    if (profileTo) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(profileTo, JSON.stringify(profile));
    }
  } finally {
    await engine.close();
  }
} finally {
  stats.disconnect();
  await redisServer.stop();
}
process.exit(0);

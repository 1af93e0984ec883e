/**
 * `npm run bench`: runs every suite against one Redis (REDIS_URL, or a private redis-server on a
 * free port), prints one table with ratios, and writes bench/results/<suite>-<date>.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { spawnRedis } from '../test/support/redis-server.ts';
import type { BenchRow, BenchSuite } from './types.ts';

const SUITES = [
  'core',
  'ssh',
  'vm',
  'limits',
  'retention',
  'webhooks',
  'schedules',
  'api',
  'metrics',
  'scaling',
];

async function loadSuites(only: string[]): Promise<BenchSuite[]> {
  const out: BenchSuite[] = [];
  for (const name of SUITES) {
    if (only.length && !only.includes(name)) continue;
    if (!existsSync(new URL(`./${name}.ts`, import.meta.url))) continue;
    out.push((await import(`./${name}.ts`)).default as BenchSuite);
  }
  return out;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

function ratio(row: BenchRow): string {
  if (row.peerValue === undefined || row.peerValue === 0) return '';
  return `${(row.value / row.peerValue).toFixed(2)}×`;
}

function printTable(suite: string, rows: BenchRow[]): void {
  const table = rows.map((r) => ({
    metric: r.metric,
    value: `${r.value} ${r.unit}`,
    peer: r.peer ? `${r.peerValue} ${r.unit} (${r.peer})` : '',
    ratio: ratio(r),
    target: r.target ?? '',
  }));
  console.log(`\n## ${suite}`);
  console.table(table);
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const redis = process.env.REDIS_URL ? undefined : await spawnRedis();
  const redisUrl = process.env.REDIS_URL ?? redis!.url;
  const results: Record<string, unknown> = {};
  try {
    for (const suite of await loadSuites(only)) {
      const started = Date.now();
      // Other work on the machine moves every figure: the 1-minute load average when the suite began.
      const load = round2(loadavg()[0]!);
      const rows = await suite.run({ redisUrl });
      printTable(suite.name, rows);
      results[suite.name] = rows;
      mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
      const record = {
        suite: suite.name,
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, load },
        durationMs: Date.now() - started,
        rows: rows.map((r) => ({ ...r, ratio: r.peerValue ? r.value / r.peerValue : undefined })),
      };
      const file = new URL(`./results/${suite.name}-${record.date.slice(0, 10)}.json`, import.meta.url);
      writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
      writeFileSync(
        new URL(`./results/${suite.name}-latest.json`, import.meta.url),
        `${JSON.stringify(record, null, 2)}\n`,
      );
    }
  } finally {
    await redis?.stop();
  }
  // Clients (BullMQ, ioredis) may keep timers alive after close.
  process.exit(0);
}

await main();

// The raw peers of the spawn benchmark (bench/spawn.ts), each in a process of its own so that
// its size is known: a plain BullMQ worker whose jobs spawn `sh -c :`, or a loop spawning one
// argv. `ballastMb` inflates the process (touched memory, as a busy worker's heap) before it
// measures, because a fork's cost follows the size of the process that forks.
//
//   node bench/spawn-peer.mjs '{"mode":"chain"|"wide"|"exec", "redisUrl", "prefix", "n",
//                               "concurrency", "ballastMb", "argv"}'
// prints one JSON line: { value, rssMb } (ms per step for chain and exec, jobs/s for wide).
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { FlowProducer, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

const run = promisify(execFile);
const options = JSON.parse(process.argv[2] ?? '{}');
const { mode, redisUrl, prefix, n, concurrency = 1, ballastMb = 0, argv = ['/bin/sh', '-c', ':'] } = options;

const ballast = [];
for (let i = 0; i < ballastMb; i += 16) ballast.push(Buffer.allocUnsafe(16 * 2 ** 20).fill(i % 251));

const spawnOnce = () => run(argv[0], argv.slice(1));

async function chain() {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const flows = new FlowProducer({ connection, prefix });
  let resolve;
  const all = new Promise((r) => {
    resolve = r;
  });
  const worker = new Worker(
    'chain',
    async (job) => {
      await spawnOnce();
      if (job.data.i === n - 1) setImmediate(resolve);
    },
    { connection, prefix, concurrency },
  );
  await worker.waitUntilReady();
  let node = { name: 'c', queueName: 'chain', data: { i: 0 } };
  for (let i = 1; i < n; i++) node = { name: 'c', queueName: 'chain', data: { i }, children: [node] };
  const t0 = performance.now();
  await flows.add(node);
  await all;
  const perStep = (performance.now() - t0) / n;
  await worker.close();
  await flows.close();
  connection.disconnect();
  return perStep;
}

async function wide() {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('wide', { connection, prefix });
  let done = 0;
  let resolve;
  const all = new Promise((r) => {
    resolve = r;
  });
  const worker = new Worker('wide', () => spawnOnce(), { connection, prefix, concurrency });
  worker.on('completed', () => {
    if (++done === n) resolve();
  });
  await worker.waitUntilReady();
  const t0 = performance.now();
  await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'spawn', data: { i } })));
  await all;
  const perSecond = n / ((performance.now() - t0) / 1000);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return perSecond;
}

async function exec() {
  await spawnOnce();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await spawnOnce();
  return (performance.now() - t0) / n;
}

const measure = { chain, wide, exec }[mode];
if (!measure) throw new Error(`unknown mode ${mode}`);
const value = await measure();
console.log(JSON.stringify({ value, rssMb: process.memoryUsage().rss / 2 ** 20, ballast: ballast.length }));
process.exit(0);

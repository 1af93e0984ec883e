/**
 * The API benchmark (issue 9): requests per second for `GET /v1/runs/:id`, measured by
 * autocannon in a second process against the API on a real port, against a bare `node:http`
 * server answering the same JSON from memory in the same process (the peer: what Node's HTTP
 * stack alone costs). The API logs its request lines as in production (to /dev/null), and is
 * measured with the rate limit off and on (a limit too high to refuse anything, so every
 * request pays its Redis round trip).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { type ConveyorApi, startApi } from '../src/api/server.ts';
import { createLogger } from '../src/logger.ts';
import { isTerminalEvent } from '../src/store/index.ts';
import { startWorker } from '../src/workers/worker.ts';
import { waitForRunEvent } from '../test/support/engine.ts';
import { benchPrefix, NoopExecutor, postRun, round } from './support.ts';
import type { BenchContext, BenchRow, BenchSuite } from './types.ts';

const AUTOCANNON = new URL('../node_modules/autocannon/autocannon.js', import.meta.url).pathname;
const CONNECTIONS = 32;
const SECONDS = 8;
const WARMUP_SECONDS = 2;

/** What autocannon reports that the table uses. */
interface Load {
  rps: number;
  p50: number;
  p99: number;
  bad: number;
}

/** Runs autocannon in its own process against `url`; throws when any answer was not a 2xx. */
async function autocannon(url: string, seconds: number): Promise<Load> {
  const child = spawn(
    process.execPath,
    [AUTOCANNON, '-c', String(CONNECTIONS), '-d', String(seconds), '-j', url],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`autocannon exited ${code}: ${err}`);
  const result = JSON.parse(out) as {
    requests: { average: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
    statusCodeStats?: Record<string, { count: number }>;
  };
  const bad = result.non2xx + result.errors;
  if (bad > 0) {
    const statuses = JSON.stringify(result.statusCodeStats ?? {});
    throw new Error(
      `autocannon saw ${bad} failed answers from ${url} (${result.errors} errors; statuses ${statuses})`,
    );
  }
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, bad };
}

/** Warm-up, then the measured load. */
async function measure(url: string): Promise<Load> {
  await autocannon(url, WARMUP_SECONDS);
  return autocannon(url, SECONDS);
}

/** A finished run of 10 steps, so the document has what real ones have. */
async function finishedRun(redisUrl: string, prefix: string, api: ConveyorApi): Promise<string> {
  const worker = await startWorker({
    redisUrl,
    prefix,
    executors: [new NoopExecutor()],
    logger: pino({ level: 'silent' }),
  });
  try {
    const steps = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [
        `s${i}`,
        { run: 'true', ...(i > 0 && { needs: [`s${i - 1}`] }) },
      ]),
    );
    const runId = await postRun(api.url!, { name: 'bench-api', steps });
    await waitForRunEvent(api, runId, (e) => isTerminalEvent(e.type));
    return runId;
  } finally {
    await worker.close();
  }
}

async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const prefix = benchPrefix('api');
  const logger = createLogger('info', pino.destination({ dest: '/dev/null', sync: true }));
  const base = { redisUrl: ctx.redisUrl, prefix, port: 0, logger };
  const plain = await startApi(base);
  const limited = await startApi({ ...base, rateLimit: { limit: 1_000_000_000, windowMs: 60_000 } });
  const runId = await finishedRun(ctx.redisUrl, prefix, plain);
  const body = await (await fetch(`${plain.url}/v1/runs/${runId}`)).text();
  const peer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  const peerUrl = `http://127.0.0.1:${(peer.address() as AddressInfo).port}/v1/runs/${runId}`;
  try {
    const bare = await measure(peerUrl);
    const off = await measure(`${plain.url}/v1/runs/${runId}`);
    const on = await measure(`${limited.url}/v1/runs/${runId}`);
    const peerName = `bare node:http, same ${body.length}-byte JSON from memory`;
    const row = (metric: string, load: Load): BenchRow[] => [
      {
        metric: `${metric}: requests/s`,
        value: round(load.rps, 0),
        unit: 'req/s',
        peer: peerName,
        peerValue: round(bare.rps, 0),
      },
      { metric: `${metric}: latency p99`, value: load.p99, unit: 'ms', peer: peerName, peerValue: bare.p99 },
    ];
    return [
      ...row(`GET /v1/runs/:id, ${CONNECTIONS} connections, rate limit off`, off),
      ...row(`GET /v1/runs/:id, ${CONNECTIONS} connections, rate limit on`, on),
    ];
  } finally {
    await new Promise((resolve) => peer.close(resolve));
    await limited.close();
    await plain.close();
  }
}

const suite: BenchSuite = { name: 'api', run };
export default suite;

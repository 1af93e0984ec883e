/**
 * A worker's health port (`WORKER_HEALTH_PORT`): `GET /healthz` (the process answers) and
 * `GET /readyz` (Redis answers a PING within a second, and the worker is not stopping), for
 * container probes. Plain node:http: a worker has no other HTTP surface.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { openRedis, type RedisTarget } from '../redis-client.ts';

/** A listening health server. */
export interface HealthServer {
  port: number;
  /** From now on `/readyz` answers 503 (the worker is stopping). */
  draining(): void;
  close(): Promise<void>;
}

/** How long `/readyz` waits for Redis's PONG. */
const PING_TIMEOUT_MS = 1000;

/** Starts the health server on `host:port` (port 0: any free port). */
export async function startHealthServer(options: {
  port: number;
  host: string;
  redis: RedisTarget;
  workerId: string;
  logger: Logger;
}): Promise<HealthServer> {
  // Its own connection without an offline queue: a PING while Redis is down fails at once
  // instead of waiting in the worker's queue (whose connection retries forever, as BullMQ needs).
  const probe = openRedis(options.redis, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  probe.on('error', () => {}); // readiness reports it; the worker's own connection logs outages
  probe.connect().catch(() => {});
  let stopping = false;
  const ready = async (): Promise<boolean> => {
    if (stopping) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        probe.ping().then((pong) => pong === 'PONG'),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
        }),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  };
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/readyz')
      return send(404, { error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(
        405,
        { error: { code: 'method_not_allowed', message: `${req.method} is not allowed on ${path}` } },
        { allow: 'GET, HEAD' },
      );
    if (path === '/healthz') return send(200, { status: 'ok', worker: options.workerId });
    void ready().then((ok) =>
      ok
        ? send(200, { status: 'ready', worker: options.workerId })
        : send(503, {
            status: 'unavailable',
            error: stopping
              ? { code: 'unavailable', message: 'the worker is stopping' }
              : { code: 'unavailable', message: 'Redis is unreachable' },
          }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ host: options.host, port }, `worker health port on http://${options.host}:${port}`);
  return {
    port,
    draining() {
      stopping = true;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      probe.disconnect();
    },
  };
}

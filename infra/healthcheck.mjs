#!/usr/bin/env node
// The Docker image's HEALTHCHECK: GET /healthz of what this container runs, the API (PORT) for
// `api` and `standalone`, the worker's health port (WORKER_HEALTH_PORT) for `worker` and
// `standalone`. The mode is read from PID 1's command line (`node bin/conveyor.mjs <mode>`);
// elsewhere (another PID 1, or run by hand) every port set is checked. Exit 0 when each answers 200.
// It reads PORT and WORKER_HEALTH_PORT as the container's environment sets them (the image's
// defaults are 8080 and 8081); a port set only in a `.env` file is not seen here.
import { readFileSync } from 'node:fs';

function mode() {
  try {
    const argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
    const entry = argv.findIndex((arg) => arg.endsWith('bin/conveyor.mjs'));
    return entry >= 0 ? (argv[entry + 1] ?? 'standalone') : undefined;
  } catch {
    return undefined;
  }
}

const current = mode();
const api = process.env.PORT || '8080';
const worker = process.env.WORKER_HEALTH_PORT;
const ports = [];
if (current === undefined || current === 'api' || current === 'standalone') ports.push(api);
if ((current === undefined || current === 'worker' || current === 'standalone') && worker) ports.push(worker);
if (ports.length === 0) {
  console.error('healthcheck: no port to check (a worker needs WORKER_HEALTH_PORT)');
  process.exit(1);
}
const results = await Promise.all(
  ports.map((port) =>
    fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (res) => res.status === 200 || `:${port} answered ${res.status}`,
      (err) => `:${port} ${err.cause?.code ?? err.message}`,
    ),
  ),
);
const failed = results.filter((r) => r !== true);
if (failed.length) console.error(`healthcheck: ${failed.join('; ')}`);
process.exit(failed.length ? 1 : 0);

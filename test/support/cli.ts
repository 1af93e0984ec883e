/**
 * The CLI tests' harness: a real API on a socket (with tokens) and a real worker on the shared
 * test Redis, the `conveyor` binary run as a child process against it, and tmux for a real
 * pseudo-terminal (`run --watch` is drawn for one).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseTokens } from '../../src/api/auth/index.ts';
import { type ConveyorApi, startApi } from '../../src/api/server.ts';
import type { Inventory } from '../../src/inventory/index.ts';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { LocalExecutor, Workspaces } from '../../src/workers/local/index.ts';
import { type ConveyorWorker, startWorker } from '../../src/workers/worker.ts';
import { dropPrefix, redisUrl, testPrefix } from './prefix.ts';

/** The admin token of the test server. */
export const ADMIN_TOKEN = 'cli-admin-token-0123456789';
/** A read-only token. */
export const READ_TOKEN = 'cli-read-token-0123456789';

/** A running server for CLI tests. */
export interface CliServer {
  url: string;
  /** A temp folder of the test's own (workspaces under `ws/`), removed by `close`. */
  dir: string;
  api: ConveyorApi;
  /** Closes the API and starts a new one on the same port (the event stream breaks). */
  restartApi(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the API (port 0) and a worker under a fresh prefix for the test file `fileUrl`. */
export async function startCliServer(
  fileUrl: string,
  options: { inventoryFile?: Inventory } = {},
): Promise<CliServer> {
  const prefix = testPrefix(fileUrl);
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-cli-'));
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const apiOptions = {
    redisUrl: redisUrl(),
    prefix,
    logger,
    tokens: parseTokens(`admin:${ADMIN_TOKEN},read:${READ_TOKEN}`, 'CONVEYOR_API_TOKENS'),
    secretKey: parseSecretKey(generateSecretKey()),
    inventoryFile: options.inventoryFile,
    retentionPass: { intervalMs: 0 },
  };
  let api = await startApi({ ...apiOptions, port: 0 });
  const port = Number(new URL(api.url!).port);
  const worker: ConveyorWorker = await startWorker({
    redisUrl: redisUrl(),
    prefix,
    executors: [
      new LocalExecutor({ killGraceMs: 1000, workspaces: new Workspaces({ baseDir: join(dir, 'ws') }) }),
    ],
    logger,
    shutdownGraceMs: 2000,
  });
  return {
    url: api.url!,
    dir,
    get api() {
      return api;
    },
    async restartApi() {
      await api.close();
      api = await startApi({ ...apiOptions, port });
    },
    async close() {
      await worker.close();
      await api.close();
      await dropPrefix(redisUrl(), prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What one CLI invocation did. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI child: this process's, without any CONVEYOR_* or NO_COLOR, plus `env`. */
export function cliEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('CONVEYOR_') && k !== 'NO_COLOR'),
  );
  const merged: NodeJS.ProcessEnv = { ...base, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  return merged;
}

/** Runs `node bin/conveyor.mjs ...args`; `input` is written to its stdin. */
export function cli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['bin/conveyor.mjs', ...args],
      { env: cliEnv(options.env), timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
        if (typeof code !== 'number' && err && (err as { killed?: boolean }).killed) {
          return reject(new Error(`conveyor ${args.join(' ')} timed out:\n${stdout}\n${stderr}`));
        }
        resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
      },
    );
    child.stdin!.end(options.input ?? '');
  });
}

/** Runs a tmux command on the test's own server socket; resolves with its stdout. */
export function tmux(socket: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('tmux', ['-S', socket, ...args], (err, stdout, stderr) =>
      err ? reject(new Error(`tmux ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** A tmux session running `command` in an 100×30 pseudo-terminal; `screen()` is its visible text. */
export async function tmuxSession(socket: string, command: string[], env: NodeJS.ProcessEnv) {
  const quoted = command.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // `; sleep` keeps the pane (and its last screen) after the command exits; the status is saved.
  const script = `${quoted}; echo "exit=$?" ; sleep 600`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'tmux',
      ['-S', socket, '-f', '/dev/null', 'new-session', '-d', '-s', 'cli', '-x', '100', '-y', '30', script],
      {
        env,
        cwd: process.cwd(),
        stdio: 'ignore',
      },
    );
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tmux new-session: ${code}`))));
  });
  return {
    /** The pane's visible lines, trailing blanks cut; `escapes`: with its colour sequences. */
    screen: async (escapes = false) =>
      (await tmux(socket, 'capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', 'cli')).replace(/\s+$/, ''),
    keys: (...keys: string[]) => tmux(socket, 'send-keys', '-t', 'cli', ...keys),
    async kill() {
      await tmux(socket, 'kill-server').catch(() => {});
    },
  };
}

/** Polls `read` until `match` holds (bounded: `timeoutMs`); returns the last value read. */
export async function until<T>(
  read: () => Promise<T>,
  match: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (match(value)) return value;
    if (Date.now() > end) throw new Error(`timed out; last value:\n${String(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

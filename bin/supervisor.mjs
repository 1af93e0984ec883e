// Keeps the worker's own credentials out of its environment, where any process running as the
// same user could read them (`/proc/<pid>/environ`, inherited by every child by default).
//
// Linux freezes a process's initial environment in its memory image, and Node.js has no execve
// to start over. So the entry point, when it finds credentials in its environment, starts itself
// again without them, hands them over on a pipe (fd 3), and stays as a thin supervisor: it
// forwards SIGTERM, SIGINT and SIGHUP and exits as the child did. The supervisor's own environ
// still holds them: only a step running as another user (WORKER_RUN_AS) cannot read that.
// Plain JavaScript, loaded before dist/ or tsx, so the supervisor costs one small Node.js process.
import { spawn } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';

/** Names of credential variables: CONVEYOR_SECRET_KEY, CONVEYOR_API_TOKENS, REDIS_PASSWORD, … */
const CREDENTIAL = /^(CONVEYOR|REDIS)_\w*(SECRET|TOKENS?|PASSWORD|KEY)$/;
/** Set in the child: the fd its credentials arrive on. */
const FD_VARIABLE = 'CONVEYOR_CREDENTIALS_FD';
const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * Splits `env` into what may stay in the environment and the credentials; a Redis URL keeps its
 * place without its password.
 * @param {NodeJS.ProcessEnv} env
 */
export function splitCredentials(env) {
  /** @type {Record<string, string>} */
  const kept = {};
  /** @type {Record<string, string>} */
  const credentials = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (CREDENTIAL.test(name)) credentials[name] = value;
    else kept[name] = value;
  }
  if (kept.REDIS_URL?.includes('@')) {
    credentials.REDIS_URL = kept.REDIS_URL;
    try {
      const url = new URL(kept.REDIS_URL);
      url.password = '';
      kept.REDIS_URL = url.href;
    } catch {
      delete kept.REDIS_URL; // unparsable: config.ts reports it, from the credentials' copy
    }
    if (kept.REDIS_URL === credentials.REDIS_URL) delete credentials.REDIS_URL;
  }
  return { kept, credentials };
}

/**
 * In the child: the credentials the supervisor sent (fd 3 read to its end and closed, so no
 * step inherits it); `undefined` when this process was not started by a supervisor.
 */
export function receiveCredentials() {
  const fd = process.env[FD_VARIABLE];
  if (fd === undefined) return undefined;
  delete process.env[FD_VARIABLE];
  const text = readFileSync(Number(fd), 'utf8');
  closeSync(Number(fd));
  watchSupervisor();
  return /** @type {Record<string, string>} */ (JSON.parse(text));
}

/**
 * A supervisor killed outright (SIGKILL) cannot forward anything: the child notices that it
 * was orphaned and stops itself as SIGTERM would.
 */
function watchSupervisor() {
  const supervisor = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === supervisor) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, 1000);
  timer.unref();
}

/**
 * Re-runs this entry without the credentials when there are any; resolves to `false` when there
 * are none (the caller runs in this process), never resolves otherwise (it exits as the child did).
 * @param {string[]} argv the entry's arguments (`process.argv.slice(1)`)
 */
export function superviseWithoutCredentials(argv) {
  const { kept, credentials } = splitCredentials(process.env);
  if (Object.keys(credentials).length === 0) return Promise.resolve(false);
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    env: { ...kept, [FD_VARIABLE]: '3' },
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  const pipe = /** @type {import('node:stream').Writable} */ (child.stdio[3]);
  pipe.on('error', () => {}); // the child died before reading: its exit says why
  pipe.end(JSON.stringify(credentials));
  for (const signal of FORWARDED) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    console.error(`conveyor: cannot start the worker process: ${err.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      // Die of the same signal, as a shell or a process manager expects.
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 1);
    }
  });
  return new Promise(() => {});
}

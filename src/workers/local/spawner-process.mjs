// @ts-check
// The lean spawner: a small Node.js process that forks local steps' launchers on the worker's
// behalf (see spawner.ts). Forking copies the page tables of the process that forks, so a fork
// from a 300 MB worker costs ten times one from this ~40 MB process, and blocks the worker's event
// loop meanwhile. Plain JavaScript that imports nothing of the engine, with a small heap.
//
// It lives exactly as long as its IPC channel: started under `setpriv --pdeathsig KILL` by the
// worker, it is killed by the kernel when the worker dies, and it exits when the channel closes;
// either way every launcher it started gets its own parent-death signal, which takes the step's
// PID namespace down (containment.ts). Terminal and stop signals are ignored: only the worker
// decides when it ends, so a Ctrl-C that reaches the worker's group leaves running steps their
// grace period.
//
// Messages in (from the worker):
//   { t: 'spawn', id, file, args, cwd, env, report? }
//                                              start `file` in a process group of its own; with
//                                              `report`, a pipe on its fd 3 too (the launcher's
//                                              `--report-fd 3`), whose text the exit carries
//   { t: 'kill', id, signal }                  signal that group
// Messages out:
//   { t: 'pid', id, pid }                      started
//   { t: 'out', id, fd: 1 | 2, data }          a chunk of stdout or stderr (≤ 64 KiB, a Buffer)
//   { t: 'exit', id, code, signal, report? }   ended, after its last chunk
//   { t: 'error', id, message }                could not be started
import { spawn } from 'node:child_process';

/** Bytes of output sent but not yet written to the channel above which steps' pipes are paused. */
const HIGH_WATER = 4 * 2 ** 20;
const LOW_WATER = 1 * 2 ** 20;
/** The most of a report kept (the launcher writes one short line). */
const MAX_REPORT_BYTES = 256;
/** Bounds on a request: Linux refuses more than 2 MiB of argv and env anyway (E2BIG). */
const MAX_REQUEST_BYTES = 8 * 2 ** 20;
const MAX_CHILDREN = 4096;
const SIGNALS = new Set(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT']);

/** @type {Map<number, { pid: number | undefined, streams: import('node:stream').Readable[] }>} */
const children = new Map();
/** @type {Set<import('node:stream').Readable>} */
const paused = new Set();
let inFlight = 0;

/** @param {unknown} message */
function send(message, onSent = () => {}) {
  if (!process.connected) return;
  process.send?.(message, undefined, undefined, onSent);
}

/** @param {number | undefined} pid @param {NodeJS.Signals} signal */
function killGroup(pid, signal) {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** @param {unknown} value @returns {value is string[]} */
const strings = (value) => Array.isArray(value) && value.every((v) => typeof v === 'string');

/**
 * The request's size in bytes, or -1 when it is not a well-formed spawn request.
 * @param {Record<string, unknown>} m
 */
function requestBytes(m) {
  if (typeof m.file !== 'string' || typeof m.cwd !== 'string' || !strings(m.args)) return -1;
  if (typeof m.env !== 'object' || m.env === null) return -1;
  const env = Object.entries(m.env);
  if (!env.every(([, v]) => typeof v === 'string')) return -1;
  let bytes = m.file.length + m.cwd.length;
  for (const a of m.args) bytes += a.length;
  for (const [k, v] of env) bytes += k.length + v.length;
  return bytes;
}

/** @param {Record<string, unknown>} m */
function start(m) {
  const id = /** @type {number} */ (m.id);
  const bytes = requestBytes(m);
  if (bytes < 0 || bytes > MAX_REQUEST_BYTES || children.size >= MAX_CHILDREN || children.has(id)) {
    send({
      t: 'error',
      id,
      message: bytes < 0 ? 'malformed spawn request' : 'spawn request refused: too large or too many',
    });
    return;
  }
  const child = spawn(/** @type {string} */ (m.file), /** @type {string[]} */ (m.args), {
    cwd: /** @type {string} */ (m.cwd),
    env: /** @type {Record<string, string>} */ (m.env),
    detached: true, // its own process group: one kill reaches the launcher and the whole tree
    stdio: m.report === true ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
  });
  const streams = [child.stdout, child.stderr];
  /** @type {string | undefined} */
  let report;
  const reportPipe = /** @type {import('node:stream').Readable | undefined} */ (child.stdio[3]);
  reportPipe?.on('data', (/** @type {Buffer} */ data) => {
    report = ((report ?? '') + data.toString('latin1')).slice(0, MAX_REPORT_BYTES);
  });
  const entry = { pid: child.pid, streams };
  children.set(id, entry);
  if (child.pid !== undefined) send({ t: 'pid', id, pid: child.pid });
  for (const [i, stream] of streams.entries()) {
    stream.on('data', (/** @type {Buffer} */ data) => {
      inFlight += data.length;
      send({ t: 'out', id, fd: i + 1, data }, () => {
        inFlight -= data.length;
        if (inFlight <= LOW_WATER) for (const s of drain()) s.resume();
      });
      if (inFlight > HIGH_WATER) {
        stream.pause();
        paused.add(stream);
      }
    });
  }
  /** @type {{ code: number | null, signal: string | null } | undefined} */
  let exit;
  child.once('exit', (code, signal) => {
    exit = { code, signal };
    // In the process-group fallback, leftovers would hold the pipes open and outlive the step.
    killGroup(child.pid, 'SIGKILL');
  });
  child.once('error', (err) => {
    if (children.get(id) !== entry) return;
    children.delete(id);
    send({ t: 'error', id, message: err.message });
  });
  child.once('close', (code, signal) => {
    if (children.get(id) !== entry) return;
    children.delete(id);
    for (const s of streams) paused.delete(s);
    send({ t: 'exit', id, ...(exit ?? { code, signal }), ...(report !== undefined && { report }) });
  });
}

/** Empties `paused`, returning what it held. */
function drain() {
  const all = [...paused];
  paused.clear();
  return all;
}

process.on('message', (/** @type {Record<string, unknown>} */ m) => {
  if (typeof m !== 'object' || m === null || typeof m.id !== 'number') return;
  if (m.t === 'spawn') start(m);
  else if (m.t === 'kill' && typeof m.signal === 'string' && SIGNALS.has(m.signal))
    killGroup(children.get(m.id)?.pid, /** @type {NodeJS.Signals} */ (m.signal));
});

// The worker is gone or let go of us: nothing we started may outlive it.
process.on('disconnect', () => {
  for (const { pid } of children.values()) killGroup(pid, 'SIGKILL');
  process.exit(0);
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => {});

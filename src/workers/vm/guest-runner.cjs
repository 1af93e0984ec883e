/**
 * Guest runner: the only script a function VM's Node.js starts with (plain Node, no tsx). It
 * says `ready`, waits for one `run` message on fd 3, imports the compiled module from its private
 * directory, calls its default export with `ctx`, and reports one terminal message (`result` or
 * `error`) before exiting. Protocol: JSON lines, see protocol.ts. Everything here runs before
 * the user's code, so it keeps its own references to what the user could later overwrite.
 *
 * It runs either as a plain script (`node guest-runner.cjs <dir>`) or from a V8 startup snapshot
 * built from this same file (`node --snapshot-blob <blob> <dir>`, see snapshot.ts): the modules
 * below are then already loaded and `main` is the snapshot's entry. So it is CommonJS (a snapshot
 * takes one script, not modules), and nothing of the guest's process — argv, env, stdio, fd 3 —
 * is touched before `main` runs.
 */
'use strict';
const { unlinkSync, writeSync } = require('node:fs');
const net = require('node:net');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { format } = require('node:util');
const v8 = require('node:v8');

const stringify = JSON.stringify;
/** An empty module the worker writes into the VM's directory (see private-dir.ts). */
const WARMUP_FILE = '.conveyor-warmup.mjs';
const fromSnapshot = v8.startupSnapshot.isBuildingSnapshot();

/**
 * `import()` of the function's module. Code deserialized from a snapshot has no module loader
 * of its own, so it compiles its `import()` with the main context's default loader.
 */
function importer() {
  if (!fromSnapshot) return (href) => import(href);
  const vm = require('node:vm');
  return new vm.Script('(href) => import(href)', {
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  }).runInThisContext();
}

function main() {
  // The snapshot is started as `node --snapshot-blob <blob> <dir>`: no script name in argv.
  const dir = process.argv[fromSnapshot ? 1 : 2];
  // The worker proves a fresh snapshot deserializes before it uses it.
  if (dir === 'conveyor-snapshot-check') process.exit(0);
  const exit = process.exit.bind(process);
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  const stderrWrite = process.stderr.write.bind(process.stderr);
  const load = importer();
  const channel = new net.Socket({ fd: 3, readable: true, writable: true });
  // Node's own warning printer, without the permission model's ExperimentalWarning (which is
  // ours, not the step's; `--disable-warning` does not reach a process started from a snapshot).
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name !== 'ExperimentalWarning') {
      stderrWrite(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
    }
  });
  let terminal = false;
  let controller = null;

  function send(message) {
    channel.write(`${stringify(message)}\n`);
  }

  /** Resolves once everything written to `stream` has reached the pipe (writes to a pipe that
   * is full queue up in memory, and exiting would drop them). */
  function flushed(stream) {
    if (stream.writableLength === 0 || stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      stream.once('drain', resolve);
      stream.once('close', resolve);
      stream.once('error', resolve);
    });
  }

  /**
   * Sends the one terminal message once the output is flushed, so the worker has every log line
   * before it hears the result; then exits (user timers may linger).
   */
  function finish(line) {
    if (terminal) return;
    terminal = true;
    Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => {
      channel.write(`${line}\n`, () => exit(0));
    });
  }

  function describe(kind, err) {
    const isError = err instanceof Error;
    let message;
    try {
      message = isError ? String(err.message) : `non-Error value thrown: ${String(err)}`;
    } catch {
      message = 'a value that cannot be turned into a string was thrown';
    }
    return stringify({
      t: 'error',
      kind,
      name: isError ? String(err.name) : typeof err,
      message,
      stack: isError && typeof err.stack === 'string' ? err.stack : '',
      code: isError && typeof err.code === 'string' ? err.code : '',
    });
  }

  function fail(kind, message) {
    return stringify({ t: 'error', kind, name: 'Error', message, stack: '', code: '' });
  }

  /** JSON with no silent losses: functions, symbols, BigInt, NaN, Map/Set, Promises are refused. */
  function toJson(value, what) {
    return stringify(value, function replacer(key, v) {
      const where = key === '' ? what : `${what} property "${key}"`;
      const type = typeof v;
      if (type === 'function' || type === 'symbol' || type === 'bigint') {
        throw new TypeError(`${where} is a ${type}, which JSON cannot hold`);
      }
      if (type === 'number' && !Number.isFinite(v))
        throw new TypeError(`${where} is ${v}, which JSON cannot hold`);
      if (v !== null && type === 'object') {
        if (typeof v.then === 'function') throw new TypeError(`${where} is a Promise (a missing await?)`);
        if (v instanceof Map || v instanceof Set || v instanceof WeakMap || v instanceof WeakSet) {
          throw new TypeError(`${where} is a ${v.constructor.name}, which JSON would turn into {}`);
        }
      }
      return v;
    });
  }

  process.on('uncaughtException', (err) => finish(describe('uncaught', err)));
  // process.exit() from the user's code: say so while the process can still speak (synchronously).
  process.on('exit', (code) => {
    if (terminal) return;
    terminal = true;
    try {
      writeSync(3, `${fail('exit', `process.exit(${code}) was called before the function returned`)}\n`);
    } catch {
      // The worker still sees the exit code.
    }
  });
  // A seat belt, not a wall (the PID namespace and the VM's own uid are): the guest has no
  // business signalling. `_kill` is the binding behind `process.kill`.
  process.kill = process._kill = () => {
    throw Object.assign(new Error('process.kill is not available in a Conveyor VM'), {
      code: 'ERR_ACCESS_DENIED',
    });
  };
  // The worker went away: nothing is left to report to.
  channel.on('close', () => exit(1));
  channel.on('error', () => exit(1));

  let buffered = '';
  channel.setEncoding('utf8');
  channel.on('data', (chunk) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const message = JSON.parse(line);
      if (message.t === 'run' && controller === null) void run(message);
      else if (message.t === 'abort' && controller)
        controller.abort(new Error(`step aborted: ${message.reason}`));
    }
  });

  async function run({ file, env, context, maxOutputBytes }) {
    controller = new AbortController();
    for (const key of Object.keys(process.env)) delete process.env[key];
    Object.assign(process.env, env);
    const ctx = Object.freeze({
      inputs: context.inputs ?? {},
      steps: context.steps ?? {},
      env: context.env ?? {},
      secrets: context.secrets ?? {},
      run: context.run ?? {},
      signal: controller.signal,
      log: (...args) => {
        stdoutWrite(`${format(...args)}\n`);
      },
      progress: (percent, message) => {
        if (typeof percent !== 'number' || !Number.isFinite(percent)) {
          throw new TypeError('ctx.progress(percent): percent must be a finite number');
        }
        send(
          message === undefined
            ? { t: 'progress', percent }
            : { t: 'progress', percent, message: String(message) },
        );
      },
      emit: (type, payload = null) => {
        if (typeof type !== 'string' || type === '')
          throw new TypeError('ctx.emit(type, payload): type must be a non-empty string');
        channel.write(
          `{"t":"emit","type":${stringify(type)},"payload":${toJson(payload, 'ctx.emit payload')}}\n`,
        );
      },
    });
    let mod;
    try {
      mod = await load(pathToFileURL(join(dir, file)).href);
    } catch (err) {
      return finish(describe('load', err));
    }
    if (typeof mod.default !== 'function') {
      return finish(
        stringify({
          t: 'error',
          kind: 'load',
          name: 'TypeError',
          message: 'the module has no default export function: export default async (ctx) => ({ … })',
          stack: '',
          code: 'ERR_NO_DEFAULT_EXPORT',
        }),
      );
    }
    let value;
    send({ t: 'started' });
    try {
      value = await mod.default(ctx);
    } catch (err) {
      return finish(describe('thrown', err));
    }
    if (value === undefined || value === null) value = {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      return finish(
        fail(
          'invalid',
          `the function must return an object of outputs (or nothing), not ${Array.isArray(value) ? 'an array' : typeof value}`,
        ),
      );
    }
    let json;
    try {
      json = toJson(value, 'the returned value');
    } catch (err) {
      return finish(fail('invalid', `outputs are not JSON-serialisable: ${err.message}`));
    }
    if (Buffer.byteLength(json) > maxOutputBytes) {
      return finish(
        fail(
          'output_limit',
          `outputs are ${Buffer.byteLength(json)} bytes, over the ${maxOutputBytes}-byte cap`,
        ),
      );
    }
    finish(`{"t":"result","outputs":${json}}`);
  }

  // The module loader starts on the first import() of a file: start it now, on the empty module
  // the worker left in the directory, so that a warm VM does not pay for it between `run` and
  // the function's first instruction (≈ 20–40 ms here otherwise); then the file goes.
  const warmup = join(dir, WARMUP_FILE);
  const ready = () => {
    try {
      unlinkSync(warmup);
    } catch {
      // Not there (an older worker): nothing to remove.
    }
    send({ t: 'ready' });
  };
  load(pathToFileURL(warmup).href).then(ready, ready);
}

if (fromSnapshot) v8.startupSnapshot.setDeserializeMainFunction(main);
else main();

/** Spawning the real `conveyor` entry point and reading its pino log lines. */
import { type ChildProcess, spawn } from 'node:child_process';

/** A spawned `bin/conveyor.mjs <mode>` with its output collected. */
export interface ConveyorProcess {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the first output line matching `pattern`; rejects if the process exits first. */
  line(pattern: RegExp): Promise<string>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `bin/conveyor.mjs mode` with `env` added to this process's environment (undefined removes). */
export function spawnConveyor(mode: string, env: Record<string, string | undefined>): ConveyorProcess {
  return spawnConveyorArgs([mode], env);
}

/** Starts `bin/conveyor.mjs ...args` (`serve --api-only`), as `spawnConveyor`. */
export function spawnConveyorArgs(args: string[], env: Record<string, string | undefined>): ConveyorProcess {
  const merged: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info', ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  const child = spawn(process.execPath, ['bin/conveyor.mjs', ...args], {
    env: merged,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffer = '';
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const w of waiters.splice(0)) w();
  });
  return {
    child,
    output: () => buffer,
    exited,
    line(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = buffer.split('\n').find((l) => pattern.test(l));
          if (found) return resolve(found);
          if (done) return reject(new Error(`exited before "${pattern}":\n${buffer}`));
          waiters.push(check);
        };
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

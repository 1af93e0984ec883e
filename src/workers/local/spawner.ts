/**
 * The worker's side of the lean spawner (`spawner-process.mjs`): one small Node.js process per
 * local executor that forks every step's launcher, so that the cost of a fork follows the
 * spawner's ~40 MB rather than the worker's few hundred, and the worker's event loop never
 * stops for one. Requests, pids, output chunks and exits travel over Node's IPC channel with the
 * `advanced` serialization (Buffers as they are).
 *
 * The spawner is started under `setpriv --pdeathsig KILL`, detached (no terminal signal reaches
 * it) and with an empty environment: the worker's settings and credentials are never in it, and
 * each step's environment comes with its request. When it dies, the steps it was running fail
 * with `spawner_lost` (retriable), their process groups are killed from here too, and the next
 * step starts a new spawner. One grown past `recycleMb` is retired the same way, gently: it
 * takes no new steps, finishes its own, and exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StepError } from '../../errors.ts';

/** What to start: the launcher's argv, directory and environment. */
export interface SpawnRequest {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Open a pipe on the process's fd 3 and hand back what it writes there (`SpawnExit.report`). */
  report?: boolean;
}

/** How a spawned process ended. */
export interface SpawnExit {
  exitCode: number | null;
  signal: string | null;
  /** What it wrote on fd 3 (at most 256 bytes), when the request asked for `report`. */
  report?: string;
}

/** A process the spawner started. */
export interface Spawned {
  /** Resolves once it exited and its pipes closed; rejects with a `StepError` when it could not start or the spawner died. */
  exited: Promise<SpawnExit>;
  /** Signals its whole process group. */
  kill(signal: NodeJS.Signals): void;
}

/** Options of the spawner. */
export interface SpawnerOptions {
  /** Absolute path of `setpriv` (the parent-death signal of the spawner itself). */
  setpriv: string;
  /** V8 old-space limit of the spawner, in MB (a ceiling, not a reservation). @defaultValue 64 */
  heapMb: number;
  /**
   * RSS in MB past which a spawner is retired: it finishes its steps and exits, a new one takes
   * the next (reading large logs grows a Node.js process for good, and forks cost its size).
   * @defaultValue 96
   */
  recycleMb: number;
  /** Milliseconds between two looks at the spawner's RSS (reading /proc costs a little). @defaultValue 1000 */
  sizeCheckMs: number;
}

const SCRIPT = fileURLToPath(new URL('./spawner-process.mjs', import.meta.url));

interface Pending {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  resolve(exit: SpawnExit): void;
  reject(err: Error): void;
  pid?: number;
}

/** One spawner process and the requests it holds. */
interface Channel {
  child: ChildProcess;
  pending: Map<number, Pending>;
  lost: boolean;
  /** Takes no new steps; exits once its last one ends. */
  retired: boolean;
}

type Message =
  | { t: 'pid'; id: number; pid: number }
  | { t: 'out'; id: number; fd: 1 | 2; data: Buffer }
  | { t: 'exit'; id: number; code: number | null; signal: string | null; report?: string }
  | { t: 'error'; id: number; message: string };

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Starts processes through a small helper process, restarted when it dies. */
export class Spawner {
  readonly options: SpawnerOptions;
  #channel: Channel | undefined;
  /** Every spawner still running: the current one and retired ones finishing their steps. */
  readonly #all = new Set<Channel>();
  #nextId = 1;
  #closed = false;
  #sizeCheckedAt = 0;

  constructor(options: Partial<SpawnerOptions> & Pick<SpawnerOptions, 'setpriv'>) {
    this.options = { heapMb: 64, recycleMb: 96, sizeCheckMs: 1000, ...options };
    if (!Number.isInteger(this.options.heapMb) || this.options.heapMb < 8)
      throw new RangeError('heapMb must be an integer >= 8');
    if (!(this.options.recycleMb > 0)) throw new RangeError('recycleMb must be > 0');
    if (!(this.options.sizeCheckMs >= 0)) throw new RangeError('sizeCheckMs must be >= 0');
  }

  /** The pid of the running spawner, if one runs. */
  get pid(): number | undefined {
    return this.#channel?.child.pid;
  }

  /**
   * Starts `request`, handing its output to `output` as it comes. A function is given the pid of
   * the spawner that will start it (the launcher's expected parent, see launcher.c `--parent`).
   */
  spawn(
    request: SpawnRequest | ((spawnerPid: number | undefined) => SpawnRequest),
    output: Pending['output'],
  ): Spawned {
    if (this.#closed) throw new StepError('spawner_closed', 'the local executor is closed', true);
    const channel = this.#open();
    if (typeof request === 'function') request = request(channel.child.pid);
    const id = this.#nextId++;
    const exited = new Promise<SpawnExit>((resolve, reject) => {
      channel.pending.set(id, { output, resolve, reject });
    });
    if (channel.pending.size === 1) this.#ref(channel, true);
    this.#send(channel, { t: 'spawn', id, ...request });
    return {
      exited,
      kill: (signal) => {
        const pending = channel.pending.get(id);
        if (!pending) return;
        if (channel.lost) killGroup(pending.pid, signal);
        else this.#send(channel, { t: 'kill', id, signal });
      },
    };
  }

  /** Stops every spawner; the steps they still run are killed. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      [...this.#all].map((channel) => {
        const gone = new Promise((resolve) => channel.child.once('exit', resolve));
        if (channel.child.connected) channel.child.disconnect();
        return gone;
      }),
    );
  }

  #open(): Channel {
    const current = this.#channel;
    if (current && !current.lost && !this.#oversized(current)) return current;
    if (current && !current.lost) this.#retire(current);
    const { setpriv, heapMb } = this.options;
    const child = spawn(
      setpriv,
      ['--pdeathsig', 'KILL', '--', process.execPath, `--max-old-space-size=${heapMb}`, SCRIPT],
      {
        env: {},
        detached: true,
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        serialization: 'advanced',
      },
    );
    const channel: Channel = { child, pending: new Map(), lost: false, retired: false };
    this.#channel = channel;
    this.#all.add(channel);
    this.#ref(channel, false);
    child.on('message', (m: Message) => this.#receive(channel, m));
    child.once('exit', (code, signal) =>
      this.#lose(channel, signal ? `killed by ${signal}` : `exited with code ${code}`),
    );
    child.once('error', (err) => {
      this.#lose(channel, err.message);
      child.kill('SIGKILL'); // if it runs at all, it is no longer ours to use
    });
    return channel;
  }

  #receive(channel: Channel, m: Message): void {
    const pending = channel.pending.get(m.id);
    if (!pending) return;
    if (m.t === 'out') pending.output(m.fd === 1 ? 'stdout' : 'stderr', m.data);
    else if (m.t === 'pid') pending.pid = m.pid;
    else {
      channel.pending.delete(m.id);
      if (channel.pending.size === 0) {
        this.#ref(channel, false);
        if (channel.retired) this.#retire(channel);
      }
      if (m.t === 'exit') pending.resolve({ exitCode: m.code, signal: m.signal, report: m.report });
      else
        pending.reject(
          new StepError('spawn_failed', `could not start the step's shell: ${m.message}`, false),
        );
    }
  }

  /** The spawner is gone: its steps fail (their launchers die of their parent-death signal). */
  #lose(channel: Channel, how: string): void {
    if (channel.lost) return;
    channel.lost = true;
    this.#all.delete(channel);
    if (this.#channel === channel) this.#channel = undefined;
    const message = `the local step spawner (pid ${channel.child.pid ?? '?'}) ${how} while the step ran`;
    for (const pending of channel.pending.values()) {
      // Belt and braces: the group of a launcher that has not died yet.
      killGroup(pending.pid, 'SIGKILL');
      pending.reject(new StepError('spawner_lost', message, true));
    }
    channel.pending.clear();
  }

  /** Whether the spawner grew past `recycleMb` (looked at once per `sizeCheckMs` at most). */
  #oversized(channel: Channel): boolean {
    const now = Date.now();
    if (now - this.#sizeCheckedAt < this.options.sizeCheckMs || channel.child.pid === undefined) return false;
    this.#sizeCheckedAt = now;
    try {
      const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${channel.child.pid}/status`, 'utf8'))?.[1];
      return Number(kb) / 1024 > this.options.recycleMb;
    } catch {
      return false; // gone: its exit says so
    }
  }

  /** No new steps for this spawner; it exits once its running ones end. */
  #retire(channel: Channel): void {
    channel.retired = true;
    if (this.#channel === channel) this.#channel = undefined;
    if (channel.pending.size === 0 && channel.child.connected) channel.child.disconnect();
  }

  #send(channel: Channel, message: unknown): void {
    // A failed send means the spawner is going away: its exit fails the pending steps.
    if (channel.child.connected) channel.child.send(message as object, (err) => void err);
  }

  /** An idle spawner does not keep the worker's event loop alive. */
  #ref(channel: Channel, on: boolean): void {
    const handle = channel.child.channel as { ref?(): void; unref?(): void } | null | undefined;
    if (on) {
      channel.child.ref();
      handle?.ref?.();
    } else {
      channel.child.unref();
      handle?.unref?.();
    }
  }
}

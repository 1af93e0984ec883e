/**
 * The worker's side of one resident agent (agent-script.ts): the exec channel it runs on, its
 * pid on the host, and whoever is listening to it (the step it runs). Started once per pooled
 * channel; every step after that is a request line on its stdin. An agent that ends without the
 * worker closing it (killed on the host, or its channel closed under it) is reported through
 * `onDeath`: the pool then gives up the whole connection it ran on
 * (pool.ts, condemned-connections.ts).
 */
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { StepError } from '../../errors.ts';
import { agentProgram } from './agent-script.ts';
import { RecordSplitter } from './remote-stream.ts';

/** How the agent's channel ended: sshd's exit status or signal, when it sent one. */
export interface AgentExit {
  code: number | null;
  signal: string | null;
}

/** The step currently attached to an agent. */
export interface AgentListener {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /**
   * The agent is gone: its channel closed (connection lost, or closed by the worker), or sshd
   * reported its exit, which comes first when the step's processes still hold the channel.
   */
  closed(exit: AgentExit | undefined): void;
}

/** Most stderr kept from an agent that failed to start, for the error message. */
const MAX_START_STDERR = 2048;

/** One running agent. */
export class RemoteAgent {
  private listener: AgentListener | undefined;
  private exit: AgentExit | undefined;
  private open = true;
  private ended = false;
  /** Set once the worker closed the channel: the end that follows is not a death. */
  private closing = false;
  /**
   * Called when the agent ends without the worker closing it: killed on the host (it left its
   * state file, and maybe its step's group), or its channel or connection closed under it.
   * `idle`: no step was attached. Called before the step's listener hears of it.
   */
  onDeath: ((exit: AgentExit | undefined, idle: boolean) => void) | undefined;
  /** Resolves once the channel has closed. */
  readonly closed: Promise<void>;

  private constructor(
    private readonly channel: ClientChannel,
    /** The agent's pid on the host. */
    readonly pid: number,
    /** Random per agent; names its state file (`agentStateFile`). */
    readonly id: string,
  ) {
    this.closed = new Promise((resolve) => {
      channel.once('close', () => {
        this.open = false;
        this.end();
        resolve();
      });
    });
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exit = { code, signal: signal ?? null };
      this.end();
    });
    channel.on('data', (chunk: Buffer) => this.listener?.stdout(chunk));
    channel.stderr.on('data', (chunk: Buffer) => this.listener?.stderr(chunk));
  }

  /**
   * Writes the agent's program on `channel` (an exec of `AGENT_BOOTSTRAP`) and waits for its
   * ready record. Rejects, closing the channel, if it reports it cannot run, ends, or does not
   * answer within `timeoutMs`.
   */
  static start(channel: ClientChannel, timeoutMs: number, who: string): Promise<RemoteAgent> {
    const id = randomBytes(12).toString('hex');
    const marker = `\x1ecva${id}:`;
    return new Promise((resolve, reject) => {
      let stderr = '';
      let exit: AgentExit | undefined;
      const fail = (err: StepError) => {
        cleanup();
        channel.close();
        reject(err);
      };
      const splitter = new RecordSplitter(
        marker,
        0,
        () => {},
        (record) => {
          if (record.type === 'setup')
            fail(new StepError('remote_setup_failed', `${who}: ${record.message}`, false));
          if (record.type === 'ready') {
            cleanup();
            resolve(new RemoteAgent(channel, record.pid, id));
          }
        },
      );
      const onData = (chunk: Buffer) => splitter.push(chunk);
      const onStderr = (chunk: Buffer) => {
        if (stderr.length < MAX_START_STDERR) stderr += chunk.toString('utf8').slice(0, MAX_START_STDERR);
      };
      const onExit = (code: number | null, signal?: string) => {
        exit = { code, signal: signal ?? null };
      };
      // `close` carries the exit too: an agent that ended at once may have reported it in the
      // same read as the exec's confirmation, before `onExit` was listening.
      const onClose = (code?: number | null, signal?: string) => {
        if (!exit && (code !== undefined || signal !== undefined)) onExit(code ?? null, signal);
        const how = exit
          ? `exit ${exit.code ?? '-'}${exit.signal ? `, signal ${exit.signal}` : ''}`
          : 'no exit status';
        const said = stderr.trim().replace(/\s+/g, ' ');
        reject(
          new StepError(
            'remote_setup_failed',
            `${who}: the step agent (sh -s) ended before it was ready (${how})${said ? `: ${said}` : ''}`,
            exit === undefined,
          ),
        );
        cleanup();
      };
      const timer = setTimeout(
        () =>
          fail(
            new StepError(
              'connect_timeout',
              `${who}: the step agent did not start within ${timeoutMs} ms`,
              true,
            ),
          ),
        timeoutMs,
      );
      const cleanup = () => {
        clearTimeout(timer);
        channel.off('data', onData);
        channel.stderr.off('data', onStderr);
        channel.off('exit', onExit);
        channel.off('close', onClose);
      };
      channel.on('data', onData);
      channel.stderr.on('data', onStderr);
      channel.on('exit', onExit);
      channel.once('close', onClose);
      channel.write(agentProgram(marker, id));
    });
  }

  /** Whether the agent still runs (and its channel is open). */
  get alive(): boolean {
    return this.open && !this.ended;
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    const listener = this.listener;
    this.listener = undefined;
    if (!this.closing) this.onDeath?.(this.exit, listener === undefined);
    if (listener) {
      listener.closed(this.exit);
      return;
    }
    // Died while idle: a process that escaped a step and holds the channel's stdout would keep
    // the channel (and its slot) open for good.
    this.close();
  }

  /** Routes the agent's output to `listener` (one step at a time). */
  attach(listener: AgentListener): void {
    if (this.listener) throw new Error('the agent is already running a step');
    if (this.ended) {
      listener.closed(this.exit);
      return;
    }
    this.listener = listener;
  }

  detach(): void {
    this.listener = undefined;
  }

  /** Writes a request line (agent-script.ts). */
  send(request: string): void {
    if (this.alive) this.channel.write(request);
  }

  /** Closes the channel: the agent sees its stdin end, kills what still runs, and exits. */
  close(): void {
    this.closing = true;
    if (this.open) this.channel.close();
  }
}

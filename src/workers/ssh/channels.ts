/**
 * Channel plumbing for the pool: opening an exec channel, collecting what a short command on it
 * printed, and knowing when its slot is free.
 */
import type { ClientChannel } from 'ssh2';
import type { StepError } from '../../errors.ts';
import type { SshLink } from './connect.ts';

/** Opens an exec channel on `link`; ssh2 throws synchronously on a dead socket, this rejects. */
export function openExec(link: SshLink, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      link.client.exec(command, (err, channel) => (err ? reject(err) : resolve(channel)));
    } catch (err) {
      reject(err);
    }
  });
}

/** What a command run to its end printed, and its exit code (null: sshd sent none). */
export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Collects `channel`'s output until it closes. Rejects with the connection's reason when the
 * connection went before the command reported an exit code.
 */
export function runToEnd(
  channel: ClientChannel,
  connectionClosed: () => StepError | undefined,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    channel.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    channel.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // The exit code as `close` carries it, not from an `exit` listener: a fast command's exit
    // can come in the same read as the exec's confirmation, and ssh2 emits `exit` while it
    // parses that read, before the caller (a microtask later) is listening.
    channel.once('close', (exitCode?: number | null) => {
      const code = exitCode ?? null;
      const lost = connectionClosed();
      if (code === null && lost) reject(lost);
      else resolve({ code, stdout, stderr });
    });
  });
}

/** `promise`'s value, or undefined if it takes longer than `ms` (or rejects). */
export function untilTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Calls `then` once the server has processed everything sent so far. sshd frees a session only
 * when it garbage-collects the closed channel, after the batch of packets that held our
 * CHANNEL_CLOSE; a slot reused at once can meet "open failed" under churn even below
 * MaxSessions. A global request with a reply is a barrier: it is answered after that batch. A
 * `cancel-tcpip-forward` for a forward that does not exist is the one such request in ssh2's
 * public API with no effect (the server just says no).
 */
export function afterServerCatchesUp(link: SshLink, then: () => void): void {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    then();
  };
  if (!link.isOpen()) {
    once();
    return;
  }
  try {
    // ssh2 also calls this back (with an error) if the connection closes first.
    link.client.unforwardIn('127.0.0.1', 1, once);
  } catch {
    once();
  }
}

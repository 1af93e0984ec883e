/** Channel plumbing for the pool: opening an exec channel, and knowing when its slot is free. */
import type { ClientChannel } from 'ssh2';
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

/**
 * The byte stream under an SSH connection: a TCP socket of our own (so DNS failure, refusal and
 * timeout are told apart and timed), or a `direct-tcpip` channel through a jump host, whose
 * refusals are classified like direct ones but say they were seen from the jump host.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import type { Client, ClientChannel } from 'ssh2';
import { StepError } from '../../errors.ts';
import { connectError, describeTarget } from './connect-errors.ts';
import type { HostTarget } from './types.ts';

/** A TCP connection to the host's SSH port, with its own timeout (ssh2 would fold it into the handshake). */
export function openTcp(target: HostTarget, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: target.address, port: target.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new StepError(
          'connect_timeout',
          `${describeTarget(target)}: no TCP connection within ${timeoutMs} ms`,
          true,
        ),
      );
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      // Commands are small request/response exchanges: Nagle would add tens of ms to each.
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(connectError(target, err));
    });
  });
}

/** A `direct-tcpip` channel through `jump` to the target's SSH port (what `ssh -J` does). */
export function forward(jump: Client, target: HostTarget, timeoutMs: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new StepError(
            'connect_timeout',
            `${describeTarget(target)}: jump host ${target.jump!.name} did not open a tunnel within ${timeoutMs} ms`,
            true,
          ),
        ),
      timeoutMs,
    );
    jump.forwardOut('127.0.0.1', 0, target.address, target.port, (err, stream) => {
      clearTimeout(timer);
      if (err) reject(forwardError(target, err));
      else resolve(stream);
    });
  });
}

function forwardError(target: HostTarget, err: Error & { reason?: number | string }): StepError {
  const who = describeTarget(target);
  const text = err.message.replace(/^\(SSH\) Channel open failure: /, '');
  const opts = { cause: err };
  // RFC 4254 reason 1: administratively prohibited (AllowTcpForwarding / PermitOpen).
  if (err.reason === 1) {
    return new StepError(
      'channel_open_failed',
      `${who}: jump host refused to forward (${text})`,
      false,
      opts,
    );
  }
  if (/refused/i.test(text)) {
    return new StepError(
      'connection_refused',
      `${who}: connection refused (seen from the jump host)`,
      true,
      opts,
    );
  }
  if (/resolve|not known|name/i.test(text)) {
    return new StepError(
      'dns_failure',
      `${who}: the jump host cannot resolve ${target.address}`,
      false,
      opts,
    );
  }
  if (/timed out/i.test(text)) {
    return new StepError(
      'connect_timeout',
      `${who}: connection timed out (seen from the jump host)`,
      true,
      opts,
    );
  }
  return new StepError(
    'channel_open_failed',
    `${who}: the jump host could not open a tunnel: ${text}`,
    true,
    opts,
  );
}

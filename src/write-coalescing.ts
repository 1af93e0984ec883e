/**
 * One system call for the writes of one turn of the event loop on a Redis connection. A worker's
 * connection is shared by every job it runs: the replies of one socket read wake several jobs,
 * whose next commands (a step's record, BullMQ's `moveToFinished`) would each be a `write(2)` of
 * its own, and on loopback each costs about as much CPU as the command itself. Here the socket is
 * corked at a turn's first write and uncorked once the turn's callbacks have run
 * (`setImmediate`), so they leave as one `writev`. Nothing is reordered: every write still goes
 * through the same socket, in order, and what Conveyor relies on ("a command sent after this one
 * on the same connection reaches Redis after it") keeps holding.
 */
import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import type { RedisClient } from './redis-client.ts';

const COALESCED = Symbol('conveyor.coalesced');

type Coalesced = Socket & { [COALESCED]?: true };

/** Coalesces the writes of `client` (every node's, for a cluster), on this and every later socket. */
export function coalesceWrites(client: RedisClient): void {
  if (client instanceof Redis) {
    // ioredis opens a new socket at each (re)connect, and 'connect' comes before it writes on it.
    client.on('connect', () => coalesce(client));
    coalesce(client);
    return;
  }
  client.on('+node', (node: Redis) => coalesceWrites(node));
  for (const node of client.nodes()) coalesceWrites(node);
}

function coalesce(client: Redis): void {
  const stream = (client as unknown as { stream?: Coalesced }).stream;
  if (!stream || stream[COALESCED]) return;
  stream[COALESCED] = true;
  const write = stream.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    if (!corked) {
      corked = true;
      stream.cork();
      setImmediate(uncork);
    }
    return write.apply(this, args);
  } as Socket['write'];
}

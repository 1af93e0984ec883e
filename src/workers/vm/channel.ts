/**
 * The worker's end of a function VM's message channel: newline-framed JSON over a socketpair.
 * A line may not grow past `maxLineBytes` (the outputs cap plus room for escaping), so a guest
 * that never sends a newline cannot make the worker buffer without end.
 */
import type { Duplex } from 'node:stream';
import { type GuestMessage, type HostMessage, ProtocolError, parseGuestMessage } from './protocol.ts';

/** Receives the guest's messages, or the one error that ends the channel. */
export interface ChannelListener {
  message(message: GuestMessage): void;
  error(err: ProtocolError): void;
}

/** Framing, caps and checks over the raw socket. */
export class GuestChannel {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #queue: (GuestMessage | ProtocolError)[] = [];
  #listener: ChannelListener | null = null;
  #failed = false;

  constructor(
    private readonly socket: Duplex,
    private readonly maxLineBytes: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    // The guest dying closes its end; the executor learns that from the VM's exit instead.
    socket.on('error', () => {});
  }

  /** Hands every message (queued ones first) to `listener`, replacing any previous one. */
  listen(listener: ChannelListener): void {
    this.#listener = listener;
    for (const item of this.#queue.splice(0)) this.#deliver(item);
  }

  /** Sends a message; silently dropped when the guest is already gone. */
  send(message: HostMessage): void {
    if (this.socket.writable && !this.socket.destroyed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** Closes the worker's end. */
  close(): void {
    this.socket.destroy();
  }

  #receive(chunk: Buffer): void {
    if (this.#failed) return;
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.#pendingBytes + piece.length > this.maxLineBytes) {
        this.#fail(this.#tooLong());
        return;
      }
      const line = Buffer.concat([...this.#pending, piece]).toString('utf8');
      this.#pending = [];
      this.#pendingBytes = 0;
      if (line.trim() === '') continue;
      try {
        this.#deliver(parseGuestMessage(line));
      } catch (err) {
        this.#fail(err as ProtocolError);
        return;
      }
    }
    const rest = chunk.subarray(start);
    if (rest.length === 0) return;
    if (this.#pendingBytes + rest.length > this.maxLineBytes) {
      this.#fail(this.#tooLong());
      return;
    }
    this.#pending.push(rest);
    this.#pendingBytes += rest.length;
  }

  #tooLong(): ProtocolError {
    return new ProtocolError(`guest sent a message over ${this.maxLineBytes} bytes`);
  }

  #fail(err: ProtocolError): void {
    this.#failed = true;
    this.#pending = [];
    this.socket.destroy();
    this.#deliver(err);
  }

  #deliver(item: GuestMessage | ProtocolError): void {
    if (!this.#listener) {
      this.#queue.push(item);
    } else if (item instanceof ProtocolError) {
      this.#listener.error(item);
    } else {
      this.#listener.message(item);
    }
  }
}

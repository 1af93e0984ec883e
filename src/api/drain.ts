/**
 * The API's graceful stop: a signal every open event stream ends on (each writes a last comment
 * telling its client to reconnect, elsewhere, with Last-Event-ID), a count of the streams still
 * open to wait for, and the answer new requests get meanwhile (503 with `Connection: close`).
 */

/** The comment a stream ends with when the server stops. */
export const SHUTDOWN_COMMENT = ': server shutting down, reconnect with Last-Event-ID\n\n';

/** One API process's drain. */
export class Drain {
  private readonly controller = new AbortController();
  private open = 0;
  private idle?: () => void;

  /** Aborted once the server is stopping. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stopping(): boolean {
    return this.controller.signal.aborted;
  }

  /** Runs a stream's body, counted as open until it returns. */
  async stream(body: () => Promise<void>): Promise<void> {
    this.open++;
    try {
      await body();
    } finally {
      this.open--;
      if (this.open === 0) this.idle?.();
    }
  }

  /** Signals every stream to end; resolves once all have, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.controller.abort();
    if (this.open === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
  }

  /** What a request that arrives while stopping gets. */
  refusal(): Response {
    return new Response(
      JSON.stringify({ error: { code: 'unavailable', message: 'the server is shutting down; retry' } }),
      {
        status: 503,
        headers: { 'content-type': 'application/json', connection: 'close', 'retry-after': '1' },
      },
    );
  }
}

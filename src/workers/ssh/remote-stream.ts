/**
 * Splits a step's stdout (or stderr) into the command's own bytes (streamed on as they arrive)
 * and the agent's marker records (see agent-script.ts). Only a tail that could be the start of a
 * marker is ever held back, so output is not delayed in practice. A marker line that is no
 * record of the protocol is reported as `malformed`: the agent behind it is not to be trusted.
 */

/** A record the remote agent wrote. */
export type RemoteRecord =
  | { type: 'pid'; pid: number }
  | { type: 'setup'; message: string }
  | { type: 'sudo'; message: string }
  | { type: 'cwd' }
  /** The agent is ready (agent marker); its pid. */
  | { type: 'ready'; pid: number }
  /** On stderr: the step's last stderr byte has been sent. */
  | { type: 'end' }
  /** A marker line that is no record of the protocol (its text after the marker). */
  | { type: 'malformed'; header: string }
  | {
      type: 'exit';
      code: number;
      outputBytes: number;
      eventBytes: number;
      /** Present unless a file was over the cap (then only the sizes are known). */
      output?: Buffer;
      events?: Buffer;
    };

const MAX_HEADER = 4096;

/** Incremental parser: `push` chunks, then `end`. */
export class RecordSplitter {
  private readonly marker: Buffer;
  private buf: Buffer = Buffer.alloc(0);
  private pendingExit: Extract<RemoteRecord, { type: 'exit' }> | undefined;
  private finished = false;

  constructor(
    marker: string,
    private readonly maxPayloadBytes: number,
    private readonly onData: (chunk: Buffer) => void,
    private readonly onRecord: (record: RemoteRecord) => void,
  ) {
    this.marker = Buffer.from(marker, 'latin1');
  }

  /** Whether the final `X` record (and its payload) has been seen. */
  get done(): boolean {
    return this.finished;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.finished) {
        // Bytes after the final record come from processes that escaped the step's group.
        this.flush();
        return;
      }
      if (this.pendingExit) {
        const rec = this.pendingExit;
        const need = rec.outputBytes + rec.eventBytes;
        if (this.buf.length < need) return;
        rec.output = this.buf.subarray(0, rec.outputBytes);
        rec.events = this.buf.subarray(rec.outputBytes, need);
        this.buf = this.buf.subarray(need);
        this.pendingExit = undefined;
        this.finished = true;
        this.onRecord(rec);
        continue;
      }
      const at = this.buf.indexOf(this.marker);
      if (at < 0) {
        const keep = this.partialMarkerTail();
        if (this.buf.length > keep) this.onData(this.buf.subarray(0, this.buf.length - keep));
        this.buf = this.buf.subarray(this.buf.length - keep);
        return;
      }
      if (at > 0) {
        this.onData(this.buf.subarray(0, at));
        this.buf = this.buf.subarray(at);
      }
      const nl = this.buf.indexOf(0x0a, this.marker.length);
      if (nl < 0) {
        if (this.buf.length > this.marker.length + MAX_HEADER) {
          // Not one of ours after all (a record is one short line): let it through as output.
          this.onData(this.buf.subarray(0, this.marker.length));
          this.buf = this.buf.subarray(this.marker.length);
          continue;
        }
        return;
      }
      const header = this.buf.subarray(this.marker.length, nl).toString('utf8').replace(/\r$/, '');
      this.buf = this.buf.subarray(nl + 1);
      this.record(header);
    }
  }

  /** Call when the stream ends: releases any held-back bytes as output. */
  end(): void {
    this.pendingExit = undefined;
    this.flush();
  }

  private flush(): void {
    if (this.buf.length) this.onData(this.buf);
    this.buf = Buffer.alloc(0);
  }

  private record(header: string): void {
    const kind = header[0];
    const rest = header.slice(1);
    const malformed = () => this.onRecord({ type: 'malformed', header });
    switch (kind) {
      case 'P': {
        const pid = Number(rest);
        if (/^\d+$/.test(rest) && pid > 1) this.onRecord({ type: 'pid', pid });
        else malformed();
        return;
      }
      case 'F':
        this.onRecord({ type: 'setup', message: rest });
        return;
      case 'S':
        this.onRecord({ type: 'sudo', message: rest.trim() });
        return;
      case 'D':
        this.onRecord({ type: 'cwd' });
        return;
      case 'A': {
        const pid = Number(rest);
        if (/^\d+$/.test(rest) && pid > 1) this.onRecord({ type: 'ready', pid });
        else malformed();
        return;
      }
      case 'E':
        this.onRecord({ type: 'end' });
        return;
      case 'X': {
        if (!/^\d+ \d+ \d+$/.test(rest)) {
          malformed();
          return;
        }
        const [code, out, ev] = rest.split(' ').map(Number) as [number, number, number];
        const rec = { type: 'exit' as const, code, outputBytes: out, eventBytes: ev };
        if (out + ev > 0 && out <= this.maxPayloadBytes && ev <= this.maxPayloadBytes) {
          this.pendingExit = rec;
          return;
        }
        this.finished = true;
        this.onRecord(rec);
        return;
      }
      default:
        malformed();
    }
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of the marker. */
  private partialMarkerTail(): number {
    const first = this.marker[0]!;
    const from = Math.max(0, this.buf.length - this.marker.length + 1);
    for (let i = this.buf.indexOf(first, from); i >= 0; i = this.buf.indexOf(first, i + 1)) {
      const tail = this.buf.subarray(i);
      if (this.marker.subarray(0, tail.length).equals(tail)) return tail.length;
    }
    return 0;
  }
}

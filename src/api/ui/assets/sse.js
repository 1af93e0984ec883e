/**
 * Follows a run's event stream with `fetch` (EventSource cannot send `Authorization`) and a
 * small parser of the SSE format. After a dropped connection it resumes with `Last-Event-ID`, so
 * no event is missed or seen twice; it stops after the run's terminal event.
 */
import { ApiError, request, seg } from './api.js';

const TERMINAL = new Set(['run.succeeded', 'run.failed', 'run.cancelled']);

/** Parses SSE text fed in chunks; calls `dispatch({id, event, data})` per complete event. */
export class SseParser {
  constructor(dispatch) {
    this.dispatch = dispatch;
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.id = undefined;
    this.event = '';
    this.data = [];
  }

  push(chunk) {
    const text = this.buffer + chunk;
    // One pass over the text; only an unfinished last line is kept for the next chunk.
    let start = 0;
    let nl = text.indexOf('\n');
    while (nl >= 0) {
      this.line(text.slice(start, nl > start && text[nl - 1] === '\r' ? nl - 1 : nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    this.buffer = text.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.data.length)
        this.dispatch({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      this.reset();
      return;
    }
    if (line.startsWith(':')) return; // a comment: the keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') this.id = value;
    else if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}

/**
 * Follows `runId`'s events until its terminal one or `signal` aborts. `onEvent({id, type,
 * data})` sees each event once; `onState('live' | 'reconnecting' | 'ended' | 'error', detail)`
 * tells the connection's state.
 */
export async function followRun(runId, { onEvent, onState = () => {}, signal }) {
  let lastId;
  let delay = 500;
  while (!signal.aborted) {
    let ended = false;
    try {
      const headers = { accept: 'text/event-stream' };
      if (lastId) headers['last-event-id'] = lastId;
      const res = await request(`v1/runs/${seg(runId)}/events`, { headers, signal });
      onState('live');
      const parser = new SseParser((raw) => {
        if (raw.id) lastId = raw.id;
        let data;
        try {
          data = JSON.parse(raw.data);
        } catch {
          return; // not an event of ours
        }
        delay = 500;
        onEvent({ id: raw.id, type: raw.event, data });
        if (TERMINAL.has(raw.event)) ended = true;
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch (err) {
      if (signal.aborted) return;
      // An unknown run or a refused token does not get better by retrying.
      if (err instanceof ApiError && err.status !== 503 && err.status !== 429) {
        onState('error', err);
        return;
      }
    }
    if (ended) {
      onState('ended');
      return;
    }
    if (signal.aborted) return;
    onState('reconnecting');
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, delay);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    delay = Math.min(delay * 2, 10_000);
  }
}

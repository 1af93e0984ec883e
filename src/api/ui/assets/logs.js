/**
 * One step's log (one attempt, one host), following live. The stored log is exactly the
 * concatenation of the step's `step.log` events, so each event's offset in it is known from the
 * run's stream (the run view counts them from the first event): the fetched text and the live
 * events are joined by offset, with nothing shown twice or lost, whichever arrives first.
 */
import { ApiError, request, seg } from './api.js';
import { h, replace } from './dom.js';

/** At most this much text stays in the page; earlier output is dropped from view. */
const MAX_SHOWN = 2 * 1024 * 1024;

/** The key of one log: step, attempt and host. */
export function logKey(step, attempt, host) {
  return `${step}\u0000${attempt}\u0000${host ?? ''}`;
}

/** A log panel. */
export class LogView {
  constructor() {
    this.pre = h('pre', { class: 'log', tabindex: 0, 'aria-label': 'Step log' });
    this.note = h('p', { class: 'muted small log-note' });
    this.el = h('div', { class: 'log-wrap' }, this.note, this.pre);
    this.target = undefined;
  }

  /** Shows the log of `{runId, step, attempt, host}` and follows it. */
  async open(target) {
    this.abort?.abort();
    const aborted = new AbortController();
    this.abort = aborted;
    this.target = { ...target, key: logKey(target.step, target.attempt, target.host) };
    this.loaded = false;
    this.pending = [];
    this.length = 0;
    this.shown = 0;
    replace(this.pre);
    replace(this.note, 'Loading…');
    const query = new URLSearchParams({ attempt: String(target.attempt) });
    if (target.host) query.set('host', target.host);
    let text = '';
    try {
      const res = await request(`v1/runs/${seg(target.runId)}/steps/${seg(target.step)}/logs?${query}`, {
        signal: aborted.signal,
      });
      text = await res.text();
    } catch (err) {
      if (aborted.signal.aborted) return;
      // An attempt that has not started has no log yet: its events will fill it.
      if (!(err instanceof ApiError && err.status === 404)) {
        replace(this.note, `Could not read the log: ${err.message}`);
        return;
      }
    }
    if (aborted.signal.aborted) return;
    this.loaded = true;
    this.append(text);
    for (const { offset, text: chunk } of this.pending) this.chunk(offset, chunk);
    this.pending = [];
    this.describe();
  }

  /** Called for every `step.log` event of the run, with its offset in its log. */
  onLog(key, offset, text) {
    if (!this.target || key !== this.target.key) return;
    if (!this.loaded) this.pending.push({ offset, text });
    else {
      this.chunk(offset, text);
      this.describe();
    }
  }

  /** Marks the log as complete or still following. */
  setLive(live) {
    this.live = live;
    this.describe();
  }

  chunk(offset, text) {
    const end = offset + text.length;
    if (end <= this.length) return; // already in the fetched text
    this.append(text.slice(Math.max(0, this.length - offset)));
  }

  append(text) {
    if (!text) return;
    const follow = this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < 40;
    this.pre.append(document.createTextNode(text));
    this.length += text.length;
    this.shown += text.length;
    while (this.shown > MAX_SHOWN && this.pre.firstChild) {
      this.shown -= this.pre.firstChild.textContent.length;
      this.pre.firstChild.remove();
      this.trimmed = true;
    }
    if (follow) this.pre.scrollTop = this.pre.scrollHeight;
  }

  describe() {
    if (!this.loaded) return;
    const parts = [];
    if (this.length === 0) parts.push('No output yet.');
    if (this.trimmed) parts.push('Earlier output is not shown (over 2 MiB).');
    parts.push(this.live ? 'Following live.' : 'Complete.');
    replace(this.note, parts.join(' '));
  }

  close() {
    this.abort?.abort();
    this.target = undefined;
  }
}

/**
 * The run page: its header (status, trigger, duration, Cancel and Retry), the DAG updated live
 * from the event stream, and the selected step's details and log. Events are applied to a model
 * as they arrive; the nodes they touched are redrawn once per animation frame.
 */
import { ApiError, json, seg } from './api.js';
import { durationOf, formatTime, h, replace, setText } from './dom.js';
import { GraphView, instancesOf, isFanOut } from './graph.js';
import { LogView, logKey } from './logs.js';
import { followRun } from './sse.js';
import { canRun, FINAL, SYMBOL } from './status.js';

const RUN_FINAL = new Set(['succeeded', 'failed', 'cancelled']);

function setStatus(step, status) {
  // Replayed events may be older than the document read first: a final status stays.
  if (FINAL.has(step.status) && !FINAL.has(status)) return false;
  step.status = status;
  return true;
}

/** One run's page. */
export class RunView {
  /** `role`: the token's role, or undefined when the API did not say (buttons then stay). */
  constructor(root, runId, { role, navigate }) {
    this.root = root;
    this.runId = runId;
    this.role = role;
    this.navigate = navigate;
    this.abort = new AbortController();
    this.steps = new Map();
    this.expanded = new Set();
    this.dirty = new Set();
    this.logSeen = new Map();
    this.logs = new LogView();
    this.selection = undefined;
  }

  /** Reads the run, draws it and follows its events. */
  async start(params) {
    replace(this.root, h('p', { class: 'muted' }, 'Loading the run…'));
    let run;
    try {
      run = await json(`v1/runs/${seg(this.runId)}`, { signal: this.abort.signal });
    } catch (err) {
      if (this.abort.signal.aborted) return;
      replace(this.root, h('p', { class: 'error' }, `Could not read run ${this.runId}: ${err.message}`));
      return;
    }
    if (this.abort.signal.aborted) return; // left for another page meanwhile
    performance.mark('conveyor:run-read');
    this.run = run;
    for (const [id, step] of Object.entries(run.steps)) this.steps.set(id, step);
    this.build();
    this.graph.draw(this.steps, this.expanded);
    this.graph.zoom('fit');
    // Two frames: the first lays the SVG out, the second runs after it was painted.
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        performance.mark('conveyor:graph-drawn', { detail: { steps: this.steps.size } });
        document.documentElement.dataset.graphDrawn = String(Math.round(performance.now()));
      }),
    );
    this.refreshHead();
    this.route(params);
    this.timer = setInterval(() => this.tick(), 1000);
    // A finished run's document is its final state: replaying its stream (every log line of
    // every step) would only repeat it.
    if (RUN_FINAL.has(run.status)) return this.connection('ended');
    this.following = true;
    followRun(this.runId, {
      signal: this.abort.signal,
      onEvent: (event) => this.apply(event),
      onState: (state, detail) => this.connection(state, detail),
    });
  }

  /** Applies the step, attempt and host named in the address. */
  route(params) {
    const step = params.get('step');
    if (!step || !this.steps.has(step)) return;
    const attempt = params.get('attempt') ? Number(params.get('attempt')) : undefined;
    this.select(step, { attempt, host: params.get('host') ?? undefined, fromRoute: true });
  }

  destroy() {
    this.abort.abort();
    this.logs.close();
    clearInterval(this.timer);
    cancelAnimationFrame(this.frame);
  }

  build() {
    this.head = {
      title: h('h1', {}),
      status: h('span', { class: 'badge' }),
      meta: h('p', { class: 'muted small meta' }),
      state: h('span', { class: 'muted small conn' }),
      flash: h('p', { class: 'flash', role: 'status' }),
      cancel: h('button', { type: 'button', class: 'danger', onclick: () => this.cancel() }, 'Cancel run'),
      retry: h('button', { type: 'button', onclick: () => this.retry() }, 'Retry run'),
    };
    const graphBox = h('div', { class: 'graph-scroll', id: 'graph' });
    this.graph = new GraphView(graphBox, {
      onSelect: (id) => this.select(id, {}),
      onToggle: (id) => {
        if (this.expanded.has(id)) this.expanded.delete(id);
        else this.expanded.add(id);
        this.graph.draw(this.steps, this.expanded);
      },
    });
    this.details = h(
      'aside',
      { class: 'details', id: 'details' },
      h('p', { class: 'muted' }, 'Select a step to see its log.'),
    );
    const tools = h(
      'div',
      { class: 'graph-tools' },
      h(
        'button',
        {
          type: 'button',
          class: 'ghost',
          'aria-label': 'Zoom out',
          onclick: () => this.graph.zoom(1 / 1.25),
        },
        '−',
      ),
      h(
        'button',
        { type: 'button', class: 'ghost', 'aria-label': 'Zoom in', onclick: () => this.graph.zoom(1.25) },
        '+',
      ),
      h('button', { type: 'button', class: 'ghost', onclick: () => this.graph.zoom('fit') }, 'Fit'),
      h('span', { class: 'muted small' }, `${this.steps.size} step${this.steps.size === 1 ? '' : 's'}`),
    );
    replace(
      this.root,
      h(
        'section',
        { class: 'run-head' },
        h(
          'div',
          { class: 'row' },
          this.head.title,
          this.head.status,
          h('span', { class: 'spacer' }),
          this.head.cancel,
          this.head.retry,
        ),
        this.head.meta,
        h('div', { class: 'row' }, this.head.state, this.head.flash),
      ),
      h('div', { class: 'run-body' }, h('section', { class: 'graph-pane' }, tools, graphBox), this.details),
    );
  }

  refreshHead() {
    const run = this.run;
    const version = run.workflow.version === null ? 'ad hoc' : `v${run.workflow.version}`;
    setText(this.head.title, `${run.workflow.name} · ${version}`);
    setText(this.head.status, `${SYMBOL[run.status] ?? ''} ${run.status}`);
    this.head.status.className = `badge status-${run.status}`;
    const trigger = run.trigger?.type ?? 'unknown';
    const started = run.startedAt ?? run.createdAt;
    setText(
      this.head.meta,
      `${run.id} · trigger ${trigger} · created ${formatTime(run.createdAt)} · ${durationOf(started, RUN_FINAL.has(run.status) ? run.finishedAt : undefined)}`,
    );
    const allowed = this.role === undefined || canRun(this.role);
    this.head.cancel.hidden = !allowed || RUN_FINAL.has(run.status) || run.cancelRequested;
    this.head.retry.hidden = !allowed || !RUN_FINAL.has(run.status);
  }

  connection(state, detail) {
    const text = {
      live: 'Live',
      reconnecting: 'Reconnecting…',
      ended: 'Run finished',
      error: `Stream stopped: ${detail?.message ?? ''}`,
    }[state];
    setText(this.head.state, text ?? '');
    const ended = state === 'ended' || state === 'error';
    // The stream's last events can race the document's last writes: read it once more.
    if (ended && !this.streamEnded && this.following) this.refetch();
    this.streamEnded = ended;
    this.updateLive();
  }

  /** Applies one event to the model and marks what it touched. */
  apply({ type, data }) {
    const run = this.run;
    if (type.startsWith('run.')) {
      if (type === 'run.started') {
        if (!RUN_FINAL.has(run.status)) run.status = 'running';
        run.startedAt ??= data.at;
      } else if (RUN_FINAL.has(type.slice(4))) {
        run.status = type.slice(4);
        run.finishedAt ??= data.at;
      }
      this.headDirty = true;
      return this.schedule();
    }
    const id = data.step;
    const step = this.steps.get(id);
    if (!step) return;
    if (type === 'step.log') return this.logged(data);
    switch (type) {
      case 'step.queued':
        setStatus(step, 'queued');
        break;
      case 'step.waiting':
        step.waiting = data.reason;
        break;
      case 'step.started':
        if (setStatus(step, 'running')) {
          step.attempts = Math.max(step.attempts ?? 0, data.attempt ?? 1);
          step.startedAt = data.at;
          step.percent = undefined;
          delete step.waiting;
          if (data.executor) step.executor = data.executor;
          if (isFanOut(step)) this.refetchSoon();
        }
        break;
      case 'step.progress':
        if (data.host && data.status) {
          step.instances ??= {};
          step.instances[data.host] ??= { status: 'pending' };
          const inst = step.instances[data.host];
          if (!(FINAL.has(inst.status) && !FINAL.has(data.status))) inst.status = data.status;
          if (data.exitCode !== undefined) inst.exitCode = data.exitCode;
          if (data.error) inst.error = data.error;
          if (data.nextAttempt) inst.attempts = Math.max(inst.attempts ?? 0, data.nextAttempt);
          if (data.status === 'running') inst.attempts = Math.max(inst.attempts ?? 0, 1);
          if (!step.hosts?.includes(data.host)) step.hosts = [...(step.hosts ?? []), data.host];
        } else if (typeof data.percent === 'number') {
          step.percent = data.percent;
          step.progressMessage = data.message;
        }
        break;
      case 'step.succeeded':
        if (setStatus(step, 'succeeded')) {
          step.finishedAt = data.at;
          if (data.exitCode !== undefined) step.exitCode = data.exitCode;
        }
        break;
      case 'step.failed':
        if (setStatus(step, data.cancelled ? 'cancelled' : 'failed')) {
          step.finishedAt = data.at;
          step.error = data.error;
          if (data.exitCode !== undefined) step.exitCode = data.exitCode;
        }
        break;
      case 'step.skipped':
        if (setStatus(step, 'skipped')) step.error = { code: 'skipped', message: data.reason ?? '' };
        break;
      case 'step.retrying':
        if (setStatus(step, 'queued')) step.error = data.error;
        break;
      default:
        return;
    }
    this.dirty.add(id);
    this.schedule();
  }

  logged(data) {
    const key = logKey(data.step, data.attempt ?? 1, data.host);
    const offset = this.logSeen.get(key) ?? 0;
    const text = String(data.text ?? '');
    this.logSeen.set(key, offset + text.length);
    this.logs.onLog(key, offset, text);
  }

  schedule() {
    this.frame ??= requestAnimationFrame(() => this.flush());
  }

  /** Redraws what changed since the last frame. */
  flush() {
    this.frame = undefined;
    let relayout = false;
    for (const id of this.dirty) if (!this.graph.update(id, this.steps.get(id))) relayout = true;
    if (relayout) this.graph.draw(this.steps, this.expanded);
    if (this.selection && (this.dirty.has(this.selection.step) || this.headDirty)) this.renderDetails();
    if (this.headDirty) this.refreshHead();
    this.dirty.clear();
    this.headDirty = false;
  }

  /** Once a second: running durations (nodes only; the details change on events). */
  tick() {
    if (RUN_FINAL.has(this.run.status)) return;
    this.refreshHead();
    for (const [id, step] of this.steps) if (step.status === 'running') this.graph.update(id, step);
    const selected = this.selection && this.steps.get(this.selection.step);
    if (selected?.status === 'running' && this.durationEl)
      setText(this.durationEl, durationOf(selected.startedAt));
  }

  refetchSoon() {
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => this.refetch(), 800);
  }

  /** Reads the run document again: fan-out hosts, attempts and outputs the events do not carry. */
  async refetch() {
    let run;
    try {
      run = await json(`v1/runs/${seg(this.runId)}`, { signal: this.abort.signal });
    } catch {
      return;
    }
    for (const [id, fresh] of Object.entries(run.steps)) {
      const step = this.steps.get(id);
      if (!step || (FINAL.has(step.status) && !FINAL.has(fresh.status))) continue;
      const percent = step.percent;
      Object.assign(step, fresh, { percent });
      this.dirty.add(id);
    }
    if (!(RUN_FINAL.has(this.run.status) && !RUN_FINAL.has(run.status)))
      Object.assign(this.run, { ...run, steps: this.run.steps });
    this.headDirty = true;
    this.schedule();
  }

  /** Selects a step (and an attempt and host) and opens its log. */
  select(id, { attempt, host, fromRoute = false }) {
    const step = this.steps.get(id);
    if (!step) return;
    const hosts = instancesOf(step).map(([name]) => name);
    const chosenHost = isFanOut(step) ? (host && hosts.includes(host) ? host : hosts[0]) : undefined;
    this.selection = { step: id, attempt, host: chosenHost };
    this.graph.select(id);
    if (!fromRoute) {
      const query = new URLSearchParams({ step: id });
      if (attempt) query.set('attempt', String(attempt));
      if (chosenHost) query.set('host', chosenHost);
      history.replaceState(null, '', `#/runs/${encodeURIComponent(this.runId)}?${query}`);
    }
    this.renderDetails(true);
  }

  latestAttempt() {
    const step = this.steps.get(this.selection.step);
    const source = this.selection.host ? step.instances?.[this.selection.host] : step;
    return Math.max(source?.attempts ?? 0, 1);
  }

  renderDetails(reopen = false) {
    this.durationEl = undefined;
    const { step: id, host } = this.selection;
    const step = this.steps.get(id);
    const attempt = this.selection.attempt ?? this.latestAttempt();
    if (reopen || this.openAttempt !== attempt || this.openHost !== host) {
      this.openAttempt = attempt;
      this.openHost = host;
      if (host || !isFanOut(step)) this.logs.open({ runId: this.runId, step: id, attempt, host });
      else this.logs.close();
    }
    const rows = [
      ['id', id],
      ['status', `${SYMBOL[step.status] ?? ''} ${step.status}`],
      ['executor', step.executor ?? ''],
      ['attempts', String(step.attempts ?? 0)],
      ['started', formatTime(step.startedAt)],
      [
        'duration',
        step.startedAt
          ? durationOf(step.startedAt, step.status === 'running' ? undefined : step.finishedAt)
          : '',
      ],
      ['exit code', step.exitCode === undefined || step.exitCode === null ? '' : String(step.exitCode)],
      ['error', step.error ? `${step.error.code}: ${step.error.message}` : ''],
      ['waiting', step.waiting ?? ''],
      ['progress', typeof step.percent === 'number' ? `${step.percent}% ${step.progressMessage ?? ''}` : ''],
    ].filter(([, value]) => value);
    const attempts = Math.max(this.latestAttempt(), attempt);
    const attemptSelect = h(
      'select',
      {
        id: 'attempt',
        'aria-label': 'Attempt',
        onchange: (event) => {
          const value = event.target.value;
          this.select(id, { attempt: value === 'latest' ? undefined : Number(value), host });
        },
      },
      h('option', { value: 'latest', selected: this.selection.attempt === undefined }, 'latest attempt'),
      Array.from({ length: attempts }, (_, i) =>
        h('option', { value: i + 1, selected: this.selection.attempt === i + 1 }, `attempt ${i + 1}`),
      ),
    );
    const instances = instancesOf(step);
    const hostList = instances.length
      ? h(
          'ul',
          { class: 'instances' },
          instances.map(([name, inst]) =>
            h(
              'li',
              {},
              h(
                'button',
                {
                  type: 'button',
                  class: `instance-btn status-${inst.status}${name === host ? ' current' : ''}`,
                  'aria-pressed': name === host ? 'true' : 'false',
                  onclick: () => this.select(id, { attempt: undefined, host: name }),
                },
                `${SYMBOL[inst.status] ?? ''} ${name}`,
                h('span', { class: 'muted small' }, ` ${inst.status}`),
              ),
            ),
          ),
        )
      : undefined;
    replace(
      this.details,
      h('h2', { class: 'step-title' }, step.name ?? id),
      h(
        'dl',
        { class: 'facts' },
        rows.map(([k, v]) => {
          const dd = h('dd', {}, v);
          if (k === 'duration') this.durationEl = dd;
          return [h('dt', {}, k), dd];
        }),
      ),
      hostList ? [h('h3', {}, 'Hosts'), hostList] : undefined,
      h(
        'div',
        { class: 'log-tools' },
        h('span', {}, host ? `Log of ${host}` : 'Log'),
        h('span', { class: 'spacer' }),
        attemptSelect,
      ),
      isFanOut(step) && !host ? h('p', { class: 'muted' }, 'No host has started yet.') : this.logs.el,
    );
    this.updateLive();
  }

  updateLive() {
    if (!this.selection) return;
    const step = this.steps.get(this.selection.step);
    const source = this.selection.host ? step.instances?.[this.selection.host] : step;
    const latest = (this.selection.attempt ?? this.latestAttempt()) === this.latestAttempt();
    this.logs.setLive(!this.streamEnded && latest && !FINAL.has(source?.status ?? 'pending'));
  }

  async cancel() {
    await this.act('cancel', async (run) => {
      this.run.cancelRequested = run.cancelRequested;
      this.refreshHead();
      return 'Cancel requested.';
    });
  }

  async retry() {
    await this.act('retry', async (run) => {
      this.navigate(`#/runs/${encodeURIComponent(run.id)}`);
      return `Started run ${run.id}.`;
    });
  }

  async act(action, done) {
    const flash = this.head.flash;
    flash.className = 'flash';
    setText(flash, action === 'cancel' ? 'Cancelling…' : 'Starting a new run…');
    try {
      const run = await json(`v1/runs/${seg(this.runId)}/${action}`, { method: 'POST' });
      setText(flash, await done(run));
    } catch (err) {
      flash.className = 'flash error';
      const why =
        err instanceof ApiError && err.status === 403
          ? `Not allowed: this token cannot ${action} runs (${err.message}).`
          : `Could not ${action}: ${err.message}`;
      setText(flash, why);
    }
  }
}

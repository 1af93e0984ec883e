/**
 * The list of recent runs (`GET /v1/runs`, newest first), filtered by workflow and status, paged
 * with the API's cursor. The first page refreshes itself every few seconds while shown.
 */
import { json } from './api.js';
import { durationOf, formatTime, h, replace } from './dom.js';
import { RUN_STATUSES, SYMBOL } from './status.js';

const PAGE = 50;
const REFRESH_MS = 5000;

function triggerText(trigger) {
  if (!trigger?.type) return '';
  if (trigger.type === 'retry' && trigger.runId) return `retry of ${trigger.runId}`;
  if (trigger.type === 'event' && trigger.event) return `event ${trigger.event}`;
  if (trigger.type === 'push' && trigger.ref) return `push ${trigger.ref}`;
  return String(trigger.type);
}

/** The runs page. */
export class RunsList {
  constructor(root, params, { navigate }) {
    this.root = root;
    this.navigate = navigate;
    this.workflow = params.get('workflow') ?? '';
    this.status = params.get('status') ?? '';
    this.abort = new AbortController();
  }

  async start() {
    const workflow = h('input', {
      id: 'filter-workflow',
      name: 'workflow',
      type: 'search',
      placeholder: 'any workflow',
      value: this.workflow,
      autocomplete: 'off',
    });
    const status = h(
      'select',
      { id: 'filter-status', name: 'status' },
      h('option', { value: '' }, 'any status'),
      RUN_STATUSES.map((st) => h('option', { value: st, selected: st === this.status }, st)),
    );
    const form = h(
      'form',
      { class: 'filters', role: 'search' },
      h('label', {}, 'Workflow ', workflow),
      h('label', {}, 'Status ', status),
      h('button', { type: 'submit' }, 'Filter'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const query = new URLSearchParams();
      if (workflow.value.trim()) query.set('workflow', workflow.value.trim());
      if (status.value) query.set('status', status.value);
      this.navigate(`#/?${query}`);
    });
    status.addEventListener('change', () => form.requestSubmit());
    this.body = h('tbody', {});
    this.more = h(
      'button',
      { type: 'button', class: 'ghost', hidden: true, onclick: () => this.load(true) },
      'More',
    );
    this.message = h('p', { class: 'muted', role: 'status' });
    replace(
      this.root,
      h('h1', {}, 'Runs'),
      form,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'runs' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Status', 'Workflow', 'Run', 'Duration', 'Trigger', 'Created'].map((t) =>
                h('th', { scope: 'col' }, t),
              ),
            ),
          ),
          this.body,
        ),
      ),
      this.message,
      this.more,
    );
    await this.load(false);
    this.timer = setInterval(() => {
      if (!this.paged && document.visibilityState === 'visible') this.load(false);
    }, REFRESH_MS);
  }

  async load(next) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (this.workflow) query.set('workflow', this.workflow);
    if (this.status) query.set('status', this.status);
    if (next && this.cursor) query.set('cursor', this.cursor);
    let page;
    try {
      page = await json(`v1/runs?${query}`, { signal: this.abort.signal });
    } catch (err) {
      if (!this.abort.signal.aborted) replace(this.message, `Could not list runs: ${err.message}`);
      return;
    }
    if (next) this.paged = true;
    else this.body.replaceChildren();
    for (const run of page.runs) this.body.append(this.row(run));
    this.cursor = page.cursor;
    this.more.hidden = !page.cursor;
    replace(this.message, this.body.children.length ? '' : 'No runs match.');
  }

  row(run) {
    const link = h('a', { href: `#/runs/${encodeURIComponent(run.id)}` }, run.id);
    const version = run.workflow.version === null ? 'ad hoc' : `v${run.workflow.version}`;
    const finished = ['succeeded', 'failed', 'cancelled'].includes(run.status);
    // Status first: on a phone's width it is what shows before the table scrolls.
    return h(
      'tr',
      {},
      h(
        'td',
        {},
        h('span', { class: `badge status-${run.status}` }, `${SYMBOL[run.status] ?? ''} ${run.status}`),
      ),
      h('td', {}, `${run.workflow.name} `, h('span', { class: 'muted small' }, version)),
      h('td', { class: 'mono' }, link),
      h('td', {}, run.startedAt ? durationOf(run.startedAt, finished ? run.finishedAt : undefined) : ''),
      h('td', {}, triggerText(run.trigger)),
      h('td', {}, formatTime(run.createdAt)),
    );
  }

  destroy() {
    this.abort.abort();
    clearInterval(this.timer);
  }
}

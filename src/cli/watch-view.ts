/**
 * The state of a watched run, fed by its run document and then its events, and drawn as text:
 * one line per step (status, executor, host count, duration, a progress bar while it runs), the
 * last log lines of running steps, and the summary at the end.
 */
import type { Run, RunEvent } from '../client/index.ts';
import { formatDuration, type Output, sanitize, statusStyle } from './output.ts';

const FINAL = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);
const ICONS: Record<string, string> = {
  succeeded: '✓',
  failed: '✗',
  skipped: '-',
  cancelled: '⊘',
  running: '●',
  queued: '○',
  pending: '·',
};
/** Log lines kept per running step. */
const LOG_LINES = 3;

/** What the view knows of one step. */
export interface StepView {
  id: string;
  status: string;
  executor: string;
  hosts?: number;
  instances: Map<string, string>;
  attempt: number;
  startedAt?: number;
  finishedAt?: number;
  percent?: number;
  message?: string;
  error?: string;
  logs: string[];
}

/** A run as the watch view draws it. */
export class RunView {
  readonly id: string;
  status: string;
  workflow: string;
  createdAt: number;
  finishedAt?: number;
  reconnecting = false;
  readonly steps = new Map<string, StepView>();

  constructor(run: Run) {
    this.id = run.id;
    this.status = run.status;
    this.workflow = `${run.workflow.name}${run.workflow.version === null ? '' : ` v${run.workflow.version}`}`;
    this.createdAt = Date.parse(run.createdAt);
    this.finishedAt = run.finishedAt ? Date.parse(run.finishedAt) : undefined;
    for (const [id, step] of Object.entries(run.steps)) {
      const s = step as Run['steps'][string] & { instances?: Record<string, { status: string }> };
      this.steps.set(id, {
        id,
        status: s.status,
        executor: s.executor ?? 'local',
        hosts: s.hosts?.length,
        instances: new Map(Object.entries(s.instances ?? {}).map(([h, i]) => [h, i.status])),
        attempt: s.attempts ?? 0,
        startedAt: s.startedAt ? Date.parse(s.startedAt) : undefined,
        finishedAt: s.finishedAt ? Date.parse(s.finishedAt) : undefined,
        error: s.error?.message,
        logs: [],
      });
    }
  }

  /** True once the run ended. */
  get done(): boolean {
    return FINAL.has(this.status);
  }

  /** Applies one event; returns whether anything visible changed. */
  apply(event: RunEvent): boolean {
    const d = event.data;
    const at = Date.parse(d.at);
    if (event.event.startsWith('run.')) {
      const status = event.event.slice(4);
      this.status = status === 'started' ? 'running' : status;
      if (this.done) this.finishedAt = at;
      return true;
    }
    const step = d.step === undefined ? undefined : this.steps.get(d.step);
    if (!step) return false;
    switch (event.event) {
      case 'step.queued':
        step.status = 'queued';
        break;
      case 'step.started':
        step.status = 'running';
        step.attempt = Number(d.attempt ?? step.attempt + 1);
        if (typeof d.executor === 'string') step.executor = d.executor;
        step.startedAt = at;
        step.finishedAt = undefined;
        step.percent = undefined;
        step.message = undefined;
        break;
      case 'step.progress':
        if (typeof d.host === 'string' && typeof d.status === 'string') step.instances.set(d.host, d.status);
        else if (typeof d.percent === 'number') {
          step.percent = d.percent;
          step.message = typeof d.message === 'string' ? sanitize(d.message) : undefined;
        }
        break;
      case 'step.log':
        addLog(
          step,
          typeof d.text === 'string' ? d.text : '',
          typeof d.host === 'string' ? d.host : undefined,
        );
        return step.status === 'running';
      case 'step.retrying':
        step.status = 'queued';
        step.message = `retrying: attempt ${String(d.nextAttempt ?? step.attempt + 1)}`;
        break;
      case 'step.succeeded':
        step.status = 'succeeded';
        step.finishedAt = at;
        if (typeof d.hosts === 'number') step.hosts = d.hosts;
        break;
      case 'step.failed': {
        step.status = d.cancelled ? 'cancelled' : 'failed';
        step.finishedAt = at;
        const error = d.error as { message?: string } | undefined;
        step.error = error?.message ? sanitize(error.message) : undefined;
        break;
      }
      case 'step.skipped':
        step.status = 'skipped';
        step.finishedAt = at;
        break;
      default:
        return false;
    }
    return true;
  }

  /** Counts of steps by status, in a fixed order. */
  counts(): Array<[string, number]> {
    const counts = new Map<string, number>();
    for (const s of this.steps.values()) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
    return ['succeeded', 'failed', 'cancelled', 'skipped', 'running', 'queued', 'pending']
      .filter((s) => counts.has(s))
      .map((s) => [s, counts.get(s)!]);
  }

  /** The live screen: header, step lines and log lines, at most `rows` lines of `columns`. */
  render(out: Output, now: number, rows: number, columns: number): string[] {
    const lines: string[] = [];
    const took = formatDuration((this.finishedAt ?? now) - this.createdAt);
    lines.push(
      `${out.paint('bold', `run ${this.id}`)}  ${this.workflow}  ${out.paint(statusStyle(this.status), this.status)}  ${took}${this.reconnecting ? out.paint('yellow', '  (reconnecting to the API…)') : ''}`,
    );
    const steps = [...this.steps.values()];
    const width = Math.min(32, Math.max(4, ...steps.map((s) => s.id.length)));
    // A big run does not fit: running and failed steps first, the rest counted.
    let shown = steps;
    const budget = Math.max(3, rows - 3);
    if (steps.length > budget) {
      shown = steps.filter((s) => s.status === 'running' || s.status === 'failed').slice(0, budget - 1);
    }
    let logBudget = Math.max(0, Math.min(10, rows - 2 - shown.length));
    for (const step of shown) {
      lines.push(this.stepLine(out, step, width, now));
      if (step.status === 'running' && logBudget > 0) {
        for (const log of step.logs.slice(-Math.min(LOG_LINES, logBudget))) {
          lines.push(out.paint('dim', `    │ ${log}`));
          logBudget--;
        }
      }
    }
    if (shown.length < steps.length) {
      const rest = this.counts()
        .map(([s, n]) => `${n} ${s}`)
        .join(', ');
      lines.push(out.paint('dim', `  … ${steps.length - shown.length} more steps (all: ${rest})`));
    }
    return lines.map((l) => truncate(l, columns));
  }

  private stepLine(out: Output, step: StepView, width: number, now: number): string {
    const icon = out.paint(statusStyle(step.status), ICONS[step.status] ?? '?');
    const status = out.paint(statusStyle(step.status), step.status.padEnd(9));
    const hosts = step.hosts === undefined ? '' : `${step.hosts} host${step.hosts === 1 ? '' : 's'}`;
    const duration =
      step.startedAt === undefined ? '' : formatDuration((step.finishedAt ?? now) - step.startedAt);
    let tail = '';
    if (step.status === 'running') tail = `  ${this.bar(out, step, now)}`;
    else if (step.status === 'failed' && step.error) tail = `  ${out.paint('red', step.error)}`;
    else if (step.message && step.status === 'queued') tail = `  ${out.paint('dim', step.message)}`;
    const name = step.id.length > width ? `${step.id.slice(0, width - 1)}…` : step.id.padEnd(width);
    return `${icon} ${name}  ${status}  ${step.executor.padEnd(5)}  ${hosts.padEnd(8)}  ${duration.padStart(6)}${tail}`;
  }

  /** A progress bar: the step's own percent, or hosts finished, or a moving block when unknown. */
  private bar(out: Output, step: StepView, now: number): string {
    const size = 20;
    let fraction: number | undefined;
    if (step.percent !== undefined) fraction = step.percent / 100;
    else if (step.hosts)
      fraction = [...step.instances.values()].filter((s) => FINAL.has(s)).length / step.hosts;
    if (fraction === undefined) {
      const at = Math.floor(now / 150) % (size - 3);
      return `[${' '.repeat(at)}${out.paint('blue', '===')}${' '.repeat(size - 3 - at)}]`;
    }
    const filled = Math.round(Math.min(1, Math.max(0, fraction)) * size);
    const label = `${Math.round(fraction * 100)}%`;
    const message = step.message ? ` ${step.message}` : '';
    return `[${out.paint('blue', '#'.repeat(filled))}${'-'.repeat(size - filled)}] ${label}${message}`;
  }

  /** The end: one line for the run, one per failed step with where to read its log. */
  summary(out: Output): string[] {
    const took = this.finishedAt ? ` in ${formatDuration(this.finishedAt - this.createdAt)}` : '';
    const counts = this.counts()
      .map(([s, n]) => `${n} ${s}`)
      .join(', ');
    const icon = ICONS[this.status] ?? '?';
    const lines = [
      out.paint(statusStyle(this.status), `${icon} run ${this.id} ${this.status}${took}: ${counts}`),
    ];
    for (const step of this.steps.values()) {
      if (step.status !== 'failed') continue;
      lines.push(`  ${step.id}: ${step.error ?? 'failed'}  (conveyor logs ${this.id} ${step.id})`);
    }
    return lines;
  }
}

function addLog(step: StepView, text: string, host: string | undefined): void {
  const prefix = host ? `${host}: ` : '';
  for (const line of sanitize(text).split('\n')) {
    if (line.trim() === '') continue;
    step.logs.push(prefix + line);
  }
  if (step.logs.length > LOG_LINES) step.logs.splice(0, step.logs.length - LOG_LINES);
}

/** Cuts a line to `columns` visible characters (our colours are kept balanced by a reset). */
function truncate(line: string, columns: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= columns - 1) return line.includes('\x1b') ? `${out}\x1b[0m` : out;
    out += line[i];
    visible++;
  }
  return out;
}

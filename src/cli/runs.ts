/** Runs: `watch`, `runs`, `show`, `logs`, `cancel`, `retry`. */
import type { Run } from '../client/index.ts';
import type { Command } from './command.ts';
import { intFlag, stringFlag } from './command.ts';
import { EXIT, usageError } from './errors.ts';
import { elapsed, formatDuration, type Output, sanitize, statusStyle as statusStyleOf } from './output.ts';
import { WATCH_FLAGS } from './run.ts';
import { watchRun } from './watch.ts';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

function took(run: { createdAt: string; finishedAt?: string | null }): string {
  const ms = elapsed(run.createdAt, run.finishedAt);
  return ms === undefined ? '' : formatDuration(ms);
}

function trigger(run: Run): string {
  const t = run.trigger as { type?: string; runId?: string; event?: string } | undefined;
  return t?.type ?? '';
}

/** `conveyor watch <run>`. */
export const watch: Command = {
  name: 'watch',
  summary: "follow a run to its end (exit status: the run's)",
  usage: 'watch <run>',
  args: [1, 1],
  flags: { ...WATCH_FLAGS },
  run: ({ out, client, positionals, values }) =>
    watchRun(out, client(), positionals[0]!, { cancelOnInterrupt: !!values['cancel-on-interrupt'] }),
};

/** `conveyor runs`. */
export const runs: Command = {
  name: 'runs',
  summary: 'list recent runs, newest first',
  usage: 'runs [--workflow <name>] [--status <status>] [--limit <n>]',
  flags: {
    workflow: { type: 'string', value: 'name', help: 'only runs of this workflow' },
    status: { type: 'string', value: 'status', help: `only runs in this status (${STATUSES.join(', ')})` },
    limit: { type: 'string', value: 'n', help: 'at most n runs (default 20, at most 200)' },
  },
  async run({ out, client, values }) {
    const status = stringFlag(values, 'status');
    if (status !== undefined && !STATUSES.includes(status)) {
      throw usageError(`--status: expected one of ${STATUSES.join(', ')}, got "${status}"`);
    }
    const limit = intFlag(values, 'limit', 200);
    const page = await client().runs.list({
      workflow: stringFlag(values, 'workflow'),
      status: status as never,
      limit: limit?.toString(),
    });
    out.result(page, () => {
      if (page.runs.length === 0) return out.note('no runs');
      out.table(
        ['run', 'workflow', 'status', 'trigger', 'created', 'duration'],
        page.runs.map((r) => [
          r.id,
          `${r.workflow.name}${r.workflow.version === null ? '' : ` v${r.workflow.version}`}`,
          out.paint(statusStyleOf(r.status), r.status),
          trigger(r),
          r.createdAt.replace('T', ' ').slice(0, 19),
          took(r),
        ]),
      );
    });
    return EXIT.ok;
  },
};

/** Prints a run document as text. */
function printRun(out: Output, run: Run): void {
  out.line(
    `${out.paint('bold', run.id)}  ${run.workflow.name}${run.workflow.version === null ? ' (ad hoc)' : ` v${run.workflow.version}`}  ${out.paint(statusStyleOf(run.status), run.status)}  ${took(run)}`,
  );
  out.line(
    `trigger: ${trigger(run)}   created: ${run.createdAt}${run.finishedAt ? `   finished: ${run.finishedAt}` : ''}`,
  );
  if (Object.keys(run.inputs ?? {}).length) out.line(`inputs: ${JSON.stringify(run.inputs)}`);
  out.line();
  out.table(
    ['step', 'status', 'executor', 'hosts', 'attempts', 'duration', 'detail'],
    Object.entries(run.steps).map(([id, s]) => [
      id,
      out.paint(statusStyleOf(s.status), s.status),
      s.executor ?? '',
      s.hosts ? String(s.hosts.length) : '',
      String(s.attempts ?? 0),
      s.startedAt ? formatDuration(elapsed(s.startedAt, s.finishedAt) ?? 0) : '',
      s.error
        ? `${s.error.code}: ${s.error.message}`
        : (s as { waiting?: string }).waiting
          ? (s as { waiting?: string }).waiting!
          : s.exitCode !== undefined && s.exitCode !== null
            ? `exit ${s.exitCode}`
            : '',
    ]),
  );
}

/** `conveyor show <run>`. */
export const show: Command = {
  name: 'show',
  summary: 'a run: status, inputs, and each step',
  usage: 'show <run>',
  args: [1, 1],
  async run({ out, client, positionals }) {
    const run = await client().runs.get(positionals[0]!);
    out.result(run, () => printRun(out, run));
    return EXIT.ok;
  },
};

/** `conveyor logs <run> <step>`. */
export const logs: Command = {
  name: 'logs',
  summary: "a step's log (secrets masked); --follow streams it to the step's end",
  usage: 'logs <run> <step> [--host <name>] [--attempt <n>] [--follow]',
  args: [2, 2],
  flags: {
    host: { type: 'string', value: 'name', help: 'one host of a hosts: step' },
    attempt: { type: 'string', value: 'n', help: 'that attempt (default: the latest)' },
    follow: { type: 'boolean', short: 'f', help: 'stream the log until the step ends' },
  },
  async run({ out, client, positionals, values }) {
    const [id, step] = positionals as [string, string];
    const host = stringFlag(values, 'host');
    const attempt = intFlag(values, 'attempt', 10_000);
    const api = client();
    if (!values.follow) {
      const text = await api.runs.logs(id, step, { host, attempt });
      // Log text goes out as it is to a pipe; a terminal gets it without control sequences.
      if (out.json) out.document({ run: id, step, host, attempt, text });
      else out.write(out.isTTY ? sanitize(text) : text);
      return EXIT.ok;
    }
    const run = await api.runs.get(id);
    if (!(step in run.steps)) throw usageError(`run ${id} has no step "${step}"`);
    const chunks: Array<{ host?: string; attempt?: number; stream?: string; text: string }> = [];
    for await (const event of api.runs.follow(id)) {
      const d = event.data;
      if (d.step !== step) continue;
      if (event.event === 'step.log') {
        if (host !== undefined && d.host !== host) continue;
        if (attempt !== undefined && d.attempt !== attempt) continue;
        const text = String(d.text ?? '');
        if (out.json)
          chunks.push({
            host: d.host as string | undefined,
            attempt: d.attempt as number,
            stream: d.stream as string,
            text,
          });
        else out.write(out.isTTY ? sanitize(text) : text);
      }
      const final = ['step.succeeded', 'step.failed', 'step.skipped'].includes(event.event);
      if (final && (attempt === undefined || d.attempt === undefined || Number(d.attempt) >= attempt)) break;
    }
    out.document({ run: id, step, chunks });
    return EXIT.ok;
  },
};

/** `conveyor cancel <run>`. */
export const cancel: Command = {
  name: 'cancel',
  summary: 'cancel a run (running steps are stopped, the rest skipped)',
  usage: 'cancel <run>',
  args: [1, 1],
  async run({ out, client, positionals }) {
    const run = await client().runs.cancel(positionals[0]!);
    out.result(run, () => out.line(`cancel requested for ${run.id} (${run.status})`));
    return EXIT.ok;
  },
};

/** `conveyor retry <run>`. */
export const retry: Command = {
  name: 'retry',
  summary: 'start a new run with the same version and inputs',
  usage: 'retry <run> [--watch]',
  args: [1, 1],
  flags: { watch: { type: 'boolean', short: 'w', help: 'follow the new run to its end' }, ...WATCH_FLAGS },
  async run({ out, client, positionals, values }) {
    const api = client();
    const run = await api.runs.retry(positionals[0]!);
    if (values.watch)
      return watchRun(out, api, run.id, { cancelOnInterrupt: !!values['cancel-on-interrupt'] });
    out.result(run, () => {
      out.line(run.id);
      out.note(
        `started run ${run.id}, a retry of ${positionals[0]}; follow it with: conveyor watch ${run.id}`,
      );
    });
    return EXIT.ok;
  },
};

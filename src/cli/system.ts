/** `conveyor events publish`, `workers`, `triggers`, and `serve` (the server modes' help). */
import type { Command } from './command.ts';
import { stringFlag } from './command.ts';
import { CliError, EXIT } from './errors.ts';

const publish: Command = {
  name: 'publish',
  summary: 'publish an event on the bus (starts the workflows whose on.event lists it)',
  usage: 'events publish <type> [payload-json]',
  args: [1, 2],
  flags: {
    'idempotency-key': { type: 'string', value: 'key', help: 'the same key within 7 days is one event' },
  },
  async run({ out, client, positionals, values }) {
    const [type, text] = positionals as [string, string | undefined];
    let payload: unknown;
    if (text !== undefined) {
      try {
        payload = JSON.parse(text);
      } catch (err) {
        throw new CliError(`payload: not JSON (${(err as Error).message})`, EXIT.usage);
      }
    }
    const key = stringFlag(values, 'idempotency-key');
    const record = await client().events.publish(type, {
      ...(payload !== undefined && { payload }),
      ...(key && { idempotencyKey: key }),
    });
    out.result(record, () => {
      out.line(
        `event ${record.id} published; runs started: ${record.runs.map((r) => r.id).join(', ') || 'none'}`,
      );
    });
    return EXIT.ok;
  },
};

/** `conveyor events`. */
export const events: Command = {
  name: 'events',
  summary: 'the event bus: publish',
  usage: 'events <publish>',
  subcommands: [publish],
};

/** `conveyor workers`. */
export const workers: Command = {
  name: 'workers',
  summary: 'live workers: executors, tags, slots, last heartbeat',
  usage: 'workers',
  async run({ out, client }) {
    const workers = await client().workers.list();
    out.result({ workers }, () => {
      if (workers.length === 0) return out.note('no live worker');
      out.table(
        ['worker', 'host', 'executors', 'tags', 'slots busy/total', 'version', 'last seen'],
        workers.map((w) => [
          w.id,
          w.host,
          w.executors.join(', '),
          w.tags.join(', ') + (w.tagsOnly ? ' (only)' : ''),
          `${w.slots.busy}/${w.slots.total}`,
          w.version,
          String(w.lastSeen),
        ]),
      );
    });
    return EXIT.ok;
  },
};

/** `conveyor triggers`. */
export const triggers: Command = {
  name: 'triggers',
  summary: 'every trigger of every workflow: push, schedule, event',
  usage: 'triggers',
  async run({ out, client }) {
    const triggers = await client().triggers.list();
    out.result({ triggers }, () => {
      if (triggers.length === 0) return out.note('no triggers');
      out.table(
        ['workflow', 'type', 'detail'],
        triggers.map((t) => {
          const { workflow, version, type, ...rest } = t;
          return [`${workflow} v${version}`, String(type), JSON.stringify(rest)];
        }),
      );
    });
    return EXIT.ok;
  },
};

/** `conveyor serve` is run by bin/conveyor.mjs before the CLI loads; this is its help. */
export const serve: Command = {
  name: 'serve',
  summary: 'run the server: API and worker (standalone), or one of them',
  usage: 'serve [--api-only|--worker-only]',
  description:
    'The same as `npm start` (`conveyor standalone`), `conveyor api` and `conveyor worker`,\nconfigured by the environment and .env (README, "Configuration").',
  offline: true,
  flags: {
    'api-only': { type: 'boolean', help: 'the HTTP API alone (conveyor api)' },
    'worker-only': { type: 'boolean', help: 'a worker alone (conveyor worker)' },
  },
  run() {
    // Reached only with flags bin/conveyor.mjs did not take: both of them, or with --json.
    throw new CliError(
      'serve: --api-only and --worker-only exclude each other, and serve has no --json',
      EXIT.usage,
    );
  },
};

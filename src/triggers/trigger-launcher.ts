/**
 * Starts one run per registered workflow a trigger matches, each under an idempotency key
 * derived from the delivery or event, so a retried delivery or a re-read bus entry finds the
 * runs it already started instead of starting more.
 */
import type { Logger } from 'pino';
import { ConveyorError, ValidationError } from '../errors.ts';
import type { Workflow } from '../flows/index.ts';
import type { RunDocument, TriggerStore, WorkflowStore, WorkflowSummary } from '../store/index.ts';
import type { PushTrigger } from './push.ts';
import { pushMatches } from './push-match.ts';

/** What starts runs: the API's RunLauncher. */
export interface RunStarter {
  launch(request: {
    workflow: Workflow;
    version: number | null;
    trigger: Record<string, unknown>;
    idempotencyKey?: string;
  }): Promise<{ run: RunDocument; created: boolean }>;
}

/** A run a trigger started, as responses and the event log show it. */
export interface StartedRun {
  id: string;
  workflow: { name: string; version: number | null };
  status: RunDocument['status'];
}

/** What a trigger started, and the matching workflows that could not start (and why). */
export interface StartResult {
  runs: StartedRun[];
  refused: Array<{ workflow: string; message: string }>;
}

/** The response to a push delivery, as remembered for its redeliveries. */
export interface PushResult extends StartResult {
  event: 'push';
  deliveryId: string | null;
  repository: string;
  ref: string;
}

/** Matches triggers against registered workflows and starts them. */
export class TriggerLauncher {
  constructor(
    private readonly workflows: WorkflowStore,
    private readonly starter: RunStarter,
    readonly store: TriggerStore,
    private readonly logger: Logger,
  ) {}

  /**
   * Starts every workflow `select` picks, in parallel. `select` sees the latest versions'
   * summaries (their `on`), so a delivery matching nothing costs a few hundred bytes a workflow,
   * not its whole definition; only the versions picked are read in full, to be launched. A
   * workflow that cannot start (an input without a default, an idempotency conflict) is listed
   * in `refused`; Redis errors propagate so the delivery is retried, and the retry's keys find
   * the runs already started.
   */
  async startMatching(
    select: (summary: WorkflowSummary) => boolean,
    trigger: Record<string, unknown>,
    idempotencyKey: string | undefined,
  ): Promise<StartResult> {
    const matching = (await this.workflows.latestSummaries()).filter(select);
    const result: StartResult = { runs: [], refused: [] };
    const outcomes = await Promise.all(
      matching.map(async (summary) => {
        // The version that matched, even if a newer one was registered since.
        const found = await this.workflows.get(summary.name, summary.version);
        if (!found) return {}; // deleted since
        try {
          const { run } = await this.starter.launch({
            workflow: found.workflow,
            version: found.version,
            trigger,
            idempotencyKey,
          });
          return { run };
        } catch (err) {
          if (!(err instanceof ConveyorError)) throw err;
          const issues = err instanceof ValidationError ? err.issues : [];
          const message = [err.message, ...issues.map((i) => `${i.path}: ${i.message}`)].join('; ');
          this.logger.warn({ workflow: found.name, err: message }, 'a triggered workflow could not start');
          return { refused: { workflow: found.name, message } };
        }
      }),
    );
    for (const outcome of outcomes) {
      if ('run' in outcome && outcome.run) {
        const { id, workflow, status } = outcome.run;
        result.runs.push({ id, workflow, status });
      } else if (outcome.refused) result.refused.push(outcome.refused);
    }
    result.runs.sort((a, b) => a.workflow.name.localeCompare(b.workflow.name));
    return result;
  }

  /** Starts the workflows a push matches; a redelivery answers with what the first one started. */
  async push(trigger: PushTrigger): Promise<{ result: PushResult; replayed: boolean }> {
    const scope = trigger.deliveryId ? `delivery:${trigger.provider}:${trigger.deliveryId}` : undefined;
    if (scope) {
      const first = await this.store.replay<PushResult>(scope);
      if (first) return { result: first, replayed: true };
    }
    const started = await this.startMatching(
      (summary) => pushMatches(summary.on?.push, trigger),
      { ...trigger },
      scope,
    );
    const result: PushResult = {
      event: 'push',
      deliveryId: trigger.deliveryId,
      repository: trigger.repository,
      ref: trigger.ref,
      ...started,
    };
    if (scope) await this.store.remember(scope, result);
    this.logger.info(
      {
        provider: trigger.provider,
        repository: trigger.repository,
        ref: trigger.ref,
        runs: result.runs.length,
      },
      'push delivered',
    );
    return { result, replayed: false };
  }
}

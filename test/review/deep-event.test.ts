/**
 * Review of issue 7 (one place where a step's end is decided): a step's emitted events are
 * parsed as JSON (iterative in V8, so 100,000 levels of nesting parse) and then masked by a
 * recursive walk that overflows the stack. That throw escapes the attempt and lands in the
 * catch-all for unforeseen errors, which records `attempts: 0` for a step that ran once, without
 * its exit code, with "Maximum call stack size exceeded" as its only reason; with retries left it
 * announces `nextAttempt: 1` again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestEngine } from '../support/engine.ts';
import { type LocalEngine, startLocalEngine } from '../support/local-engine.ts';

let engine: TestEngine;
let local: LocalEngine;

beforeAll(async () => {
  local = await startLocalEngine(import.meta.url);
  ({ engine } = local);
});
afterAll(async () => {
  await local.close();
});

/** A shell command that appends one event whose payload is nested `depth` arrays deep. */
const deepEvent = (depth: number) =>
  `{ printf '{"type":"deep","payload":'; head -c ${depth} /dev/zero | tr '\\0' '['; ` +
  `head -c ${depth} /dev/zero | tr '\\0' ']'; printf '}\\n'; } >> "$CONVEYOR_EVENTS"`;

describe('an emitted event nested 100,000 levels deep', () => {
  it('is judged like any bad output: the attempt counted, its exit code kept, a clear reason', async () => {
    const run = await engine.submit({
      name: 'deep-event',
      steps: { s: { run: deepEvent(100_000) } },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.steps.s).toMatchObject({ attempts: 1, exitCode: 0 });
    expect(done.steps.s?.error?.message ?? '').not.toContain('call stack');
    const failed = events.find((e) => e.type === 'step.failed' || e.type === 'step.succeeded');
    expect(failed?.data.attempt).toBe(1);
  });

  it('with retries left, announces attempt 2 as the next one', async () => {
    const run = await engine.submit({
      name: 'deep-event-retry',
      steps: { s: { run: deepEvent(100_000), retries: { attempts: 2, delay: 10 } } },
    });
    const { events } = await engine.waitForRun(run.id);
    const retrying = events.filter((e) => e.type === 'step.retrying');
    for (const e of retrying) expect(e.data).toMatchObject({ attempt: 1, nextAttempt: 2 });
  });
});

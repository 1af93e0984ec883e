/**
 * Secrets printed by a real local step in ways that beat chunk- or line-wise masking: split in
 * two with a pause between, and a multi-line key printed line by line (plain and quoted).
 * Checked where text leaves the engine: the stored log, `step.log` events, the run document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/store/index.ts';
import { maskedValues } from '../../src/workers/mask.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';

const TOKEN = 'tok-9f8e7d6c5b4a39281706';
const KEY = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACDx0n1zUoBQc2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY3ODkw',
  'AAAECcaGVsbG8tdGhpcy1pcy1ub3QtYS1yZWFsLWtleS1qdXN0LWEtdGVzdC12YWx1ZQ==',
  '-----END OPENSSH PRIVATE KEY-----',
].join('\n');
const SECRETS: Record<string, string> = { TOKEN, KEY };

let engine: TestEngine;

beforeAll(async () => {
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    secrets: {
      async get(names) {
        return Object.fromEntries(names.filter((n) => n in SECRETS).map((n) => [n, SECRETS[n]!]));
      },
    },
  });
});
afterAll(async () => {
  await engine.close();
});

/** Everything a user can read of the step: stored log, its `step.log` events, the run document. */
async function everythingSeen(runId: string, step: string, events: RunEvent[]) {
  const log = (await engine.request('GET', `/v1/runs/${runId}/steps/${step}/logs`)).body as string;
  const logEvents = events
    .filter((e) => e.type === 'step.log' && e.data.step === step)
    .map((e) => String(e.data.text))
    .join('');
  const run = (await engine.request('GET', `/v1/runs/${runId}`)).body;
  return { log, logEvents, run };
}

/** The secret and every line of it that is masked on its own. */
const leaks = (text: string) => maskedValues([TOKEN, KEY]).filter((value) => text.includes(value));

describe('masking a real step', () => {
  it('masks a secret printed in two pieces with a pause between them', async () => {
    const run = await engine.submit({
      name: 'split-secret',
      steps: {
        split: {
          env: { T: '${{ secrets.TOKEN }}' },
          run: [
            `printf 'token: %s' "$(printf '%s' "$T" | cut -c1-10)"`,
            'sleep 0.5',
            `printf '%s\\n' "$(printf '%s' "$T" | cut -c11-)"`,
            `printf 'err %s' "$T" | head -c 9 >&2`,
            'sleep 0.5',
            `printf '%s done\\n' "$(printf '%s' "$T" | cut -c6-)" >&2`,
            'echo "value=$T" >> "$CONVEYOR_OUTPUT"',
          ].join('\n'),
        },
      },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    const seen = await everythingSeen(run.id, 'split', events);
    expect(seen.log.split('\n').sort()).toEqual(['', 'err *** done', 'token: ***']);
    expect(seen.logEvents.split('\n').sort()).toEqual(['', 'err *** done', 'token: ***']);
    expect(seen.run.steps.split.outputs).toEqual({ value: '***' });
    expect(leaks(JSON.stringify(seen))).toEqual([]);
  });

  it('masks a multi-line key printed line by line, whole and each line with other text around', async () => {
    const run = await engine.submit({
      name: 'key-lines',
      steps: {
        key: {
          env: { K: '${{ secrets.KEY }}' },
          run: [
            `printf '%s\\n' "$K" | while IFS= read -r line; do printf '%s\\n' "$line"; sleep 0.1; done`,
            `printf '%s\\n' "$K" | while IFS= read -r line; do printf '> %s <\\n' "$line"; done`,
            `echo "second=$(printf '%s\\n' "$K" | sed -n 2p)" >> "$CONVEYOR_OUTPUT"`,
            `printf '%s\\n' "$K" | sed -n 3p | sed 's/^/key failed: /' >&2`,
            'exit 3',
          ].join('\n'),
        },
      },
    });
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    const seen = await everythingSeen(run.id, 'key', events);
    const quoted = Array.from({ length: 5 }, () => '> *** <');
    const expected = ['***', ...quoted, 'key failed: ***', ''].join('\n');
    expect(seen.log).toBe(expected);
    expect(seen.logEvents).toBe(expected);
    expect(seen.run.steps.key.outputs ?? {}).toEqual({});
    expect(leaks(JSON.stringify(seen))).toEqual([]);
    expect(maskedValues([KEY])).toHaveLength(6);
  });
});

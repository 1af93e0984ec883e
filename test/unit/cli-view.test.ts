/**
 * The CLI's pure parts: the watch view of a run bigger than the terminal, hostile log text kept
 * from the terminal, "did you mean", issue paths located in YAML and JSON text.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { knownKeys, locate } from '../../src/cli/locate.ts';
import { Output, sanitize } from '../../src/cli/output.ts';
import { closest } from '../../src/cli/suggest.ts';
import { RunView } from '../../src/cli/watch-view.ts';
import type { Run, RunEvent } from '../../src/client/index.ts';

const at = '2026-12-01T10:00:00.000Z';
const plain = new Output(
  { stdout: { write: () => true, isTTY: true }, stderr: { write: () => true }, stdin: new PassThrough() },
  { json: false, colour: false },
);

function run(steps: number): Run {
  return {
    id: 'run_x',
    workflow: { name: 'big', version: 1 },
    status: 'running',
    createdAt: at,
    steps: Object.fromEntries(
      Array.from({ length: steps }, (_, i) => [`s${i}`, { status: 'pending', executor: 'local' }]),
    ),
  } as unknown as Run;
}

function event(type: string, data: Record<string, unknown>): RunEvent {
  return { id: '1-0', event: type, data: { id: '1-0', runId: 'run_x', type, at, ...data } };
}

describe('watch view', () => {
  it('fits a 500-step run in the terminal: running and failed steps shown, the rest counted', () => {
    const view = new RunView(run(500));
    view.apply(event('step.started', { step: 's7', attempt: 1, executor: 'local' }));
    view.apply(
      event('step.failed', { step: 's9', attempt: 1, error: { code: 'exit', message: 'exit code 2' } }),
    );
    for (let i = 100; i < 400; i++) view.apply(event('step.succeeded', { step: `s${i}`, attempt: 1 }));
    const lines = view.render(plain, Date.parse(at) + 1500, 20, 80);
    expect(lines.length).toBeLessThanOrEqual(20);
    expect(lines.every((l) => l.length < 80)).toBe(true);
    expect(lines.some((l) => /^● s7 +running/.test(l))).toBe(true);
    expect(lines.some((l) => /^✗ s9 +failed .*exit code 2/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe('  … 498 more steps (all: 300 succeeded, 1 failed, 1 running, 198 pending)');
  });

  it('shows a hosts step as hosts finished out of its hosts', () => {
    const doc = run(1);
    (doc.steps.s0 as { hosts?: string[] }).hosts = ['a', 'b', 'c', 'd'];
    const view = new RunView(doc);
    view.apply(event('step.started', { step: 's0', attempt: 1, executor: 'ssh' }));
    view.apply(event('step.progress', { step: 's0', host: 'a', status: 'succeeded' }));
    view.apply(event('step.progress', { step: 's0', host: 'b', status: 'running' }));
    const [, line] = view.render(plain, Date.parse(at), 20, 100);
    expect(line).toMatch(/^● s0 +running +ssh +4 hosts .*\[#{5}-{15}\] 25%$/);
  });

  it('keeps escape sequences and control characters of logs and errors off the terminal', () => {
    const hostile = 'ok\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m\rback\x08\x00\u009b';
    expect(sanitize(hostile)).toBe('okredback');
    const view = new RunView(run(1));
    view.apply(event('step.started', { step: 's0', attempt: 1 }));
    view.apply(event('step.log', { step: 's0', attempt: 1, stream: 'stdout', text: `${hostile}\nline 2\n` }));
    const text = view.render(plain, Date.parse(at), 20, 100).join('\n');
    expect(text).toContain('│ okredback');
    expect(text).toContain('│ line 2');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may remain
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  });
});

describe('did you mean', () => {
  it.each([
    ['need', ['needs', 'name', 'run'], 'needs'],
    ['rn', ['run', 'runs', 'retry'], 'run'],
    ['wath', ['watch', 'workflow'], 'watch'],
    ['timout', ['timeout', 'retries'], 'timeout'],
    ['zzz', ['run', 'needs'], undefined],
    ['run', ['run'], undefined],
  ])('%s among %j → %s', (word, candidates, expected) => expect(closest(word, candidates)).toBe(expected));

  it('knows the keys of each object of the definition', () => {
    expect(knownKeys('steps.build')).toContain('needs');
    expect(knownKeys('steps.build.retries')).toEqual(['attempts', 'backoff', 'delay', 'jitter']);
    expect(knownKeys('')).toContain('steps');
    expect(knownKeys('steps.build.run')).toEqual([]);
  });
});

describe('locate', () => {
  it('maps issue paths to lines and columns, in YAML and in JSON', () => {
    const yaml = locate('name: x\nsteps:\n  a:\n    needs: [b, c]\n');
    expect(yaml.position('steps.a.needs[1]')).toEqual({ line: 4, column: 16 });
    expect(yaml.position('steps.nope.run')).toEqual({ line: 3, column: 3 });
    const json = locate('{\n  "steps": {\n    "a": { "need": 1 }\n  }\n}');
    expect(json.keyPosition('steps.a', 'need')).toEqual({ line: 3, column: 12 });
  });
});

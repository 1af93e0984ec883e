import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { validateDefinition } from '../../src/flows/index.ts';
import { evaluateGroup, scheduleEntries } from '../../src/triggers/index.ts';

const steps = { a: { run: 'echo a' } };

function issuesOf(def: Record<string, unknown>): Record<string, string> {
  try {
    validateDefinition({ name: 'wf', steps, ...def });
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return Object.fromEntries((err as ValidationError).issues.map((i) => [i.path, i.message]));
  }
  throw new Error('expected a ValidationError');
}

describe('on.schedule', () => {
  it('accepts 5- and 6-field crons, macros and IANA zones', () => {
    const wf = validateDefinition({
      name: 'wf',
      on: {
        schedule: [
          { cron: '0 3 * * *', timezone: 'Europe/Paris' },
          { cron: '*/1 * * * * *' },
          { cron: '@daily', timezone: 'America/New_York' },
        ],
      },
      steps,
    });
    expect(wf.on?.schedule).toHaveLength(3);
  });

  it('refuses what does not parse, with the path of each entry', () => {
    const issues = issuesOf({
      on: {
        schedule: [
          { cron: '0 3 * * *' },
          { cron: 'every five minutes' },
          { cron: '61 * * * *' },
          { cron: '0 0 31 2 *' },
          { cron: '* * * * * * *' },
          { cron: '' },
          { cron: '0 3 * * *', timezone: 'Mars/Olympus_Mons' },
        ],
      },
    });
    expect(Object.keys(issues).sort()).toEqual([
      'on.schedule[1].cron',
      'on.schedule[2].cron',
      'on.schedule[3].cron',
      'on.schedule[4].cron',
      'on.schedule[5].cron',
      'on.schedule[6].timezone',
    ]);
    expect(issues['on.schedule[1].cron']).toMatch(/"every five minutes" is not a cron expression/);
    expect(issues['on.schedule[6].timezone']).toMatch(/unknown time zone "Mars\/Olympus_Mons"/);
  });

  it('refuses a schedule on a workflow with a required input that has no default', () => {
    const issues = issuesOf({
      inputs: { ref: { type: 'string', required: true }, env: { type: 'string', default: 'prod' } },
      on: { schedule: [{ cron: '0 3 * * *' }] },
    });
    expect(issues['on.schedule[0]']).toMatch(/"ref" is required without a default/);
  });

  it('gives one scheduler per distinct cron and zone, stable across versions', () => {
    const one = validateDefinition({
      name: 'wf',
      on: {
        schedule: [{ cron: '0 3 * * *' }, { cron: '0 3 * * *', timezone: 'UTC' }, { cron: '0 4 * * *' }],
      },
      steps,
    });
    const two = validateDefinition({
      name: 'wf',
      on: { schedule: [{ cron: '0 4 * * *' }] },
      steps: { b: { run: 'x' } },
    });
    const ids = scheduleEntries(one).map((e) => e.id);
    expect(ids).toHaveLength(2);
    expect(ids.every((id) => /^wf\.[0-9a-f]{16}$/.test(id))).toBe(true);
    expect(scheduleEntries(two)[0]!.id).toBe(ids[1]);
  });
});

describe('concurrency', () => {
  it('takes a bare string as the group, as GitHub does', () => {
    const wf = validateDefinition({ name: 'wf', concurrency: 'deploy', steps });
    expect(wf.concurrency).toEqual({ group: 'deploy', cancelInProgress: false });
  });

  it('evaluates the group over inputs and trigger when the run is created', () => {
    const wf = validateDefinition({
      name: 'wf',
      inputs: { env: { type: 'string', default: 'prod' } },
      concurrency: { group: 'deploy-${{ inputs.env }}-${{ trigger.branch }}', cancelInProgress: true },
      steps,
    });
    expect(evaluateGroup(wf, { env: 'prod' }, { type: 'push', branch: 'main' })).toEqual({
      group: 'deploy-prod-main',
      cancelInProgress: true,
    });
    const bare = validateDefinition({ name: 'wf', concurrency: '${{ trigger.branch }}', steps });
    // An empty group puts the run in no group.
    expect(evaluateGroup(bare, {}, { type: 'http' })).toBeUndefined();
  });

  it('refuses contexts other than inputs and trigger, undeclared inputs, bad syntax and empty groups', () => {
    expect(issuesOf({ concurrency: { group: 'g-${{ steps.a.outputs.x }}' } })['concurrency.group']).toMatch(
      /"steps" context is not available here/,
    );
    expect(issuesOf({ concurrency: 'g-${{ inputs.nope }}' }).concurrency).toMatch(/inputs\.nope/);
    expect(issuesOf({ concurrency: 'g-${{ trigger. }}' }).concurrency).toBeDefined();
    expect(issuesOf({ concurrency: { group: ' ' } })['concurrency.group']).toMatch(/must not be empty/);
    expect(issuesOf({ concurrency: { group: 'g', cancel: true } })).toHaveProperty(['concurrency']);
  });
});

/**
 * The `conveyor` command line, run as the real binary against a real API and worker: every
 * command's output and exit code, `--json` documents that parse, usage errors (exit 2, with
 * "did you mean"), an unreachable API and a refused token (exit 3), offline `validate` and `plan`
 * locating each problem in the file. Independent invocations run in parallel (each costs a
 * Node.js start-up).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type CliServer, cli, READ_TOKEN, startCliServer, until } from '../support/cli.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { spawnConveyorArgs } from '../support/process.ts';

let server: CliServer;
let dir: string;
/** `conveyor …` against the test server with the admin token. */
const admin = (args: string[], input?: string) =>
  cli(args, { env: { CONVEYOR_URL: server.url, CONVEYOR_TOKEN: ADMIN_TOKEN }, input });
const json = (stdout: string) => JSON.parse(stdout);

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

beforeAll(async () => {
  server = await startCliServer(import.meta.url);
  dir = join(server.dir, 'files');
  mkdirSync(dir);
});
afterAll(() => server?.close());

describe('usage', () => {
  it('prints help, refuses bad commands and flags with exit 2, and never starts a server', async () => {
    const [none, help, runHelp, group, sub, typo, flag, count, value, status, noSub, serveBoth, first] =
      await Promise.all([
        cli([]),
        cli(['--help']),
        cli(['run', '--help']),
        cli(['hosts', '--help']),
        cli(['secrets', 'set', '--help']),
        cli(['rn', 'x']),
        cli(['run', 'x', '--wath']),
        cli(['validate']),
        cli(['runs', '--limit', 'lots']),
        cli(['runs', '--status', 'done']),
        cli(['hosts']),
        cli(['serve', '--api-only', '--worker-only']),
        cli(['--json', 'runs']),
      ]);
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/^usage: conveyor <command>/);
    for (const name of [
      'init',
      'validate',
      'plan',
      'push',
      'run',
      'watch',
      'runs',
      'show',
      'logs',
      'cancel',
      'retry',
      'hosts',
      'secrets',
      'workflows',
      'events',
      'workers',
      'triggers',
      'serve',
    ]) {
      expect(none.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
    expect(help).toEqual(none);
    expect(runHelp.code).toBe(0);
    expect(runHelp.stdout).toContain('usage: conveyor run <file|name>');
    expect(runHelp.stdout).toMatch(/--cancel-on-interrupt/);
    expect(group.stdout).toMatch(/^ {2}check <name…> +preflight/m);
    expect(sub.stdout).toContain('the value comes from stdin');
    expect(typo).toMatchObject({ code: 2, stdout: '' });
    expect(typo.stderr).toContain('unknown command "rn"; did you mean "run"?');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('unknown flag --wath; did you mean "--watch"?');
    expect(count.code).toBe(2);
    expect(count.stderr).toContain('validate: expected at least 1 argument');
    expect(value.code).toBe(2);
    expect(value.stderr).toContain('--limit: expected a whole number from 1 to 200, got "lots"');
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('--status: expected one of queued, running');
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain('hosts: which one? list, add, rm, check');
    expect(serveBoth.code).toBe(2);
    expect(first.code).toBe(2);
  });

  it('gives exit 3 when the API is unreachable or refuses the token, with a JSON error', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const [down, downJson, badToken, noToken, readOnly, badUrl] = await Promise.all([
      cli(['runs'], { env: { CONVEYOR_URL: url } }),
      cli(['workflows', 'list', '--json', '--url', url]),
      cli(['runs', '--url', server.url, '--token', 'wrong-token-0123456789']),
      cli(['workers', '--json'], { env: { CONVEYOR_URL: server.url } }),
      cli(['secrets', 'set', 'X', '--json'], {
        env: { CONVEYOR_URL: server.url, CONVEYOR_TOKEN: READ_TOKEN },
        input: 'v',
      }),
      cli(['runs', '--url', 'ftp://x']),
    ]);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`cannot reach the API at ${url} (ECONNREFUSED)`);
    expect(downJson.code).toBe(3);
    expect(json(downJson.stdout).error).toMatchObject({ code: 'unreachable' });
    expect(badToken.code).toBe(3);
    expect(badToken.stderr).toContain('the API refused the token');
    expect(noToken.code).toBe(3);
    expect(json(noToken.stdout).error.code).toBe('unauthorized');
    expect(readOnly.code).toBe(3);
    expect(json(readOnly.stdout).error.code).toBe('forbidden');
    expect(badUrl.code).toBe(2);
  });
});

describe('offline: init, validate, plan', () => {
  it('init writes an example that validates and plans; never over a file', async () => {
    const target = join(dir, 'fresh');
    const first = await cli(['init', target]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`wrote ${join(target, 'hello.yml')}`);
    expect(readFileSync(join(target, '.env'), 'utf8')).toContain('# CONVEYOR_API_TOKENS=');
    const [again, valid, planned] = await Promise.all([
      cli(['init', target]),
      cli(['validate', join(target, 'hello.yml')]),
      cli(['plan', join(target, 'hello.yml'), '-i', 'who=cli', '--json']),
    ]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists: not overwritten');
    expect(valid).toMatchObject({ code: 0 });
    expect(valid.stdout).toContain('hello.yml: ok (hello, 4 steps)');
    expect(planned.code).toBe(0);
    expect(json(planned.stdout)).toMatchObject({ workflow: 'hello', inputs: { who: 'cli' } });
  });

  it('validate locates every problem like a compiler, with did-you-mean for misspelt keys', async () => {
    const yaml = file(
      'bad.yml',
      'name: bad\nsteps:\n  build:\n    run: echo hi\n    need: test\n  test:\n    needs: [build, nope]\n  deploy:\n    runn: echo\n',
    );
    const jsonFile = file(
      'bad.json',
      '{\n  "name": "j",\n  "steps": { "a": { "run": "x", "neds": [] } }\n}\n',
    );
    const graph = file(
      'graph.yml',
      'name: graph\nsteps:\n  a:\n    needs: [b]\n    run: "true"\n  b:\n    needs: a\n    run: echo ${{ inputs.nope }}\n',
    );
    const syntax = file('syntax.yml', 'name: x\nsteps:\n  a: [unclosed\n');
    const dup = file('dup.yml', 'name: dup\nsteps:\n  a: { run: "true" }\n  a: { run: "false" }\n');
    const ok = file('ok.yml', 'name: ok\nsteps:\n  a: { run: "true" }\n');
    const [text, asJson, missing] = await Promise.all([
      cli(['validate', yaml, jsonFile, graph, syntax, dup, ok]),
      cli(['validate', yaml, ok, '--json']),
      cli(['validate', join(dir, 'missing.yml')]),
    ]);
    expect(text.code).toBe(2);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toContain(`${yaml}:5:5: steps.build.need: unknown key "need" (did you mean "needs"?)`);
    expect(lines).toContain(`${yaml}:7:20: steps.test.needs[1]: unknown step "nope"`);
    expect(lines).toContain(`${yaml}:9:5: steps.deploy.runn: unknown key "runn" (did you mean "run"?)`);
    expect(lines).toContain(`${jsonFile}:3:33: steps.a.neds: unknown key "neds" (did you mean "needs"?)`);
    expect(lines).toContain(`${graph}:4:12: steps.a.needs: cycle: a → b → a`);
    expect(lines.some((l) => l.startsWith(`${graph}:8:10: steps.b.run: `) && l.includes('inputs.nope'))).toBe(
      true,
    );
    expect(lines.some((l) => l.startsWith(`${syntax}:4:1: `))).toBe(true);
    expect(lines).toContain(`${dup}:4:3: steps.a: duplicate key "a"`);
    expect(lines).toContain(`${ok}: ok (ok, 1 steps)`);
    expect(text.stderr).toMatch(/\d+ problems/);
    const doc = json(asJson.stdout);
    expect(asJson.code).toBe(2);
    expect(doc.valid).toBe(false);
    expect(doc.files[0].problems[0]).toEqual({
      file: yaml,
      line: 5,
      column: 5,
      path: 'steps.build.need',
      message: 'unknown key "need"',
      suggestion: 'needs',
    });
    expect(doc.files[1]).toMatchObject({ valid: true, name: 'ok', steps: 1, problems: [] });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing.yml: no such file');
  });

  it('plan shows stages, parallel steps, executors, hosts from the inventory and runtime expressions', async () => {
    const inventory = file(
      'inventory.yml',
      'hosts:\n  web-1: { address: 10.0.0.1, user: deploy, groups: [web], auth: { type: agent } }\n  web-2: { address: 10.0.0.2, user: deploy, groups: [web], auth: { type: agent } }\n',
    );
    const definition = file(
      'deploy.yml',
      [
        'name: deploy',
        'inputs: { ref: { default: main } }',
        'steps:',
        '  build: { run: "echo build ${{ inputs.ref }}" }',
        '  test: { needs: build, run: "true" }',
        '  lint: { needs: build, run: "true", runsOn: [eu] }',
        '  ship:',
        '    needs: [test, lint]',
        '    hosts: web',
        '    strategy: { maxParallel: 1 }',
        "    if: ${{ inputs.ref == 'main' }}",
        '    run: "deploy ${{ steps.build.outputs.artifact }}"',
        '',
      ].join('\n'),
    );
    const [text, doc, noInventory, unknownHost, badInput] = await Promise.all([
      cli(['plan', definition, '--inventory', inventory]),
      cli(['plan', definition, '--json'], { env: { CONVEYOR_INVENTORY: inventory } }),
      cli(['plan', definition]),
      cli(['validate', definition, '--inventory', file('empty-inventory.yml', 'hosts: {}\n')]),
      cli(['plan', definition, '-i', 'nope=1']),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^1 +build +local/m);
    expect(text.stdout).toMatch(/^2 +test +local +build/m);
    expect(text.stdout).toMatch(/^2 +lint +local \[eu\] +build/m);
    expect(text.stdout).toMatch(/^3 +ship +ssh +web-1, web-2 \(1 at a time\) +test, lint/m);
    expect(text.stdout).toContain('in parallel: stage 2 (test, lint)');
    expect(text.stdout).toContain('  build.run: ${{ inputs.ref }}');
    expect(text.stdout).toContain("  ship.if: ${{ inputs.ref == 'main' }}");
    expect(text.stdout).toContain('  ship.run: ${{ steps.build.outputs.artifact }}');
    const plan = json(doc.stdout);
    expect(plan.steps.map((s: { id: string; stage: number }) => [s.id, s.stage])).toEqual([
      ['build', 0],
      ['test', 1],
      ['lint', 1],
      ['ship', 2],
    ]);
    expect(plan.steps[3]).toMatchObject({ executor: 'ssh', hosts: ['web-1', 'web-2'], maxParallel: 1 });
    expect(plan.expressions).toContainEqual({
      step: 'ship',
      field: 'run',
      expression: 'steps.build.outputs.artifact',
    });
    expect(noInventory.code).toBe(0);
    expect(noInventory.stderr).toContain('hosts: not resolved (no inventory');
    expect(unknownHost.code).toBe(2);
    expect(unknownHost.stdout).toMatch(/deploy\.yml:9:12: steps\.ship\.hosts: unknown host or group "web"/);
    expect(badInput.code).toBe(2);
    expect(badInput.stderr).toContain('inputs.nope: "nope" is not an input of deploy');
  });
});

describe('against the API', () => {
  it("push registers a folder, marks unchanged versions, and locates the API's issues", async () => {
    file('flows/a.yml', 'name: cli-a\nsteps:\n  one: { run: echo a }\n');
    file('flows/b.json', '{"name": "cli-b", "steps": {"one": {"run": "echo b"}}}');
    file('flows/notes.txt', 'not a workflow');
    const first = await admin(['push', join(dir, 'flows')]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^cli-a +v1 +created/m);
    expect(first.stdout).toMatch(/^cli-b +v1 +created/m);
    file('flows/b.json', '{"name": "cli-b", "steps": {"one": {"run": "echo b2"}}}');
    const bad = file('bad-push.yml', 'name: cli-bad\nsteps:\n  one:\n    run: echo\n    hosts: nowhere\n');
    const [second, refused] = await Promise.all([
      admin(['push', join(dir, 'flows'), '--json']),
      admin(['push', bad]),
    ]);
    expect(second.code).toBe(0);
    expect(json(second.stdout).workflows).toMatchObject([
      { name: 'cli-a', version: 1, created: false },
      { name: 'cli-b', version: 2, created: true },
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toContain(`${bad}:5:12: steps.one.hosts: unknown host or group "nowhere"`);

    const [list, show, showJson, dry] = await Promise.all([
      admin(['workflows', 'list']),
      admin(['workflows', 'show', 'cli-b', '--version', '1']),
      admin(['workflows', 'show', 'cli-b', '--json']),
      admin(['run', 'cli-a', '--dry-run']),
    ]);
    expect(list.stdout).toMatch(/^cli-b +v2/m);
    expect(show.stdout).toContain('# cli-b v1');
    expect(show.stdout).toContain('run: echo b');
    expect(json(showJson.stdout)).toMatchObject({ name: 'cli-b', version: 2 });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^1 +one +local/m);
    const [rm, gone] = [
      await admin(['workflows', 'rm', 'cli-b']),
      await admin(['workflows', 'show', 'cli-b']),
    ];
    expect(rm.code).toBe(0);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('no workflow "cli-b"');
  });

  it('runs a file and a registered workflow; watch, runs, show, logs, retry; a failed run exits 1', async () => {
    const good = file(
      'good.yml',
      'name: cli-good\ninputs: { who: { default: x }, n: { type: number, default: 1 } }\nsteps:\n  hi:\n    run: |\n      echo "hello ${{ inputs.who }} ${{ inputs.n }}"\n  after: { needs: hi, run: echo after }\n',
    );
    const bad = file(
      'fail.yml',
      'name: cli-fail\nsteps:\n  boom:\n    retries: { attempts: 2, delay: 10ms }\n    run: echo "try $CONVEYOR_RUN_ATTEMPT"; exit 3\n',
    );
    const [detached, watched, failed, jsonWatch] = await Promise.all([
      admin(['run', good, '-i', 'who=cli', '-i', 'n=42']),
      admin(['run', good, '--watch']),
      admin(['run', bad, '--watch']),
      admin(['run', good, '--watch', '--json']),
    ]);
    expect(detached.code).toBe(0);
    const id = detached.stdout.trim();
    expect(id).toMatch(/^run_/);
    expect(detached.stderr).toContain(`conveyor watch ${id}`);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/ hi started \(local, attempt 1\)/);
    expect(watched.stdout).toMatch(/ hi \| hello x 1$/m);
    expect(watched.stdout).toMatch(/✓ run run_\S+ succeeded in [\d.]+s: 2 succeeded/);
    // Not a terminal: no colours, no cursor movement.
    expect(watched.stdout).not.toContain('\x1b[');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/✗ run (run_\S+) failed in [\d.]+s: 1 failed/);
    expect(failed.stdout).toMatch(/^ {2}boom: .*\(conveyor logs run_\S+ boom\)$/m);
    expect(jsonWatch.code).toBe(0);
    expect(json(jsonWatch.stdout)).toMatchObject({
      status: 'succeeded',
      steps: { hi: { status: 'succeeded' } },
    });
    const failedId = /run (run_\S+) failed/.exec(failed.stdout)![1]!;

    const [watchAgain, list, listJson, show, logs, logs1, logsJson, follow, retried] = await Promise.all([
      admin(['watch', id]),
      admin(['runs', '--workflow', 'cli-good']),
      admin(['runs', '--status', 'failed', '--limit', '5', '--json']),
      admin(['show', id]),
      admin(['logs', id, 'hi']),
      admin(['logs', failedId, 'boom', '--attempt', '1']),
      admin(['logs', failedId, 'boom', '--json']),
      admin(['logs', id, 'hi', '--follow']),
      admin(['retry', failedId, '--json']),
    ]);
    expect(watchAgain.code).toBe(0);
    expect(watchAgain.stdout).toContain(`✓ run ${id} succeeded`);
    expect(list.stdout).toMatch(new RegExp(`^${id} +cli-good +succeeded +http`, 'm'));
    expect(json(listJson.stdout).runs.map((r: { id: string }) => r.id)).toContain(failedId);
    expect(show.stdout).toContain(`inputs: {"who":"cli","n":42}`);
    expect(show.stdout).toMatch(/^hi +succeeded +local +1/m);
    expect(logs.stdout).toBe('hello cli 42\n');
    expect(logs1.stdout).toBe('try 1\n');
    expect(json(logsJson.stdout).text).toBe('try 2\n');
    expect(follow.stdout).toBe('hello cli 42\n');
    expect(retried.code).toBe(0);
    expect(json(retried.stdout).trigger).toEqual({ type: 'retry', runId: failedId });

    const [noRun, noStep, cancelDone] = await Promise.all([
      admin(['show', 'run_nope']),
      admin(['logs', id, 'nope']),
      admin(['cancel', id]),
    ]);
    expect(noRun.code).toBe(2);
    expect(noStep.code).toBe(2);
    expect(cancelDone.code).toBe(2);
    expect(cancelDone.stderr).toContain('already');
  });

  it('cancels a running run', async () => {
    const gate = join(dir, 'never');
    const slow = file(
      'slow.yml',
      `name: cli-slow\nsteps:\n  wait: { run: "while [ ! -e '${gate}' ]; do sleep 0.05; done" }\n`,
    );
    const started = await admin(['run', slow, '--detach', '--json']);
    const id = json(started.stdout).id;
    const [cancelled, watched] = await Promise.all([admin(['cancel', id]), admin(['watch', id])]);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`cancel requested for ${id}`);
    expect(watched.code).toBe(1);
    expect(watched.stdout).toContain(`run ${id} cancelled`);
  });

  it('hosts, secrets (from stdin), events, workers and triggers', async () => {
    const port = await closedPort();
    const value = 'sup3r-s3cret-value';
    const [set, add] = await Promise.all([
      admin(['secrets', 'set', 'CLI_KEY'], `${value}\n`),
      admin([
        'hosts',
        'add',
        'cli-web',
        '--address',
        '127.0.0.1',
        '--port',
        String(port),
        '--user',
        'deploy',
        '--group',
        'web',
        '--auth',
        'password',
        '--secret',
        'CLI_KEY',
      ]),
    ]);
    expect(set).toMatchObject({ code: 0, stdout: 'secret CLI_KEY stored\n' });
    expect(add.code).toBe(0);
    file('events-flow.yml', 'name: cli-on-event\non: { event: [cli.ping] }\nsteps:\n  a: { run: "true" }\n');
    await admin(['push', join(dir, 'events-flow.yml')]);
    const [
      secretList,
      hostList,
      hostJson,
      check,
      published,
      publishedText,
      workers,
      triggers,
      empty,
      badPayload,
    ] = await Promise.all([
      admin(['secrets', 'list', '--json']),
      admin(['hosts', 'list']),
      admin(['hosts', 'list', '--json']),
      admin(['hosts', 'check', 'cli-web']),
      admin(['events', 'publish', 'cli.ping', '{"n": 1}', '--json']),
      admin(['events', 'publish', 'cli.ping']),
      admin(['workers', '--json']),
      admin(['triggers']),
      admin(['secrets', 'set', 'EMPTY']),
      admin(['events', 'publish', 'cli.ping', '{bad']),
    ]);
    expect(json(secretList.stdout).secrets).toContainEqual({ name: 'CLI_KEY' });
    expect(secretList.stdout).not.toContain(value);
    expect(hostList.stdout).toMatch(
      new RegExp(`^cli-web +127\\.0\\.0\\.1:${port} +deploy +web +password \\(CLI_KEY\\)`, 'm'),
    );
    expect(json(hostJson.stdout).hosts).toContainEqual(expect.objectContaining({ name: 'cli-web', port }));
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/^host +reachable +host key +auth +sudo +latency +errors$/m);
    expect(check.stdout).toMatch(/^cli-web +no +- +- +- +- +\S+/m);
    expect(published.code).toBe(0);
    expect(json(published.stdout).runs).toHaveLength(1);
    expect(publishedText.stdout).toMatch(/^event \S+ published; runs started: run_[a-z0-9]+$/m);
    expect(json(workers.stdout).workers.length).toBeGreaterThan(0);
    expect(triggers.stdout).toMatch(/^cli-on-event v1 +event +\{"event":"cli\.ping"\}/m);
    expect(empty.code).toBe(2);
    expect(badPayload.code).toBe(2);
    const [rmSecret, rmHost] = await Promise.all([
      admin(['secrets', 'rm', 'CLI_KEY']),
      admin(['hosts', 'rm', 'cli-web']),
    ]);
    expect(rmSecret.code).toBe(0);
    expect(rmHost.code).toBe(0);
    expect((await admin(['hosts', 'rm', 'cli-web'])).code).toBe(2);
  });
});

describe('--json', () => {
  it('every command prints one JSON document, errors included', async () => {
    const flow = file('json/flow.yml', 'name: cli-json\nsteps:\n  a: { run: echo json }\n');
    const pushed = await admin(['push', flow, '--json']);
    const started = await admin(['run', 'cli-json', '--watch', '--json']);
    const id = json(started.stdout).id;
    // Those not checked with --json in the tests above.
    const commands = [
      ['init', join(dir, 'json/init'), '--json'],
      ['plan', 'cli-json', '--json'],
      ['run', flow, '--dry-run', '--json'],
      ['show', id, '--json'],
      ['watch', id, '--json'],
      ['logs', id, 'a', '--follow', '--json'],
      ['cancel', id, '--json'],
      ['workflows', 'list', '--json'],
      ['workflows', 'show', 'cli-json', '--json'],
      ['hosts', 'check', 'nope', '--json'],
      ['events', 'publish', 'cli.json', '--json'],
      ['triggers', '--json'],
      ['show', 'run_nope', '--json'],
      ['runs', '--limit', '0', '--json'],
    ];
    const results = await Promise.all(commands.map((args) => admin(args)));
    expect(json(pushed.stdout).workflows).toHaveLength(1);
    expect(started.code).toBe(0);
    results.forEach((r, i) => {
      const doc = (() => {
        try {
          return JSON.parse(r.stdout);
        } catch {
          throw new Error(
            `conveyor ${commands[i]!.join(' ')} printed no JSON document:\n${r.stdout}\n${r.stderr}`,
          );
        }
      })();
      expect(doc, commands[i]!.join(' ')).toBeTypeOf('object');
      if (r.code !== 0) expect(doc.error, commands[i]!.join(' ')).toMatchObject({ code: expect.any(String) });
    });
    expect(json(results[4]!.stdout)).toMatchObject({ id, status: 'succeeded' });
    expect(json(results[5]!.stdout).chunks).toEqual([{ attempt: 1, stream: 'stdout', text: 'json\n' }]);
    const expected = [0, 0, 0, 0, 0, 0, 2, 0, 0, 2, 0, 0, 2, 2];
    results.forEach((r, k) => expect(r.code, `${commands[k]!.join(' ')}: ${r.stderr}`).toBe(expected[k]));
  }, 180_000);
});

describe('serve', () => {
  it('serve --api-only starts the API without a worker, serve --worker-only a worker without the API', async () => {
    const port = await closedPort();
    const prefix = testPrefix(import.meta.url);
    const env = {
      REDIS_URL: redisUrl(),
      CONVEYOR_PREFIX: prefix,
      PORT: String(port),
      WORKER_EXECUTORS: 'local',
    };
    const api = spawnConveyorArgs(['serve', '--api-only'], env);
    const worker = spawnConveyorArgs(['serve', '--worker-only'], { ...env, PORT: undefined });
    try {
      await api.line(/API listening/);
      await worker.line(/worker ready/);
      expect(worker.output()).not.toContain('API listening');
      const url = `http://127.0.0.1:${port}`;
      const listed = await until(
        () => cli(['workers', '--json', '--url', url]),
        (r) => r.code === 0 && json(r.stdout).workers.length === 1,
      );
      // The one live worker is the --worker-only process: the API process serves no steps.
      expect(json(listed.stdout).workers[0]).toMatchObject({ pid: worker.child.pid, executors: ['local'] });
    } finally {
      await Promise.all([api.stop(), worker.stop()]);
      await dropPrefix(redisUrl(), prefix);
    }
  });
});

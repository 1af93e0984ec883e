import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecretKey, parseSecretKey } from '../../src/secrets/index.ts';
import { LocalExecutor } from '../../src/workers/local/index.ts';
import { inventoryResolver, SshExecutor } from '../../src/workers/ssh/index.ts';
import { startEngine, type TestEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { type SshdHandle, startSshd } from '../support/sshd.ts';

let engine: TestEngine;
let dir: string;
const sshds: SshdHandle[] = [];
const API_TOKEN = 'tok-3f9a-very-secret-value';

beforeAll(async () => {
  for (let i = 0; i < 3; i++) sshds.push(await startSshd());
  dir = mkdtempSync(join(tmpdir(), 'conveyor-ssh-e2e-'));
  chmodSync(dir, 0o777); // the remote user writes here
  engine = await startEngine(redisUrl(), testPrefix(import.meta.url), {
    secretKey: parseSecretKey(generateSecretKey()),
    executors: ({ inventory, secrets }) => [
      new LocalExecutor(),
      new SshExecutor({
        onTrust: (host, keyLine) => inventory.recordHostKey(host, keyLine),
        resolveHost: inventoryResolver({ inventory, secrets }),
      }),
    ],
  });
  for (const [i, sshd] of sshds.entries()) {
    expect((await engine.request('PUT', `/v1/secrets/key_${i + 1}`, { value: sshd.clientKey })).status).toBe(
      201,
    );
    const host = sshd.inventoryEntry(`key_${i + 1}`, { groups: ['web'] });
    expect((await engine.request('PUT', `/v1/hosts/web-${i + 1}`, host)).status).toBe(201);
  }
  expect((await engine.request('PUT', '/v1/secrets/api_token', { value: API_TOKEN })).status).toBe(201);
});
afterAll(async () => {
  await engine?.close();
  for (const sshd of sshds) await sshd.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a workflow with a local build, an SSH fan-out and a local check', () => {
  it('runs green on real sshd, at most maxParallel hosts at once, secrets masked everywhere', async () => {
    const spans = join(dir, 'spans');
    const nasty = `v1'; $(touch ${dir}/pwned) \`id\``;
    const run = await engine.submit(
      {
        name: 'deploy',
        inputs: { version: { type: 'string' } },
        steps: {
          build: { run: 'echo "artifact=app-${{ inputs.version }}.tgz" >> "$CONVEYOR_OUTPUT"' },
          deploy: {
            needs: ['build'],
            hosts: 'web',
            strategy: { maxParallel: 2 },
            run: [
              `echo "start $(date +%s%N)" >> ${spans}`,
              'echo "deploying ${{ steps.build.outputs.artifact }} to $CONVEYOR_HOST with ${{ secrets.api_token }}"',
              'sleep 0.3',
              `echo "end $(date +%s%N)" >> ${spans}`,
              `printf '%s\\n' "\${{ steps.build.outputs.artifact }}" >> ${dir}/deployed`,
              'echo "where=$CONVEYOR_HOST" >> "$CONVEYOR_OUTPUT"',
            ].join('\n'),
          },
          check: { needs: ['deploy'], run: `test "$(wc -l < ${dir}/deployed)" -eq 3` },
        },
      },
      { version: nasty },
    );
    const { run: done, events } = await engine.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(Object.values(done.steps).map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const deploy = done.steps.deploy!;
    expect(deploy.executor).toBe('ssh');
    expect(Object.keys(deploy.instances!)).toEqual(['web-1', 'web-2', 'web-3']);
    for (const [host, instance] of Object.entries(deploy.instances!)) {
      expect(instance.status).toBe('succeeded');
      expect(instance.outputs).toEqual({ where: host });
    }

    // The hostile input arrived literally on every host, and ran nowhere.
    expect(readFileSync(join(dir, 'deployed'), 'utf8')).toBe(`app-${nasty}.tgz\n`.repeat(3));
    expect(() => readFileSync(join(dir, 'pwned'))).toThrow();

    // Never more than maxParallel hosts at once.
    const marks = readFileSync(spans, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]);
    let running = 0;
    let peak = 0;
    for (const [kind] of marks.sort((a, b) => (BigInt(a[1]) < BigInt(b[1]) ? -1 : 1))) {
      running += kind === 'start' ? 1 : -1;
      peak = Math.max(peak, running);
    }
    expect(peak).toBe(2);

    const log = await engine.request('GET', `/v1/runs/${run.id}/steps/deploy/logs?host=web-2`);
    expect(log.body).toContain('to web-2 with ***');
    const combined = await engine.request('GET', `/v1/runs/${run.id}/steps/deploy/logs`);
    expect(combined.body).toContain('==> web-3 <==');
    // The secret appears nowhere: events, run document, logs.
    const everything = JSON.stringify(events) + JSON.stringify(done) + combined.body;
    expect(everything).not.toContain(API_TOKEN);
    expect(everything).toContain('***');
  });

  it('stops the other hosts after a failure with failFast', async () => {
    const run = await engine.submit({
      name: 'failfast',
      steps: {
        deploy: {
          hosts: 'web',
          strategy: { maxParallel: 1, failFast: true },
          run: 'test "$CONVEYOR_HOST" != web-1',
        },
        after: { needs: ['deploy'], run: 'true' },
      },
    });
    const { run: done } = await engine.waitForRun(run.id);
    expect(done.status).toBe('failed');
    const instances = done.steps.deploy!.instances!;
    expect(instances['web-1']!.status).toBe('failed');
    expect(instances['web-2']!.status).toBe('cancelled');
    expect(instances['web-3']!.status).toBe('cancelled');
    expect(done.steps.deploy!.error!.code).toBe('hosts_failed');
    expect(done.steps.after!.status).toBe('skipped');
  });

  it('rejects an unknown group at submission and plans hosts in a dry run', async () => {
    const bad = await engine.request('POST', '/v1/runs', {
      workflow: { name: 'x', steps: { a: { hosts: 'db', run: 'true' } } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues).toContainEqual({
      path: 'workflow.steps.a.hosts',
      message: 'unknown host or group "db"',
    });
    const plan = await engine.request('POST', '/v1/runs?dryRun=true', {
      workflow: {
        name: 'x',
        steps: {
          a: { run: 'true' },
          b: { needs: ['a'], hosts: 'web', strategy: { maxParallel: 2 }, run: 'true' },
        },
      },
    });
    expect(plan.status).toBe(200);
    expect(plan.body.steps[1]).toMatchObject({
      id: 'b',
      executor: 'ssh',
      hosts: ['web-1', 'web-2', 'web-3'],
      maxParallel: 2,
    });
  });

  it('checks a host: reachable, host key verified, auth and latency', async () => {
    const res = await engine.request('POST', '/v1/hosts/web-1/check');
    expect(res.status).toBe(200);
    expect(res.body.reachable).toBe(true);
    expect(res.body.hostKey.status).toBe('verified');
    expect(res.body.auth).toEqual({ ok: true, method: 'key' });
    expect(typeof res.body.latencyMs).toBe('number');
  });

  it('manages hosts and write-only secrets over the API', async () => {
    const listed = await engine.request('GET', '/v1/secrets');
    expect(listed.body.secrets).toContainEqual({ name: 'api_token' });
    expect(JSON.stringify(listed.body)).not.toContain(API_TOKEN);
    const hosts = await engine.request('GET', '/v1/hosts');
    expect(hosts.body.hosts.map((h: { name: string }) => h.name).sort()).toEqual(['web-1', 'web-2', 'web-3']);
    const bad = await engine.request('PUT', '/v1/hosts/bad', {
      address: '127.0.0.1',
      user: 'x',
      auth: { type: 'password' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: { path: string }) => i.path)).toContain('auth.secret');
    const clash = await engine.request('PUT', '/v1/hosts/web', {
      address: '127.0.0.1',
      user: 'x',
      auth: { type: 'agent' },
    });
    expect(clash.status).toBe(400); // "web" is a group
    expect((await engine.request('DELETE', '/v1/hosts/nope')).status).toBe(404);
  });
});

/**
 * infra/ against the code (no Docker engine or cluster here, so the manifests are read, not run):
 * every manifest parses; every variable they give Conveyor is one the configuration reads, and
 * their values pass its schema; images, ports and probe paths agree with the real routes (asked
 * of a real API and a real worker process's health port); the Dockerfile's stages, user,
 * packages and healthcheck; the KEDA triggers' lists are where BullMQ really keeps a queue's jobs
 * (on a real Redis); grace periods cover the worker's shutdown; Redis's settings, read back from
 * a real redis-server.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config.ts';
import { queueNames } from '../../src/flows/index.ts';
import { parseStepQueue } from '../../src/flows/routing.ts';
import { parseInventory } from '../../src/inventory/index.ts';
import { SHUTDOWN_MARGIN_MS } from '../../src/main.ts';
import { bullPrefix } from '../../src/store/keys.ts';
import { startEngine } from '../support/engine.ts';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { spawnConveyor } from '../support/process.ts';
import { freePort, spawnRedis } from '../support/redis-server.ts';

// biome-ignore lint/suspicious/noExplicitAny: manifests are arbitrary YAML, read by path
type Doc = any;

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const prefix = testPrefix(import.meta.url);
afterAll(() => dropPrefix(redisUrl(), prefix));

/** Every document of a YAML file (`<<` merge keys applied, as Compose does); an error or warning fails the test. */
function yamlDocs(path: string): Doc[] {
  return parseAllDocuments(read(path), { merge: true }).map((doc) => {
    expect(doc.errors, `${path}: ${doc.errors.join('; ')}`).toEqual([]);
    expect(doc.warnings, `${path}: ${doc.warnings.join('; ')}`).toEqual([]);
    return doc.toJS();
  });
}

const K8S = 'infra/k8s/';
const k8sFiles = readdirSync(new URL(K8S, root)).filter((f) => f.endsWith('.yaml'));
const kustomization = yamlDocs(`${K8S}kustomization.yaml`)[0];
const k8s: Doc[] = k8sFiles.filter((f) => f !== 'kustomization.yaml').flatMap((f) => yamlDocs(K8S + f));
const compose = yamlDocs('infra/compose.yaml')[0];
const packageJson = JSON.parse(read('package.json')) as { version: string; scripts: Record<string, string> };

const find = (kind: string, name: string): Doc => {
  const found = k8s.find((d) => d.kind === kind && d.metadata?.name === name);
  expect(found, `${kind} ${name} in infra/k8s`).toBeDefined();
  return found;
};
const api = find('Deployment', 'conveyor-api');
const worker = find('Deployment', 'conveyor-worker');
const container = (deployment: Doc): Doc => deployment.spec.template.spec.containers[0];

/** The environment a Deployment's Conveyor container gets: its ConfigMaps' data, then its env. */
function k8sEnv(deployment: Doc): Record<string, string> {
  const c = container(deployment);
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) Object.assign(env, find('ConfigMap', from.configMapRef.name).data);
  for (const e of c.env ?? []) env[e.name] = e.value ?? '';
  return env;
}

/** Compose's `environment:` as a map (it may also be a list of `NAME=value`). */
function composeEnv(service: Doc): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return env;
  return Object.fromEntries(
    env.map((line: string) => [line.split('=')[0], line.split('=').slice(1).join('=')]),
  );
}

/** The Dockerfile's stages: each `FROM … AS name` with its instructions (continuations joined). */
function dockerStages(text: string): Array<{ from: string; name?: string; lines: string[] }> {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Array<{ from: string; name?: string; lines: string[] }> = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1]!, name: from[2], lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}
const stages = dockerStages(read('infra/Dockerfile'));
const runtime = stages.at(-1)!;
const dockerEnv = Object.fromEntries(
  runtime.lines
    .filter((l) => /^ENV\s/.test(l))
    .flatMap((l) => [...l.slice(4).matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);

/**
 * The configuration a container gets from `env` over the image's ENV. Files are left out (they
 * live in the pod's secret volume, checked on their own), as are compose's `${VAR:?…}`: the user's.
 */
function configOf(env: Record<string, string>) {
  const values = Object.entries({ ...dockerEnv, ...env }).filter(
    ([k, v]) => !k.endsWith('_FILE') && !v.includes('${'),
  );
  return loadConfig(Object.fromEntries(values));
}

/** Variables a manifest may give Conveyor's container besides the configuration's own. */
const DOCUMENTED = new Set(['NODE_ENV']);
/** The secret's keys, as docs/scaling.md tells users to create them. */
const secretKeys = [...read('docs/scaling.md').matchAll(/--from-literal=([a-z-]+)=/g)].map((m) => m[1]!);

/** Conveyor's services in the compose file: those built from infra/Dockerfile. */
const composeConveyor = Object.entries(compose.services as Record<string, Doc>).filter(
  ([, s]) => s.build?.dockerfile === 'infra/Dockerfile',
);

describe('infra/ manifests against the code', () => {
  it('every Kubernetes manifest is listed in the kustomization, and each resource names itself', () => {
    expect([...kustomization.resources].sort()).toEqual(
      k8sFiles.filter((f) => f !== 'kustomization.yaml').sort(),
    );
    for (const doc of k8s) {
      expect(doc.apiVersion, JSON.stringify(doc).slice(0, 80)).toMatch(/\w/);
      expect(doc.metadata?.name, doc.kind).toMatch(/^[a-z0-9-]+$/);
    }
    expect(composeConveyor.map(([name]) => name).sort()).toEqual(['api', 'worker']);
  });

  it('every variable given to Conveyor is one the configuration reads, with a value it accepts', () => {
    const sets: Array<[string, Record<string, string>]> = [
      ['Dockerfile', dockerEnv],
      ['k8s api', k8sEnv(api)],
      ['k8s worker', k8sEnv(worker)],
      ...composeConveyor.map(
        ([name, s]) => [`compose ${name}`, composeEnv(s)] as [string, Record<string, string>],
      ),
    ];
    const known = new Set([...CONFIG_VARIABLES, ...DOCUMENTED]);
    for (const [where, env] of sets) {
      for (const name of Object.keys(env)) expect(known.has(name), `${where} sets ${name}`).toBe(true);
      expect(() => configOf(env), where).not.toThrow();
    }
  });

  it('credential files are read from the mounted secret, by keys the docs tell users to create', () => {
    expect(secretKeys.sort()).toEqual(['api-tokens', 'redis-password', 'secret-key']);
    for (const deployment of [api, worker]) {
      const c = container(deployment);
      const volumes = deployment.spec.template.spec.volumes as Doc[];
      for (const [name, path] of Object.entries(k8sEnv(deployment)).filter(([k]) => k.endsWith('_FILE'))) {
        const mount = (c.volumeMounts as Doc[]).find((m) => path.startsWith(`${m.mountPath}/`));
        expect(mount, `${deployment.metadata.name}: ${name}=${path} is on no mount`).toBeDefined();
        const secret = volumes.find((v) => v.name === mount.name)?.secret;
        expect(secret?.secretName).toBe('conveyor-secrets');
        const file = path.slice(mount.mountPath.length + 1);
        const key = secret.items ? secret.items.find((i: Doc) => i.path === file)?.key : file;
        expect(secretKeys, `${deployment.metadata.name}: ${name}`).toContain(key);
      }
      // 0440 (decimal 288): the conveyor user reads the files through the pod's fsGroup.
      const secretVolume = volumes.find((v) => v.secret);
      expect(secretVolume.secret.defaultMode).toBe(0o440);
      expect(deployment.spec.template.spec.securityContext.fsGroup).toBe(10001);
    }
    // Every key any manifest reads from a secret (env, volume items, KEDA's authentication).
    for (const m of JSON.stringify(k8s).matchAll(/"key":"([^"]+)"/g)) {
      expect(secretKeys, `a manifest reads the secret key ${m[1]}`).toContain(m[1]);
    }
    // The workers do not get the API tokens.
    expect(JSON.stringify(worker)).not.toContain('api-tokens');
  });

  it('one image for the API and the workers, tagged with the package version', () => {
    expect(container(api).image).toBe(`conveyor:${packageJson.version}`);
    expect(container(worker).image).toBe(container(api).image);
    for (const [name, s] of composeConveyor) expect(s.image, name).toBe(container(api).image);
  });

  it('ports and probes are the ones the processes listen on and the routes they serve', async () => {
    const apiPort = configOf(k8sEnv(api)).PORT;
    const healthPort = configOf(k8sEnv(worker)).WORKER_HEALTH_PORT;
    expect(configOf(k8sEnv(worker)).WORKER_HEALTH_HOST).toBe('0.0.0.0');
    expect(configOf(k8sEnv(api)).HOST).toBe('0.0.0.0');
    const expose = runtime.lines
      .find((l) => l.startsWith('EXPOSE'))!
      .split(/\s+/)
      .slice(1)
      .map(Number);
    expect(expose.sort()).toEqual([apiPort, healthPort].sort());

    const probes = (deployment: Doc, port: number) => {
      const c = container(deployment);
      const named = new Map((c.ports as Doc[]).map((p) => [p.name, p.containerPort]));
      expect([...named.values()]).toEqual([port]);
      const all = ['readinessProbe', 'livenessProbe', 'startupProbe'].map((k) => c[k]);
      for (const probe of all) expect(named.get(probe.httpGet.port) ?? probe.httpGet.port).toBe(port);
      // Liveness never depends on Redis: a Redis outage must not restart every pod.
      expect(c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(c.readinessProbe.httpGet.path).toBe('/readyz');
      return all.map((probe) => probe.httpGet.path as string);
    };
    const apiPaths = probes(api, apiPort);
    const workerPaths = probes(worker, healthPort!);

    // The Services reach those ports, and select the pods they are for.
    for (const doc of k8s.filter((d) => d.kind === 'Service')) {
      const target = k8s.find(
        (d) =>
          d.kind !== 'Service' &&
          d.spec?.template?.metadata?.labels?.['app.kubernetes.io/name'] ===
            doc.spec.selector['app.kubernetes.io/name'],
      );
      expect(target, `Service ${doc.metadata.name} selects no pod`).toBeDefined();
      const ports = (target.spec.template.spec.containers[0].ports as Doc[]).map((p) => p.name);
      for (const p of doc.spec.ports) expect(ports, `Service ${doc.metadata.name}`).toContain(p.targetPort);
    }
    // Compose publishes the API's port.
    const composeApi = compose.services.api;
    expect(composeApi.ports.map((p: string) => Number(p.split(':').at(-1)))).toEqual([
      configOf(composeEnv(composeApi)).PORT,
    ]);
    expect(configOf(composeEnv(compose.services.worker)).WORKER_HEALTH_PORT).toBe(healthPort);

    // The real routes answer those paths: the API app, and a worker's health port.
    const engine = await startEngine(redisUrl(), prefix, { worker: false });
    try {
      for (const path of apiPaths) expect((await engine.request('GET', path)).status, path).toBe(200);
    } finally {
      await engine.close();
    }
    // A real worker process with its health port on (local steps only, a workspace dir of its own).
    const port = await freePort();
    const workspaces = mkdtempSync(join(tmpdir(), 'conveyor-manifests-'));
    const workerProcess = spawnConveyor('worker', {
      REDIS_URL: redisUrl(),
      CONVEYOR_PREFIX: prefix,
      WORKER_EXECUTORS: 'local',
      WORKER_HEALTH_PORT: String(port),
      WORKER_WORKSPACE_DIR: workspaces,
    });
    try {
      await workerProcess.line(/worker ready/);
      for (const path of workerPaths) {
        // /readyz turns 200 once the health port's own Redis connection is up.
        await expect
          .poll(async () => (await fetch(`http://127.0.0.1:${port}${path}`)).status, { timeout: 10_000 })
          .toBe(200);
      }
      // The image's HEALTHCHECK script, against the same port (it checks every port set).
      const check = (env: Record<string, string>) =>
        promisify(execFile)(process.execPath, ['infra/healthcheck.mjs'], {
          env: { PATH: process.env.PATH, ...env },
        });
      await check({ PORT: String(port), WORKER_HEALTH_PORT: String(port) });
      await workerProcess.stop();
      await expect(check({ PORT: String(port) })).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await workerProcess.stop();
      rmSync(workspaces, { recursive: true, force: true });
    }
  });

  it('the Dockerfile builds in one stage and runs dist/ as a non-root user in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => s.name === 'build')!;
    expect(build.lines).toContain('RUN npm ci --no-audit --no-fund');
    expect(build.lines).toContain('RUN npm run build');
    // What `npm run build` needs is in the build stage.
    const copied = (stage: typeof build) =>
      stage.lines
        .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
        .flatMap((l) => l.split(/\s+/).slice(1, -1));
    const buildScript = packageJson.scripts.build!.split(' ')[1]!;
    for (const needed of ['tsconfig.json', 'tsconfig.build.json', buildScript, 'src', 'bin']) {
      expect(
        copied(build).some((c) => needed === c || needed.startsWith(`${c}/`)),
        needed,
      ).toBe(true);
    }
    for (const source of [...copied(build), ...copied(runtime)])
      expect(existsSync(new URL(source, root)), source).toBe(true);

    // The runtime stage: production dependencies, the compiled dist/, no sources.
    expect(runtime.lines.some((l) => /^RUN npm ci --omit=dev\b/.test(l))).toBe(true);
    expect(runtime.lines).toContain('COPY --from=build /app/dist ./dist');
    expect(copied(runtime).filter((c) => c === 'src' || c.startsWith('src/') || c.endsWith('.ts'))).toEqual(
      [],
    );
    const user = runtime.lines
      .filter((l) => l.startsWith('USER '))
      .at(-1)
      ?.split(/\s+/)[1];
    expect(user).toMatch(/^[1-9]\d*$/); // numeric and not 0: Kubernetes' runAsNonRoot can check it
    for (const d of [api, worker]) expect(d.spec.template.spec.securityContext.runAsUser).toBe(Number(user));
    const installed = runtime.lines.find((l) => l.includes('apt-get install'))!.split(/\s+/);
    for (const pkg of ['bubblewrap', 'openssh-client', 'util-linux']) expect(installed).toContain(pkg);
    const healthcheck = runtime.lines.find((l) => l.startsWith('HEALTHCHECK'))!;
    const script = /"(infra\/[\w.-]+\.mjs)"/.exec(healthcheck)?.[1];
    expect(copied(runtime).some((c) => c === script)).toBe(true);
    expect(runtime.lines).toContain('ENTRYPOINT ["node", "bin/conveyor.mjs"]');
    // The build context never carries local state or credentials.
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['.env', 'node_modules', 'dist', '.git', '.conveyor'])
      expect(ignored).toContain(entry);
  });

  it('grace periods outlast the worker shutdown: the grace for running steps, then the hand-back', () => {
    const grace = configOf(k8sEnv(worker)).WORKER_SHUTDOWN_GRACE_MS;
    const needed = grace + SHUTDOWN_MARGIN_MS;
    expect(worker.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(needed);
    const composeWorker = compose.services.worker;
    const composeGrace = configOf(composeEnv(composeWorker)).WORKER_SHUTDOWN_GRACE_MS;
    const stop = /^(\d+)s$/.exec(composeWorker.stop_grace_period)!;
    expect(Number(stop[1]) * 1000).toBeGreaterThanOrEqual(composeGrace + SHUTDOWN_MARGIN_MS);
    // Rollouts and drains take workers one at a time, without dropping below the running count.
    expect(worker.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const budgets = k8s.filter((d) => d.kind === 'PodDisruptionBudget');
    const labels = (d: Doc) => d.spec.template.metadata.labels['app.kubernetes.io/name'];
    for (const target of [api, worker]) {
      expect(
        budgets.some((b) => b.spec.selector.matchLabels['app.kubernetes.io/name'] === labels(target)),
        `a PodDisruptionBudget for ${target.metadata.name}`,
      ).toBe(true);
    }
  });

  it('compose: workers scale with --scale, and the demo SSH host is the inventory it mounts', () => {
    const w = compose.services.worker;
    expect(w.ports).toBeUndefined();
    expect(w.container_name).toBeUndefined();
    for (const [, s] of composeConveyor) expect(Object.keys(s.depends_on)).toContain('redis');
    const inventory = compose.services.api.volumes.find((v: string) => v.includes('inventory'));
    const [file, mountPath] = inventory.split(':');
    expect(composeEnv(compose.services.api).CONVEYOR_INVENTORY).toBe(mountPath);
    expect(composeEnv(w).CONVEYOR_INVENTORY).toBe(mountPath);
    const hosts = parseInventory(read(`infra/${file.replace(/^\.\//, '')}`)).hosts;
    const sshd = compose.services.sshd;
    for (const host of Object.values(hosts)) {
      expect(compose.services[host.address], `inventory host address ${host.address}`).toBe(sshd);
      expect(sshd.build.dockerfile_inline).toContain(`EXPOSE ${host.port}`);
      if (host.auth.type === 'password') expect(Object.keys(composeEnv(sshd))).toContain(host.auth.secret);
    }
  });

  it('Redis never evicts and keeps an append-only file, in both Redis configurations (a real redis-server reads it)', async () => {
    const directives = (text: string): Record<string, string> =>
      Object.fromEntries(
        text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => [l.split(/\s+/)[0], l.split(/\s+/).slice(1).join(' ')]),
      );
    const file = directives(read('infra/redis.conf'));
    expect(file).toMatchObject({ 'maxmemory-policy': 'noeviction', appendonly: 'yes' });
    const k8sRedis = find('ConfigMap', 'conveyor-redis-config');
    expect(directives(k8sRedis.data['redis.conf'])).toEqual(file);
    expect(compose.services.redis.volumes[0]).toMatch(/^\.\/redis\.conf:/);
    const redisArgs = container(find('StatefulSet', 'conveyor-redis')).args as string[];
    expect(redisArgs[0]).toBe('/etc/redis/redis.conf');

    // The file as redis-server reads it (spawnRedis's defaults come first; the file's lines are
    // passed as the same options so they win), then asked back with CONFIG GET.
    const redis = await spawnRedis({
      args: Object.entries(file).flatMap(([k, v]) => [`--${k}`, ...v.split(' ')]),
    });
    const client = new Redis(redis.url);
    try {
      expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    } finally {
      client.disconnect();
      await redis.stop();
    }
  });

  it('KEDA scales the worker Deployment on the lists where BullMQ keeps its queues’ jobs', async () => {
    const scaled = k8s.find((d) => d.kind === 'ScaledObject')!;
    expect(scaled.spec.scaleTargetRef.name).toBe(worker.metadata.name);
    const config = configOf(k8sEnv(worker));
    const redisService = find('Service', 'conveyor-redis');
    const stateful = find('StatefulSet', 'conveyor-redis');
    const password = container(stateful).env.find((e: Doc) => e.name === 'REDIS_PASSWORD').valueFrom
      .secretKeyRef;

    const lists = new Map<string, string[]>();
    for (const trigger of scaled.spec.triggers) {
      expect(trigger.type).toBe('redis');
      // KEDA runs in its own namespace: the Service by its full name and port.
      expect(trigger.metadata.address).toBe(
        `${redisService.metadata.name}.${kustomization.namespace}.svc:${redisService.spec.ports[0].port}`,
      );
      expect(Number(trigger.metadata.listLength)).toBe(config.WORKER_CONCURRENCY);
      const auth = find('TriggerAuthentication', trigger.authenticationRef.name);
      expect(auth.spec.secretTargetRef).toEqual([
        { parameter: 'password', name: password.name, key: password.key },
      ]);
      const m = /^\{([^}]+)\}:([^:]+):(wait|active)$/.exec(trigger.metadata.listName);
      expect(m, trigger.metadata.listName).not.toBeNull();
      expect(m![1]).toBe(config.CONVEYOR_PREFIX);
      lists.set(m![2]!, [...(lists.get(m![2]!) ?? []), m![3]!]);
    }
    // Exactly the step queues this worker consumes (untagged: it has no WORKER_TAGS), each by
    // its waiting and its active jobs.
    const consumed = queueNames().filter((q) => {
      const parsed = parseStepQueue(q);
      return parsed && config.WORKER_EXECUTORS.includes(parsed.executor) && parsed.tags.length === 0;
    });
    expect(config.WORKER_TAGS).toEqual([]);
    expect([...lists.keys()].sort()).toEqual(consumed.sort());
    for (const states of lists.values()) expect(states.sort()).toEqual(['active', 'wait']);

    // On a real Redis, under this test's prefix: a job waiting is in the wait list, and once a
    // BullMQ worker holds it, in the active list.
    const listName = (queue: string, state: string) =>
      scaled.spec.triggers
        .map((t: Doc) => t.metadata.listName as string)
        .find((name: string) => name.endsWith(`:${queue}:${state}`))
        .replace(`{${config.CONVEYOR_PREFIX}}`, bullPrefix(prefix));
    const connection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    const [first] = consumed as [string];
    const queue = new Queue(first, { connection, prefix: bullPrefix(prefix) });
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let taken = () => {};
    const isTaken = new Promise<void>((resolve) => (taken = resolve));
    try {
      await queue.add('step', {});
      expect(await connection.llen(listName(first, 'wait'))).toBe(1);
      const bull = new Worker(
        first,
        async () => {
          taken();
          await held;
        },
        { connection: connection.duplicate(), prefix: bullPrefix(prefix) },
      );
      await isTaken;
      expect(await connection.llen(listName(first, 'wait'))).toBe(0);
      expect(await connection.llen(listName(first, 'active'))).toBe(1);
      release();
      await bull.close();
    } finally {
      release();
      await queue.close();
      connection.disconnect();
    }
  });
});

/**
 * The production build: `npm run build` compiles src/ into a dist/ that runs on its own, laid out
 * as the Docker image's runtime stage is (bin/, dist/, package files and node_modules, no src/,
 * so nothing can fall back to tsx); and the freshness rule that picks dist/ or the sources.
 */
import { execFile, spawn } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildState, STAMP } from '../../bin/build-state.mjs';
import { dropPrefix, redisUrl, testPrefix } from '../support/prefix.ts';
import { freePort } from '../support/redis-server.ts';

const repo = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'conveyor-build-'));
const prefix = testPrefix(import.meta.url);
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
  await dropPrefix(redisUrl(), prefix);
});

/** Every file under `root`, relative to it. */
function files(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** Polls `url` until it answers (any status), for at most `ms`. */
async function firstAnswer(url: string, ms: number): Promise<Response> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fetch(url);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('npm run build', () => {
  it('compiles src/ to a dist/ that starts without the sources and serves the API', async () => {
    const image = join(dir, 'image');
    mkdirSync(image);
    await promisify(execFile)('npm', ['run', 'build', '--', '--out-dir', join(image, 'dist')], { cwd: repo });
    const built = files(join(image, 'dist'));
    // Every file of src/ has its compiled or copied counterpart (Lua scripts, the VM's guest
    // runner); launcher.c becomes conveyor-launch (a C compiler is on the test machine).
    const expected = files(join(repo, 'src')).map((f) =>
      f.replace(/\.ts$/, '.js').replace(/(^|\/)launcher\.c$/, '$1conveyor-launch'),
    );
    expect(built.sort()).toEqual([...expected, STAMP].sort());

    cpSync(join(repo, 'bin'), join(image, 'bin'), { recursive: true });
    cpSync(join(repo, 'package.json'), join(image, 'package.json'));
    symlinkSync(join(repo, 'node_modules'), join(image, 'node_modules'));
    expect(buildState(image)).toEqual({ built: true, sources: false, fresh: true });

    const port = await freePort();
    let output = '';
    const child = spawn(process.execPath, [join(image, 'bin/conveyor.mjs'), 'api'], {
      cwd: image,
      env: {
        ...process.env,
        REDIS_URL: redisUrl(),
        CONVEYOR_PREFIX: prefix,
        PORT: String(port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      child.kill('SIGTERM');
      await exited;
    });
    const health = await firstAnswer(`http://127.0.0.1:${port}/healthz`, 30_000);
    expect(health.status, output).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    // A submission goes through the submission thread, which loads its own compiled module.
    const run = await fetch(`http://127.0.0.1:${port}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: 'workflow:\n  name: built\n  steps:\n    a: { run: echo a }\n',
    });
    expect(run.status, await run.clone().text()).toBe(202);
    expect(output).not.toMatch(/tsx|ERR_/);
  }, 120_000);

  it('counts a build stale once a source, the lock file or a folder is newer than its stamp', () => {
    const root = join(dir, 'checkout');
    mkdirSync(join(root, 'src/store'), { recursive: true });
    mkdirSync(join(root, 'dist'));
    writeFileSync(join(root, 'src/store/a.ts'), '');
    writeFileSync(join(root, 'package-lock.json'), '{}');
    expect(buildState(root)).toEqual({ built: false, sources: true, fresh: false });

    const past = new Date(Date.now() - 60_000);
    const now = new Date();
    for (const path of ['src/store/a.ts', 'src/store', 'src', 'package-lock.json'])
      utimesSync(join(root, path), past, past);
    writeFileSync(join(root, 'dist', STAMP), '{}');
    utimesSync(join(root, 'dist', STAMP), now, now);
    expect(buildState(root).fresh).toBe(true);

    const later = new Date(now.getTime() + 1000);
    utimesSync(join(root, 'src/store/a.ts'), later, later);
    expect(buildState(root).fresh).toBe(false);
    utimesSync(join(root, 'src/store/a.ts'), past, past);
    utimesSync(join(root, 'package-lock.json'), later, later);
    expect(buildState(root).fresh).toBe(false);
    utimesSync(join(root, 'package-lock.json'), past, past);
    utimesSync(join(root, 'src/store'), later, later); // a file deleted from it
    expect(buildState(root).fresh).toBe(false);
  });
});

/**
 * The lean spawner on its own (src/workers/local/spawner.ts), with real processes: every byte of
 * a large output arrives, in order, through the back-pressured channel; kills reach the process
 * group; a launch that cannot start is a clear error; an oversized spawner is retired (it
 * finishes its steps, then exits) while a new one takes the next steps; `close` ends them all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StepError } from '../../src/errors.ts';
import { findExecutable } from '../../src/workers/executables.ts';
import { Spawner } from '../../src/workers/local/spawner.ts';
import { eventually, isAlive } from '../support/processes.ts';

const spawners: Spawner[] = [];
afterEach(async () => {
  await Promise.all(spawners.splice(0).map((s) => s.close()));
});

async function spawner(options: { recycleMb?: number; sizeCheckMs?: number } = {}): Promise<Spawner> {
  const s = new Spawner({ setpriv: await findExecutable('setpriv'), ...options });
  spawners.push(s);
  return s;
}

const sh = (command: string) => ({
  file: '/bin/sh',
  args: ['-c', command],
  cwd: '/',
  env: { PATH: '/usr/bin:/bin' },
});

describe('the spawner', () => {
  it('delivers every byte of a 30 MB output, stdout and stderr apart', async () => {
    const s = await spawner();
    let out = 0;
    let err = '';
    const child = s.spawn(sh('head -c 30000000 /dev/zero; echo oops >&2'), (stream, chunk) => {
      if (stream === 'stdout') {
        expect(chunk.every((b) => b === 0)).toBe(true);
        out += chunk.length;
      } else err += chunk.toString();
    });
    expect(await child.exited).toEqual({ exitCode: 0, signal: null });
    expect(out).toBe(30_000_000);
    expect(err).toBe('oops\n');
  });

  it("signals the step's whole process group, and reports a launch that cannot start", async () => {
    const s = await spawner();
    let started!: () => void;
    const ready = new Promise<void>((resolve) => {
      started = resolve;
    });
    const child = s.spawn(sh('sleep 30 & echo up; wait'), () => started());
    await ready;
    child.kill('SIGTERM');
    expect(await child.exited).toEqual({ exitCode: null, signal: 'SIGTERM' });

    const missing = s.spawn({ ...sh(''), file: '/nonexistent/launcher' }, () => {});
    const error = await missing.exited.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StepError);
    expect(error).toMatchObject({ code: 'spawn_failed', retriable: false });
    expect((error as Error).message).toContain('ENOENT');
  });

  it('retires an oversized spawner: it finishes its steps and exits, a new one takes the next', async () => {
    const s = await spawner({ recycleMb: 1, sizeCheckMs: 0 });
    let log = '';
    let started!: () => void;
    const up = new Promise<void>((resolve) => {
      started = resolve;
    });
    const first = s.spawn(sh('echo up; sleep 1; echo first'), (_, chunk) => {
      log += chunk.toString();
      started();
    });
    const old = s.pid!;
    // Its first step's output proves the spawner is up (Node.js, past 1 MB), not still starting.
    await up;
    const second = s.spawn(sh('echo second'), () => {});
    expect(s.pid).not.toBe(old);
    expect(isAlive(old)).toBe(true);
    expect(await second.exited).toEqual({ exitCode: 0, signal: null });
    expect(await first.exited).toEqual({ exitCode: 0, signal: null });
    expect(log).toBe('up\nfirst\n');
    expect(await eventually(() => !isAlive(old), 5000)).toBe(true);

    const current = s.pid!;
    await s.close();
    expect(await eventually(() => !isAlive(current), 5000)).toBe(true);
    expect(() => s.spawn(sh('true'), () => {})).toThrow(/closed/);
  });
});

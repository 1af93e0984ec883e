/**
 * The warm pool: VMs wait ready, each serves exactly one step, nothing passes between steps,
 * dead idle VMs are replaced, the pool grows with demand and shrinks back, and close() leaves
 * no process behind.
 */
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProcessVmDriver, type VmDriver, VmExecutor } from '../../src/workers/vm/index.ts';
import { fnStep, pidsWith, Recorder } from './vm-harness.ts';

/** Leaves a mark in every place a reused VM would still show it, and reports what it found. */
const PROBE = `import { existsSync, writeFileSync } from 'node:fs';
export default async () => {
  const seen = { global: globalThis.__conveyorMark ?? null, tmp: existsSync('/tmp/mark'), home: existsSync('mark') };
  globalThis.__conveyorMark = 'used';
  writeFileSync('/tmp/mark', 'x');
  writeFileSync('mark', 'x');
  return { ...seen, origin: performance.timeOrigin };
}`;

/** Says it is in, then holds its VM until the step is aborted. */
const HOLD = `export default async (ctx) => {
  ctx.log('in');
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
}`;

let tmpDir = '';
let executor: VmExecutor;

beforeAll(async () => {
  tmpDir = await mkdtemp(join(tmpdir(), 'vm-pool-'));
  // Guests run as uids of their own and must be able to pass through (as under /tmp itself).
  await chmod(tmpDir, 0o711);
  // A fixed size here (poolMax = poolSize): the counts below are exact.
  executor = new VmExecutor({ poolSize: 2, poolMax: 2, tmpDir });
});

afterAll(async () => {
  await executor.close();
  await rm(tmpDir, { recursive: true, force: true });
});

describe('warm pool', () => {
  it('fills up ahead of any step', async () => {
    await executor.whenPoolFull();
    expect(executor.poolStats()).toMatchObject({ idle: 2, taken: 0 });
  });

  it('hands each warm VM to exactly one step, one after another', async () => {
    const origins = new Set<number>();
    for (let i = 0; i < 4; i++) {
      await executor.whenPoolFull();
      const taken = executor.poolStats()!.taken;
      const result = await executor.run(fnStep(PROBE), new Recorder());
      expect(executor.poolStats()!.taken).toBe(taken + 1);
      expect(result.outputs).toMatchObject({ global: null, tmp: false, home: false });
      origins.add(result.outputs.origin as number);
    }
    expect(origins.size).toBe(4);
  });

  it('never shares a VM between concurrent steps', async () => {
    await executor.whenPoolFull();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => executor.run(fnStep(PROBE), new Recorder())),
    );
    for (const r of results) expect(r.outputs).toMatchObject({ global: null, tmp: false, home: false });
    expect(new Set(results.map((r) => r.outputs.origin)).size).toBe(5);
  });

  it('starts a cold VM for a step whose vm options differ from the pool profile', async () => {
    await executor.whenPoolFull();
    const taken = executor.poolStats()!.taken;
    const result = await executor.run(fnStep(PROBE, { memoryMb: 96 }), new Recorder());
    expect(result.outputs).toMatchObject({ global: null });
    expect(executor.poolStats()!.taken).toBe(taken);
  });

  it('replaces an idle VM that dies', async () => {
    await executor.whenPoolFull();
    const started = executor.poolStats()!.started;
    const victim = pidsWith(tmpDir)[0];
    expect(victim).toBeDefined();
    process.kill(victim!, 'SIGKILL');
    // The pool exposes no "replaced" event; poll its counters.
    await vi.waitFor(() => expect(executor.poolStats()).toMatchObject({ started: started + 1, idle: 2 }), {
      timeout: 10_000,
    });
  });

  it('grows toward the steps in flight, in parallel, and shrinks back when they stop', async () => {
    // The real driver, with a count of the starts under way at once.
    const real = new ProcessVmDriver({ tmpDir });
    let starting = 0;
    let mostAtOnce = 0;
    const driver: VmDriver = {
      name: real.name,
      capabilities: () => real.capabilities(),
      close: () => real.close(),
      start: async (spec) => {
        mostAtOnce = Math.max(mostAtOnce, ++starting);
        try {
          return await real.start(spec);
        } finally {
          starting--;
        }
      },
    };
    const elastic = new VmExecutor({ poolSize: 1, poolMax: 4, poolIdleMs: 300, tmpDir, driver });
    try {
      await elastic.whenPoolFull();
      expect(elastic.poolStats()).toMatchObject({ idle: 1, target: 1 });
      // Four steps held in flight at once: the target follows them.
      const recorders = Array.from({ length: 4 }, () => new Recorder());
      const held = recorders.map((r) => elastic.run(fnStep(HOLD), r));
      await Promise.all(recorders.map((r) => r.waitFor(/in/)));
      expect(elastic.poolStats()!.target).toBe(4);
      await elastic.whenPoolFull();
      expect(elastic.poolStats()).toMatchObject({ idle: 4 });
      expect(mostAtOnce).toBeGreaterThan(1);
      for (const r of recorders) r.abort(new Error('done'));
      await Promise.all(held);
      // Every VM that served a step was fresh, the ready ones too.
      const results = await Promise.all(
        Array.from({ length: 4 }, () => elastic.run(fnStep(PROBE), new Recorder())),
      );
      for (const r of results) expect(r.outputs).toMatchObject({ global: null, tmp: false, home: false });
      await vi.waitFor(
        () => {
          expect(elastic.poolStats()).toMatchObject({ target: 1, idle: 1, starting: 0 });
          expect(elastic.poolStats()!.shrunk).toBeGreaterThan(0);
        },
        { timeout: 10_000 },
      );
    } finally {
      await elastic.close();
    }
  });

  it('leaves no process and no directory behind on close', async () => {
    const existing = await readdir(tmpDir);
    const other = new VmExecutor({ poolSize: 2, tmpDir });
    await other.whenPoolFull();
    const [base] = (await readdir(tmpDir)).filter((name) => !existing.includes(name));
    expect(base).toBeDefined();
    const path = join(tmpDir, base!);
    expect(pidsWith(path).length).toBeGreaterThan(0);
    await other.close();
    expect(pidsWith(path)).toEqual([]);
    expect(await readdir(tmpDir)).not.toContain(base);
  });
});

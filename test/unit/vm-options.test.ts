/** VM options, limits and sandbox arguments: pure functions, checked against what they promise. */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { heapFlags, rlimitArgs } from '../../src/workers/vm/limits.ts';
import { resolveExecutorOptions } from '../../src/workers/vm/options.ts';
import { bwrapArgs } from '../../src/workers/vm/sandbox.ts';
import { DEFAULT_STEP_OPTIONS, profileKey, resolveStepOptions } from '../../src/workers/vm/step-options.ts';

describe('step options', () => {
  it('fills defaults and ignores keys the engine owns', () => {
    expect(resolveStepOptions({ memoryMb: 256, timeout: '5s' }, DEFAULT_STEP_OPTIONS)).toEqual({
      ...DEFAULT_STEP_OPTIONS,
      memoryMb: 256,
    });
  });

  it('reads numbers and booleans that expressions turned into strings', () => {
    const o = resolveStepOptions(
      { memoryMb: '256', network: 'true', sandbox: 'false' },
      DEFAULT_STEP_OPTIONS,
    );
    expect(o).toMatchObject({ memoryMb: 256, network: true, sandbox: false });
    expect(() => resolveStepOptions({ memoryMb: '256MB' }, DEFAULT_STEP_OPTIONS)).toThrow(/vm\.memoryMb/);
  });

  it('rounds CPU seconds up and sorts and dedupes modules', () => {
    const o = resolveStepOptions(
      { cpuSeconds: 1.2, modules: ['yaml', 'hono', 'yaml'] },
      DEFAULT_STEP_OPTIONS,
    );
    expect(o.cpuSeconds).toBe(2);
    expect(o.modules).toEqual(['hono', 'yaml']);
  });

  it('lists every problem, naming the field', () => {
    expect(() =>
      resolveStepOptions(
        { memoryMb: 8, pids: 'many', network: 'yes', modules: ['../etc'] },
        DEFAULT_STEP_OPTIONS,
      ),
    ).toThrow(/vm\.memoryMb.*vm\.pids.*vm\.network.*vm\.modules/);
  });

  it('gives equal profile keys exactly to interchangeable options', () => {
    const a = resolveStepOptions({ modules: ['b', 'a'] }, DEFAULT_STEP_OPTIONS);
    const b = resolveStepOptions({ modules: ['a', 'b'] }, DEFAULT_STEP_OPTIONS);
    expect(profileKey(a)).toBe(profileKey(b));
    expect(profileKey(a)).not.toBe(profileKey({ ...a, network: true }));
  });
});

describe('executor options', () => {
  it('spreads defaults under the caller values', () => {
    const o = resolveExecutorOptions({ poolSize: 0 });
    expect(o).toMatchObject({ poolSize: 0, sandbox: true, killGraceMs: 250, cgroups: 'auto' });
    expect(o.poolProfile).toEqual(o.stepDefaults);
  });

  it('rejects bad values with every issue listed', () => {
    try {
      resolveExecutorOptions({
        poolSize: -1,
        killGraceMs: 5000,
        cgroups: 'maybe' as 'auto',
        stepDefaults: { memoryMb: 1 },
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toEqual([
        'poolSize',
        'killGraceMs',
        'cgroups',
        'stepDefaults',
      ]);
    }
  });
});

describe('limits', () => {
  it('keeps the heap inside the VM memory with room for the runtime', () => {
    expect(heapFlags(128)).toEqual(['--max-old-space-size=96', '--max-semi-space-size=2']);
    expect(heapFlags(32)).toEqual(['--max-old-space-size=16', '--max-semi-space-size=1']);
  });

  it('uses rlimits for memory and processes only without a cgroup', () => {
    const options = { ...DEFAULT_STEP_OPTIONS, cpuSeconds: 5 };
    const fenced = rlimitArgs(options, { cgroup: true, ownUid: true, maxFileMb: 1 });
    expect(fenced).toContain('--cpu=5:6');
    expect(fenced).toContain('--core=0');
    expect(fenced.some((a) => a.startsWith('--data') || a.startsWith('--nproc'))).toBe(false);
    const bare = rlimitArgs(options, { cgroup: false, ownUid: true, maxFileMb: 1 });
    expect(bare).toContain(`--data=${(128 + 64) * 2 ** 20}`);
    expect(bare).toContain('--nproc=64');
    // Without a uid of its own, RLIMIT_NPROC would count the worker's processes too.
    expect(
      rlimitArgs(options, { cgroup: false, ownUid: false, maxFileMb: 1 }).some((a) =>
        a.startsWith('--nproc'),
      ),
    ).toBe(false);
  });
});

describe('sandbox arguments', () => {
  const mounts = { dir: '/tmp/base/vm-1', readOnly: ['/app/runner.mjs'], network: false, tmpBytes: 1024 };

  it('unshares every namespace, the network too, and ends with a read-only root', () => {
    const args = bwrapArgs(['--ro-bind', '/usr', '/usr'], mounts);
    for (const flag of [
      '--unshare-user',
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-net',
    ]) {
      expect(args).toContain(flag);
    }
    expect(args).toContain('--die-with-parent');
    expect(args.join(' ')).toContain('--bind /tmp/base/vm-1 /tmp/base/vm-1');
    expect(args.join(' ')).toContain('--ro-bind /app/runner.mjs /app/runner.mjs');
    expect(args.join(' ')).toContain('--size 1024 --tmpfs /tmp');
    expect(args.slice(-5)).toEqual(['--remount-ro', '/', '--chdir', '/tmp/base/vm-1', '--']);
  });

  it('keeps the host network only when asked', () => {
    expect(bwrapArgs([], { ...mounts, network: true })).not.toContain('--unshare-net');
  });
});

/**
 * The guest runner's V8 startup snapshot: function VMs start from it once it is built, behave as
 * from the plain script (env, fences, warnings, source-mapped stacks, a private directory with
 * nothing but the module), and a blob that no longer loads is dropped so VMs start without it.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProcessVmDriver, VmExecutor } from '../../src/workers/vm/index.ts';
import { fnStep, pidsWith, Recorder } from './vm-harness.ts';

let tmpDir = '';
let driver: ProcessVmDriver;
let executor: VmExecutor;

/** The V8 flag sets the driver has blobs for, and their state. */
const states = () => Object.values(driver.snapshotStates());

beforeAll(async () => {
  tmpDir = await mkdtemp(join(tmpdir(), 'vm-snapshot-'));
  await chmod(tmpDir, 0o711);
  driver = new ProcessVmDriver({ tmpDir });
  executor = new VmExecutor({ poolSize: 1, poolMax: 1, tmpDir, driver });
});

afterAll(async () => {
  await executor.close();
  await rm(tmpDir, { recursive: true, force: true });
});

/** Command lines of the Node.js processes of VMs below `tmpDir` (not their bwrap launchers). */
async function guestCommandLines(): Promise<string[][]> {
  const lines: string[][] = [];
  for (const pid of pidsWith(tmpDir)) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0] === process.execPath && argv.includes('--experimental-permission')) lines.push(argv);
  }
  return lines;
}

describe('runner snapshot', () => {
  it('is built before the pool fills, and warm VMs start from it', async () => {
    await executor.whenPoolFull();
    expect(states()).toEqual(['ready']);
    const guests = await guestCommandLines();
    expect(guests.length).toBe(1);
    expect(guests[0]).toContain('--snapshot-blob');
    // The runner script itself is not even readable to a guest started from the blob.
    expect(guests[0]!.some((arg) => arg.includes('guest-runner'))).toBe(false);
  });

  it('runs a function exactly as the plain runner does: env, permissions, warnings, stacks', async () => {
    await executor.whenPoolFull();
    const log = new Recorder();
    const result = await executor.run(
      fnStep(
        `import { readdirSync, readFileSync } from 'node:fs';
export default async (ctx) => {
  process.emitWarning('mind the gap', 'DeprecationWarning');
  let denied = '';
  try { readFileSync('/etc/hostname'); } catch (err) { denied = err.code; }
  ctx.log('env', Object.keys(process.env).sort().join(','));
  ctx.log('home', readdirSync('.').join(',') || '(empty)');
  return { denied, value: ctx.inputs.n * 2 };
};`,
        {},
        { context: { inputs: { n: 21 } }, env: { ONLY: 'this' } },
      ),
      log,
    );
    expect(result.outputs).toEqual({ denied: 'ERR_ACCESS_DENIED', value: 42 });
    expect(log.text).toContain('DeprecationWarning: mind the gap');
    expect(log.text).not.toContain('ExperimentalWarning');
    expect(log.text).toMatch(/env CONVEYOR_IDEMPOTENCY_KEY,HOME,ONLY,PATH,TMPDIR\n/);
    // The loader's warm-up module is gone before the function runs; only its own module is there.
    expect(log.text).toContain('home function.mjs\n');

    const thrown = await executor.run(
      fnStep(
        'type N = number;\nconst f = (n: N) => n;\nexport default async () => {\n  throw new Error("at four");\n};',
      ),
      new Recorder(),
    );
    expect(thrown.error?.message).toMatch(/function\.ts:4:/);
  });

  it('is dropped when it no longer loads, and VMs start without it', async () => {
    await executor.whenPoolFull();
    const [guest] = await guestCommandLines();
    const blob = guest![guest!.indexOf('--snapshot-blob') + 1]!;
    // Damage the blob in place (it is read-only; root may still write it).
    await chmod(blob, 0o644);
    await writeFile(blob, 'not a snapshot');
    // The idle VM was started before the damage: it serves this step normally. Its refill is
    // the first start from the damaged blob; it dies before it is ready.
    expect(
      (await executor.run(fnStep('export default async () => ({ ok: 1 })'), new Recorder())).outputs,
    ).toEqual({ ok: 1 });
    await vi.waitFor(() => expect(states()[0]).toMatch(/^failed: it no longer loads/), { timeout: 20_000 });
    await executor.whenPoolFull();
    const result = await executor.run(fnStep('export default async () => ({ ok: 2 })'), new Recorder());
    expect(result.outputs).toEqual({ ok: 2 });
    const guests = await guestCommandLines();
    for (const argv of guests) expect(argv).not.toContain('--snapshot-blob');
  });

  it('is not used when switched off', async () => {
    const plain = new VmExecutor({ poolSize: 1, poolMax: 1, tmpDir, snapshot: false });
    try {
      await plain.whenPoolFull();
      const result = await plain.run(fnStep('export default async () => ({ ok: 3 })'), new Recorder());
      expect(result.outputs).toEqual({ ok: 3 });
      expect((plain.driver as ProcessVmDriver).snapshotStates()).toEqual({});
    } finally {
      await plain.close();
    }
  });
});

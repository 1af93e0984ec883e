/**
 * `vm:` shell steps: the same outputs and events files as every shell executor, a scrubbed
 * environment, and a worker that reads what the guest leaves behind as hostile input.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { cmdStep, isRoot, Recorder } from './vm-harness.ts';

const executor = new VmExecutor({ poolSize: 0 });
let hostDir = '';
const HOST_TEXT = `outside=host-${process.pid}`;

beforeAll(async () => {
  hostDir = await mkdtemp(join(tmpdir(), 'vm-command-'));
  await writeFile(join(hostDir, 'file'), `${HOST_TEXT}\n`);
  await chmod(hostDir, 0o755);
  process.env.VM_TEST_WORKER_ONLY = 'worker-only-value';
});

afterAll(async () => {
  delete process.env.VM_TEST_WORKER_ONLY;
  await rm(hostDir, { recursive: true, force: true });
  await executor.close();
});

describe('vm shell commands', () => {
  it('returns outputs and events written to $CONVEYOR_OUTPUT and $CONVEYOR_EVENTS', async () => {
    const command = [
      'echo "artifact=app.tgz" >> "$CONVEYOR_OUTPUT"',
      'printf "notes<<EOF\\nline 1\\nline 2\\nEOF\\n" >> "$CONVEYOR_OUTPUT"',
      `echo '{"type":"built","payload":{"ok":true}}' >> "$CONVEYOR_EVENTS"`,
      'echo to-stdout; echo to-stderr >&2',
    ].join('\n');
    const ctx = new Recorder();
    const result = await executor.run(cmdStep(command), ctx);
    expect(result).toEqual({
      exitCode: 0,
      signal: null,
      outputs: { artifact: 'app.tgz', notes: 'line 1\nline 2' },
      events: [{ type: 'built', payload: { ok: true } }],
    });
    expect(ctx.text).toContain('to-stdout\n');
    expect(ctx.text).toContain('to-stderr\n');
  });

  it('sees only the environment the step declares, in its own directory', async () => {
    const ctx = new Recorder();
    const step = cmdStep('env; echo "cwd=$(pwd)"; echo "uid=$(id -u)"', {}, { env: { DECLARED: 'yes' } });
    const result = await executor.run(step, ctx);
    expect(result.exitCode).toBe(0);
    expect(ctx.text).toContain('DECLARED=yes');
    expect(ctx.text).toContain('CONVEYOR_IDEMPOTENCY_KEY=run_test:step');
    expect(ctx.text).not.toContain('worker-only-value');
    const cwd = /cwd=(\S+)/.exec(ctx.text)?.[1];
    expect(ctx.text).toContain(`HOME=${cwd}`);
    if (isRoot) expect(ctx.text).not.toMatch(/uid=0\n/);
  });

  it('reports a non-zero exit code as is', async () => {
    const result = await executor.run(
      cmdStep('echo partial=1 >> "$CONVEYOR_OUTPUT"; exit 3'),
      new Recorder(),
    );
    expect(result).toMatchObject({ exitCode: 3, outputs: {} });
    expect(result.error).toBeUndefined();
  });

  it('runs a sandboxed `true`', async () => {
    expect(await executor.run(cmdStep('true'), new Recorder())).toMatchObject({ exitCode: 0 });
  });

  it.each([true, false])(
    'refuses an outputs file that is a symlink to a host file (sandbox %s)',
    async (sandbox) => {
      const step = cmdStep(`ln -s ${join(hostDir, 'file')} "$CONVEYOR_OUTPUT"`, { sandbox });
      const result = await executor.run(step, new Recorder());
      expect(result.error?.code).toBe('bad_output');
      expect(result.error?.message).toContain('symbolic link');
      expect(JSON.stringify(result)).not.toContain(HOST_TEXT);
    },
  );

  it('refuses an outputs file that is a FIFO, without hanging', async () => {
    const result = await executor.run(cmdStep('mkfifo "$CONVEYOR_OUTPUT"'), new Recorder());
    expect(result.error).toMatchObject({
      code: 'bad_output',
      message: expect.stringContaining('not a regular file'),
    });
  });

  it('fails outputs over the cap without reading them whole', async () => {
    const step = cmdStep('head -c 5000000 /dev/zero | tr "\\0" x | sed "s/^/big=/" >> "$CONVEYOR_OUTPUT"');
    const result = await executor.run(step, new Recorder());
    expect(result.error?.code).toBe('output_limit');
  });

  it('fails a malformed outputs line clearly', async () => {
    const result = await executor.run(cmdStep('echo "no equals sign" >> "$CONVEYOR_OUTPUT"'), new Recorder());
    expect(result.error?.code).toBe('bad_output');
  });
});

/**
 * The ssh executor against real sshd: streaming, exit codes, env quoting, outputs and events,
 * cwd, sudo, and what timeout/cancel leave behind on the host (checked with ps).
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepCancelledError, StepTimeoutError } from '../../src/errors.ts';
import { SshExecutor } from '../../src/workers/ssh/index.ts';
import { hasSudo, remoteProcesses, SSH_NOSUDO_USER, type SshdHandle, startSshd } from '../support/sshd.ts';
import { expectNoRemoteProcess, Recorder, sshStep, waitUntil } from './ssh-harness.ts';

let sshd: SshdHandle;
let ex: SshExecutor;
let shared: string;

beforeAll(async () => {
  sshd = await startSshd();
  ex = new SshExecutor({ killGraceMs: 1_000, resolveHost: (name) => sshd.target({ name }) });
  // A directory both this process and the remote user can use (sshd runs on this machine).
  // A directory both this process and the remote user (sshd runs on this machine) can write,
  // world-writable and sticky like /tmp.
  shared = mkdtempSync(join(tmpdir(), 'conveyor-ssh-exec-'));
  chmodSync(shared, 0o1777);
});
afterAll(async () => {
  await ex?.close();
  await sshd?.stop();
  if (shared) rmSync(shared, { recursive: true, force: true });
});

const host = () => sshd.target();

describe('running commands', () => {
  it('streams stdout and stderr while the command runs, and reports the exit code', async () => {
    const flag = join(shared, 'go');
    const ctx = new Recorder();
    const done = ex.run(
      sshStep(
        host(),
        `echo first; echo err >&2; while [ ! -e ${flag} ]; do sleep 0.02; done; echo second; exit 3`,
      ),
      ctx,
    );
    // The command is blocked until the test sees "first": proof that output arrives live.
    await ctx.waitFor(/first\n/);
    expect(ctx.stdout).toBe('first\n');
    writeFileSync(flag, '');
    const result = await done;
    expect(result).toEqual({ exitCode: 3, signal: null, outputs: {}, events: [] });
    expect(ctx.stdout).toBe('first\nsecond\n');
    expect(ctx.stderr).toBe('err\n');
  });

  it('resolves a host name through resolveHost and runs under sh with the right cwd', async () => {
    const ctx = new Recorder();
    const result = await ex.run(sshStep('web-x', 'echo "$0 $(pwd)"', { cwd: '/usr/share' }), ctx);
    expect(result.exitCode).toBe(0);
    expect(ctx.stdout).toBe('sh /usr/share\n');
  });

  it('serves steps that prefetched a host from one lookup, and looks up again once it is stale', async () => {
    const looked: string[] = [];
    const counting = new SshExecutor({
      pool: ex.pool,
      resolveHost: (name) => {
        looked.push(name);
        if (name === 'gone') throw new Error('host gone is not in the inventory');
        return sshd.target({ name });
      },
    });
    counting.prefetch('web-p');
    counting.prefetch('web-p');
    const [a, b] = await Promise.all(
      [1, 2].map(() => counting.run(sshStep('web-p', 'echo ok'), new Recorder())),
    );
    expect([a?.exitCode, b?.exitCode]).toEqual([0, 0]);
    expect(looked).toEqual(['web-p']);
    // Without a prefetch, and after one went stale, a step looks its host up itself.
    await counting.run(sshStep('web-p', 'true'), new Recorder());
    counting.prefetch('web-p');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await counting.run(sshStep('web-p', 'true'), new Recorder());
    expect(looked).toEqual(['web-p', 'web-p', 'web-p', 'web-p']);
    // A failed prefetch is the step's failure, as a failed lookup is.
    counting.prefetch('gone');
    const failed = await counting.run(sshStep('gone', 'true'), new Recorder());
    expect(failed.error?.message).toContain('host gone is not in the inventory');
    await counting.close();
  });

  it('fails clearly on a missing working directory', async () => {
    const result = await ex.run(sshStep(host(), 'pwd', { cwd: '/no/such/dir' }), new Recorder());
    expect(result.exitCode).toBe(1);
    expect(result.error).toMatchObject({ code: 'bad_cwd', retriable: false });
    expect(result.error!.message).toContain('/no/such/dir');
  });

  it('passes env values literally: quotes, ;, $(), backticks, newlines, unicode', async () => {
    const value = 'it\'s; $(touch /tmp/pwned-conveyor) `id` "dq" \\ \n second line $HOME * ~ 🚀\n';
    const ctx = new Recorder();
    const result = await ex.run(
      sshStep(host(), 'printf "%s" "$V"; printf "|%s" "$CONVEYOR_IDEMPOTENCY_KEY"', {
        env: { V: value, OTHER: "'" },
        idempotencyKey: 'run_1:deploy',
      }),
      ctx,
    );
    expect(result.exitCode).toBe(0);
    expect(ctx.stdout).toBe(`${value}|run_1:deploy`);
    expect(existsSync('/tmp/pwned-conveyor')).toBe(false);
  });

  it('keeps the engine-set idempotency key even if the step env names it', async () => {
    const ctx = new Recorder();
    await ex.run(
      sshStep(host(), 'printf %s "$CONVEYOR_IDEMPOTENCY_KEY"', {
        env: { CONVEYOR_IDEMPOTENCY_KEY: 'spoofed' },
        idempotencyKey: 'real',
      }),
      ctx,
    );
    expect(ctx.stdout).toBe('real');
  });

  it('refuses invalid env names before connecting', async () => {
    const result = await ex.run(sshStep(host(), 'true', { env: { 'A-B': 'x' } }), new Recorder());
    expect(result.error).toMatchObject({ code: 'invalid_env', retriable: false });
  });

  it('reads outputs and events back and removes the remote files', async () => {
    const ctx = new Recorder();
    const result = await ex.run(
      sshStep(
        host(),
        [
          'echo "$CONVEYOR_OUTPUT $CONVEYOR_EVENTS"',
          'echo "artifact=app-1.2.tgz" >> "$CONVEYOR_OUTPUT"',
          'printf "notes<<EOF\\nline 1\\nline 2\\nEOF\\n" >> "$CONVEYOR_OUTPUT"',
          `echo '{"type":"artifact.published","payload":{"v":1}}' >> "$CONVEYOR_EVENTS"`,
        ].join('\n'),
      ),
      ctx,
    );
    expect(result).toEqual({
      exitCode: 0,
      signal: null,
      outputs: { artifact: 'app-1.2.tgz', notes: 'line 1\nline 2' },
      events: [{ type: 'artifact.published', payload: { v: 1 } }],
    });
    const [out, events] = ctx.stdout.trim().split(' ') as [string, string];
    expect(out).toMatch(/conveyor-[0-9a-f]+\.out$/);
    // Removed right after the result was sent, off the step's critical path.
    const pid = out.replace(/\.out$/, '.pid');
    await waitUntil(() => ![out, events, pid].some((f) => existsSync(f)), 'the remote temp files to go');
  });

  it('reports outputs over the cap without transferring them, and bad output lines', async () => {
    const big = await ex.run(
      sshStep(host(), 'head -c 5000 /dev/zero | tr "\\0" a | sed "s/^/x=/" >> "$CONVEYOR_OUTPUT"', {
        limits: { maxOutputBytes: 1024 },
      }),
      new Recorder(),
    );
    expect(big.exitCode).toBe(0);
    expect(big.error).toMatchObject({ code: 'output_limit', retriable: false });
    expect(big.error!.message).toContain('5002 bytes');

    const bad = await ex.run(sshStep(host(), 'echo "no equals sign" >> "$CONVEYOR_OUTPUT"'), new Recorder());
    expect(bad.error).toMatchObject({ code: 'bad_output' });
  });

  it('finishes even when a process escapes the step and keeps its stdout open', async () => {
    const started = performance.now();
    const result = await ex.run(sshStep(host(), 'setsid sleep 373737 & echo done'), new Recorder());
    try {
      expect(result.exitCode).toBe(0);
      expect(performance.now() - started).toBeLessThan(6_000);
    } finally {
      for (const p of remoteProcesses('conveyor-ssh', 'sleep 373737')) process.kill(p.pid, 'SIGKILL');
    }
  });

  it('masks step secrets in its own error messages', async () => {
    const secret = 'S3cr3t-in-a-path';
    const result = await ex.run(
      sshStep(host(), 'true', { cwd: `/nope/${secret}`, secrets: [secret] }),
      new Recorder(),
    );
    expect(result.error!.message).toContain('/nope/***');
    expect(JSON.stringify(result)).not.toContain(secret);
  });
});

describe.skipIf(!hasSudo())('sudo', () => {
  it('runs as root with sudo: true', async () => {
    const ctx = new Recorder();
    const result = await ex.run(
      sshStep(host(), 'id -u; printf %s "$V"', { sudo: true, env: { V: "a'b" } }),
      ctx,
    );
    expect(result.exitCode).toBe(0);
    expect(ctx.stdout).toBe("0\na'b");
  });

  it('fails fast with a clear error when sudo wants a password', async () => {
    const started = performance.now();
    const result = await ex.run(
      sshStep(sshd.target({ user: SSH_NOSUDO_USER }), 'echo should-not-run', { sudo: true }),
      new Recorder(),
    );
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(result.error).toMatchObject({ code: 'sudo_failed', retriable: false });
    expect(result.error!.message).toMatch(/sudo -n true.*password is required.*NOPASSWD/);
  });

  it('kills a root process tree on abort', async () => {
    const ctx = new Recorder();
    const done = ex.run(sshStep(host(), 'sleep 424242 & sleep 424243; wait', { sudo: true }), ctx);
    await waitForProcess('root', 'sleep 424243');
    ctx.abort(new StepCancelledError());
    const result = await done;
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGTERM', error: { code: 'cancelled' } });
    await expectNoRemoteProcess('42424', 'root');
  });
});

describe('timeout and cancel', () => {
  it('kills the whole remote process tree (TERM), checked with ps', async () => {
    const ctx = new Recorder();
    const done = ex.run(sshStep(host(), 'echo started; sleep 313131 & sh -c "sleep 313132"; wait'), ctx);
    await ctx.waitFor(/started/);
    await waitForProcess('conveyor-ssh', 'sleep 313132');
    ctx.abort(new StepTimeoutError(100));
    const result = await done;
    expect(result).toMatchObject({
      exitCode: null,
      signal: 'SIGTERM',
      error: { code: 'timeout', retriable: true },
    });
    await expectNoRemoteProcess('31313');
  });

  it('escalates to KILL when the command ignores TERM', async () => {
    const ctx = new Recorder();
    const done = ex.run(sshStep(host(), "trap '' TERM; echo armed; sleep 323232; sleep 323233"), ctx);
    await ctx.waitFor(/armed/);
    await waitForProcess('conveyor-ssh', 'sleep 323232');
    const aborted = performance.now();
    ctx.abort(new StepTimeoutError(100));
    const result = await done;
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    // The grace time (1 s here) and no more than a little past it.
    expect(performance.now() - aborted).toBeGreaterThan(900);
    expect(performance.now() - aborted).toBeLessThan(4_000);
    await expectNoRemoteProcess('32323');
  });

  it('stops before connecting when aborted first, and on abort right after the start', async () => {
    const pre = new Recorder();
    pre.abort(new StepCancelledError());
    expect(await ex.run(sshStep(host(), 'echo never'), pre)).toMatchObject({
      exitCode: null,
      error: { code: 'cancelled' },
    });
    expect(pre.stdout).toBe('');

    // Aborted before the remote side has reported its process group: the stdin-EOF path.
    const early = new Recorder();
    const done = ex.run(sshStep(host(), 'sleep 343434'), early);
    queueMicrotask(() => early.abort(new StepCancelledError()));
    expect(await done).toMatchObject({ exitCode: null, error: { code: 'cancelled' } });
    await expectNoRemoteProcess('343434');
  });
});

/** Resolves once `ps` shows the process (the command started), polling the process table. */
async function waitForProcess(user: string, text: string): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (remoteProcesses(user, text).every((p) => !p.args.startsWith('sleep'))) {
    if (performance.now() > deadline) throw new Error(`${text} never started`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

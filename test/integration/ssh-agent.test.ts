/**
 * The resident agent against real sshd: steps share one agent without seeing each other's
 * output, binary output survives, env values stay off every command line, and an agent killed
 * on the host mid-step fails that step clearly, takes its process tree with it, and is replaced.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshExecutor } from '../../src/workers/ssh/index.ts';
import { remoteProcesses, SSH_USER, type SshdHandle, startSshd } from '../support/sshd.ts';
import { expectNoRemoteProcess, Recorder, sshStep, waitUntil } from './ssh-harness.ts';

let sshd: SshdHandle;
let ex: SshExecutor;

beforeAll(async () => {
  sshd = await startSshd();
  ex = new SshExecutor({ killGraceMs: 1_000 });
});
afterAll(async () => {
  await ex?.close();
  await sshd?.stop();
});

const host = () => sshd.target();

/** Parent pid of `pid`, from /proc (sshd runs on this machine). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a step that prints its runner's pid, then waits; resolves with the agent's pid. */
async function stepWithAgent(
  marker: string,
): Promise<{ agent: number; done: Promise<unknown>; ctx: Recorder }> {
  const ctx = new Recorder();
  const done = ex.run(sshStep(host(), `echo "runner=$PPID"; sleep ${marker} & sleep ${marker}1; wait`), ctx);
  await ctx.waitFor(/runner=\d+\n/);
  const runner = Number(/runner=(\d+)/.exec(ctx.stdout)![1]);
  await waitUntil(() => remoteProcesses(SSH_USER, `sleep ${marker}1`).length > 0, 'the step to start');
  return { agent: parentOf(runner), done, ctx };
}

describe('one agent, many steps', () => {
  it('runs consecutive steps on one agent, each with only its own output, binary intact', async () => {
    const pool = ex.pool;
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const octal = [...all].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
    const first = new Recorder();
    const chunks: Buffer[] = [];
    first.log = (stream, chunk) => {
      if (stream === 'stdout') chunks.push(Buffer.from(chunk));
    };
    expect((await ex.run(sshStep(host(), `printf '${octal}'; printf '${octal}' >&2`), first)).exitCode).toBe(
      0,
    );
    expect(Buffer.concat(chunks).equals(all)).toBe(true);

    const second = new Recorder();
    const r = await ex.run(
      sshStep(
        host(),
        '[ -f "$CONVEYOR_OUTPUT" ] && [ -f "$CONVEYOR_EVENTS" ] && echo two; echo err-two >&2; exit 4',
      ),
      second,
    );
    expect(r).toEqual({ exitCode: 4, signal: null, outputs: {}, events: [] });
    // The files exist (empty) when the step starts, as on the local executor.
    expect(second.stdout).toBe('two\n');
    expect(second.stderr).toBe('err-two\n');
    await pool.settled();
    expect(pool.stats().find((s) => s.host === host().name)).toMatchObject({
      connections: 1,
      channels: 0,
      idleAgents: 1,
      channelOpenFailures: 0,
    });
  });

  it('passes a 100 KiB command and streams 4 MB of output through the agent', async () => {
    const filler = 'x'.repeat(100 * 1024);
    const ctx = new Recorder();
    let bytes = 0;
    ctx.log = (stream, chunk) => {
      if (stream === 'stdout') bytes += Buffer.byteLength(chunk);
    };
    const big = await ex.run(sshStep(host(), `: '${filler}'; head -c 4000000 /dev/zero`), ctx);
    expect(big).toEqual({ exitCode: 0, signal: null, outputs: {}, events: [] });
    expect(bytes).toBe(4_000_000);

    const tooBig = await ex.run(sshStep(host(), `: '${'y'.repeat(121 * 1024)}'`), new Recorder());
    expect(tooBig.error).toMatchObject({ code: 'command_too_large', retriable: false });
  });

  it('closes an idle agent when a plain channel needs its slot', async () => {
    const local = new SshExecutor({ maxConnectionsPerHost: 1, maxChannelsPerConnection: 2 });
    try {
      const both = await Promise.all(
        [1, 2].map((i) => local.run(sshStep(host(), `sleep 0.2; echo ${i}`), new Recorder())),
      );
      expect(both.map((r) => r.exitCode)).toEqual([0, 0]);
      await local.pool.settled();
      expect(local.pool.stats()[0]).toMatchObject({ idleAgents: 2, channels: 0 });
      expect(await local.pool.run(host(), 'echo plain')).toMatchObject({ code: 0, stdout: 'plain\n' });
      expect(local.pool.stats()[0]).toMatchObject({ opened: 1, channelOpenFailures: 0 });
      expect(local.pool.stats()[0]!.idleAgents).toBeLessThan(2);
    } finally {
      await local.close();
    }
  });

  it('keeps env values off every command line the host can list', async () => {
    const secret = 'agent-Secret-0f9e8d';
    const ctx = new Recorder();
    const done = ex.run(
      sshStep(host(), 'printf "%s\\n" "$TOKEN"; sleep 414141', { env: { TOKEN: secret }, secrets: [secret] }),
      ctx,
    );
    await ctx.waitFor(/agent-Secret/);
    await waitUntil(() => remoteProcesses(SSH_USER, 'sleep 414141').length > 0, 'the step to start');
    expect(remoteProcesses(SSH_USER, secret)).toEqual([]);
    ctx.abort();
    await done;
    await expectNoRemoteProcess('414141');
  });
});

describe('an agent killed on the host', () => {
  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'fails the step clearly on %s, kills its tree, and the next step works',
    async (signal) => {
      const marker = signal === 'SIGKILL' ? '434343' : '444444';
      const { agent, done } = await stepWithAgent(marker);
      process.kill(agent, signal);
      const result = await done;
      expect(result).toMatchObject({ exitCode: null, error: { code: 'connection_lost', retriable: true } });
      expect((result as { error: { message: string } }).error.message).toMatch(
        new RegExp(
          `remote agent running the step \\(pid ${agent}\\) ended \\(signal ${signal}\\) while the step was running; the step's process group \\d+ was killed`,
        ),
      );
      await expectNoRemoteProcess(marker);

      const next = new Recorder();
      expect(await ex.run(sshStep(host(), 'echo next'), next)).toMatchObject({ exitCode: 0 });
      expect(next.stdout).toBe('next\n');
    },
  );

  it('frees the slot of an idle agent killed while an escaped process holds its channel', async () => {
    const local = new SshExecutor({ maxConnectionsPerHost: 1, maxChannelsPerConnection: 1 });
    try {
      const ctx = new Recorder();
      const done = local.run(sshStep(host(), 'setsid sleep 464646 & echo "runner=$PPID"; sleep 1'), ctx);
      await ctx.waitFor(/runner=\d+\n/);
      const agent = parentOf(Number(/runner=(\d+)/.exec(ctx.stdout)![1]));
      expect((await done).exitCode).toBe(0);
      process.kill(agent, 'SIGKILL');
      // sshd reports the exit; the channel stays open (the escaped sleep holds its stdout)
      // unless the worker closes it. (A step handed the agent before the report would fail,
      // retriably, like a step sent on a connection that just died.)
      await waitUntil(() => local.pool.stats()[0]?.idleAgents === 0, 'the pool to drop the dead agent');
      // The only slot: the next step needs it back.
      const next = new Recorder();
      expect(await local.run(sshStep(host(), 'echo again'), next)).toMatchObject({ exitCode: 0 });
      expect(next.stdout).toBe('again\n');
    } finally {
      await local.close();
      for (const p of remoteProcesses(SSH_USER, 'sleep 464646')) process.kill(p.pid, 'SIGKILL');
    }
  });

  it('goes with its connection: an idle close leaves no agent on the host', async () => {
    const local = new SshExecutor({ idleTimeoutMs: 100 });
    try {
      const ctx = new Recorder();
      const done = local.run(sshStep(host(), 'echo "runner=$PPID"; sleep 1'), ctx);
      await ctx.waitFor(/runner=\d+\n/);
      const agent = parentOf(Number(/runner=(\d+)/.exec(ctx.stdout)![1]));
      expect((await done).exitCode).toBe(0);
      expect(alive(agent)).toBe(true);
      await new Promise((resolve) => local.pool.once('close', resolve));
      await waitUntil(() => !alive(agent), 'the agent to exit');
      expect(local.pool.stats()[0]).toMatchObject({ connections: 0, idleAgents: 0 });
    } finally {
      await local.close();
    }
  });
});

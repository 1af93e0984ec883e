/**
 * The resident agent against real sshd: steps share one agent without seeing each other's
 * output, binary output survives, env values stay off every command line, and an agent killed
 * on the host (mid-step or idle) or writing a malformed record fails its step clearly, takes
 * its process tree with it, and takes its whole connection: the other steps on it fail
 * retriably, and the next step runs on a new connection.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepResult } from '../../src/workers/executor.ts';
import { SshExecutor } from '../../src/workers/ssh/index.ts';
import { hasSudo, remoteProcesses, SSH_USER, type SshdHandle, startSshd } from '../support/sshd.ts';
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

/** Alive and not a zombie (an orphan's exit is reaped whenever init gets to it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Starts a step that prints its runner's pid, then waits; resolves with the agent's pid. */
async function stepWithAgent(
  marker: string,
  on: SshExecutor = ex,
  before = '',
): Promise<{ agent: number; done: Promise<StepResult>; ctx: Recorder }> {
  const ctx = new Recorder();
  const done = on.run(
    sshStep(host(), `echo "runner=$PPID"; ${before}sleep ${marker} & sleep ${marker}1; wait`),
    ctx,
  );
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

describe("an agent's death takes its connection", () => {
  /** One connection, so that concurrent steps share it on channels of their own. */
  const oneConnection = () => new SshExecutor({ killGraceMs: 1_000, maxConnectionsPerHost: 1 });

  /** The next step works, on a connection opened after the dead one. */
  async function nextStepWorks(local: SshExecutor, opened: number): Promise<void> {
    const next = new Recorder();
    expect(await local.run(sshStep(host(), 'echo fresh'), next)).toMatchObject({ exitCode: 0 });
    expect(next.stdout).toBe('fresh\n');
    expect(local.pool.stats()[0]).toMatchObject({ connections: 1, opened });
  }

  it('fails every step on the connection when one agent is killed mid-step', async () => {
    const local = oneConnection();
    try {
      const one = await stepWithAgent('474747', local);
      const two = await stepWithAgent('484848', local);
      expect(two.agent).not.toBe(one.agent);
      expect(local.pool.stats()[0]).toMatchObject({ connections: 1, opened: 1, channels: 2 });
      const closed = new Promise((resolve) => local.pool.once('close', resolve));
      process.kill(one.agent, 'SIGKILL');
      const [first, second] = await Promise.all([one.done, two.done]);
      const who = `${host().name} \\(conveyor-ssh@127\\.0\\.0\\.1:${sshd.port}\\)`;
      expect(first).toMatchObject({ exitCode: null, error: { code: 'connection_lost', retriable: true } });
      expect(first.error!.message).toMatch(
        new RegExp(
          `^${who}: the remote agent running the step \\(pid ${one.agent}\\) ended \\(signal SIGKILL\\) while the step was running; the step's process group \\d+ was killed; the worker closed the connection$`,
        ),
      );
      expect(second).toMatchObject({ exitCode: null, error: { code: 'connection_lost', retriable: true } });
      expect(second.error!.message).toMatch(
        new RegExp(
          `^${who}: a step agent on this connection \\(pid ${one.agent}\\) ended \\(signal SIGKILL\\), so the worker closed the connection while the step was running$`,
        ),
      );
      await closed;
      expect(local.pool.stats()[0]).toMatchObject({ connections: 0, channels: 0, idleAgents: 0 });
      // The dead agent's step was killed by the worker, the other by its own agent (stdin gone).
      await expectNoRemoteProcess('474747');
      await expectNoRemoteProcess('484848');
      await waitUntil(() => !running(two.agent), 'the other agent to exit');
      await nextStepWorks(local, 2);
    } finally {
      await local.close();
    }
  });

  it('kills the step groups of agents killed together before it closes their connection', async () => {
    const local = oneConnection();
    try {
      const steps = [await stepWithAgent('515151', local), await stepWithAgent('525252', local)];
      for (const { agent } of steps) process.kill(agent, 'SIGKILL');
      const results = await Promise.all(steps.map((s) => s.done));
      results.forEach((r, i) => {
        expect(r.error).toMatchObject({ code: 'connection_lost', retriable: true });
        expect(r.error!.message).toMatch(
          new RegExp(
            `the remote agent running the step \\(pid ${steps[i]!.agent}\\) ended \\(signal SIGKILL\\) while the step was running; the step's process group \\d+ was killed`,
          ),
        );
      });
      await expectNoRemoteProcess('515151');
      await expectNoRemoteProcess('525252');
      await nextStepWorks(local, 2);
    } finally {
      await local.close();
    }
  });

  it.skipIf(!hasSudo())('kills the root process group of a sudo step whose agent was killed', async () => {
    const local = oneConnection();
    try {
      const other = await stepWithAgent('555555', local);
      const ctx = new Recorder();
      const done = local.run(sshStep(host(), 'sleep 565656 & sleep 5656561; wait', { sudo: true }), ctx);
      await waitUntil(() => remoteProcesses('root', 'sleep 5656561').length > 0, 'the sudo step to start');
      // Up from the root sleep: sudo's side, then the runner and the agent (both `sh -s`).
      let pid = remoteProcesses('root', 'sleep 5656561')[0]!.pid;
      while (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sh\0-s')) pid = parentOf(pid);
      const agent = parentOf(pid);
      process.kill(agent, 'SIGKILL');
      const [result, second] = await Promise.all([done, other.done]);
      expect(result.error).toMatchObject({ code: 'connection_lost', retriable: true });
      expect(result.error!.message).toMatch(
        new RegExp(
          `\\(pid ${agent}\\) ended \\(signal SIGKILL\\) while the step was running; the step's process group \\d+ was killed`,
        ),
      );
      expect(second.error).toMatchObject({ code: 'connection_lost', retriable: true });
      await expectNoRemoteProcess('565656', 'root');
      await expectNoRemoteProcess('555555');
      await nextStepWorks(local, 2);
    } finally {
      await local.close();
    }
  });

  it('drops the connection of an agent killed while idle, before the next step can pick it', async () => {
    const local = oneConnection();
    try {
      const ctx = new Recorder();
      const done = local.run(sshStep(host(), 'echo "runner=$PPID"'), ctx);
      expect(await done).toMatchObject({ exitCode: 0 });
      const agent = parentOf(Number(/runner=(\d+)/.exec(ctx.stdout)![1]));
      await local.pool.settled();
      expect(local.pool.stats()[0]).toMatchObject({ connections: 1, idleAgents: 1 });
      const closed = new Promise<Error>((resolve) =>
        local.pool.once('close', (_host, reason) => resolve(reason)),
      );
      process.kill(agent, 'SIGTERM');
      await waitUntil(() => local.pool.stats()[0]!.connections === 0, 'the pool to forget the connection');
      expect((await closed).message).toMatch(
        new RegExp(
          `a step agent on this connection \\(pid ${agent}\\) ended while idle \\(signal SIGTERM\\)`,
        ),
      );
      await nextStepWorks(local, 2);
    } finally {
      await local.close();
    }
  });

  it('treats an agent that does not answer an abort like a dead one, and kills it', async () => {
    const local = new SshExecutor({ killGraceMs: 200, maxConnectionsPerHost: 1 });
    try {
      const other = await stepWithAgent('535353', local);
      const stuck = await stepWithAgent('545454', local);
      process.kill(stuck.agent, 'SIGSTOP');
      stuck.ctx.abort();
      const [aborted, second] = await Promise.all([stuck.done, other.done]);
      expect(aborted).toMatchObject({ exitCode: null, error: { code: 'aborted' } });
      expect(second.error).toMatchObject({ code: 'connection_lost', retriable: true });
      expect(second.error!.message).toMatch(
        new RegExp(
          `a step agent on this connection \\(pid ${stuck.agent}\\) did not answer an abort within 5200 ms, so the worker closed the connection while the step was running$`,
        ),
      );
      await expectNoRemoteProcess('535353');
      await expectNoRemoteProcess('545454');
      await waitUntil(() => !running(stuck.agent), 'the stopped agent to be killed');
      await nextStepWorks(local, 2);
    } finally {
      await local.close();
    }
  });

  it('treats a malformed record from the agent like its death', async () => {
    const local = oneConnection();
    try {
      // The step's own shell has the attempt's marker as an argument: forge a record with it.
      const forge = `m=$(xargs -0 sh -c 'printf %s "$5"' x < /proc/$$/cmdline); printf '%sXnot-a-record\\n' "$m"; `;
      const other = await stepWithAgent('494949', local);
      const bad = await stepWithAgent('505050', local, forge);
      const [broken, second] = await Promise.all([bad.done, other.done]);
      expect(broken).toMatchObject({ exitCode: null, error: { code: 'connection_lost', retriable: true } });
      expect(broken.error!.message).toMatch(
        new RegExp(
          `the remote agent running the step \\(pid ${bad.agent}\\) wrote a malformed record \\("Xnot-a-record"\\) while the step was running; the step's process group \\d+ was killed`,
        ),
      );
      expect(second.error).toMatchObject({ code: 'connection_lost', retriable: true });
      expect(second.error!.message).toMatch(
        new RegExp(
          `a step agent on this connection \\(pid ${bad.agent}\\) wrote a malformed record, so the worker closed the connection while the step was running$`,
        ),
      );
      await expectNoRemoteProcess('494949');
      await expectNoRemoteProcess('505050');
      await nextStepWorks(local, 2);
    } finally {
      await local.close();
    }
  });
});

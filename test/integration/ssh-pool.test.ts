/**
 * The connection pool against real sshd: channel caps under MaxSessions, reuse, idle close,
 * keepalive on a peer that stops answering, and sshd dying mid-step then coming back.
 */
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshExecutor, SshPool } from '../../src/workers/ssh/index.ts';
import { type SshdHandle, startSshd } from '../support/sshd.ts';
import { expectNoRemoteProcess, Recorder, sshStep } from './ssh-harness.ts';

let sshd: SshdHandle;
beforeAll(async () => {
  sshd = await startSshd({ maxSessions: 10 });
});
afterAll(async () => {
  await sshd?.stop();
});

/** Opens `n` exec channels at once on one raw ssh2 connection; counts the refusals. */
async function rawChannels(n: number): Promise<number> {
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port: sshd.port,
      username: 'conveyor-ssh',
      privateKey: sshd.clientKey,
    });
  });
  const results = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<boolean>((resolve) =>
          client.exec('sleep 1', (err, ch) => {
            if (err) return resolve(false);
            ch.resume();
            ch.once('close', () => resolve(true));
          }),
        ),
    ),
  );
  client.end();
  return results.filter((ok) => !ok).length;
}

describe('channel caps', () => {
  it('the sshd really enforces MaxSessions 10 (control: an 11th channel is refused)', async () => {
    expect(await rawChannels(11)).toBeGreaterThanOrEqual(1);
  });

  it('runs 40 concurrent steps on one host with no channel failure', async () => {
    const ex = new SshExecutor();
    try {
      const runs = Array.from({ length: 40 }, (_, i) => {
        const ctx = new Recorder();
        return ex.run(sshStep(sshd.target(), `sleep 0.3; echo step-${i}`), ctx).then((r) => ({ r, ctx }));
      });
      const results = await Promise.all(runs);
      await ex.pool.settled();
      results.forEach(({ r, ctx }, i) => {
        expect(r).toEqual({ exitCode: 0, signal: null, outputs: {}, events: [] });
        expect(ctx.stdout).toBe(`step-${i}\n`);
      });
      const [stats] = ex.pool.stats();
      expect(stats).toMatchObject({ channelOpenFailures: 0, channels: 0, queued: 0 });
      expect(stats!.peakChannelsPerConnection).toBeLessThanOrEqual(8);
      expect(stats!.opened).toBeLessThanOrEqual(4);
    } finally {
      await ex.close();
    }
  });

  it('learns a MaxSessions below its cap instead of failing steps', async () => {
    const ex = new SshExecutor({ maxConnectionsPerHost: 1, maxChannelsPerConnection: 14 });
    try {
      const results = await Promise.all(
        Array.from({ length: 14 }, () => ex.run(sshStep(sshd.target(), 'sleep 0.3'), new Recorder())),
      );
      expect(results.map((r) => r.exitCode)).toEqual(Array(14).fill(0));
      const [stats] = ex.pool.stats();
      expect(stats!.channelOpenFailures).toBeGreaterThan(0);
      expect(stats!.opened).toBe(1);
    } finally {
      await ex.close();
    }
  });
});

describe('connection lifecycle', () => {
  it('reuses one connection across sequential steps and closes it when idle, then reconnects', async () => {
    const pool = new SshPool({ idleTimeoutMs: 150 });
    const ex = new SshExecutor({ pool });
    try {
      for (let i = 0; i < 5; i++)
        expect((await ex.run(sshStep(sshd.target(), 'true'), new Recorder())).exitCode).toBe(0);
      await pool.settled();
      expect(pool.stats()[0]).toMatchObject({ opened: 1, connections: 1, channels: 0 });

      const closed = new Promise((resolve) => pool.once('close', resolve));
      await closed;
      expect(pool.stats()[0]).toMatchObject({ connections: 0 });

      expect((await ex.run(sshStep(sshd.target(), 'true'), new Recorder())).exitCode).toBe(0);
      expect(pool.stats()[0]).toMatchObject({ opened: 2, connections: 1 });
    } finally {
      await pool.close();
    }
  });

  it('detects a peer that stops answering through keepalives', async () => {
    const ex = new SshExecutor({ keepaliveIntervalMs: 150, keepaliveCountMax: 2 });
    try {
      const ctx = new Recorder();
      const done = ex.run(sshStep(sshd.target(), 'echo up; sleep 353535'), ctx);
      await ctx.waitFor(/up/);
      sshd.pause();
      const started = performance.now();
      const result = await done;
      sshd.resume();
      expect(result.error).toMatchObject({ code: 'connection_lost', retriable: true });
      expect(result.error!.message).toMatch(/stopped answering keepalives.*while the step was running/);
      expect(performance.now() - started).toBeLessThan(3_000);
      // Once the session process runs again it sees the closed socket; the remote command goes.
      await expectNoRemoteProcess('353535', undefined, 5_000);
      expect((await ex.run(sshStep(sshd.target(), 'true'), new Recorder())).exitCode).toBe(0);
    } finally {
      sshd.resume();
      await ex.close();
    }
  });

  it('fails a step clearly when sshd dies mid-step, and a retry succeeds once sshd is back', async () => {
    const ex = new SshExecutor();
    try {
      const ctx = new Recorder();
      const done = ex.run(sshStep(sshd.target(), 'echo up; sleep 363636'), ctx);
      await ctx.waitFor(/up/);
      await sshd.kill();
      const result = await done;
      expect(result).toMatchObject({ exitCode: null, error: { code: 'connection_lost', retriable: true } });
      expect(result.error!.message).toMatch(/sshd-\d+ .*closed the connection while the step was running/);
      // The session's death closed the command's stdin: the wrapper's watcher ended it.
      await expectNoRemoteProcess('363636');

      const whileDown = await ex.run(sshStep(sshd.target(), 'true'), new Recorder());
      expect(whileDown.error).toMatchObject({ code: 'connection_refused', retriable: true });

      await sshd.start();
      const retry = await ex.run(sshStep(sshd.target(), 'echo back'), new Recorder());
      expect(retry).toMatchObject({ exitCode: 0 });
    } finally {
      await ex.close();
    }
  });
});

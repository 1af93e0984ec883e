/**
 * Connecting for real to OpenSSH sshd: authentication methods, host key verification (pinned,
 * changed, unknown, trust-on-first-use, hashed known_hosts), jump hosts, the errors a user sees
 * when a host cannot be reached, and the preflight check.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHost, type HostTarget, KnownHosts, SshExecutor } from '../../src/workers/ssh/index.ts';
import { freePort } from '../support/redis-server.ts';
import {
  KEY_PASSPHRASE,
  SSH_NOSUDO_USER,
  SSH_PASSWORD,
  type SshdHandle,
  startSshd,
} from '../support/sshd.ts';
import { Recorder, sshStep } from './ssh-harness.ts';

let sshd: SshdHandle;
let jumpHost: SshdHandle;
let strictJump: SshdHandle;
const executors: SshExecutor[] = [];

beforeAll(async () => {
  [sshd, jumpHost, strictJump] = await Promise.all([
    startSshd(),
    startSshd(),
    startSshd({ config: ['PermitOpen 127.0.0.1:1'] }),
  ]);
});
afterAll(async () => {
  await Promise.all(executors.map((e) => e.close()));
  await Promise.all([sshd?.stop(), jumpHost?.stop(), strictJump?.stop()]);
});

function executor(options: ConstructorParameters<typeof SshExecutor>[0] = {}): SshExecutor {
  const e = new SshExecutor({ connectTimeoutMs: 5_000, ...options });
  executors.push(e);
  return e;
}

async function run(target: HostTarget, command = 'echo "$(id -un)"', options = {}, secrets: string[] = []) {
  const ctx = new Recorder();
  const result = await executor(options).run(sshStep(target, command, { secrets }), ctx);
  return { result, ctx };
}

describe('authentication', () => {
  it('logs in with a private key', async () => {
    const { result, ctx } = await run(sshd.target());
    expect(result).toMatchObject({ exitCode: 0 });
    expect(ctx.stdout).toBe('conveyor-ssh\n');
  });

  it('logs in with an encrypted private key and its passphrase', async () => {
    const { result } = await run(
      sshd.target({ auth: { type: 'key', privateKey: sshd.encryptedClientKey, passphrase: KEY_PASSPHRASE } }),
    );
    expect(result.exitCode).toBe(0);
  });

  it('logs in with a password', async () => {
    const { result, ctx } = await run(
      sshd.target({ user: SSH_NOSUDO_USER, auth: { type: 'password', password: SSH_PASSWORD } }),
    );
    expect(result.exitCode).toBe(0);
    expect(ctx.stdout).toBe(`${SSH_NOSUDO_USER}\n`);
  });

  it('refuses a key that is not authorized: auth_failed, not retriable', async () => {
    const { result } = await run(sshd.target({ auth: { type: 'key', privateKey: sshd.otherKey } }));
    expect(result.exitCode).toBeNull();
    expect(result.error).toMatchObject({ code: 'auth_failed', retriable: false });
    expect(result.error!.message).toMatch(/authorized_keys/);
  });

  it('refuses a wrong password without ever showing it', async () => {
    const password = 'Wr0ng-pa55word-xyz';
    const { result } = await run(sshd.target({ auth: { type: 'password', password } }), 'true', {}, [
      password,
    ]);
    expect(result.error).toMatchObject({ code: 'auth_failed', retriable: false });
    expect(JSON.stringify(result)).not.toContain(password);
  });

  it('refuses a wrong passphrase without showing it', async () => {
    const passphrase = 'not-the-passphrase-123';
    const { result } = await run(
      sshd.target({ auth: { type: 'key', privateKey: sshd.encryptedClientKey, passphrase } }),
    );
    expect(result.error).toMatchObject({ code: 'auth_failed', retriable: false });
    expect(JSON.stringify(result)).not.toContain(passphrase);
  });
});

describe('host keys', () => {
  it('accepts the host key pinned as a SHA256 fingerprint', async () => {
    const { result } = await run(sshd.target({ hostKey: sshd.hostKeyFingerprint() }));
    expect(result.exitCode).toBe(0);
  });

  it('refuses an unknown host key and shows its fingerprint', async () => {
    const { result } = await run(sshd.target({ hostKey: undefined }));
    expect(result.error).toMatchObject({ code: 'host_key_unknown', retriable: false });
    expect(result.error!.message).toContain(sshd.hostKeyFingerprint());
  });

  it('records a key on first use, then refuses a changed key with both fingerprints', async () => {
    const own = await startSshd();
    try {
      const recorded: Array<[string, string]> = [];
      const ex = executor({ onTrust: (host, key) => void recorded.push([host, key]) });
      const target = own.target({ name: 'tofu-host', hostKey: undefined, trustOnFirstUse: true });
      const first = await ex.run(sshStep(target, 'true'), new Recorder());
      expect(first.exitCode).toBe(0);
      expect(recorded).toEqual([['tofu-host', own.hostKeyLine()]]);
      const oldFingerprint = own.hostKeyFingerprint();

      await own.rotateHostKey();
      const newFingerprint = own.hostKeyFingerprint();
      expect(newFingerprint).not.toBe(oldFingerprint);
      // The pooled connection predates the rotation; a fresh executor (with the recorded key
      // now pinned, as the engine would) must refuse the rebuilt host.
      const pinned = { ...target, hostKey: recorded[0]![1], trustOnFirstUse: true };
      const after = await executor().run(sshStep(pinned, 'true'), new Recorder());
      expect(after.error).toMatchObject({ code: 'host_key_mismatch', retriable: false });
      expect(after.error!.message).toContain('tofu-host');
      expect(after.error!.message).toContain(oldFingerprint);
      expect(after.error!.message).toContain(newFingerprint);
      // And the same worker, which remembers what it recorded, refuses it too.
      await ex.pool.close();
      const again = await executor({ verifier: ex.pool.verifier }).run(
        sshStep(target, 'true'),
        new Recorder(),
      );
      expect(again.error).toMatchObject({ code: 'host_key_mismatch' });
      expect(recorded).toHaveLength(1);
    } finally {
      await own.stop();
    }
  });

  it('verifies against a hashed known_hosts file written by ssh-keygen -H', async () => {
    const file = join(sshd.dir, 'known_hosts');
    writeFileSync(file, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine()}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'pipe' });
    expect(readFileSync(file, 'utf8')).toMatch(/^\|1\|/);
    const knownHosts = await KnownHosts.load(file);
    const ok = await run(sshd.target({ hostKey: undefined }), 'true', { knownHosts });
    expect(ok.result.exitCode).toBe(0);

    // The same file pointing at another key: a mismatch naming both fingerprints.
    const other = execFileSync('ssh-keygen', ['-y', '-f', join(sshd.dir, 'other')], {
      encoding: 'utf8',
    }).trim();
    const wrong = KnownHosts.parse(`[127.0.0.1]:${sshd.port} ${other}\n`);
    const bad = await run(sshd.target({ hostKey: undefined }), 'true', { knownHosts: wrong });
    expect(bad.result.error).toMatchObject({ code: 'host_key_mismatch', retriable: false });
    expect(bad.result.error!.message).toContain(sshd.hostKeyFingerprint());
    expect(bad.result.error!.message).toContain('known_hosts');
  });
});

describe('reaching hosts', () => {
  let silent: Server;
  let silentPort: number;
  beforeAll(async () => {
    // Accepts TCP connections and never says a word: what a blackholed SSH port looks like once
    // the SYN is answered, without sending anything off this machine.
    silent = createServer((socket) => socket.resume());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => silent.close(() => r())));

  it('reports connection refused, retriable', async () => {
    const port = await freePort();
    const { result } = await run(sshd.target({ port }));
    expect(result.error).toMatchObject({ code: 'connection_refused', retriable: true });
    expect(result.error!.message).toContain(`127.0.0.1:${port}`);
  });

  it('reports a connect timeout against a port that never speaks SSH', async () => {
    const started = performance.now();
    const { result } = await run(sshd.target({ port: silentPort }), 'true', { connectTimeoutMs: 300 });
    expect(result.error).toMatchObject({ code: 'connect_timeout', retriable: true });
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('connects through a jump host', async () => {
    expect(jumpHost.log()).not.toMatch(/Accepted publickey/);
    const target = sshd.target({ name: 'inner', jump: jumpHost.target({ name: 'bastion' }) });
    const { result, ctx } = await run(target, 'echo via-jump');
    expect(result.exitCode).toBe(0);
    expect(ctx.stdout).toBe('via-jump\n');
    // Nothing else ever talks to this sshd: a login there is the hop.
    expect(jumpHost.log()).toMatch(/Accepted publickey for conveyor-ssh/);

    // A bastion that forbids the forward: the error says the jump host refused.
    const refused = await run(
      sshd.target({ name: 'inner', jump: strictJump.target({ name: 'strict' }) }),
      'true',
    );
    expect(refused.result.error).toMatchObject({ code: 'channel_open_failed', retriable: false });
    expect(refused.result.error!.message).toMatch(/inner .*via strict.*jump host refused to forward/);
  });

  it('names the jump host when it is the one that cannot be reached', async () => {
    const port = await freePort();
    const { result } = await run(sshd.target({ jump: sshd.target({ name: 'dead-bastion', port }) }));
    expect(result.error).toMatchObject({ code: 'connection_refused' });
    expect(result.error!.message).toMatch(/jump host for .*dead-bastion/);
  });
});

describe('checkHost', () => {
  it('reports reachability, host key, auth, sudo and latency', async () => {
    const report = await checkHost(sshd.target());
    expect(report).toMatchObject({
      reachable: true,
      hostKey: { fingerprint: sshd.hostKeyFingerprint(), status: 'verified', source: 'hostKey' },
      auth: { ok: true, method: 'key' },
      sudo: { ok: true },
      errors: [],
    });
    expect(report.latencyMs).toBeGreaterThan(0);
    expect(report.commandMs).toBeGreaterThan(0);
  });

  it('reports sudo needing a password, a bad password, an unknown key and an unreachable port', async () => {
    const noSudo = await checkHost(sshd.target({ user: SSH_NOSUDO_USER }));
    expect(noSudo.auth).toEqual({ ok: true, method: 'key' });
    expect(noSudo.sudo).toMatchObject({ ok: false });
    expect(noSudo.sudo!.message).toMatch(/password is required|not in the sudoers|may not run sudo/);

    const badAuth = await checkHost(sshd.target({ auth: { type: 'password', password: 'nope-nope' } }));
    expect(badAuth).toMatchObject({ reachable: true, auth: { ok: false }, sudo: null });
    expect(badAuth.errors[0]!.code).toBe('auth_failed');

    const unknown = await checkHost(sshd.target({ hostKey: undefined }));
    expect(unknown).toMatchObject({ reachable: true, hostKey: { status: 'rejected' }, auth: null });
    expect(unknown.errors[0]!.code).toBe('host_key_unknown');

    let trusted = 0;
    const tofu = await checkHost(sshd.target({ hostKey: undefined, trustOnFirstUse: true }), {
      onTrust: () => void trusted++,
      recordTrust: false,
    });
    expect(tofu.hostKey).toMatchObject({ status: 'trusted-on-first-use' });
    expect(trusted).toBe(0);

    const down = await checkHost(sshd.target({ port: await freePort() }));
    expect(down).toMatchObject({ reachable: false, hostKey: null, auth: null, latencyMs: null });
    expect(down.errors[0]!.code).toBe('connection_refused');
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { StepError } from '../../src/errors.ts';
import { algorithmsForKeyTypes } from '../../src/workers/ssh/host-key.ts';
import {
  fingerprint,
  HostKeyVerifier,
  type HostTarget,
  KnownHosts,
  parseHostKeySpec,
  parseKeyLine,
} from '../../src/workers/ssh/index.ts';

/** Keys made by the real ssh-keygen, with its own fingerprints to compare against. */
const dir = mkdtempSync(join(tmpdir(), 'conveyor-hostkeys-'));
function makeKey(name: string, type: 'ed25519' | 'ecdsa') {
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'c@x', '-f', join(dir, name)]);
  const line = readFileSync(join(dir, `${name}.pub`), 'utf8').trim();
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, `${name}.pub`)], {
    encoding: 'utf8',
  }).split(' ')[1]!;
  return { line, fp, key: parseKeyLine(line) };
}
let a: ReturnType<typeof makeKey>;
let b: ReturnType<typeof makeKey>;
let c: ReturnType<typeof makeKey>;
beforeAll(() => {
  a = makeKey('a', 'ed25519');
  b = makeKey('b', 'ed25519');
  c = makeKey('c', 'ecdsa');
});

const target = (o: Partial<HostTarget> = {}): HostTarget => ({
  name: 'web-1',
  address: 'web1.example.com',
  port: 22,
  user: 'deploy',
  auth: { type: 'password', password: 'x' },
  ...o,
});

describe('host key forms', () => {
  it('computes the same SHA256 fingerprints as ssh-keygen -l', () => {
    expect(fingerprint(a.key.blob)).toBe(a.fp);
    expect(fingerprint(c.key.blob)).toBe(c.fp);
    expect(c.key.type).toBe('ecdsa-sha2-nistp256');
  });

  it('parses key lines and fingerprints, refusing mixed-up pastes', () => {
    expect(parseHostKeySpec(a.line)).toEqual({ kind: 'key', key: a.key });
    expect(parseHostKeySpec(`  ${a.fp}=  `)).toEqual({ kind: 'fingerprint', fingerprint: a.fp });
    const blob = a.line.split(' ')[1];
    expect(() => parseKeyLine(`ssh-rsa ${blob}`)).toThrow(/says ssh-rsa but the key inside is ssh-ed25519/);
    expect(() => parseKeyLine('ssh-ed25519')).toThrow(/expected/);
    expect(() => parseKeyLine('ssh-ed25519 AAAA')).toThrow();
  });

  it('offers only the algorithms of known key types', () => {
    expect(algorithmsForKeyTypes(['ssh-ed25519'])).toEqual(['ssh-ed25519']);
    expect(algorithmsForKeyTypes(['ssh-rsa', 'ssh-ed25519'])).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ssh-ed25519',
    ]);
    expect(algorithmsForKeyTypes(['sk-ssh-ed25519@openssh.com'])).toBeUndefined();
    expect(algorithmsForKeyTypes([])).toBeUndefined();
  });
});

describe('known_hosts', () => {
  it('matches plain, [host]:port, pattern, negated and ssh-keygen -H hashed entries', () => {
    // Hashed entries come from OpenSSH itself (ssh-keygen -H refuses wildcards and bad lines,
    // so those go in a second, plain part).
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `hashed.example.com ${b.line}\n[hashed.example.com]:2200 ${a.line}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'pipe' });
    const hashed = readFileSync(file, 'utf8');
    expect(hashed).not.toContain('hashed.example.com');
    expect(hashed.match(/^\|1\|/gm)).toHaveLength(2);
    const text = [
      '# comment',
      `web1.example.com,10.0.0.1 ${a.line}`,
      `[web1.example.com]:2222 ${b.line}`,
      `*.internal,!secret.internal ${c.line}`,
      hashed,
      '@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
      'garbage line',
      '',
    ].join('\n');
    const kh = KnownHosts.parse(text);
    const types = (h: string, p: number) => kh.lookup(h, p).keys.map((k) => fingerprint(k.blob));
    expect(types('web1.example.com', 22)).toEqual([a.fp]);
    expect(types('WEB1.example.com', 22)).toEqual([a.fp]);
    expect(types('10.0.0.1', 22)).toEqual([a.fp]);
    expect(types('web1.example.com', 2222)).toEqual([b.fp]);
    expect(types('hashed.example.com', 22)).toEqual([b.fp]);
    expect(types('hashed.example.com', 2200)).toEqual([a.fp]);
    expect(types('hashed.example.com', 2201)).toEqual([]);
    expect(types('db.internal', 22)).toEqual([c.fp]);
    expect(types('secret.internal', 22)).toEqual([]);
  });

  it('parses unhashed lines, marks @revoked and lists unparseable lines', () => {
    const kh = KnownHosts.parse(
      [`h1 ${a.line}`, `@revoked * ${b.line}`, 'h2 ssh-ed25519 !!!', `@bogus h3 ${a.line}`].join('\n'),
    );
    expect(kh.lookup('h1', 22).revoked.map((k) => fingerprint(k.blob))).toEqual([b.fp]);
    expect(kh.skipped).toEqual([3, 4]);
  });

  it('names a missing file', async () => {
    await expect(KnownHosts.load(join(dir, 'nope'))).rejects.toThrow(/cannot read known_hosts file .*nope/);
  });
});

describe('HostKeyVerifier', () => {
  const expectRefused = async (
    v: HostKeyVerifier,
    t: HostTarget,
    key = a.key,
    code = 'host_key_mismatch',
  ) => {
    const verdict = await v.verify(t, key);
    expect(verdict.ok).toBe(false);
    const error = (verdict as { error: StepError }).error;
    expect(error).toBeInstanceOf(StepError);
    expect(error.code).toBe(code);
    expect(error.retriable).toBe(false);
    return error.message;
  };

  it('accepts a pinned key line or fingerprint, and names host and both fingerprints on mismatch', async () => {
    const v = new HostKeyVerifier();
    expect(await v.verify(target({ hostKey: a.line }), a.key)).toEqual({ ok: true, source: 'hostKey' });
    expect(await v.verify(target({ hostKey: a.fp }), a.key)).toEqual({ ok: true, source: 'hostKey' });
    const message = await expectRefused(v, target({ hostKey: b.line }));
    expect(message).toContain('web-1 (web1.example.com:22)');
    expect(message).toContain(a.fp);
    expect(message).toContain(b.fp);
    expect(await expectRefused(v, target({ hostKey: b.fp }))).toContain(b.fp);
  });

  it('refuses an unknown key unless trust-on-first-use, then holds the host to the recorded key', async () => {
    const recorded: Array<[string, string]> = [];
    const v = new HostKeyVerifier({ onTrust: (h, k) => void recorded.push([h, k]) });
    const unknown = await expectRefused(v, target(), a.key, 'host_key_unknown');
    expect(unknown).toContain(a.fp);
    expect(unknown).toContain(a.line.split(' ').slice(0, 2).join(' '));
    expect(recorded).toEqual([]);

    const tofu = target({ trustOnFirstUse: true });
    expect(await v.verify(tofu, a.key)).toEqual({ ok: true, source: 'first-use' });
    expect(recorded).toEqual([['web-1', a.line.split(' ').slice(0, 2).join(' ')]]);
    expect(await v.verify(tofu, a.key)).toEqual({ ok: true, source: 'recorded' });
    expect(recorded).toHaveLength(1);
    const changed = await expectRefused(v, tofu, b.key);
    expect(changed).toContain('recorded on first use');
    expect(changed).toContain(a.fp);
    expect(changed).toContain(b.fp);
  });

  it('records a first-use key once under concurrent connections; a failed record refuses (retriable)', async () => {
    let calls = 0;
    const v = new HostKeyVerifier({
      onTrust: async () => {
        calls++;
        await new Promise((r) => setImmediate(r));
      },
    });
    const tofu = target({ trustOnFirstUse: true });
    const verdicts = await Promise.all([v.verify(tofu, a.key), v.verify(tofu, a.key), v.verify(tofu, a.key)]);
    expect(verdicts.every((x) => x.ok)).toBe(true);
    expect(calls).toBe(1);

    const failing = new HostKeyVerifier({
      onTrust: () => {
        throw new Error('redis down');
      },
    });
    await expect(failing.verify(tofu, a.key)).rejects.toMatchObject({
      code: 'host_key_unknown',
      retriable: true,
    });
  });

  it('does not record when asked not to (preflight)', async () => {
    let calls = 0;
    const v = new HostKeyVerifier({ onTrust: () => void calls++ });
    expect(await v.verify(target({ trustOnFirstUse: true }), a.key, { record: false })).toEqual({
      ok: true,
      source: 'first-use',
    });
    expect(calls).toBe(0);
  });

  it('uses known_hosts: match, mismatch, @revoked', async () => {
    const kh = KnownHosts.parse([`web1.example.com ${a.line}`, `@revoked * ${c.line}`].join('\n'));
    const v = new HostKeyVerifier({ knownHosts: kh });
    expect(await v.verify(target(), a.key)).toEqual({ ok: true, source: 'known_hosts' });
    const message = await expectRefused(v, target(), b.key);
    expect(message).toContain('known_hosts');
    expect(message).toContain(a.fp);
    expect(message).toContain(b.fp);
    expect(await expectRefused(v, target({ address: 'other' }), c.key)).toMatch(/@revoked/);
    expect(v.algorithms(target())).toEqual(['ssh-ed25519']);
    // A pinned hostKey wins over known_hosts.
    expect(await v.verify(target({ hostKey: b.line }), b.key)).toEqual({ ok: true, source: 'hostKey' });
  });

  it('says when hostKey itself is malformed', async () => {
    await expect(
      new HostKeyVerifier().verify(target({ hostKey: 'ssh-ed25519 zz' }), a.key),
    ).rejects.toMatchObject({
      code: 'invalid_host_key',
    });
  });
});

import { describe, expect, it } from 'vitest';
import { StepError } from '../../src/errors.ts';
import { parseInventory } from '../../src/inventory/index.ts';
import { connectError } from '../../src/workers/ssh/connect-errors.ts';
import { type HostTarget, toHostTarget } from '../../src/workers/ssh/index.ts';

const target: HostTarget = {
  name: 'web-1',
  address: 'web1.example.com',
  port: 2222,
  user: 'deploy',
  auth: { type: 'password', password: 'hunter2-secret' },
};

const errno = (code: string) => Object.assign(new Error(`connect ${code} 1.2.3.4:22`), { code });
const level = (lvl: string, message: string) => Object.assign(new Error(message), { level: lvl });

describe('connectError', () => {
  const cases: Array<[unknown, string, boolean]> = [
    [errno('ECONNREFUSED'), 'connection_refused', true],
    [errno('ENOTFOUND'), 'dns_failure', false],
    [errno('EAI_AGAIN'), 'dns_failure', true],
    [errno('ETIMEDOUT'), 'connect_timeout', true],
    [errno('EHOSTUNREACH'), 'host_unreachable', true],
    [errno('ECONNRESET'), 'connection_lost', true],
    [level('client-authentication', 'All configured authentication methods failed'), 'auth_failed', false],
    [level('client-timeout', 'Timed out while waiting for handshake'), 'connect_timeout', true],
    [level('client-timeout', 'Keepalive timeout'), 'connection_lost', true],
    [
      new Error('Cannot parse privateKey: Encrypted private OpenSSH key detected, but no passphrase given'),
      'auth_failed',
      false,
    ],
    [level('protocol', 'Connection lost before handshake'), 'connection_lost', true],
  ];
  it.each(cases)('%s → %s', (err, code, retriable) => {
    const e = connectError(target, err);
    expect(e).toBeInstanceOf(StepError);
    expect(e.code).toBe(code);
    expect(e.retriable).toBe(retriable);
    expect(e.message).toContain('web-1 (deploy@web1.example.com:2222)');
    expect(e.message).not.toContain('hunter2-secret');
    expect(e.cause).toBe(err);
  });

  it('passes StepErrors through', () => {
    const own = new StepError('host_key_mismatch', 'x', false);
    expect(connectError(target, own)).toBe(own);
  });
});

describe('toHostTarget', () => {
  const inv = parseInventory(`
hosts:
  bastion: { address: b.example.com, user: ops, auth: { type: agent } }
  web-1:
    address: 10.0.0.11
    port: 2222
    user: deploy
    auth: { secret: WEB_KEY, passphraseSecret: WEB_PASS }
    hostKey: SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU
    jump: bastion
  web-2: { address: w2, user: u, auth: { type: password, secret: MISSING } }
`);
  const secrets: Record<string, string> = { WEB_KEY: '-----BEGIN KEY-----', WEB_PASS: 'pp' };

  it('resolves secrets and the jump chain', async () => {
    const t = await toHostTarget(inv, 'web-1', { secret: (n) => secrets[n], agentSocket: '/run/agent.sock' });
    expect(t).toEqual({
      name: 'web-1',
      address: '10.0.0.11',
      port: 2222,
      user: 'deploy',
      auth: { type: 'key', privateKey: '-----BEGIN KEY-----', passphrase: 'pp' },
      hostKey: 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU',
      trustOnFirstUse: false,
      jump: {
        name: 'bastion',
        address: 'b.example.com',
        port: 22,
        user: 'ops',
        auth: { type: 'agent', socket: '/run/agent.sock' },
        trustOnFirstUse: false,
      },
    });
  });

  it('fails clearly on an unknown host or a missing secret', async () => {
    await expect(toHostTarget(inv, 'nope', { secret: () => undefined })).rejects.toMatchObject({
      code: 'unknown_host',
    });
    await expect(toHostTarget(inv, 'web-2', { secret: () => undefined })).rejects.toThrow(
      'host web-2: secret MISSING (its password) is not set',
    );
  });
});

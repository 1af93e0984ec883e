import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import {
  groupNames,
  loadInventoryFile,
  parseHostEntry,
  parseInventory,
  resolveTargets,
} from '../../src/inventory/index.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const FP = 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU';

const yaml = `
hosts:
  bastion:
    address: bastion.example.com
    user: ops
    auth: { type: agent }
    hostKey: ${KEY} bastion@example
  web-1:
    address: 10.0.0.11
    port: 2222
    user: deploy
    groups: [web, eu]
    auth: { secret: WEB_KEY, passphraseSecret: WEB_KEY_PASS }
    hostKey: ${FP}
    jump: bastion
  web-2:
    address: 10.0.0.12
    user: deploy
    groups: [web]
    auth: { type: password, secret: WEB2_PASSWORD }
    trustOnFirstUse: true
  db-1:
    address: db1.internal
    user: postgres
    groups: [db, eu]
    auth: { secret: DB_KEY }
`;

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

describe('inventory', () => {
  it('parses hosts with defaults applied', () => {
    const inv = parseInventory(yaml);
    expect(Object.keys(inv.hosts)).toEqual(['bastion', 'web-1', 'web-2', 'db-1']);
    expect(inv.hosts['web-1']).toEqual({
      address: '10.0.0.11',
      port: 2222,
      user: 'deploy',
      groups: ['web', 'eu'],
      auth: { type: 'key', secret: 'WEB_KEY', passphraseSecret: 'WEB_KEY_PASS' },
      hostKey: FP,
      trustOnFirstUse: false,
      jump: 'bastion',
    });
    expect(inv.hosts.bastion).toMatchObject({ port: 22, groups: [], auth: { type: 'agent' } });
    expect(inv.hosts['web-2']!.auth).toEqual({ type: 'password', secret: 'WEB2_PASSWORD' });
    expect(parseInventory('').hosts).toEqual({});
  });

  it('resolves host names, groups and "all"; unknown names give undefined', () => {
    const inv = parseInventory(yaml);
    expect(resolveTargets(inv, 'web-2')).toEqual(['web-2']);
    expect(resolveTargets(inv, 'web')).toEqual(['web-1', 'web-2']);
    expect(resolveTargets(inv, 'eu')).toEqual(['web-1', 'db-1']);
    expect(resolveTargets(inv, 'all')).toEqual(['bastion', 'web-1', 'web-2', 'db-1']);
    expect(resolveTargets(inv, 'nope')).toBeUndefined();
    expect(resolveTargets(inv, 'constructor')).toBeUndefined();
    expect(resolveTargets(parseInventory(''), 'all')).toBeUndefined();
    expect(groupNames(inv)).toEqual(['db', 'eu', 'web']);
  });

  it('reports every problem with its path', () => {
    const issues = issuesOf(() =>
      parseInventory(`
hosts:
  a:
    address: "user@host"
    port: 70000
    user: deploy
    auth: { secret: "1bad" }
    hostKey: not-a-key
    extra: true
  b:
    address: b
    user: u
    auth: { type: password }
`),
    );
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'hosts.a.address',
        'hosts.a.port',
        'hosts.a.auth.secret',
        'hosts.a.hostKey',
        'hosts.a',
      ]),
    );
    expect(paths.some((p) => p.startsWith('hosts.b.auth'))).toBe(true);
    expect(issues.find((i) => i.path === 'hosts.a.hostKey')!.message).toMatch(/public key line.*SHA256/);
  });

  it('rejects ambiguous names, the reserved "all", and bad jump chains', () => {
    const host = (extra: string) => `{ address: h, user: u, auth: { secret: K }${extra} }`;
    const issues = issuesOf(() =>
      parseInventory(`
hosts:
  web: ${host(', groups: [web]')}
  all: ${host('')}
  x: ${host(', groups: [all]')}
  self: ${host(', jump: self')}
  orphan: ${host(', jump: missing')}
  loop1: ${host(', jump: loop2')}
  loop2: ${host(', jump: loop1')}
`),
    );
    const text = issues.map((i) => `${i.path}: ${i.message}`).join('\n');
    expect(text).toContain('hosts.web: "web" is both a host and a group name');
    expect(text).toContain('hosts.all: "all" is reserved');
    expect(text).toContain('hosts.x.groups[0]');
    expect(text).toContain('hosts.self.jump: a host cannot be its own jump host');
    expect(text).toContain('hosts.orphan.jump: unknown jump host "missing"');
    expect(text).toContain('hosts.loop1.jump: jump hosts loop: loop1 → loop2 → loop1');
  });

  it('reports YAML syntax errors', () => {
    expect(issuesOf(() => parseInventory('hosts: [unclosed')).length).toBeGreaterThan(0);
  });

  it('loads a file by path and names it in errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-inv-'));
    const file = join(dir, 'inventory.yaml');
    writeFileSync(file, yaml);
    expect(Object.keys((await loadInventoryFile(file)).hosts)).toHaveLength(4);
    writeFileSync(file, 'hosts: { a: { address: x } }');
    await expect(loadInventoryFile(file)).rejects.toThrow(`inventory file ${file} is invalid`);
    await expect(loadInventoryFile(join(dir, 'missing.yaml'))).rejects.toThrow(
      /cannot read the inventory file/,
    );
  });

  it('validates a single entry as an API body', () => {
    expect(parseHostEntry({ address: 'h', user: 'u', auth: { secret: 'K' } }).port).toBe(22);
    expect(issuesOf(() => parseHostEntry({ address: 'h', user: 'u' })).map((i) => i.path)).toEqual(['auth']);
  });
});

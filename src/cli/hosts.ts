/** `conveyor hosts list|add|rm|check`: the SSH inventory over the API, and its preflight. */
import type { HostCheck, HostInput } from '../client/index.ts';
import type { Command } from './command.ts';
import { intFlag, stringFlag } from './command.ts';
import { EXIT, usageError } from './errors.ts';
import type { Output } from './output.ts';

const list: Command = {
  name: 'list',
  summary: 'hosts of the inventory (file and API)',
  usage: 'hosts list',
  async run({ out, client }) {
    const hosts = await client().hosts.list();
    out.result({ hosts }, () => {
      if (hosts.length === 0) return out.note('no hosts');
      out.table(
        ['host', 'address', 'user', 'groups', 'auth', 'host key'],
        hosts.map((h) => [
          h.name,
          `${h.address}:${h.port}`,
          h.user,
          h.groups.join(', '),
          `${h.auth.type}${h.auth.secret ? ` (${h.auth.secret})` : ''}`,
          h.hostKey ? 'pinned' : h.trustOnFirstUse ? 'trust on first use' : 'known_hosts',
        ]),
      );
    });
    return EXIT.ok;
  },
};

const add: Command = {
  name: 'add',
  summary: 'add or replace a host',
  usage: 'hosts add <name> --address <addr> --user <user> [flags]',
  args: [1, 1],
  flags: {
    address: { type: 'string', value: 'addr', help: 'host name or IP address (required)' },
    user: { type: 'string', value: 'user', help: 'the SSH user (required)' },
    port: { type: 'string', value: 'port', help: 'SSH port (default 22)' },
    group: { type: 'string', multiple: true, value: 'group', help: 'a group the host is in (repeatable)' },
    auth: { type: 'string', value: 'type', help: 'key (default), password or agent' },
    secret: { type: 'string', value: 'name', help: 'the secret holding the key or password' },
    'passphrase-secret': { type: 'string', value: 'name', help: "the secret holding the key's passphrase" },
    'host-key': { type: 'string', value: 'key', help: 'the pinned host key (`ssh-ed25519 AAAA…`)' },
    'trust-on-first-use': { type: 'boolean', help: 'record the host key of the first connection' },
    jump: { type: 'string', value: 'host', help: 'reach it through this inventory host' },
  },
  async run({ out, client, positionals, values }) {
    const address = stringFlag(values, 'address');
    const user = stringFlag(values, 'user');
    if (!address || !user) throw usageError('hosts add: --address and --user are required');
    const authType = stringFlag(values, 'auth') ?? 'key';
    if (!['key', 'password', 'agent'].includes(authType)) {
      throw usageError(`--auth: expected key, password or agent, got "${authType}"`);
    }
    const body: HostInput = {
      address,
      user,
      ...(values.port !== undefined && { port: intFlag(values, 'port', 65_535) }),
      groups: (values.group as string[] | undefined) ?? [],
      auth: {
        type: authType as 'key',
        ...(stringFlag(values, 'secret') && { secret: stringFlag(values, 'secret') }),
        ...(stringFlag(values, 'passphrase-secret') && {
          passphraseSecret: stringFlag(values, 'passphrase-secret'),
        }),
      },
      ...(stringFlag(values, 'host-key') && { hostKey: stringFlag(values, 'host-key') }),
      ...(values['trust-on-first-use'] && { trustOnFirstUse: true }),
      ...(stringFlag(values, 'jump') && { jump: stringFlag(values, 'jump') }),
    };
    const host = await client().hosts.put(positionals[0]!, body);
    out.result(host, () => out.line(`host ${positionals[0]} saved (${address})`));
    return EXIT.ok;
  },
};

const rm: Command = {
  name: 'rm',
  summary: 'remove a host added over the API',
  usage: 'hosts rm <name>',
  args: [1, 1],
  async run({ out, client, positionals }) {
    await client().hosts.delete(positionals[0]!);
    out.result({ removed: positionals[0] }, () => out.line(`host ${positionals[0]} removed`));
    return EXIT.ok;
  },
};

function checkRow(out: Output, c: HostCheck): string[] {
  const yes = (ok: boolean | undefined, text: string) =>
    ok ? out.paint('green', text) : out.paint('red', text);
  return [
    c.host,
    yes(c.reachable, c.reachable ? 'yes' : 'no'),
    c.hostKey ? yes(c.hostKey.status !== 'rejected', c.hostKey.status) : '-',
    c.auth ? yes(c.auth.ok, `${c.auth.ok ? 'ok' : 'refused'} (${c.auth.method})`) : '-',
    c.sudo ? yes(c.sudo.ok, c.sudo.ok ? 'ok' : 'no') : '-',
    c.latencyMs === null ? '-' : `${c.latencyMs} ms`,
    c.errors.map((e) => `${e.code}: ${e.message}`).join('; '),
  ];
}

const check: Command = {
  name: 'check',
  summary: 'preflight: reachability, host key, auth, sudo and latency (exit 1 when one fails)',
  usage: 'hosts check <name…>',
  args: [1, 100],
  async run({ out, client, positionals }) {
    const api = client();
    const checks = await Promise.all(positionals.map((name) => api.hosts.check(name)));
    const ok = checks.every((c) => c.errors.length === 0);
    out.result({ ok, checks }, () =>
      out.table(
        ['host', 'reachable', 'host key', 'auth', 'sudo', 'latency', 'errors'],
        checks.map((c) => checkRow(out, c)),
      ),
    );
    return ok ? EXIT.ok : EXIT.failed;
  },
};

/** The group. */
export const hosts: Command = {
  name: 'hosts',
  summary: 'the SSH inventory: list, add, rm, check',
  usage: 'hosts <list|add|rm|check>',
  subcommands: [list, add, rm, check],
};

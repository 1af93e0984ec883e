/**
 * Builds a `HostTarget` from an inventory entry: secret names become values through the lookup
 * the engine passes in, and a jump host is resolved the same way, recursively.
 */
import { StepError } from '../../errors.ts';
import type { HostEntry, Inventory } from '../../inventory/index.ts';
import type { HostAuth, HostTarget } from './types.ts';

/** What `toHostTarget` needs from the engine. */
export interface TargetSources {
  /** The value of a secret, or undefined when there is no such secret. */
  secret(name: string): string | undefined | Promise<string | undefined>;
  /** The worker's ssh-agent socket (from `SSH_AUTH_SOCK`, read once by the config). */
  agentSocket?: string;
}

/** A worker's inventory and secret store, as the SSH executor's host lookup reads them. */
export interface HostSources {
  inventory: { load(): Promise<Inventory> };
  secrets: { get(names: string[]): Promise<Record<string, string | undefined>> };
}

/**
 * `SshExecutorOptions.resolveHost` over a worker's inventory and secrets: what `conveyor worker`
 * uses, and what tests and benchmarks use to run SSH steps the same way.
 */
export function inventoryResolver(
  { inventory, secrets }: HostSources,
  options: Omit<TargetSources, 'secret'> = {},
): (host: string) => Promise<HostTarget> {
  return async (host) =>
    toHostTarget(await inventory.load(), host, {
      ...options,
      secret: async (name) => (await secrets.get([name]))[name],
    });
}

/** Resolves host `name` of `inventory` into a connectable target; unknown names and secrets fail. */
export async function toHostTarget(
  inventory: Inventory,
  name: string,
  sources: TargetSources,
): Promise<HostTarget> {
  const seen = new Set<string>();
  const build = async (hostName: string): Promise<HostTarget> => {
    const entry = inventory.hosts[hostName];
    if (!entry) throw new StepError('unknown_host', `host ${hostName} is not in the inventory`, false);
    if (seen.has(hostName))
      throw new StepError('unknown_host', `jump hosts of ${name} loop through ${hostName}`, false);
    seen.add(hostName);
    return {
      name: hostName,
      address: entry.address,
      port: entry.port,
      user: entry.user,
      auth: await auth(hostName, entry, sources),
      ...(entry.hostKey ? { hostKey: entry.hostKey } : {}),
      trustOnFirstUse: entry.trustOnFirstUse,
      ...(entry.jump ? { jump: await build(entry.jump) } : {}),
    };
  };
  return build(name);
}

async function auth(hostName: string, entry: HostEntry, sources: TargetSources): Promise<HostAuth> {
  const a = entry.auth;
  const need = async (secret: string, what: string) => {
    const value = await sources.secret(secret);
    if (value === undefined) {
      throw new StepError(
        'missing_secret',
        `host ${hostName}: secret ${secret} (its ${what}) is not set`,
        false,
      );
    }
    return value;
  };
  switch (a.type) {
    case 'key':
      return {
        type: 'key',
        privateKey: await need(a.secret ?? '', 'private key'),
        ...(a.passphraseSecret ? { passphrase: await need(a.passphraseSecret, 'key passphrase') } : {}),
      };
    case 'password':
      return { type: 'password', password: await need(a.secret ?? '', 'password') };
    case 'agent':
      return {
        type: 'agent',
        ...((a.socket ?? sources.agentSocket) ? { socket: a.socket ?? sources.agentSocket } : {}),
      };
  }
}

/**
 * Names in `hosts:` to host names, and the checks that keep those names unambiguous: a name is a
 * host or a group (never both), `all` is every host, and jump chains end.
 */
import type { Issue } from '../errors.ts';
import { ALL_GROUP, type HostEntry, type Inventory } from './schema.ts';

/**
 * The hosts a step's `hosts:` value stands for: `[name]` for a host, the group's members in
 * inventory order for a group, every host for `all`; `undefined` when nothing has that name.
 */
export function resolveTargets(inventory: Inventory, name: string): string[] | undefined {
  const hosts = inventory.hosts;
  if (Object.hasOwn(hosts, name)) return [name];
  const names = Object.keys(hosts);
  if (name === ALL_GROUP) return names.length ? names : undefined;
  const members = names.filter((h) => hosts[h]!.groups.includes(name));
  return members.length ? members : undefined;
}

/** Every group name used by some host, sorted (without the implicit `all`). */
export function groupNames(inventory: Inventory): string[] {
  const groups = new Set<string>();
  for (const entry of Object.values(inventory.hosts)) for (const g of entry.groups) groups.add(g);
  return [...groups].sort();
}

/**
 * Checks across entries that one entry's schema cannot: names used both as host and group, the
 * reserved `all`, jump hosts that are missing, the host itself, or part of a loop. Issue paths are
 * `hosts.<name>.<field>`. Run it after every change (file load, `PUT /v1/hosts/:name`).
 */
export function checkInventory(hosts: Record<string, HostEntry>): Issue[] {
  const issues: Issue[] = [];
  const groups = new Set(Object.values(hosts).flatMap((h) => h.groups));
  for (const [name, entry] of Object.entries(hosts)) {
    if (name === ALL_GROUP)
      issues.push({
        path: `hosts.${name}`,
        message: `"${ALL_GROUP}" is reserved for the group of every host`,
      });
    if (groups.has(name))
      issues.push({ path: `hosts.${name}`, message: `"${name}" is both a host and a group name` });
    entry.groups.forEach((g, i) => {
      if (g === ALL_GROUP)
        issues.push({
          path: `hosts.${name}.groups[${i}]`,
          message: `every host is already in "${ALL_GROUP}"`,
        });
    });
    if (entry.jump === undefined) continue;
    if (entry.jump === name) {
      issues.push({ path: `hosts.${name}.jump`, message: 'a host cannot be its own jump host' });
    } else if (!Object.hasOwn(hosts, entry.jump)) {
      issues.push({ path: `hosts.${name}.jump`, message: `unknown jump host "${entry.jump}"` });
    } else {
      const chain = jumpChain(hosts, name);
      if (chain.loops)
        issues.push({ path: `hosts.${name}.jump`, message: `jump hosts loop: ${chain.names.join(' → ')}` });
    }
  }
  return issues;
}

function jumpChain(hosts: Record<string, HostEntry>, start: string): { names: string[]; loops: boolean } {
  const names = [start];
  let current = hosts[start]?.jump;
  while (current !== undefined) {
    names.push(current);
    if (names.indexOf(current) !== names.length - 1) return { names, loops: true };
    current = hosts[current]?.jump;
  }
  return { names, loops: false };
}

/**
 * An OpenSSH known_hosts file, read-only: plain and hashed (`|1|salt|hash`) host fields, pattern
 * lists with `*`, `?` and `!negation`, `[host]:port` for non-default ports, and the `@revoked`
 * marker. `@cert-authority` lines are skipped: host certificates are not supported, and treating
 * a CA key as a host key would be wrong in both directions.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type PublicKey, parseKeyLine } from './host-key.ts';

interface Entry {
  marker: 'revoked' | null;
  matches(host: string): boolean;
  key: PublicKey;
}

/** The keys a known_hosts file lists for one host. */
export interface KnownHostKeys {
  keys: PublicKey[];
  revoked: PublicKey[];
}

/** A parsed known_hosts file. */
export class KnownHosts {
  private constructor(
    private readonly entries: Entry[],
    /** Lines that could not be parsed, 1-based, so a caller can warn about them. */
    readonly skipped: number[],
  ) {}

  /** Parses file contents; bad lines are skipped (and listed in `skipped`), like OpenSSH does. */
  static parse(text: string): KnownHosts {
    const entries: Entry[] = [];
    const skipped: number[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const fields = line.split(/\s+/);
      let marker: string | null = null;
      if (fields[0]?.startsWith('@')) marker = fields.shift()!;
      if (marker === '@cert-authority') return;
      const [hosts, type, data] = fields;
      if ((marker !== null && marker !== '@revoked') || !hosts || !type || !data) {
        skipped.push(i + 1);
        return;
      }
      try {
        entries.push({
          marker: marker === '@revoked' ? 'revoked' : null,
          matches: hostMatcher(hosts),
          key: parseKeyLine(`${type} ${data}`),
        });
      } catch {
        skipped.push(i + 1);
      }
    });
    return new KnownHosts(entries, skipped);
  }

  /** Reads and parses a file; a missing or unreadable file is an error naming the path. */
  static async load(path: string): Promise<KnownHosts> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      throw new Error(`cannot read known_hosts file ${path}: ${(cause as Error).message}`, { cause });
    }
    return KnownHosts.parse(text);
  }

  /** The keys listed for `address` on `port` (looked up as `address` or `[address]:port`). */
  lookup(address: string, port: number): KnownHostKeys {
    const host = hostField(address, port);
    const out: KnownHostKeys = { keys: [], revoked: [] };
    for (const e of this.entries) {
      if (!e.matches(host)) continue;
      (e.marker === 'revoked' ? out.revoked : out.keys).push(e.key);
    }
    return out;
  }
}

/** The string OpenSSH writes and hashes for a host: `host`, or `[host]:port` off port 22. */
export function hostField(address: string, port: number): string {
  const host = address.toLowerCase();
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostMatcher(field: string): (host: string) => boolean {
  if (field.startsWith('|1|')) {
    const [, , salt64, hash64] = field.split('|');
    const salt = Buffer.from(salt64 ?? '', 'base64');
    const hash = Buffer.from(hash64 ?? '', 'base64');
    if (salt.length === 0 || hash.length !== 20) throw new Error('bad hashed host');
    return (host) => {
      const mac = createHmac('sha1', salt).update(host).digest();
      return timingSafeEqual(mac, hash);
    };
  }
  const patterns = field
    .toLowerCase()
    .split(',')
    .filter((p) => p !== '')
    .map((p) =>
      p.startsWith('!')
        ? { negated: true, re: globToRegExp(p.slice(1)) }
        : { negated: false, re: globToRegExp(p) },
    );
  return (host) => {
    let matched = false;
    for (const p of patterns) {
      if (!p.re.test(host)) continue;
      // A negated pattern vetoes the whole line, whatever else matches (OpenSSH semantics).
      if (p.negated) return false;
      matched = true;
    }
    return matched;
  };
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

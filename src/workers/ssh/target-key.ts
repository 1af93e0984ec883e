/**
 * A stable identity for a resolved host: everything that shapes a connection (address, user,
 * credentials, host key policy, jump path). Hashed, so credentials never sit in a map key.
 */
import { createHash } from 'node:crypto';
import type { HostTarget } from './types.ts';

/** `<name>#<sha256 of the connection settings>`. */
export function targetKey(target: HostTarget): string {
  const hash = createHash('sha256');
  feed(hash, target);
  return `${target.name}#${hash.digest('hex').slice(0, 32)}`;
}

function feed(hash: ReturnType<typeof createHash>, t: HostTarget): void {
  const auth = t.auth;
  const secret =
    auth.type === 'key'
      ? [
          Buffer.isBuffer(auth.privateKey) ? auth.privateKey.toString('base64') : auth.privateKey,
          auth.passphrase ?? '',
        ]
      : auth.type === 'password'
        ? [auth.password]
        : [auth.socket ?? ''];
  hash.update(
    JSON.stringify([
      t.name,
      t.address,
      t.port,
      t.user,
      auth.type,
      ...secret,
      t.hostKey ?? '',
      !!t.trustOnFirstUse,
    ]),
  );
  if (t.jump) {
    hash.update('\0jump\0');
    feed(hash, t.jump);
  }
}

/**
 * Loopback unless told otherwise: an API without tokens may listen only where nothing but this
 * machine reaches it, unless anonymous access is asked for by name.
 */
import { isIP } from 'node:net';
import { ConveyorError } from '../../errors.ts';

/** True for `localhost`, 127.0.0.0/8, `::1` and IPv4-mapped loopback; any other name or address is not. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** The bind is refused: a non-loopback address with no tokens and no explicit opt-in. */
export class InsecureBindError extends ConveyorError {
  override name = 'InsecureBindError';
  constructor(host: string) {
    super(
      'insecure_bind',
      `refusing to listen on ${host} without API tokens: anyone who can reach it could run commands. ` +
        'Set CONVEYOR_API_TOKENS (or CONVEYOR_API_TOKENS_FILE), listen on HOST=127.0.0.1, ' +
        'or set CONVEYOR_ALLOW_ANONYMOUS=true to accept anonymous access',
    );
  }
}

/** Throws `InsecureBindError` when `host` is exposed without tokens; returns whether auth is off. */
export function checkExposure(host: string, tokenCount: number, allowAnonymous: boolean): boolean {
  if (tokenCount > 0) return false;
  if (!isLoopback(host) && !allowAnonymous) throw new InsecureBindError(host);
  return true;
}

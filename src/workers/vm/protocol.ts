/**
 * The wire protocol between the worker and a function VM's guest runner (`guest-runner.cjs`):
 * one JSON object per line on the guest's fd 3, a socketpair only the two ends hold. The guest is
 * untrusted, so everything it sends is size-capped by the channel and shape-checked here before
 * the executor looks at it. Keep this file and the runner in step: the runner is plain CommonJS
 * and cannot import these types.
 */

/** Worker → guest: run this function (sent once) or stop (cancel, timeout). */
export type HostMessage =
  | {
      t: 'run';
      /** File name of the compiled module inside the VM's private directory. */
      file: string;
      /** The whole `process.env` the function sees. */
      env: Record<string, string>;
      /** `ctx.inputs`, `ctx.steps`, `ctx.env`, `ctx.secrets`, `ctx.run`. */
      context: Record<string, unknown>;
      maxOutputBytes: number;
    }
  | { t: 'abort'; reason: string };

/** Why a guest reports a failure instead of a result. */
export type GuestErrorKind = 'load' | 'thrown' | 'uncaught' | 'exit' | 'invalid' | 'output_limit';

/** Guest → worker. `result` and `error` are terminal: the runner exits right after them. */
export type GuestMessage =
  | { t: 'ready' }
  /** The module is loaded and its default export is being called. */
  | { t: 'started' }
  | { t: 'result'; outputs: Record<string, unknown> }
  | { t: 'error'; kind: GuestErrorKind; name: string; message: string; stack: string; code: string }
  | { t: 'progress'; percent: number; message?: string }
  | { t: 'emit'; type: string; payload: unknown };

const KINDS = new Set<GuestErrorKind>(['load', 'thrown', 'uncaught', 'exit', 'invalid', 'output_limit']);
/** Error texts longer than this are cut: a guest must not flood the run document. */
const MAX_TEXT = 16 * 1024;

/** Thrown for a line that is not a well-formed guest message. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Parses and checks one line from the guest; throws `ProtocolError` on anything unexpected. */
export function parseGuestMessage(line: string): GuestMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError('guest sent a line that is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('guest sent a message that is not an object');
  }
  const m = value as Record<string, unknown>;
  switch (m.t) {
    case 'ready':
      return { t: 'ready' };
    case 'started':
      return { t: 'started' };
    case 'result':
      if (!isPlainObject(m.outputs)) throw new ProtocolError('result.outputs is not an object');
      return { t: 'result', outputs: m.outputs };
    case 'error':
      if (!KINDS.has(m.kind as GuestErrorKind)) throw new ProtocolError('error.kind is unknown');
      return {
        t: 'error',
        kind: m.kind as GuestErrorKind,
        name: text(m.name),
        message: text(m.message),
        stack: text(m.stack),
        code: text(m.code),
      };
    case 'progress': {
      if (typeof m.percent !== 'number' || !Number.isFinite(m.percent)) {
        throw new ProtocolError('progress.percent is not a number');
      }
      const percent = Math.min(100, Math.max(0, m.percent));
      return typeof m.message === 'string'
        ? { t: 'progress', percent, message: text(m.message) }
        : { t: 'progress', percent };
    }
    case 'emit':
      if (typeof m.type !== 'string' || m.type === '' || m.type.length > 256) {
        throw new ProtocolError('emit.type is not a non-empty string');
      }
      return { t: 'emit', type: m.type, payload: m.payload ?? null };
    default:
      throw new ProtocolError(
        `guest sent an unknown message type ${JSON.stringify(String(m.t)).slice(0, 40)}`,
      );
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, MAX_TEXT) : '';
}

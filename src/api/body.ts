/** Reads a request body as JSON or YAML by its media type, within a size limit. */
import type { Context } from 'hono';
import { parseBody } from '../flows/index.ts';
import { LIMITS } from '../flows/limits.ts';
import type { ApiDeps } from './context.ts';
import { HttpError } from './errors.ts';
import type { CheckedBody } from './submissions.ts';

const YAML_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

/** Largest body accepted, in bytes. */
export const MAX_BODY_BYTES = LIMITS.bodyBytes;

/** The parsed body; an empty body is `undefined` when `optional`. */
export async function readBody(
  c: Context,
  options: { yaml?: boolean; optional?: boolean } = {},
): Promise<unknown> {
  const text = await readText(c);
  if (text.trim() === '') {
    if (options.optional) return undefined;
    throw emptyBody();
  }
  const format = bodyFormat(c, options.yaml ?? false);
  // The parse is the next long phase: let waiting requests (health checks) in first.
  await new Promise((resolve) => setImmediate(resolve));
  return parseBody(text, format);
}

/**
 * A body that holds a definition (the body itself, or its `field`): parsed, bounded and
 * validated on the submission thread, off the event loop.
 */
export async function readDefinition(c: Context, deps: ApiDeps, field?: string): Promise<CheckedBody> {
  const { text, format } = await readDefinitionText(c);
  return deps.launcher.submissions.check(text, format, await deps.inventory.load(), field);
}

/** A body that holds a definition to register, as its text and format (the thread parses it). */
export async function readDefinitionText(c: Context): Promise<{ text: string; format: 'json' | 'yaml' }> {
  const text = await readText(c);
  if (text.trim() === '') throw emptyBody();
  return { text, format: bodyFormat(c, true) };
}

function bodyFormat(c: Context, yaml: boolean): 'json' | 'yaml' {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type === '' || type.endsWith('+json')) return 'json';
  if (yaml && YAML_TYPES.has(type)) return 'yaml';
  const message = `content type "${type}" is not accepted here: send application/json${yaml ? ' or application/yaml' : ''}`;
  throw new HttpError(415, 'unsupported_media_type', message, {}, [{ path: 'content-type', message }]);
}

function emptyBody(): HttpError {
  return new HttpError(400, 'invalid_input', 'request body is empty', {}, [
    { path: '', message: 'a body is required' },
  ]);
}

/**
 * The body as text, counted while it streams: a declared length over the limit is refused before
 * reading, a chunked body as soon as it passes the limit, so at most the limit is ever held. The
 * rest is left unread; the HTTP server drains or closes the connection after the answer.
 */
export async function readText(c: Context): Promise<string> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > MAX_BODY_BYTES)
    throw tooLarge(`declares ${declared} bytes`);
  const body = c.req.raw.body;
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BODY_BYTES) throw tooLarge('is longer');
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

function tooLarge(what: string): HttpError {
  const message = `the request body ${what}: the limit is ${MAX_BODY_BYTES} bytes`;
  return new HttpError(413, 'too_large', message, {}, [{ path: '', message }]);
}

/** Reads a request body as JSON or YAML by its media type, within a size limit. */
import type { Context } from 'hono';
import { parseBody } from '../flows/index.ts';
import { HttpError } from './errors.ts';

const YAML_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

/** Largest body accepted, in bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The parsed body; an empty body is `undefined` when `optional`. */
export async function readBody(
  c: Context,
  options: { yaml?: boolean; optional?: boolean } = {},
): Promise<unknown> {
  const declared = Number(c.req.header('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const text = await c.req.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw tooLarge();
  if (text.trim() === '') {
    if (options.optional) return undefined;
    throw new HttpError(400, 'invalid_input', 'request body is empty');
  }
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type === '' || type.endsWith('+json')) return parseBody(text, 'json');
  if (options.yaml && YAML_TYPES.has(type)) return parseBody(text, 'yaml');
  throw new HttpError(
    415,
    'unsupported_media_type',
    `content type "${type}" is not accepted here: send application/json${options.yaml ? ' or application/yaml' : ''}`,
  );
}

function tooLarge(): HttpError {
  return new HttpError(413, 'too_large', `request body is over ${MAX_BODY_BYTES} bytes`);
}

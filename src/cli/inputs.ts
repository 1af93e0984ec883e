/** `-i key=value` flags as run inputs, typed by the inputs the workflow declares. */
import type { InputDefinition } from '../flows/schema.ts';
import { usageError } from './errors.ts';

/** Parses the pairs; a number or boolean input's value is converted, anything else stays text. */
export function parseInputs(
  pairs: string[],
  declared: Record<string, InputDefinition> | undefined,
): Record<string, string | number | boolean> | undefined {
  if (pairs.length === 0) return undefined;
  const inputs: Record<string, string | number | boolean> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`-i ${pair}: expected key=value`);
    const key = pair.slice(0, eq);
    const text = pair.slice(eq + 1);
    const type = declared?.[key]?.type;
    if (type === 'number' && text.trim() !== '' && Number.isFinite(Number(text))) inputs[key] = Number(text);
    else if (type === 'boolean' && (text === 'true' || text === 'false')) inputs[key] = text === 'true';
    else inputs[key] = text;
  }
  return inputs;
}

/** Replaces secret values with `***` wherever text leaves a step (logs, errors, outputs, events). */
import { StepError } from '../errors.ts';
import { MaskStream, SecretAutomaton } from './mask-stream.ts';

export { MASK, MaskStream } from './mask-stream.ts';

/**
 * A masking function for a set of secret values, for whole strings (outputs, events, errors);
 * `stream()` gives a masker for text that arrives in chunks (a step's stdout or stderr).
 */
export interface Masker {
  (text: string): string;
  /** A fresh masker for one output stream. */
  stream(): MaskStream;
}

// Values of one or two characters would mask half of every log; GitHub skips them too.
const MIN_SECRET = 3;
// Each line of a multi-line secret is a secret too (a key printed line by line, or one line of
// it quoted in an error); shorter lines (`}`, blank, `==`) would mask ordinary text.
const MIN_LINE = 4;

/** The values to mask for `secrets`: each one, and each non-trivial line of a multi-line one. */
export function maskedValues(secrets: Iterable<string>): string[] {
  const values = new Set<string>();
  for (const secret of secrets) {
    if (secret.length >= MIN_SECRET) values.add(secret);
    if (!secret.includes('\n')) continue;
    for (const line of secret.split('\n')) {
      const trimmed = line.trim();
      if (trimmed.length >= MIN_LINE) values.add(trimmed);
    }
  }
  return [...values];
}

let passthrough: Masker | undefined;

/** Builds a masker; overlapping occurrences of secrets are masked as one `***`. */
export function createMasker(secrets: Iterable<string>): Masker {
  const values = maskedValues(secrets);
  if (values.length === 0) {
    // No secrets: one stateless masker serves every step.
    if (!passthrough) {
      const automaton = new SecretAutomaton([]);
      passthrough = Object.assign((text: string) => text, { stream: () => new MaskStream(automaton) });
    }
    return passthrough;
  }
  const automaton = new SecretAutomaton(values);
  const mask = (text: string) => {
    const stream = new MaskStream(automaton);
    return stream.write(text) + stream.end();
  };
  return Object.assign(mask, { stream: () => new MaskStream(automaton) });
}

/** How deep an emitted event or an output may nest (JSON.parse takes any depth; we do not). */
export const MAX_VALUE_DEPTH = 64;

/**
 * Masks every string inside a JSON-like value, object keys included (a secret can be a key as
 * well as a value). Throws a `StepError` past `MAX_VALUE_DEPTH` levels rather than recurse
 * without bound.
 */
export function maskDeep<T>(value: T, mask: Masker, depth = 0): T {
  if (typeof value === 'string') return mask(value) as T;
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_VALUE_DEPTH)
    throw new StepError('too_deep', `an output or event nests deeper than ${MAX_VALUE_DEPTH} levels`, false);
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, mask, depth + 1)) as T;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [mask(k), maskDeep(v, mask, depth + 1)]),
  ) as T;
}

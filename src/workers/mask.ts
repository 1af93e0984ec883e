/** Replaces secret values with `***` wherever text leaves a step (logs, errors, outputs, events). */

/** A masking function for a set of secret values (empty strings and very short values ignored). */
export type Masker = (text: string) => string;

/** Builds a masker; longer secrets first so one containing another is masked whole. */
export function createMasker(secrets: Iterable<string>): Masker {
  // Values of one or two characters would mask half of every log; GitHub skips them too.
  const values = [...new Set(secrets)].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const value of values) if (out.includes(value)) out = out.split(value).join('***');
    return out;
  };
}

/** Masks every string inside a JSON-like value. */
export function maskDeep<T>(value: T, mask: Masker): T {
  if (typeof value === 'string') return mask(value) as T;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, mask)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v, mask)])) as T;
  }
  return value;
}

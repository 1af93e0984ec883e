/**
 * Checks of `${{ }}` expressions at submission: they parse, read only the contexts allowed where
 * they stand, and read only inputs the workflow declares. What they reference is collected so
 * the caller can check `steps.<id>` against the graph.
 */
import {
  contextKeys,
  emptyReferences,
  parseExpression,
  type References,
  references,
  splitTemplate,
} from './expressions.ts';

/** Where expression checks report, and the input names the workflow declares (lower case). */
export interface Check {
  add: (path: string, message: string) => void;
  inputs: ReadonlySet<string>;
}

/** Parses every `${{ }}` of a template, reporting syntax errors and contexts not allowed here. */
export function checkTemplate(
  text: string,
  path: string,
  check: Check,
  allowed?: Set<string>,
  refs: References = emptyReferences(),
): References {
  let segments: ReturnType<typeof splitTemplate>;
  try {
    segments = splitTemplate(text);
  } catch (err) {
    check.add(path, (err as Error).message);
    return refs;
  }
  for (const segment of segments) {
    if (segment.kind !== 'expr') continue;
    checkExpression(segment.source, path, check, allowed, refs);
  }
  return refs;
}

/** Parses one expression and reports what `checkTemplate` reports; collects its references into `refs`. */
export function checkExpression(
  source: string,
  path: string,
  check: Check,
  allowed: Set<string> | undefined,
  refs: References,
): void {
  const { add } = check;
  try {
    const expr = parseExpression(source);
    const found = references(expr);
    for (const context of found.contexts) {
      if (allowed && !allowed.has(context)) add(path, `the "${context}" context is not available here`);
    }
    for (const name of contextKeys(expr, 'inputs')) {
      if (!check.inputs.has(name.toLowerCase()))
        add(path, `expression reads inputs.${name}, which is not declared under "inputs"`);
    }
    for (const s of found.steps) refs.steps.add(s);
    for (const f of found.functions) refs.functions.add(f);
  } catch (err) {
    add(path, (err as Error).message);
  }
}

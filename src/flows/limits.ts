/**
 * Bounds on what one submission may cost. Each is far above what a real workflow needs and low
 * enough that parsing, validating, compiling and adding the largest allowed definition stays
 * linear and small (README "Limits" lists them with the measured costs). Checked on the raw
 * parsed value, before zod and before any graph is built, so a hostile body is refused for the
 * price of one walk over what was sent.
 */
import { type Issue, ValidationError } from '../errors.ts';

/** The limits, in one place. */
export const LIMITS = {
  /** Request body, bytes (refused with 413 while it streams). */
  bodyBytes: 1024 * 1024,
  /** Steps in one workflow. */
  steps: 10_000,
  /** `needs` entries over all steps, counted after YAML aliases expand. */
  edges: 20_000,
  /** Bytes of one `run` script. */
  runBytes: 64 * 1024,
  /** Bytes of one `${{ … }}` expression (and of an `if`). */
  expressionBytes: 4 * 1024,
  /** Bytes of any string of a body (function sources included). */
  stringBytes: 128 * 1024,
  /** Nesting depth of a body: objects and arrays inside each other. */
  depth: 32,
  /** Aliases (`*name`) in a YAML body. */
  yamlAliases: 1_000,
  /** Nodes of a YAML body once its aliases are expanded. */
  yamlNodes: 250_000,
  /**
   * Bytes of the `on` block (as JSON) and of the `description`: both are kept in the summary of
   * every stored version, which every push, event and listing reads for every workflow.
   */
  triggersBytes: 64 * 1024,
  descriptionBytes: 8 * 1024,
} as const;

/** Keys that would reach an object's prototype machinery; refused anywhere in a body. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** A definition or body over one of `LIMITS`: HTTP 400, the limit named in each issue. */
export class LimitError extends ValidationError {
  override name = 'LimitError';
  override readonly code = 'limit_exceeded';
}

/** Throws `LimitError` for `issues` unless empty. */
export function refuseOver(issues: Issue[]): void {
  if (issues.length) throw new LimitError('request is over a limit', issues);
}

/** `Buffer.byteLength(s) > limit`, without encoding when the length alone decides. */
function overBytes(s: string, limit: number): boolean {
  if (s.length > limit) return true;
  return s.length * 3 > limit && Buffer.byteLength(s) > limit;
}

/**
 * Depth, string sizes and reserved keys of a parsed body (JSON or YAML). Iterative, so a deep
 * body cannot overflow the stack; YAML aliases were bounded before (see parse.ts), so the walk
 * costs at most `LIMITS.yamlNodes` steps.
 */
export function checkValueLimits(value: unknown): void {
  const issues: Issue[] = [];
  const reserved: Issue[] = [];
  const todo: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: '', depth: 0 }];
  while (todo.length && issues.length + reserved.length < 20) {
    const { value: node, path, depth } = todo.pop()!;
    if (typeof node === 'string') {
      if (overBytes(node, LIMITS.stringBytes)) {
        issues.push({ path, message: `string is over the limit of ${LIMITS.stringBytes} bytes` });
      }
      // No command line, environment variable or file name can carry one: refuse it here, not at run time.
      if (node.includes('\0')) reserved.push({ path, message: 'contains a NUL byte' });
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (depth >= LIMITS.depth) {
      issues.push({ path, message: `nesting is deeper than the limit of ${LIMITS.depth}` });
      continue;
    }
    const entries: Array<[string, unknown]> = Array.isArray(node)
      ? node.map((v, i) => [`[${i}]`, v])
      : Object.keys(node).map((k) => [k, (node as Record<string, unknown>)[k]]);
    for (const [key, child] of entries) {
      const at = key.startsWith('[') ? `${path}${key}` : path ? `${path}.${key}` : key;
      if (!Array.isArray(node) && key.includes('\0')) {
        reserved.push({ path: at, message: 'a key contains a NUL byte' });
        continue;
      }
      if (!Array.isArray(node) && RESERVED_KEYS.has(key)) {
        reserved.push({ path: at, message: `"${key}" is a reserved id` });
        continue;
      }
      todo.push({ value: child, path: at, depth: depth + 1 });
    }
  }
  refuseOver(issues);
  if (reserved.length) throw new ValidationError('body uses a reserved id or a NUL byte', reserved);
}

/**
 * Steps, total `needs` (after alias expansion: a shared array counts once per use) and the size
 * of `run` scripts and their expressions, read from the raw definition in O(steps).
 */
export function checkDefinitionLimits(input: unknown): void {
  checkSummaryLimits(input);
  const steps = (input as { steps?: unknown } | null)?.steps;
  if (!steps || typeof steps !== 'object' || Array.isArray(steps)) return;
  const issues: Issue[] = [];
  const ids = Object.keys(steps);
  if (ids.length > LIMITS.steps) {
    issues.push({ path: 'steps', message: `${ids.length} steps is over the limit of ${LIMITS.steps}` });
  }
  let edges = 0;
  const reserved = ids.filter((id) => RESERVED_KEYS.has(id));
  if (reserved.length) {
    throw new ValidationError(
      'workflow definition uses a reserved id',
      reserved.map((id) => ({ path: `steps.${id}`, message: `"${id}" is a reserved id` })),
    );
  }
  for (const id of ids) {
    const step = (steps as Record<string, unknown>)[id] as { needs?: unknown; run?: unknown; if?: unknown };
    if (!step || typeof step !== 'object') continue;
    if (Array.isArray(step.needs)) edges += step.needs.length;
    else if (step.needs !== undefined) edges += 1;
    if (typeof step.run === 'string') checkScript(step.run, `steps.${id}.run`, issues);
    if (typeof step.if === 'string' && overBytes(step.if, LIMITS.expressionBytes)) {
      issues.push({ path: `steps.${id}.if`, message: overExpression() });
    }
  }
  if (edges > LIMITS.edges) {
    issues.push({
      path: 'steps',
      message: `${edges} needs in total (aliases expanded) is over the limit of ${LIMITS.edges}`,
    });
  }
  refuseOver(issues.slice(0, 20));
}

/** The parts of a definition its stored summary keeps: `on` and `description`. */
function checkSummaryLimits(input: unknown): void {
  const { on, description } = (input ?? {}) as { on?: unknown; description?: unknown };
  const issues: Issue[] = [];
  if (typeof description === 'string' && overBytes(description, LIMITS.descriptionBytes)) {
    issues.push({ path: 'description', message: `over the limit of ${LIMITS.descriptionBytes} bytes` });
  }
  if (on !== undefined && overBytes(JSON.stringify(on) ?? '', LIMITS.triggersBytes)) {
    issues.push({ path: 'on', message: `over the limit of ${LIMITS.triggersBytes} bytes (as JSON)` });
  }
  refuseOver(issues);
}

function checkScript(run: string, path: string, issues: Issue[]): void {
  if (overBytes(run, LIMITS.runBytes)) {
    issues.push({ path, message: `run is over the limit of ${LIMITS.runBytes} bytes` });
    return;
  }
  for (let start = run.indexOf('${{'); start !== -1; start = run.indexOf('${{', start + 3)) {
    const end = run.indexOf('}}', start);
    // An unclosed expression is the parser's to report; its size is the rest of the script.
    if (overBytes(run.slice(start, end === -1 ? run.length : end + 2), LIMITS.expressionBytes)) {
      issues.push({ path, message: overExpression() });
      return;
    }
    if (end === -1) return;
  }
}

const overExpression = () => `an expression is over the limit of ${LIMITS.expressionBytes} bytes`;

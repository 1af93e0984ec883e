/**
 * GitHub-Actions-style `${{ … }}` expressions, parsed and evaluated by GitHub's own parser
 * (`@actions/expressions`), never by eval. This module adds what the library leaves to its
 * host: finding expressions inside text, the status functions, and the walks validation needs.
 */
import { data, Evaluator, type Expr, ExpressionError, Lexer, Parser } from '@actions/expressions';
import { ContextAccess, type FunctionCall, IndexAccess, Literal } from '@actions/expressions/ast';
import { wellKnownFunctions } from '@actions/expressions/funcs';
import type { FunctionDefinition } from '@actions/expressions/funcs/info';

/** The contexts an expression may read (docs/reference.md §3.5). */
export const CONTEXTS = ['inputs', 'env', 'secrets', 'steps', 'run', 'trigger'] as const;

const STATUS_FUNCTIONS = ['success', 'failure', 'always', 'cancelled'] as const;
const FUNCTION_INFO = STATUS_FUNCTIONS.map((name) => ({ name, minArgs: 0, maxArgs: 0 }));

/** A piece of a template string: literal text or the source of one `${{ }}` expression. */
export type Segment = { kind: 'text'; value: string } | { kind: 'expr'; source: string };

/**
 * Splits `text` into literal text and expressions. A `}}` inside a quoted string literal does
 * not close the expression. Throws on an unclosed `${{`.
 */
export function splitTemplate(text: string): Segment[] {
  const segments: Segment[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('${{', i);
    if (open < 0) break;
    if (open > i) segments.push({ kind: 'text', value: text.slice(i, open) });
    let j = open + 3;
    let inString = false;
    for (; j < text.length; j++) {
      const c = text[j];
      if (inString) {
        if (c === "'" && text[j + 1] === "'") j++;
        else if (c === "'") inString = false;
      } else if (c === "'") inString = true;
      else if (c === '}' && text[j + 1] === '}') break;
    }
    if (j >= text.length) throw new Error(`"\${{" at offset ${open} is never closed with "}}"`);
    segments.push({ kind: 'expr', source: text.slice(open + 3, j).trim() });
    i = j + 2;
  }
  if (i < text.length) segments.push({ kind: 'text', value: text.slice(i) });
  return segments;
}

/** True when `text` contains at least one `${{`. */
export function hasExpression(text: string): boolean {
  return text.includes('${{');
}

/** Parses one expression (without `${{ }}`); throws an `Error` with a readable message. */
export function parseExpression(source: string): Expr {
  if (source.trim() === '') throw new Error('empty expression');
  try {
    const { tokens } = new Lexer(source).lex();
    return new Parser(tokens, [...CONTEXTS], FUNCTION_INFO).parse();
  } catch (err) {
    if (err instanceof ExpressionError) throw new Error(`${err.message} in "${source}"`, { cause: err });
    throw err;
  }
}

/**
 * The source of an `if` condition: GitHub accepts a bare expression or one wrapped in `${{ }}`.
 * Mixing text and `${{ }}` is refused: its truthiness would be a surprise.
 */
export function conditionSource(condition: string | boolean): string {
  if (typeof condition === 'boolean') return String(condition);
  const trimmed = condition.trim();
  if (!hasExpression(trimmed)) return trimmed;
  const segments = splitTemplate(trimmed);
  const only = segments[0];
  if (segments.length !== 1 || only?.kind !== 'expr') {
    throw new Error('write the whole condition as one expression, without text around "${{ }}"');
  }
  return only.source;
}

/** What the status functions read: GitHub Actions job semantics. */
export interface StatusView {
  /** Every direct need succeeded (or failed with continueOnError) and the run is not cancelled. */
  success: boolean;
  /** Some ancestor failed (and did not continueOnError). */
  failure: boolean;
  cancelled: boolean;
}

/** The longest string one `format()` may build: a 4 KiB expression must not ask for gigabytes. */
export const MAX_FORMAT_BYTES = 1024 * 1024;

/**
 * GitHub's `format`, refusing before it builds a result over `MAX_FORMAT_BYTES`: each `{n}` may
 * repeat an argument, so `format('{0}{0}…', inputs.big)` multiplies a value by the placeholders.
 */
const builtinFormat = wellKnownFunctions.format!;
const boundedFormat: FunctionDefinition = {
  name: 'format',
  minArgs: builtinFormat.minArgs ?? 1,
  maxArgs: builtinFormat.maxArgs ?? 255,
  call: (...args) => {
    const template = args[0]!.coerceString();
    const sizes = args.slice(1).map((a) => a.coerceString().length);
    let size = template.length;
    for (const match of template.matchAll(/\{(\d+)/g)) size += sizes[Number(match[1])] ?? 0;
    if (size > MAX_FORMAT_BYTES)
      throw new Error(`format() would build about ${size} characters, over the limit of ${MAX_FORMAT_BYTES}`);
    return builtinFormat.call(...args);
  },
};

/**
 * Contexts converted once into the evaluator's values, for many expressions over the same data
 * (a step's `if`, command, env and cwd): the conversion is a JSON copy of every context, and a
 * step's contexts can be large (`inputs`, `trigger`, its needs' outputs).
 */
export class PreparedContexts {
  /** The evaluator's view of the contexts (read only: evaluating never changes it). */
  readonly dictionary: data.Dictionary;
  constructor(contexts: Record<string, unknown>) {
    // A JSON copy, as GitHub's runner does: what cannot be JSON (undefined, functions) is absent.
    this.dictionary = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary;
  }
}

/** The status functions and the bounded `format`, built once per status view. */
const functionsOf = new WeakMap<StatusView, Map<string, FunctionDefinition>>();
const NO_STATUS: StatusView = { success: true, failure: false, cancelled: false };

function functionsFor(status: StatusView = NO_STATUS): Map<string, FunctionDefinition> {
  let fns = functionsOf.get(status);
  if (fns) return fns;
  fns = new Map<string, FunctionDefinition>();
  const flag = (name: string, value: () => boolean) =>
    fns!.set(name, { name, minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(value()) });
  flag('success', () => status.success);
  flag('failure', () => status.failure);
  flag('always', () => true);
  flag('cancelled', () => status.cancelled);
  fns.set('format', boundedFormat);
  functionsOf.set(status, fns);
  return fns;
}

/**
 * Evaluates a parsed expression against plain JSON contexts (or contexts prepared once for
 * several expressions); returns plain JSON.
 */
export function evaluate(
  expr: Expr,
  contexts: Record<string, unknown> | PreparedContexts,
  status?: StatusView,
): unknown {
  const prepared = contexts instanceof PreparedContexts ? contexts : new PreparedContexts(contexts);
  const result = new Evaluator(expr, prepared.dictionary, functionsFor(status)).evaluate();
  return JSON.parse(JSON.stringify(result, data.replacer) ?? 'null');
}

/** GitHub's truthiness: false, 0, -0, NaN, '' and null are false. */
export function truthy(value: unknown): boolean {
  return !(
    value === false ||
    value === 0 ||
    value === '' ||
    value === null ||
    value === undefined ||
    Number.isNaN(value)
  );
}

/** The text a value becomes inside a string: strings as they are, objects as JSON, null as ''. */
export function toText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** What an expression refers to: step ids under `steps.<id>`, contexts, status functions. */
export interface References {
  steps: Set<string>;
  contexts: Set<string>;
  functions: Set<string>;
}

/** Walks an expression and collects what it refers to. */
export function references(expr: Expr, into: References = emptyReferences()): References {
  const visit = (node: Expr): void => {
    const n = node as unknown as Record<string, unknown>;
    if ('name' in n && !('args' in n) && !('index' in n)) {
      into.contexts.add((node as ContextAccess).name.lexeme);
      return;
    }
    if ('functionName' in n) {
      const call = node as FunctionCall;
      into.functions.add(call.functionName.lexeme.toLowerCase());
      call.args.forEach(visit);
      return;
    }
    if ('index' in n && 'expr' in n) {
      const access = node as IndexAccess;
      const base = access.expr as unknown as Record<string, unknown>;
      const literal = (access.index as unknown as Partial<Literal>).literal;
      if (
        'name' in base &&
        (access.expr as ContextAccess).name.lexeme === 'steps' &&
        literal?.kind === data.Kind.String
      ) {
        into.steps.add(literal.coerceString());
      }
      visit(access.expr);
      visit(access.index);
      return;
    }
    for (const key of ['expr', 'left', 'right', 'group'] as const) {
      if (key in n) visit(n[key] as Expr);
    }
    if (Array.isArray(n.args)) (n.args as Expr[]).forEach(visit);
  };
  visit(expr);
  return into;
}

/** An empty `References`. */
export function emptyReferences(): References {
  return { steps: new Set(), contexts: new Set(), functions: new Set() };
}

/**
 * The property names an expression reads directly under `context` with a literal name
 * (`inputs.ref`, `inputs['ref']`), as written. A computed index (`inputs[format(…)]`) cannot be
 * known before the run and is not listed.
 */
export function contextKeys(expr: Expr, context: string): Set<string> {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if (
      node instanceof IndexAccess &&
      node.expr instanceof ContextAccess &&
      node.expr.name.lexeme.toLowerCase() === context &&
      node.index instanceof Literal &&
      node.index.literal.kind === data.Kind.String
    ) {
      found.add(node.index.literal.coerceString());
    }
    // Tokens hold only source text; every other field may hold a sub-expression.
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) value.forEach(visit);
      else if (value && typeof value === 'object' && !('lexeme' in value)) visit(value);
    }
  };
  visit(expr);
  return found;
}

/**
 * Request bodies to plain values: JSON or YAML, with duplicate keys reported by path (JSON.parse
 * would silently keep the last one, and a duplicated step id is a mistake worth naming), and the
 * size limits of limits.ts checked before anything costs more than the text itself: YAML aliases
 * are counted and their expansion measured on the syntax tree, before it becomes a value.
 */
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type Node, parseDocument } from 'yaml';
import { type Issue, ValidationError } from '../errors.ts';
import { jsonDuplicateKeys } from './json-keys.ts';
import { checkValueLimits, LIMITS, refuseOver } from './limits.ts';
import { formatPath } from './path.ts';

/** Parses JSON or YAML text; throws `ValidationError` naming every duplicate key and syntax error. */
export function parseBody(text: string, format: 'json' | 'yaml'): unknown {
  if (format === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      const message = (cause as Error).message;
      throw new ValidationError(`body is not valid JSON: ${message}`, [{ path: '', message }], { cause });
    }
    checkValueLimits(value);
    const duplicates = jsonDuplicateKeys(text);
    if (duplicates.length) throw new ValidationError('body has duplicate keys', duplicates);
    return value;
  }
  // Collections as keys would be stringified with a console warning: keep the log quiet.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true, logLevel: 'error' });
  if (doc.errors.length) {
    const issues = doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0]! }));
    throw new ValidationError('body is not valid YAML', issues);
  }
  checkYamlSize(doc);
  const issues: Issue[] = [];
  findDuplicates(doc.contents, [], issues);
  if (issues.length) throw new ValidationError('body has duplicate keys', issues);
  // Aliases were bounded above, more strictly than yaml's own heuristic.
  const value = doc.toJS({ maxAliasCount: -1 });
  checkValueLimits(value);
  return value;
}

/**
 * Alias count, node count with every alias expanded, and nesting depth (aliases included), in
 * one post-order pass over the syntax tree: an anchored node's size is computed once and reused
 * by every alias of it, so a billion laughs costs its text, not its expansion.
 */
function checkYamlSize(doc: Document): void {
  const measured = new Map<Node, { size: number; height: number }>();
  // Anchor → node as met in document order (the latest wins, as in YAML); `Alias.resolve`
  // would walk the whole document once per alias.
  const anchors = new Map<string, Node>();
  let aliases = 0;
  const refuse = (message: string) => refuseOver([{ path: '', message }]);
  const root = doc.contents;
  if (!root) return;
  const stack: Array<{ node: Node; children: Node[]; next: number }> = [
    { node: root, children: [], next: -1 },
  ];
  while (stack.length) {
    const frame = stack[stack.length - 1]!;
    if (frame.next === -1) {
      frame.next = 0;
      if (!isAlias(frame.node) && frame.node.anchor) anchors.set(frame.node.anchor, frame.node);
      if (isMap(frame.node) || isSeq(frame.node)) {
        for (const item of frame.node.items) {
          if (isPair(item)) {
            if (item.key) frame.children.push(item.key as Node);
            if (item.value) frame.children.push(item.value as Node);
          } else frame.children.push(item as Node);
        }
      }
    }
    const child = frame.children[frame.next];
    if (child !== undefined) {
      frame.next++;
      if (stack.length > LIMITS.depth) refuse(`nesting is deeper than the limit of ${LIMITS.depth}`);
      stack.push({ node: child, children: [], next: -1 });
      continue;
    }
    stack.pop();
    let result = { size: 1, height: 0 };
    if (isAlias(frame.node)) {
      if (++aliases > LIMITS.yamlAliases) refuse(`more YAML aliases than the limit of ${LIMITS.yamlAliases}`);
      const source = anchors.get(frame.node.source);
      const known = source && measured.get(source);
      if (!known) refuse(`alias *${frame.node.source} refers to a node that contains it`);
      result = known!;
    } else if (frame.children.length) {
      result = { size: 1, height: 1 };
      for (const c of frame.children) {
        const m = measured.get(c)!;
        result.size += m.size;
        result.height = Math.max(result.height, m.height + 1);
      }
    }
    if (result.size > LIMITS.yamlNodes) {
      refuse(`the YAML expands (aliases resolved) to more nodes than the limit of ${LIMITS.yamlNodes}`);
    }
    if (result.height > LIMITS.depth)
      refuse(`nesting (aliases resolved) is deeper than the limit of ${LIMITS.depth}`);
    measured.set(frame.node, result);
  }
}

function findDuplicates(node: Node | null | undefined, path: Array<string | number>, issues: Issue[]): void {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (seen.has(key)) issues.push({ path: formatPath([...path, key]), message: `duplicate key "${key}"` });
      seen.add(key);
      findDuplicates(pair.value as Node, [...path, key], issues);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => findDuplicates(item as Node, [...path, i], issues));
  }
}

/**
 * Request bodies to plain values: JSON or YAML, with duplicate keys reported by path (JSON.parse
 * would silently keep the last one, and a duplicated step id is a mistake worth naming).
 */
import { isMap, isScalar, isSeq, type Node, parseDocument } from 'yaml';
import { type Issue, ValidationError } from '../errors.ts';
import { formatPath } from './path.ts';

/** Parses JSON or YAML text; throws `ValidationError` naming every duplicate key and syntax error. */
export function parseBody(text: string, format: 'json' | 'yaml'): unknown {
  if (format === 'json') {
    try {
      JSON.parse(text);
    } catch (cause) {
      throw new ValidationError(`body is not valid JSON: ${(cause as Error).message}`, [], { cause });
    }
  }
  // JSON is YAML 1.2: one parser gives both formats the same duplicate-key checks.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true });
  if (doc.errors.length) {
    const issues = doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0]! }));
    throw new ValidationError(`body is not valid ${format.toUpperCase()}`, issues);
  }
  const issues: Issue[] = [];
  findDuplicates(doc.contents, [], issues);
  if (issues.length) throw new ValidationError('body has duplicate keys', issues);
  return doc.toJS({ maxAliasCount: 100 });
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

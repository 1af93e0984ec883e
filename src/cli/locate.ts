/**
 * Issue paths (`steps.deploy.needs[0]`) back to where they are written: line and column in the
 * YAML or JSON text (JSON is YAML, so one parser gives both their node ranges), and the keys a
 * strict object of the definition schema knows, for "did you mean" on an unrecognized key.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { definitionSchema } from '../flows/schema.ts';

/** A text parsed for locating. */
export interface Located {
  /** Line and column (1-based) of the node at `path`, or of its deepest existing ancestor. */
  position(path: string): { line: number; column: number };
  /** Line and column of a key written under the object at `path` (its last copy with `last`). */
  keyPosition(path: string, key: string, last?: boolean): { line: number; column: number };
  /** Syntax errors with their positions. */
  errors: Array<{ line: number; column: number; message: string }>;
}

/** Splits `steps.a.needs[0]` into `['steps', 'a', 'needs', 0]`. */
export function pathSegments(path: string): Array<string | number> {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

/** Parses `text` once for positions. */
export function locate(text: string): Located {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, logLevel: 'silent' });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const find = (path: string): { node: Node | undefined; keyNode?: Node } => {
    let node = doc.contents as Node | null | undefined;
    let keyNode: Node | undefined;
    let found: Node | undefined = node ?? undefined;
    for (const segment of pathSegments(path)) {
      keyNode = undefined;
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment),
        );
        if (!pair) break;
        keyNode = pair.key as Node;
        node = (pair.value as Node | null) ?? keyNode;
      } else if (isSeq(node) && typeof segment === 'number' && node.items[segment]) {
        node = node.items[segment] as Node;
      } else break;
      found = node ?? undefined;
    }
    return { node: found, keyNode };
  };
  const positionOfNode = (node: Node | undefined) => at(node?.range?.[0] ?? 0);
  return {
    position: (path) => positionOfNode(find(path).node),
    keyPosition(path, key, last = false) {
      const parent = find(path).node;
      if (isMap(parent)) {
        const pairs = parent.items.filter((p) => isScalar(p.key) && String(p.key.value) === key);
        const pair = last ? pairs.at(-1) : pairs[0];
        if (pair) return positionOfNode(pair.key as Node);
      }
      return positionOfNode(parent);
    },
    errors: doc.errors.map((e) => ({
      line: e.linePos?.[0].line ?? 1,
      column: e.linePos?.[0].col ?? 1,
      message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
    })),
  };
}

/** The keys the definition schema allows in the object at `path`, or none when it is not a strict object. */
export function knownKeys(path: string): string[] {
  let schema: z.ZodType | undefined = definitionSchema;
  for (const segment of pathSegments(path)) {
    schema = objectOf(schema);
    if (schema instanceof z.ZodObject) schema = schema.shape[segment] as z.ZodType | undefined;
    else if (schema instanceof z.ZodRecord) schema = schema.valueType as z.ZodType;
    else if (schema instanceof z.ZodArray) schema = schema.element as z.ZodType;
    else return [];
  }
  const object = objectOf(schema);
  return object instanceof z.ZodObject ? Object.keys(object.shape) : [];
}

/** `schema` without optional/default wrappers; the object member of a union. */
function objectOf(schema: z.ZodType | undefined): z.ZodType | undefined {
  let s = schema;
  for (let i = 0; i < 8 && s; i++) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodUnion) {
      s =
        (s.options as z.ZodType[]).find((o) => objectOf(o) instanceof z.ZodObject) ??
        (s.options[0] as z.ZodType);
      if (s && !(s instanceof z.ZodUnion)) continue;
      return s;
    } else return s;
  }
  return s;
}

/**
 * Duplicate keys of a JSON text, by path. `JSON.parse` keeps the last of two equal keys without a
 * word; a duplicated step id is a mistake worth naming. One linear, iterative pass over text that
 * `JSON.parse` already accepted (so no syntax checks here), instead of a full YAML parse of it.
 */
import type { Issue } from '../errors.ts';
import { formatPath } from './path.ts';

type Frame =
  | { kind: 'object'; path: Array<string | number>; keys: Set<string>; key: string; expectKey: boolean }
  | { kind: 'array'; path: Array<string | number>; index: number };

/** Every duplicate key of valid JSON `text` (at most `max`), each with its path. */
export function jsonDuplicateKeys(text: string, max = 20): Issue[] {
  const issues: Issue[] = [];
  const stack: Frame[] = [];
  const childPath = (): Array<string | number> => {
    const top = stack[stack.length - 1];
    if (!top) return [];
    return [...top.path, top.kind === 'object' ? top.key : top.index];
  };
  for (let i = 0; i < text.length && issues.length < max; i++) {
    const ch = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (ch === 0x7b /* { */) {
      stack.push({ kind: 'object', path: childPath(), keys: new Set(), key: '', expectKey: true });
    } else if (ch === 0x5b /* [ */) {
      stack.push({ kind: 'array', path: childPath(), index: 0 });
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
    } else if (ch === 0x2c /* , */) {
      if (top?.kind === 'array') top.index++;
      else if (top) top.expectKey = true;
    } else if (ch === 0x22 /* " */) {
      let end = i + 1;
      let escaped = false;
      for (; end < text.length; end++) {
        const c = text.charCodeAt(end);
        if (c === 0x22) break;
        if (c === 0x5c /* \ */) {
          end++;
          escaped = true;
        }
      }
      if (top?.kind === 'object' && top.expectKey) {
        const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (top.keys.has(key))
          issues.push({ path: formatPath([...top.path, key]), message: `duplicate key "${key}"` });
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = end;
    }
  }
  return issues;
}

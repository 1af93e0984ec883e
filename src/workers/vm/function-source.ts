/**
 * A step's `function:` source → the ES module a VM imports. Everything goes through esbuild's
 * TypeScript loader: plain JavaScript passes unchanged in meaning, TypeScript loses its types,
 * and an inline source map keeps stack traces pointing at the user's own lines. Compiled
 * sources are memoized, so a workflow running the same function 200 times compiles it once.
 */
import { createHash } from 'node:crypto';
import { type TransformFailure, transform } from 'esbuild';
import { StepError } from '../../errors.ts';

const CACHE_SIZE = 256;
const cache = new Map<string, Promise<string>>();

/** Compiles `source`; throws a non-retriable `StepError` (`function_syntax`) on a syntax error. */
export function compileFunction(source: string): Promise<string> {
  const key = createHash('sha256').update(source).digest('base64');
  let compiled = cache.get(key);
  if (compiled) {
    // Map order is insertion order: re-inserting keeps recently used entries last.
    cache.delete(key);
  } else {
    compiled = compile(source);
    compiled.catch(() => cache.delete(key));
  }
  cache.set(key, compiled);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return compiled;
}

/** Starts esbuild's service ahead of the first step (its first call costs ~50 ms). */
export function warmUpCompiler(): void {
  void compileFunction('export default async () => ({})').catch(() => {});
}

async function compile(source: string): Promise<string> {
  try {
    const result = await transform(source, {
      loader: 'ts',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      sourcefile: 'function.ts',
    });
    return result.code;
  } catch (err) {
    const first = (err as Partial<TransformFailure>).errors?.[0];
    if (!first) throw err;
    const where = first.location ? `line ${first.location.line}, column ${first.location.column + 1}: ` : '';
    throw new StepError('function_syntax', `function does not compile: ${where}${first.text}`, false, {
      cause: err,
    });
  }
}

/**
 * Review of issue 8 (bounded costs): a secret may be 64 KiB (docs/reference.md), and every step
 * attempt that names it builds a masker: one trie node, each with its own `Map`, per code unit
 * of the value and of each of its lines. A 64 KiB PEM-like secret costs about 30 MB of heap and
 * 200 ms of CPU per attempt, so a step naming ten of them on a worker running eight steps asks for
 * gigabytes. Measured on the masker alone, while it is held (no collection can free it).
 */
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createMasker } from '../../src/workers/mask.ts';

describe("a masker's memory (review 8)", () => {
  it('a masker of one 64 KiB secret holds well under 100 times the secret', () => {
    const secret = randomBytes(48_000)
      .toString('base64')
      .match(/.{1,64}/g)!
      .join('\n');
    expect(secret.length).toBeLessThanOrEqual(64 * 1024);
    // What the masker keeps, not the garbage its construction leaves for the collector.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed;
    const masker = createMasker([secret]);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(masker(`x ${secret} y`)).toBe('x *** y');
    // 100 bytes of heap per byte of secret is 6.4 MB; the trie takes about 30 MB.
    expect(grown).toBeLessThan(100 * secret.length);
  });
});

import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogSink } from '../../src/workers/log-sink.ts';
import { createMasker, maskedValues } from '../../src/workers/mask.ts';

/** The obvious (slow) definition: every occurrence of any value, overlapping ones merged. */
function reference(text: string, secrets: string[]): string {
  const found: Array<[number, number]> = [];
  for (const value of maskedValues(secrets)) {
    for (let at = text.indexOf(value); at !== -1; at = text.indexOf(value, at + 1)) {
      found.push([at, at + value.length]);
    }
  }
  found.sort((x, y) => x[0] - y[0] || y[1] - x[1]);
  const merged: Array<[number, number]> = [];
  for (const [start, end] of found) {
    const last = merged.at(-1);
    if (last && start < last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  let out = '';
  let at = 0;
  for (const [start, end] of merged) {
    out += `${text.slice(at, start)}***`;
    at = end;
  }
  return out + text.slice(at);
}

/** Streams `text` cut at `cuts` through one stream masker. */
function streamed(secrets: string[], text: string | Buffer, cuts: number[]): string {
  const stream = createMasker(secrets).stream();
  let out = '';
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    out += stream.write(text.slice(from, cut));
    from = cut;
  }
  return out + stream.end();
}

describe('createMasker', () => {
  it('masks overlapping secrets and a secret that is a prefix of another as one range', () => {
    const mask = createMasker(['abcd', 'cdef', 'secret', 'secret-long', 'ab']);
    expect(mask('x abcdef y')).toBe('x *** y');
    expect(mask('secret-long secret-lo secret.')).toBe('*** ***-lo ***.');
    expect(mask('ab abcd')).toBe('ab ***');
    expect(mask('secretsecret')).toBe('******');
  });

  it('masks a multi-line secret whole and each of its non-trivial lines on its own', () => {
    const key = '-----BEGIN KEY-----\nMIIEvQIBADANBgkq\r\n  hkiG9w0BAQEFAASC\n==\n-----END KEY-----\n';
    const mask = createMasker([key]);
    expect(mask(`key: ${key}done`)).toBe('key: ***done');
    expect(mask('only MIIEvQIBADANBgkq here')).toBe('only *** here');
    expect(mask('> hkiG9w0BAQEFAASC')).toBe('> ***');
    expect(mask('a == b')).toBe('a == b');
  });

  it('leaves text without secrets alone', () => {
    expect(createMasker([])('anything')).toBe('anything');
    expect(createMasker(['xy'])('xy')).toBe('xy');
  });
});

describe('MaskStream', () => {
  const secrets = ['hunter22', 'hunter22-long', 'ter2', 'zzzz'];
  const text = 'log hunter22-lon hunter22-long hunhunter22 ter22zzzzz end hunter2';

  it('gives the same result for a text cut at every position and every pair of positions', () => {
    const whole = createMasker(secrets)(text);
    expect(whole).toBe(reference(text, secrets));
    for (let i = 0; i <= text.length; i++) {
      expect(streamed(secrets, text, [i])).toBe(whole);
      for (let j = i; j <= text.length; j++) expect(streamed(secrets, text, [i, j])).toBe(whole);
    }
  });

  it('holds back only a possible beginning of a secret, and releases it once it cannot be one', () => {
    const stream = createMasker(['password']).stream();
    expect(stream.write('my pass')).toBe('my ');
    expect(stream.held).toBe(4);
    expect(stream.write('port')).toBe('passport');
    expect(stream.held).toBe(0);
    expect(stream.write('a passw')).toBe('a ');
    expect(stream.write('ord!')).toBe('***!');
    expect(stream.write('pa')).toBe('');
    expect(stream.end()).toBe('pa');
  });

  it('holds less than the longest secret while a secret repeats without end', () => {
    const stream = createMasker(['abab']).stream();
    let out = '';
    for (let i = 0; i < 1000; i++) {
      out += stream.write('ab'.repeat(37));
      expect(stream.held).toBeLessThan(4);
    }
    expect(out + stream.write('!') + stream.end()).toBe('***!');
  });

  it('masks a UTF-8 secret whose bytes are split anywhere', () => {
    const secret = 'pässwörd-🔑-ключ';
    const bytes = Buffer.from(`before ${secret} after ü`);
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j += 3) {
        expect(streamed([secret], bytes, [i, j])).toBe('before *** after ü');
      }
    }
    // Without secrets too, characters split across chunks arrive whole.
    expect(streamed([], Buffer.from('ü🔑'), [1, 3])).toBe('ü🔑');
  });

  it('matches the reference for random secrets, texts and cuts', () => {
    const chars = fc.constantFrom('a', 'b', 'c', '\n');
    const str = (min: number, max: number) =>
      fc.array(chars, { minLength: min, maxLength: max }).map((a) => a.join(''));
    fc.assert(
      fc.property(
        fc.array(str(3, 8), { minLength: 1, maxLength: 4 }),
        str(0, 80),
        fc.array(fc.nat(80), { maxLength: 6 }),
        (secs, txt, cuts) => {
          const sorted = cuts.map((c) => Math.min(c, txt.length)).sort((x, y) => x - y);
          const out = streamed(secs, txt, sorted);
          expect(out).toBe(reference(txt, secs));
          for (const value of maskedValues(secs)) expect(out).not.toContain(value);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('LogSink', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never publishes a secret split by a pause, however long, and publishes safe text on time', async () => {
    vi.useFakeTimers();
    const written: string[] = [];
    const sink = new LogSink(
      async (_stream, text) => {
        written.push(text);
      },
      createMasker(['s3cr3t-value']),
      () => {},
      { flushMs: 100 },
    );
    sink.push('stdout', Buffer.from('token: s3cr'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(written.join('')).toBe('token: ');
    sink.push('stdout', Buffer.from('3t-value\nnext s3'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(written.join('')).toBe('token: ***\nnext ');
    sink.push('stdout', Buffer.from('x\n'));
    await sink.close();
    expect(written.join('')).toBe('token: ***\nnext s3x\n');
  });

  it('releases what it held back when the attempt ends', async () => {
    const written: string[] = [];
    const sink = new LogSink(
      async (stream, text) => {
        written.push(`${stream}:${text}`);
      },
      createMasker(['s3cr3t-value']),
      () => {},
    );
    sink.push('stderr', 'ends with s3cr3t');
    sink.push('stdout', 'out');
    await sink.close();
    // One masker serves both streams (a secret split between them is one secret in the stored
    // log), so held-back text goes out with the chunk that released it.
    expect(written.sort()).toEqual(['stderr:ends with ', 'stdout:s3cr3tout']);
  });
});

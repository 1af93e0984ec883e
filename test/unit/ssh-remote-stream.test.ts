import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecordSplitter, type RemoteRecord } from '../../src/workers/ssh/remote-stream.ts';
import { envAssignments, shellQuote } from '../../src/workers/ssh/shell.ts';

const M = '\x1ecvy0123456789abcdef:';

function split(chunks: Buffer[], max = 1024) {
  const data: Buffer[] = [];
  const records: RemoteRecord[] = [];
  const s = new RecordSplitter(
    M,
    max,
    (b) => data.push(Buffer.from(b)),
    (r) => records.push(r),
  );
  for (const c of chunks) s.push(c);
  s.end();
  return { data: Buffer.concat(data).toString('latin1'), records };
}

function cut(buf: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (buf.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of at) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out;
}

describe('RecordSplitter', () => {
  it('separates output from records however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', 'b', '\n', '\x1e', 'c', 'v', 'y', '0', ':'), maxLength: 60 }),
        fc.string({ maxLength: 60 }),
        fc.string({ maxLength: 40 }),
        fc.array(fc.nat(400), { maxLength: 12 }),
        (before, middle, outputs, points) => {
          const out = Buffer.from(outputs, 'utf8');
          const ev = '{"type":"t"}\n';
          const stream = Buffer.concat([
            Buffer.from(`${before}${M}P4242\n${middle}`, 'latin1'),
            Buffer.from(`${M}X3 ${out.length} ${ev.length}\n`, 'latin1'),
            out,
            Buffer.from(ev),
          ]);
          const { data, records } = split(cut(stream, points));
          expect(data).toBe(before + middle);
          expect(records.map((r) => r.type)).toEqual(['pid', 'exit']);
          expect(records[0]).toEqual({ type: 'pid', pid: 4242 });
          const exit = records[1] as Extract<RemoteRecord, { type: 'exit' }>;
          expect(exit.code).toBe(3);
          expect(exit.output!.toString('utf8')).toBe(outputs);
          expect(exit.events!.toString()).toBe(ev);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('holds back only a possible marker prefix, and releases it when it is not one', () => {
    const seen: string[] = [];
    const s = new RecordSplitter(
      M,
      10,
      (b) => seen.push(b.toString('latin1')),
      () => {},
    );
    s.push(Buffer.from('progress 50%\x1ecv'));
    expect(seen).toEqual(['progress 50%']);
    s.push(Buffer.from('x more'));
    expect(seen.join('')).toBe('progress 50%\x1ecvx more');
  });

  it('reports sizes without payload when a file is over the cap, and the other records', () => {
    const { records, data } = split(
      [
        Buffer.from(
          `${M}Fsetsid is not installed\n${M}Ssudo: a password is required \n${M}D\n${M}X0 5000 0\nafter`,
        ),
      ],
      100,
    );
    expect(records).toEqual([
      { type: 'setup', message: 'setsid is not installed' },
      { type: 'sudo', message: 'sudo: a password is required' },
      { type: 'cwd' },
      { type: 'exit', code: 0, outputBytes: 5000, eventBytes: 0 },
    ]);
    expect(data).toBe('after');
  });

  it('reports marker lines that are no record as malformed, and carries on', () => {
    const bad = ['Q', 'Pabc', 'P1', 'P12x', 'A', 'X1 2', 'X1 2 three', 'X-1 0 0', ''];
    const { records, data } = split([Buffer.from(`${bad.map((h) => `${M}${h}\n`).join('')}${M}P7\nok`)]);
    expect(records).toEqual([
      ...bad.map((header) => ({ type: 'malformed', header })),
      { type: 'pid', pid: 7 },
    ]);
    expect(data).toBe('ok');
  });

  it('lets a marker look-alike without a newline through as output', () => {
    const { data, records } = split([Buffer.from(`${M}${'z'.repeat(5000)}`)]);
    expect(records).toEqual([]);
    expect(data).toBe(`${M}${'z'.repeat(5000)}`);
  });
});

describe('shellQuote', () => {
  it('round-trips any value through a real sh', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')),
        (value) => {
          const out = execFileSync('sh', ['-c', `printf '%s' ${shellQuote(value)}`]);
          expect(out.toString('utf8')).toBe(Buffer.from(value, 'utf8').toString('utf8'));
        },
      ),
      { numRuns: 25 },
    );
    const nasty = 'it\'s; $(touch /tmp/pwned) `id` "q" \\ \n line2 $HOME *';
    expect(execFileSync('sh', ['-c', `printf '%s' ${shellQuote(nasty)}`]).toString()).toBe(nasty);
  });

  it('refuses NUL and invalid variable names', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
    expect(() => envAssignments({ 'BAD-NAME': 'x' })).toThrow(/not a valid shell name/);
    expect(() => envAssignments({ '1X': 'x' })).toThrow();
    expect(envAssignments({ A_1: "x'y" })).toEqual([`A_1='x'\\''y'`]);
  });
});

import { describe, expect, it } from 'vitest';
import { OutputLimitError, StepError } from '../../src/errors.ts';
import { createMasker, maskDeep } from '../../src/workers/mask.ts';
import { parseEvents, parseOutputs } from '../../src/workers/outputs.ts';

describe('parseOutputs', () => {
  it('reads name=value and heredoc blocks', () => {
    const text = 'a=1\nb=x=y\nmulti<<EOF\nline 1\n\nline 3\nEOF\nempty=\r\nlast<<END\nEND\n';
    expect(parseOutputs(text, 1024)).toEqual({
      a: '1',
      b: 'x=y',
      multi: 'line 1\n\nline 3',
      empty: '',
      last: '',
    });
  });
  it('fails clearly on bad lines, unclosed blocks and the cap', () => {
    expect(() => parseOutputs('just text\n', 1024)).toThrow(StepError);
    expect(() => parseOutputs('x<<EOF\nno end\n', 1024)).toThrow(/never closes/);
    expect(() => parseOutputs('9bad=1\n', 1024)).toThrow(/not a valid output name/);
    expect(() => parseOutputs(`x=${'a'.repeat(2000)}`, 1024)).toThrow(OutputLimitError);
  });
});

describe('parseEvents', () => {
  it('reads JSON lines', () => {
    expect(parseEvents('{"type":"a.b","payload":{"x":1}}\n\n{"type":"c"}\n', 1024)).toEqual([
      { type: 'a.b', payload: { x: 1 } },
      { type: 'c', payload: null },
    ]);
    expect(() => parseEvents('nope\n', 1024)).toThrow(/not JSON/);
    expect(() => parseEvents('{"payload":1}\n', 1024)).toThrow(/no string "type"/);
  });
});

describe('masking', () => {
  it('masks every secret, longest first, deep in values', () => {
    const mask = createMasker(['hunter2', 'hunter2-long', 'ab']);
    expect(mask('pw hunter2-long and hunter2, ab')).toBe('pw *** and ***, ab');
    expect(maskDeep({ a: ['hunter2'], b: { c: 'x hunter2' }, n: 1 }, mask)).toEqual({
      a: ['***'],
      b: { c: 'x ***' },
      n: 1,
    });
  });
});

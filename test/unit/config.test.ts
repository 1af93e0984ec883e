import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ValidationError } from '../../src/errors.ts';

describe('CONVEYOR_RETENTION_DAYS', () => {
  it('defaults to 14 days and takes decimals', () => {
    expect(loadConfig({}).CONVEYOR_RETENTION_DAYS).toBe(14);
    expect(loadConfig({ CONVEYOR_RETENTION_DAYS: '0.5' }).CONVEYOR_RETENTION_DAYS).toBe(0.5);
    expect(loadConfig({ CONVEYOR_RETENTION_DAYS: '90' }).CONVEYOR_RETENTION_DAYS).toBe(90);
  });

  it.each(['0', '-1', 'abc', '', '3651', '0.00000001'])('refuses %j, naming the variable', (value) => {
    let error: unknown;
    try {
      loadConfig({ CONVEYOR_RETENTION_DAYS: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual(['CONVEYOR_RETENTION_DAYS']);
    expect((error as ValidationError).message).toContain('CONVEYOR_RETENTION_DAYS');
  });
});

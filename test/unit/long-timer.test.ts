import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongTimeout } from '../../src/workers/long-timer.ts';

const DAY = 86_400_000;

describe('setLongTimeout', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('fires a 25-day delay at 25 days, not before (plain setTimeout would fire at once)', () => {
    const fn = vi.fn();
    setLongTimeout(fn, 25 * DAY);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(25 * DAY - MAX_TIMER_MS - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(100 * DAY);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('fires delays of several chunks exactly once, at the right time', () => {
    const fn = vi.fn();
    const ms = 3 * MAX_TIMER_MS + 5;
    setLongTimeout(fn, ms);
    vi.advanceTimersByTime(ms - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('fires short delays like setTimeout', () => {
    const fn = vi.fn();
    setLongTimeout(fn, 500);
    vi.advanceTimersByTime(499);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('cancels before the first chunk and between chunks', () => {
    const early = vi.fn();
    setLongTimeout(early, 25 * DAY)();
    const late = vi.fn();
    const cancel = setLongTimeout(late, 60 * DAY);
    vi.advanceTimersByTime(MAX_TIMER_MS + 1);
    cancel();
    vi.advanceTimersByTime(100 * DAY);
    expect(early).not.toHaveBeenCalled();
    expect(late).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never fires for Infinity and refuses NaN', () => {
    const fn = vi.fn();
    setLongTimeout(fn, Number.POSITIVE_INFINITY);
    vi.advanceTimersByTime(1000 * DAY);
    expect(fn).not.toHaveBeenCalled();
    expect(() => setLongTimeout(fn, Number.NaN)).toThrow(RangeError);
  });
});

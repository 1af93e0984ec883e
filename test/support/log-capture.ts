/** Captures a pino logger's output in memory, as text and as parsed lines, with a waiter. */
import type { DestinationStream } from 'pino';

/** One parsed log line. */
export type LogLine = Record<string, unknown> & { msg?: string };

/** A captured log. */
export interface LogCapture {
  /** Give this to `createLogger` (or pino) as its destination. */
  stream: DestinationStream;
  /** Everything written so far. */
  text(): string;
  lines(): LogLine[];
  /** Resolves with the first line that matches, as soon as it is written. */
  waitFor(match: (line: LogLine) => boolean): Promise<LogLine>;
}

/** A fresh capture. */
export function captureLog(): LogCapture {
  let text = '';
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  return {
    stream: {
      write(chunk: string) {
        text += chunk;
        for (const line of chunk.split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
        for (const wake of [...waiters]) wake();
      },
    },
    text: () => text,
    lines: () => lines,
    waitFor(match) {
      return new Promise((resolve) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return false;
          waiters.delete(check);
          resolve(found);
          return true;
        };
        if (!check()) waiters.add(check);
      });
    },
  };
}

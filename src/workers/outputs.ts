/**
 * Parsers for the files a shell step writes: `$CONVEYOR_OUTPUT` (GitHub's `name=value` and
 * `name<<DELIM` … `DELIM` forms) and `$CONVEYOR_EVENTS` (JSON lines). Shared by every executor
 * that runs shell commands.
 */
import { OutputLimitError, StepError } from '../errors.ts';
import type { EmittedEvent } from './executor.ts';

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Parses an outputs file; throws `OutputLimitError` past `maxBytes`, `StepError` on bad lines. */
export function parseOutputs(text: string, maxBytes: number): Record<string, string> {
  if (Buffer.byteLength(text) > maxBytes) {
    throw new OutputLimitError(
      `outputs are ${Buffer.byteLength(text)} bytes, over the ${maxBytes}-byte cap ($CONVEYOR_OUTPUT)`,
    );
  }
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc as unknown as [string, string, string];
      checkName(name, i);
      const body: string[] = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        const l = lines[i]!.replace(/\r$/, '');
        if (l === delim) {
          closed = true;
          break;
        }
        body.push(l);
      }
      if (!closed) {
        throw new StepError('bad_output', `output "${name}": delimiter "${delim}" never closes`, false);
      }
      outputs[name] = body.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) {
      throw new StepError(
        'bad_output',
        `$CONVEYOR_OUTPUT line ${i + 1}: expected name=value or name<<DELIM`,
        false,
      );
    }
    const name = line.slice(0, eq);
    checkName(name, i);
    outputs[name] = line.slice(eq + 1);
  }
  return outputs;
}

function checkName(name: string, index: number): void {
  if (!NAME.test(name)) {
    throw new StepError(
      'bad_output',
      `$CONVEYOR_OUTPUT line ${index + 1}: "${name}" is not a valid output name`,
      false,
    );
  }
}

/** Parses a `$CONVEYOR_EVENTS` file of JSON lines `{"type": …, "payload": …}`. */
export function parseEvents(text: string, maxBytes: number): EmittedEvent[] {
  if (Buffer.byteLength(text) > maxBytes) {
    throw new OutputLimitError(`events are over the ${maxBytes}-byte cap ($CONVEYOR_EVENTS)`);
  }
  const events: EmittedEvent[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new StepError('bad_event', `$CONVEYOR_EVENTS line ${i + 1} is not JSON`, false, { cause });
    }
    const type = (value as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || type === '') {
      throw new StepError('bad_event', `$CONVEYOR_EVENTS line ${i + 1} has no string "type"`, false);
    }
    events.push({ type, payload: (value as { payload?: unknown }).payload ?? null });
  });
  return events;
}

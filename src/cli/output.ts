/**
 * The output layer every command writes through: plain text or one JSON document (`--json`),
 * colours only on a terminal and never with NO_COLOR, tables aligned on visible width, and text
 * from the server (logs, messages) stripped of control sequences before it reaches a terminal.
 */
import type { Readable } from 'node:stream';

/** The process streams a command uses (tests and the watch view pass their own). */
export interface Io {
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean };
}

const STYLES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  cyan: [36, 39],
  grey: [90, 39],
} as const;
/** A style name. */
export type Style = keyof typeof STYLES;

// CSI and OSC sequences, then every other C0/C1 control but tab: a log line must not move the
// cursor, retitle the terminal or hide text.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** `text` without escape sequences and control characters (newlines kept). */
export function sanitize(text: string): string {
  return text.replace(CONTROL, '');
}

/** Visible width of a line we produced (our own colours removed). */
export function visibleLength(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: our own SGR sequences
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** Output options. */
export interface OutputOptions {
  json: boolean;
  /** @defaultValue stdout is a terminal and NO_COLOR is unset or empty */
  colour?: boolean;
  noColor?: string;
}

/** Where commands print. */
export class Output {
  readonly json: boolean;
  readonly colour: boolean;
  readonly isTTY: boolean;
  constructor(
    readonly io: Io,
    options: OutputOptions,
  ) {
    this.json = options.json;
    this.isTTY = !!io.stdout.isTTY;
    this.colour = options.colour ?? (this.isTTY && !options.noColor && !options.json);
  }

  /** Terminal width, or 100 when not a terminal. */
  get columns(): number {
    return this.io.stdout.columns || 100;
  }

  /** Wraps `text` in a style when colours are on. */
  paint(style: Style, text: string): string {
    if (!this.colour) return text;
    const [on, off] = STYLES[style];
    return `\x1b[${on}m${text}\x1b[${off}m`;
  }

  /** A line on stdout (nothing in JSON mode: the document is the output). */
  line(text = ''): void {
    if (!this.json) this.io.stdout.write(`${text}\n`);
  }

  /** Raw text on stdout, in any mode (logs). */
  write(text: string): void {
    this.io.stdout.write(text);
  }

  /** A note on stderr: progress and hints, never part of the output proper. */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  /** The JSON document of the command (JSON mode only). */
  document(value: unknown): void {
    if (this.json) this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Prints `value` as JSON, or runs `human` to print it as text. */
  result(value: unknown, human: () => void): void {
    if (this.json) this.document(value);
    else human();
  }

  /** An aligned table with a dim header; cells are sanitised. */
  table(header: string[], rows: string[][]): void {
    if (rows.length === 0) return;
    const cells = rows.map((r) => r.map((c) => sanitize(c).replace(/\n/g, ' ')));
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => visibleLength(r[i] ?? ''))));
    const format = (row: string[]) =>
      row
        .map((c, i) => (i === row.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleLength(c))))
        .join('  ')
        .trimEnd();
    this.line(this.paint('dim', format(header)));
    for (const row of cells) this.line(format(row));
  }
}

/** Colour of a run or step status. */
export function statusStyle(status: string): Style {
  switch (status) {
    case 'succeeded':
      return 'green';
    case 'failed':
      return 'red';
    case 'running':
      return 'blue';
    case 'cancelled':
    case 'skipped':
      return 'yellow';
    default:
      return 'grey';
  }
}

/** `1.2s`, `3m04s`, `1h02m`. */
export function formatDuration(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Milliseconds between two ISO times (the second one now when missing), or undefined. */
export function elapsed(
  from: string | null | undefined,
  to?: string | null,
  now = Date.now(),
): number | undefined {
  if (!from) return undefined;
  return (to ? Date.parse(to) : now) - Date.parse(from);
}

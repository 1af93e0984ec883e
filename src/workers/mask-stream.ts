/**
 * Streaming secret masking: an Aho–Corasick automaton over the secrets' UTF-16 code units, and a
 * per-stream masker that holds back only the text that may still turn into a secret (the longest
 * suffix of what it has seen that is a proper prefix of some secret) and releases it as soon as
 * the next bytes rule that out. Every code unit covered by an occurrence of any secret is masked;
 * overlapping occurrences become one `***`. Cost: one automaton step per code unit, and code
 * units that cannot start a secret are skipped by a regular expression while nothing is pending.
 */
import { StringDecoder } from 'node:string_decoder';

/** The replacement of one masked range. */
export const MASK = '***';

/** The matching automaton of a set of secrets (built once per step, shared by its streams). */
export class SecretAutomaton {
  /** Transitions of each state by code unit; state 0 is the root. */
  private readonly next: Array<Map<number, number>> = [new Map()];
  private readonly fail: number[] = [0];
  /** Length of the state's string. */
  private readonly depth: number[] = [0];
  /**
   * How much text a stream in this state holds back: the longest suffix of what it read that
   * is a proper prefix of a secret (a complete secret that nothing extends needs no holding).
   */
  readonly hold: number[] = [0];
  /** Length of the longest secret ending at this state (0: none). */
  readonly longest: number[] = [0];
  /** Matches any code unit a secret starts with: text before it can be released at once. */
  readonly starts: RegExp;

  constructor(secrets: readonly string[]) {
    for (const secret of secrets) this.add(secret);
    this.link();
    const firsts = [...this.next[0]!.keys()].map((c) => `\\u${c.toString(16).padStart(4, '0')}`);
    this.starts = new RegExp(`[${firsts.join('')}]`, 'g');
  }

  /** The state after reading code unit `code` in `state`. */
  step(state: number, code: number): number {
    let s = state;
    for (;;) {
      const to = this.next[s]!.get(code);
      if (to !== undefined) return to;
      if (s === 0) return 0;
      s = this.fail[s]!;
    }
  }

  private add(secret: string): void {
    let state = 0;
    for (let i = 0; i < secret.length; i++) {
      const code = secret.charCodeAt(i);
      let to = this.next[state]!.get(code);
      if (to === undefined) {
        to = this.next.length;
        this.next.push(new Map());
        this.fail.push(0);
        this.depth.push(i + 1);
        this.hold.push(0);
        this.longest.push(0);
        this.next[state]!.set(code, to);
      }
      state = to;
    }
    this.longest[state] = secret.length;
  }

  /** Failure links breadth first; a state's longest match is its own or its failure state's. */
  private link(): void {
    const queue = [...this.next[0]!.values()];
    for (const first of queue) this.hold[first] = this.next[first]!.size > 0 ? 1 : 0;
    for (let head = 0; head < queue.length; head++) {
      const state = queue[head]!;
      for (const [code, to] of this.next[state]!) {
        this.fail[to] = this.step(this.fail[state]!, code);
        if (this.longest[to] === 0) this.longest[to] = this.longest[this.fail[to]!]!;
        this.hold[to] = this.next[to]!.size > 0 ? this.depth[to]! : this.hold[this.fail[to]!]!;
        queue.push(to);
      }
    }
  }
}

/** Masks one output stream chunk by chunk; what it returns never holds a secret. */
export class MaskStream {
  private state = 0;
  /** Text seen but not yet released: a possible secret's beginning, or a range that may grow. */
  private pending = '';
  /** Masked ranges in `pending`, sorted and disjoint, `[start, end)`. */
  private ranges: Array<[number, number]> = [];
  /** The range at 0 continues one already released as `***`. */
  private continued = false;
  /** Created on the first bytes: whole strings (outputs, errors) need none. */
  private decoder: StringDecoder | undefined;

  constructor(private readonly automaton: SecretAutomaton) {}

  /** Code units held back, waiting for the text that decides whether they are a secret. */
  get held(): number {
    return this.pending.length;
  }

  /** Takes a chunk (bytes are decoded as UTF-8 across chunk boundaries); returns what is safe. */
  write(chunk: string | Buffer): string {
    if (typeof chunk === 'string') return this.scan(chunk);
    this.decoder ??= new StringDecoder('utf8');
    return this.scan(this.decoder.write(chunk));
  }

  /** The end of the stream: releases everything held (it cannot become a secret any more). */
  end(): string {
    const tail = this.scan(this.decoder?.end() ?? '');
    const rest = this.render(this.pending.length);
    this.state = 0;
    this.continued = false;
    return tail + rest;
  }

  private scan(text: string): string {
    if (!text) return '';
    const a = this.automaton;
    const buf = this.pending + text;
    this.pending = buf;
    for (let i = buf.length - text.length; i < buf.length; i++) {
      if (this.state === 0) {
        a.starts.lastIndex = i;
        const next = a.starts.exec(buf);
        if (!next) break;
        i = next.index;
      }
      this.state = a.step(this.state, buf.charCodeAt(i));
      const len = a.longest[this.state]!;
      if (len) this.cover(i + 1 - len, i + 1);
    }
    // Releasable: everything before the possible secret's beginning.
    return this.render(buf.length - a.hold[this.state]!);
  }

  private cover(start: number, end: number): void {
    let from = start;
    let last = this.ranges.at(-1);
    while (last && last[1] > from) {
      from = Math.min(from, last[0]);
      this.ranges.pop();
      last = this.ranges.at(-1);
    }
    this.ranges.push([from, end]);
  }

  /**
   * Releases `pending[0, cut)` with its masked ranges replaced, keeping the rest. A range that
   * runs past `cut` (a secret repeated, overlapping itself) is shown as `***` now and its rest
   * kept as a continuation, so held text stays shorter than the longest secret and the output
   * does not depend on where chunks were cut.
   */
  private render(cut: number): string {
    if (cut === 0) return '';
    let out = '';
    let at = 0;
    let used = 0;
    let straddles = false;
    for (const [start, end] of this.ranges) {
      if (start >= cut) break;
      out += this.pending.slice(at, start);
      if (!(start === 0 && this.continued)) out += MASK;
      if (end > cut) {
        straddles = true;
        at = cut;
        break;
      }
      at = end;
      used++;
    }
    out += this.pending.slice(at, cut);
    this.pending = this.pending.slice(cut);
    this.ranges = this.ranges.slice(used).map(([s, e]) => [Math.max(0, s - cut), e - cut]);
    this.continued = straddles;
    return out;
  }
}

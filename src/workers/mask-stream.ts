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
  /**
   * Transitions of each state by code unit; state 0 is the root. Most states of a long secret
   * have one child: that one lives in two plain arrays, a Map only holds the rest (a Map per
   * state cost hundreds of bytes per secret character).
   */
  private readonly code1: Int32Array;
  private readonly to1: Int32Array;
  private readonly more: Map<number, Map<number, number>> = new Map();
  private readonly fail: Int32Array;
  /** Length of the state's string. */
  private readonly depth: Int32Array;
  /**
   * How much text a stream in this state holds back: the longest suffix of what it read that
   * is a proper prefix of a secret (a complete secret that nothing extends needs no holding).
   */
  readonly hold: Int32Array;
  /** Length of the longest secret ending at this state (0: none). */
  readonly longest: Int32Array;
  /** States in use (state 0, the root, is always there). */
  private size = 1;
  /** Matches any code unit a secret starts with: text before it can be released at once. */
  readonly starts: RegExp;

  constructor(secrets: readonly string[]) {
    // At most one state per code unit of every secret, plus the root: allocated once.
    const capacity = 1 + secrets.reduce((n, secret) => n + secret.length, 0);
    this.code1 = new Int32Array(capacity).fill(-1);
    this.to1 = new Int32Array(capacity);
    this.fail = new Int32Array(capacity);
    this.depth = new Int32Array(capacity);
    this.hold = new Int32Array(capacity);
    this.longest = new Int32Array(capacity);
    for (const secret of secrets) this.add(secret);
    this.link();
    const firsts = [...this.children(0)].map(([c]) => `\\u${c.toString(16).padStart(4, '0')}`);
    this.starts = new RegExp(`[${firsts.join('')}]`, 'g');
  }

  /** The state after reading code unit `code` in `state`. */
  step(state: number, code: number): number {
    let s = state;
    for (;;) {
      const to = this.child(s, code);
      if (to !== undefined) return to;
      if (s === 0) return 0;
      s = this.fail[s]!;
    }
  }

  private add(secret: string): void {
    let state = 0;
    for (let i = 0; i < secret.length; i++) {
      const code = secret.charCodeAt(i);
      let to = this.child(state, code);
      if (to === undefined) {
        to = this.size++;
        this.depth[to] = i + 1;
        if (this.code1[state] === -1) {
          this.code1[state] = code;
          this.to1[state] = to;
        } else {
          const others = this.more.get(state) ?? new Map<number, number>();
          others.set(code, to);
          this.more.set(state, others);
        }
      }
      state = to;
    }
    this.longest[state] = secret.length;
  }

  private child(state: number, code: number): number | undefined {
    if (this.code1[state] === code) return this.to1[state];
    return this.more.get(state)?.get(code);
  }

  private linkChild(state: number, code: number, to: number, queue: number[]): void {
    this.fail[to] = this.step(this.fail[state]!, code);
    if (this.longest[to] === 0) this.longest[to] = this.longest[this.fail[to]!]!;
    this.hold[to] = this.code1[to] !== -1 ? this.depth[to]! : this.hold[this.fail[to]!]!;
    queue.push(to);
  }

  private *children(state: number): Generator<[number, number]> {
    if (this.code1[state] === -1) return;
    yield [this.code1[state]!, this.to1[state]!];
    const others = this.more.get(state);
    if (others) yield* others;
  }

  /** Failure links breadth first; a state's longest match is its own or its failure state's. */
  private link(): void {
    const queue = [...this.children(0)].map(([, to]) => to);
    for (const first of queue) this.hold[first] = this.code1[first] !== -1 ? 1 : 0;
    for (let head = 0; head < queue.length; head++) {
      const state = queue[head]!;
      if (this.code1[state] === -1) continue;
      this.linkChild(state, this.code1[state]!, this.to1[state]!, queue);
      for (const [code, to] of this.more.get(state) ?? []) this.linkChild(state, code, to, queue);
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

/**
 * The hardening GitHub recommends, done for the user: every `${{ }}` in a `run` command becomes
 * a reference to an environment variable holding its value, so no value is ever parsed as shell
 * code. `"${{ x }}"` keeps the value whole; unquoted it splits like any shell variable.
 */
import { splitTemplate } from './expressions.ts';
import { type CommandTemplate, exprVar } from './workflow.ts';

type Quote = 'none' | 'single' | 'double';

/** Rewrites a `run` command; throws when an expression sits where the shell would not expand it. */
export function shellTemplate(run: string): CommandTemplate {
  const exprs: string[] = [];
  let text = '';
  let quote: Quote = 'none';
  for (const segment of splitTemplate(run)) {
    if (segment.kind === 'text') {
      quote = scanQuotes(segment.value, quote);
      text += segment.value;
      continue;
    }
    if (quote === 'single') {
      throw new Error(
        `"\${{ ${segment.source} }}" is inside single quotes, where the shell expands nothing: use double quotes`,
      );
    }
    text += `\${${exprVar(exprs.length)}}`;
    exprs.push(segment.source);
  }
  return { text, exprs };
}

/** Follows POSIX quoting through `text`, starting in state `quote`; returns the state after it. */
function scanQuotes(text: string, quote: Quote): Quote {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === 'single') {
      if (c === "'") quote = 'none';
    } else if (c === '\\') {
      i++;
    } else if (quote === 'double') {
      if (c === '"') quote = 'none';
    } else if (c === "'") quote = 'single';
    else if (c === '"') quote = 'double';
  }
  return quote;
}

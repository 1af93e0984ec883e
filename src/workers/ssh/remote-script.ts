/**
 * Shell pieces shared by the agent (agent-script.ts) and the worker's own kill path: `live`, which
 * tells whether a process group still has a running process, and the kill command the worker
 * sends on a channel of its own when a step's agent is gone but its process group may not be.
 */
import { shellQuote } from './shell.ts';

/**
 * Kills a step's process group: TERM, up to `graceMs` for it to go, then KILL. Prints `TERM` or
 * `KILL` (which one ended it), so the step can report the signal.
 */
export function buildKillCommand(pgid: number, sudo: boolean, graceMs: number): string {
  if (!Number.isInteger(pgid) || pgid < 2) throw new RangeError(`bad process group id ${pgid}`);
  const g = `-${pgid}`;
  const polls = Math.max(1, Math.ceil(graceMs / 50));
  const script = [
    liveFunction(false),
    `kill -s TERM -- ${g} 2>/dev/null || { echo GONE; exit 0; }`,
    'i=0',
    `while [ $i -lt ${polls} ] && live ${pgid}; do sleep 0.05 2>/dev/null || sleep 1; i=$((i+1)); done`,
    `if live ${pgid}; then kill -s KILL -- ${g} 2>/dev/null; echo KILL; else echo TERM; fi`,
  ].join('\n');
  return `exec ${sudo ? 'sudo -n ' : ''}sh -c ${shellQuote(script)}`;
}

/**
 * `live <pgid>`: whether a process of the group is still running. `kill -s 0` alone also counts
 * zombies, which linger when the group's parent died and init reaps lazily, and would make every
 * abort wait out the whole grace time. So: `kill -s 0` as a cheap "nothing left at all" (not
 * under sudo, where it cannot see root's processes), then `pgrep -r` (procps-ng 3.3.16+), which
 * skips zombies, then a /proc scan where pgrep lacks `-r` (busybox, procps before 3.3.16).
 */
export function liveFunction(sudo: boolean): string {
  return [
    'live() {',
    sudo ? '' : '  kill -s 0 -- -"$1" || return 1',
    // Trusted only when it printed nothing on stderr: busybox and old procps answer usage errors.
    '  u=$(pgrep -r R,S,D,T,t,W,I -g "$1" 2>&1 >/dev/null); r=$?; [ -z "$u" ] && [ $r -le 1 ] && return $r',
    '  [ -r /proc/self/stat ] || { kill -s 0 -- -"$1"; return; }',
    '  q=$1',
    '  for f in /proc/[0-9]*/stat; do',
    '    read -r r < "$f" || continue',
    '    r=${r##*) }; set -- $r',
    '    [ "$3" = "$q" ] && [ "$1" != Z ] && return 0',
    '  done',
    '  return 1',
    '} 2>/dev/null',
  ]
    .filter(Boolean)
    .join('\n');
}

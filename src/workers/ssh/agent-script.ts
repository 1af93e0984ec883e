/**
 * The resident agent: one POSIX sh per pooled channel, started once with `exec sh -s` and fed
 * its program and then one request per step on stdin. It runs each step in its own session
 * (`setsid`) so the whole tree can be signalled as one group, streams the step's stdout and
 * stderr on the channel as they come, and reports the group id, the exit code and the
 * `$CONVEYOR_OUTPUT` / `$CONVEYOR_EVENTS` files as marker records (see remote-stream.ts). When
 * its stdin ends (the worker closed the channel, or the connection died) it kills the running
 * step's group (TERM, then KILL after the grace time) before it exits. A signalled agent just
 * dies (sh runs no trap while it blocks reading its stdin); the worker sees the channel's exit
 * and kills the step's group over a channel of its own.
 *
 * Requests (shell commands the agent's own parser reads, every argument single-quoted):
 *   s <id> <marker> <sudo 0|1> <cwd or ''> <maxOutputBytes> <polls> <command> [NAME=value…]
 *   k <pgid>       abort the running step: TERM its group, KILL it after `polls` × 50 ms
 * One step at a time per agent: the worker sends the next `s` only after both the `X` record on
 * stdout and the `E` record on stderr of the previous one.
 *
 * Records, `<marker><letter><text>\n`:
 *   stdout, agent marker:  A<pid> ready · F<message> cannot run (no setsid)
 *   stdout, step marker:   P<pgid> · F<message> (temp dir not writable) · S<sudo message> ·
 *                          D (no such cwd) · X<code> <outBytes> <evBytes> then both files
 *   stderr, step marker:   E, after the step's last stderr byte (the two streams are not
 *                          ordered with each other, so each gets its own end)
 */
import { liveFunction } from './remote-script.ts';
import { shellQuote } from './shell.ts';

/** Per step: what the worker sends. */
export interface AgentStepRequest {
  /** [a-z0-9]; names the step's temp files. */
  id: string;
  marker: string;
  sudo: boolean;
  cwd?: string;
  maxOutputBytes: number;
  killGraceMs: number;
  command: string;
  /** Already validated `NAME=value` pairs (unquoted). */
  env: Array<[string, string]>;
}

/** The exec request that starts an agent: short, one line, fine for any login shell. */
export const AGENT_BOOTSTRAP = 'exec sh -s';

/**
 * The prologue of every step's `sh -c`: `$1` marker, `$2` pid file (sudo steps, whose group id
 * the runner cannot know otherwise: they report it themselves; else empty), `$3` cwd.
 */
const STEP_PROLOGUE = [
  'if [ -n "$2" ]; then echo "$$" > "$2"; printf "%sP%s\\n" "$1" "$$"; fi',
  'if [ -n "$3" ]; then cd -- "$3" 2>/dev/null || { printf "%sD\\n" "$1"; printf "%s\\n" "conveyor: working directory $3 does not exist or is not accessible" >&2; exit 1; }; fi',
  'shift 3',
  '',
].join('\n');

/** Kills group `$1`: TERM, up to `$2` polls of 50 ms, then KILL. Run as root for sudo steps. */
const KILL_SCRIPT = [
  liveFunction(false),
  'kill -s TERM -- -"$1" 2>/dev/null || exit 0',
  'i=0',
  'while [ $i -lt "$2" ] && live "$1"; do sleep 0.05 2>/dev/null || sleep 1; i=$((i+1)); done',
  'live "$1" && kill -s KILL -- -"$1" 2>/dev/null',
  'exit 0',
].join('\n');

/**
 * The agent's state file on the host, as a double-quoted shell word: it holds the running
 * step's group id. `id` is [0-9a-f], random per agent.
 */
export function agentStateFile(id: string): string {
  if (!/^[0-9a-f]+$/.test(id)) throw new RangeError(`bad agent id ${id}`);
  return `"\${TMPDIR:-/tmp}/conveyor-agent-${id}.g"`;
}

/** The agent's program, written on its stdin right after the channel opens. */
export function agentProgram(agentMarker: string, id: string): string {
  return [
    `AM=${shellQuote(agentMarker)}`,
    `W=${shellQuote(STEP_PROLOGUE)}`,
    `K=${shellQuote(KILL_SCRIPT)}`,
    // Step state: T temp file stem, P pid file, U sudo, Q polls, M marker; r the running
    // runner, r0 the one before (reaped one step late, off the critical path). G holds the
    // running step's group id, for the exit path (a builtin write per step, no fork).
    "T='' P='' U=0 Q=20 M='' r='' r0=''",
    `command -v setsid >/dev/null 2>&1 || { printf '%sF%s\\n' "$AM" 'setsid is not installed on the host (util-linux)'; exit 254; }`,
    `G=${agentStateFile(id)}`,
    'set -C; if ! : > "$G" 2>/dev/null; then set +C; printf \'%sF%s\\n\' "$AM" "cannot create $G (is ${TMPDIR:-/tmp} writable?)"; exit 254; fi; set +C',
    liveFunction(true).replace('live()', 'lv()'),
    liveFunction(false),
    // `live` for the step's user: under sudo `kill -s 0` cannot see root's processes.
    'al() { if [ "$U" = 1 ]; then lv "$1"; else live "$1"; fi; }',
    'k() {',
    '  case $1 in ""|*[!0-9]*) return ;; esac',
    '  if [ "$U" = 1 ]; then sudo -n sh -c "$K" sh "$1" "$Q"; else sh -c "$K" sh "$1" "$Q"; fi </dev/null >/dev/null 2>&1',
    '}',
    // At the end of stdin: the running step's group goes with the agent.
    'q() {',
    '  if [ -n "$r" ] && kill -s 0 "$r" 2>/dev/null; then',
    '    if [ "$U" = 1 ]; then read -r g < "$P"; else read -r g < "$G"; fi 2>/dev/null && k "$g"',
    '    rm -f -- "$T.out" "$T.events" "$P" </dev/null >/dev/null 2>&1',
    '  fi',
    '  rm -f -- "$G" </dev/null >/dev/null 2>&1',
    '  exit',
    '}',
    'trap q EXIT',
    's() {',
    '  [ -n "$r0" ] && wait "$r0" 2>/dev/null',
    '  r0=$r; M=$2; U=$3; Q=$6; T="${TMPDIR:-/tmp}/conveyor-$1"; P=""; [ "$3" = 1 ] && P="$T.pid"',
    '  x "$@" &',
    '  r=$!',
    '}',
    // The runner, one per step, in the background so the agent keeps reading (for `k`, EOF).
    'x() {',
    '  o="$T.out" e="$T.events" d=$4 n=$5 c=$7; shift 7',
    // The step's files exist (empty) when it starts, as on every executor. noclobber: they are
    // created with O_EXCL, so nothing planted in /tmp is followed. Sudo steps get a pid file.
    '  set -C',
    '  if ! { : > "$o" && : > "$e" && { [ -z "$P" ] || : > "$P"; }; } 2>/dev/null; then',
    '    set +C; printf \'%sF%s\\n\' "$M" "cannot create $T.* (is ${TMPDIR:-/tmp} writable?)"; printf \'%sE\\n\' "$M" >&2; exit',
    '  fi',
    '  set +C',
    '  if [ "$U" = 1 ] && ! v=$(sudo -n true 2>&1 </dev/null); then',
    '    printf \'%sS%s\\n\' "$M" "$(printf \'%s\' "$v" | tr \'\\n\' \' \')"; rm -f -- "$o" "$e" "$P"',
    '    printf \'%sE\\n\' "$M" >&2; exit',
    '  fi',
    // The step's env is set in its own process only, so no step variable can touch the
    // runner's. Under sudo it has to cross on env's command line, as sudo clears the rest.
    '  if [ "$U" = 1 ]; then',
    '    sudo -n -- env "$@" CONVEYOR_OUTPUT="$o" CONVEYOR_EVENTS="$e" setsid -w sh -c "$W$c" sh "$M" "$P" "$d" &',
    '  else',
    '    ( export "$@" CONVEYOR_OUTPUT="$o" CONVEYOR_EVENTS="$e"; exec setsid sh -c "$W$c" sh "$M" "$P" "$d" ) &',
    '  fi',
    '  j=$!',
    // Not a process group leader, setsid(1) calls setsid(2) without forking: $j is the group.
    // Reported from here rather than by the step's shell: off the command's critical path.
    '  [ "$U" = 1 ] || { echo "$j" > "$G"; printf \'%sP%s\\n\' "$M" "$j"; }',
    // From here on the runner's own stderr would only carry job notices ("Terminated").
    '  exec 4>&2 2>/dev/null',
    '  wait "$j"; c=$?',
    // What the command left running in its group: TERM it, give it the grace time, then KILL.
    '  g=$j; [ "$U" = 1 ] && { read -r g < "$P" || g=""; }',
    '  if [ -n "$g" ] && al "$g"; then',
    '    if [ "$U" = 1 ]; then sudo -n kill -s TERM -- -"$g"; else kill -s TERM -- -"$g"; fi',
    '    i=0; while [ $i -lt "$Q" ] && al "$g"; do sleep 0.05 || sleep 1; i=$((i+1)); done',
    '    if al "$g"; then if [ "$U" = 1 ]; then sudo -n kill -s KILL -- -"$g"; else kill -s KILL -- -"$g"; fi; fi',
    '  fi',
    '  if [ -s "$o" ] || [ -s "$e" ]; then',
    '    a=0 b=0; [ -s "$o" ] && a=$(wc -c < "$o"); [ -s "$e" ] && b=$(wc -c < "$e"); a=$((a)); b=$((b))',
    '    printf \'%sX%s %s %s\\n\' "$M" "$c" "$a" "$b"',
    '    if [ "$a" -le "$n" ] && [ "$b" -le "$n" ]; then',
    '      [ "$a" -gt 0 ] && cat -- "$o"; [ "$b" -gt 0 ] && cat -- "$e"',
    '    fi',
    '  else printf \'%sX%s 0 0\\n\' "$M" "$c"; fi',
    '  printf \'%sE\\n\' "$M" >&4',
    // After the result: the next step need not wait for this.
    '  exec rm -f -- "$o" "$e" ${P:+"$P"} </dev/null >/dev/null',
    '}',
    `printf '%sA%s\\n' "$AM" "$$"`,
    '',
  ].join('\n');
}

/** The `s` request line for one step. */
export function stepRequest(r: AgentStepRequest): string {
  const polls = Math.max(1, Math.ceil(r.killGraceMs / 50));
  const words = [
    's',
    r.id,
    r.marker,
    r.sudo ? '1' : '0',
    r.cwd ?? '',
    String(r.maxOutputBytes),
    String(polls),
    r.command,
    ...r.env.map(([name, value]) => `${name}=${value}`),
  ];
  return `${words.map((w, i) => (i === 0 ? w : shellQuote(w))).join(' ')}\n`;
}

/** The `k` request line: abort the running step, whose group is `pgid`. */
export function abortRequest(pgid: number): string {
  if (!Number.isInteger(pgid) || pgid < 2) throw new RangeError(`bad process group id ${pgid}`);
  return `k ${pgid}\n`;
}

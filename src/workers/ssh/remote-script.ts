/**
 * The shell programs sent over an exec channel. The wrapper runs the step's command in its own
 * session (`setsid`) so the whole process tree can be signalled as one group; reports the
 * group id and, at the end, the exit code and the `$CONVEYOR_OUTPUT` / `$CONVEYOR_EVENTS` files
 * as marker records on stdout (one channel per step, no second round trip); removes the files;
 * and kills the group if the channel's stdin reaches EOF, which is what the remote side sees
 * when the worker aborts the step or the connection dies.
 *
 * Records are `<marker><letter><text>\n`, see remote-stream.ts:
 *   P<pgid>                    the step's process group, written before the command starts
 *   F<message>                 the wrapper could not set up (no setsid, temp dir not writable)
 *   S<message>                 `sudo -n true` failed
 *   D                          the working directory does not exist
 *   X<code> <outBytes> <evBytes>   the command's exit code, then both files' bytes (omitted when
 *                              either is over the cap, so the sizes alone report the breach)
 */
import { shellQuote } from './shell.ts';

/** What one attempt runs. */
export interface RemoteScriptOptions {
  /** Unique per attempt ([a-z0-9]); names the remote temp files. */
  id: string;
  /** Unique per attempt; starts every record. */
  marker: string;
  command: string;
  /** Already validated names (see `envAssignments`). */
  env: string[];
  cwd?: string;
  sudo: boolean;
  maxOutputBytes: number;
  /**
   * TERM → KILL grace for what the command leaves running when it ends, and (plus a second,
   * so the worker's own kill channel acts first) for the stdin-EOF watcher.
   */
  killGraceMs: number;
  /**
   * The login shell runs POSIX sh scripts as they are (sh, dash, bash, ash): send the wrapper
   * itself rather than `exec sh -c '<wrapper>'`, one process start less per step.
   */
  posixLoginShell?: boolean;
}

/** The exec request for one step attempt. */
export function buildRemoteCommand(o: RemoteScriptOptions): string {
  const m = o.marker;
  const k = o.sudo ? 'sudo -n ' : '';
  const inner = [
    `printf '${m}P%s\\n' "$$"; echo "$$" > "$1"; shift`,
    o.cwd !== undefined
      ? `cd -- ${shellQuote(o.cwd)} 2>/dev/null || { printf '${m}D\\n'; printf '%s\\n' ${shellQuote(`conveyor: working directory ${o.cwd} does not exist or is not accessible`)} >&2; exit 1; }`
      : '',
    o.command,
  ]
    .filter(Boolean)
    .join('\n');
  const env = [...o.env, 'CONVEYOR_OUTPUT="$o"', 'CONVEYOR_EVENTS="$e"'].join(' ');
  const start = o.sudo
    ? `sudo -n -- env ${env} setsid -w sh -c ${shellQuote(inner)} sh "$p" &`
    : `export ${env}\nsetsid sh -c ${shellQuote(inner)} sh "$p" &`;
  const polls = Math.max(1, Math.ceil(o.killGraceMs / 50));
  const wrapper = [
    `t="\${TMPDIR:-/tmp}/conveyor-${o.id}"; o="$t.out"; e="$t.events"; p="$t.pid"`,
    `command -v setsid >/dev/null 2>&1 || { printf '${m}F%s\\n' 'setsid is not installed on the host (util-linux)'; exit 254; }`,
    // noclobber: the files are created with O_EXCL, so nothing planted in /tmp is followed.
    'set -C',
    `{ : > "$o" && : > "$e" && : > "$p"; } 2>/dev/null || { printf '${m}F%s\\n' "cannot create $t.* (is \${TMPDIR:-/tmp} writable?)"; exit 254; }`,
    'set +C',
    o.sudo
      ? `if ! s=$(sudo -n true 2>&1); then printf '${m}S%s\\n' "$(printf '%s' "$s" | tr '\\n' ' ')"; rm -f -- "$o" "$e" "$p"; exit 1; fi`
      : '',
    liveFunction(o.sudo),
    start,
    'j=$!',
    // From here on the wrapper's own stderr would only carry job notices ("Terminated").
    'exec 3<&0 2>/dev/null',
    // The watcher: on EOF, TERM the group, KILL it if it outlives the grace time by a second (the
    // worker's kill channel normally does both first; this covers a worker that is gone). When
    // the wrapper is done with the files it TERMs the watcher, which becomes the `rm` (one fork
    // less per step, and off the step's critical path).
    `( trap 'exec rm -f -- "$o" "$e" "$p"' TERM; while read -r _ <&3; do :; done; read -r g < "$p" || g=$j; ${k}kill -s TERM -- -"$g" || ${k}kill -s TERM "$j"; n=0; while [ $n -lt ${polls + 20} ] && live "$g"; do sleep 0.05 || sleep 1; n=$((n+1)); done; live "$g" && ${k}kill -s KILL -- -"$g"; exec rm -f -- "$o" "$e" "$p" ) </dev/null >/dev/null 2>&1 &`,
    'w=$!',
    'exec 3<&-',
    'wait "$j"; c=$?',
    // What the command left running in its group would hold the channel open: TERM it, give it
    // the grace time, then KILL.
    'if read -r g < "$p" && live "$g"; then',
    `  ${k}kill -s TERM -- -"$g" 2>/dev/null; n=0`,
    `  while [ $n -lt ${polls} ] && live "$g"; do sleep 0.05 2>/dev/null || sleep 1; n=$((n+1)); done`,
    `  live "$g" && ${k}kill -s KILL -- -"$g" 2>/dev/null`,
    'fi',
    'if [ -s "$o" ] || [ -s "$e" ]; then',
    '  a=$(wc -c < "$o"); b=$(wc -c < "$e"); a=$((a)); b=$((b))',
    `  printf '${m}X%s %s %s\\n' "$c" "$a" "$b"`,
    `  if [ "$a" -le ${o.maxOutputBytes} ] && [ "$b" -le ${o.maxOutputBytes} ]; then cat -- "$o" "$e"; fi`,
    `else printf '${m}X%s 0 0\\n' "$c"; fi`,
    // Once an abort's watcher has finished, it has removed the files itself.
    'kill -s TERM "$w" || { rm -f -- "$o" "$e" "$p" </dev/null >/dev/null 2>&1 & }',
    'exit "$c"',
  ]
    .filter(Boolean)
    .join('\n');
  return o.posixLoginShell ? wrapper : `exec sh -c ${shellQuote(wrapper)}`;
}

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
function liveFunction(sudo: boolean): string {
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

/** Login shells known to run the wrapper unchanged (`$0` as sshd sets it for a command). */
export const POSIX_LOGIN_SHELLS = new Set(['sh', 'dash', 'bash', 'ash', 'busybox']);

/** Prints the login shell's name; sshd sets `$0` to its base name. */
export const LOGIN_SHELL_PROBE = `printf '%s' "$0"`;

/**
 * `conveyor-launch` (src/workers/local/launcher.c) on its own, with real processes: what the step
 * leaves behind dies with it, `setsid` or not; a SIGKILLed launcher takes its namespace along;
 * TERM reaches the step's trap; exit codes follow the shell's convention; the user switch sets
 * exactly the groups given; loader variables come back and the directory is created as the step's
 * user; the workspace, the attempt's directory and its two files are made with their modes and
 * owners, and anything planted at the attempt's path is refused; a bad command line is refused
 * with a clear message; it is compiled once into a private cache, never taken from one others
 * could write to. Then through the local executor: the launcher is what it uses, and the chain
 * when `launcher: 'chain'` forces it, with the same results, files, owners and modes.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor, resolveRunAs, Workspaces } from '../../src/workers/local/index.ts';
import { findLauncher } from '../../src/workers/local/launcher.ts';
import { groupsOf } from '../../src/workers/local/run-as.ts';
import { startEngine } from '../support/engine.ts';
import { redisUrl, testPrefix } from '../support/prefix.ts';
import { eventually, isAlive, marker, processesWithEnv } from '../support/processes.ts';

const root = process.getuid?.() === 0;
/** A user with a supplementary group (`users`), created once for these tests. */
const TEST_USER = 'conveyor-launch-test';

let launcher: string;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-launcher-'));
  chmodSync(dir, 0o755);
  if (root) {
    const script = `id -u ${TEST_USER} >/dev/null 2>&1 || useradd -M -N -g nogroup -G users -s /usr/sbin/nologin ${TEST_USER}`;
    execFileSync('flock', [join(tmpdir(), 'conveyor-launch-test-user.lock'), 'sh', '-c', script]);
  }
});
beforeAll(async () => {
  const found = await findLauncher();
  if (!found) throw new Error('conveyor-launch could not be found or compiled (is cc installed?)');
  launcher = found;
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Launched {
  child: ChildProcess;
  /** Resolves when the output contains `text`. */
  printed(text: string): Promise<void>;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Starts the launcher as the spawner does: a process group of its own, pipes for stdout and stderr. */
function launch(args: string[], env: Record<string, string> = {}, cwd = '/', file = launcher): Launched {
  const child = spawn(file, args, {
    cwd,
    env: { PATH: '/usr/bin:/bin', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiting: Array<{ text: string; resolve(): void }> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const w of waiting.filter((w) => stdout.includes(w.text))) w.resolve();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return {
    child,
    printed: (text) =>
      new Promise((resolve) => (stdout.includes(text) ? resolve() : waiting.push({ text, resolve }))),
    ended: new Promise((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    ),
  };
}

/** Runs the launcher at `file` to its end. */
const launchWith = (file: string, args: string[]) => launch(args, {}, '/', file).ended;

const step = (mode: string, command: string, options: string[] = []) => [
  '--mode',
  mode,
  ...options,
  '--',
  '/bin/sh',
  '-c',
  command,
];

describe('conveyor-launch in a PID namespace', () => {
  it('runs the command as pid 2 of its own namespace, seeing only its own processes', async () => {
    const { ended } = launch(step('pid-namespace', 'echo "pid=$$"; ls /proc | grep -c "^[0-9]"'));
    const { code, stdout } = await ended;
    expect(code).toBe(0);
    // pid 1 (the init), the shell, ls and grep at most.
    expect(stdout).toMatch(/^pid=2\n[1-4]\n$/);
  });

  it('kills a setsid background process when the command ends', async () => {
    const mark = marker();
    const { ended } = launch(step('pid-namespace', 'setsid sleep 300 & echo started'), { MARK: mark });
    expect(await ended).toMatchObject({ code: 0, stdout: 'started\n' });
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });

  it('takes the whole namespace along when the launcher is SIGKILLed', async () => {
    const mark = marker();
    const l = launch(step('pid-namespace', 'setsid sleep 300 & sleep 300 & echo up; wait'), { MARK: mark });
    await l.printed('up');
    expect(processesWithEnv('MARK', mark).length).toBeGreaterThanOrEqual(2);
    l.child.kill('SIGKILL');
    expect(await l.ended).toMatchObject({ signal: 'SIGKILL' });
    expect(await eventually(() => processesWithEnv('MARK', mark).length === 0, 5000)).toBe(true);
  });

  it("forwards SIGTERM sent to the launcher alone to every process, and the step's trap runs", async () => {
    const mark = marker();
    const l = launch(
      step('pid-namespace', `setsid sleep 300 & trap 'echo trapped; exit 3' TERM; echo up; sleep 300 & wait`),
      { MARK: mark },
    );
    await l.printed('up');
    process.kill(l.child.pid!, 'SIGTERM');
    expect(await l.ended).toMatchObject({ code: 3, stdout: 'up\ntrapped\n' });
    expect(processesWithEnv('MARK', mark)).toEqual([]);
  });

  it("exits with the command's code, 128+n for a death by signal n", async () => {
    const codes = await Promise.all(
      ['exit 7', 'kill -TERM $$', 'kill -KILL $$', 'kill -INT $$'].map(
        async (command) => (await launch(step('pid-namespace', command)).ended).code,
      ),
    );
    expect(codes).toEqual([7, 143, 137, 130]);
  });

  it('exits 127 for a program that is not there, 126 for one that cannot run (as env)', async () => {
    const missing = await launch(['--mode', 'pid-namespace', '--', '/nonexistent/sh']).ended;
    expect(missing).toMatchObject({
      code: 127,
      stderr: expect.stringContaining('cannot run /nonexistent/sh'),
    });
    const notProgram = await launch(['--mode', 'process-group', '--', '/etc/hostname']).ended;
    expect(notProgram.code).toBe(126);
  });

  it('starts the command with no signal ignored or blocked', async () => {
    const { stdout } = await launch(step('pid-namespace', 'grep -E "^Sig(Ign|Blk)" /proc/self/status')).ended;
    expect(stdout).toMatch(/^SigBlk:\s+0+\nSigIgn:\s+0+\n$/);
  });

  it('runs in a user namespace too, where the kernel allows one', async () => {
    const { code, stdout, stderr } = await launch(step('user-namespace', 'echo "pid=$$"')).ended;
    if (code === 125) expect(stderr).toMatch(/conveyor-launch: (unshare|cannot)/);
    else expect({ code, stdout }).toEqual({ code: 0, stdout: 'pid=2\n' });
  });
});

describe('conveyor-launch in a process group', () => {
  it('execs the command itself, which reports a death by signal as such', async () => {
    const { code, signal } = await launch(step('process-group', 'kill -TERM $$')).ended;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('dies with its parent (the parent-death signal)', async () => {
    const parent = spawn(
      '/bin/sh',
      ['-c', `"$0" --mode process-group --parent $$ -- /bin/sleep 300 & echo "$!"; wait`, launcher],
      { env: { PATH: '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const pid = Number(
      await new Promise<string>((resolve) => parent.stdout!.once('data', (d) => resolve(`${d}`))),
    );
    // Once it is sleep, the launcher armed the signal (before that, a parent's death is its
    // `--parent` check's to catch).
    const execd = () => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('/bin/sleep');
    expect(await eventually(execd, 5000)).toBe(true);
    parent.kill('SIGKILL');
    expect(await eventually(() => !isAlive(pid), 5000)).toBe(true);
  });
});

describe('the command the launcher prepares', () => {
  it('restores the loader variables and removes what only the launcher reads', async () => {
    const { stdout } = await launch(step('pid-namespace', 'env | grep -E "^(LD_|TMPDIR|CONVEYOR)" | sort'), {
      CONVEYOR_RESTORE: 'LD_LIBRARY_PATH TMPDIR',
      CONVEYOR_RESTORE_LD_LIBRARY_PATH: '/nowhere',
      CONVEYOR_RESTORE_TMPDIR: '/tmp/x y',
      CONVEYOR_OUTPUT: '/out',
    }).ended;
    expect(stdout).toBe('CONVEYOR_OUTPUT=/out\nLD_LIBRARY_PATH=/nowhere\nTMPDIR=/tmp/x y\n');
  });

  it('creates and enters CONVEYOR_CREATE_CWD, and sets PWD to it', async () => {
    const target = join(dir, 'made', 'a', 'b');
    const { code, stdout } = await launch(
      step('process-group', 'pwd; echo "$PWD"; echo "${CONVEYOR_CREATE_CWD-unset}"'),
      {
        CONVEYOR_CREATE_CWD: target,
      },
    ).ended;
    expect({ code, stdout }).toEqual({ code: 0, stdout: `${target}\n${target}\nunset\n` });
  });

  it('fails with 125 and says why when the directory cannot be made', async () => {
    const { code, stderr } = await launch(step('pid-namespace', 'echo ran'), {
      CONVEYOR_CREATE_CWD: '/proc/self/no/such',
    }).ended;
    expect(code).toBe(125);
    expect(stderr).toMatch(/^conveyor-launch: cannot create directory \/proc\/self\/no\/such: /);
  });

  it('refuses to start when its parent is not the one named', async () => {
    const { code, stderr } = await launch(step('pid-namespace', 'echo ran', ['--parent', '1'])).ended;
    expect(code).toBe(125);
    expect(stderr).toContain('parent 1 is gone');
  });
});

describe.skipIf(!root)('the user switch', () => {
  it('sets the uid, the gid and exactly the groups given, or none', async () => {
    const nobody = resolveRunAs('nobody');
    const ids = 'echo "$(id -u) $(id -g) $(id -G)"';
    const user = ['--uid', String(nobody.uid), '--gid', String(nobody.gid)];
    const some = await launch(step('pid-namespace', ids, [...user, '--groups', `${nobody.gid},100`])).ended;
    expect(some.stdout).toBe(`${nobody.uid} ${nobody.gid} ${nobody.gid} 100\n`);
    const none = await launch(
      step('process-group', ids, ['--uid', '4242', '--gid', '4343', '--clear-groups']),
    ).ended;
    expect(none.stdout).toBe('4242 4343 4343\n');
  });

  it('gives a named user its groups as initgroups would (the worker looks them up once)', async () => {
    const user = resolveRunAs(TEST_USER);
    const groups = await groupsOf(user);
    expect(groups).toEqual(
      execFileSync('id', ['-G', TEST_USER], { encoding: 'utf8' }).trim().split(' ').map(Number),
    );
    expect(groups).toContain(100);
  });

  it("creates the directory as the step's user, and fails where that user may not write", async () => {
    const nobody = resolveRunAs('nobody');
    const owned = join(dir, 'nobody');
    mkdirSync(owned);
    chownSync(owned, nobody.uid, nobody.gid);
    const user = ['--uid', String(nobody.uid), '--gid', String(nobody.gid), '--clear-groups'];
    const made = await launch(step('pid-namespace', 'pwd', user), { CONVEYOR_CREATE_CWD: join(owned, 'sub') })
      .ended;
    expect(made).toMatchObject({ code: 0, stdout: `${join(owned, 'sub')}\n` });
    expect(statSync(join(owned, 'sub')).uid).toBe(nobody.uid);
    const refused = await launch(step('pid-namespace', 'pwd', user), {
      CONVEYOR_CREATE_CWD: join(dir, 'root-only'),
    }).ended;
    expect(refused.code).toBe(125);
    expect(refused.stderr).toContain('Permission denied');
  });
});

describe("the workspace and the attempt's files", () => {
  /** A base directory as the worker makes it (0711), with a run's workspace and attempt paths in it. */
  function places() {
    const base = mkdtempSync(join(dir, 'base-'));
    chmodSync(base, 0o711);
    return {
      base,
      workspace: join(base, 'run_a'),
      attempt: join(base, '.attempts', 'run_a', 'f00d'),
    };
  }
  const withPlaces = (workspace: string, attempt: string, user: string[] = []) => [
    ...user,
    '--workspace',
    workspace,
    '--attempt-dir',
    attempt,
  ];
  const modeOf = (path: string) => statSync(path).mode & 0o7777;

  it('creates the workspace, the attempt directory and its two empty files, and enters the workspace', async () => {
    const { workspace, attempt } = places();
    const { code, stdout } = await launch(
      step(
        'pid-namespace',
        'pwd; echo "$PWD"; ls -A "$A"; echo out > "$A/output"',
        withPlaces(workspace, attempt),
      ),
      { A: attempt, PWD: '/elsewhere' },
    ).ended;
    expect({ code, stdout }).toEqual({ code: 0, stdout: `${workspace}\n${workspace}\nevents\noutput\n` });
    expect(modeOf(workspace)).toBe(0o700);
    expect(modeOf(attempt)).toBe(0o700);
    expect(modeOf(join(attempt, '..'))).toBe(0o711);
    expect(modeOf(join(attempt, '..', '..'))).toBe(0o711);
    expect(modeOf(join(attempt, 'events'))).toBe(0o600);
    expect(readFileSync(join(attempt, 'output'), 'utf8')).toBe('out\n');
  });

  it('recreates a workspace a step removed, and keeps one that is there', async () => {
    const { workspace, attempt } = places();
    const first = await launch(
      step('process-group', 'touch kept; rm -rf "$PWD"', withPlaces(workspace, attempt)),
    ).ended;
    expect(first.code).toBe(0);
    const second = await launch(step('process-group', 'pwd; ls -A', withPlaces(workspace, `${attempt}2`)))
      .ended;
    expect(second).toMatchObject({ code: 0, stdout: `${workspace}\n` });
    writeFileSync(join(workspace, 'kept'), '');
    const third = await launch(step('process-group', 'ls -A', withPlaces(workspace, `${attempt}3`))).ended;
    expect(third).toMatchObject({ code: 0, stdout: 'kept\n' });
  });

  it.each([
    ['a file', (path: string) => writeFileSync(path, 'planted')],
    ['a directory', (path: string) => mkdirSync(path)],
    ['a symbolic link to a directory', (path: string) => symlinkSync(dir, path)],
    ['a dangling symbolic link', (path: string) => symlinkSync(join(dir, 'nowhere'), path)],
  ])('refuses %s planted at the attempt path: 125, the command never runs', async (_, plant) => {
    const { workspace, attempt } = places();
    mkdirSync(join(attempt, '..'), { recursive: true });
    plant(attempt);
    const { code, stdout, stderr } = await launch(
      step('pid-namespace', 'echo ran', withPlaces(workspace, attempt)),
    ).ended;
    expect({ code, stdout }).toEqual({ code: 125, stdout: '' });
    expect(stderr).toBe(`conveyor-launch: cannot create attempt directory ${attempt}: File exists\n`);
    expect(existsSync(join(dir, 'nowhere'))).toBe(false);
    expect(existsSync(join(dir, 'output'))).toBe(false);
  });

  it('refuses a workspace that is a symbolic link, and a parent it cannot create', async () => {
    const { workspace, attempt } = places();
    symlinkSync(dir, workspace);
    const linked = await launch(step('pid-namespace', 'echo ran', withPlaces(workspace, attempt))).ended;
    expect(linked).toMatchObject({ code: 125, stdout: '' });
    expect(linked.stderr).toContain(`workspace ${workspace} is not a directory`);
    const missing = await launch(
      step('pid-namespace', 'echo ran', ['--attempt-dir', '/proc/self/no/attempt']),
    ).ended;
    expect(missing).toMatchObject({ code: 125, stdout: '' });
    expect(missing.stderr).toMatch(/^conveyor-launch: cannot create directory \/proc\/self\/no: /);
  });

  it("reports the files' sizes on --report-fd once the step is gone, removing two empty ones, and no step holds it", async () => {
    /** Runs `command` with a pipe on the launcher's fd 3; what it printed and reported. */
    const reported = async (command: string) => {
      const { workspace, attempt } = places();
      const args = step('pid-namespace', command, [...withPlaces(workspace, attempt), '--report-fd', '3']);
      const child = spawn(launcher, args, {
        env: { PATH: '/usr/bin:/bin', A: attempt },
        stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
      });
      let stdout = '';
      let report = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d));
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (report += d));
      const code = await new Promise((resolve) => child.once('close', resolve));
      return { code, stdout, report, left: existsSync(attempt) ? readdirSync(attempt).sort() : null };
    };
    // No descriptor past stderr in the init (pid 1) or the step (builtins only: nothing opened meanwhile).
    const held =
      'for p in 1 $$; do for f in 3 4 5 6 7 8 9; do [ -e /proc/$p/fd/$f ] && echo "$p:$f"; done; done; true';
    expect(await reported(held)).toEqual({ code: 0, stdout: '', report: '0 0 removed\n', left: null });
    // A background process still writing when the command ends is gone before the report.
    const late = await reported('(sleep 0.2; echo late=1 >> "$A/events") & echo x=1 > "$A/output"');
    expect(late).toEqual({ code: 0, stdout: '', report: '4 0\n', left: ['events', 'output'] });
    const replaced = await reported('rm "$A/output"; ln -sf /etc/passwd "$A/events"; exit 3');
    expect(replaced).toEqual({ code: 3, stdout: '', report: '-1 -1\n', left: ['events'] });
    // Something else left in the directory keeps it (and the worker removes it).
    const extra = await reported('touch "$A/mine"');
    expect(extra).toEqual({ code: 0, stdout: '', report: '0 0\n', left: ['mine'] });
  });

  it.skipIf(!root)("gives the workspace, the directory and the files to the step's user", async () => {
    const nobody = resolveRunAs('nobody');
    const { workspace, attempt } = places();
    const user = ['--uid', String(nobody.uid), '--gid', String(nobody.gid), '--clear-groups'];
    mkdirSync(workspace, { mode: 0o700 }); // an existing one is given again (as every launch does)
    const { code, stdout } = await launch(
      step(
        'pid-namespace',
        'id -u; echo x=1 > "$A/output"; touch "$A/more"; touch new',
        withPlaces(workspace, attempt, user),
      ),
      { A: attempt },
    ).ended;
    expect({ code, stdout }).toEqual({ code: 0, stdout: `${nobody.uid}\n` });
    const owners = [
      workspace,
      attempt,
      join(attempt, 'output'),
      join(attempt, 'events'),
      join(workspace, 'new'),
    ].map((p) => `${statSync(p).uid}:${statSync(p).gid}`);
    expect(owners).toEqual(Array(5).fill(`${nobody.uid}:${nobody.gid}`));
    expect(statSync(join(attempt, '..')).uid).toBe(0);
  });
});

describe('a bad command line', () => {
  it.each([
    [[], '--mode is required'],
    [['--mode', 'jail', '--', '/bin/true'], 'unknown mode "jail"'],
    [['--mode', 'pid-namespace', '--frob', '--', '/bin/true'], 'unknown argument "--frob"'],
    [['--mode', 'pid-namespace', '--mode', 'process-group', '--', '/bin/true'], '--mode given twice'],
    [['--mode', 'pid-namespace', '--', 'true'], 'must be an absolute path'],
    [['--mode', 'pid-namespace', '/bin/true'], 'unknown argument "/bin/true"'],
    [['--mode', 'pid-namespace', '--'], 'no program after "--"'],
    [['--mode', 'pid-namespace', '--uid', '0', '--', '/bin/true'], 'go together'],
    [
      ['--mode', 'pid-namespace', '--workspace', 'ws', '--', '/bin/true'],
      '--workspace needs an absolute path',
    ],
    [['--mode', 'pid-namespace', '--attempt-dir', '--', '/bin/true'], '--attempt-dir needs an absolute path'],
    [
      ['--mode', 'pid-namespace', '--attempt-dir', '/a', '--attempt-dir', '/b', '--', '/bin/true'],
      '--attempt-dir given twice',
    ],
    [
      ['--mode', 'pid-namespace', '--report-fd', '3', '--', '/bin/true'],
      '--report-fd goes with --attempt-dir',
    ],
    [
      ['--mode', 'pid-namespace', '--attempt-dir', '/a', '--report-fd', '2', '--', '/bin/true'],
      'above stderr',
    ],
    [
      ['--mode', 'pid-namespace', '--attempt-dir', '/a', '--report-fd', '9', '--', '/bin/true'],
      'Bad file descriptor',
    ],
    [
      ['--mode', 'pid-namespace', '--uid', '-1', '--gid', '0', '--clear-groups', '--', '/bin/true'],
      'decimal',
    ],
    [
      ['--mode', 'pid-namespace', '--uid', '1', '--gid', '1', '--groups', '1,,2', '--', '/bin/true'],
      'decimal',
    ],
  ])('refuses %j with a clear message and status 125', async (args, message) => {
    const { code, stdout, stderr } = await launch(args).ended;
    expect(code).toBe(125);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^conveyor-launch: /);
    expect(stderr).toContain(message);
  });
});

describe('finding the launcher', () => {
  const source = readFileSync(new URL('../../src/workers/local/launcher.c', import.meta.url));
  const name = `conveyor-launch-${createHash('sha256').update(source).digest('hex').slice(0, 16)}`;

  it('compiles launcher.c once into a private cache, named by the hash of the source', async () => {
    const cacheDir = join(dir, 'cache', 'conveyor');
    const found = await findLauncher({ cacheDir });
    expect(found).toBe(join(cacheDir, name));
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    expect(readdirSync(cacheDir)).toEqual([name]);
    const { code, stdout } = await launchWith(found!, step('pid-namespace', 'echo "$$"'));
    expect({ code, stdout }).toEqual({ code: 0, stdout: '2\n' });
    expect(await findLauncher({ cacheDir })).toBe(found);
  });

  it.skipIf(!root)('refuses a cache directory or a launcher someone else could have written', async () => {
    const open = join(dir, 'open-cache');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    expect(await findLauncher({ cacheDir: open })).toBeUndefined();
    expect(readdirSync(open)).toEqual([]);

    const planted = join(dir, 'planted-cache');
    mkdirSync(planted, { mode: 0o700 });
    writeFileSync(join(planted, name), '#!/bin/sh\necho planted\n', { mode: 0o777 });
    chmodSync(join(planted, name), 0o777);
    expect(await findLauncher({ cacheDir: planted })).toBeUndefined();
    chmodSync(join(planted, name), 0o755);
    chownSync(join(planted, name), resolveRunAs('nobody').uid, 0);
    expect(await findLauncher({ cacheDir: planted })).toBeUndefined();
  });
});

describe('the local executor', () => {
  /** Runs `workflow` to its end on an engine serving `executor`; the steps' statuses and logs. */
  async function runOn(executor: LocalExecutor, workflow: { name: string; steps: Record<string, unknown> }) {
    const engine = await startEngine(redisUrl(), testPrefix(import.meta.url), { executors: [executor] });
    try {
      const run = await engine.submit(workflow);
      const { run: done } = await engine.waitForRun(run.id);
      const logs: Record<string, string> = {};
      for (const id of Object.keys(workflow.steps))
        logs[id] = (await engine.request('GET', `/v1/runs/${run.id}/steps/${id}/logs`)).body;
      const statuses = Object.fromEntries(Object.entries(done.steps).map(([id, s]) => [id, s.status]));
      return { statuses, logs, runId: run.id };
    } finally {
      await engine.close();
    }
  }

  it('launches through conveyor-launch by default, through the chain when forced, with the same results', async () => {
    const base = join(dir, 'ws');
    const auto = new LocalExecutor({ workspaces: new Workspaces({ baseDir: base }), launcher: 'auto' });
    const chain = new LocalExecutor({ workspaces: new Workspaces({ baseDir: base }), launcher: 'chain' });
    expect((await auto.describe()).details).toMatchObject({ containment: 'pid-namespace', launcher });
    expect((await chain.describe()).details).toMatchObject({
      containment: 'pid-namespace',
      launcher: 'chain',
    });
    for (const executor of [auto, chain]) {
      const { statuses, logs } = await runOn(executor, {
        name: 'launchers',
        steps: {
          s: {
            cwd: 'x/y',
            env: { LD_LIBRARY_PATH: '/nowhere' },
            run: 'echo "$(basename "$PWD") $LD_LIBRARY_PATH"',
          },
          // A step that removes its workspace and writes an output; the next one runs in a new one.
          wipe: {
            needs: ['s'],
            run: 'rm -rf "$CONVEYOR_WORKSPACE"; echo v=gone >> "$CONVEYOR_OUTPUT"; echo wiped',
          },
          after: {
            needs: ['wipe'],
            run: 'echo "${{ steps.wipe.outputs.v }} $([ "$PWD" = "$CONVEYOR_WORKSPACE" ] && ls -A)."',
          },
          absolute: { needs: ['after'], cwd: '/', run: 'pwd' },
        },
      });
      expect(statuses).toEqual({
        s: 'succeeded',
        wipe: 'succeeded',
        after: 'succeeded',
        absolute: 'succeeded',
      });
      expect(logs).toEqual({ s: 'y /nowhere\n', wipe: 'wiped\n', after: 'gone .\n', absolute: '/\n' });
    }
  });

  it('fails a step whose attempt directory the launcher cannot make, saying why, and runs the next', async () => {
    const base = join(dir, 'blocked');
    mkdirSync(base, { mode: 0o711 });
    writeFileSync(join(base, '.attempts'), 'not a directory');
    const executor = () => new LocalExecutor({ workspaces: new Workspaces({ baseDir: base }) });
    const first = await runOn(executor(), { name: 'blocked', steps: { s: { run: 'echo ran' } } });
    expect(first.statuses).toEqual({ s: 'failed' });
    expect(first.logs.s).toMatch(/^conveyor-launch: cannot create attempt directory .*: Not a directory\n$/);
    rmSync(join(base, '.attempts'));
    const second = await runOn(executor(), { name: 'unblocked', steps: { s: { run: 'echo ran' } } });
    expect(second).toMatchObject({ statuses: { s: 'succeeded' }, logs: { s: 'ran\n' } });
  });

  it.skipIf(!root)(
    'makes the same files with the same owners and modes through the launcher and the chain',
    async () => {
      const runAs = resolveRunAs('nobody');
      const seen: string[] = [];
      for (const setting of ['auto', 'chain'] as const) {
        const workspaces = new Workspaces({ baseDir: join(dir, `owned-${setting}`), runAs });
        const executor = new LocalExecutor({ workspaces, runAs, launcher: setting });
        const { statuses, logs } = await runOn(executor, {
          name: 'owners',
          steps: {
            s: {
              run: 'stat -c "%u:%g %a" "$CONVEYOR_WORKSPACE" "${CONVEYOR_OUTPUT%/*}" "$CONVEYOR_OUTPUT" "$CONVEYOR_EVENTS"; stat -c "%u %a" "${CONVEYOR_OUTPUT%/*/*}" "${CONVEYOR_OUTPUT%/*/*/*}"',
            },
          },
        });
        expect(statuses).toEqual({ s: 'succeeded' });
        seen.push(logs.s!);
      }
      const owner = `${runAs.uid}:${runAs.gid}`;
      const expected = [`${owner} 700`, `${owner} 700`, `${owner} 600`, `${owner} 600`, '0 711', '0 711', ''];
      expect(seen).toEqual([expected.join('\n'), expected.join('\n')]);
    },
  );
});

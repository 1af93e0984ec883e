/**
 * `conveyor run --watch` in a real pseudo-terminal (tmux): the view redrawn in place while a step
 * runs (status, executor, host count, duration, progress bar, last log lines), the summary and
 * the exit status at the end; Ctrl-C detaching with the way back, or cancelling with
 * `--cancel-on-interrupt`; and a watch that outlives an API restart.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  type CliServer,
  cli,
  cliEnv,
  startCliServer,
  tmuxSession,
  until,
} from '../support/cli.ts';

/** The escape character, which starts a colour sequence. */
const ESC = '\x1b';
let server: CliServer;
const sessions: Array<{ kill(): Promise<void> }> = [];

beforeAll(async () => {
  server = await startCliServer(import.meta.url);
});
afterAll(async () => {
  for (const s of sessions) await s.kill();
  await server?.close();
});

/** A workflow whose `work` step reports progress and a log line, then waits for `gate` to exist. */
function gated(name: string, gate: string): string {
  const file = join(server.dir, `${name}.yml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'steps:',
      '  prepare: { run: echo ready }',
      '  work:',
      '    needs: prepare',
      '    run: |',
      '      echo "::progress::40 copying"',
      '      echo "copying files"',
      `      while [ ! -e '${gate}' ]; do sleep 0.05; done`,
      '      echo "copied"',
      '  finish: { needs: work, run: echo done }',
      '',
    ].join('\n'),
  );
  return file;
}

async function session(name: string, args: string[], extraEnv: Record<string, string> = {}) {
  const socket = join(server.dir, `tmux-${name}`);
  const env = cliEnv({
    CONVEYOR_URL: server.url,
    CONVEYOR_TOKEN: ADMIN_TOKEN,
    TERM: 'xterm-256color',
    ...extraEnv,
  });
  const s = await tmuxSession(socket, [process.execPath, 'bin/conveyor.mjs', ...args], env);
  sessions.push(s);
  return s;
}

describe('run --watch on a terminal', () => {
  it('redraws the steps in place while they run, then prints the summary and exits 0', async () => {
    const gate = join(server.dir, 'gate-ok');
    const s = await session('ok', ['run', gated('watch-ok', gate)]);
    // Watching is the default on a terminal: no --watch given.
    const running = await until(
      () => s.screen(),
      (t) => /copying files/.test(t) && /● work +running/.test(t),
    );
    expect(running).toMatch(/^run run_\S+ +watch-ok +running/m);
    expect(running).toMatch(/^✓ prepare +succeeded +local +\d+\.\ds$/m);
    expect(running).toMatch(/^● work +running +local +\d+\.\ds +\[#{8}-{12}\] 40% copying$/m);
    expect(running).toMatch(/^ {4}│ copying files$/m);
    expect(running).toMatch(/^· finish +pending +local$/m);
    writeFileSync(gate, '');
    const done = await until(
      () => s.screen(),
      (t) => /exit=\d+/.test(t),
    );
    // Redrawn, not appended: each step has one line on the screen, and the log lines are gone.
    for (const step of ['prepare', 'work', 'finish']) {
      expect(done.match(new RegExp(`^. ${step} `, 'gm'))).toHaveLength(1);
    }
    expect(done).toMatch(/^✓ work +succeeded +local +\d+\.\ds$/m);
    expect(done).not.toContain('│ copying files');
    expect(done).toMatch(/^✓ run run_\S+ succeeded in [\d.]+s: 3 succeeded$/m);
    expect(done).toMatch(/^exit=0$/m);
    // Colours on a terminal (and only there: the pipes of cli.test.ts get none).
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the colour sequence is what is checked
    expect(await s.screen(true)).toMatch(/\x1b\[32m✓ run run_\S+ succeeded/);
  });

  it('shows a failed step in the summary and exits 1; NO_COLOR leaves colours out', async () => {
    const file = join(server.dir, 'watch-fail.yml');
    writeFileSync(
      file,
      'name: watch-fail\nsteps:\n  boom: { run: "echo bad >&2; exit 4" }\n  never: { needs: boom, run: "true" }\n',
    );
    const s = await session('fail', ['run', file], { NO_COLOR: '1' });
    const done = await until(
      () => s.screen(),
      (t) => /exit=\d+/.test(t),
    );
    expect(done).toMatch(/^✗ boom +failed +local +\d+\.\ds +.*exit/m);
    expect(done).toMatch(/^✗ run (run_\S+) failed in [\d.]+s: 1 failed, 1 skipped$/m);
    expect(done).toMatch(/^ {2}boom: .*\(conveyor logs run_\S+ boom\)$/m);
    expect(done).toMatch(/^exit=1$/m);
    expect(await s.screen(true)).not.toContain(`${ESC}[3`);
  });

  it('Ctrl-C detaches and says how to re-attach; the run goes on', async () => {
    const gate = join(server.dir, 'gate-detach');
    const s = await session('detach', ['run', gated('watch-detach', gate)]);
    const running = await until(
      () => s.screen(),
      (t) => /● work +running/.test(t),
    );
    const id = /^run (run_\S+)/m.exec(running)![1]!;
    await s.keys('C-c');
    const done = await until(
      () => s.screen(),
      (t) => /exit=\d+/.test(t),
    );
    expect(done).toContain(`detached from run ${id}, which goes on\nre-attach with: conveyor watch ${id}`);
    expect(done).toMatch(/^exit=130$/m);
    writeFileSync(gate, '');
    const watched = await cli(['watch', id], {
      env: { CONVEYOR_URL: server.url, CONVEYOR_TOKEN: ADMIN_TOKEN },
    });
    expect(watched.code).toBe(0);
    expect(watched.stdout).toContain(`✓ run ${id} succeeded`);
  });

  it('--cancel-on-interrupt cancels the run on Ctrl-C and exits 1', async () => {
    const gate = join(server.dir, 'gate-never');
    const s = await session('cancel', ['run', gated('watch-cancel', gate), '--cancel-on-interrupt']);
    await until(
      () => s.screen(),
      (t) => /● work +running/.test(t),
    );
    await s.keys('C-c');
    const done = await until(
      () => s.screen(),
      (t) => /exit=\d+/.test(t),
    );
    expect(done).toMatch(/cancelling run run_\S+/);
    expect(done).toMatch(/^⊘ work +cancelled/m);
    expect(done).toMatch(/^⊘ run run_\S+ cancelled in [\d.]+s/m);
    expect(done).toMatch(/^exit=1$/m);
    expect(existsSync(gate)).toBe(false);
  });

  it('keeps watching across an API restart', async () => {
    const gate = join(server.dir, 'gate-restart');
    const s = await session('restart', ['run', gated('watch-restart', gate)]);
    await until(
      () => s.screen(),
      (t) => /● work +running/.test(t),
    );
    await server.restartApi();
    writeFileSync(gate, '');
    const done = await until(
      () => s.screen(),
      (t) => /exit=\d+/.test(t),
    );
    expect(done).toMatch(/^✓ run run_\S+ succeeded in [\d.]+s: 3 succeeded$/m);
    expect(done).toMatch(/^exit=0$/m);
  });
});

/**
 * The agent's program under the shells a host may have as `sh` (dash, bash, busybox ash),
 * driven locally over pipes (the SSH side is in test/integration/ssh-agent.test.ts): many steps
 * on one agent, any env value and command bytes round-tripped, exit codes, outputs, cwd, abort.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { abortRequest, agentProgram, stepRequest } from '../../src/workers/ssh/agent-script.ts';
import { RecordSplitter, type RemoteRecord } from '../../src/workers/ssh/remote-stream.ts';

interface Ran {
  stdout: Buffer;
  stderr: string;
  records: RemoteRecord[];
}

/** One agent on `shell -s`, fed over its stdin as the worker does over a channel. */
class LocalAgent {
  private readonly child: ChildProcess;
  private current: { out: RecordSplitter; err: RecordSplitter } | undefined;
  readonly ready: Promise<void>;
  private n = 0;

  constructor(shell: string[]) {
    this.child = spawn(shell[0]!, shell.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const id = `${process.pid.toString(16)}${Math.floor(Math.random() * 1e9).toString(16)}`;
    const marker = `\x1ecva${id}:`;
    let onReady: () => void;
    this.ready = new Promise((resolve) => {
      onReady = resolve;
    });
    const hello = new RecordSplitter(
      marker,
      0,
      () => {},
      (r) => r.type === 'ready' && onReady(),
    );
    this.child.stdout!.on('data', (d: Buffer) => (this.current ? this.current.out.push(d) : hello.push(d)));
    this.child.stderr!.on('data', (d: Buffer) => this.current?.err.push(d));
    this.child.stdin!.write(agentProgram(marker, id));
  }

  run(
    command: string,
    env: Array<[string, string]> = [],
    cwd?: string,
    onOutput?: (pgid: number, stdout: string) => void,
  ): Promise<Ran> {
    const marker = `\x1ecvy${(this.n++).toString(16).padStart(24, '0')}:`;
    return new Promise((resolve) => {
      const out: Buffer[] = [];
      let stderr = '';
      const records: RemoteRecord[] = [];
      let outDone = false;
      let errDone = false;
      let pgid = 0;
      const done = () => {
        if (!outDone || !errDone) return;
        this.current = undefined;
        resolve({ stdout: Buffer.concat(out), stderr, records });
      };
      this.current = {
        out: new RecordSplitter(
          marker,
          1 << 20,
          (c) => {
            if (outDone) return;
            out.push(Buffer.from(c));
            if (pgid) onOutput?.(pgid, Buffer.concat(out).toString());
          },
          (r) => {
            records.push(r);
            if (r.type === 'pid') {
              // The runner reports the group while the command runs: either may come first.
              pgid = r.pid;
              onOutput?.(pgid, Buffer.concat(out).toString());
            }
            if (r.type === 'exit' || r.type === 'setup') {
              outDone = true;
              done();
            }
          },
        ),
        err: new RecordSplitter(
          marker,
          0,
          (c) => {
            if (!errDone) stderr += c.toString();
          },
          (r) => {
            if (r.type !== 'end') return;
            errDone = true;
            done();
          },
        ),
      };
      const id = `${this.n.toString(16)}${Math.floor(Math.random() * 1e12).toString(16)}`;
      this.child.stdin!.write(
        stepRequest({
          id,
          marker,
          sudo: false,
          cwd,
          maxOutputBytes: 1 << 20,
          killGraceMs: 300,
          command,
          env,
        }),
      );
    });
  }

  abort(pgid: number): void {
    this.child.stdin!.write(abortRequest(pgid));
  }

  close(): Promise<void> {
    this.child.stdin!.end();
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
  }
}

const shells = [
  ['dash', '-s'],
  ['bash', '-s'],
  ['busybox', 'sh', '-s'],
].filter(([bin]) => existsSync(`/usr/bin/${bin}`) || existsSync(`/bin/${bin}`));

let agents: LocalAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.map((a) => a.close()));
  agents = [];
});

function start(shell: string[]): LocalAgent {
  const agent = new LocalAgent(shell);
  agents.push(agent);
  return agent;
}

const exitOf = (r: Ran) =>
  r.records.find((x) => x.type === 'exit') as Extract<RemoteRecord, { type: 'exit' }>;

describe.each(shells)('the agent under %s', (...shell) => {
  it('round-trips env values and command bytes over many steps on one agent', async () => {
    const agent = start(shell);
    await agent.ready;
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => !s.includes('\0')),
        async (value) => {
          const r = await agent.run('printf "%s" "$V"; printf "%s" "$1$#" >&2', [['V', value]]);
          expect(r.stdout.toString('utf8')).toBe(value);
          expect(r.stderr).toBe('0');
          expect(exitOf(r).code).toBe(0);
        },
      ),
      { numRuns: 30 },
    );
    const literal = await agent.run(`printf '%s' 'it'"'"'s; $(echo no) \`id\`'; exit 7`);
    expect(literal.stdout.toString()).toBe("it's; $(echo no) `id`");
    expect(exitOf(literal).code).toBe(7);
  });

  it('reads outputs back, runs in the cwd, reports a missing one', async () => {
    const agent = start(shell);
    await agent.ready;
    const out = await agent.run(
      'echo "a=1" >> "$CONVEYOR_OUTPUT"; echo \'{"type":"x"}\' >> "$CONVEYOR_EVENTS"',
    );
    expect(exitOf(out)).toMatchObject({ code: 0, outputBytes: 4, eventBytes: 13 });
    expect(exitOf(out).output!.toString()).toBe('a=1\n');
    expect((await agent.run('pwd', [], '/usr')).stdout.toString()).toBe('/usr\n');
    const missing = await agent.run('pwd', [], '/no/such/dir');
    expect(missing.records.map((r) => r.type)).toContain('cwd');
    expect(exitOf(missing).code).toBe(1);
  });

  it('kills the step on an abort request, KILL after the grace time when TERM is ignored', async () => {
    const agent = start(shell);
    await agent.ready;
    let sent = false;
    const r = await agent.run("trap '' TERM; echo armed; sleep 30", [], undefined, (pgid, out) => {
      if (sent || !out.includes('armed')) return;
      sent = true;
      agent.abort(pgid);
    });
    expect(exitOf(r).code).toBe(137);
    // The agent is still good for the next step.
    expect((await agent.run('echo after')).stdout.toString()).toBe('after\n');
  });
});

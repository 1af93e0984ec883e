/**
 * The fences, tried from inside: network, files outside the allowed paths, the worker's
 * environment, another step's directory, signals at the worker, fork bombs. Each is tried in
 * the sandbox and, where the runtime VM alone claims to stop it, without.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepCancelledError } from '../../src/errors.ts';
import { VmExecutor } from '../../src/workers/vm/index.ts';
import { cmdStep, fnStep, isRoot, pidsWith, Recorder } from './vm-harness.ts';

const executor = new VmExecutor({ poolSize: 0 });
let server: Server;
let port = 0;
let connections = 0;
let secretDir = '';
let secretFile = '';
const SECRET = `host-secret-${process.pid}`;

beforeAll(async () => {
  server = createServer((socket) => {
    connections++;
    // Guests hang up abruptly; that is not the test's concern.
    socket.on('error', () => {});
    socket.end('hello from the host\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  secretDir = await mkdtemp(join(tmpdir(), 'vm-isolation-'));
  secretFile = join(secretDir, 'secret.txt');
  await writeFile(secretFile, SECRET);
  // World-readable on purpose: only the VM's fences, not file modes, may keep it out.
  await chmod(secretDir, 0o755);
  await chmod(secretFile, 0o644);
  process.env.VM_TEST_WORKER_SECRET = SECRET;
});

afterAll(async () => {
  delete process.env.VM_TEST_WORKER_SECRET;
  server.close();
  await rm(secretDir, { recursive: true, force: true });
  await executor.close();
});

const CONNECT = (p: number) => `import net from 'node:net';
  export default async () => new Promise((resolve) => {
    const socket = net.connect(${p}, '127.0.0.1');
    socket.on('connect', () => { socket.destroy(); resolve({ connected: true }); });
    socket.on('error', (e) => resolve({ connected: false, code: e.code }));
  })`;

describe('network', () => {
  it('cannot reach a server on the host loopback without network: true', async () => {
    const before = connections;
    const result = await executor.run(fnStep(CONNECT(port)), new Recorder());
    expect(result.outputs).toMatchObject({ connected: false });
    expect(connections).toBe(before);
  });

  it('reaches it with network: true', async () => {
    const before = connections;
    const result = await executor.run(fnStep(CONNECT(port), { network: true }), new Recorder());
    expect(result.outputs).toEqual({ connected: true });
    expect(connections).toBe(before + 1);
  });

  it('fences shell commands the same way', async () => {
    const probe = `node -e "require('net').connect(${port}, '127.0.0.1').on('connect', () => { console.log('CONNECTED'); process.exit(0) }).on('error', (e) => { console.log('REFUSED', e.code); process.exit(0) })"`;
    const before = connections;
    const fenced = new Recorder();
    await executor.run(cmdStep(probe), fenced);
    expect(fenced.text).toContain('REFUSED');
    const open = new Recorder();
    await executor.run(cmdStep(probe, { network: true }), open);
    expect(open.text).toContain('CONNECTED');
    expect(connections).toBe(before + 1);
  });
});

describe.each([
  ['sandboxed', true],
  ['unsandboxed (runtime VM only)', false],
])('files and environment, %s', (_name, sandbox) => {
  it("cannot read a file outside its allowed paths, the worker's code, or its environment", async () => {
    const source = `import { readFileSync } from 'node:fs';
      const attempt = (path) => { try { return readFileSync(path, 'utf8') } catch (e) { return 'denied:' + e.code } };
      export default async () => ({
        secret: attempt(${JSON.stringify(secretFile)}),
        code: attempt(${JSON.stringify(join(process.cwd(), 'package.json'))}),
        parentEnv: attempt('/proc/' + process.ppid + '/environ'),
        initEnv: attempt('/proc/1/environ'),
        env: JSON.stringify(process.env),
      })`;
    const result = await executor.run(fnStep(source, { sandbox }), new Recorder());
    expect(result.error).toBeUndefined();
    const outputs = result.outputs as Record<string, string>;
    expect(outputs.secret).toMatch(/^denied:/);
    expect(outputs.code).toMatch(/^denied:/);
    expect(JSON.stringify(outputs)).not.toContain(SECRET);
  });

  it("cannot read another step's private directory", async () => {
    const holder = new Recorder();
    const holding = executor.run(
      fnStep(
        `import { writeFileSync } from 'node:fs';
        export default async (ctx) => {
          writeFileSync('private.txt', 'mine-${process.pid}');
          ctx.log('dir', process.cwd());
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        }`,
        { sandbox },
      ),
      holder,
    );
    const [, dir] = (await holder.waitFor(/dir (\S+)/)) as [string, string];
    const peek = await executor.run(
      fnStep(
        `import { readFileSync, readdirSync } from 'node:fs';
        const attempt = (f) => { try { return f() } catch (e) { return 'denied:' + e.code } };
        export default async () => ({
          file: attempt(() => readFileSync(${JSON.stringify(`${dir}/private.txt`)}, 'utf8')),
          list: attempt(() => readdirSync(${JSON.stringify(dir)}).join(',')),
        })`,
        { sandbox },
      ),
      new Recorder(),
    );
    expect(peek.outputs).toMatchObject({
      file: expect.stringMatching(/^denied:/),
      list: expect.stringMatching(/^denied:/),
    });
    holder.abort(new StepCancelledError());
    await holding;
  });

  it('cannot signal the worker', async () => {
    const source = `export default async () => {
      const tries = [];
      for (const [pid, sig] of [[process.ppid, 'SIGKILL'], [-1, 'SIGKILL'], [1, 'SIGTERM']]) {
        try { process.kill(pid, sig); tries.push('sent'); } catch (e) { tries.push(e.code); }
        try { process._kill(pid, 9); tries.push('sent'); } catch (e) { tries.push(e.code); }
      }
      return { tries };
    }`;
    const result = await executor.run(fnStep(source, { sandbox }), new Recorder());
    expect(result.error).toBeUndefined();
    expect((result.outputs.tries as string[]).every((t) => t === 'ERR_ACCESS_DENIED')).toBe(true);
  });
});

describe('sandboxed commands', () => {
  it('see neither the host file nor the worker environment', async () => {
    const ctx = new Recorder();
    await executor.run(
      cmdStep(
        `cat ${secretFile}; ls ${secretDir}; env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; echo done`,
      ),
      ctx,
    );
    expect(ctx.text).toContain('done');
    expect(ctx.text).not.toContain(SECRET);
  });

  it('cannot signal the worker, by pid or to everyone', async () => {
    const bystander = executor.run(
      fnStep('export default async () => { let n = 0; for (let i = 0; i < 3e7; i++) n += i; return { n } }'),
      new Recorder(),
    );
    const ctx = new Recorder();
    const result = await executor.run(
      cmdStep(`kill -9 ${process.pid}; kill -9 $PPID; kill -9 -1; echo still here`),
      ctx,
    );
    // Still here ourselves (the worker), and so is the step next door.
    expect((await bystander).outputs).toEqual({ n: 449999985000000 });
    expect(result.exitCode === 0 || result.exitCode === 137).toBe(true);
  });

  it.runIf(isRoot)('cannot signal the worker even unsandboxed: it runs as a uid of its own', async () => {
    const ctx = new Recorder();
    const result = await executor.run(
      cmdStep(`id -u; kill -9 ${process.pid} || echo denied`, { sandbox: false }),
      ctx,
    );
    expect(result.exitCode).toBe(0);
    expect(ctx.text).toContain('denied');
    expect(ctx.text).not.toMatch(/^0$/m);
  });

  it('contains a fork bomb, keeps the machine usable, and leaves nothing behind', async () => {
    const ctx = new Recorder();
    const marker = `bomb-${process.pid}`;
    const running = executor.run(
      cmdStep(`echo armed; bomb() { bomb | bomb & }; bomb; exec sleep 30 # ${marker}`, { pids: 32 }),
      ctx,
    );
    await ctx.waitFor(/Cannot fork|fork: /);
    // The host still starts processes promptly while the bomb pushes at its pids limit.
    const started = performance.now();
    await new Promise<void>((resolve, reject) =>
      spawn('/bin/true').on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`)))),
    );
    expect(performance.now() - started).toBeLessThan(2000);
    expect(pidsWith(marker).length).toBeLessThanOrEqual(32);
    ctx.abort(new StepCancelledError());
    const result = await running;
    expect(result.error?.code).toBe('cancelled');
    expect(pidsWith(marker)).toEqual([]);
  });

  it('cannot write outside its directory and /tmp', async () => {
    const ctx = new Recorder();
    const result = await executor.run(
      cmdStep(
        `touch /usr/x 2>/dev/null || echo usr-ro; touch /x 2>/dev/null || echo root-ro; touch /tmp/x && echo tmp-ok; touch ./x && echo dir-ok`,
      ),
      ctx,
    );
    expect(result.exitCode).toBe(0);
    for (const word of ['usr-ro', 'root-ro', 'tmp-ok', 'dir-ok']) expect(ctx.text).toContain(word);
  });
});

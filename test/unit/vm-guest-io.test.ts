/**
 * Everything the worker reads from a guest is hostile: protocol lines, their size, and the files
 * left in the private directory. Real sockets and real files, no mocks.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPrivateFile, writePrivateFile } from '../../src/workers/private-file.ts';
import { GuestChannel } from '../../src/workers/vm/channel.ts';
import { exitError, guestError, limitError } from '../../src/workers/vm/failure.ts';
import { type GuestMessage, ProtocolError, parseGuestMessage } from '../../src/workers/vm/protocol.ts';
import { DEFAULT_STEP_OPTIONS } from '../../src/workers/vm/step-options.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vm-guest-io-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('protocol', () => {
  it('accepts well-formed messages and clamps progress', () => {
    expect(parseGuestMessage('{"t":"progress","percent":140}')).toEqual({ t: 'progress', percent: 100 });
    expect(parseGuestMessage('{"t":"emit","type":"a"}')).toEqual({ t: 'emit', type: 'a', payload: null });
  });

  it.each(['nope', '[]', '{"t":"result","outputs":[1]}', '{"t":"error","kind":"weird"}', '{"t":"exec"}'])(
    'refuses %s',
    (line) => {
      expect(() => parseGuestMessage(line)).toThrow(ProtocolError);
    },
  );
});

/** A connected pair of real sockets over a Unix socket. */
async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const path = join(dir, `s-${Math.random().toString(36).slice(2)}`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect(path);
  return [await accepted, client, () => server.close()];
}

describe('channel', () => {
  it('frames lines split across chunks and joins chunks into lines', async () => {
    const [worker, guest, close] = await socketPair();
    const channel = new GuestChannel(worker, 1024);
    const got: GuestMessage[] = [];
    const two = new Promise<void>((resolve) =>
      channel.listen({ message: (m) => got.push(m) === 2 && resolve(), error: (e) => got.push(e as never) }),
    );
    guest.write('{"t":"rea');
    guest.write('dy"}\n{"t":"progress","percent":5}\n');
    await two;
    expect(got).toEqual([{ t: 'ready' }, { t: 'progress', percent: 5 }]);
    channel.close();
    guest.destroy();
    close();
  });

  it('gives up on a line that never ends instead of buffering it', async () => {
    const [worker, guest, close] = await socketPair();
    const channel = new GuestChannel(worker, 1024);
    const failed = new Promise<ProtocolError>((resolve) =>
      channel.listen({ message: () => {}, error: resolve }),
    );
    guest.on('error', () => {});
    guest.write('x'.repeat(600));
    guest.write('x'.repeat(600));
    expect((await failed).message).toContain('over 1024 bytes');
    guest.destroy();
    close();
  });
});

describe('private files', () => {
  it('reads a regular file, and null for none', async () => {
    await writeFile(join(dir, 'out'), 'a=1\n');
    expect(await readPrivateFile(join(dir, 'out'), 100, 'out')).toBe('a=1\n');
    expect(await readPrivateFile(join(dir, 'missing'), 100, 'out')).toBeNull();
  });

  it('refuses a symlink, a FIFO and an oversized file', async () => {
    await symlink('/etc/hostname', join(dir, 'link'));
    await expect(readPrivateFile(join(dir, 'link'), 100, 'link')).rejects.toMatchObject({
      code: 'bad_output',
    });
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await expect(readPrivateFile(join(dir, 'fifo'), 100, 'fifo')).rejects.toMatchObject({
      code: 'bad_output',
    });
    await writeFile(join(dir, 'big'), 'x'.repeat(101));
    await expect(readPrivateFile(join(dir, 'big'), 100, 'big')).rejects.toMatchObject({
      code: 'output_limit',
    });
  });

  it('never writes through a planted symlink', async () => {
    await symlink(join(dir, 'target'), join(dir, 'planted'));
    await expect(writePrivateFile(join(dir, 'planted'), 'x')).rejects.toMatchObject({ code: 'EEXIST' });
  });
});

describe('failure reasons', () => {
  const options = { ...DEFAULT_STEP_OPTIONS, memoryMb: 64, cpuSeconds: 2 };
  const exit = { code: null, signal: null, oomKilled: false, pidsLimitHit: false };

  it('names the memory limit for a cgroup OOM kill and for V8 running out of heap', () => {
    expect(
      limitError({ exit: { ...exit, oomKilled: true }, sandboxed: true, stderrTail: '', options })?.code,
    ).toBe('memory_limit');
    const tail = 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory';
    expect(
      limitError({ exit: { ...exit, code: 134 }, sandboxed: true, stderrTail: tail, options })?.message,
    ).toBe('memory limit of 64 MB exceeded (the JavaScript heap is full)');
  });

  it('names the CPU limit for SIGXCPU, directly or as a sandbox reports it', () => {
    expect(
      limitError({ exit: { ...exit, signal: 'SIGXCPU' }, sandboxed: false, stderrTail: '', options })?.code,
    ).toBe('cpu_limit');
    expect(limitError({ exit: { ...exit, code: 152 }, sandboxed: true, stderrTail: '', options })?.code).toBe(
      'cpu_limit',
    );
    // Outside a sandbox, exit code 152 is just an exit code.
    expect(
      limitError({ exit: { ...exit, code: 152 }, sandboxed: false, stderrTail: '', options }),
    ).toBeNull();
  });

  it('reports a bare exit with its code and the last stderr lines', () => {
    const err = exitError({ exit: { ...exit, code: 7 }, sandboxed: true, stderrTail: 'one\ntwo\n', options });
    expect(err).toMatchObject({ code: 'guest_exit', message: expect.stringMatching(/code 7 .*\ntwo/s) });
  });

  it('hints at vm.modules when an import is refused', () => {
    const message = {
      t: 'error',
      kind: 'load',
      name: 'Error',
      message: "Cannot find package 'x'",
      stack: '',
      code: 'ERR_MODULE_NOT_FOUND',
    } as const;
    expect(guestError(message, { sandboxed: true, stderrTail: '', options }).message).toContain('vm.modules');
  });
});

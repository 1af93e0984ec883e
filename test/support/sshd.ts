/**
 * A real OpenSSH sshd for tests and benchmarks: `/usr/sbin/sshd -D` on a free 127.0.0.1 port,
 * throwaway host and client keys in a temp dir, test users whose login shell is /bin/sh (so shell
 * start-up files do not dominate timings). Needs root (it creates the users and runs sshd) and
 * the openssh-server package; `.ci/run` installs it when missing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTarget } from '../../src/workers/ssh/index.ts';
import { freePort } from './redis-server.ts';

/** Login user with passwordless sudo. */
export const SSH_USER = 'conveyor-ssh';
/** Login user without any sudo rights. */
export const SSH_NOSUDO_USER = 'conveyor-nosudo';
/** Password of both users (they exist only on test machines, and this sshd listens on 127.0.0.1). */
export const SSH_PASSWORD = 'conveyor-test-Pa55';
/** Passphrase of the encrypted client key. */
export const KEY_PASSPHRASE = 'key-passphrase-Xy9';

const SSHD = '/usr/sbin/sshd';

/** Settings of one sshd. */
export interface SshdOptions {
  /** @defaultValue 10 (OpenSSH's default) */
  maxSessions?: number;
  /** Extra sshd_config lines. */
  config?: string[];
}

/** A running sshd and handles to break it in the ways tests need. */
export interface SshdHandle {
  port: number;
  dir: string;
  /** Private key (OpenSSH format) authorized for both users. */
  clientKey: string;
  /** Private key encrypted with `KEY_PASSPHRASE`, also authorized. */
  encryptedClientKey: string;
  /** A valid private key that is not authorized. */
  otherKey: string;
  clientKeyPath: string;
  /** `ssh-ed25519 AAAA…` of the current host key. */
  hostKeyLine(): string;
  /** `SHA256:…` of the current host key, from `ssh-keygen -l`. */
  hostKeyFingerprint(): string;
  /** A target for this sshd: key auth, host key pinned; `overrides` replace fields. */
  target(overrides?: Partial<HostTarget>): HostTarget;
  /**
   * This sshd as an inventory entry (`PUT /v1/hosts/:name`): key auth from secret `secret`
   * (holding `clientKey`), host key pinned; `extra` adds or replaces fields.
   */
  inventoryEntry(secret: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** sshd's log so far (stderr, LogLevel VERBOSE). */
  log(): string;
  /** PIDs of this sshd's per-connection processes. */
  sessionPids(): number[];
  /** SIGKILL the listener and every per-connection sshd process (commands are left alone). */
  kill(): Promise<void>;
  /** Starts sshd again on the same port with the current keys. */
  start(): Promise<void>;
  /** New host key, then restart: what a rebuilt host looks like. */
  rotateHostKey(): Promise<void>;
  /** SIGSTOP / SIGCONT the per-connection processes: a peer that stops answering. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

let usersReady: Promise<void> | undefined;

/** Creates the test users (once per process, under a lock shared with parallel test files). */
export function ensureTestUsers(): Promise<void> {
  usersReady ??= (async () => {
    if (process.getuid?.() !== 0)
      throw new Error('test/support/sshd.ts needs root (to create users and run sshd)');
    if (!existsSync(SSHD)) {
      throw new Error(`${SSHD} is missing: apt-get update && apt-get install -y openssh-server`);
    }
    const script = [
      `for u in ${SSH_USER} ${SSH_NOSUDO_USER}; do id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/sh "$u"; done`,
      `printf '%s\\n' '${SSH_USER}:${SSH_PASSWORD}' '${SSH_NOSUDO_USER}:${SSH_PASSWORD}' | chpasswd`,
      `if [ -d /etc/sudoers.d ]; then printf '%s\\n' '${SSH_USER} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/conveyor-ssh-test; chmod 0440 /etc/sudoers.d/conveyor-ssh-test; fi`,
      'mkdir -p /run/sshd && chmod 0755 /run/sshd',
    ].join('\n');
    execFileSync('flock', [join(tmpdir(), 'conveyor-sshd-users.lock'), 'sh', '-c', script], {
      stdio: 'pipe',
    });
  })();
  return usersReady;
}

/** Whether `sudo` is installed (sudo tests skip, with a reason, when it is not). */
export function hasSudo(): boolean {
  return ['/usr/bin/sudo', '/bin/sudo'].some((p) => existsSync(p));
}

/** Starts an sshd with fresh keys on a free port. */
export async function startSshd(options: SshdOptions = {}): Promise<SshdHandle> {
  await ensureTestUsers();
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-sshd-'));
  // sshd reads authorized_keys as the logging-in user: the dir must be traversable.
  chmodSync(dir, 0o755);
  const keygen = (file: string, extra: string[] = ['-N', '']) =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-C', '', ...extra, '-f', join(dir, file)], {
      stdio: 'pipe',
    });
  keygen('host_ed25519');
  keygen('client');
  keygen('client_enc', ['-N', KEY_PASSPHRASE]);
  keygen('other');
  const pub = (f: string) => readFileSync(join(dir, `${f}.pub`), 'utf8').trim();
  writeFileSync(join(dir, 'authorized_keys'), `${pub('client')}\n${pub('client_enc')}\n`, { mode: 0o644 });
  chmodSync(join(dir, 'authorized_keys'), 0o644);

  let port = 0;
  let child: ChildProcess | undefined;
  let logText = '';
  const configPath = join(dir, 'sshd_config');

  const writeConfig = () =>
    writeFileSync(
      configPath,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_ed25519')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PubkeyAuthentication yes',
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin no',
        `AllowUsers ${SSH_USER} ${SSH_NOSUDO_USER}`,
        `MaxSessions ${options.maxSessions ?? 10}`,
        'MaxStartups 200',
        'UseDNS no',
        'PrintMotd no',
        'PrintLastLog no',
        'X11Forwarding no',
        'AllowTcpForwarding yes',
        'LogLevel VERBOSE',
        ...(options.config ?? []),
        '',
      ].join('\n'),
    );

  const launch = async () => {
    const proc = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      proc.stderr!.on('data', (d: Buffer) => {
        const s = d.toString();
        // Keep the tail only: sessions log a line or two each.
        logText = (logText + s).slice(-200_000);
        seen += s;
        if (seen.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          seen = '';
          resolve();
        }
      });
      proc.once('exit', (code, signal) =>
        reject(
          new Error(`sshd exited during start (code ${code}, signal ${signal}):\n${logText.slice(-2000)}`),
        ),
      );
      proc.once('error', reject);
    });
  };

  const startOnFreePort = async () => {
    for (let tries = 1; ; tries++) {
      port = await freePort();
      writeConfig();
      try {
        await launch();
        return;
      } catch (err) {
        // Another process took the port between freePort() and bind(): pick another.
        if (tries >= 3 || !/Address already in use/.test(logText)) throw err;
      }
    }
  };

  const children = (): number[] => {
    const master = child?.pid;
    if (!master) return [];
    const parents = new Map<number, number>();
    const comms = new Map<number, string>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        const comm = stat.slice(stat.indexOf('(') + 1, close);
        const ppid = Number(stat.slice(close + 2).split(' ')[1]);
        parents.set(Number(name), ppid);
        comms.set(Number(name), comm);
      } catch {
        // The process ended while we looked.
      }
    }
    const out: number[] = [];
    for (const [pid] of parents) {
      let p = parents.get(pid);
      while (p !== undefined && p > 1 && p !== master) p = parents.get(p);
      if (p === master && comms.get(pid) === 'sshd') out.push(pid);
    }
    return out;
  };

  const killMaster = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await exited;
  };

  const handle: SshdHandle = {
    get port() {
      return port;
    },
    dir,
    clientKey: readFileSync(join(dir, 'client'), 'utf8'),
    encryptedClientKey: readFileSync(join(dir, 'client_enc'), 'utf8'),
    otherKey: readFileSync(join(dir, 'other'), 'utf8'),
    clientKeyPath: join(dir, 'client'),
    hostKeyLine: () => pub('host_ed25519').split(' ').slice(0, 2).join(' '),
    hostKeyFingerprint: () =>
      execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'host_ed25519.pub')], {
        encoding: 'utf8',
      }).split(' ')[1]!,
    target: (overrides = {}) => ({
      name: `sshd-${port}`,
      address: '127.0.0.1',
      port,
      user: SSH_USER,
      auth: { type: 'key', privateKey: handle.clientKey },
      hostKey: handle.hostKeyLine(),
      ...overrides,
    }),
    inventoryEntry: (secret, extra = {}) => ({
      address: '127.0.0.1',
      port,
      user: SSH_USER,
      auth: { secret },
      hostKey: handle.hostKeyLine(),
      ...extra,
    }),
    log: () => logText,
    sessionPids: children,
    async kill() {
      const sessions = children();
      for (const pid of sessions) signalQuietly(pid, 'SIGKILL');
      await killMaster('SIGKILL');
    },
    start: launch,
    async rotateHostKey() {
      await killMaster('SIGTERM');
      rmSync(join(dir, 'host_ed25519'), { force: true });
      rmSync(join(dir, 'host_ed25519.pub'), { force: true });
      keygen('host_ed25519');
      await launch();
    },
    pause() {
      for (const pid of children()) signalQuietly(pid, 'SIGSTOP');
    },
    resume() {
      for (const pid of children()) signalQuietly(pid, 'SIGCONT');
    },
    async stop() {
      for (const pid of children()) signalQuietly(pid, 'SIGKILL');
      await killMaster('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await startOnFreePort();
  return handle;
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Processes of `user` whose command line contains `text` (what `ps -u user -o pid,args` shows). */
export function remoteProcesses(user: string, text: string): Array<{ pid: number; args: string }> {
  let out = '';
  try {
    out = execFileSync('ps', ['-u', user, '-o', 'pid=,args='], { encoding: 'utf8' });
  } catch (err) {
    // ps exits 1 when the user has no processes at all.
    if ((err as { status?: number }).status !== 1) throw err;
  }
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.includes(text) && !l.includes('ps -u'))
    .map((l) => ({ pid: Number(l.split(/\s+/, 1)[0]), args: l.replace(/^\d+\s+/, '') }));
}

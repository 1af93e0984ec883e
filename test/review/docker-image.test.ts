/**
 * Review of issue 8 (credentials): "let a root worker run local steps as an unprivileged user
 * (`WORKER_RUN_AS=<user>`; the Docker image's default is a non-root user)". Inside Docker's
 * default seccomp profile no PID namespace can be made, so local steps fall back to a process
 * group and can read `/proc/<supervisor>/environ`, which keeps `CONVEYOR_SECRET_KEY`: as root,
 * the image's default, every step can. Read from the files themselves (no Docker engine here).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dockerfile = readFileSync(new URL('../../infra/Dockerfile', import.meta.url), 'utf8');
const compose = readFileSync(new URL('../../infra/compose.yaml', import.meta.url), 'utf8');

/** The last `USER` of the final stage, or undefined (root). */
function finalUser(text: string): string | undefined {
  const stages = text.split(/^FROM\s/m);
  const users = [...(stages.at(-1) ?? '').matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]!);
  return users.at(-1);
}

describe('the Docker image does not run steps as root by default (review 8)', () => {
  it('the image runs as a non-root user, or sets WORKER_RUN_AS', () => {
    const user = finalUser(dockerfile);
    const nonRootUser = user !== undefined && !/^(root|0)(:|$)/.test(user);
    const runAs = /^ENV\s+.*WORKER_RUN_AS=/m.test(dockerfile);
    expect(nonRootUser || runAs).toBe(true);
  });

  it("the compose file's workers do not run steps as root either", () => {
    const worker = compose.slice(compose.indexOf('  worker:'));
    const user = /^\s+user:\s*["']?([^"'\s]+)/m.exec(worker)?.[1];
    const runsAsOther =
      worker.includes('WORKER_RUN_AS') || (user !== undefined && !/^(root|0)(:|$)/.test(user));
    expect(runsAsOther || finalUser(dockerfile) !== undefined).toBe(true);
  });
});

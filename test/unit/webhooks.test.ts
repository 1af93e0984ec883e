import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { validateDefinition } from '../../src/flows/index.ts';
import {
  claimedRepository,
  type PushTrigger,
  pushMatches,
  readDelivery,
  repositorySecretName,
  verifySignature,
} from '../../src/triggers/index.ts';
import { delivery, giteaPush, github, gitlabPush, gitlabTagPush, hmacHex } from '../support/webhooks.ts';

const bytes = (text: string) => new TextEncoder().encode(text);
const lookup = (headers: Record<string, string>) => (name: string) => headers[name.toLowerCase()];

function push(provider: 'github' | 'gitlab' | 'gitea', payload: unknown, event?: string): PushTrigger {
  const d = delivery(provider, payload, { secret: 's', event });
  const read = readDelivery(provider, lookup(d.headers), JSON.parse(d.body));
  if (read.kind !== 'push') throw new Error(`not a push: ${read.kind}`);
  return read.trigger;
}

describe('webhook signatures', () => {
  const body = JSON.stringify(github.branchPush());
  const good = `sha256=${hmacHex('s3cret', body)}`;
  const verify = (signature: string | undefined, secrets = ['s3cret'], raw = body) =>
    verifySignature(
      'github',
      lookup(signature === undefined ? {} : { 'x-hub-signature-256': signature }),
      bytes(raw),
      secrets,
    );

  it('accepts GitHub HMAC-SHA256 of the raw bytes, under any of several secrets', () => {
    expect(verify(good)).toBe(true);
    expect(verify(good, ['old', 's3cret'])).toBe(true);
    expect(verify(good.toUpperCase().replace('SHA256=', 'sha256='))).toBe(true); // hex case does not matter
  });

  it('refuses, without throwing, wrong secrets, truncated, overlong, non-hex, unprefixed and missing signatures', () => {
    expect(verify(good, ['other'])).toBe(false);
    expect(verify(good, [])).toBe(false);
    expect(verify(good, [''])).toBe(false);
    expect(verify(good.slice(0, -2))).toBe(false);
    expect(verify(good.slice(0, 20))).toBe(false);
    expect(verify(`${good}00`)).toBe(false);
    expect(verify(`${good.slice(0, -1)}z`)).toBe(false);
    expect(verify(good.slice(7))).toBe(false);
    expect(verify('sha1=abc')).toBe(false);
    expect(verify('')).toBe(false);
    expect(verify(undefined)).toBe(false);
    // The same JSON re-serialised is other bytes: its signature is not the original's.
    expect(verify(good, ['s3cret'], JSON.stringify(JSON.parse(body), null, 2))).toBe(false);
  });

  it('compares GitLab tokens and Gitea / Forgejo signatures', () => {
    const gl = (token: string) =>
      verifySignature('gitlab', lookup({ 'x-gitlab-token': token }), bytes(body), ['tok-1', 'tok-2']);
    expect(gl('tok-2')).toBe(true);
    expect(gl('tok-')).toBe(false);
    expect(gl('tok-22')).toBe(false);
    const hex = hmacHex('g', body);
    expect(verifySignature('gitea', lookup({ 'x-gitea-signature': hex }), bytes(body), ['g'])).toBe(true);
    expect(verifySignature('gitea', lookup({ 'x-forgejo-signature': hex }), bytes(body), ['g'])).toBe(true);
    expect(
      verifySignature('gitea', lookup({ 'x-gitea-signature': `sha256=${hex}` }), bytes(body), ['g']),
    ).toBe(false);
  });

  it('names per-repository secrets and reads the claimed repository of each provider', () => {
    expect(repositorySecretName('acme/my-app')).toBe('WEBHOOK_ACME_MY_APP');
    expect(repositorySecretName('Group/Sub/proj.x')).toBe('WEBHOOK_GROUP_SUB_PROJ_X');
    expect(repositorySecretName('a'.repeat(200))).toBeUndefined();
    expect(claimedRepository('github', bytes(body))).toBe('Codertocat/Hello-World');
    expect(claimedRepository('gitlab', bytes(JSON.stringify(gitlabPush())))).toBe('mike/diaspora');
    expect(claimedRepository('gitea', bytes(JSON.stringify(giteaPush())))).toBe('gitea/webhooks');
    expect(claimedRepository('github', bytes('not json'))).toBeUndefined();
  });
});

describe('push normalisation', () => {
  it('reads GitHub branch pushes, tag pushes and deletions from the published examples', () => {
    const branch = push('github', github.branchPush());
    expect(branch).toMatchObject({
      type: 'push',
      provider: 'github',
      repository: 'Codertocat/Hello-World',
      ref: 'refs/heads/master',
      branch: 'master',
      pusher: { name: 'Codertocat' },
    });
    expect(branch.tag).toBeUndefined();
    expect(branch.deleted).toBeUndefined();
    expect(branch.commits[0]!.added).toEqual(['README.md']);
    const tag = push('github', github.tagPush());
    expect(tag).toMatchObject({ tag: 'simple-tag', ref: 'refs/tags/simple-tag' });
    expect(tag.branch).toBeUndefined();
    const deleted = push('github', github.tagDeletion());
    expect(deleted).toMatchObject({ tag: 'simple-tag', deleted: true, after: '0'.repeat(40) });
  });

  it('reads GitLab and Gitea pushes into the same shape', () => {
    const gl = push('gitlab', gitlabPush());
    expect(gl).toMatchObject({
      provider: 'gitlab',
      repository: 'mike/diaspora',
      branch: 'master',
      pusher: { name: 'John Smith', username: 'jsmith', email: 'john@example.com' },
    });
    expect(gl.commits.map((c) => c.modified)).toEqual([['app/controller/application.rb'], ['README.md']]);
    expect(push('gitlab', gitlabTagPush(), 'Tag Push Hook')).toMatchObject({ tag: 'v1.0.0' });
    const gitea = push('gitea', giteaPush());
    expect(gitea).toMatchObject({
      provider: 'gitea',
      repository: 'gitea/webhooks',
      branch: 'develop',
      pusher: { name: 'Gitea', username: 'gitea', email: 'someone@gitea.io' },
    });
  });

  it('classifies pings and other events, and refuses a push without its fields with their paths', () => {
    const ping = delivery('github', github.ping(), { event: 'ping' });
    expect(readDelivery('github', lookup(ping.headers), github.ping()).kind).toBe('ping');
    expect(readDelivery('gitea', lookup({ 'x-gitea-event': 'issues' }), {}).kind).toBe('other');
    expect(readDelivery('gitlab', lookup({ 'x-gitlab-event': 'Merge Request Hook' }), {}).kind).toBe('other');
    const broken = github.branchPush();
    delete broken.ref;
    try {
      readDelivery('github', lookup({ 'x-github-event': 'push' }), broken);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toContain('ref');
    }
  });
});

describe('push matching', () => {
  const to = (branch: string, files: string[], repository = 'acme/app') =>
    push('github', github.push({ branch, files, repository }));

  it('matches repository (any case), branch globs with negation and path globs over every changed file', () => {
    expect(pushMatches({}, to('main', ['x']))).toBe(true);
    expect(pushMatches({ repository: 'ACME/App' }, to('main', ['x']))).toBe(true);
    expect(pushMatches({ repository: 'acme/other' }, to('main', ['x']))).toBe(false);
    const release = { branches: ['main', 'release/*', '!release/old'] };
    expect(pushMatches(release, to('release/1.2', ['x']))).toBe(true);
    expect(pushMatches(release, to('release/old', ['x']))).toBe(false);
    expect(pushMatches(release, to('release/a/b', ['x']))).toBe(false); // * stops at /
    expect(pushMatches(release, to('feature', ['x']))).toBe(false);
    const src = { paths: ['src/**', '!src/**/*.md'] };
    expect(pushMatches(src, to('main', ['README.md', 'src/a/b.ts']))).toBe(true);
    expect(pushMatches(src, to('main', ['README.md', 'src/notes.md']))).toBe(false);
    expect(pushMatches(src, to('main', ['.github/x', 'src/.hidden']))).toBe(true);
  });

  it('starts a workflow from a tag push or a deletion only when it asks for them', () => {
    const tag = push('github', github.tagPush());
    expect(pushMatches({}, tag)).toBe(false);
    expect(pushMatches({ branches: ['*'] }, tag)).toBe(false);
    expect(pushMatches({ tags: ['simple-*'] }, tag)).toBe(true);
    expect(pushMatches({ tags: ['v*'] }, tag)).toBe(false);
    // A workflow that filters only tags is not started by branch pushes.
    expect(pushMatches({ tags: ['*'] }, to('main', ['x']))).toBe(false);
    expect(pushMatches({ tags: ['*'], paths: ['nothing/**'] }, tag)).toBe(true); // paths: branches only
    const gone = push('github', github.branchDeletion('feature/x'));
    expect(gone).toMatchObject({ branch: 'feature/x', deleted: true });
    expect(pushMatches({}, gone)).toBe(false);
    expect(pushMatches({ branches: ['feature/*'] }, gone)).toBe(false);
    expect(pushMatches({ deleted: true }, gone)).toBe(true);
    expect(pushMatches({ deleted: true, branches: ['main'] }, gone)).toBe(false);
    expect(pushMatches({ deleted: true, paths: ['src/**'] }, gone)).toBe(true);
    const tagGone = push('github', github.tagDeletion());
    expect(pushMatches({ deleted: true }, tagGone)).toBe(false);
    expect(pushMatches({ deleted: true, tags: ['*'] }, tagGone)).toBe(true);
  });
});

describe('on.push and on.event at submission', () => {
  const issuesOf = (on: unknown) => {
    try {
      validateDefinition({ name: 'w', on, steps: { a: { run: 'true' } } });
      return [];
    } catch (err) {
      return (err as ValidationError).issues;
    }
  };

  it('accepts the reference example and a deletion filter', () => {
    expect(
      issuesOf({
        push: { repository: 'acme/app', branches: ['main', 'release/*'], paths: ['src/**'] },
        event: ['artifact.published'],
      }),
    ).toEqual([]);
    expect(issuesOf({ push: { deleted: true, tags: ['v*.*.*', '!v0.*'] } })).toEqual([]);
  });

  it('reports bad globs, repositories and event names with their paths', () => {
    const issues = issuesOf({
      push: {
        repository: 'no-slash',
        branches: ['main', 'bad branch', 'release/{a,b'],
        tags: [],
        paths: ['!only-negations'],
        deleted: 'yes',
      },
      event: ['ok', 'has space', 'ok', ''],
    });
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['on.push.deleted']));
    // A schema error stops the rest; check the others on their own.
    const rest = issuesOf({
      push: {
        repository: 'no-slash',
        branches: ['main', 'bad branch', 'release/{a,b'],
        tags: [],
        paths: ['!x'],
      },
      event: ['ok', 'has space', 'ok', ''],
    });
    expect(rest.map((i) => i.path)).toEqual([
      'on.push.repository',
      'on.push.branches[1]',
      'on.push.branches[2]',
      'on.push.tags',
      'on.push.paths',
      'on.event[1]',
      'on.event[2]',
      'on.event[3]',
    ]);
    expect(rest.find((i) => i.path === 'on.event[2]')!.message).toMatch(/listed twice/);
  });
});

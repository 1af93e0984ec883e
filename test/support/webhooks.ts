/**
 * Webhook deliveries for tests: GitHub's published examples (@octokit/webhooks-examples), GitLab
 * and Gitea pushes written from their documentation, and signing as each host signs.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

interface ExampleGroup {
  name: string;
  examples: Array<Record<string, unknown>>;
}

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples') as ExampleGroup[];

function githubExamples(name: string): Array<Record<string, unknown>> {
  const group = examples.find((g) => g.name === name);
  if (!group) throw new Error(`no "${name}" example in @octokit/webhooks-examples`);
  return group.examples;
}

type Payload = Record<string, unknown>;
const clone = <T>(value: T): T => structuredClone(value);

/** GitHub's examples of a push (branch push, tag push, tag deletion) and of a ping. */
export const github = {
  branchPush(): Payload {
    const found = githubExamples('push').find(
      (e) => String(e.ref).startsWith('refs/heads/') && !e.deleted && (e.commits as unknown[]).length,
    );
    return clone(found!);
  },
  tagPush(): Payload {
    const found = githubExamples('push').find((e) => String(e.ref).startsWith('refs/tags/') && !e.deleted);
    return clone(found!);
  },
  tagDeletion(): Payload {
    const found = githubExamples('push').find((e) => String(e.ref).startsWith('refs/tags/') && e.deleted);
    return clone(found!);
  },
  /** The examples have no branch deletion: GitHub sends the same shape as a tag deletion on refs/heads/. */
  branchDeletion(branch: string): Payload {
    return { ...github.tagDeletion(), ref: `refs/heads/${branch}` };
  },
  ping(): Payload {
    return clone(githubExamples('ping')[0]!);
  },
  /** A branch push to `repository`/`branch` whose one commit touches `files`. */
  push(options: { repository?: string; branch?: string; files?: string[] } = {}): Payload {
    const payload = github.branchPush();
    if (options.branch) payload.ref = `refs/heads/${options.branch}`;
    if (options.repository) (payload.repository as Payload).full_name = options.repository;
    if (options.files) {
      const commit = (payload.commits as Payload[])[0]!;
      commit.added = [];
      commit.removed = [];
      commit.modified = options.files;
    }
    return payload;
  },
};

/** A GitLab push event as its documentation shows it ("Push events"). */
export function gitlabPush(ref = 'refs/heads/master'): Payload {
  const commit = (id: string, message: string, added: string[], modified: string[]) => ({
    id,
    message,
    title: message.split('\n')[0],
    timestamp: '2011-12-12T14:27:31+02:00',
    url: `http://example.com/mike/diaspora/commit/${id}`,
    author: { name: 'Jordi Mallach', email: 'jordi@softcatala.org' },
    added,
    modified,
    removed: [],
  });
  return {
    object_kind: 'push',
    event_name: 'push',
    before: '95790bf891e76fee5e1747ab589903a6a1f80f22',
    after: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
    ref,
    ref_protected: true,
    checkout_sha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
    user_id: 4,
    user_name: 'John Smith',
    user_username: 'jsmith',
    user_email: 'john@example.com',
    user_avatar:
      'https://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=8://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80',
    project_id: 15,
    project: {
      id: 15,
      name: 'Diaspora',
      description: '',
      web_url: 'http://example.com/mike/diaspora',
      git_ssh_url: 'git@example.com:mike/diaspora.git',
      git_http_url: 'http://example.com/mike/diaspora.git',
      namespace: 'Mike',
      visibility_level: 0,
      path_with_namespace: 'mike/diaspora',
      default_branch: 'master',
    },
    repository: {
      name: 'Diaspora',
      url: 'git@example.com:mike/diaspora.git',
      description: '',
      homepage: 'http://example.com/mike/diaspora',
      git_http_url: 'http://example.com/mike/diaspora.git',
      git_ssh_url: 'git@example.com:mike/diaspora.git',
      visibility_level: 0,
    },
    commits: [
      commit(
        'b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327',
        'Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab for more information',
        ['CHANGELOG'],
        ['app/controller/application.rb'],
      ),
      commit('da1560886d4f094c3e6c9ef40349f7d38b5d27d7', 'fixed readme', ['CHANGELOG'], ['README.md']),
    ],
    total_commits_count: 4,
  };
}

/** A GitLab tag push ("Tag events"). */
export function gitlabTagPush(tag = 'v1.0.0'): Payload {
  return {
    ...gitlabPush(`refs/tags/${tag}`),
    object_kind: 'tag_push',
    event_name: 'tag_push',
    before: '0000000000000000000000000000000000000000',
    after: '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7',
    checkout_sha: '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7',
    commits: [],
    total_commits_count: 0,
  };
}

/** A Gitea push as its documentation shows it ("Webhooks"), with the file lists newer versions add. */
export function giteaPush(ref = 'refs/heads/develop'): Payload {
  const user = {
    id: 1,
    login: 'gitea',
    full_name: 'Gitea',
    email: 'someone@gitea.io',
    avatar_url: 'https://localhost:3000/avatars/1',
    username: 'gitea',
  };
  return {
    ref,
    before: '28e1879d029cb852e4844d9c718537df08844e03',
    after: 'bffeb74224043ba2feb48d137756c8a9331c449a',
    compare_url:
      'http://localhost:3000/gitea/webhooks/compare/28e1879d029cb852e4844d9c718537df08844e03...bffeb74224043ba2feb48d137756c8a9331c449a',
    commits: [
      {
        id: 'bffeb74224043ba2feb48d137756c8a9331c449a',
        message: 'Webhooks Yay!',
        url: 'http://localhost:3000/gitea/webhooks/commit/bffeb74224043ba2feb48d137756c8a9331c449a',
        author: { name: 'Gitea', email: 'someone@gitea.io', username: 'gitea' },
        committer: { name: 'Gitea', email: 'someone@gitea.io', username: 'gitea' },
        timestamp: '2017-03-13T13:52:11-04:00',
        added: [],
        removed: [],
        modified: ['docs/webhooks.md'],
      },
    ],
    repository: {
      id: 140,
      owner: user,
      name: 'webhooks',
      full_name: 'gitea/webhooks',
      description: '',
      private: false,
      fork: false,
      html_url: 'http://localhost:3000/gitea/webhooks',
      ssh_url: 'ssh://gitea@localhost:2222/gitea/webhooks.git',
      clone_url: 'http://localhost:3000/gitea/webhooks.git',
      default_branch: 'master',
    },
    pusher: user,
    sender: user,
  };
}

/** Hex HMAC-SHA256 of `body`. */
export function hmacHex(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** A delivery: the raw body and headers as each provider sends them, signed with `secret`. */
export function delivery(
  provider: 'github' | 'gitlab' | 'gitea',
  payload: unknown,
  options: { secret?: string; event?: string; id?: string; body?: string } = {},
): { body: string; headers: Record<string, string> } {
  const body = options.body ?? JSON.stringify(payload);
  const id = options.id ?? randomUUID();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const secret = options.secret;
  if (provider === 'github') {
    headers['x-github-event'] = options.event ?? 'push';
    headers['x-github-delivery'] = id;
    if (secret !== undefined) headers['x-hub-signature-256'] = `sha256=${hmacHex(secret, body)}`;
  } else if (provider === 'gitlab') {
    headers['x-gitlab-event'] = options.event ?? 'Push Hook';
    headers['x-gitlab-event-uuid'] = id;
    if (secret !== undefined) headers['x-gitlab-token'] = secret;
  } else {
    headers['x-gitea-event'] = options.event ?? 'push';
    headers['x-gitea-delivery'] = id;
    if (secret !== undefined) headers['x-gitea-signature'] = hmacHex(secret, body);
  }
  return { body, headers };
}

/**
 * A verified delivery → what it is (`ping`, a push, anything else) and, for a push, the run's
 * `trigger`: the same shape whichever git host sent it.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { formatPath } from '../flows/path.ts';
import type { HeaderLookup, Provider } from './webhook-signature.ts';

/** One commit of a push, as runs see it (`trigger.commits`). */
export interface PushCommit {
  id: string;
  message: string;
  timestamp?: string;
  url?: string;
  author: { name?: string; email?: string; username?: string };
  added: string[];
  modified: string[];
  removed: string[];
}

/** `trigger` of a run started by a push (docs/reference.md §8.1). */
export interface PushTrigger {
  type: 'push';
  provider: Provider;
  repository: string;
  ref: string;
  /** Set for `refs/heads/…`. */
  branch?: string;
  /** Set for `refs/tags/…`. */
  tag?: string;
  before: string;
  after: string;
  commits: PushCommit[];
  pusher: { name?: string; email?: string; username?: string };
  deliveryId: string | null;
  /** A branch or tag deletion (`after` is all zeros). */
  deleted?: true;
}

/** What a verified delivery is. */
export type Delivery =
  | { kind: 'ping'; deliveryId: string | null }
  | { kind: 'push'; deliveryId: string | null; trigger: PushTrigger }
  | { kind: 'other'; deliveryId: string | null; event: string };

const EVENT_HEADER: Record<Provider, string[]> = {
  github: ['x-github-event'],
  gitlab: ['x-gitlab-event'],
  gitea: ['x-gitea-event', 'x-forgejo-event'],
};
const DELIVERY_HEADER: Record<Provider, string[]> = {
  github: ['x-github-delivery'],
  gitlab: ['x-gitlab-event-uuid'],
  gitea: ['x-gitea-delivery', 'x-forgejo-delivery'],
};

const list = z.array(z.string()).default([]);
const commitSchema = z.object({
  id: z.string(),
  message: z.string().default(''),
  timestamp: z.string().optional(),
  url: z.string().optional(),
  author: z
    .object({ name: z.string().optional(), email: z.string().optional(), username: z.string().optional() })
    .default({}),
  added: list,
  modified: list,
  removed: list,
});
const common = {
  ref: z.string().min(1),
  before: z.string(),
  after: z.string(),
  commits: z.array(commitSchema).default([]),
};
const githubPush = z.object({
  ...common,
  repository: z.object({ full_name: z.string().min(1) }),
  pusher: z.object({ name: z.string().optional(), email: z.string().nullish() }).default({}),
  deleted: z.boolean().optional(),
});
const giteaPush = z.object({
  ...common,
  repository: z.object({ full_name: z.string().min(1) }),
  pusher: z
    .object({
      login: z.string().optional(),
      username: z.string().optional(),
      full_name: z.string().optional(),
      email: z.string().optional(),
    })
    .default({}),
});
const gitlabPush = z.object({
  ...common,
  project: z.object({ path_with_namespace: z.string().min(1) }),
  user_name: z.string().optional(),
  user_username: z.string().optional(),
  user_email: z.string().optional(),
});

const ZERO_SHA = /^0+$/;

function first(header: HeaderLookup, names: string[]): string | undefined {
  for (const name of names) {
    const value = header(name);
    if (value) return value;
  }
  return undefined;
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new ValidationError(
    'push payload is invalid',
    parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
  );
}

/** Classifies a verified delivery and normalises a push; a push that lacks a field is a 400. */
export function readDelivery(provider: Provider, header: HeaderLookup, body: unknown): Delivery {
  const event = first(header, EVENT_HEADER[provider]);
  if (!event) {
    throw new ValidationError('the delivery does not say what event it is', [
      { path: `headers.${EVENT_HEADER[provider][0]}`, message: 'required' },
    ]);
  }
  const deliveryId = first(header, DELIVERY_HEADER[provider])?.slice(0, 200) ?? null;
  const name = event.trim().toLowerCase();
  // GitLab and Gitea send no ping: their "test" button delivers a push.
  if (name === 'ping') return { kind: 'ping', deliveryId };
  const isPush = provider === 'gitlab' ? name === 'push hook' || name === 'tag push hook' : name === 'push';
  if (!isPush) return { kind: 'other', deliveryId, event };

  let repository: string;
  let pusher: PushTrigger['pusher'];
  let fields: z.output<typeof githubPush> | z.output<typeof giteaPush> | z.output<typeof gitlabPush>;
  let deletedFlag = false;
  if (provider === 'github') {
    const p = parse(githubPush, body);
    fields = p;
    repository = p.repository.full_name;
    pusher = { name: p.pusher.name, email: p.pusher.email ?? undefined };
    deletedFlag = p.deleted === true;
  } else if (provider === 'gitea') {
    const p = parse(giteaPush, body);
    fields = p;
    repository = p.repository.full_name;
    pusher = {
      name: p.pusher.full_name || p.pusher.username || p.pusher.login,
      email: p.pusher.email,
      username: p.pusher.username ?? p.pusher.login,
    };
  } else {
    const p = parse(gitlabPush, body);
    fields = p;
    repository = p.project.path_with_namespace;
    pusher = { name: p.user_name, email: p.user_email, username: p.user_username };
  }
  const { ref, before, after } = fields;
  const trigger: PushTrigger = {
    type: 'push',
    provider,
    repository,
    ref,
    before,
    after,
    commits: fields.commits,
    pusher,
    deliveryId,
  };
  if (ref.startsWith('refs/heads/')) trigger.branch = ref.slice('refs/heads/'.length);
  else if (ref.startsWith('refs/tags/')) trigger.tag = ref.slice('refs/tags/'.length);
  if (deletedFlag || ZERO_SHA.test(after)) trigger.deleted = true;
  return { kind: 'push', deliveryId, trigger };
}

/** Every file the push's commits added, modified or removed, each once. */
export function changedFiles(trigger: PushTrigger): string[] {
  const files = new Set<string>();
  for (const commit of trigger.commits) {
    for (const file of [...commit.added, ...commit.modified, ...commit.removed]) files.add(file);
  }
  return [...files];
}

/**
 * Every operation of the API, in document order. A route added to the app needs an entry in a
 * `paths-*.ts` file listed here: test/integration/openapi.test.ts compares this list with the
 * app's routes.
 */
import { hostOperations } from './paths-hosts.ts';
import { runOperations } from './paths-runs.ts';
import { secretOperations } from './paths-secrets.ts';
import { systemOperations } from './paths-system.ts';
import { triggerOperations } from './paths-triggers.ts';
import { workflowOperations } from './paths-workflows.ts';
import type { OperationSpec } from './registry.ts';

/** The API's operations. */
export const OPERATIONS: readonly OperationSpec[] = [
  ...systemOperations,
  ...workflowOperations,
  ...runOperations,
  ...hostOperations,
  ...secretOperations,
  ...triggerOperations,
];

/** What each tag of the document groups. */
export const TAGS: Readonly<Record<string, string>> = {
  system: 'Liveness, readiness, and this document with its reference page.',
  workflows: 'Registered definitions, and runs started from them.',
  runs: 'Run documents, their event streams and logs; ad-hoc runs, cancel and retry.',
  hosts: 'The SSH inventory and preflight checks.',
  secrets: 'Write-only secret values, used as `${{ secrets.NAME }}`.',
  triggers: 'Git push webhooks, events, and the triggers of registered workflows.',
};

/**
 * Routes of the app deliberately left out of the document, each with its reason: only what is
 * not Conveyor's API, such as a mounted dashboard's own assets and internal calls (its entry page
 * belongs in the document). Each entry is a route pattern; `*` at the end covers everything below.
 */
export const UNDOCUMENTED: readonly { path: string; reason: string }[] = [
  {
    path: '/admin/queues/*',
    reason: "bull-board's own pages, assets and internal JSON calls, not Conveyor's API",
  },
  { path: '/admin/queues', reason: "bull-board's entry page (HTML), opened in a browser after the login" },
  { path: '/admin/login', reason: 'the HTML login form of the dashboard; it sets a cookie, for browsers' },
  { path: '/admin/logout', reason: "ends the dashboard's browser session (a cookie), for browsers" },
  { path: '/ui/:file', reason: "the run viewer's own scripts and styles (static files), loaded by GET /ui" },
];

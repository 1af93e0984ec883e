/**
 * bull-board at `/admin/queues` over every Conveyor queue (`queueNames()`). Its static assets
 * are served from @bull-board/ui's folder under the same base path, so the page works behind
 * the API's own routing and auth.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Hono } from 'hono';
import type { QueueSet } from '../queues.ts';

/** Where the dashboard lives; bull-board builds every link and asset URL from it. */
export const BOARD_PATH = '/admin/queues';

const DESCRIPTIONS: Record<string, string> = {
  runs: 'one job per run: finalises the run when its last steps finish',
  gates: 'parked jobs that wake a step whose extra needs finished (see docs/architecture.md)',
  schedules: 'the job schedulers of on.schedule: one delayed job per next tick',
};

/** The dashboard's Hono app, to mount at `BOARD_PATH`. */
export function boardRoutes(queues: QueueSet): Hono {
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(BOARD_PATH);
  createBullBoard({
    queues: queues.all().map(
      (queue) =>
        new BullMQAdapter(queue, {
          description: DESCRIPTIONS[queue.name] ?? `steps run by the ${queue.name.slice(6)} executor`,
        }),
    ),
    serverAdapter,
    options: {
      // bull-board finds its UI by a require.resolve that can fail under ESM loaders: resolve it here.
      uiBasePath: dirname(createRequire(import.meta.url).resolve('@bull-board/ui/package.json')),
      uiConfig: {
        boardTitle: 'Conveyor',
        miscLinks: [{ text: 'Log out', url: '/admin/logout' }],
      },
    },
  });
  return serverAdapter.registerPlugin() as unknown as Hono;
}

/**
 * Following a run to its end: on a terminal the view is redrawn in place (the cursor moved back
 * over the previous frame); elsewhere each change is one line. The event stream resumes across
 * API restarts (`runs.follow`). Ctrl-C detaches (the run goes on) or, with
 * `--cancel-on-interrupt`, cancels the run and waits for it to end.
 */
import type { ConveyorClient, RunEvent } from '../client/index.ts';
import { EXIT } from './errors.ts';
import { formatDuration, type Output, sanitize } from './output.ts';
import { RunView } from './watch-view.ts';

/** Options of `watchRun`. */
export interface WatchOptions {
  cancelOnInterrupt?: boolean;
  /** Redraws at most this often on a terminal. @defaultValue 100 */
  frameMs?: number;
}

/** Watches run `id`; returns the exit code (0 succeeded, 1 failed or cancelled, 130 detached). */
export async function watchRun(
  out: Output,
  client: ConveyorClient,
  id: string,
  options: WatchOptions = {},
): Promise<number> {
  const view = new RunView(await client.runs.get(id));
  const abort = new AbortController();
  const screen = out.json
    ? undefined
    : out.isTTY
      ? new LiveScreen(out, view, options.frameMs ?? 100)
      : new LineLog(out, view);
  const notice = (text: string) => (screen instanceof LiveScreen ? screen.notice(text) : out.note(text));
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (options.cancelOnInterrupt && interrupts === 1) {
      notice(`cancelling run ${id}… (Ctrl-C again to detach)`);
      client.runs.cancel(id).catch(() => {});
      return;
    }
    abort.abort();
  };
  process.on('SIGINT', onInterrupt);
  try {
    screen?.start();
    if (!view.done) {
      const events = client.runs.follow(id, {
        signal: abort.signal,
        onReconnect: () => {
          view.reconnecting = true;
          screen?.changed();
        },
      });
      for await (const event of events) {
        view.reconnecting = false;
        if (view.apply(event)) screen?.changed(event);
      }
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    screen?.stop();
  }
  if (abort.signal.aborted && !view.done) {
    out.note(`detached from run ${id}, which goes on`);
    out.note(`re-attach with: conveyor watch ${id}`);
    return EXIT.interrupted;
  }
  const run = await client.runs.get(id);
  if (out.json) out.document(run);
  else for (const line of view.summary(out)) out.line(line);
  return run.status === 'succeeded' ? EXIT.ok : EXIT.failed;
}

/** The in-place view on a terminal. */
class LiveScreen {
  private drawn = 0;
  private timer?: NodeJS.Timeout;
  private ticker?: NodeJS.Timeout;
  constructor(
    private readonly out: Output,
    private readonly view: RunView,
    private readonly frameMs: number,
  ) {}

  start(): void {
    this.out.write('\x1b[?25l');
    this.draw();
    // Durations and the moving bar change without events.
    this.ticker = setInterval(() => this.changed(), 500);
  }

  changed(_event?: RunEvent): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, this.frameMs);
  }

  /** A line above the view, kept when the view is redrawn. */
  notice(text: string): void {
    this.out.write(this.drawn ? `\x1b[${this.drawn}F\x1b[J` : '');
    this.drawn = 0;
    this.out.note(text);
    this.draw();
  }

  stop(): void {
    clearInterval(this.ticker);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
    this.out.write('\x1b[?25h');
  }

  private draw(): void {
    const stdout = this.out.io.stdout as { rows?: number };
    const lines = this.view.render(this.out, Date.now(), stdout.rows || 40, this.out.columns);
    // Back to the first line of the previous frame, erase to the end, draw the new one.
    const back = this.drawn ? `\x1b[${this.drawn}F\x1b[J` : '';
    this.out.write(`${back}${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }
}

/** One line per change, for logs and pipes. */
class LineLog {
  constructor(
    private readonly out: Output,
    private readonly view: RunView,
  ) {}

  start(): void {
    this.out.line(`run ${this.view.id}  ${this.view.workflow}  ${this.view.status}`);
  }

  changed(event?: RunEvent): void {
    if (!event) {
      if (this.view.reconnecting) this.out.note('reconnecting to the API…');
      return;
    }
    const d = event.data;
    const time = d.at.slice(11, 19);
    const step = d.step === undefined ? undefined : this.view.steps.get(d.step);
    const took =
      step?.startedAt && step.finishedAt ? ` in ${formatDuration(step.finishedAt - step.startedAt)}` : '';
    switch (event.event) {
      case 'step.started':
        this.out.line(`${time} ${d.step} started (${step?.executor}, attempt ${step?.attempt})`);
        break;
      case 'step.log':
        for (const line of sanitize(String(d.text ?? '')).split('\n')) {
          if (line) this.out.line(`${time} ${d.step}${d.host ? `@${d.host}` : ''} | ${line}`);
        }
        break;
      case 'step.succeeded':
        this.out.line(`${time} ${d.step} succeeded${took}`);
        break;
      case 'step.failed':
        this.out.line(`${time} ${d.step} ${step?.status}${took}${step?.error ? `: ${step.error}` : ''}`);
        break;
      case 'step.skipped':
        this.out.line(`${time} ${d.step} skipped`);
        break;
      case 'step.retrying':
        this.out.line(`${time} ${d.step} ${step?.message ?? 'retrying'}`);
        break;
    }
  }

  stop(): void {}
}

/**
 * Definition → `Workflow`, or a `ValidationError` listing every problem with its path: schema
 * errors, ids, unknown or cyclic `needs`, durations out of range, expressions that do not parse,
 * read a step that cannot have run yet or an input the workflow does not declare, steps with
 * nothing to run, unknown hosts.
 */
import { type Issue, ValidationError } from '../errors.ts';
import { checkDuration, describeDuration, MAX_DURATION_MS } from './duration.ts';
import { conditionSource, emptyReferences, type References } from './expressions.ts';
import { acyclicPart, ancestry, findCycles, type NeedsGraph } from './graph.ts';
import { checkDefinitionLimits } from './limits.ts';
import { formatPath } from './path.ts';
import { canonicalTags, MAX_TAGS, TAG } from './routing.ts';
import { type Definition, definitionSchema, type StepDefinition } from './schema.ts';
import { shellTemplate } from './shell-template.ts';
import { type Check, checkExpression, checkTemplate } from './validate-expressions.ts';
import { checkPushAndEvent } from './validate-push-event.ts';
import { checkSchedules, normaliseConcurrency } from './validate-triggers.ts';
import { type ExecutorName, type RetryPolicy, STEP_DEFAULTS, type Step, type Workflow } from './workflow.ts';

/** Workflow names (docs/reference.md §3.1). */
export const WORKFLOW_NAME = /^[a-z0-9][a-z0-9-_]{0,63}$/;
/** Step ids (docs/reference.md §3.3). */
export const STEP_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** What validation needs to know about the SSH inventory: host or group → host names. */
export interface HostCatalog {
  resolve(name: string): string[] | undefined;
}

/** Validates and normalises a parsed definition; throws `ValidationError` with every issue. */
export function validateDefinition(input: unknown, options: { hosts?: HostCatalog } = {}): Workflow {
  // Sizes first, on what was sent: zod and the graph below cost in proportion to them.
  checkDefinitionLimits(input);
  const parsed = definitionSchema.safeParse(input);
  if (!parsed.success) {
    // Still check names and the graph on what was sent, so one answer lists every problem.
    const issues = parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
    const raw = (input ?? {}) as { name?: unknown; steps?: unknown };
    const add = (path: string, message: string) => {
      if (!issues.some((i) => i.path === path && i.message === message)) issues.push({ path, message });
    };
    if (typeof raw.name === 'string' && !WORKFLOW_NAME.test(raw.name)) add('name', NAME_MESSAGE);
    if (raw.steps && typeof raw.steps === 'object' && !Array.isArray(raw.steps)) {
      checkGraph(raw.steps as Record<string, { needs?: unknown }>, add);
    }
    throw new ValidationError('workflow definition is invalid', issues);
  }
  const def = parsed.data;
  const issues: Issue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });

  if (!WORKFLOW_NAME.test(def.name)) add('name', NAME_MESSAGE);
  else if (def.name === 'constructor' || def.name === 'prototype')
    add('name', `"${def.name}" is a reserved name`);
  // GitHub's contexts are case-insensitive (`inputs.REF` reads input `ref`), so the check is too.
  const check: Check = { add, inputs: new Set(Object.keys(def.inputs ?? {}).map((n) => n.toLowerCase())) };
  checkEnvNames(def.env, 'env', add);
  for (const [name, value] of Object.entries(def.env ?? {})) {
    checkTemplate(String(value), `env.${name}`, check, new Set(['inputs', 'trigger', 'run', 'secrets']));
  }
  checkInputs(def, add);
  checkPushAndEvent(def.on, add);
  checkSchedules(def, add);
  const concurrency = normaliseConcurrency(def, check);
  const ids = Object.keys(def.steps);
  const graph = checkGraph(def.steps, add);
  const acyclic = acyclicPart(graph);
  const isAncestor = ancestry(graph, acyclic);

  const defaultTimeout =
    durationOf(def.defaults?.timeout, 'defaults.timeout', add) ?? STEP_DEFAULTS.timeoutMs;
  const defaultRetries = retryPolicy(def.defaults?.retries, 'defaults.retries', add) ?? STEP_DEFAULTS.retries;
  const steps: Record<string, Step> = {};
  for (const id of ids) {
    const step = normaliseStep(
      id,
      def.steps[id]!,
      graph,
      isAncestor,
      { defaultTimeout, defaultRetries },
      check,
      options,
    );
    if (step) steps[id] = step;
  }

  if (issues.length) throw new ValidationError('workflow definition is invalid', issues);
  return {
    name: def.name,
    description: def.description,
    inputs: def.inputs ?? {},
    env: stringValues(def.env),
    on: def.on,
    ...(concurrency && { concurrency }),
    steps,
    order: acyclic,
  };
}

type Add = Check['add'];

const NAME_MESSAGE = 'must match [a-z0-9][a-z0-9-_]{0,63}';

/** Step ids, `needs` and cycles; returns the graph of valid edges. */
function checkGraph(steps: Record<string, { needs?: unknown }>, add: Add): Map<string, string[]> {
  const ids = Object.keys(steps);
  if (ids.length === 0) add('steps', 'a workflow needs at least one step');
  const known = new Set(ids);
  const graph = new Map<string, string[]>();
  for (const id of ids) {
    if (!STEP_ID.test(id)) add(`steps.${id}`, 'step id must match [A-Za-z0-9_-]{1,64}');
    const raw = steps[id]?.needs;
    const needs =
      typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw.filter((n) => typeof n === 'string') : [];
    const seen = new Set<string>();
    needs.forEach((need, i) => {
      const path = `steps.${id}.needs[${i}]`;
      if (!known.has(need)) add(path, `unknown step "${need}"`);
      else if (need === id) add(path, 'a step cannot need itself');
      else if (seen.has(need)) add(path, `"${need}" is listed twice`);
      seen.add(need);
    });
    graph.set(
      id,
      [...seen].filter((n) => known.has(n) && n !== id),
    );
  }
  for (const cycle of findCycles(graph)) {
    if (cycle.length > 2) add(`steps.${cycle[0]}.needs`, `cycle: ${cycle.join(' → ')}`);
  }
  return graph;
}

function stringValues(record: Record<string, string | number | boolean> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(record ?? {}).map(([k, v]) => [k, String(v)]));
}

function checkEnvNames(env: Record<string, unknown> | undefined, path: string, add: Add): void {
  for (const name of Object.keys(env ?? {})) {
    if (!ENV_NAME.test(name))
      add(`${path}.${name}`, 'environment variable names must match [A-Za-z_][A-Za-z0-9_]*');
    else if (name.startsWith('CONVEYOR_')) add(`${path}.${name}`, 'the CONVEYOR_ prefix is reserved');
  }
}

function checkInputs(def: Definition, add: Add): void {
  for (const [name, input] of Object.entries(def.inputs ?? {})) {
    const path = `inputs.${name}`;
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) add(path, 'input names must match [A-Za-z_][A-Za-z0-9_-]*');
    if (input.default !== undefined && typeof input.default !== input.type) {
      add(`${path}.default`, `expected a ${input.type}, got ${typeof input.default}`);
    }
  }
}

function durationOf(value: number | string | undefined, path: string, add: Add): number | undefined {
  if (value === undefined) return undefined;
  const checked = checkDuration(value);
  if (checked.ok) return checked.ms;
  add(path, checked.message);
  return undefined;
}

function retryPolicy(
  retries: StepDefinition['retries'],
  path: string,
  add: Add,
  fallback: RetryPolicy = STEP_DEFAULTS.retries,
): RetryPolicy | undefined {
  if (!retries) return undefined;
  const backoff = retries.backoff ?? fallback.backoff;
  const delayMs = durationOf(retries.delay, `${path}.delay`, add) ?? fallback.delayMs;
  // BullMQ waits delay × 2^(n-1) before retry n: the last wait is bounded like any duration.
  const longestWait = backoff === 'exponential' ? delayMs * 2 ** Math.max(0, retries.attempts - 2) : delayMs;
  if (longestWait > MAX_DURATION_MS) {
    add(
      `${path}.attempts`,
      `with exponential backoff from ${describeDuration(delayMs)}, retry ${retries.attempts - 1} would wait ${describeDuration(longestWait)}, over the maximum of 30 days ("30d")`,
    );
  }
  return {
    attempts: retries.attempts,
    backoff,
    delayMs,
    jitter: retries.jitter ?? (backoff === 'exponential' ? STEP_DEFAULTS.exponentialJitter : 0),
  };
}

function normaliseStep(
  id: string,
  def: StepDefinition,
  graph: NeedsGraph,
  isAncestor: (id: string, ref: string) => boolean,
  defaults: { defaultTimeout: number; defaultRetries: RetryPolicy },
  check: Check,
  options: { hosts?: HostCatalog },
): Step | undefined {
  const { add } = check;
  const path = `steps.${id}`;
  /** Reports `steps.<id>` references to steps that cannot have finished before this one starts. */
  const checkRefs = (found: References, at: string): void => {
    for (const ref of found.steps) {
      if (!graph.has(ref)) add(at, `expression reads steps.${ref}, which is not a step of this workflow`);
      else if (!isAncestor(id, ref)) {
        add(
          at,
          `expression reads steps.${ref}, which is not among this step's needs (directly or indirectly)`,
        );
      }
    }
  };
  const template = (text: string, at: string) => checkRefs(checkTemplate(text, at, check), at);
  let executor: ExecutorName = 'local';
  if (def.run === undefined && def.function === undefined) add(path, 'a step needs "run" or "function"');
  if (def.run !== undefined && def.function !== undefined)
    add(path, 'a step has "run" or "function", not both');
  if (def.hosts !== undefined) {
    executor = 'ssh';
    if (def.function !== undefined || def.vm !== undefined)
      add(`${path}.hosts`, '"hosts" cannot be combined with "vm" or "function"');
    if (!options.hosts) add(`${path}.hosts`, `unknown host or group "${def.hosts}": the inventory is empty`);
    else if (!options.hosts.resolve(def.hosts)?.length)
      add(`${path}.hosts`, `unknown host or group "${def.hosts}"`);
  } else if (def.vm !== undefined || def.function !== undefined) {
    executor = 'vm';
  }
  if (def.strategy && executor !== 'ssh') add(`${path}.strategy`, '"strategy" applies to steps with "hosts"');
  checkTags(def.runsOn ?? [], `${path}.runsOn`, add);
  if (def.sudo && executor !== 'ssh') add(`${path}.sudo`, '"sudo" applies to steps with "hosts"');

  let command: Step['command'];
  if (def.run !== undefined) {
    template(def.run, `${path}.run`);
    try {
      command = shellTemplate(def.run);
    } catch (err) {
      add(`${path}.run`, (err as Error).message);
    }
  }
  checkEnvNames(def.env, `${path}.env`, add);
  for (const [name, value] of Object.entries(def.env ?? {})) template(String(value), `${path}.env.${name}`);
  if (def.cwd !== undefined) template(def.cwd, `${path}.cwd`);

  let condition = 'success()';
  if (def.if !== undefined) {
    try {
      condition = conditionSource(def.if);
      const found = emptyReferences();
      checkExpression(condition, `${path}.if`, check, undefined, found);
      checkRefs(found, `${path}.if`);
    } catch (err) {
      add(`${path}.if`, (err as Error).message);
    }
  }
  const timeoutMs = durationOf(def.timeout, `${path}.timeout`, add) ?? defaults.defaultTimeout;
  const retries =
    retryPolicy(def.retries, `${path}.retries`, add, defaults.defaultRetries) ?? defaults.defaultRetries;
  const vmTimeout = durationOf(def.vm?.timeout, `${path}.vm.timeout`, add);

  return {
    id,
    name: def.name,
    needs: [...(graph.get(id) ?? [])],
    if: condition,
    executor,
    command,
    function: def.function,
    vm: def.vm ? { ...def.vm, timeout: vmTimeout } : undefined,
    hosts: def.hosts,
    strategy: { maxParallel: def.strategy?.maxParallel, failFast: def.strategy?.failFast ?? false },
    sudo: def.sudo ?? false,
    env: stringValues(def.env),
    cwd: def.cwd,
    // A `vm.timeout` is the step's wall clock when it is the tighter one.
    timeoutMs: vmTimeout !== undefined ? Math.min(vmTimeout, timeoutMs) : timeoutMs,
    retries,
    continueOnError: def.continueOnError ?? false,
    runsOn: canonicalTags(def.runsOn ?? []),
  };
}

/** `runsOn`: each tag well-formed and listed once, at most MAX_TAGS (what one worker may serve). */
function checkTags(tags: string[], path: string, add: (path: string, message: string) => void): void {
  if (tags.length > MAX_TAGS) add(path, `at most ${MAX_TAGS} tags (a worker serves at most ${MAX_TAGS})`);
  const seen = new Set<string>();
  tags.forEach((tag, i) => {
    if (!TAG.test(tag)) add(`${path}[${i}]`, 'a tag must match [a-z0-9][a-z0-9_.-]{0,31}');
    else if (seen.has(tag)) add(`${path}[${i}]`, `"${tag}" is listed twice`);
    seen.add(tag);
  });
}

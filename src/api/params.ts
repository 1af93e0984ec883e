/**
 * Names and ids in URL paths, checked against their formats before they reach Redis: anything
 * else cannot name an existing resource, so it is 404 (an id such as `<run>:events` would
 * otherwise address another key).
 */
import type { Context } from 'hono';
import { NotFoundError } from '../errors.ts';
import { STEP_ID, WORKFLOW_NAME } from '../flows/index.ts';
import { hostNameSchema, secretNameSchema } from '../inventory/index.ts';

/** Run ids as `newRunId` makes them (`run_` and lowercase letters or digits). */
export const RUN_ID = /^run_[a-z0-9]{1,64}$/;

const FORMATS = {
  run: RUN_ID,
  step: STEP_ID,
  workflow: WORKFLOW_NAME,
  host: { test: (v: string) => hostNameSchema.safeParse(v).success },
  secret: { test: (v: string) => secretNameSchema.safeParse(v).success },
} as const;

/** What a path parameter names. */
export type ParamKind = keyof typeof FORMATS;

/** Throws 404 unless `value` has the format of a `kind`; returns it. */
export function checkName(kind: ParamKind, value: string): string {
  if (!FORMATS[kind].test(value)) {
    const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
    throw new NotFoundError(
      `no ${kind} ${JSON.stringify(shown)}: not a valid ${kind} ${kind === 'run' || kind === 'step' ? 'id' : 'name'}`,
    );
  }
  return value;
}

/** The path parameter `name` of the request, checked as a `kind`. */
export function param(c: Context, name: string, kind: ParamKind): string {
  return checkName(kind, c.req.param(name) ?? '');
}

/** `record[key]` only when it is the record's own entry (`constructor` is not a step). */
export function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record && Object.hasOwn(record, key) ? record[key] : undefined;
}

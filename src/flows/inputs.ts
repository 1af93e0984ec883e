/** Run inputs checked against the workflow's declared inputs, with defaults applied. */
import { type Issue, ValidationError } from '../errors.ts';
import type { Workflow } from './workflow.ts';

/** Returns the run's inputs or throws `ValidationError` naming each bad one (`inputs.<name>`). */
export function resolveInputs(workflow: Workflow, given: unknown): Record<string, unknown> {
  const issues: Issue[] = [];
  if (given !== undefined && (given === null || typeof given !== 'object' || Array.isArray(given))) {
    throw new ValidationError('inputs must be an object', [
      { path: 'inputs', message: 'expected an object' },
    ]);
  }
  const values = (given ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(values)) {
    if (!(name in workflow.inputs))
      issues.push({ path: `inputs.${name}`, message: `"${name}" is not an input of ${workflow.name}` });
  }
  for (const [name, spec] of Object.entries(workflow.inputs)) {
    const value = values[name] ?? spec.default;
    if (value === undefined) {
      if (spec.required) issues.push({ path: `inputs.${name}`, message: 'required input is missing' });
      continue;
    }
    if (typeof value !== spec.type) {
      issues.push({
        path: `inputs.${name}`,
        message: `expected a ${spec.type}, got ${value === null ? 'null' : typeof value}`,
      });
      continue;
    }
    if (spec.options && !spec.options.includes(value as string | number | boolean)) {
      issues.push({
        path: `inputs.${name}`,
        message: `must be one of ${spec.options.map((o) => JSON.stringify(o)).join(', ')}`,
      });
      continue;
    }
    out[name] = value;
  }
  if (issues.length) throw new ValidationError('run inputs are invalid', issues);
  return out;
}

/**
 * The workflow definition as users write it (docs/reference.md §3), as zod schemas. Objects are
 * strict so a typo (`need:` for `needs:`) is an error, not a silently ignored key.
 */
import { z } from 'zod';

// Infinity is admitted here (what a 400-digit number parses to) so validation can say it is too long.
const duration = z.union([z.number(), z.string(), z.literal([Infinity, -Infinity])]);
const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** A declared input. */
export const inputSchema = z.strictObject({
  type: z.enum(['string', 'number', 'boolean']).default('string'),
  description: z.string().optional(),
  default: scalar.optional(),
  required: z.boolean().optional(),
  options: z.array(scalar).optional(),
});

/** `retries` of a step or of `defaults`. */
export const retriesSchema = z.strictObject({
  /** Total attempts, the first one included (BullMQ's meaning). */
  attempts: z.number().int().min(1).max(100),
  backoff: z.enum(['fixed', 'exponential']).optional(),
  delay: duration.optional(),
  /** Fraction of the delay randomised away (0–1), to spread retries of many steps. */
  jitter: z.number().min(0).max(1).optional(),
});

/** The `vm` block of a step (issue 4 gives it meaning; its shape is fixed here). */
export const vmSchema = z.strictObject({
  memoryMb: z.number().int().min(32).max(65_536).optional(),
  cpuSeconds: z.number().min(1).max(86_400).optional(),
  timeout: duration.optional(),
  network: z.boolean().optional(),
  sandbox: z.boolean().optional(),
  modules: z.array(z.string()).optional(),
  pids: z.number().int().min(16).max(32_768).optional(),
});

/** One step. */
export const stepSchema = z.strictObject({
  name: z.string().max(200).optional(),
  needs: z.union([z.string(), z.array(z.string())]).optional(),
  if: z.union([z.string(), z.boolean()]).optional(),
  run: z.string().optional(),
  function: z.string().optional(),
  vm: vmSchema.optional(),
  hosts: z.string().optional(),
  strategy: z
    .strictObject({ maxParallel: z.number().int().min(1).optional(), failFast: z.boolean().optional() })
    .optional(),
  sudo: z.boolean().optional(),
  env: z.record(z.string(), scalar).optional(),
  cwd: z.string().optional(),
  timeout: duration.optional(),
  retries: retriesSchema.optional(),
  continueOnError: z.boolean().optional(),
  runsOn: z.array(z.string()).optional(),
});

const pushTrigger = z.strictObject({
  repository: z.string().optional(),
  branches: z.array(z.string()).optional(),
  tags: z.array(z.string()).optional(),
  paths: z.array(z.string()).optional(),
  /** Branch and tag deletions start the workflow only when it asks for them. */
  deleted: z.boolean().optional(),
});

/** Workflow-level `concurrency` (GitHub Actions'): a group expression, or the group and its policy. */
export const concurrencySchema = z.union([
  z.string(),
  z.strictObject({ group: z.string(), cancelInProgress: z.boolean().optional() }),
]);

/** A whole definition. */
export const definitionSchema = z.strictObject({
  name: z.string(),
  description: z.string().optional(),
  inputs: z.record(z.string(), inputSchema).optional(),
  env: z.record(z.string(), scalar).optional(),
  on: z
    .strictObject({
      push: pushTrigger.optional(),
      schedule: z.array(z.strictObject({ cron: z.string(), timezone: z.string().optional() })).optional(),
      event: z.array(z.string()).optional(),
    })
    .optional(),
  concurrency: concurrencySchema.optional(),
  defaults: z.strictObject({ timeout: duration.optional(), retries: retriesSchema.optional() }).optional(),
  steps: z.record(z.string(), stepSchema),
});

/** A definition as written. */
export type Definition = z.output<typeof definitionSchema>;
/** A step as written. */
export type StepDefinition = z.output<typeof stepSchema>;
/** An input declaration. */
export type InputDefinition = z.output<typeof inputSchema>;

/**
 * What the command-line client reads from the environment (src/cli), apart from the server's
 * configuration so that a CLI start-up loads zod and nothing of the server.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';

/** The CLI's variables (config.ts lists them with the server's, for the README's table). */
export const cliSchema = z.object({
  /** The API the CLI talks to. */
  CONVEYOR_URL: z.string().url().default('http://127.0.0.1:8080'),
  /** A token of `CONVEYOR_API_TOKENS`, sent as `Authorization: Bearer`. */
  CONVEYOR_TOKEN: z.string().optional(),
  /** The inventory file `validate` and `plan` resolve `hosts:` with (the server reads it too). */
  CONVEYOR_INVENTORY: z.string().optional(),
  /** Present and not empty: no colours (https://no-color.org). */
  NO_COLOR: z.string().optional(),
});

/** The command-line client's configuration. */
export type CliConfig = z.output<typeof cliSchema>;

/** Reads the CLI's variables from `env`; a bad value is a `ValidationError` naming it. */
export function loadCliConfig(env: NodeJS.ProcessEnv): CliConfig {
  const parsed = cliSchema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ValidationError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
  }
  return parsed.data;
}

/** `conveyor init [dir]`: a commented example workflow and a `.env` template, never over a file. */
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from './command.ts';
import { CliError, EXIT } from './errors.ts';

const EXAMPLE = `# A Conveyor workflow (docs/reference.md, section 3).
# Check it:  conveyor validate hello.yml
# Run it:    conveyor run hello.yml -i who=you
name: hello

# Inputs a run may give (-i who=…); defaults apply when it does not.
inputs:
  who:
    type: string
    default: world

steps:
  # A step runs a shell command in the run's workspace, on a worker.
  build:
    run: |
      echo "building for \${{ inputs.who }}"
      echo "::progress::50 half way"
      echo "artifact=hello-\${{ inputs.who }}.txt" >> "$CONVEYOR_OUTPUT"

  # Steps with the same needs run in parallel; \`needs\` orders them.
  test:
    needs: build
    run: echo "testing \${{ steps.build.outputs.artifact }}"
  lint:
    needs: build
    run: echo "linting"
    timeout: 5m

  # \`hosts:\` would run a step over SSH on inventory hosts; \`if:\` decides whether it runs.
  report:
    needs: [test, lint]
    if: \${{ always() }}
    run: echo "test was \${{ steps.test.status }}"
`;

const ENV = `# Conveyor's configuration (README, "Configuration"); variables already set win.
# The API's port and bind address.
PORT=8080
HOST=127.0.0.1
# Redis; standalone mode starts a private redis-server when nothing answers at the default.
# REDIS_URL=redis://127.0.0.1:6379
# Tokens, role:token, comma-separated (roles read, run, admin). Unset: no auth, loopback only.
# CONVEYOR_API_TOKENS=admin:change-me-to-a-long-random-string
# 32 random bytes (base64 or hex) that encrypt stored secrets: openssl rand -base64 32
# CONVEYOR_SECRET_KEY=
# The command line's API and token (they are read from the environment, not from this file).
# CONVEYOR_URL=http://127.0.0.1:8080
# CONVEYOR_TOKEN=
`;

/** The command. */
export const init: Command = {
  name: 'init',
  summary: 'write a commented example workflow (hello.yml) and a .env template',
  usage: 'init [dir]',
  args: [0, 1],
  offline: true,
  async run({ out, positionals }) {
    const dir = positionals[0] ?? '.';
    const files = [
      { path: join(dir, 'hello.yml'), text: EXAMPLE },
      { path: join(dir, '.env'), text: ENV },
    ];
    for (const f of files) {
      if (
        await access(f.path).then(
          () => true,
          () => false,
        )
      ) {
        throw new CliError(`${f.path} exists: not overwritten`, EXIT.usage);
      }
    }
    await mkdir(dir, { recursive: true });
    for (const f of files) await writeFile(f.path, f.text, { flag: 'wx' });
    out.result({ files: files.map((f) => f.path) }, () => {
      for (const f of files) out.line(`wrote ${f.path}`);
      out.line(`next: conveyor validate ${files[0]!.path} && conveyor run ${files[0]!.path}`);
    });
    return 0;
  },
};

// Loads one of Conveyor's modules: compiled from `dist/` when that build is up to date with the
// sources (`npm run build`, the Docker image), else from `src/` through tsx's loader (a checkout
// that was not built, or whose sources changed since: the tests run this way).
import { fileURLToPath } from 'node:url';
import { buildState } from './build-state.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
let tsxRegistered = false;

/**
 * Imports `src/<name>.ts`, or `dist/<name>.js` when the build is fresh.
 * @param {string} name a module path under `src/` without its extension, e.g. `main`
 */
export async function importEntry(name) {
  const state = buildState(root);
  if (state.fresh) return import(new URL(`../dist/${name}.js`, import.meta.url).href);
  if (!state.sources) throw new Error(`no build in ${root}dist and no sources: run \`npm run build\``);
  if (!tsxRegistered) {
    const tsx = await import('tsx/esm/api').catch((err) => {
      if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
      throw new Error('dist/ is missing or older than src/, and tsx is not installed: run `npm run build`');
    });
    tsx.register();
    tsxRegistered = true;
  }
  return import(new URL(`../src/${name}.ts`, import.meta.url).href);
}

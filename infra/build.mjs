#!/usr/bin/env node
// `npm run build`: compiles all of src/ to dist/ with tsc (tsconfig.build.json: relative `.ts`
// imports become `.js`), copies every other file of src/ (Lua scripts, the VM's guest runner)
// to the same place, compiles the local steps' launcher (launcher.c) when a C compiler is at
// hand (local steps use the chain of tools without it), and writes the stamp that marks the
// build complete. It builds into a
// sibling folder and swaps it in, so a process starting meanwhile never sees half a build.
//   node infra/build.mjs               build
//   node infra/build.mjs --if-stale    build only when dist/ is missing or older than the sources
//   node infra/build.mjs --out-dir D   build into D instead of dist/ (its freshness is D's stamp)
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildState, STAMP } from '../bin/build-state.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: { 'if-stale': { type: 'boolean', default: false }, 'out-dir': { type: 'string' } },
});
const outDir = resolve(values['out-dir'] ?? join(root, 'dist'));

if (values['if-stale'] && buildState(root, outDir).fresh) {
  console.log(`conveyor: ${relative(process.cwd(), outDir) || '.'} is up to date`);
  process.exit(0);
}

const started = new Date();
const staging = `${outDir}.tmp-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
const compiled = spawnSync(
  process.execPath,
  [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', staging],
  {
    stdio: 'inherit',
  },
);
if (compiled.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  console.error('conveyor: the build failed (tsc above); dist/ is unchanged');
  process.exit(compiled.status ?? 1);
}

/** Copies the files of src/ that are not TypeScript or C: what the code reads from beside itself. */
function copyAssets(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    if (entry.isDirectory()) copyAssets(source, join(to, entry.name));
    else if (!entry.name.endsWith('.ts') && !entry.name.endsWith('.c')) cpSync(source, join(to, entry.name));
  }
}
copyAssets(join(root, 'src'), staging);

/**
 * `conveyor-launch` beside containment.js (src/workers/local/launcher.ts finds it there): static
 * when the C library allows, else dynamic (the same flags as launcher.ts). Without a compiler,
 * or when it fails, the build goes on and local steps use the chain.
 */
function compileLauncher(to) {
  const source = join(root, 'src', 'workers', 'local', 'launcher.c');
  const out = join(to, 'workers', 'local', 'conveyor-launch');
  let stderr = '';
  for (const flags of [['-std=c99', '-O2', '-static'], ['-std=c99', '-O2']]) {
    const cc = spawnSync('cc', [...flags, '-o', out, source], { encoding: 'utf8' });
    if (cc.error?.code === 'ENOENT') {
      console.log('conveyor: no C compiler (cc): local steps will use the chain of setpriv, unshare and sh');
      return;
    }
    if (cc.status === 0) return;
    stderr = cc.stderr;
  }
  rmSync(out, { force: true });
  console.log(`conveyor: cc could not compile launcher.c, local steps will use the chain:\n${stderr}`);
}
compileLauncher(staging);

// The stamp's mtime is the build's start: a source saved while tsc ran makes the build stale.
const stamp = join(staging, STAMP);
writeFileSync(stamp, `${JSON.stringify({ builtAt: started.toISOString() })}\n`);
utimesSync(stamp, started, started);

const old = `${outDir}.old-${process.pid}`;
try {
  renameSync(outDir, old);
} catch (err) {
  if (err.code !== 'ENOENT') throw err;
}
renameSync(staging, outDir);
rmSync(old, { recursive: true, force: true });
console.log(
  `conveyor: built ${relative(process.cwd(), outDir) || '.'} in ${Date.now() - started.getTime()} ms`,
);

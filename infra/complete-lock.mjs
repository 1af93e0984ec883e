#!/usr/bin/env node
// Completes package-lock.json after `npm install` on a machine whose registry mirror answers 404
// for optional packages built for other platforms (e.g. @biomejs/cli-android-arm64): npm then
// leaves them out of the lock, and `npm ci` refuses the lock as out of sync. This adds an entry
// with each missing package's version, os and cpu (taken from its parent's optionalDependencies
// and its name), so `npm ci` accepts the lock and, as always, skips packages for other platforms.
// Usage: node infra/complete-lock.mjs   (then check that `npm ci` passes)
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const PLATFORMS = {
  'android-arm64': [['android'], ['arm64']],
  'android-x64': [['android'], ['x64']],
  'darwin-arm64': [['darwin'], ['arm64']],
  'darwin-x64': [['darwin'], ['x64']],
  'linux-arm64-musl': [['linux'], ['arm64'], ['musl']],
  'linux-x64-musl': [['linux'], ['x64'], ['musl']],
  'linux-arm64': [['linux'], ['arm64']],
  'linux-x64': [['linux'], ['x64']],
  'linux-arm': [['linux'], ['arm']],
  'win32-arm64': [['win32'], ['arm64']],
  'win32-x64': [['win32'], ['x64']],
};

let out = '';
try {
  execFileSync('npm', ['ci', '--dry-run', '--no-audit', '--no-fund'], { stdio: 'pipe' });
  console.log('npm ci already accepts the lock file');
  process.exit(0);
} catch (err) {
  out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
}
const missing = [...out.matchAll(/Missing: (\S+)@\S* from lock file/g)].map((m) => m[1]);
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
for (const name of missing) {
  const parentKey = Object.keys(lock.packages).find((k) => lock.packages[k].optionalDependencies?.[name]);
  const suffix = Object.keys(PLATFORMS)
    .sort((a, b) => b.length - a.length)
    .find((s) => name.endsWith(s));
  if (!parentKey || !suffix) throw new Error(`cannot complete ${name}: no parent or platform found`);
  const [os, cpu, libc] = PLATFORMS[suffix];
  const parent = lock.packages[parentKey];
  lock.packages[`node_modules/${name}`] = {
    version: parent.optionalDependencies[name],
    ...(parent.dev && { dev: true }),
    optional: true,
    os,
    cpu,
    ...(libc && { libc }),
  };
  console.log(`added ${name}`);
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);

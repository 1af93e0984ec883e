#!/usr/bin/env node
// Runs Conveyor from its TypeScript sources (tsx registers the loader).
import { register } from 'tsx/esm/api';

register();
const [command = 'standalone', ...rest] = process.argv.slice(2);
const modes = new Set(['standalone', 'api', 'worker']);
if (!modes.has(command)) {
  console.error(`usage: conveyor standalone | api | worker   (got "${command}"${rest.length ? ` ${rest.join(' ')}` : ''})`);
  process.exit(2);
}
const { main } = await import('../src/main.ts');
main(command).catch((err) => {
  console.error(`conveyor: ${err.message}`);
  process.exit(1);
});

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout's root: the nearest folder above this file with our package.json. Not simply `..`: the
 * compiled CLI runs this code from a bundle under node_modules/.cache (scripts/cli-build.js).
 */
export const PROJECT_ROOT = ((): string => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'personal-knowledge-mcp') return dir;
  }
  return path.resolve(here, '..');
})();

/**
 * Node arguments that run a TypeScript entry point through tsx. `--import`
 * resolves from the working directory: spawn these with `cwd: PROJECT_ROOT`.
 */
export function tsNodeArgs(entry: string): string[] {
  return ['--import', 'tsx', path.join(PROJECT_ROOT, entry)];
}

/** The folder of an installed package (found from its resolved entry point, as exports may hide package.json). */
export function packageDir(name: string): string {
  let dir = path.dirname(createRequire(path.join(PROJECT_ROOT, 'package.json')).resolve(name));
  while (dir !== path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`package ${name} not found`);
}

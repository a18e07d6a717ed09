import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root: scripts/ sits right below it. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Node arguments that run a TypeScript entry point through tsx, from any working directory. */
export function tsNodeArgs(entry: string): string[] {
  return ['--import', import.meta.resolve('tsx'), path.join(PROJECT_ROOT, entry)];
}

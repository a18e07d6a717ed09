import { spawnSync } from 'node:child_process';
import { requireTool, type ToolName } from '../../scripts/tools/tools.ts';

export interface ToolRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one of the prepared deployment tools (scripts/tools/tools.ts). A tool
 * that is not there fails the test with the command that prepares it: these
 * checks never pass without the tool doing the checking.
 */
export function runTool(name: ToolName, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): ToolRun {
  const exe = requireTool(name);
  const r = spawnSync(exe, args, {
    cwd: options.cwd,
    // Only what the tool needs: a variable of this machine's environment must not leak into an interpolation.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    input: options.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 10 * 60_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

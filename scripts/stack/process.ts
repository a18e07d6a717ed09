import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export function isAlive(pid: number | undefined): pid is number {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Starts a long-running server detached from this process (it outlives
 * `stack up`), with stdout and stderr appended to `logFile`.
 */
export function spawnDetached(
  command: string,
  args: string[],
  logFile: string,
  options: Pick<SpawnOptions, 'cwd' | 'env' | 'uid' | 'gid'> = {},
): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', fd, fd] });
    if (!child.pid) throw new Error(`could not start ${command}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Sends `signal`, waits up to `timeoutMs` for the process to go, then kills it. */
export async function stopProcess(pid: number, signal: NodeJS.Signals, timeoutMs = 30_000): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

export function which(command: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const found = result.stdout.trim();
  return result.status === 0 && found ? found : undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it resolves, or fails with the last error after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<void>, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await check();
      return;
    } catch (err) {
      last = err;
    }
    if (alive && !alive()) throw new Error(`${what} exited during start-up`);
    await sleep(250);
  }
  throw new Error(`${what} did not become ready within ${Math.round(timeoutMs / 1000)} s: ${(last as Error)?.message ?? last}`);
}

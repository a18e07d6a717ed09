import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import getPort from 'get-port';
import { PROJECT_ROOT, tsNodeArgs } from '../../scripts/project.ts';
import { waitUntil, which } from '../../scripts/stack/process.ts';

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs one of the platform's entry points as a real process, collecting its output. */
export function spawnEntry(entry: string, env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(process.execPath, tsNodeArgs(entry), { cwd: PROJECT_ROOT, env: { ...process.env, ...env } });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A private redis-server the test may kill, so that stopping it disturbs no other test. */
export async function startThrowawayRedis(): Promise<{ url: string; kill(): Promise<void> }> {
  const port = await getPort({ host: '127.0.0.1' });
  const dir = mkdtempSync(path.join(tmpdir(), 'pk-redis-'));
  const child = spawn(which('redis-server')!, ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', ''], {
    stdio: 'ignore',
  });
  const { Redis } = await import('ioredis');
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
  probe.on('error', () => undefined);
  await waitUntil('throwaway redis', async () => void (await probe.ping()), 10_000);
  probe.disconnect();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

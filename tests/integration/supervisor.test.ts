import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import getPort from 'get-port';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { isAlive, waitUntil } from '../../scripts/stack/process.ts';
import { stackDown } from '../../scripts/stack/stack.ts';
import { cliEnv } from '../helpers/cli.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';

/**
 * `pk-mcp start` as a user runs it, its processes killed as the OS would kill them: what crashed comes
 * back, what did not keeps serving, a crash loop stops everything with the error, Ctrl-C stops it all.
 * Stores are the shared local stack's (isolated by schema and queue prefix), except the Redis of the
 * store test, which this `start` starts itself in a data folder of its own: only that one is killed.
 */
interface Started {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function start(env: NodeJS.ProcessEnv, ...args: string[]): Started {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'scripts/pk-mcp.js'), 'start', ...args], { cwd: PROJECT_ROOT, env });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

const pidOf = (s: Started, name: string): number => {
  const all = [...s.output().matchAll(new RegExp(`supervisor: ${name} (?:running|restarted) \\(pid (\\d+)\\)`, 'g'))];
  const pid = Number(all.at(-1)?.[1]);
  if (!pid) throw new Error(`no pid of ${name} yet:\n${s.output()}`);
  return pid;
};

async function until(s: Started, what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  try {
    await waitUntil(what, async () => {
      if (!(await check())) throw new Error('not yet');
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- output ---\n${s.output()}`);
  }
}

const healthy = async (port: number) => {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
  } catch {
    return false;
  }
};

describe('pk-mcp start supervises what it started', () => {
  let t: TestStores;
  const running: Started[] = [];
  const dataDirs: string[] = [];

  const env = (overrides: NodeJS.ProcessEnv = {}) => ({ ...cliEnv(t.config), LOG_LEVEL: 'warn', LOG_PRETTY: 'false', SEMANTIC_MODEL: 'none', ...overrides });

  beforeAll(async () => {
    t = await openTestStores();
  });
  afterAll(async () => {
    for (const s of running) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await t?.cleanup();
    // A failed test may leave the store its `start` started: stop it by the folder's state file.
    for (const d of dataDirs) {
      await stackDown({ projectRoot: PROJECT_ROOT, env: { ...process.env, PK_DATA_DIR: d } }).catch(() => undefined);
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('restarts a killed worker and a killed API while the other keeps serving; Ctrl-C stops both', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const s = start(env({ API_PORT: String(port) }), '--no-stack');
    running.push(s);
    await until(s, 'the platform is running', () => s.output().includes('Personal Knowledge MCP is running'));
    await until(s, 'the workers are ready', () => /workers running \(pid/.test(s.output()));

    // The OS kills the worker (memory pressure): the API goes on answering, the worker comes back.
    const worker = pidOf(s, 'workers');
    process.kill(worker, 'SIGKILL');
    await until(s, 'the crash is reported', () => /supervisor: workers ended unexpectedly \(killed by SIGKILL\).*restarting it in 1\.0 s/.test(s.output()));
    expect(await healthy(port)).toBe(true);
    await until(s, 'the worker is back', () => /supervisor: workers restarted \(pid \d+\)/.test(s.output()));
    const newWorker = pidOf(s, 'workers');
    expect(newWorker).not.toBe(worker);
    expect(isAlive(newWorker)).toBe(true);

    // Now the API: it comes back on the same port, and the worker is not touched.
    const api = pidOf(s, 'api');
    process.kill(api, 'SIGKILL');
    await until(s, 'the API crash is reported', () => /supervisor: api ended unexpectedly \(killed by SIGKILL\)/.test(s.output()));
    await until(s, 'the API answers again', () => healthy(port));
    expect(pidOf(s, 'api')).not.toBe(api);
    expect(isAlive(newWorker)).toBe(true);
    expect(s.child.exitCode).toBeNull();

    // Ctrl-C: everything it started stops, and start exits 0.
    const [apiNow, workerNow] = [pidOf(s, 'api'), pidOf(s, 'workers')];
    s.child.kill('SIGINT');
    expect(await s.exited).toBe(0);
    expect(isAlive(apiNow)).toBe(false);
    expect(isAlive(workerNow)).toBe(false);
  });

  it('a crash loop stops everything with the last error and a non-zero exit', async () => {
    // The API's port is taken: the API fails at every start, the supervisor gives up after --max-crashes.
    const blocker: Server = createServer();
    const port = await getPort({ host: '127.0.0.1' });
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const s = start(env({ API_PORT: String(port) }), '--no-stack', '--max-crashes', '2', '--crash-window', '60');
      running.push(s);
      const code = await Promise.race([s.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 90_000))]);
      expect(code, s.output()).toBe(1);
      expect(s.output()).toMatch(/supervisor: api ended unexpectedly \(exit code 1\); last error: .*EADDRINUSE.*restarting it in 1\.0 s/);
      expect(s.output()).toMatch(/supervisor: stopping: api ended 2 times within 60 s \(last: exit code 1\); last error: .*EADDRINUSE.*; not restarting it/);
      // The worker process was stopped with it.
      const worker = Number([...s.output().matchAll(/workers running \(pid (\d+)\)/g)].at(-1)?.[1]);
      expect(worker).toBeGreaterThan(0);
      expect(isAlive(worker)).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('restarts a store the local stack started, on the same port and data; Ctrl-C stops it too', async () => {
    // Only Redis is started by this run (in a data folder of its own); the other stores are the shared stack's.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'pk-supervisor-'));
    dataDirs.push(dataDir);
    const [apiPort, redisPort] = [await getPort({ host: '127.0.0.1' }), await getPort({ host: '127.0.0.1' })];
    const childEnv = env({ API_PORT: String(apiPort), PK_DATA_DIR: dataDir, STACK_REDIS_PORT: String(redisPort) });
    delete (childEnv as NodeJS.ProcessEnv).REDIS_URL;
    const s = start(childEnv);
    running.push(s);
    await until(s, 'the platform is running', () => s.output().includes('Personal Knowledge MCP is running'), 90_000);
    const redisPid = pidOf(s, 'redis');
    const stack = JSON.parse(readFileSync(path.join(dataDir, 'stack.json'), 'utf8')) as { services: { redis: { pid: number; url: string } } };
    expect(stack.services.redis.pid).toBe(redisPid);
    expect(stack.services.redis.url).toBe(`redis://127.0.0.1:${redisPort}`);

    process.kill(redisPid, 'SIGKILL');
    await until(s, 'the store crash is reported', () => new RegExp(`supervisor: redis ended unexpectedly \\(pid ${redisPid} is gone\\)`).test(s.output()));
    await until(s, 'redis is back', () => /supervisor: redis restarted \(pid \d+\)/.test(s.output()));
    const newPid = pidOf(s, 'redis');
    expect(newPid).not.toBe(redisPid);
    const probe = new Redis(redisPort, '127.0.0.1', { maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    try {
      await until(s, 'redis answers on its port', async () => (await probe.ping().catch(() => '')) === 'PONG', 20_000);
    } finally {
      probe.disconnect();
    }
    // The API reconnects on its own: ready again with every store.
    await until(s, 'the API is ready again', async () => (await fetch(`http://127.0.0.1:${apiPort}/ready`).catch(() => undefined))?.status === 200);

    s.child.kill('SIGINT');
    expect(await s.exited).toBe(0);
    expect(isAlive(newPid)).toBe(false);
    expect(s.output()).toContain('stopped the local stores this run started: redis');
  });
});

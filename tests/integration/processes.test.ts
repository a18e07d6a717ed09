import { Queue } from 'bullmq';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../scripts/stack/process.ts';
import { openTestStores, type TestStores } from '../helpers/context.ts';
import { spawnEntry } from '../helpers/processes.ts';

/** The real entry points as separate processes: start, serve, shut down in order on a signal. */
describe('process entry points', () => {
  let t: TestStores;
  beforeAll(async () => {
    t = await openTestStores();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const env = () => ({
    QUEUE_PREFIX: t.config.queuePrefix,
    DATABASE_SCHEMA: t.config.databaseSchema,
    LOG_LEVEL: 'info',
    LOG_PRETTY: 'false',
  });

  it('the API serves /ready and stops cleanly on SIGTERM', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const api = spawnEntry('api/server.ts', { ...env(), API_PORT: String(port) });
    try {
      await waitUntil('api', async () => {
        const res = await fetch(`http://127.0.0.1:${port}/ready`);
        if (res.status !== 200) throw new Error(`status ${res.status}`);
      }, 30_000, () => api.child.exitCode === null);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${api.output()}`);
    }
    expect(await api.stop('SIGTERM')).toBe(0);
    expect(api.output()).toMatch(/shutting down/);
  });

  it('the worker process connects, idles, and stops cleanly on SIGINT', async () => {
    const workers = spawnEntry('workers/main.ts', env());
    await waitUntil('workers', async () => {
      if (!workers.output().includes('workers ready')) throw new Error('not ready');
    }, 30_000, () => workers.child.exitCode === null);
    const queue = new Queue('index', { connection: t.stores.redis.duplicate(), prefix: t.config.queuePrefix });
    try {
      expect(await queue.getWorkersCount()).toBeGreaterThan(0);
      expect(await workers.stop('SIGINT')).toBe(0);
      expect(await queue.getWorkersCount()).toBe(0);
    } finally {
      await queue.close();
    }
  });

  it('a bad environment fails fast listing every problem', async () => {
    const api = spawnEntry('api/server.ts', { API_PORT: 'eighty', LOG_LEVEL: 'loud' });
    expect(await new Promise((r) => api.child.on('exit', r))).toBe(1);
    expect(api.output()).toContain('API_PORT');
    expect(api.output()).toContain('LOG_LEVEL');
  });
});

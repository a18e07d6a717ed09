import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createPlatform } from '../../shared/platform.ts';
import { migrateDatabase } from '../../shared/db/migrate.ts';
import { silentLogger, testConfig } from '../helpers/context.ts';
import { openTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { startThrowawayRedis } from '../helpers/processes.ts';

describe('GET /health and /ready against the real stores', () => {
  let t: TestPlatform;
  let app: FastifyInstance;

  beforeAll(async () => {
    t = await openTestPlatform();
    app = await buildApp({ logger: silentLogger, platform: t.platform });
  });
  afterAll(async () => {
    await app?.close();
    await t?.cleanup();
  });

  it('/health answers without touching any store', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok' });
  });

  it('/ready reports every store ok with 200', async () => {
    const res = await app.inject({ method: 'GET', url: '/ready' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('ok');
    expect(Object.keys(body.stores).sort()).toEqual(['chroma', 'neo4j', 'postgres', 'redis']);
    for (const store of Object.values(body.stores)) expect(store).toMatchObject({ status: 'ok' });
  });

  it('unknown routes get the stable error shape', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'not_found', message: 'No route GET /nope' });
  });
});

describe('/ready with a store that goes down', () => {
  it('reports the stopped store with 503, keeps the others ok, and the API keeps serving', async () => {
    const redis = await startThrowawayRedis();
    const config = testConfig(undefined, { redisUrl: redis.url, readyCheckTimeoutMs: 1500 });
    await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, silentLogger);
    const platform = createPlatform(config, silentLogger);
    const app = await buildApp({ logger: silentLogger, platform });
    try {
      const before = await app.inject({ method: 'GET', url: '/ready' });
      expect(before.statusCode).toBe(200);

      await redis.kill();
      const after = await app.inject({ method: 'GET', url: '/ready' });
      expect(after.statusCode).toBe(503);
      const body = after.json();
      expect(body.status).toBe('unavailable');
      expect(body.stores.redis.status).toBe('error');
      expect(body.stores.redis.error).toMatch(/\S/);
      for (const name of ['postgres', 'chroma', 'neo4j']) expect(body.stores[name].status).toBe('ok');

      expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    } finally {
      await app.close();
      await platform.stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${config.databaseSchema} CASCADE`);
      await platform.close();
    }
  });

  it('reports a store that cannot be reached at all, bounded by the check timeout', async () => {
    const config = testConfig(undefined, { chromaUrl: 'http://127.0.0.1:9', readyCheckTimeoutMs: 1000 });
    await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, silentLogger);
    const platform = createPlatform(config, silentLogger);
    const app = await buildApp({ logger: silentLogger, platform });
    try {
      const started = Date.now();
      const res = await app.inject({ method: 'GET', url: '/ready' });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(res.statusCode).toBe(503);
      expect(res.json().stores.chroma.status).toBe('error');
      expect(res.json().stores.redis.status).toBe('ok');
    } finally {
      await app.close();
      await platform.stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${config.databaseSchema} CASCADE`);
      await platform.close();
    }
  });
});

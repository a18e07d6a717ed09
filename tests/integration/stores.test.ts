import { Queue, QueueEvents, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../shared/db/migrate.ts';
import { createPostgresConnection } from '../../shared/stores/postgres.connection.ts';
import { createRepositoryRepository } from '../../shared/stores/repository.repository.ts';
import { countQueries, waitUntil } from '../helpers/polling.ts';
import { openTestStores, silentLogger, type TestStores } from '../helpers/context.ts';

let t: TestStores;

beforeAll(async () => {
  t = await openTestStores();
});
afterAll(async () => {
  await t?.cleanup();
});

describe('redis', () => {
  it('round-trips a value', async () => {
    const key = `${t.config.queuePrefix}:probe`;
    await t.stores.redis.client.set(key, 'héllo', 'EX', 60);
    expect(await t.stores.redis.client.get(key)).toBe('héllo');
  });

  it('runs a BullMQ job end to end under the test queue prefix', async () => {
    const connection = t.stores.redis.duplicate();
    const queue = new Queue('roundtrip', { connection, prefix: t.config.queuePrefix });
    const events = new QueueEvents('roundtrip', { connection: t.stores.redis.duplicate(), prefix: t.config.queuePrefix });
    const worker = new Worker('roundtrip', async (job) => ({ doubled: (job.data as { n: number }).n * 2 }), {
      connection: t.stores.redis.duplicate(),
      prefix: t.config.queuePrefix,
    });
    try {
      await events.waitUntilReady();
      const job = await queue.add('double', { n: 21 });
      expect(await job.waitUntilFinished(events, 10_000)).toEqual({ doubled: 42 });
      const keys = await t.stores.redis.client.keys(`${t.config.queuePrefix}:roundtrip:*`);
      expect(keys.length).toBeGreaterThan(0);
    } finally {
      await worker.close();
      await events.close();
      await queue.close();
    }
  });
});

describe('postgres', () => {
  it('migrates into the test schema and is idempotent', async () => {
    const { rows } = await t.stores.postgres.pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`,
      [t.config.databaseSchema],
    );
    expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['repositories', 'pgmigrations']));
    expect(await migrateDatabase({ databaseUrl: t.config.databaseUrl, schema: t.config.databaseSchema }, silentLogger)).toEqual([]);
  });

  it('round-trips a row', async () => {
    await t.stores.postgres.pool.query(
      `INSERT INTO repositories (name, source_url, include_globs) VALUES ($1, $2, $3)`,
      ['demo', 'https://example.invalid/demo.git', ['src/**']],
    );
    const { rows } = await t.stores.postgres.pool.query(`SELECT name, source_url, include_globs FROM repositories WHERE name = 'demo'`);
    expect(rows).toEqual([{ name: 'demo', source_url: 'https://example.invalid/demo.git', include_globs: ['src/**'] }]);
  });

  it('rolls a failed transaction back completely', async () => {
    await expect(
      t.stores.postgres.transaction(async (client) => {
        await client.query(`INSERT INTO repositories (name, local_path) VALUES ('half', '/tmp/half')`);
        await client.query(`INSERT INTO repositories (name, local_path) VALUES ('half', '/tmp/again')`);
      }),
    ).rejects.toThrow(/duplicate key/);
    const { rowCount } = await t.stores.postgres.pool.query(`SELECT 1 FROM repositories WHERE name = 'half'`);
    expect(rowCount).toBe(0);
  });

  it('enforces the table constraints', async () => {
    await expect(
      t.stores.postgres.pool.query(`INSERT INTO repositories (name) VALUES ('neither-url-nor-path')`),
    ).rejects.toThrow(/check constraint/);
  });
});

describe('repository catalog cache', () => {
  it('serves a cached catalog and drops it when another connection commits a change', async () => {
    const repos = createRepositoryRepository(t.stores.postgres);
    const other = createPostgresConnection({ url: t.config.databaseUrl, schema: t.config.databaseSchema, max: 1 }, silentLogger);
    try {
      // Listening (and so caching) starts with the first read, on its own connection.
      await waitUntil(async () => {
        await repos.list();
        const q = countQueries(t.stores.postgres.pool);
        await repos.list();
        return q.stop() === 0;
      });
      await other.pool.query(`INSERT INTO repositories (name, local_path) VALUES ('catalog-probe', '/tmp/probe')`);
      await waitUntil(async () => (await repos.list()).some((r) => r.name === 'catalog-probe'));

      // Cached: a second read makes no query.
      await repos.list();
      const queries = countQueries(t.stores.postgres.pool);
      expect((await repos.list()).map((r) => r.name)).toContain('catalog-probe');
      expect(queries.stop()).toBe(0);

      await other.pool.query(`UPDATE repositories SET default_branch = 'trunk' WHERE name = 'catalog-probe'`);
      await waitUntil(async () => (await repos.list()).find((r) => r.name === 'catalog-probe')?.defaultBranch === 'trunk');
      // A change through this process is read back at once, without waiting for the notification.
      const probe = (await repos.findByName('catalog-probe'))!;
      await repos.delete(probe.id);
      expect((await repos.list()).some((r) => r.name === 'catalog-probe')).toBe(false);
    } finally {
      await other.close();
    }
  });
});

describe('chroma', () => {
  it('round-trips vectors with metadata and finds the nearest', async () => {
    const name = `${t.config.chromaCollectionPrefix}-probe`;
    const collection = await t.stores.chroma.client.getOrCreateCollection({
      name,
      embeddingFunction: null,
      configuration: { hnsw: { space: 'cosine' } },
    });
    await collection.upsert({
      ids: ['a', 'b'],
      embeddings: [
        [1, 0, 0],
        [0, 1, 0],
      ],
      metadatas: [{ path: 'src/a.ts' }, { path: 'src/b.ts' }],
      documents: ['alpha', 'beta'],
    });
    const result = await collection.query({ queryEmbeddings: [[0.9, 0.1, 0]], nResults: 1 });
    expect(result.ids[0]).toEqual(['a']);
    expect(result.metadatas[0]?.[0]).toEqual({ path: 'src/a.ts' });
    await collection.delete({ where: { path: 'src/a.ts' } });
    expect(await collection.count()).toBe(1);
  });

  it('answers concurrent queries coalesced into shared requests, each with its own nearest vectors', async () => {
    const name = `${t.config.chromaCollectionPrefix}-lanes`;
    const collection = await t.stores.chroma.client.getOrCreateCollection({ name, embeddingFunction: null, metadata: { 'hnsw:space': 'cosine' } });
    // 40 vectors, each nearest to itself: one-hot on its own axis plus a little of every other.
    const dims = 40;
    const vector = (i: number) => Array.from({ length: dims }, (_, d) => (d === i ? 1 : 0.01 * ((d * 7 + i) % 5)));
    const ids = Array.from({ length: dims }, (_, i) => `v${i}`);
    await t.stores.chroma.records.upsert(collection, { ids, embeddings: ids.map((_, i) => vector(i)), metadatas: ids.map((id) => ({ id })) });

    const posted: number[] = [];
    const spy = (await import('node:http')).default.ClientRequest.prototype;
    const end = spy.end;
    spy.end = function (this: { path?: string }, ...args: unknown[]) {
      if (this.path?.endsWith('/query')) posted.push(1);
      return (end as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof spy.end;
    try {
      const results = await Promise.all(ids.map((_, i) => t.stores.chroma.records.query(collection, vector(i), 3)));
      results.forEach((r, i) => {
        expect(r.ids[0]).toBe(`v${i}`);
        expect(r.ids).toHaveLength(3);
        expect(r.distances[0]).toBeLessThan(r.distances[1]!);
      });
      // The first query goes out alone, the other 39 wait for it and leave together (at most 32 a request).
      expect(posted.length).toBeGreaterThan(1);
      expect(posted.length).toBeLessThan(ids.length / 4);
    } finally {
      spy.end = end;
    }
    // A failing request fails each query waiting on it, with Chroma's reason.
    await t.stores.chroma.client.deleteCollection({ name });
    await expect(Promise.all([0, 1, 2].map((i) => t.stores.chroma.records.query(collection, vector(i), 3)))).rejects.toThrow(/chroma query failed \(4\d\d\)/);
  });
});

describe('neo4j', () => {
  it('round-trips nodes and relationships', async () => {
    const db = { database: t.config.neo4jDatabase };
    await t.stores.neo4j.driver.executeQuery(
      `CREATE (:PkProbe {testId: $id, name: 'caller'})-[:CALLS]->(:PkProbe {testId: $id, name: 'callee'})`,
      { id: t.id },
      db,
    );
    const { records } = await t.stores.neo4j.driver.executeQuery(
      `MATCH (a:PkProbe {testId: $id})-[:CALLS]->(b) RETURN a.name AS a, b.name AS b`,
      { id: t.id },
      db,
    );
    expect(records.map((r) => [r.get('a'), r.get('b')])).toEqual([['caller', 'callee']]);
  });

  it('rejects a wrong password', async () => {
    const { createNeo4jConnection } = await import('../../shared/stores/neo4j.connection.ts');
    const bad = createNeo4jConnection({
      uri: t.config.neo4jUri,
      user: t.config.neo4jUser,
      password: `${t.config.neo4jPassword}-wrong`,
      database: t.config.neo4jDatabase,
    });
    try {
      await expect(bad.ping()).rejects.toThrow(/auth/i);
    } finally {
      await bad.close();
    }
  });
});

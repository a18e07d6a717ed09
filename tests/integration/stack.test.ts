import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import getPort from 'get-port';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { isAlive, which } from '../../scripts/stack/process.ts';
import { SEGMENT_DIR } from '../../scripts/stack/services/chroma-segments.ts';
import { stackDown, stackStatus, stackUp } from '../../scripts/stack/stack.ts';
import { createChromaConnection } from '../../shared/stores/chroma.connection.ts';
import { testConfig } from '../helpers/context.ts';

/** Environment that points three stores at the running ones, so only Redis is local to the test. */
function onlyRedisEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const c = testConfig();
  return {
    PATH: process.env.PATH,
    PK_DATA_DIR: dataDir,
    DATABASE_URL: c.databaseUrl,
    CHROMA_URL: c.chromaUrl,
    NEO4J_URI: c.neo4jUri,
    NEO4J_PASSWORD: c.neo4jPassword,
    ...extra,
  };
}

describe('local stack', () => {
  it('`up` is idempotent: servers that answer are kept, not started again', async () => {
    const reports = await stackUp({ projectRoot: PROJECT_ROOT, log: () => undefined });
    expect(reports.map((r) => r.name)).toEqual(['redis', 'postgres', 'chroma', 'neo4j']);
    for (const r of reports) expect(['running', 'external']).toContain(r.state);
  });

  it('chooses a free port when the configured one is taken, and `down` stops only what it started', async () => {
    const taken = await getPort({ host: '127.0.0.1' });
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(taken, '127.0.0.1', resolve));
    const dataDir = mkdtempSync(path.join(tmpdir(), 'pk-stack-'));
    const env = onlyRedisEnv(dataDir, { STACK_REDIS_PORT: String(taken) });
    const logs: string[] = [];
    try {
      const up = await stackUp({ projectRoot: PROJECT_ROOT, env, log: (m) => logs.push(m) });
      const redis = up.find((r) => r.name === 'redis')!;
      expect(redis.state).toBe('started');
      expect(redis.url).not.toContain(`:${taken}`);
      expect(logs.join('\n')).toContain(`port ${taken} is already in use`);
      expect(up.filter((r) => r.name !== 'redis').every((r) => r.state === 'external')).toBe(true);

      const status = await stackStatus({ projectRoot: PROJECT_ROOT, env });
      expect(status.find((s) => s.name === 'redis')).toMatchObject({ status: 'ok', source: 'local stack' });

      const down = await stackDown({ projectRoot: PROJECT_ROOT, env });
      expect(down.map((r) => r.name)).toEqual(['redis']);
      expect(isAlive(redis.pid)).toBe(false);
      const after = await stackStatus({ projectRoot: PROJECT_ROOT, env });
      expect(after.find((s) => s.name === 'redis')?.status).toBe('not running');
    } finally {
      await stackDown({ projectRoot: PROJECT_ROOT, env });
      blocker.close();
    }
  });

  it.skipIf(!which('sqlite3'))('a restarted Chroma loses the folders of collections deleted before, and keeps the rest', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'pk-stack-'));
    const c = testConfig();
    // Chroma local to the test; the other stores are the running ones.
    const env = { ...onlyRedisEnv(dataDir), CHROMA_URL: '', REDIS_URL: c.redisUrl, STACK_CHROMA_PORT: String(await getPort({ host: '127.0.0.1' })) };
    const segmentDirs = () => readdirSync(path.join(dataDir, 'chroma')).filter((n) => SEGMENT_DIR.test(n)).sort();
    const vectors = (n: number, seed: number) => Array.from({ length: n }, (_, i) => [Math.sin(i + seed), Math.cos(i * 0.5 + seed), ((i * 7 + seed) % 13) / 13]);
    const logs: string[] = [];
    try {
      let up = await stackUp({ projectRoot: PROJECT_ROOT, env, log: (m) => logs.push(m) });
      let url = up.find((r) => r.name === 'chroma')!.url!;
      let chroma = createChromaConnection({ url, collectionPrefix: 'gc' });
      const before = segmentDirs();
      const kept = await chroma.client.createCollection({ name: 'gc-kept', embeddingFunction: null });
      const gone = await chroma.client.createCollection({ name: 'gc-gone', embeddingFunction: null });
      // More vectors than Chroma's sync threshold (1,000), so each collection's HNSW index is written to its folder.
      for (const [col, seed] of [[kept, 1], [gone, 2]] as const) {
        const embeddings = vectors(1200, seed);
        await chroma.records.upsert(col, { ids: embeddings.map((_, i) => `v${i}`), embeddings, metadatas: embeddings.map((_, i) => ({ i })) });
      }
      await expect.poll(() => segmentDirs().length - before.length, { timeout: 20_000 }).toBe(2);
      const withBoth = segmentDirs();
      await chroma.client.deleteCollection({ name: 'gc-gone' });
      expect(segmentDirs()).toEqual(withBoth); // Chroma itself leaves the folder behind

      await stackDown({ projectRoot: PROJECT_ROOT, env });
      up = await stackUp({ projectRoot: PROJECT_ROOT, env, log: (m) => logs.push(m) });
      expect(logs.join('\n')).toMatch(/chroma: removed 1 folder\(s\) of deleted collections/);
      expect(segmentDirs()).toHaveLength(withBoth.length - 1);
      url = up.find((r) => r.name === 'chroma')!.url!;
      chroma = createChromaConnection({ url, collectionPrefix: 'gc' });
      const again = await chroma.client.getCollection({ name: 'gc-kept', embeddingFunction: null } as never);
      const hit = await chroma.records.query(again, vectors(1200, 1)[42]!, 1);
      expect(hit.ids).toEqual(['v42']);
    } finally {
      await stackDown({ projectRoot: PROJECT_ROOT, env });
    }
  });

  it('a missing prerequisite gives one clear message and exit code 2', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'pk-stack-'));
    const env = onlyRedisEnv(dataDir, { PATH: '/nonexistent', STACK_AUTO_INSTALL: 'false' });
    const run = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'scripts/pk-mcp.js'), 'stack', 'up'], {
      env,
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/redis-server is not installed: install it .* or set REDIS_URL/);
  });
});

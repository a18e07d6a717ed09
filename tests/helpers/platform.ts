import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Queue } from 'bullmq';
import type { Config } from '../../shared/config/config.ts';
import { migrateDatabase } from '../../shared/db/migrate.ts';
import type { EmbeddingProvider } from '../../shared/embeddings/embedding-provider.ts';
import { createChunker } from '../../shared/indexing/chunker.ts';
import { createGraphExtractor } from '../../shared/graph/extract.ts';
import { createRepositoryService, type RepositoryService } from '../../shared/indexing/repository.service.ts';
import type { Logger } from '../../shared/logger.ts';
import { createPlatform, type Platform, type SemanticTier } from '../../shared/platform.ts';
import { createSearchService, type SearchService } from '../../shared/search/hybrid-search.ts';
import { startWorkers } from '../../workers/workers.ts';
import { sleep } from '../../scripts/stack/process.ts';
import type { QueueName } from '../../shared/queue/registry.ts';
import { silentLogger, testConfig, uniqueId } from './context.ts';

export interface TestPlatform {
  id: string;
  config: Config;
  platform: Platform;
  repos: RepositoryService;
  search: SearchService;
  /** Starts the real BullMQ workers in this process, of every queue or of those given (stop them with `stopWorkers`). */
  startWorkers(queues?: readonly QueueName[]): Promise<void>;
  stopWorkers(): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * The whole platform against the real stores, isolated for one test file:
 * its own queue prefix, Postgres schema, Chroma collections and workspace.
 */
export async function openTestPlatform(
  overrides: Partial<Config> = {},
  options: { embeddings?: EmbeddingProvider; semanticEmbeddings?: SemanticTier['embeddings']; logger?: Logger } = {},
): Promise<TestPlatform> {
  const logger = options.logger ?? silentLogger;
  const id = uniqueId();
  const workspaceDir = mkdtempSync(path.join(tmpdir(), 'pk-ws-'));
  const config = testConfig(id, { workspaceDir, ...overrides });
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, silentLogger);
  const platform = createPlatform(config, logger, options);
  await platform.graph.ensureSchema();
  const chunker = await createChunker({ maxChunkChars: config.index.maxChunkChars });
  let workers: Array<{ close(): Promise<void> }> = [];
  return {
    id,
    config,
    platform,
    repos: createRepositoryService(platform),
    search: createSearchService(platform),
    async startWorkers(queues?: readonly QueueName[]) {
      if (workers.length > 0 && !queues) return;
      workers.push(startWorkers({ ...platform, logger, chunker, graphExtractor: createGraphExtractor(), ...(queues ? { queuesToRun: queues } : {}) }));
    },
    async stopWorkers() {
      await Promise.all(workers.map((w) => w.close()));
      workers = [];
    },
    async cleanup() {
      await Promise.all(workers.map((w) => w.close()));
      const { stores } = platform;
      const repoIds = await stores.postgres.pool.query<{ id: string }>(`SELECT id FROM ${config.databaseSchema}.repositories`).catch(() => ({ rows: [] }));
      for (const r of repoIds.rows) await platform.graph.deleteRepository(Number(r.id)).catch(() => undefined);
      await stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${config.databaseSchema} CASCADE`).catch(() => undefined);
      const collections = await stores.chroma.client.listCollections().catch(() => []);
      await Promise.all(
        collections.filter((c) => c.name.startsWith(config.chromaCollectionPrefix)).map((c) => stores.chroma.client.deleteCollection({ name: c.name })),
      );
      await platform.queues.close();
      const keys = await stores.redis.client.keys(`${config.queuePrefix}:*`);
      if (keys.length > 0) await stores.redis.client.del(...keys);
      await platform.close();
      rmSync(workspaceDir, { recursive: true, force: true });
    },
  };
}

/** Waits until a job completes (returning its value) or fails (throwing its reason). */
export async function waitForJob(queue: Queue, id: string, timeoutMs = 60_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const job = await queue.getJob(id);
    if (job) {
      const state = await job.getState();
      // The job was read before its state: read it again so a job that just finished has its return
      // value or its failure reason (read early, a just-failed job's reason is still undefined).
      if (state === 'completed') return (await queue.getJob(id))!.returnvalue;
      if (state === 'failed') {
        const failed = (await queue.getJob(id)) ?? job;
        throw new Error(failed.failedReason + (process.env.DEBUG_JOBS ? `\n${(failed.stacktrace ?? []).join('\n')}` : ''));
      }
    }
    await sleep(100);
  }
  throw new Error(`job ${id} did not finish within ${timeoutMs} ms`);
}

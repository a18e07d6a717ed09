/**
 * One isolated platform for a benchmark: its own queue prefix, Postgres
 * schema, Chroma collection prefix and workspace on the local stack's real
 * stores, the same names handed to any process it spawns, and a cleanup that
 * removes every trace (Neo4j nodes first, while the schema still says which
 * repositories were there).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job, Queue } from 'bullmq';
import { loadConfig, type Config } from '../../shared/config/config.ts';
import { migrateDatabase } from '../../shared/db/migrate.ts';
import type { GraphExtractor } from '../../shared/graph/extract.ts';
import { createChunker } from '../../shared/indexing/chunker.ts';
import { createRepositoryService, type RepositoryService } from '../../shared/indexing/repository.service.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { createPlatform, type Platform } from '../../shared/platform.ts';
import type { GraphStore } from '../../shared/stores/graph.store.ts';
import { startWorkers } from '../../workers/workers.ts';
import { PROJECT_ROOT } from '../../scripts/project.ts';
import { spawnEntry, type Spawned } from '../../tests/helpers/processes.ts';
import { sleep } from './common.ts';

export interface IsolatedPlatform {
  id: string;
  /** The isolation as environment variables, for child processes (workers, stdio MCP servers). */
  env: Record<string, string>;
  config: Config;
  platform: Platform;
  repos: RepositoryService;
  /** The real worker process (`workers/main.ts`), on the same isolated names; resolves once it is ready. */
  spawnWorkers(): Promise<Spawned>;
  /**
   * The real BullMQ workers in this process. `graph` replaces the platform's
   * graph store (an instrumented one); `graphExtractor` decides whether the
   * runs extract a graph at all.
   */
  startInProcessWorkers(options: { graphExtractor: GraphExtractor; graph?: GraphStore; logger?: Logger }): Promise<{ close(): Promise<void> }>;
  cleanup(): Promise<string[]>;
}

export async function openIsolatedPlatform(name: string, extraEnv: Record<string, string> = {}): Promise<IsolatedPlatform> {
  const id = randomBytes(4).toString('hex');
  const workspaceDir = mkdtempSync(path.join(os.tmpdir(), `pk-${name}-ws-`));
  const env: Record<string, string> = {
    PK_DATA_DIR: path.join(PROJECT_ROOT, '.data'),
    QUEUE_PREFIX: `${name}-${id}`,
    DATABASE_SCHEMA: `${name.replaceAll('-', '_')}_${id}`,
    CHROMA_COLLECTION_PREFIX: `${name}-${id}`,
    WORKSPACE_DIR: workspaceDir,
    EMBEDDING_PROVIDER: 'local',
    // The model tier would start embedding after each publish and share the cores with what these benchmarks
    // time; the retrieval benchmark measures it (bench/retrieval.bench.ts).
    SEMANTIC_MODEL: 'none',
    ...extraEnv,
  };
  const config = loadConfig({ ...process.env, ...env, LOG_LEVEL: 'silent' });
  const logger = createLogger({ logLevel: 'silent', logPretty: false });
  const platform = createPlatform(config, logger);
  await Promise.all([platform.stores.redis.ping(), platform.stores.postgres.ping(), platform.stores.chroma.ping(), platform.stores.neo4j.ping()]).catch(async (err) => {
    await platform.close().catch(() => undefined);
    rmSync(workspaceDir, { recursive: true, force: true });
    throw new Error(`the local stack does not answer (${err instanceof Error ? err.message : err}): run \`node scripts/pk-mcp.js stack up\``);
  });

  const spawned: Spawned[] = [];
  const inProcess: Array<{ close(): Promise<void> }> = [];

  const isolated: IsolatedPlatform = {
    id,
    env,
    config,
    platform,
    repos: createRepositoryService(platform),

    async spawnWorkers() {
      const worker = spawnEntry('workers/main.ts', { ...env, LOG_LEVEL: 'info', LOG_PRETTY: 'false' });
      spawned.push(worker);
      await waitForOutput(worker, '"msg":"workers ready"');
      return worker;
    },

    async startInProcessWorkers(options) {
      const chunker = await createChunker({ maxChunkChars: config.index.maxChunkChars });
      const workers = startWorkers({
        ...platform,
        ...(options.graph ? { graph: options.graph } : {}),
        logger: options.logger ?? createLogger({ logLevel: 'warn', logPretty: false }, { name: 'bench-workers', destination: 2 }),
        chunker,
        graphExtractor: options.graphExtractor,
      });
      const handle = {
        async close() {
          await workers.close();
          chunker.close();
          inProcess.splice(inProcess.indexOf(handle), 1);
        },
      };
      inProcess.push(handle);
      return handle;
    },

    /** Each step runs even if another fails; returns what failed. */
    async cleanup() {
      const problems: string[] = [];
      const step = async (what: string, fn: () => Promise<unknown>) => {
        await fn().catch((err) => problems.push(`${what}: ${err instanceof Error ? err.message : err}`));
      };
      for (const w of [...inProcess]) await step('in-process workers', () => w.close());
      for (const w of spawned) await step('worker process', () => w.stop('SIGTERM'));
      const { stores } = platform;
      await step('neo4j graph', async () => {
        const { rows } = await stores.postgres.pool.query<{ id: string }>(`SELECT id FROM ${config.databaseSchema}.repositories`);
        for (const r of rows) await platform.graph.deleteRepository(Number(r.id));
      });
      await step('postgres schema', () => stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${config.databaseSchema} CASCADE`));
      await step('chroma collections', async () => {
        // Paged: one collection per repository branch, and the shared Chroma holds every test's.
        const names: string[] = [];
        for (let offset = 0; ; offset += 100) {
          const page = await stores.chroma.client.listCollections({ limit: 100, offset });
          names.push(...page.map((c) => c.name).filter((n) => n.startsWith(config.chromaCollectionPrefix)));
          if (page.length < 100) break;
        }
        for (const n of names) await stores.chroma.client.deleteCollection({ name: n });
      });
      await step('redis keys', async () => {
        await platform.queues.close();
        const keys = await stores.redis.client.keys(`${config.queuePrefix}:*`);
        if (keys.length > 0) await stores.redis.client.del(...keys);
      });
      await step('stores', () => platform.close());
      rmSync(workspaceDir, { recursive: true, force: true });
      return problems;
    },
  };

  try {
    await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
    await platform.graph.ensureSchema();
  } catch (err) {
    // A half-made schema is still a trace of this run.
    await isolated.cleanup();
    throw err;
  }
  return isolated;
}

export async function waitForOutput(child: Spawned, marker: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.output().includes(marker)) return;
    if (child.child.exitCode !== null) throw new Error(`process exited (${child.child.exitCode}):\n${child.output().slice(-4000)}`);
    await sleep(100);
  }
  throw new Error(`process not ready after ${timeoutMs} ms:\n${child.output().slice(-4000)}`);
}

/**
 * Waits until an index job completes and returns it (its `processedOn` is then
 * the publish step's start); throws if it fails. `onPoll` sees the job at each
 * poll until then (its progress and state say which phase it is in).
 */
export async function waitForIndexJob(
  queue: Queue,
  jobId: string,
  timeoutMs: number,
  intervalMs = 100,
  onPoll?: (job: Job, state: Awaited<ReturnType<Job['getState']>>) => void,
): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const job = await queue.getJob(jobId);
    if (job) {
      const state = await job.getState();
      // Read again: the first read may predate the failure (no reason yet) or the completion (no return value).
      if (state === 'failed') throw new Error(`index job ${jobId} failed: ${((await queue.getJob(jobId)) ?? job).failedReason}`);
      if (state === 'completed') return (await queue.getJob(jobId))!;
      onPoll?.(job, state);
    }
    await sleep(intervalMs);
  }
  throw new Error(`index job ${jobId} did not finish within ${timeoutMs} ms`);
}

export interface RunChildren {
  jobs: number;
  failedAttempts: number;
  /** Sum of each job's own processedOn → finishedOn. */
  busyMs: number;
  /** First processedOn to last finishedOn. */
  spanMs: number;
  firstStartedAt: number | null;
  lastFinishedAt: number | null;
  /** Sum of every numeric field of the return values. */
  totals: Record<string, number>;
}

/** The finished children of one run on one queue, found by their `runId`. */
export async function jobsOfRun(queue: Queue, runId: string): Promise<Job[]> {
  return (await queue.getJobs(['completed', 'failed'], 0, -1)).filter((j) => (j?.data as { runId?: string } | undefined)?.runId === runId);
}

/** The children of one run on one queue, found by their `runId`, from BullMQ's own timestamps. */
export async function childrenOfRun(queue: Queue, runId: string): Promise<RunChildren> {
  return summarizeJobs(await jobsOfRun(queue, runId));
}

/** What a run's children did, from BullMQ's own timestamps and their return values. */
export function summarizeJobs(jobs: Job[]): RunChildren {
  let busyMs = 0;
  let first = Infinity;
  let last = -Infinity;
  let failedAttempts = 0;
  const totals: Record<string, number> = {};
  for (const j of jobs) {
    if (j.failedReason) failedAttempts++;
    if (j.processedOn && j.finishedOn) {
      busyMs += j.finishedOn - j.processedOn;
      first = Math.min(first, j.processedOn);
      last = Math.max(last, j.finishedOn);
    }
    for (const [k, v] of Object.entries((j.returnvalue ?? {}) as Record<string, unknown>)) {
      if (typeof v === 'number') totals[k] = (totals[k] ?? 0) + v;
    }
  }
  return {
    jobs: jobs.length,
    failedAttempts,
    busyMs,
    spanMs: Number.isFinite(first) ? last - first : 0,
    firstStartedAt: Number.isFinite(first) ? first : null,
    lastFinishedAt: Number.isFinite(last) ? last : null,
    totals,
  };
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../scripts/stack/process.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai-server.ts';
import { createGitFixture, type GitFixture } from '../helpers/git-fixture.ts';
import { openTestPlatform, waitForJob, type TestPlatform } from '../helpers/platform.ts';
import { spawnEntry, type Spawned } from '../helpers/processes.ts';

/**
 * A worker killed with SIGKILL in the middle of a run loses nothing: its jobs
 * stall, another worker takes them over, and the stores end consistent (every
 * live chunk has exactly one vector, no orphans, no staging left behind).
 */
describe('kill -9 of a worker in the middle of an index run', () => {
  let t: TestPlatform;
  let repo: GitFixture;
  let openai: FakeOpenAI;
  const spawned: Spawned[] = [];

  beforeAll(async () => {
    // A slow embeddings server keeps the run in flight long enough to kill it half way.
    openai = await startFakeOpenAI({ apiKey: 'sk-test', delayMs: 150, defaultDimensions: 64 });
    t = await openTestPlatform({
      embedding: {
        provider: 'openai',
        openaiApiKey: 'sk-test',
        openaiBaseUrl: openai.url,
        model: 'text-embedding-3-small',
        dimensions: 64,
        concurrency: 2,
        maxRetries: 2,
        localDimensions: 384,
      },
      index: { maxFileBytes: 1024 * 1024, batchChunks: 10, maxChunkChars: 1500 },
    });
    repo = createGitFixture();
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) {
      files[`src/module${i}.ts`] = Array.from(
        { length: 4 },
        (_, j) => `export function handler${i}x${j}(input: number): number {\n  const scaled = input * ${i + 1};\n  return scaled + ${j};\n}\n`,
      ).join('\n');
    }
    repo.write(files);
    repo.commit('sixty modules');
  });

  afterAll(async () => {
    await Promise.all(spawned.map((s) => s.stop('SIGKILL')));
    await t?.cleanup();
    await openai?.close();
    repo?.cleanup();
  });

  function startWorkerProcess(): Spawned {
    const worker = spawnEntry('workers/main.ts', {
      QUEUE_PREFIX: t.config.queuePrefix,
      DATABASE_SCHEMA: t.config.databaseSchema,
      CHROMA_COLLECTION_PREFIX: t.config.chromaCollectionPrefix,
      WORKSPACE_DIR: t.config.workspaceDir,
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_CONCURRENCY: '2',
      INDEX_BATCH_CHUNKS: '10',
      EMBEDDING_PROVIDER: 'openai',
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: openai.url,
      EMBEDDING_DIMENSIONS: '64',
      EMBEDDING_CONCURRENCY: '2',
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
    });
    spawned.push(worker);
    return worker;
  }

  it('the run resumes on another worker and the stores end consistent', async () => {
    const repository = await t.repos.add({ source: repo.dir, name: 'crashy' });
    const first = startWorkerProcess();
    const { jobId } = await t.repos.requestIndex('crashy');
    const queue = t.platform.queues.queues.index;

    // Wait until some embedding batches are done and some are not, then kill the worker outright.
    let doneAtKill = 0;
    let totalAtKill = 0;
    await waitUntil('half-way point', async () => {
      if (first.child.exitCode !== null) throw new Error(`worker exited: ${first.output()}`);
      const job = await queue.getJob(jobId);
      if (!job || (await job.getState()) !== 'waiting-children') throw new Error('not embedding yet');
      const counts = await job.getDependenciesCount({ processed: true, unprocessed: true });
      doneAtKill = counts.processed ?? 0;
      totalAtKill = doneAtKill + (counts.unprocessed ?? 0);
      if (doneAtKill < 1) throw new Error('no batch done yet');
    }, 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}\nworker output:\n${first.output()}`);
    });
    first.child.kill('SIGKILL');
    await first.stop('SIGKILL');
    expect(doneAtKill).toBeLessThan(totalAtKill);

    const branchAtKill = await t.platform.repositories.getBranch(repository.id, 'main');
    expect(branchAtKill?.indexedCommit).toBeNull(); // nothing published from a half-done run

    startWorkerProcess();
    const result = (await waitForJob(queue, jobId, 90_000)) as { commit: string };
    expect(result.commit).toBe(repo.head());

    const branch = await t.platform.repositories.getBranch(repository.id, 'main');
    expect(branch).toMatchObject({ status: 'ready', indexedCommit: repo.head(), fileCount: 60 });
    const live = (await t.platform.chunks.liveChunkIds(repository.id)).sort();
    const vectors = (await t.platform.vectors.ids({ repositoryBranches: [{ repositoryId: repository.id, branch: 'main' }] })).sort();
    expect(live.length).toBe(branch!.chunkCount);
    expect(vectors).toEqual(live);
    const staging = await t.platform.stores.postgres.pool.query('SELECT count(*)::int AS n FROM chunk_staging');
    expect(staging.rows[0].n).toBe(0);
    const perFile = await t.platform.stores.postgres.pool.query(
      `SELECT count(*)::int AS n FROM files f WHERE f.chunk_count <> (SELECT count(*) FROM chunks c WHERE c.repository_id = f.repository_id AND c.branch = f.branch AND c.path = f.path)`,
    );
    expect(perFile.rows[0].n).toBe(0);
  }, 240_000);
});

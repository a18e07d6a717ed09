import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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
  const fixtures: GitFixture[] = [];
  let openai: FakeOpenAI;
  const spawned: Spawned[] = [];

  beforeAll(async () => {
    // A slow embeddings server keeps the run in flight long enough to kill it half way.
    openai = await startFakeOpenAI({ apiKey: 'sk-test', delayMs: 250, defaultDimensions: 64 });
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
  });

  /** `count` modules of four functions; `seed` makes every text new, so nothing comes from the embedding cache of an earlier case. */
  function modules(count: number, seed: number): GitFixture {
    const fixture = createGitFixture();
    const files: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      files[`src/module${i}.ts`] = Array.from(
        { length: 4 },
        // Each handler but the first calls the one before it: three calls a module for the graph to resolve.
        (_, j) =>
          `export function handler${i}x${j}(input: number): number {\n  const scaled = input * ${i + 1 + seed * 1000};\n  return ${j > 0 ? `handler${i}x${j - 1}(scaled)` : 'scaled'} + ${j};\n}\n`,
      ).join('\n');
    }
    fixture.write(files);
    fixture.commit(`${count} modules`);
    fixtures.push(fixture);
    return fixture;
  }

  // Each case starts from no worker at all: one left running would take the next run's jobs.
  afterEach(async () => {
    await Promise.all(spawned.splice(0).map((s) => s.stop('SIGKILL')));
  });

  afterAll(async () => {
    await t?.cleanup();
    await openai?.close();
    for (const f of fixtures) f.cleanup();
  });

  function startWorkerProcess(batchChunks: number): Spawned {
    const worker = spawnEntry('workers/main.ts', {
      QUEUE_PREFIX: t.config.queuePrefix,
      DATABASE_SCHEMA: t.config.databaseSchema,
      CHROMA_COLLECTION_PREFIX: t.config.chromaCollectionPrefix,
      WORKSPACE_DIR: t.config.workspaceDir,
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_CONCURRENCY: '2',
      INDEX_BATCH_CHUNKS: String(batchChunks),
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

  // Two places to cut a run: while it still chunks and stages (a retry prepares again, as batch jobs of the
  // first attempt run again beside it), and while it only waits for its batches (a retry goes on to publish).
  it.each([
    { during: 'preparing', name: 'crashy-prepare', state: 'active', files: 400, batchChunks: 100, seed: 1 },
    { during: 'waiting for its batches', name: 'crashy-wait', state: 'waiting-children', files: 60, batchChunks: 10, seed: 2 },
  ])('killed while $during, the run resumes on another worker and the stores end consistent', async ({ name, state: cutState, files, batchChunks, seed }) => {
    const repo = modules(files, seed);
    const repository = await t.repos.add({ source: repo.dir, name });
    const first = startWorkerProcess(batchChunks);
    const { jobId } = await t.repos.requestIndex(name);
    const queue = t.platform.queues.queues.index;

    // Wait for the point to cut at, then kill the worker outright.
    let doneAtKill = 0;
    let totalAtKill = 0;
    await waitUntil('half-way point', async () => {
      if (first.child.exitCode !== null) throw new Error(`worker exited: ${first.output()}`);
      const job = await queue.getJob(jobId);
      const state = job ? await job.getState() : 'missing';
      if (!job || state !== cutState) throw new Error(`run not ${cutState} (${state})`);
      const counts = await job.getDependenciesCount({ processed: true, unprocessed: true });
      doneAtKill = counts.processed ?? 0;
      totalAtKill = doneAtKill + (counts.unprocessed ?? 0);
      if (totalAtKill < 1) throw new Error('no batch added yet');
      // While waiting, the run is cut with some batches done and some not; while preparing, as soon as it has any.
      if (cutState === 'waiting-children' && (doneAtKill < 1 || doneAtKill >= totalAtKill)) throw new Error(`${doneAtKill} of ${totalAtKill} batches done`);
    }, 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}\nworker output:\n${first.output()}`);
    });
    first.child.kill('SIGKILL');
    await first.stop('SIGKILL');
    if (cutState === 'waiting-children') expect(doneAtKill).toBeLessThan(totalAtKill);

    const branchAtKill = await t.platform.repositories.getBranch(repository.id, 'main');
    expect(branchAtKill?.indexedCommit).toBeNull(); // nothing published from a half-done run

    startWorkerProcess(batchChunks);
    const result = (await waitForJob(queue, jobId, 90_000)) as { commit: string };
    expect(result.commit).toBe(repo.head());

    const branch = await t.platform.repositories.getBranch(repository.id, 'main');
    expect(branch).toMatchObject({ status: 'ready', indexedCommit: repo.head(), fileCount: files });
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
    // The graph too: every file's symbols once, every call resolved once, whichever step the kill cut short.
    const graph = await t.platform.graph.read<{ symbols: number; calls: number }>(
      `MATCH (s:Symbol {repoId: $repoId, branch: 'main'}) OPTIONAL MATCH (s)-[c:CALLS]->() RETURN count(DISTINCT s) AS symbols, count(c) AS calls`,
      { repoId: t.platform.graph.repoKey(repository.id) },
    );
    expect(graph.map((g) => ({ symbols: Number(g.symbols), calls: Number(g.calls) }))).toEqual([{ symbols: files * 4, calls: files * 3 }]);
  }, 240_000);
});

import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, WaitingChildrenError, type Job, type Queue } from 'bullmq';
import { errorMessage } from '../../shared/errors.ts';
import { IndexInputError, prepareRun, type IndexProgress } from '../../shared/indexing/index-run.ts';
import { JOBS } from '../../shared/queue/jobs.ts';
import type { JobData } from '../../shared/queue/queues.ts';
import type { WorkerDeps } from '../handlers.ts';

type IndexData = JobData<'index-repository'>;

/** How often a run looks whether its graph batches are done, and how long it waits for them before publishing. */
const GRAPH_POLL_MS = 100;
const GRAPH_WAIT_MS = 10 * 60_000;

export interface IndexResult {
  repositoryId: number;
  branch: string;
  commit: string;
  upToDate: boolean;
  mode?: 'diff' | 'reconcile';
  filesChanged?: number;
  filesDeleted?: number;
  chunks?: number;
  batches?: number;
}

/**
 * Reindexes one branch in two steps of the same job (BullMQ's step pattern):
 * `prepare` stages the changes and adds one embed batch per slice as children,
 * then the job waits for them; `publish` runs when every child is done and
 * moves the branch to the new commit in one transaction. Readers never see a
 * half-indexed commit, and a failed run leaves the last good index in place.
 */
export function createIndexRepositoryHandler(deps: WorkerDeps & { embedQueue: Queue; graphQueue: Queue }) {
  const { stores, logger, repositories, chunks } = deps;

  async function markFailed(job: Job<IndexData>, message: string): Promise<void> {
    await repositories.setBranchStatus(job.data.repositoryId, job.data.branch, { status: 'failed', lastError: message, lastJobId: job.id ?? null });
    // Vectors the run already wrote are not live in Postgres (so invisible); remove them with the staging rows.
    const staged = await stores.postgres.pool.query<{ id: string }>(
      `SELECT s.id FROM chunk_staging s WHERE s.run_id = $1 AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = s.id)`,
      [job.id],
    );
    await deps.vectors.delete({ repositoryId: job.data.repositoryId, branch: job.data.branch }, staged.rows.map((r) => r.id)).catch((err) => logger.warn({ err: errorMessage(err) }, 'could not remove vectors of a failed run'));
    await chunks.clearStaging(job.id!);
  }

  const took = (started: number) => Math.round(performance.now() - started);

  /**
   * Waits while a graph batch of this run is still to run (its embed batches may go on). False when one
   * failed (publishing fails the run) or the wait outlasts GRAPH_WAIT_MS (publishing resolves instead).
   */
  async function graphBatchesDone(job: Job<IndexData>): Promise<boolean> {
    const mine = `:${job.id}-graph-`;
    const deadline = performance.now() + GRAPH_WAIT_MS;
    // From 10 ms up to GRAPH_POLL_MS: a one-file change's single graph batch is done in a few dozen.
    for (let pause = 10; ; pause = Math.min(pause * 2, GRAPH_POLL_MS)) {
      if (Object.keys(await job.getIgnoredChildrenFailures()).some((k) => k.includes(mine))) return false;
      if (!(await hasUnprocessed(job, mine))) return true;
      if (performance.now() > deadline) return false;
      await sleep(pause);
    }
  }

  /** Whether a child whose key holds `mine` is still to run: the set is read in pages (a cursor, as SSCAN). */
  async function hasUnprocessed(job: Job<IndexData>, mine: string): Promise<boolean> {
    let cursor = 0;
    do {
      const page = await job.getDependencies({ unprocessed: { cursor, count: 1000 } });
      if ((page.unprocessed ?? []).some((k) => k.includes(mine))) return true;
      cursor = page.nextUnprocessedCursor ?? 0;
    } while (cursor !== 0);
    return false;
  }

  /**
   * Re-resolves calls and inheritance for every file the run touched and every file importing one of them
   * (their calls may point into them), after removing the files that went away. The scope is kept in the
   * job: publishing clears the staging it comes from, and a retry of the publish step needs it.
   */
  async function resolveGraph(job: Job<IndexData>, options: { recompute?: boolean } = {}) {
    const data = job.data;
    const scope = { repoId: data.repositoryId, branch: data.branch };
    const started = performance.now();
    let resolveScope = options.recompute ? undefined : data.graphScope;
    if (!resolveScope) {
      const { written, removed } = await chunks.stagedGraphChanges(job.id!);
      // A branch never published before has no graph of its own to keep consistent: nothing outside this
      // run imports its files, and no placeholder predates it (each import this run wrote still holds its own).
      const firstIndex = !(await repositories.getBranch(data.repositoryId, data.branch))?.indexedCommit;
      const dependents = firstIndex ? [] : await deps.graph.dependentsOf(scope, [...written, ...removed]);
      if (!firstIndex || removed.length > 0) await deps.graph.deleteFiles(scope, removed);
      const gone = new Set(removed);
      resolveScope = [...new Set([...written, ...dependents])].filter((p) => !gone.has(p));
      await job.updateData({ ...job.data, graphScope: resolveScope });
    }
    const scopeMs = took(started);
    const { edges } = await deps.graph.resolveEdges(scope, resolveScope);
    return { files: resolveScope.length, edges, scopeMs, resolveMs: took(started) - scopeMs };
  }

  return async function indexRepository(job: Job<IndexData>, token?: string): Promise<IndexResult> {
    const data = JOBS['index-repository'].schema.parse(job.data);
    try {
      if (data.step !== 'publish') {
        // A prepare that runs again re-adds its graph batches, and a batch that runs again replaces its
        // files' symbols with their call edges: calls resolved by an earlier attempt count for nothing.
        if (data.graphResolved !== undefined || data.graphScope !== undefined) {
          delete data.graphResolved;
          delete data.graphScope;
          await job.updateData(data);
        }
        const repository = await repositories.findById(data.repositoryId);
        if (!repository) throw new UnrecoverableError(`repository ${data.repositoryId} no longer exists`);
        const branch = await repositories.ensureBranch(repository.id, data.branch);
        await repositories.setBranchStatus(repository.id, data.branch, { status: 'indexing', lastError: branch.lastError, lastJobId: job.id ?? null });

        // Children are added as their batches are staged; deterministic ids make a retried prepare
        // (which re-stages the same commit) re-add the same jobs instead of duplicating them.
        const addChild = async (kind: 'embed' | 'graph', batch: number, commit: string) => {
          const name = kind === 'embed' ? 'embed-batch' : 'graph-batch';
          const payload =
            kind === 'embed'
              ? JOBS['embed-batch'].schema.parse({ runId: job.id!, repositoryId: repository.id, branch: data.branch, commit, batch })
              : JOBS['graph-batch'].schema.parse({ runId: job.id!, repositoryId: repository.id, branch: data.branch, batch });
          await (kind === 'embed' ? deps.embedQueue : deps.graphQueue).add(name, payload, {
            ...JOBS[name].options,
            jobId: `${job.id}-${kind}-${batch}`,
            parent: { id: job.id!, queue: job.queueQualifiedName },
            // A failed batch must not fail the parent silently: `publish` checks and fails the run itself.
            ignoreDependencyOnFailure: true,
          });
        };
        let runCommit = data.commit;
        const prepared = await prepareRun(
          {
            chunks,
            chunker: deps.chunker,
            logger: logger.child({ jobId: job.id, repository: repository.name, branch: data.branch }),
            workspaceDir: deps.config.workspaceDir,
            gitToken: deps.config.gitToken,
            maxFileBytes: deps.config.index.maxFileBytes,
            batchChunks: deps.config.index.batchChunks,
            graph: deps.graphExtractor,
          },
          {
            runId: job.id!,
            repository,
            branch: data.branch,
            indexedCommit: branch.indexedCommit,
            full: data.full,
            ...(data.commit ? { pinnedCommit: data.commit } : {}),
          },
          (p: IndexProgress) => job.updateProgress({ ...p }),
          {
            onCommit: async (commit) => {
              runCommit = commit;
              await job.updateData({ ...data, commit });
            },
            onBatchReady: (kind, batch) => addChild(kind, batch, runCommit!),
          },
        );
        if (prepared.upToDate) {
          await repositories.setBranchStatus(repository.id, data.branch, { status: 'ready' });
          await job.updateProgress({ phase: 'done', filesTotal: 0, filesScanned: 0, chunks: 0, batchesTotal: 0, batchesDone: 0, commit: prepared.commit });
          return { repositoryId: repository.id, branch: data.branch, commit: prepared.commit, upToDate: true };
        }
        // Calls are resolved as soon as the graph batches are in, while Chroma still takes the embed batches'
        // vectors: after them, it was a step of its own on the way to publishing a first index.
        if (prepared.graphBatches > 0 && (await graphBatchesDone(job))) {
          const graph = await resolveGraph(job, { recompute: true });
          await job.updateData({ ...(job.data as IndexData), graphResolved: true });
          logger.info({ jobId: job.id, ...graph }, 'calls resolved before publishing');
        }
        await job.updateData({ ...(job.data as IndexData), step: 'publish', commit: prepared.commit });
        (job.data as IndexData).step = 'publish';
        if (token && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
      }

      // publish
      const failed = await job.getIgnoredChildrenFailures();
      const failures = Object.values(failed);
      if (failures.length > 0) {
        throw new UnrecoverableError(`${failures.length} embedding or graph batch(es) failed: ${failures[0]}`);
      }
      const commit = (job.data as IndexData).commit!;
      const publishStarted = performance.now();
      // Neo4j and Postgres work side by side (two cores); each is idempotent, so a retry redoes both safely.
      const [{ removedIds, postgresMs }, graph] = await Promise.all([
        chunks.publish({ runId: job.id!, repositoryId: data.repositoryId, branch: data.branch, commit }).then((r) => ({ ...r, postgresMs: took(publishStarted) })),
        (job.data as IndexData).graphResolved ? Promise.resolve({ early: true }) : resolveGraph(job),
      ]);
      // After the commit: a vector left behind by a failure here is not live in Postgres, so no search returns it.
      await deps.vectors.delete({ repositoryId: data.repositoryId, branch: data.branch }, removedIds).catch((err) => logger.warn({ err: errorMessage(err) }, 'could not remove replaced vectors'));
      const branch = await repositories.getBranch(data.repositoryId, data.branch);
      const progress = (job.progress ?? {}) as Partial<IndexProgress>;
      await job.updateProgress({ ...progress, phase: 'done', batchesDone: progress.batchesTotal ?? 0, commit });
      logger.info(
        { jobId: job.id, repositoryId: data.repositoryId, branch: data.branch, commit, files: branch?.fileCount, chunks: branch?.chunkCount, publishMs: took(publishStarted), postgresMs, graph },
        'index published',
      );
      return {
        repositoryId: data.repositoryId,
        branch: data.branch,
        commit,
        upToDate: false,
        chunks: progress.chunks ?? 0,
        filesChanged: progress.filesTotal ?? 0,
        batches: progress.batchesTotal ?? 0,
      };
    } catch (err) {
      if (err instanceof WaitingChildrenError) throw err;
      const permanent = err instanceof UnrecoverableError || err instanceof IndexInputError;
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (permanent || lastAttempt) await markFailed(job, errorMessage(err)).catch(() => undefined);
      if (err instanceof IndexInputError) throw new UnrecoverableError(err.message);
      throw err;
    }
  };
}

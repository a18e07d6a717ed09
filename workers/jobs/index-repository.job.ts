import { UnrecoverableError, WaitingChildrenError, type Job, type Queue } from 'bullmq';
import { errorMessage } from '../../shared/errors.ts';
import { IndexInputError, prepareRun, type IndexProgress } from '../../shared/indexing/index-run.ts';
import { JOBS } from '../../shared/queue/jobs.ts';
import type { JobData } from '../../shared/queue/queues.ts';
import type { WorkerDeps } from '../handlers.ts';
import { withPublishBarrier } from '../../shared/backup/barrier.ts';

type IndexData = JobData<'index-repository'>;

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
  /** Every file was staged again: the branch lacked vectors in the current embedding space. */
  restagedAll?: boolean;
  /** Secrets the run replaced by a marker before storing or embedding its files, by rule (never the values). */
  secretsRedacted?: Record<string, number>;
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
    // Postgres text cannot hold a NUL, and failures quote them (Neo4j's graph keys join their parts with one):
    // the update failed, and with it the cleanup below, leaving the branch "indexing" and the run's rows staged.
    const lastError = message.replaceAll('\0', '\\0');
    await repositories.setBranchStatus(job.data.repositoryId, job.data.branch, { status: 'failed', lastError, lastJobId: job.id ?? null });
    // Vectors the run already wrote are not live in Postgres (so invisible); remove them with the staging rows.
    const staged = await stores.postgres.pool.query<{ id: string }>(
      `SELECT s.id FROM chunk_staging s WHERE s.run_id = $1 AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = s.id)`,
      [job.id],
    );
    await deps.vectors.delete({ repositoryId: job.data.repositoryId, branch: job.data.branch }, staged.rows.map((r) => r.id)).catch((err) => logger.warn({ err: errorMessage(err) }, 'could not remove vectors of a failed run'));
    // Graph batches write to the live graph before publishing; files the run added are in no index yet and
    // no later diff from the branch's commit may name them again (added, then deleted before the next run).
    const added = await stores.postgres.pool.query<{ path: string }>(
      `SELECT g.path FROM graph_staging g
        WHERE g.run_id = $1 AND NOT EXISTS (SELECT 1 FROM files f WHERE f.repository_id = $2 AND f.branch = $3 AND f.path = g.path)`,
      [job.id, job.data.repositoryId, job.data.branch],
    );
    if (added.rows.length > 0) {
      await deps.graph
        .deleteFiles({ repoId: job.data.repositoryId, branch: job.data.branch }, added.rows.map((r) => r.path))
        .catch((err) => logger.warn({ err: errorMessage(err) }, 'could not remove the graph of a failed run'));
    }
    await chunks.clearStaging(job.id!);
  }

  return async function indexRepository(job: Job<IndexData>, token?: string): Promise<IndexResult> {
    const data = JOBS['index-repository'].schema.parse(job.data);
    try {
      if (data.step !== 'publish') {
        const repository = await repositories.findById(data.repositoryId);
        if (!repository) throw new UnrecoverableError(`repository ${data.repositoryId} no longer exists`);
        const branch = await repositories.ensureBranch(repository.id, data.branch);
        await repositories.setBranchStatus(repository.id, data.branch, { status: 'indexing', lastError: branch.lastError, lastJobId: job.id ?? null });
        if (data.restageAll === undefined) {
          // Search reads vectors of the configured embedding model only. After a model change (or a Chroma that
          // lost its data) the branch's chunks have none there, and no diff would ever restage them: count, once
          // per run (a retry keeps the answer, so it re-stages the same files the first attempt did).
          const vectorCount = branch.indexedCommit && branch.chunkCount > 0 ? await deps.vectors.count({ repositoryId: repository.id, branch: data.branch }) : 0;
          data.restageAll = branch.indexedCommit !== null && vectorCount < branch.chunkCount;
          if (data.restageAll) {
            logger.warn(
              { jobId: job.id, repository: repository.name, branch: data.branch, model: deps.embeddings.id, vectors: vectorCount, chunks: branch.chunkCount },
              'the branch lacks vectors in this embedding space: every file is staged and embedded again',
            );
          }
          await job.updateData({ ...data });
        }

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
            full: data.full || data.restageAll,
            restageAll: data.restageAll,
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
        await job.updateData({ ...data, step: 'publish', commit: prepared.commit });
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
      // Graph first: files that went away lose their nodes, then calls and inheritance are re-resolved for
      // every file the run touched and every file importing one of them (their calls may point into them).
      // The scope is kept in the job: publishing clears the staging it comes from, and a retry needs it.
      // Everything that moves the published state (graph, rows, vectors) happens under the publish barrier:
      // a backup in progress holds it for the length of its set, so its three stores show the same commit.
      const took = (started: number) => Math.round(performance.now() - started);
      const { scopeMs, publishStarted, postgresMs, graphMs } = await withPublishBarrier(stores.postgres, async () => {
        const scope = { repoId: data.repositoryId, branch: data.branch };
        const scopeStarted = performance.now();
        let resolveScope = (job.data as IndexData).graphScope;
        if (!resolveScope) {
          const { written, removed } = await chunks.stagedGraphChanges(job.id!);
          // A branch never published before has no graph of its own to keep consistent: nothing outside this
          // run imports its files, and no placeholder predates it (each import this run wrote still holds its own).
          const firstIndex = !(await repositories.getBranch(data.repositoryId, data.branch))?.indexedCommit;
          const dependents = firstIndex ? [] : await deps.graph.dependentsOf(scope, [...written, ...removed]);
          if (!firstIndex || removed.length > 0) await deps.graph.deleteFiles(scope, removed);
          const gone = new Set(removed);
          resolveScope = [...new Set([...written, ...dependents])].filter((p) => !gone.has(p));
          await job.updateData({ ...(job.data as IndexData), graphScope: resolveScope });
        }
        const scopeMs = took(scopeStarted);
        // Neo4j and Postgres work side by side (two cores); each is idempotent, so a retry redoes both safely.
        const publishStarted = performance.now();
        const [{ removedIds, postgresMs }, graphMs] = await Promise.all([
          chunks.publish({ runId: job.id!, repositoryId: data.repositoryId, branch: data.branch, commit }).then((r) => ({ ...r, postgresMs: took(publishStarted) })),
          deps.graph.resolveEdges(scope, resolveScope).then(() => took(publishStarted)),
        ]);
        // After the commit: a vector left behind by a failure here is not live in Postgres, so no search returns it.
        await deps.vectors.delete({ repositoryId: data.repositoryId, branch: data.branch }, removedIds).catch((err) => logger.warn({ err: errorMessage(err) }, 'could not remove replaced vectors'));
        await deps.semantic?.vectors
          .delete({ repositoryId: data.repositoryId, branch: data.branch }, removedIds)
          .catch((err) => logger.warn({ err: errorMessage(err) }, 'could not remove replaced model vectors'));
        if (data.restageAll) {
          // The branch is whole in this embedding space now; its vectors of an earlier model are dead weight.
          await deps.vectors
            .deleteOtherModels({ repositoryId: data.repositoryId, branch: data.branch }, deps.semantic ? [deps.semantic.embeddings.id] : [])
            .then((models) => models.length > 0 && logger.info({ jobId: job.id, repositoryId: data.repositoryId, branch: data.branch, models }, 'removed the vectors of earlier embedding models'))
            .catch((err) => logger.warn({ err: errorMessage(err) }, 'could not remove the vectors of earlier embedding models'));
        }
        return { scopeMs, publishStarted, postgresMs, graphMs };
      });
      const branch = await repositories.getBranch(data.repositoryId, data.branch);
      const progress = (job.progress ?? {}) as Partial<IndexProgress>;
      await job.updateProgress({ ...progress, phase: 'done', batchesDone: progress.batchesTotal ?? 0, commit });
      logger.info(
        { jobId: job.id, repositoryId: data.repositoryId, branch: data.branch, commit, files: branch?.fileCount, chunks: branch?.chunkCount, scopeMs, publishMs: took(publishStarted), postgresMs, graphMs, secretsRedacted: progress.secretsRedacted ?? {} },
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
        secretsRedacted: progress.secretsRedacted ?? {},
        ...(data.restageAll ? { restagedAll: true } : {}),
      };
    } catch (err) {
      if (err instanceof WaitingChildrenError) throw err;
      const permanent = err instanceof UnrecoverableError || err instanceof IndexInputError;
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (permanent || lastAttempt) {
        await markFailed(job, errorMessage(err)).catch((failure) => logger.warn({ jobId: job.id, err: errorMessage(failure) }, 'could not record the failed run'));
      }
      if (err instanceof IndexInputError) throw new UnrecoverableError(err.message);
      throw err;
    }
  };
}

import type { Job } from 'bullmq';
import { JOBS } from '../../shared/queue/jobs.ts';
import type { JobData } from '../../shared/queue/queues.ts';
import type { WorkerDeps } from '../handlers.ts';
import { withPublishBarrier } from '../../shared/backup/barrier.ts';

/**
 * Writes one staged slice of the code graph (files, their symbols and
 * imports) to Neo4j in bounded transactions. Replacing a file's nodes is
 * idempotent, so a retry or a run resumed after a crash writes the same graph.
 * Calls are resolved once every slice is in, by the run's publish step.
 */
export function createGraphBatchHandler(deps: WorkerDeps) {
  return async function graphBatch(job: Job<JobData<'graph-batch'>>) {
    const data = JOBS['graph-batch'].schema.parse(job.data);
    const files = await deps.chunks.stagedGraphBatch(data.runId, data.batch);
    if (files.length === 0) return { files: 0, nodes: 0, edges: 0 };
    const repo = await deps.repositories.findById(data.repositoryId);
    // The live graph moves here: a backup in progress holds this back (briefly) so its graph matches its rows.
    const written = await withPublishBarrier(deps.stores.postgres, () => deps.graph.replaceFiles({ repoId: data.repositoryId, branch: data.branch }, repo?.name ?? String(data.repositoryId), files));
    return { files: files.length, ...written };
  };
}

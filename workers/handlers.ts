import type { Job, Queue } from 'bullmq';
import type { Config } from '../shared/config/config.ts';
import type { EmbeddingProvider } from '../shared/embeddings/embedding-provider.ts';
import type { Chunker } from '../shared/indexing/chunker.ts';
import type { GraphExtractor } from '../shared/indexing/index-run.ts';
import type { GraphStore } from '../shared/stores/graph.store.ts';
import type { Logger } from '../shared/logger.ts';
import type { JobName } from '../shared/queue/jobs.ts';
import type { ChunkRepository } from '../shared/stores/chunk.repository.ts';
import type { RepositoryRepository } from '../shared/stores/repository.repository.ts';
import type { Stores } from '../shared/stores/stores.ts';
import type { VectorStore } from '../shared/stores/vector.store.ts';
import { createEmbedBatchHandler } from './jobs/embed-batch.job.ts';
import { createGraphBatchHandler } from './jobs/graph-batch.job.ts';
import { createIndexRepositoryHandler } from './jobs/index-repository.job.ts';
import { createSemanticEmbedHandler } from './jobs/semantic-embed.job.ts';
import { createBackupHandlers } from './jobs/backup.job.ts';
import { createSecretRotateHandler } from './jobs/secret-rotate.job.ts';
import type { AuditRepository } from '../shared/stores/audit.repository.ts';
import type { Platform } from '../shared/platform.ts';
import { UnrecoverableError } from 'bullmq';
import type { SemanticTier } from '../shared/platform.ts';
import type { QueueRegistry } from '../shared/queue/queues.ts';

export interface WorkerDeps {
  stores: Stores;
  logger: Logger;
  config: Config;
  repositories: RepositoryRepository;
  chunks: ChunkRepository;
  vectors: VectorStore;
  embeddings: EmbeddingProvider;
  chunker: Chunker;
  graph: GraphStore;
  graphExtractor: GraphExtractor;
  /** The local model's background tier; null when off. */
  semantic: SemanticTier | null;
  enqueue: QueueRegistry['enqueue'];
  audit: AuditRepository;
  /** The whole platform, for maintenance jobs that read and write every store (backups, rotation). */
  platform: Platform;
}

export type Handler = (job: Job, token?: string) => Promise<unknown>;
export type Handlers = { [N in JobName]: Handler };

/**
 * After a run ends well (published, or already up to date), the branch's model vectors are filled in by a
 * `semantic-embed` job: the run itself never waits for the model. Queued for an up-to-date branch too, so a
 * model turned on (or fetched) later covers branches that no push touches. A failure to queue it only costs
 * meaning until the next run, never the run.
 */
function withModelTierFollowUp(deps: WorkerDeps, handler: Handler): Handler {
  if (!deps.semantic) return handler;
  return async (job, token) => {
    const result = (await handler(job, token)) as { repositoryId: number; branch: string };
    await deps
      .enqueue('semantic-embed', { repositoryId: result.repositoryId, branch: result.branch })
      .catch((err: unknown) => deps.logger.warn({ jobId: job.id, err: err instanceof Error ? err.message : String(err) }, 'could not queue semantic embedding'));
    return result;
  };
}

/** Maps every job in the registry to its handler; a missing entry is a compile error. */
export function createHandlers(deps: WorkerDeps & { queues: Record<'embed' | 'graph', Queue> }): Handlers {
  const backups = createBackupHandlers(deps);
  return {
    'index-repository': withModelTierFollowUp(deps, createIndexRepositoryHandler({ ...deps, embedQueue: deps.queues.embed, graphQueue: deps.queues.graph }) as Handler),
    'embed-batch': createEmbedBatchHandler(deps) as Handler,
    'graph-batch': createGraphBatchHandler(deps) as Handler,
    'semantic-embed': deps.semantic
      ? (createSemanticEmbedHandler({ ...deps, semantic: deps.semantic }) as Handler)
      : async () => {
          // Queued by a process that has the tier on (or before it was turned off): nothing to fill in here.
          throw new UnrecoverableError('the local model tier is off in this worker (an API key is set, or SEMANTIC_MODEL=none)');
        },
    'backup-create': backups['backup-create'] as Handler,
    'backup-verify': backups['backup-verify'] as Handler,
    'backup-prune': backups['backup-prune'] as Handler,
    'backup-restore': backups['backup-restore'] as Handler,
    'repository-poll': backups['repository-poll'] as Handler,
    'secret-rotate': createSecretRotateHandler(deps) as Handler,
  };
}

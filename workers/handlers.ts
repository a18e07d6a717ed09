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
}

export type Handler = (job: Job, token?: string) => Promise<unknown>;
export type Handlers = { [N in JobName]: Handler };

/** Maps every job in the registry to its handler; a missing entry is a compile error. */
export function createHandlers(deps: WorkerDeps & { queues: Record<'embed' | 'graph', Queue> }): Handlers {
  return {
    'index-repository': createIndexRepositoryHandler({ ...deps, embedQueue: deps.queues.embed, graphQueue: deps.queues.graph }) as Handler,
    'embed-batch': createEmbedBatchHandler(deps) as Handler,
    'graph-batch': createGraphBatchHandler(deps) as Handler,
  };
}

import type { Config } from './config/config.ts';
import { createEmbeddingProvider, embeddingConfigFrom, type EmbeddingProvider } from './embeddings/embedding-provider.ts';

export { embeddingConfigFrom };
import type { Logger } from './logger.ts';
import { createQueues, type QueueRegistry } from './queue/queues.ts';
import { createChunkRepository, type ChunkRepository } from './stores/chunk.repository.ts';
import { createGraphStore, type GraphStore } from './stores/graph.store.ts';
import { createRepositoryRepository, type RepositoryRepository } from './stores/repository.repository.ts';
import { closeStores, createStores, type Stores } from './stores/stores.ts';
import { createVectorStore, type VectorStore } from './stores/vector.store.ts';
import { createModelVectorRepository, type ModelVectorRepository } from './stores/model-vector.repository.ts';
import { OnnxEmbeddingProvider } from './embeddings/onnx.provider.ts';
import { createAuditRepository, type AuditRepository } from './stores/audit.repository.ts';
import { openSecretSources, type SecretSources } from './secrets/secret-sources.ts';

/**
 * The connections and repositories every process builds from its config.
 * Each composition root calls this once and passes the parts on explicitly;
 * nothing here is a module-level singleton.
 */
export interface Platform {
  config: Config;
  stores: Stores;
  queues: QueueRegistry;
  repositories: RepositoryRepository;
  chunks: ChunkRepository;
  embeddings: EmbeddingProvider;
  vectors: VectorStore;
  graph: GraphStore;
  /** The audit trail: admin actions and maintenance jobs. */
  audit: AuditRepository;
  /**
   * The background tier of model vectors (shared/semantic/): the local model, its own Chroma collections and
   * the bookkeeping of which chunks it has embedded. Null when off (an API key is set, or SEMANTIC_MODEL=none).
   */
  semantic: SemanticTier | null;
  /** Credentials read from files (`*_FILE`): the connections follow them through rotations (shared/secrets/). */
  secrets: SecretSources;
  close(): Promise<void>;
}

export interface SemanticTier {
  embeddings: EmbeddingProvider & { load(): Promise<unknown> };
  vectors: VectorStore;
  modelVectors: ModelVectorRepository;
}


export function createPlatform(
  config: Config,
  logger: Logger,
  overrides: { embeddings?: EmbeddingProvider; semanticEmbeddings?: SemanticTier['embeddings'] } = {},
): Platform {
  const secrets = openSecretSources(config);
  const stores = createStores(config, logger, secrets);
  const queues = createQueues(stores.redis.client, config.queuePrefix);
  const embeddings = overrides.embeddings ?? createEmbeddingProvider(embeddingConfigFrom(config), logger);
  let semantic: SemanticTier | null = null;
  if (config.semantic) {
    const model = overrides.semanticEmbeddings ?? new OnnxEmbeddingProvider(config.semantic);
    semantic = { embeddings: model, vectors: createVectorStore(stores.chroma, model.id), modelVectors: createModelVectorRepository(stores.postgres) };
  }
  let closed: Promise<void> | undefined;
  return {
    config,
    stores,
    queues,
    repositories: createRepositoryRepository(stores.postgres),
    chunks: createChunkRepository(stores.postgres),
    embeddings,
    vectors: createVectorStore(stores.chroma, embeddings.id),
    graph: createGraphStore(stores.neo4j, config.databaseSchema),
    audit: createAuditRepository(stores.postgres),
    semantic,
    secrets,
    close: () =>
      (closed ??= (async () => {
        await queues.close();
        await closeStores(stores);
      })()),
  };
}

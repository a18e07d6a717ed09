import type { Config } from '../../shared/config/config.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Platform } from '../../shared/platform.ts';
import type { Stores } from '../../shared/stores/stores.ts';
import { openSecretSources } from '../../shared/secrets/secret-sources.ts';

/**
 * What a CLI command uses. `postgres` is always opened (the schema check needs it); `embeddings` is the
 * query's embedding provider and the local model tier's provider, both for `search` only.
 */
export type CliPart = 'redis' | 'postgres' | 'chroma' | 'neo4j' | 'embeddings';
export const ALL_PARTS: readonly CliPart[] = ['redis', 'postgres', 'chroma', 'neo4j', 'embeddings'];

/**
 * The CLI's composition root: the same parts `createPlatform` wires (shared/platform.ts), but only those a
 * command names, each module loaded when asked for. A one-shot `repo list` then never loads BullMQ, the
 * Neo4j driver or the embedding clients, which together cost more than the command itself (bench/cli.bench.ts).
 * A part the command did not name throws at first use, naming it, so a missing part fails loudly in tests.
 */
export async function openCliPlatform(config: Config, logger: Logger, wanted: readonly CliPart[]): Promise<Platform> {
  const parts = new Set<CliPart>(['postgres', ...wanted]);
  const has = (p: CliPart) => parts.has(p);
  const secrets = openSecretSources(config);
  const [pgMod, redisMod, queuesMod, chromaMod, vectorMod, neo4jMod, graphMod, repoMod, chunkMod, auditMod, modelVecMod, embMod, onnxMod] = await Promise.all([
    import('../../shared/stores/postgres.connection.ts'),
    has('redis') ? import('../../shared/stores/redis.connection.ts') : undefined,
    has('redis') ? import('../../shared/queue/queues.ts') : undefined,
    has('chroma') ? import('../../shared/stores/chroma.connection.ts') : undefined,
    has('chroma') ? import('../../shared/stores/vector.store.ts') : undefined,
    has('neo4j') ? import('../../shared/stores/neo4j.connection.ts') : undefined,
    has('neo4j') ? import('../../shared/stores/graph.store.ts') : undefined,
    import('../../shared/stores/repository.repository.ts'),
    import('../../shared/stores/chunk.repository.ts'),
    import('../../shared/stores/audit.repository.ts'),
    import('../../shared/stores/model-vector.repository.ts'),
    has('embeddings') ? import('../../shared/embeddings/embedding-provider.ts') : undefined,
    config.semantic ? import('../../shared/embeddings/onnx.provider.ts') : undefined,
  ]);

  const missing = (part: CliPart): never => {
    throw new Error(`internal: this command did not open ${part} (scripts/commands/cli-platform.ts)`);
  };
  const postgres = pgMod.createPostgresConnection(
    { url: config.databaseUrl, schema: config.databaseSchema, ...(secrets.postgres ? { password: secrets.postgres } : {}) },
    logger.child({ store: 'postgres' }),
  );
  // Reconnect errors are not logged: a command that waits on Redis says in one line when it gives up on it.
  const redis = redisMod?.createRedisConnection(config.redisUrl, logger.child({ store: 'redis' }, { level: 'error' }), secrets.redis);
  const chroma = chromaMod?.createChromaConnection({ url: config.chromaUrl, collectionPrefix: config.chromaCollectionPrefix });
  const neo4j = neo4jMod?.createNeo4jConnection({
    uri: config.neo4jUri,
    user: config.neo4jUser,
    password: config.neo4jPassword,
    database: config.neo4jDatabase,
    ...(secrets.neo4j ? { passwordFile: secrets.neo4j } : {}),
  });
  const stores: Stores = {
    get redis() {
      return redis ?? missing('redis');
    },
    postgres,
    get chroma() {
      return chroma ?? missing('chroma');
    },
    get neo4j() {
      return neo4j ?? missing('neo4j');
    },
  };
  const queues = redis && queuesMod ? queuesMod.createQueues(redis.client, config.queuePrefix) : undefined;
  const embeddings = embMod ? embMod.createEmbeddingProvider(embMod.embeddingConfigFrom(config), logger) : undefined;
  const modelVectors = modelVecMod.createModelVectorRepository(postgres);
  // Constructing the model's provider loads nothing: the model is read at its first embedding (search only).
  let semantic: Platform['semantic'] = null;
  if (config.semantic && onnxMod) {
    const model = new onnxMod.OnnxEmbeddingProvider(config.semantic);
    const modelVectorStore = chroma && vectorMod ? vectorMod.createVectorStore(chroma, model.id) : undefined;
    semantic = {
      embeddings: model,
      get vectors() {
        return modelVectorStore ?? missing('chroma');
      },
      modelVectors,
    };
  }
  const vectors = embeddings && chroma && vectorMod ? vectorMod.createVectorStore(chroma, embeddings.id) : undefined;
  const graph = neo4j && graphMod ? graphMod.createGraphStore(neo4j, config.databaseSchema) : undefined;

  let closed: Promise<void> | undefined;
  return {
    config,
    stores,
    get queues() {
      return queues ?? missing('redis');
    },
    repositories: repoMod.createRepositoryRepository(postgres),
    chunks: chunkMod.createChunkRepository(postgres),
    get embeddings() {
      return embeddings ?? missing('embeddings');
    },
    get vectors() {
      return vectors ?? missing(embeddings ? 'chroma' : 'embeddings');
    },
    get graph() {
      return graph ?? missing('neo4j');
    },
    audit: auditMod.createAuditRepository(postgres),
    semantic,
    secrets,
    close: () =>
      (closed ??= (async () => {
        await queues?.close();
        await Promise.allSettled([redis, postgres, chroma, neo4j].map((s) => s?.close()));
      })()),
  };
}

import type { Config } from '../config/config.ts';
import type { Logger } from '../logger.ts';
import { createChromaConnection, type ChromaConnection } from './chroma.connection.ts';
import { createNeo4jConnection, type Neo4jConnection } from './neo4j.connection.ts';
import { createPostgresConnection, type PostgresConnection } from './postgres.connection.ts';
import { createRedisConnection, type RedisConnection } from './redis.connection.ts';
import type { StoreConnection, StoreName } from './store.ts';
import type { SecretSources } from '../secrets/secret-sources.ts';

export interface Stores {
  redis: RedisConnection;
  postgres: PostgresConnection;
  chroma: ChromaConnection;
  neo4j: Neo4jConnection;
}

type StoresConfig = Pick<
  Config,
  | 'redisUrl'
  | 'redisTopology'
  | 'databaseUrl'
  | 'databaseSchema'
  | 'chromaUrl'
  | 'chromaCollectionPrefix'
  | 'neo4jUri'
  | 'neo4jUser'
  | 'neo4jPassword'
  | 'neo4jDatabase'
>;

/** Opens every store. Connections are lazy or retrying: a store that is down does not stop the process. */
export function createStores(config: StoresConfig, logger: Logger, secrets: SecretSources = {}): Stores {
  return {
    redis: createRedisConnection(config.redisUrl, logger.child({ store: 'redis' }), secrets.redis, config.redisTopology),
    postgres: createPostgresConnection(
      { url: config.databaseUrl, schema: config.databaseSchema, ...(secrets.postgres ? { password: secrets.postgres } : {}) },
      logger.child({ store: 'postgres' }),
    ),
    chroma: createChromaConnection({ url: config.chromaUrl, collectionPrefix: config.chromaCollectionPrefix }),
    neo4j: createNeo4jConnection({
      uri: config.neo4jUri,
      user: config.neo4jUser,
      password: config.neo4jPassword,
      database: config.neo4jDatabase,
      ...(secrets.neo4j ? { passwordFile: secrets.neo4j } : {}),
    }),
  };
}

/** Closes every store; one failing close does not keep the others open. */
export async function closeStores(stores: Partial<Record<StoreName, StoreConnection>>): Promise<void> {
  await Promise.allSettled(Object.values(stores).map((s) => s?.close()));
}

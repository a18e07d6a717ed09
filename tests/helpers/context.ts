import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../shared/config/config.ts';
import { migrateDatabase } from '../../shared/db/migrate.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { closeStores, createStores, type Stores } from '../../shared/stores/stores.ts';

export const silentLogger: Logger = createLogger({ logLevel: 'silent', logPretty: false });

/** A short id unique to one test context: names its queue prefix, schema, collections and graph namespace. */
export function uniqueId(): string {
  return randomBytes(5).toString('hex');
}

/**
 * Config for one isolated test context: the real stores the test command
 * started (or the configured URLs), with a private queue prefix, Postgres
 * schema and Chroma collection prefix.
 */
export function testConfig(id = uniqueId(), overrides: Partial<Config> = {}): Config {
  const base = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  return {
    ...base,
    logPretty: false,
    queuePrefix: `test-${id}`,
    databaseSchema: `test_${id}`,
    chromaCollectionPrefix: `test-${id}`,
    ...overrides,
  };
}

export interface TestStores {
  id: string;
  config: Config;
  stores: Stores;
  cleanup(): Promise<void>;
}

/** Opens the real stores for one test file, migrated into its own schema; `cleanup` removes every trace. */
export async function openTestStores(overrides: Partial<Config> = {}): Promise<TestStores> {
  const id = uniqueId();
  const config = testConfig(id, overrides);
  const stores = createStores(config, silentLogger);
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, silentLogger);
  return {
    id,
    config,
    stores,
    async cleanup() {
      await stores.postgres.pool.query(`DROP SCHEMA IF EXISTS ${config.databaseSchema} CASCADE`).catch(() => undefined);
      const collections = await stores.chroma.client.listCollections().catch(() => []);
      await Promise.all(
        collections
          .filter((c) => c.name.startsWith(config.chromaCollectionPrefix))
          .map((c) => stores.chroma.client.deleteCollection({ name: c.name })),
      );
      const keys = await stores.redis.client.keys(`${config.queuePrefix}:*`);
      if (keys.length > 0) await stores.redis.client.del(...keys);
      await stores.neo4j.driver
        .executeQuery('MATCH (n {testId: $id}) DETACH DELETE n', { id }, { database: config.neo4jDatabase })
        .catch(() => undefined);
      await closeStores(stores);
    },
  };
}

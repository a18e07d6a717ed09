import type { Config } from '../config/config.ts';
import { FileSecret } from './secret-file.ts';

/** The credentials a process reads from files (`*_FILE`), by what uses them. */
export interface SecretSources {
  postgres?: FileSecret;
  neo4j?: FileSecret;
  redis?: FileSecret;
  webhook?: FileSecret;
}

export type SourceKind = keyof SecretSources;

/** Each file-backed credential's secret name: the name `secrets rotate` takes and audit rows carry. */
export const SOURCE_SECRET_NAMES = {
  postgres: 'database-password',
  neo4j: 'neo4j-password',
  redis: 'redis-password',
  webhook: 'webhook-secret',
} as const satisfies Record<SourceKind, string>;

/** Opens every `*_FILE` the config names (reading each once now; a missing file was refused by loadConfig). */
export function openSecretSources(config: Pick<Config, 'secrets'>): SecretSources {
  const files = config.secrets?.files ?? {};
  const sources: SecretSources = {};
  if (files.databasePassword) sources.postgres = new FileSecret(SOURCE_SECRET_NAMES.postgres, files.databasePassword);
  if (files.neo4jPassword) sources.neo4j = new FileSecret(SOURCE_SECRET_NAMES.neo4j, files.neo4jPassword);
  if (files.redisPassword) sources.redis = new FileSecret(SOURCE_SECRET_NAMES.redis, files.redisPassword);
  if (files.webhookSecret) sources.webhook = new FileSecret(SOURCE_SECRET_NAMES.webhook, files.webhookSecret);
  return sources;
}


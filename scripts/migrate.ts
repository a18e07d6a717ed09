import { ConfigError, loadConfig, loadDotEnv } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createLogger } from '../shared/logger.ts';

/**
 * One-shot migration (the image's `migrate` mode; Compose's `migrate` service
 * and the Helm chart's pre-install/pre-upgrade Job run it before API and
 * workers start). API and workers still migrate at start, under the same
 * per-schema lock, so a deployment without this step works too: it only
 * keeps several replicas from queueing on the lock at once.
 */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config, { name: 'migrate' });
  const applied = await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
  logger.info({ schema: config.databaseSchema, applied: applied.length }, applied.length > 0 ? 'migrations applied' : 'schema already up to date');
  logger.flush();
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `migrate failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

import { ConfigError, loadConfig, loadDotEnv } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createLogger } from '../shared/logger.ts';
import { createShutdown, onSignals } from '../shared/shutdown.ts';
import { closeStores, createStores } from '../shared/stores/stores.ts';
import { buildApp } from './app.ts';

/** Composition root of the API process. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config, { name: 'api' });
  const stores = createStores(config, logger);
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);

  const app = await buildApp({ logger, stores, readyCheckTimeoutMs: config.readyCheckTimeoutMs });
  const shutdown = createShutdown(
    logger,
    [
      { name: 'http', run: () => app.close() },
      { name: 'stores', run: () => closeStores(stores) },
    ],
    config.shutdownTimeoutMs,
  );
  onSignals(logger, shutdown);
  await app.listen({ host: config.api.host, port: config.api.port });
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
  } else {
    process.stderr.write(`api failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});

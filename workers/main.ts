import { ConfigError, loadConfig, loadDotEnv } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createChunker } from '../shared/indexing/chunker.ts';
import { createGraphExtractor } from '../shared/graph/extract.ts';
import { createLogger } from '../shared/logger.ts';
import { createPlatform } from '../shared/platform.ts';
import { createShutdown, onSignals } from '../shared/shutdown.ts';
import { startWorkers } from './workers.ts';
import { loadSemanticModel } from '../shared/semantic/load.ts';
import { startSecretAgent } from '../shared/secrets/secret-agent.ts';
import { upsertSchedules } from './schedules.ts';

/** Composition root of the worker process: one BullMQ worker pool per queue. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config, { name: 'workers' });
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
  const platform = createPlatform(config, logger);
  await platform.graph.ensureSchema();
  await loadSemanticModel(platform, logger);
  const chunker = await createChunker({ maxChunkChars: config.index.maxChunkChars });
  // Follows secret rotations: re-reads the *_FILE secrets when told, and reports which values it uses.
  const secrets = startSecretAgent(platform, logger, { role: 'worker' });
  const workers = startWorkers({ ...platform, logger, chunker, graphExtractor: createGraphExtractor() });

  const shutdown = createShutdown(
    logger,
    [
      { name: 'workers', run: () => workers.close() },
      { name: 'secret agent', run: () => secrets.close() },
      { name: 'queues and stores', run: () => platform.close() },
    ],
    config.shutdownTimeoutMs,
  );
  // Signals are handled before anything else is awaited: a stop right after "workers ready" stops in order.
  onSignals(logger, shutdown);
  await upsertSchedules(platform.queues, config, logger);
}

main().catch((err) => {
  process.stderr.write(
    err instanceof ConfigError ? `${err.message}\n` : `workers failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});

import { ConfigError, loadConfig, loadDotEnv } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createTokenService } from '../shared/auth/token.service.ts';
import { createLogger } from '../shared/logger.ts';
import { createPlatform } from '../shared/platform.ts';
import { createShutdown, onSignals } from '../shared/shutdown.ts';
import { buildApp } from './app.ts';

/** Composition root of the API process. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config, { name: 'api' });
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
  const platform = createPlatform(config, logger);
  await platform.graph.ensureSchema().catch((err) => logger.warn({ err: (err as Error).message }, 'could not create graph constraints yet'));

  const tokens = createTokenService(platform.stores.postgres, { instances: config.instances });
  if (config.adminTokenFile) await tokens.ensureAdminFromSecretsFile(config.adminTokenFile);
  if (!(await tokens.hasActiveAdmin())) {
    logger.warn(
      'no admin token exists yet: create one with `npx pk-mcp token create --name admin --scopes admin --instances "*"` (or set ADMIN_TOKEN_FILE)',
    );
  }

  const app = await buildApp({ logger, platform });
  const shutdown = createShutdown(
    logger,
    [
      { name: 'http', run: () => app.close() },
      { name: 'queues and stores', run: () => platform.close() },
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

import { ConfigError, loadConfig, loadDotEnv } from '../shared/config/config.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createTokenService, FIRST_ADMIN_HINT } from '../shared/auth/token.service.ts';
import { createLogger } from '../shared/logger.ts';
import { createPlatform } from '../shared/platform.ts';
import { createShutdown, onSignals } from '../shared/shutdown.ts';
import { buildApp } from './app.ts';
import { loadSemanticModel } from '../shared/semantic/load.ts';
import { startSecretAgent } from '../shared/secrets/secret-agent.ts';
import { scheduleAuditRetention } from '../shared/stores/audit.repository.ts';

/** Composition root of the API process. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const logger = createLogger(config, { name: 'api' });
  await migrateDatabase({ databaseUrl: config.databaseUrl, schema: config.databaseSchema }, logger);
  const platform = createPlatform(config, logger);
  await platform.graph.ensureSchema().catch((err) => logger.warn({ err: (err as Error).message }, 'could not create graph constraints yet'));

  const tokens = createTokenService(platform.stores.postgres, { instances: config.instances });
  if (config.adminTokenFile) {
    const bootstrap = await tokens.ensureAdminFromSecretsFile(config.adminTokenFile);
    if (bootstrap.status === 'unusable') logger.warn(bootstrap.message);
    else logger.info(bootstrap.message);
  }
  if (!(await tokens.hasActiveAdmin())) logger.warn(FIRST_ADMIN_HINT);
  await loadSemanticModel(platform, logger);

  const app = await buildApp({ logger, platform });
  // Follows secret rotations: re-reads the *_FILE secrets when told, and reports which values it uses.
  const secrets = startSecretAgent(platform, logger, { role: 'api' });
  const retention = scheduleAuditRetention(platform.audit, {
    retentionDays: config.audit.retentionDays,
    onPruned: (count) => logger.info({ count, retentionDays: config.audit.retentionDays }, 'audit rows past the retention period deleted'),
    onError: (err) => logger.warn({ err }, 'could not prune the audit trail'),
  });
  const shutdown = createShutdown(
    logger,
    [
      { name: 'http', run: () => app.close() },
      { name: 'audit retention', run: async () => retention.close() },
      { name: 'secret agent', run: () => secrets.close() },
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

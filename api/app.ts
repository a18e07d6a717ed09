import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { createGraphQueryService } from '../shared/graph/graph-query.service.ts';
import { createRepositoryService } from '../shared/indexing/repository.service.ts';
import type { Logger } from '../shared/logger.ts';
import type { Platform } from '../shared/platform.ts';
import { createJobStatusService } from '../shared/queue/job-status.service.ts';
import { createSearchService } from '../shared/search/hybrid-search.ts';
import { createTokenService } from '../shared/auth/token.service.ts';
import { createOidcVerifier } from '../shared/auth/oidc.verifier.ts';
import { oauthMetadataRoutes, resourceMetadataUrl } from './routes/oauth-metadata.routes.ts';
import { createWebhookService } from '../shared/webhooks/webhook.service.ts';
import { registerAuth } from './plugins/auth.plugin.ts';
import { registerDashboard } from './plugins/dashboard.plugin.ts';
import { frameworkErrorHandler, registerErrorHandler } from './plugins/error-handler.ts';
import { registerInputGuard } from './plugins/input-guard.ts';
import { createMetrics, registerMetrics } from './plugins/metrics.plugin.ts';
import { registerOpenApi } from './plugins/openapi.plugin.ts';
import { registerSecurity } from './plugins/security.plugin.ts';
import { graphRoutes } from './routes/graph.routes.ts';
import { healthRoutes } from './routes/health.routes.ts';
import { jobRoutes } from './routes/jobs.routes.ts';
import { repositoryRoutes } from './routes/repositories.routes.ts';
import { searchRoutes } from './routes/search.routes.ts';
import { tokenRoutes } from './routes/tokens.routes.ts';
import { secretRoutes } from './routes/secrets.routes.ts';
import { adminRoutes } from './routes/admin.routes.ts';
import { createBackupService } from '../shared/backup/backup.service.ts';
import { webhookRoutes } from './routes/webhooks.routes.ts';
import { mcpHttpRoutes } from '../mcp/http.routes.ts';

export const API_VERSION = '0.1.0';

export interface AppDeps {
  logger: Logger;
  platform: Platform;
}

/**
 * Builds the Fastify app from explicit dependencies; `server.ts` owns their
 * lifecycle. Everything but /health, the webhooks (which carry their own
 * signatures) and the docs page needs a bearer token.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { platform, logger } = deps;
  const { config } = platform;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: false,
    // One line per request, written when it completes (below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    frameworkErrors: frameworkErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  // Everything about a request in the one line: an agent's MCP calls are several requests a second, and
  // writing two log lines each took ~5% of the API's CPU under MCP load (profiled; the log writes alone).
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        req: { method: request.method, url: request.url },
        res: { statusCode: reply.statusCode },
        responseTime: Math.round(reply.elapsedTime * 10) / 10,
        ...(request.principal ? { token: request.principal.name } : {}),
      },
      'request completed',
    );
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);
  registerInputGuard(app);

  const tokens = createTokenService(platform.stores.postgres, { instances: config.instances });
  const repos = createRepositoryService(platform);
  const search = createSearchService(platform, { logger });
  const graph = createGraphQueryService(platform);
  const jobs = createJobStatusService(platform);
  const webhooks = createWebhookService(platform, { globalSecret: config.webhookSecret });
  const metrics = createMetrics({ queues: platform.queues, redis: platform.stores.redis, queuePrefix: config.queuePrefix });

  await registerSecurity(app, {
    ...config.http,
    // Its own connection that fails fast: with Redis down, requests skip the limit instead of waiting on it.
    redis: platform.stores.redis.duplicate({ enableOfflineQueue: false, maxRetriesPerRequest: 1 }),
    queuePrefix: config.queuePrefix,
  });
  await registerOpenApi(app, API_VERSION);
  const oidc = config.oidc ? createOidcVerifier(config.oidc, { instances: config.instances, logger }) : null;
  await registerAuth(app, {
    tokens,
    oidc,
    audit: platform.audit,
    ...(config.oidc ? { resourceMetadataUrl: resourceMetadataUrl(config.oidc.resource) } : {}),
  });
  const metricsServer = await registerMetrics(app, metrics, config.metricsPort);
  app.addHook('onClose', async () => {
    await metrics.close();
    await metricsServer?.close();
  });

  await app.register(healthRoutes, {
    stores: platform.stores,
    readyCheckTimeoutMs: config.readyCheckTimeoutMs,
  });
  await app.register(webhookRoutes, { webhooks });
  if (config.oidc) await app.register(oauthMetadataRoutes, { oidc: config.oidc });
  await app.register(
    async (v1) => {
      await v1.register(repositoryRoutes, { platform, repos });
      await v1.register(searchRoutes, { search, metrics });
      await v1.register(graphRoutes, { graph, metrics });
      await v1.register(jobRoutes, { platform, jobs });
      await v1.register(tokenRoutes, { tokens, instances: config.instances });
      await v1.register(secretRoutes, { platform, logger });
      await v1.register(adminRoutes, { platform, backups: createBackupService(platform, logger) });
    },
    { prefix: '/api/v1' },
  );
  await app.register(mcpHttpRoutes, { platform, search, graph, repos, jobs, allowedOrigins: config.http.corsOrigins });
  await registerDashboard(app, platform.queues, config.instances);
  return app;
}

import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../shared/logger.ts';
import type { Stores } from '../shared/stores/stores.ts';
import { registerErrorHandler } from './plugins/error-handler.ts';
import { healthRoutes } from './routes/health.routes.ts';

export interface AppDeps {
  logger: Logger;
  stores: Stores;
  readyCheckTimeoutMs: number;
}

/** Builds the Fastify app from explicit dependencies; `server.ts` owns their lifecycle. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    trustProxy: false,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);

  await app.register(healthRoutes, { stores: deps.stores, readyCheckTimeoutMs: deps.readyCheckTimeoutMs });
  return app;
}

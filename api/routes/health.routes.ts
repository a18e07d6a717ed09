import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { checkReadiness } from '../../shared/health/readiness.ts';
import type { StoreConnection, StoreName } from '../../shared/stores/store.ts';

const storeStatus = z.discriminatedUnion('status', [
  z.object({ status: z.literal('ok'), latencyMs: z.number() }),
  z.object({ status: z.literal('error'), error: z.string(), latencyMs: z.number() }),
]);
const readiness = z.object({
  status: z.enum(['ok', 'unavailable']),
  stores: z.record(z.string(), storeStatus),
});

export interface HealthRoutesOptions {
  stores: Partial<Record<StoreName, StoreConnection>>;
  readyCheckTimeoutMs: number;
}

/** `/health`: the process is alive (no auth, no I/O). `/ready`: every store answers. */
export const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (app, opts) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness: the API process is up',
        response: { 200: z.object({ status: z.literal('ok'), uptimeSeconds: z.number() }) },
      },
    },
    async () => ({ status: 'ok' as const, uptimeSeconds: Math.round(process.uptime()) }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: one entry per store, 503 when any is down',
        response: { 200: readiness, 503: readiness },
      },
    },
    async (_request, reply) => {
      const report = await checkReadiness(opts.stores, opts.readyCheckTimeoutMs);
      return reply.status(report.status === 'ok' ? 200 : 503).send(report);
    },
  );
};

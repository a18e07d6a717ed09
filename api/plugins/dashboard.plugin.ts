import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../shared/errors.ts';
import { assertEveryInstance } from './auth.plugin.ts';
import type { QueueRegistry } from '../../shared/queue/queues.ts';

const BASE = '/admin/queues';

/**
 * Bull Board at /admin/queues, for admins only. Browsers cannot send bearer
 * headers on navigation, so an admin signs in once at /auth/session (which
 * sets an HttpOnly cookie); the same check guards every page and API call.
 */
export async function registerDashboard(app: FastifyInstance, queues: QueueRegistry, instances: readonly string[]): Promise<void> {
  const adapter = new FastifyAdapter();
  adapter.setBasePath(BASE);
  createBullBoard({
    queues: Object.values(queues.queues).map((q) => new BullMQAdapter(q, { readOnlyMode: false })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'pk-mcp queues' } },
  });
  await app.register(
    async (scope) => {
      // Bull Board installs its own error handler in this scope, which would turn our 401/403 into
      // its generic error: answer auth failures here, in the API's error shape.
      scope.addHook('onRequest', async (request, reply) => {
        try {
          await app.requireScope('admin')(request, reply);
          // The board shows every instance's jobs and acts on whole queues: an admin of some instances only may not.
          assertEveryInstance(request, instances);
        } catch (err) {
          if (err instanceof AppError) {
            await app.auditRefusal(request, err);
            return reply.status(err.statusCode).send({ error: err.code, message: err.message });
          }
          throw err;
        }
      });
      await scope.register(adapter.registerPlugin(), { prefix: BASE });
    },
  );
}

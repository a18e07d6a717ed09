import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { QueueRegistry } from '../../shared/queue/queues.ts';

const BASE = '/admin/queues';

/**
 * Bull Board at /admin/queues, for admins only. Browsers cannot send bearer
 * headers on navigation, so an admin signs in once at /auth/session (which
 * sets an HttpOnly cookie); the same check guards every page and API call.
 */
export async function registerDashboard(app: FastifyInstance, queues: QueueRegistry): Promise<void> {
  const adapter = new FastifyAdapter();
  adapter.setBasePath(BASE);
  createBullBoard({
    queues: Object.values(queues.queues).map((q) => new BullMQAdapter(q, { readOnlyMode: false })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'pk-mcp queues' } },
  });
  await app.register(
    async (scope) => {
      scope.addHook('onRequest', async (request, reply) => {
        await app.requireScope('admin')(request, reply);
      });
      await scope.register(adapter.registerPlugin(), { prefix: BASE });
    },
  );
}

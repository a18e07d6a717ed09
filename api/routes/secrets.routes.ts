import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Platform } from '../../shared/platform.ts';
import { createSecretRotationService } from '../../shared/secrets/secret-rotation.service.ts';
import type { Logger } from '../../shared/logger.ts';
import { adminOfEveryInstance } from '../plugins/auth.plugin.ts';
import { errorResponses } from '../schemas/common.ts';

const secretName = z.string().min(1).max(130).describe("a secret's name (database-password, neo4j-password, redis-password, webhook-secret, repo-webhook-<repository>, token-<name>) or 'all'");

/**
 * Secret rotation (shared/secrets/): the list of secrets the platform knows, managed or not and why, and a
 * rotation queued on the maintenance queue. Admin of every instance: the credentials serve all of them.
 */
export const secretRoutes: FastifyPluginAsyncZod<{ platform: Platform; logger: Logger }> = async (app, { platform, logger }) => {
  const service = createSecretRotationService({ platform, logger });
  const admin = adminOfEveryInstance(app, platform.config.instances);

  app.get(
    '/admin/secrets',
    {
      ...admin,
      schema: {
        tags: ['secrets'],
        summary: 'List the secrets the platform knows: which it manages (rotates), and why not the others (never a value)',
        response: {
          200: z.object({
            secrets: z.array(
              z.object({
                name: z.string(),
                kind: z.string(),
                managed: z.boolean(),
                reason: z.string().optional().describe('why it is not managed'),
                file: z.string().optional().describe('where its current value is, or where a rotation writes it'),
                dueAt: z.string().optional().describe('tokens: when `all` rotates it next'),
              }),
            ),
          }),
          ...errorResponses,
        },
      },
    },
    async () => ({ secrets: await service.catalog() }),
  );

  app.post(
    '/admin/secrets/:name/rotate',
    {
      ...admin,
      // Who asked, from where; the job records the rotation's outcome as `secret.rotate`.
      config: { audit: { action: 'secret.rotate.queued' } },
      schema: {
        tags: ['secrets'],
        summary: "Queue the rotation of a managed secret, or of all of them ('all'); follow it with GET /api/v1/jobs/{jobId}",
        params: z.object({ name: secretName }),
        response: { 202: z.object({ jobId: z.string(), queue: z.string(), name: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      // Refused here with the precise reason (400 malformed or not managed, 404 unknown), not later in the job.
      await service.resolve(name);
      const job = await platform.queues.enqueue('secret-rotate', { name, actor: request.principal!.name });
      return reply.status(202).send({ jobId: job.id, queue: job.queue, name });
    },
  );
};
